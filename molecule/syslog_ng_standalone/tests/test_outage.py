"""Outage: HTTP 500, then 429, then the receiver down, syslog-ng restarted in between,
then recovery. Every event sent meanwhile is accounted for in what arrives, counted
event by event inside the digests (not by notifications).

Destructive (it restarts syslog-ng and takes the receiver down): marked so, it runs after
every other test of the scenario (molecule/conftest.py)."""

import re

import pytest
from conftest import record_figure
from secalert_testlib.digests import counted_events
from secalert_testlib.leaks import shown
from secalert_testlib.polling import wait_for

pytestmark = pytest.mark.destructive

PER_PHASE = 10


def send(hosts, marker, phase):
    for name, host in hosts.items():
        host.check_output(
            "for i in $(seq 1 %s); do logger -t secalert-outage -- "
            "\"ev %s %s $i\"; done", str(PER_PHASE), f"{marker}-{phase}", name,
        )


def accounted(messages, marker, name):
    """(events counted in titles, distinct events listed in bodies) for one host."""
    mine = [message for message in messages if name in message["title"]]
    listed = set()
    for message in mine:
        listed.update(re.findall(rf"ev ({re.escape(marker)}-\w+ \S+ \d+)", message["body"]))
    return counted_events(mine), listed


def test_outage_500_429_down_restart_then_recovery_loses_nothing(
    hosts, receiver, marker, secrets
):
    receiver.reset()
    try:
        receiver.mode("500")
        send(hosts, marker, "p500")
        assert wait_for(lambda: receiver.stats()["http"].get("500", 0) >= len(hosts), 60,
                        interval=1.0)

        receiver.mode("429")
        send(hosts, marker, "p429")
        assert wait_for(lambda: receiver.stats()["http"].get("429", 0) >= len(hosts), 60,
                        interval=1.0)

        receiver.mode("down")
        send(hosts, marker, "pdown")
        # Not an assertion: give each host a chance to meet the closed port.
        for host in hosts.values():
            wait_for(lambda h=host: "transient (HTTP -)" in h.run(
                "grep -F 'secalert apprise(outage)' /var/log/syslog | tail -n 5").stdout, 20,
                interval=1.0)
        for host in hosts.values():
            host.check_output("systemctl restart syslog-ng")
        send(hosts, marker, "prestart")
        assert receiver.messages(contains=marker) == []
    finally:
        receiver.mode("ok")

    expected = {f"{marker}-{phase} {name} {i}"
                for name in hosts
                for phase in ("p500", "p429", "pdown", "prestart")
                for i in range(1, PER_PHASE + 1)}
    host_names = {name: hosts[name].check_output("hostname") for name in hosts}

    def complete():
        got = receiver.messages(contains=marker)
        return all(accounted(got, marker, host_names[n])[1] >= expected_of(n) for n in hosts)

    def expected_of(name):
        return {e for e in expected if f" {name} " in e}

    done = wait_for(complete, 120, interval=2)
    got = receiver.messages(contains=marker)
    for name, host in hosts.items():
        mine = {e for e in expected if f" {name} " in e}
        counted, listed = accounted(got, marker, host_names[name])
        record_figure(f"outage, {name}: {len(mine)} sent, {counted} counted in "
                      f"{sum(host_names[name] in m['title'] for m in got)} notification(s), "
                      f"{len(listed & mine)} listed")
        assert listed >= mine, (
            f"{name}: lost {sorted(mine - listed)}\n"
            + host.run("grep -F 'secalert apprise' /var/log/syslog | tail -n 30").stdout
            + host.run("journalctl -u syslog-ng --no-pager -n 30").stdout
        )
        assert counted >= len(mine)
        # The reports name the target without its token.
        log = host.run("grep -F 'secalert apprise(outage)' /var/log/syslog").stdout
        assert "HTTP 500" in log and "rate-limited" in log, log
        assert shown(log, secrets) == []
    assert done
