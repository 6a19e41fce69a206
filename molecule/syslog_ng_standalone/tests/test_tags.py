"""Tags mean one thing: a sudo event's own tags (those of the sudo rule that matched, which
the plugin writes into the event) choose its Apprise targets through syslog-ng, as they do
in the plugin's direct mode (sudo_alerts scenario) and through a client and its server
(syslog_ng_relay): every target that carries any of them.

Targets here: /alerts tagged secalert, sudo; /denied tagged sudo-denied."""

import json
import time


def sudo_event(marker, what, tags):
    return json.dumps({
        "schema": 1, "type": "sudo", "user": "alice", "command": f"/usr/bin/{what}-{marker}",
        "args": [], "runas_user": "root", "decision": "reject", "rule": what,
        "severity": "critical", "tags": tags, "tty": "", "cwd": "/"}, separators=(",", ":"))


def test_a_sudo_events_own_tags_choose_its_targets(hosts, receiver, marker):
    for host in hosts.values():
        # the root-only socket: what the plugin inside sudo uses
        for what, tags in (("denied", ["sudo", "sudo-denied"]), ("routine", ["sudo"])):
            host.check_output("logger -u /run/secalert/log.sock -t secalert-sudo "
                              "-p authpriv.crit -- %s", sudo_event(marker, what, tags))
    receiver.messages(contains=f"denied-{marker}", wait=40, count=2 * len(hosts))
    time.sleep(4)  # a digest window and more: whatever else these raise is in by now
    got = receiver.messages(contains=marker)

    def lines(path):
        text = "\n".join(m["title"] + "\n" + (m["body"] or "") for m in got if m["path"] == path)
        return {what for what in ("denied", "routine") if f"/usr/bin/{what}-{marker}" in text}

    # tagged sudo, sudo-denied: both targets (any of the tags); tagged sudo: /alerts only
    assert (lines("/alerts"), lines("/denied")) == ({"denied", "routine"}, {"denied"}), got
    assert {m["path"] for m in got} == {"/alerts", "/denied"}, got
