"""The guard on real sudo: faults it repairs, the alerts it sends, bursts, users' locks.

Each fault is injected while a probe on the host runs `sudo -n true` every 0.1 s; the
test then waits (bounded) until sudo works for root and alice, checks the guard's status
event in auth.log (what the event carries) and the "sudo alerts OFF on <host>" alert at
the receiver, repairs the fault, re-enables the plugin and waits for "back on". The
figures (sudo calls denied while the fault was in place, seconds until the OFF alert)
are recorded (conftest.record_figure: printed, and listed at the end of `make test`):
they are reported, never asserted.
"""

import json
import shlex
import time

import pytest
from conftest import record_figure, start_sudo_probe, sudo_probe_result
from secalert_testlib.polling import wait_for
from test_sudo_alerts import (
    CTL,
    MARK,
    MODULE,
    diagnose,
    guard_idle,
    plugin_lines,
    reenable,
    sudo_works,
)

SO = "/usr/libexec/secalert/python_plugin.so"
PACKAGE = "/usr/libexec/secalert/sudo-plugin/current/secalert_sudo"
UNIT = "secalert-sudo-guard"


@pytest.fixture(params=["debian12", "debian13"])
def host(request, hosts):
    (name,) = [n for n in hosts if n.endswith(request.param)]
    h = hosts[name]
    assert h.run(CTL + " status").stdout.strip() == "enabled", diagnose(h)
    return h


def figure(test, **values):
    record_figure(json.dumps({"test": test, **values}))


def nodename(host):
    return host.check_output("uname -n")


def auth_lines(host):
    return int(host.check_output("wc -l < /var/log/auth.log"))


def status_events(host, after_line):
    """The guard's status events logged to auth.log after line ``after_line``."""
    out = host.run("tail -n +%s /var/log/auth.log", str(after_line + 1)).stdout
    events = []
    for line in out.splitlines():
        if "secalert-sudo[" in line and '"type":"status"' in line:
            event = json.loads(line.split("]: ", 1)[1])
            if event.get("where") == "guard":
                events.append(event)
    return events


class Alerts:
    """Counts the receiver's "sudo alerts OFF/back ON on <host>" alerts of one host."""

    def __init__(self, receiver, host):
        self.receiver = receiver
        self.off_text = f"sudo alerts OFF on {nodename(host)}"
        self.on_text = f"sudo alerts back ON on {nodename(host)}"
        self.off_before = len(receiver.messages(contains=self.off_text))
        self.on_before = len(receiver.messages(contains=self.on_text))

    def wait_off(self, timeout=30):
        found = self.receiver.messages(contains=self.off_text, wait=timeout,
                                       count=self.off_before + 1)
        return found[self.off_before:]

    def wait_on(self, timeout=30):
        found = self.receiver.messages(contains=self.on_text, wait=timeout,
                                       count=self.on_before + 1)
        return found[self.on_before:]


def restore(host, *commands):
    """Undo a test's fault (each command, whatever the others did), let the guard settle
    and put the plugin line back; returns the enable run."""
    for command in commands:
        host.run(command)
    guard_idle(host)
    return reenable(host)


# name: (break it, repair it, the file the event must name, sudo.conf afterwards)
FAULTS = {
    "module deleted": (f"mv {MODULE} /root/module.bak", f"mv /root/module.bak {MODULE}",
                       MODULE, "disabled"),
    "module syntax error": (f"cp -p {MODULE} /root/module.bak && echo 'def (:' >> {MODULE}",
                            f"mv /root/module.bak {MODULE}", MODULE, "disabled"),
    "plugin .so truncated": (f"cp -p {SO} /root/so.bak && : > {SO}",
                             f"cp /root/so.bak {SO} && rm /root/so.bak", SO, "disabled"),
    "plugin .so garbage": (f"cp -p {SO} /root/so.bak && head -c 65536 /dev/urandom > {SO}.new "
                           f"&& chmod 0644 {SO}.new && mv {SO}.new {SO}",
                           f"mv /root/so.bak {SO}", SO, "disabled"),
    # The entry module catches it: sudo -V says BROKEN, sudo works, the line stays.
    "package syntax error": (f"cp -p {PACKAGE}/plugin.py /root/plugin.bak && "
                             f"echo 'def (:' >> {PACKAGE}/plugin.py",
                             f"mv /root/plugin.bak {PACKAGE}/plugin.py", None, "enabled"),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_fault_is_repaired_alerted_and_back_on_is_alerted(host, receiver, fault):
    breaker, repair, culprit, after = FAULTS[fault]
    if fault.startswith("package") and not host.file(PACKAGE).is_directory:
        pytest.skip(f"no {PACKAGE} on this host (the package layout is not installed)")
    guard_idle(host)
    alerts = Alerts(receiver, host)
    first = auth_lines(host)
    probe = "secalert-probe-" + fault.replace(" ", "-").replace(".", "")
    start_sudo_probe(host, probe)
    time.sleep(0.5)
    t0 = time.time()
    try:
        assert host.run(breaker).rc == 0
        assert wait_for(lambda: sudo_works(host), 30), "sudo still broken" + diagnose(host)
        events = wait_for(lambda: status_events(host, first), 30)
        assert events and events[0]["state"] == "off", (events, diagnose(host))
        event = events[0]
        # the notification of this event, however it is rendered: it carries its time
        delivered = receiver.messages(contains=event["time"], wait=30, count=1)
        assert event["host"] == nodename(host) and event["severity"] == "critical"
        assert event["reason"] and event["action"], event
        if culprit:
            assert event["file"] == culprit, event
        assert event["detail"], event
        assert host.run(CTL + " status").stdout.strip() == after, diagnose(host)
        denied, total = sudo_probe_result(host, probe)
        figure(fault, host=nodename(host), denied=denied, probes=total,
               alert_s=round(delivered[0]["time"] - t0, 2) if delivered else None)
        assert delivered, f"the status event never reached the receiver: {event}"
        assert event["reason"][:60] in delivered[0]["body"], delivered[0]
    finally:
        enabled = restore(host, repair)
    assert enabled.rc == 0, enabled.stderr + diagnose(host)
    back = wait_for(lambda: [e for e in status_events(host, first) if e["state"] == "on"], 10)
    assert back and back[-1]["severity"] == "warning", diagnose(host)
    assert receiver.messages(contains=back[-1]["time"], wait=30, count=1), back
    # how they read at the receiver (the sender's rendering of status events)
    off, on = alerts.wait_off(timeout=5), alerts.wait_on(timeout=5)
    assert off, f"no 'sudo alerts OFF' alert at the receiver: {delivered[0]['title']!r}"
    assert on, "no 'sudo alerts back ON' alert at the receiver"


def test_a_burst_of_changes_leaves_the_guard_alive(host):
    """30 rapid changes to the watched files (more than systemd's default start limit),
    then a broken python_plugin.so: sudo works again (time reported, not asserted)."""
    guard_idle(host)
    touch = f"touch {MODULE} /etc/sudo.conf {SO}"
    try:
        for _i in range(30):
            assert host.run(touch).rc == 0
            time.sleep(0.15)
        assert host.run("systemctl is-failed --quiet %s.path", UNIT).rc != 0, diagnose(host)
        assert host.run(FAULTS["plugin .so garbage"][0]).rc == 0
        t0 = time.monotonic()
        works = wait_for(lambda: host.run("timeout -k 2 10 sudo -n true").rc == 0, 30,
                         interval=0.1)
        elapsed = time.monotonic() - t0
        figure("burst then .so garbage", host=nodename(host), sudo_back_s=round(elapsed, 2))
        assert works, "sudo still broken after a burst" + diagnose(host) + host.run(
            "systemctl status --no-pager %s.path %s.service", UNIT, UNIT).stdout
        assert sudo_works(host)
        state = host.run("systemctl show -p ActiveState,Result %s.path", UNIT).stdout
        assert "ActiveState=active" in state, state
    finally:
        enabled = restore(host, FAULTS["plugin .so garbage"][1])
    assert enabled.rc == 0, enabled.stderr + diagnose(host)


def test_a_change_in_the_last_moment_of_a_guard_run_is_still_checked(host):
    """A change after the guard's last look and before its unit has ended reaches no path
    unit (it watches again only once its service is inactive). A drop-in widens that
    moment to a second and breaks python_plugin.so in it, once: the recheck that the run
    armed finds it (without it, sudo stayed broken until the 15-minute timer)."""
    dropin = f"/run/systemd/system/{UNIT}.service.d"
    flag = "/run/secalert-test-late-fault"
    guard_idle(host)
    try:
        # Fault injection only: a late step of the guard unit, after its ExecStart.
        breaks = FAULTS["plugin .so garbage"][0]
        script = f"[ -e {flag} ] || exit 0\nrm -f {flag}\nsleep 1\n{breaks}"
        unit = "[Service]\nExecStartPost=/bin/sh /root/late-fault.sh"
        assert host.run("printf '%%s\\n' %s > /root/late-fault.sh && mkdir -p %s && "
                        "printf '%%s\\n' %s > %s/late.conf && systemctl daemon-reload && "
                        "touch %s", script, dropin, unit, dropin, flag).rc == 0
        assert host.run("touch %s", MODULE).rc == 0  # the path unit starts the guard
        assert wait_for(lambda: host.run("test -e %s", flag).rc != 0, 30), diagnose(host)
        t0 = time.monotonic()
        assert guard_idle(host)
        assert host.run("cmp -s /root/so.bak %s", SO).rc != 0, "fault not injected"
        works = wait_for(lambda: host.run("timeout -k 2 10 sudo -n true").rc == 0, 30,
                         interval=0.1)
        figure("change in a guard run's last moment", host=nodename(host),
               sudo_back_s=round(time.monotonic() - t0, 2))
        assert works, "sudo still broken after the guard run" + diagnose(host) + host.run(
            "systemctl status --no-pager %s-recheck.timer %s-recheck.service", UNIT, UNIT).stdout
        assert host.run(CTL + " status").stdout.strip() == "disabled", diagnose(host)
    finally:
        enabled = restore(host,
                          f"rm -rf {dropin} /root/late-fault.sh {flag}; systemctl daemon-reload",
                          f"test -f /root/so.bak && mv /root/so.bak {SO}")
    assert enabled.rc == 0, enabled.stderr + diagnose(host)


def test_a_users_lock_in_run_lock_does_not_block_the_guard(host):
    """alice holds flocks in the world-writable /run/lock (the guard's old lock among
    them): the guard, disable and enable still run at once and repair a fault."""
    holder = "secalert-alice-locks"
    hold = ("flock /run/lock/secalert-sudo-alerts.lock flock /run/lock/secalert-guard.lock "
            "sleep 120")
    lines = plugin_lines(host)
    mode = host.check_output("stat -c %%a /run/lock")
    try:
        # what Debian's tmpfiles (legacy.conf) makes it; some containers have 0755
        assert host.run("chmod 1777 /run/lock").rc == 0
        # TimeoutStopSec: stopping it in the end took systemd's 90 s default on Debian 12
        assert host.run("systemd-run --quiet --collect --uid alice --unit %s "
                        "--property TimeoutStopSec=5 sh -c %s", holder, hold).rc == 0
        assert wait_for(lambda: host.run("test -e /run/lock/secalert-guard.lock").rc == 0, 10)
        for args in (["guard", "--from", "test"], ["disable", "test"], ["enable", *lines]):
            t0 = time.monotonic()
            run = host.run("timeout 60 " + " ".join(shlex.quote(a) for a in [CTL, *args]))
            figure("alice holds /run/lock", host=nodename(host), command=args[0],
                   seconds=round(time.monotonic() - t0, 2))
            assert run.rc == 0, (args, run.rc, run.stderr)
        assert host.run(FAULTS["module syntax error"][0]).rc == 0
        assert wait_for(lambda: sudo_works(host), 30), diagnose(host)
        assert host.run(CTL + " status").stdout.strip() == "disabled"
    finally:
        enabled = restore(host, f"systemctl stop {holder}; chmod {mode} /run/lock",
                          f"test -f /root/module.bak && mv /root/module.bak {MODULE}")
    assert enabled.rc == 0, enabled.stderr + diagnose(host)


def test_the_timer_restarts_a_failed_path_unit_and_alerts(host, receiver):
    """A path unit in "failed" watches nothing: the next timer run restarts it."""
    dropin = f"/run/systemd/system/{UNIT}.service.d"
    alerts = Alerts(receiver, host)
    first = auth_lines(host)
    try:
        # Fault injection only: systemd's default start limit, tightened.
        host.run("mkdir -p %s && printf '[Unit]\\nStartLimitIntervalSec=60\\n"
                 "StartLimitBurst=1\\n' > %s/limit.conf && systemctl daemon-reload",
                 dropin, dropin)
        # Each touch once the guard service has ended (a trigger while it is still
        # activating starts nothing): the second start within the minute hits the limit.
        assert wait_for(lambda: host.run(
            "timeout 10 sh -c 'while [ \"$(systemctl show -p ActiveState --value %s.service)\""
            " = activating ]; do sleep 0.1; done'; touch %s; sleep 0.3;"
            " systemctl is-failed --quiet %s.path",
            UNIT, MODULE, UNIT).rc == 0, 30), diagnose(host) + host.run(
                "systemctl status --no-pager %s.path %s.service", UNIT, UNIT).stdout
        host.run("rm -rf %s && systemctl daemon-reload && systemctl reset-failed %s.service",
                 dropin, UNIT)
        assert host.run("systemctl start %s.service", UNIT).rc == 0  # what the timer does
        assert host.run("systemctl is-active %s.path", UNIT).stdout.strip() == "active"
        events = status_events(host, first)
        # The recheck that a guard run armed may find the failed path unit first; under
        # load the loop above may even see it fail twice. Each time: off, then on.
        states = [e["state"] for e in events]
        assert states and states == ["off", "on"] * (len(states) // 2), events
        assert f"{UNIT}.path had failed" in events[0]["reason"], events
        for event in events:
            assert receiver.messages(contains=event["time"], wait=30, count=1), event
    finally:
        host.run("rm -rf %s; systemctl daemon-reload; systemctl reset-failed %s.service "
                 "%s.path; systemctl start %s.path", dropin, UNIT, UNIT, UNIT)
    assert alerts.wait_off(), "no 'sudo alerts OFF' alert at the receiver"
    assert alerts.wait_on(), "no 'sudo alerts back ON' alert at the receiver"


def test_the_guard_units_have_no_start_or_trigger_limit(host):
    service = host.run("systemctl show -p StartLimitIntervalUSec %s.service", UNIT).stdout
    path = host.run("systemctl show -p TriggerLimitIntervalUSec %s.path", UNIT).stdout
    assert service.strip() == "StartLimitIntervalUSec=0", service
    assert path.strip() == "TriggerLimitIntervalUSec=0", path
    recheck = host.run("systemctl show -p StartLimitIntervalUSec %s-recheck.service", UNIT)
    assert recheck.stdout.strip() == "StartLimitIntervalUSec=0", recheck.stdout
    lock = host.file("/run/secalert")
    assert (lock.uid, lock.mode) == (0, 0o700)
    settings = host.file("/etc/secalert/sudo-alerts-guard.conf")
    assert (settings.uid, settings.mode) == (0, 0o600)
    assert "DELIVERY=direct\n" in settings.content_string
    assert MARK not in host.file("/etc/sudo.conf").content_string
