"""Faults in the plugin package that the entry module must absorb, on real sudo.

sudo loads /usr/libexec/secalert/secalert_sudo_audit.py (the entry module), which imports
the package under sudo-plugin/current. Each fault below breaks the package while a probe
on the host runs `sudo -n true` as root every 0.1 s; alice runs commands too. Nothing may
be denied (the count is printed as a FIGURE line and asserted: the goal is 0), sudo -V
says BROKEN, and auth.log gets the entry's fault event (where "import") and its status
"off" event; after the repair the next sudo call logs status "on".
"""

import json
import time

import pytest
from conftest import record_figure, start_sudo_probe, sudo_probe_result
from secalert_testlib.polling import wait_for
from test_sudo_alerts import CTL, as_user, diagnose, enable, plugin_lines

ROOT = "/usr/libexec/secalert/sudo-plugin"
PACKAGE = ROOT + "/current/secalert_sudo"
PASSWORD = "Al1ce-sudo-pass"  # noqa: S105 - the scenario's test user


def _append(module, text):
    return (f"cp -p {PACKAGE}/{module} /root/pf-{module}.bak && "
            f"printf '%s\\n' {text!r} >> {PACKAGE}/{module}")


def _restore(module):
    return f"mv /root/pf-{module}.bak {PACKAGE}/{module}"


# name: (break it, repair it, words the fault must name)
FAULTS = {
    "syntax error in a package file": (_append("rules.py", "def (:"), _restore("rules.py"),
                                       "SyntaxError"),
    "exception at import": (_append("event.py", "raise RuntimeError('secalert-test')"),
                            _restore("event.py"), "RuntimeError: secalert-test"),
    "SystemExit at import": (_append("delivery.py", "raise SystemExit(7)"),
                             _restore("delivery.py"), "SystemExit: 7"),
    "package missing": (f"mv {ROOT} /root/pf-sudo-plugin.bak",
                        f"mv /root/pf-sudo-plugin.bak {ROOT}", "No module named 'secalert_sudo'"),
}


def moved_mid_import(error):
    """What a sudo call reports that was importing the package when it was moved away
    (seen on a loaded run, and 4 times in 40 rounds of 18 calls around an mv): "ImportError:
    cannot import name 'rules' from 'secalert_sudo' (ROOT/v-.../secalert_sudo/__init__.py)
    (.../config.py, line 6)"."""
    return ((error.startswith("ImportError: cannot import name ") and ROOT + "/" in error)
            or error.startswith("ModuleNotFoundError: No module named 'secalert_sudo."))


def names(error, words):
    """Does a fault's error name this fault (or the package moved mid-import)?"""
    return words in error or moved_mid_import(error)


def unexpected(faults):
    """The fault events that name none of FAULTS and are no package moved mid-import."""
    known = [w for _b, _r, w in FAULTS.values()]
    return [e["error"] for e in faults
            if not any(w in e["error"] for w in known) and not moved_mid_import(e["error"])]


@pytest.fixture(params=["debian12", "debian13"])
def host(request, hosts):
    (name,) = [n for n in hosts if n.endswith(request.param)]
    h = hosts[name]
    assert h.run(CTL + " status").stdout.strip() == "enabled", diagnose(h)
    assert h.file(PACKAGE).is_directory, diagnose(h)
    return h


def figure(**values):
    record_figure(json.dumps(values))


def auth_lines(host):
    return int(host.check_output("wc -l < /var/log/auth.log"))


def entry_events(host, after_line):
    """secalert-sudo fault/status events of the entry module in auth.log after a line."""
    out = host.run("tail -n +%s /var/log/auth.log", str(after_line + 1)).stdout
    events = []
    for line in out.splitlines():
        if "secalert-sudo[" in line and ('"where":"import"' in line
                                         or '"where":"entry"' in line):
            events.append(json.loads(line.split("]: ", 1)[1]))
    return events


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_broken_package_leaves_sudo_working_and_is_reported(host, fault):
    breaker, repair, words = FAULTS[fault]
    first = auth_lines(host)
    unit = "secalert-pf-" + fault.replace(" ", "-")
    start_sudo_probe(host, unit)
    alice_denied = 0
    try:
        assert host.run(breaker).rc == 0
        for _i in range(4):
            run = as_user(host, "sudo -S -p '' /usr/bin/true", PASSWORD)
            alice_denied += run.rc != 0
            assert "Traceback" not in run.stdout + run.stderr, run.stderr
        root = host.run("timeout -k 5 30 sudo -n /usr/bin/true")
        assert root.rc == 0 and "Traceback" not in root.stderr, root.stderr + diagnose(host)
        version = host.run("timeout -k 5 30 sudo -V").stdout
        assert "secalert sudo audit plugin version" in version and " BROKEN: " in version
        assert words in version, version
        events = wait_for(lambda: [e for e in entry_events(host, first)
                                   if e["type"] == "status"], 30)
        assert events, diagnose(host)
        logged = entry_events(host, first)
        faults = [e for e in logged if e["type"] == "fault"]
        # rsyslog may write the previous fault's last events after `first` (a loaded run):
        # every fault names this fault or another of FAULTS, and this one is there (or, for
        # a call that was importing the package when it broke, what that call saw; sudo -V
        # above named this fault)
        assert any(names(e["error"], words) for e in faults), logged
        assert unexpected(faults) == [], logged
        faults = [e for e in faults if names(e["error"], words)]
        assert {e["fail_closed"] for e in faults} == {False}
        (off,) = [e for e in logged if e["type"] == "status"]
        assert (off["state"], off["where"], off["severity"]) == ("off", "entry", "critical")
        assert names(off["detail"], words) and off["action"] and off["reason"], off
        denied, total = sudo_probe_result(host, unit)
        figure(test="plugin fault", fault=fault, host=host.check_output("uname -n"),
               root_denied=denied, root_calls=total, alice_denied=alice_denied,
               alice_calls=4)
        assert denied == 0 and alice_denied == 0, (denied, alice_denied, diagnose(host))
    finally:
        back = auth_lines(host)
        host.run(repair)
    # repaired: the next sudo call (ours, the guard's) imports the package and says so
    assert host.run("timeout -k 5 30 sudo -n true").rc == 0, diagnose(host)
    assert " BROKEN" not in host.run("sudo -V").stdout
    on = wait_for(lambda: [e for e in entry_events(host, back) if e["type"] == "status"], 30)
    assert on and on[0]["state"] == "on" and on[0]["severity"] == "warning", diagnose(host)


def test_fail_closed_denies_with_a_one_line_reason(host):
    """FailClosed=yes: a package that does not import denies, saying why in one line."""
    breaker, repair, words = FAULTS["exception at import"]
    lines = plugin_lines(host)
    try:
        enabled = host.run("%s enable %s", CTL, f"{lines[0]} FailClosed=yes")
        assert enabled.rc == 0, enabled.stderr + diagnose(host)
        assert host.run(breaker).rc == 0
        denied = host.run("timeout -k 5 30 sudo -n /usr/bin/true")
        assert denied.rc != 0, diagnose(host)
        ours = [ln for ln in denied.stderr.splitlines() if ln.startswith("secalert:")]
        assert len(ours) == 1, denied.stderr
        assert ours[0].startswith("secalert: sudo alerting is broken (") and words in ours[0]
        assert ours[0].endswith("command denied (FailClosed=yes)"), ours
        assert "Traceback" not in denied.stderr
        user = as_user(host, "sudo -S -p '' /usr/bin/true", PASSWORD)
        assert user.rc != 0 and "secalert: sudo alerting is broken" in user.stderr
    finally:
        host.run(repair)
        time.sleep(0.2)
        restored = enable(host, lines)
    assert restored.rc == 0, restored.stderr + diagnose(host)
    assert host.run("timeout -k 5 30 sudo -n true").rc == 0


def test_the_package_is_one_version_behind_a_symlink(host):
    """current -> v-<digest>; at most the live and the previous version are kept."""
    link = host.file(ROOT + "/current")
    assert link.is_symlink and link.linked_to.startswith(ROOT + "/v-"), link.linked_to
    versions = host.check_output("find %s -mindepth 1 -maxdepth 1 -type d -name 'v-*'",
                                 ROOT).split()
    assert link.linked_to in versions and len(versions) <= 2, versions
    # every file of the live version is root-owned and not writable by others
    unsafe = host.check_output("find -H %s \\( ! -user 0 -o -perm /022 \\) -printf '%%p\\n'",
                               link.linked_to)
    assert unsafe == "", unsafe
    # the self-test the role runs before the swap passes on the live version
    check = host.run("/usr/bin/python3 -I %s/secalert_sudo --self-test --require-root",
                     link.linked_to)
    assert check.rc == 0 and check.stdout.startswith("ok: secalert_sudo"), check.stderr
