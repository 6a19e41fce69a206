"""The entry module sudo loads: any failure to import the package leaves sudo working.

Each case copies the entry and the package into a temporary tree laid out as on a host
(``secalert_sudo_audit.py`` and ``sudo-plugin/current -> v1/secalert_sudo``), breaks the
package, and loads the entry in a fresh ``python3 -I`` with the stand-in ``sudo`` module,
the module directory appended to sys.path as sudo's python_plugin.so does.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys

import pytest

FILES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "roles", "sudo_alerts",
                     "files")
STUBS = os.path.join(os.path.dirname(__file__), "..", "..", "stubs")
OK, REJECT, ERROR = 1, 0, -1

DRIVER = r"""
import json, sys
stubs, moddir, argv, options = sys.argv[1:5]
sys.path.insert(0, stubs)
import sudo
sys.path.append(moddir)  # python_plugin.so appends the ModulePath directory
import secalert_sudo_audit as entry
cls = entry.SecalertAuditPlugin
plugin = cls(version="1.0", settings=(), user_info=("user=alice", "host=web1", "pid=42"),
             user_env=(), plugin_options=tuple(options.split()))
argv = tuple(argv.split())
rc = sudo.call(plugin, "open", len(argv) if "-V" in argv else 1, argv)
if "-V" in argv:
    plugin.show_version(1)
print(json.dumps({"broken": entry.BROKEN, "rc": rc, "log": sudo.LOG,
                  "module": cls.__module__}))
"""

# The I/O plugin (session rules) through the same entry: sudo asks the module for the
# class by name (PyObject_GetAttrString, so the module's __getattr__ answers).
DRIVER_IO = r"""
import json, sys
stubs, moddir, options = sys.argv[1:4]
sys.path.insert(0, stubs)
import sudo
sys.path.append(moddir)
import secalert_sudo_audit as entry
cls = getattr(entry, "SecalertIOPlugin")
plugin = cls(version="1.0", settings=(), user_info=("user=alice", "host=web1", "pid=42"),
             user_env=(), plugin_options=tuple(options.split()))
rc = sudo.open_io(plugin, ("/usr/bin/id",), ("command=/usr/bin/id",))
plugin.show_version(1)
print(json.dumps({"broken": entry.BROKEN, "rc": rc, "log": sudo.LOG,
                  "class": cls.__name__, "module": cls.__module__}))
"""


class Tree:
    def __init__(self, base):
        self.base = base
        self.version = os.path.join(base, "sudo-plugin", "v1")
        self.package = os.path.join(self.version, "secalert_sudo")
        self.state = os.path.join(base, "entry-off")
        self.sock_path = os.path.join(base, "elog")
        self.root_path = os.path.join(base, "rlog")  # syslog-ng's root socket: bound on demand
        # The host's paths, pointed into this tree (they are used at import time).
        with open(os.path.join(FILES, "secalert_sudo_audit.py"), encoding="utf-8") as fh:
            source = fh.read()
        for name, value in (("SYSLOG_SOCKET", self.sock_path), ("ROOT_SOCKET", self.root_path),
                            ("STATE_FILE", self.state),
                            ("DROP_COUNTER", self.state + ".drops")):
            source, count = re.subn(f'^{name} = "[^"]*"', f"{name} = {value!r}", source,
                                    flags=re.M)
            assert count == 1, name
        with open(os.path.join(base, "secalert_sudo_audit.py"), "w", encoding="utf-8") as fh:
            fh.write(source)
        shutil.copytree(os.path.join(FILES, "secalert_sudo"), self.package,
                        ignore=shutil.ignore_patterns("__pycache__"))
        os.symlink("v1", os.path.join(base, "sudo-plugin", "current"))
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.sock_path)
        self.sock.setblocking(False)

    def append(self, module, text):
        with open(os.path.join(self.package, module), "a", encoding="utf-8") as fh:
            fh.write(text)

    def run(self, argv="sudo /usr/bin/id", options="Config=/nonexistent", io=False):
        args = [self.base, options] if io else [self.base, argv, options]
        proc = subprocess.run(
            [sys.executable, "-I", "-c", DRIVER_IO if io else DRIVER, os.path.abspath(STUBS),
             *args],
            capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr
        result = json.loads(proc.stdout)
        result["events"] = []
        for _unused in range(1000):
            try:
                frame = self.sock.recv(65536).decode("ascii")
            except BlockingIOError:
                break
            header, _unused, payload = frame.partition(": ")
            assert header.startswith("<") and "secalert-sudo[" in header
            result["events"].append((int(header[1:header.index(">")]), json.loads(payload)))
        return result


@pytest.fixture
def tree(shortdir):
    t = Tree(shortdir)
    yield t
    t.sock.close()


BREAKS = {
    "package missing": lambda t: shutil.rmtree(os.path.join(t.base, "sudo-plugin")),
    "current link dangling": lambda t: shutil.rmtree(t.version),
    "module missing": lambda t: os.unlink(os.path.join(t.package, "rules.py")),
    "syntax error": lambda t: t.append("rules.py", "\ndef (:\n"),
    "exception at import": lambda t: t.append("event.py", "\nraise RuntimeError('boom')\n"),
    "SystemExit at import": lambda t: t.append("delivery.py", "\nraise SystemExit(3)\n"),
    "MemoryError at import": lambda t: t.append("config.py", "\nraise MemoryError\n"),
    "KeyboardInterrupt at import": lambda t: t.append("plugin.py",
                                                      "\nraise KeyboardInterrupt\n"),
}
WORDS = {
    "package missing": "No module named 'secalert_sudo'",
    "current link dangling": "No module named 'secalert_sudo'",
    "module missing": "cannot import name 'rules'",
    "syntax error": "SyntaxError",
    "exception at import": "RuntimeError: boom",
    "SystemExit at import": "SystemExit: 3",
    "MemoryError at import": "MemoryError",
    "KeyboardInterrupt at import": "KeyboardInterrupt",
}


def test_reports_prefer_the_root_socket(tree):
    root = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    root.bind(tree.root_path)
    root.setblocking(False)
    try:
        BREAKS["syntax error"](tree)
        result = tree.run()
        frames = []
        for _unused in range(100):
            try:
                frames.append(root.recv(65536).decode("ascii"))
            except BlockingIOError:
                break
    finally:
        root.close()
    assert result["events"] == []  # nothing went to /dev/log
    kinds = [json.loads(f.partition(": ")[2])["type"] for f in frames]
    assert kinds == ["fault", "status"]


def test_healthy_package_is_the_plugin(tree):
    result = tree.run()
    assert result["broken"] is None and result["module"] == "secalert_sudo.plugin"
    assert result["rc"] == OK


def test_healthy_version_line(tree):
    result = tree.run(argv="sudo -V")
    lines = [text for level, text in result["log"] if level == "info"]
    assert lines == ["secalert sudo audit plugin version 2.0.0\n"]


@pytest.mark.parametrize("fault", sorted(BREAKS))
def test_import_failure_fails_open_and_reports(tree, fault):
    BREAKS[fault](tree)
    result = tree.run()
    assert WORDS[fault] in result["broken"]
    assert "\n" not in result["broken"] and len(result["broken"]) <= 400
    assert result["module"] == "secalert_sudo_audit"
    assert result["rc"] == REJECT  # unloaded for this call: the command runs
    assert not [entry for entry in result["log"] if entry[0] in ("traceback", "sudo")]
    (pri_fault, fault_event), (pri_status, status) = result["events"]
    assert pri_fault == 10 * 8 + 3 and pri_status == 10 * 8 + 2  # authpriv.err, .crit
    assert {k: fault_event[k] for k in ("schema", "type", "where", "user", "host", "pid",
                                        "fail_closed", "severity", "tags")} == {
        "schema": 1, "type": "fault", "where": "import", "user": "alice", "host": "web1",
        "pid": 42, "fail_closed": False, "severity": "error",
        "tags": ["sudo", "secalert-fault"]}
    assert WORDS[fault] in fault_event["error"]
    assert set(status) == {"schema", "type", "state", "time", "host", "where", "reason",
                           "file", "detail", "action", "severity", "tags"}
    assert (status["type"], status["state"], status["where"], status["severity"]) == (
        "status", "off", "entry", "critical")
    assert status["tags"] == ["sudo", "secalert-status"] and status["host"] == "web1"
    assert WORDS[fault] in status["detail"] and "sudo_alerts role" in status["action"]
    if fault in ("syntax error", "exception at import", "SystemExit at import"):
        assert status["file"].startswith(tree.package)


def test_status_off_once_per_outage_then_back_on(tree):
    BREAKS["syntax error"](tree)
    first, second = tree.run(), tree.run()
    assert [e["type"] for _unused, e in first["events"]] == ["fault", "status"]
    assert [e["type"] for _unused, e in second["events"]] == ["fault"]
    assert os.path.exists(tree.state)
    # repaired: the next sudo call imports the package and says alerting is back
    shutil.rmtree(tree.package)
    shutil.copytree(os.path.join(FILES, "secalert_sudo"), tree.package,
                    ignore=shutil.ignore_patterns("__pycache__"))
    back = tree.run()
    assert back["broken"] is None and back["rc"] == OK
    ((pri, status),) = [(p, e) for p, e in back["events"] if e["type"] == "status"]
    assert (pri, status["state"], status["severity"]) == (10 * 8 + 4, "on", "warning")
    assert not os.path.exists(tree.state)
    assert [e["type"] for _unused, e in tree.run()["events"]] == []


def test_fail_closed_denies_with_one_line(tree):
    BREAKS["exception at import"](tree)
    result = tree.run(options="Config=/nonexistent FailClosed=yes")
    assert result["rc"] == ERROR
    said = [text for level, text in result["log"] if level == "error"]
    assert len(said) == 1 and said[0].count("\n") == 1, said
    assert said[0].startswith("secalert: sudo alerting is broken (RuntimeError: boom")
    assert "command denied (FailClosed=yes)" in said[0]
    assert not [entry for entry in result["log"] if entry[0] == "traceback"]
    assert result["events"][0][1]["fail_closed"] is True


@pytest.mark.parametrize("options", ["Config=/nonexistent", "FailClosed=yes"])
def test_sudo_dash_v_says_broken(tree, options):
    BREAKS["SystemExit at import"](tree)
    result = tree.run(argv="sudo -V", options=options)
    assert result["rc"] == OK  # stays loaded for show_version (sudo -V runs nothing)
    (line,) = [text for level, text in result["log"] if level == "info"]
    assert line.startswith("secalert sudo audit plugin version 2.0.0 BROKEN: SystemExit: 3")


def test_package_from_elsewhere_is_refused(tree):
    """A secalert_sudo found anywhere but the version directory is not loaded."""
    shutil.rmtree(os.path.join(tree.base, "sudo-plugin"))
    shutil.copytree(os.path.join(FILES, "secalert_sudo"),
                    os.path.join(tree.base, "elsewhere", "secalert_sudo"))
    os.makedirs(os.path.join(tree.base, "sudo-plugin"))
    os.symlink(os.path.join(tree.base, "sudo-plugin", "v9"),
               os.path.join(tree.base, "sudo-plugin", "current"))
    result = tree.run()
    assert result["rc"] == REJECT  # found nothing in v9 (dangling): broken, not elsewhere
    assert "secalert_sudo" in result["broken"]


def test_check_cli_through_the_entry(tree, tmp_path):
    config = tmp_path / "c.json"
    config.write_text('{"delivery": "direct"}')
    os.chmod(config, 0o600)
    entry = os.path.join(tree.base, "secalert_sudo_audit.py")
    proc = subprocess.run([sys.executable, "-I", entry, "--check", str(config)],
                          capture_output=True, text=True, timeout=60, check=False)
    # root must own the config on a host; here the check says so
    assert proc.returncode == (0 if os.getuid() == 0 else 1), proc.stderr
    BREAKS["syntax error"](tree)
    proc = subprocess.run([sys.executable, "-I", entry, "--check", str(config)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1 and proc.stderr.startswith("broken: SyntaxError")


def test_self_test_of_a_version_directory(tree):
    proc = subprocess.run([sys.executable, "-I", tree.package, "--self-test"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0 and proc.stdout.startswith("ok: secalert_sudo 2.0.0"), proc
    assert os.path.isdir(os.path.join(tree.package, "__pycache__"))
    BREAKS["exception at import"](tree)
    proc = subprocess.run([sys.executable, "-I", tree.package, "--self-test"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1 and "RuntimeError: boom" in proc.stderr


def test_the_io_plugin_comes_from_the_same_entry(tree):
    result = tree.run(io=True)
    assert (result["class"], result["module"]) == ("SecalertIOPlugin", "secalert_sudo.session")
    assert result["rc"] == REJECT  # no config here: no session rules, unloaded
    assert ("info", "secalert sudo session plugin version 2.0.0\n") in [
        tuple(e) for e in result["log"]]


@pytest.mark.parametrize("fault", sorted(BREAKS))
@pytest.mark.parametrize("fail_closed", [False, True])
def test_a_broken_package_unloads_the_io_plugin_quietly(tree, fault, fail_closed):
    """The audit plugin's stand-in reports a broken package; the I/O plugin's unloads
    (the session runs), or with FailClosed=yes refuses, without a traceback."""
    BREAKS[fault](tree)
    result = tree.run(options="Config=/x" + (" FailClosed=yes" if fail_closed else ""), io=True)
    assert result["class"] == "_BrokenIOPlugin" and WORDS[fault] in result["broken"]
    assert result["rc"] == (ERROR if fail_closed else REJECT)
    assert result["events"] == []
    assert not [e for e in result["log"] if e[0] == "traceback"]


def test_a_broken_session_module_alone_is_reported_by_the_io_plugin(tree):
    tree.append("session.py", "\ndef (:\n")
    audit = tree.run()
    assert audit["broken"] is None and audit["rc"] == OK  # the audit plugin is fine
    result = tree.run(io=True)
    assert result["class"] == "_BrokenSessionPlugin" and result["rc"] == REJECT
    ((priority, event),) = result["events"]
    assert (event["type"], event["where"], priority) == ("fault", "import-session", 83)
    assert "SyntaxError" in event["error"] and "session.py" in event["error"]
    (version,) = [e[1] for e in result["log"] if e[0] == "info"]
    assert "session plugin version 2.0.0 BROKEN: SyntaxError" in version
