"""sudo_alerts on real sudo: events, direct alerts, faults that must leave sudo working.

Each test that breaks something restores it in a ``finally`` and, on failure, shows the
guard's and the plugin's journal, the rendered config and the plugin line of sudo.conf.
"""

import json
import shlex
import time

import pytest
from secalert_testlib.digests import counted_events
from secalert_testlib.polling import wait_for

MODULE = "/usr/libexec/secalert/secalert_sudo_audit.py"
CONFIG = "/etc/secalert/sudo_alerts.json"
CTL = "/usr/libexec/secalert/sudo-alerts-ctl"
MARK = "#secalert-disabled# "
IO_MARK = "#secalert-keeps-sudoers_io"
# The entry module imports the package from the version directory `current` points to.
PACKAGE = "/usr/libexec/secalert/sudo-plugin/current/secalert_sudo"
LOADED = [
    "/", "/usr", "/usr/libexec", "/usr/libexec/secalert", MODULE,
    "/usr/libexec/secalert/python_plugin.so", CTL, "/etc", "/etc/sudo.conf",
    "/etc/secalert", CONFIG, "/run/secalert",
    "/usr/libexec/secalert/sudo-plugin", "/usr/libexec/secalert/sudo-plugin/current/",
    PACKAGE, PACKAGE + "/__pycache__",
] + [f"{PACKAGE}/{name}.py" for name in ("__init__", "__main__", "cli", "config", "delivery",
                                         "event", "plugin", "rules", "session")]


@pytest.fixture(params=["debian12", "debian13"])
def host(request, hosts):
    (name,) = [n for n in hosts if n.endswith(request.param)]
    return hosts[name]


def diagnose(host):
    """What a person would look at when a test fails here."""
    out = host.run(
        "journalctl --no-pager -n 60 -t secalert-sudo -t secalert-sudo-guard "
        "-t secalert-send -t sudo -u secalert-sudo-guard.service; "
        "echo '--- %s'; cat %s; echo '--- sudo.conf'; "
        "grep -n -e python_ -e sudoers_io /etc/sudo.conf; "
        "echo '--- status'; %s status", CONFIG, CONFIG, CTL)
    return "\n" + out.stdout + out.stderr


def as_user(host, command, password, user="alice"):
    """Run ``command`` (a shell string) as ``user``, feeding ``password`` to sudo -S."""
    inner = f"printf '%s\\n' {shlex.quote(password)} | timeout -k 5 60 {command}"
    return host.run("su - %s -c %s", user, inner)


def auth_events(host, marker):
    """secalert-sudo events in /var/log/auth.log (written by rsyslog) that mention marker."""
    out = host.run("grep -F -- %s /var/log/auth.log", marker).stdout
    events = []
    for line in out.splitlines():
        if "secalert-sudo[" in line:
            events.append(json.loads(line.split("]: ", 1)[1]))
    return events


def wait_events(host, marker, count=1, timeout=30):
    return wait_for(lambda: len(auth_events(host, marker)) >= count and auth_events(
        host, marker), timeout) or []


def sudo_works(host):
    root = host.run("timeout -k 5 30 sudo -n true")
    user = as_user(host, "sudo -S -p '' /usr/bin/true", "Al1ce-sudo-pass")
    return root.rc == 0 and user.rc == 0


def guard_idle(host):
    """Wait until no run of the guard unit is in progress (bounded)."""
    return wait_for(lambda: host.run("systemctl is-active secalert-sudo-guard.service")
                    .stdout.strip() not in ("activating", "deactivating", "reloading"), 30)


def plugin_lines(host):
    """Our lines of sudo.conf, active or commented out by the guard, as `sudo-alerts-ctl
    enable` takes them: the audit plugin's, then with session rules (this scenario) the
    I/O plugin's and sudoers_io's."""
    text = host.file("/etc/sudo.conf").content_string
    return [line.removeprefix(MARK) for line in text.splitlines()
            if f"ModulePath={MODULE}" in line.split() or line.endswith(IO_MARK)]


def enable(host, lines):
    return host.run(CTL + " enable" + " %s" * len(lines), *lines)


def reenable(host):
    """Put the plugin lines back the way the role does (proven, or rolled back)."""
    return enable(host, plugin_lines(host))


@pytest.mark.parametrize("path", LOADED)
def test_what_sudo_loads_is_root_owned_and_not_writable_by_others(host, path):
    f = host.file(path)
    assert f.exists, path
    assert f.uid == 0 and f.gid == 0, (path, f.user, f.group)
    assert not f.mode & 0o022, (path, oct(f.mode))


def test_plugin_is_enabled_and_loaded(host):
    assert host.run(CTL + " status").stdout.strip() == "enabled", diagnose(host)
    version = host.run("sudo -V")
    assert "secalert sudo audit plugin version" in version.stdout, diagnose(host)
    assert host.file(CONFIG).mode == 0o600
    built = host.file("/usr/libexec/secalert/python_plugin.key").content_string
    sudo_version = host.run("dpkg-query -W -f='${Version}' sudo").stdout
    assert f"sudo_version={sudo_version}\n" in built
    # the build's compiler was purged again
    assert host.run("command -v gcc cc make").rc != 0


def test_accepted_command_is_logged(host, marker):
    run = as_user(host, f"sudo -S -p '' /usr/bin/echo {marker}", "Al1ce-sudo-pass")
    assert run.rc == 0, run.stderr
    events = wait_events(host, marker)
    assert [(e["decision"], e["user"], e["command"], e["rule"]) for e in events] == [
        ("accept", "alice", "/usr/bin/echo", "routine")], diagnose(host)
    assert events[0]["args"] == [marker] and events[0]["runas_user"] == "root"


def test_rejected_command_is_logged(host, marker):
    run = as_user(host, f"sudo -S -p '' /usr/bin/cat /etc/shadow {marker}", "Al1ce-sudo-pass")
    assert run.rc != 0
    events = wait_events(host, marker)
    assert [(e["decision"], e["user"], e["rule"], e["severity"]) for e in events] == [
        ("reject", "alice", "denied", "critical")], diagnose(host)
    assert "not allowed" in events[0]["reason"]


def test_wrong_password_is_logged(host, marker):
    run = as_user(host, f"sudo -S -p '' /usr/bin/echo {marker}", "wrong\nwrong\nwrong")
    assert run.rc != 0
    events = wait_events(host, marker)
    assert [(e["decision"], e["user"], e["rule"]) for e in events] == [
        ("reject", "alice", "denied")], diagnose(host)
    assert "password" in events[0]["reason"] or "authentication" in events[0]["reason"]


def test_direct_mode_delivers_to_the_receiver(host, receiver, marker):
    run = as_user(host, f"sudo -S -p '' /bin/bash -c ': {marker}'", "Al1ce-sudo-pass")
    assert run.rc == 0, run.stderr
    messages = receiver.messages(contains=marker, wait=30, count=1)
    assert len(messages) == 1, diagnose(host)
    assert messages[0]["title"].startswith("[warning] sudo: alice ran /bin/bash as root")
    assert wait_events(host, marker), "the syslog copy is missing" + diagnose(host)


def test_a_sudo_rules_tags_choose_its_targets_in_direct_mode(host, receiver, marker):
    """Every target that carries any of the event's tags, as in syslog mode
    (syslog_ng_standalone's test_tags.py, syslog_ng_relay): the refusal (rule denied:
    sudo, sudo-denied) reaches /sudo and /denied, the command run (rule shell: sudo,
    sudo-shell) /sudo only."""
    assert as_user(host, f"sudo -S -p '' /usr/bin/cat /etc/shadow {marker}",
                   "Al1ce-sudo-pass").rc != 0
    assert as_user(host, f"sudo -S -p '' /bin/bash -c ': {marker}'", "Al1ce-sudo-pass").rc == 0
    receiver.messages(contains=marker, wait=30, count=3)
    time.sleep(3)  # anything else these two raise is in by now
    got = receiver.messages(contains=marker)
    where = sorted((m["path"], "refused" if "/etc/shadow" in m["title"] + (m["body"] or "")
                    else "run") for m in got)
    assert where == [("/denied", "refused"), ("/sudo", "refused"), ("/sudo", "run")], (
        got, diagnose(host))


def test_a_burst_costs_one_sender_and_loses_nothing(host, receiver, marker):
    script = (f"for i in $(seq 1 25); do sudo -n /bin/bash -c ': {marker} '$i; done")
    assert host.run("bash -c %s", script).rc == 0
    messages = wait_for(lambda: _burst_total(receiver, marker) >= 25 and receiver.messages(
        contains=marker), 60)
    assert _burst_total(receiver, marker) == 25, (messages, diagnose(host))
    assert len(messages) < 25, "no digest: one notification per event"


def _burst_total(receiver, marker):
    # a digest "[severity] sudo: N events on HOST (...)" counts N
    return counted_events(receiver.messages(contains=marker))


FAULTS = {
    # name: (break it, repair it). test_guard.py has these and more, with their alerts.
    "module deleted": (f"mv {MODULE} /root/module.bak", f"mv /root/module.bak {MODULE}"),
    "module syntax error": (f"cp -p {MODULE} /root/module.bak && echo 'def (:' >> {MODULE}",
                            f"mv /root/module.bak {MODULE}"),
}


@pytest.mark.parametrize("trigger", ["dpkg run", "role run"])
def test_without_the_path_unit_dpkg_or_the_role_disables_a_broken_plugin(host, trigger):
    """A package upgrade (dpkg post-invoke hook) or the next role run catches it too."""
    lines = plugin_lines(host)
    try:
        # No guard unit run, and no recheck armed by an earlier one, may come first.
        assert host.run("systemctl stop secalert-sudo-guard.path").rc == 0
        assert guard_idle(host)
        assert host.run("systemctl stop secalert-sudo-guard-recheck.timer "
                        "secalert-sudo-guard-recheck.service").rc == 0
        assert host.run(FAULTS["module syntax error"][0]).rc == 0
        assert host.run("timeout -k 5 30 sudo -n true").rc != 0, "fault not injected"
        if trigger == "dpkg run":
            assert host.run("dpkg --configure -a").rc == 0
        else:  # what the role's enable task runs
            run = enable(host, lines)
            assert run.rc == 1 and "NOT enabled" in run.stderr, run.stderr
        assert sudo_works(host), diagnose(host)
        assert host.run(CTL + " status").stdout.strip() == "disabled", diagnose(host)
    finally:
        host.run(FAULTS["module syntax error"][1])
        host.run("systemctl start secalert-sudo-guard.path")
        enabled = reenable(host)
    assert enabled.rc == 0, enabled.stderr + diagnose(host)


def test_fail_closed_denies_and_the_guard_leaves_it(host):
    """sudo_alerts_fail_closed: broken alerting denies commands, and the guard keeps it so."""
    lines = plugin_lines(host)
    closed = f"{lines[0]} FailClosed=yes"
    try:
        enabled = host.run("%s enable %s", CTL, closed)
        assert enabled.rc == 0, enabled.stderr + diagnose(host)
        assert sudo_works(host)  # alerting works: nothing is denied
        assert host.run(f"cp -p {CONFIG} /root/config.bak && echo '{{x' > {CONFIG}").rc == 0
        # the same fault leaves sudo working without FailClosed (test_config_faults_...)
        assert host.run("timeout -k 5 30 sudo -n true").rc != 0, diagnose(host)
        guard = host.run(CTL + " guard --from test")
        assert guard.rc == 1, guard.stderr
        assert "has FailClosed=yes, so it stays" in guard.stderr, guard.stderr
        assert host.run(CTL + " status").stdout.strip() == "enabled"
        assert host.run("timeout -k 5 30 sudo -n true").rc != 0
    finally:
        host.run(f"test -f /root/config.bak && mv /root/config.bak {CONFIG}")
        restored = enable(host, lines)
    assert restored.rc == 0, restored.stderr + diagnose(host)
    assert sudo_works(host)


def test_enable_rolls_back_a_line_that_breaks_sudo(host):
    before = host.file("/etc/sudo.conf").content_string
    line = [ln for ln in before.splitlines() if ln.startswith("Plugin python_audit")][0]
    bad = line.replace("ClassName=SecalertAuditPlugin", "ClassName=NoSuchClass")
    run = host.run("%s enable %s", CTL, bad)
    assert run.rc == 1 and "NOT enabled" in run.stderr, run.stderr
    assert "previous /etc/sudo.conf is restored" in run.stderr
    assert host.file("/etc/sudo.conf").content_string == before
    assert sudo_works(host)


@pytest.mark.parametrize("fault, breaker, repair", [
    ("config missing", f"mv {CONFIG} /root/config.bak", f"mv /root/config.bak {CONFIG}"),
    ("config garbage", f"cp -p {CONFIG} /root/config.bak && echo '{{x' > {CONFIG}",
     f"mv /root/config.bak {CONFIG}"),
    ("config not root-owned", f"chown alice {CONFIG}", f"chown root {CONFIG}"),
])
def test_config_faults_leave_sudo_working(host, marker, fault, breaker, repair):
    before = _config_faults(host)
    try:
        assert host.run(breaker).rc == 0
        assert sudo_works(host), diagnose(host)
        run = as_user(host, f"sudo -S -p '' /usr/bin/echo {marker}", "Al1ce-sudo-pass")
        assert run.rc == 0 and "Traceback" not in run.stderr + run.stdout
        # a fault event, then the command's event from the built-in rules
        assert wait_events(host, marker), diagnose(host)
        assert _config_faults(host) > before, diagnose(host)
    finally:
        host.run(repair)


def _config_faults(host):
    out = host.run("grep -c '\"type\":\"fault\",.*\"where\":\"config\"' /var/log/auth.log")
    return int(out.stdout.strip() or 0)


def test_apprise_missing_leaves_sudo_working_and_is_logged(host, marker):
    purelib = host.run("ls -d /opt/secalert/venv/lib/python3.*/site-packages").stdout.strip()
    try:
        assert host.run("mv %s/apprise /root/apprise.bak", purelib).rc == 0
        run = as_user(host, f"sudo -S -p '' /bin/bash -c ': {marker}'", "Al1ce-sudo-pass")
        assert run.rc == 0, run.stderr
        logged = wait_for(lambda: "apprise is not importable" in host.run(
            "journalctl --no-pager -t secalert-send --since -2min").stdout, 30)
        assert logged, diagnose(host)
    finally:
        host.run("mv /root/apprise.bak %s/apprise", purelib)


def test_syslog_daemon_stopped_leaves_sudo_working(host, receiver, marker):
    try:
        assert host.run("systemctl stop rsyslog.service syslog.socket").rc == 0
        assert sudo_works(host), diagnose(host)
        run = as_user(host, f"sudo -S -p '' /bin/bash -c ': {marker}'", "Al1ce-sudo-pass")
        assert run.rc == 0
        # direct delivery does not need the syslog daemon
        assert receiver.messages(contains=marker, wait=30, count=1), diagnose(host)
    finally:
        host.run("systemctl start rsyslog.service")


def test_guard_reports_a_stale_plugin(host):
    key = "/usr/libexec/secalert/python_plugin.key"
    try:
        host.run("cp -p %s /root/key.bak && sed -i 's/^sudo_version=.*/sudo_version=0.0-old/' %s",
                 key, key)
        assert host.run(CTL + " guard --from test").rc == 0
        log = host.run("journalctl --no-pager -t secalert-sudo-guard").stdout
        assert "was built for sudo 0.0-old" in log, diagnose(host)
        assert host.run(CTL + " status").stdout.strip() == "enabled"
    finally:
        host.run("mv /root/key.bak %s", key)
