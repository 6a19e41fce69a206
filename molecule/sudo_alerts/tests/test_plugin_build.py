"""What secalert's patches to python_plugin.so promise, on real sudo (both Debians).

python_plugin-fast-start.patch runs the first Python plugin in the main interpreter and
skips the interpreters' teardown when sudo exits (docs/sudo-plugin-build.md). A second
Python plugin must still get an interpreter of its own, and what a plugin can see of a
teardown must still happen: its non-daemon threads finish, its atexit functions run, its
buffered standard output is flushed. python_plugin-same-module.patch lets the plugins of
one module (an audit and an I/O class, as secalert's session rules have) share that
module's interpreter, and no other module's.

The probe plugin is a second python_audit line after secalert's, added for one sudo call
with the guard's path unit stopped (the guard keeps lines that are not ours as they are).
"""

import test_guard
from test_sudo_alerts import diagnose, guard_idle, sudo_works

host = test_guard.host  # the fixture: each Debian, with the plugin enabled

SO = "/usr/libexec/secalert/python_plugin.so"
PROBE_DIR = "/root/secalert-probe"
OUT = "/run/secalert-probe"

PROBE = f'''
import atexit
import sys
import threading
import time

import sudo


def _late():
    time.sleep(0.3)
    with open("{OUT}/thread", "w") as f:
        f.write("finished\\n")


def _at_exit():
    with open("{OUT}/atexit", "w") as f:
        f.write("ran\\n")


class Probe(sudo.Plugin):
    def __init__(self, version, plugin_options, **kwargs):
        super().__init__(version=version, plugin_options=plugin_options, **kwargs)
        ours = sorted(m for m in sys.modules if m.startswith("secalert_sudo"))
        with open("{OUT}/modules", "w") as f:
            f.write(",".join(ours) + "\\n")
        atexit.register(_at_exit)
        threading.Thread(target=_late).start()
        sys.stdout.write("probe: buffered stdout\\n")
'''


# Two plugin classes in one module: the I/O one says whether it shares the audit one's
# interpreter (one import of the module, the audit class's mark seen), and what else is
# loaded there.
PAIR = f'''
import sys

import sudo

SEEN = []
with open("{OUT}/pair-imports", "a") as f:
    f.write("imported\\n")


class PairAudit(sudo.Plugin):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        SEEN.append("audit")


class PairIO(sudo.Plugin):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        ours = sorted(m for m in sys.modules if m.startswith("secalert_sudo"))
        with open("{OUT}/pair-io", "w") as f:
            f.write(",".join(SEEN) + ";" + ",".join(ours) + "\\n")

    def open(self, argv, command_info):
        return sudo.RC.OK

    def close(self, exit_status, error):
        pass
'''


def run_with_probe(host, name, source, lines):
    """Write the probe module NAME, append LINES (plugin lines loading it) to sudo.conf for
    one `sudo -n /usr/bin/true`, put sudo.conf back; the guard's path unit is stopped
    meanwhile (it would see a changed sudo.conf). Returns that sudo call."""
    host.run(f"rm -rf {OUT} && mkdir -p {OUT} {PROBE_DIR} && chmod 0700 {PROBE_DIR}")
    assert host.run(f"printf %%s %s > {PROBE_DIR}/{name}.py", source).rc == 0
    assert host.run("systemctl stop secalert-sudo-guard.path").rc == 0
    try:
        assert guard_idle(host)
        assert host.run("cp -p /etc/sudo.conf /root/sudo.conf.probe && "
                        "printf '%%s\\n' %s >> /etc/sudo.conf", "\n".join(lines)).rc == 0
        run = host.run("sudo -n /usr/bin/true")
    finally:
        host.run("cp -p /root/sudo.conf.probe /etc/sudo.conf")
        host.run("systemctl start secalert-sudo-guard.path")
    assert sudo_works(host), diagnose(host)
    assert run.rc == 0, run.stderr
    return run


def test_a_second_plugin_is_isolated_and_sees_a_whole_exit(host):
    run = run_with_probe(host, "secalert_probe", PROBE, [
        f"Plugin python_audit {SO} ModulePath={PROBE_DIR}/secalert_probe.py ClassName=Probe"])
    # secalert's plugin (first line) ran in the main interpreter; the probe's has none
    # of its modules.
    assert host.file(f"{OUT}/modules").content_string == "\n"
    assert host.file(f"{OUT}/thread").content_string == "finished\n"
    assert host.file(f"{OUT}/atexit").content_string == "ran\n"
    assert "probe: buffered stdout" in run.stdout


def test_plugins_of_one_module_share_its_interpreter_and_no_other(host):
    module = f"{SO} ModulePath={PROBE_DIR}/secalert_pair.py"
    run_with_probe(host, "secalert_pair", PAIR, [
        f"Plugin python_audit {module} ClassName=PairAudit",
        f"Plugin python_io {module} ClassName=PairIO"])
    # imported once, the audit class's mark seen by the I/O class; secalert's own
    # plugins (the scenario's audit and I/O lines, one module) are not in there
    assert host.file(f"{OUT}/pair-imports").content_string == "imported\n"
    assert host.file(f"{OUT}/pair-io").content_string == "audit;\n"
