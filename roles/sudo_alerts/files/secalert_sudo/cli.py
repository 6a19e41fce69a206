"""Commands for the role: ``--check CONFIG`` and ``--self-test [--require-root]``.

    python3 -I /usr/libexec/secalert/secalert_sudo_audit.py --check CONFIG
    python3 -I <version dir>/secalert_sudo --self-test --require-root

``--check`` validates a configuration with this code (the role runs it on the rendered
file before it replaces the live one). ``--self-test`` compiles every module of this
package (writing its ``__pycache__`` when stale, so sudo never has to), imports them all, builds
and matches one event; with ``--require-root`` it also checks that every file and
directory of the package is root-owned and not writable by group or others (sudo does
not check what it loads). The role runs it on a new version before it becomes live.
"""

import os
import sys

MODULES = ("config", "rules", "event", "delivery", "plugin", "session", "cli")


def check(path):
    from secalert_sudo import config

    try:
        settings = config.load_settings(path, session=True)
    except config.ConfigError as exc:
        sys.stderr.write(f"invalid: {exc}\n")
        return 1
    rules = len(settings["compiled_rules"])
    session = len(settings["compiled_session_rules"])
    sys.stdout.write(f"ok: delivery {settings['delivery']}, {rules} rules, "
                     f"{session} session rules\n")
    return 0


def _unsafe(paths):
    bad = []
    for path in paths:
        st = os.lstat(path)
        if st.st_uid != 0 or st.st_mode & 0o022:
            bad.append(f"{path} (uid {st.st_uid}, mode {st.st_mode & 0o7777:o})")
    return bad


def self_test(require_root=False):
    import compileall
    import importlib

    package = os.path.dirname(os.path.abspath(__file__))
    files = sorted(os.path.join(package, name) for name in os.listdir(package)
                   if name.endswith(".py"))
    try:
        for path in files:
            # Writes the .pyc only when it is missing or stale (a rerun changes nothing).
            if not compileall.compile_file(path, force=False, quiet=1):
                raise SyntaxError(f"{path} does not compile")
        for name in MODULES:
            importlib.import_module("secalert_sudo." + name)
        from secalert_sudo import __version__, config, event, rules

        settings = config.default_settings()
        out, raw = event.build("accept", "sudoers_policy", None,
                               {"user": "root", "cwd": "/etc", "command": "/usr/bin/vim"},
                               ["/usr/bin/vim", "shadow"], settings["limits"])
        rule = rules.match_rule(settings["compiled_rules"], raw)
        if rule is None or rule["name"] != "sensitive-file":
            raise AssertionError(f"the shipped rules do not match: {rule}")
    except BaseException as exc:  # noqa: BLE001 - reported, the role fails
        sys.stderr.write(f"self-test failed: {type(exc).__name__}: {exc}\n")
        return 1
    if require_root:
        paths = [package] + [os.path.join(root, name)
                             for root, dirs, names in os.walk(package)
                             for name in dirs + names]
        bad = _unsafe(paths)
        if bad:
            sys.stderr.write("self-test failed: not root-owned or writable by others: "
                             + ", ".join(bad) + "\n")
            return 1
    sys.stdout.write(f"ok: secalert_sudo {__version__}, {len(files)} modules in {package}\n")
    return 0


def main(argv):
    if len(argv) == 3 and argv[1] == "--check":
        return check(argv[2])
    if len(argv) in (2, 3) and argv[1] == "--self-test" and argv[2:] in ([], ["--require-root"]):
        return self_test(require_root=len(argv) == 3)
    sys.stderr.write("usage: secalert_sudo_audit.py --check CONFIG\n"
                     "       python3 -I <dir>/secalert_sudo --self-test [--require-root]\n")
    return 2
