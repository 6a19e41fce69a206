"""Commands run inside sudo'd ones, on real sudo: Debian 13 (sudo 1.9.16p2) follows alice's
sudo'd commands (sudoers log_subcmds and intercept, sudo_alerts_subcommands); Debian 12
(1.9.13p3) is refused by the role. A drop-in that sudo fails with is never left live: the
rollout puts the previous one back, the guard sets a broken one aside and alerts."""

import json

import pytest
from secalert_testlib.polling import wait_for
from test_sudo_alerts import CTL, as_user, diagnose, sudo_works, wait_events

PASSWORD = "Al1ce-sudo-pass"  # noqa: S105 - the scenario's test user
DROPIN = "/etc/sudoers.d/secalert-subcommands"
STAGED = "/etc/secalert/sudoers-subcommands"
SET_ASIDE = "/etc/sudoers.d/.secalert-subcommands.disabled"


@pytest.fixture
def host(hosts):
    (name,) = [n for n in hosts if n.endswith("debian13")]
    return hosts[name]


def test_the_drop_in_is_installed_for_alice_only(host):
    dropin = host.file(DROPIN)
    assert (dropin.user, dropin.group, dropin.mode) == ("root", "root", 0o440)
    assert "Defaults:alice log_subcmds, intercept, intercept_allow_setid, intercept_type=dso" \
        in dropin.content_string
    assert host.run("visudo -c").rc == 0


def test_a_subcommand_is_an_event_naming_its_parent(host, marker):
    run = as_user(host, f"sudo -S -p '' /bin/bash -c '/usr/bin/id -u; /usr/bin/echo {marker}'",
                  PASSWORD)
    assert run.rc == 0 and marker in run.stdout, run.stdout + run.stderr
    events = wait_events(host, marker, count=2)
    top = [e for e in events if not e.get("subcommand")]
    inside = [e for e in events if e.get("subcommand")]
    assert [e["command"] for e in top] == ["/bin/bash"], events
    assert [(e["command"], e["args"], e["parent_command"]) for e in inside] == [
        ("/usr/bin/echo", [marker], "/bin/bash")], events
    assert inside[0]["pid"] == top[0]["pid"] and inside[0]["rule"] == "routine"


def test_a_subcommand_sudoers_refuses_is_refused_and_alerts(host, receiver, marker):
    """intercept: whoami is not in alice's sudoers rule, so sudo refuses it inside the
    shell too; the refusal is a critical alert (rule denied) on the denied target. The
    marker is the directory alice runs sudo from (the event's cwd)."""
    assert host.run("install -d -o alice /tmp/%s", marker).rc == 0
    run = as_user(host, f"env -C /tmp/{marker} sudo -S -p '' "
                  "/bin/bash -c '/usr/bin/whoami; /usr/bin/true'", PASSWORD)
    assert "not allowed to execute '/usr/bin/whoami'" in run.stderr, run.stdout + run.stderr
    receiver.messages(contains=marker, wait=30, count=3)
    denied = [m for m in receiver.messages(contains=marker) if m["path"] == "/denied"]
    assert len(denied) == 1, (receiver.messages(contains=marker), diagnose(host))
    assert "was denied /usr/bin/whoami" in denied[0]["title"], denied
    assert "inside /bin/bash" in denied[0]["title"], denied
    assert sudo_works(host)


def test_a_drop_in_sudo_fails_with_is_rolled_back(host):
    """trace needs ptrace and seccomp, which the container refuses: sudo then refuses
    every command the settings apply to. The proof finds it; the previous drop-in stays."""
    before = host.file(DROPIN).content_string
    bad = "/root/sudoers-subcommands-trace"
    host.run("sed 's/intercept_type=dso/intercept_type=trace/' %s > %s && chmod 0440 %s",
             STAGED, bad, bad)
    try:
        run = host.run("%s subcommands %s", CTL, bad)
        assert run.rc == 1, run.stdout + run.stderr
        assert "unable to set seccomp filter" in run.stderr, run.stderr
        assert "the previous /etc/sudoers.d/secalert-subcommands is restored" in run.stderr
        assert host.file(DROPIN).content_string == before
        assert not host.file(DROPIN + "-proof").exists
        assert sudo_works(host)
    finally:
        host.run("rm -f %s", bad)


def test_the_guard_sets_a_broken_drop_in_aside_and_alerts(host, receiver):
    """An upgrade that breaks the settings: here the live drop-in edited to trace."""
    since = len(receiver.messages())
    host.run("sed -i 's/intercept_type=dso/intercept_type=trace/' %s", DROPIN)
    try:
        run = host.run("%s guard", CTL)
        assert run.rc == 0, run.stdout + run.stderr
        assert not host.file(DROPIN).exists and host.file(SET_ASIDE).exists
        assert sudo_works(host)
        alerts = wait_for(lambda: [m for m in receiver.messages()[since:]
                                   if "subcommand settings" in json.dumps(m)], 30)
        assert alerts, "no status alert" + diagnose(host)
        # a second guard run does not say alerting is back while the drop-in is aside
        assert "sudo alerts ON" not in host.run("%s guard", CTL).stderr
    finally:
        # what the role does: the staged settings, proven
        run = host.run("%s subcommands %s", CTL, STAGED)
    assert run.rc == 0 and "sudo alerts ON" in run.stderr, run.stdout + run.stderr
    assert host.file(DROPIN).exists and not host.file(SET_ASIDE).exists


def test_an_older_sudo_is_refused_before_anything_changes(hosts, playbook):
    (name,) = [n for n in hosts if n.endswith("debian12")]
    run = playbook.run("subcommands-gate.yml", "--limit", name)
    assert run.returncode != 0
    assert "needs sudo 1.9.15 or later" in run.output and "1.9.13p3" in run.output, run.output
    assert not hosts[name].file(DROPIN).exists
    assert not hosts[name].file(STAGED).exists
