"""syslog_ng_alerts client -> server over TLS (client certificates) -> Apprise.

The link tests at the end stop and restart the server: keep them last."""


import json
import re
import time

import pytest
from secalert_testlib.digests import counted_events
from secalert_testlib.leaks import grep_patterns
from secalert_testlib.polling import wait_for

CLIENT = "secalert-syslog_ng_relay-debian12"
SERVER = "secalert-syslog_ng_relay-debian13"
HEARTBEAT = 10  # syslog_ng_alerts_forward_heartbeat: the role's default, which this scenario keeps


@pytest.fixture(scope="module")
def client(hosts):
    return hosts[CLIENT]


@pytest.fixture(scope="module")
def server(hosts):
    return hosts[SERVER]


def diagnostics(*hosts):
    return "\n".join(
        host.run("journalctl -u syslog-ng --no-pager -n 30; "
                 "grep -E 'secalert|tls|TLS|SSL|ssl' /var/log/syslog | tail -n 20; "
                 "cat /etc/syslog-ng/conf.d/secalert.conf").stdout
        for host in hosts
    )


@pytest.mark.parametrize(
    "program, message, title, ntype",
    [
        ("sshd", "Invalid user {m} from 192.0.2.7 port 4242",
         "SSH login failure on relay-client", "warning"),
        # A rule only the client has: the server routes it to its default tags.
        ("relay-test", "client rule {m}", "relay test on relay-client", "failure"),
    ],
    ids=["preset", "client-only-rule"],
)
def test_client_event_reaches_receiver_through_server(client, server, receiver, marker,
                                                      program, message, title, ntype):
    text = message.format(m=marker)
    client.check_output("logger -t %s -p auth.info -- %s", program, text)
    got = receiver.messages(contains=marker, wait=40, count=1)
    assert len(got) == 1, diagnostics(client, server)
    # Shown under the name the server verified (the client's certificate): in front of
    # every title and line that does not begin with it. A preset's body names the host
    # first (it is also its line in a digest); the client's own rule keeps its own body.
    body = f"relay-client {program}: {text}" if program == "sshd" else f"[relay-client] {text}"
    assert (got[0]["title"], got[0]["body"], got[0]["type"]) == (
        f"[relay-client] {title}", body, ntype)
    assert got[0]["path"] == "/relay"


def test_server_alerts_on_its_own_events(server, receiver, marker):
    server.check_output("logger -t useradd -p authpriv.info -- %s",
                        f"new user: name={marker}, UID=1002")
    got = receiver.messages(contains=marker, wait=40, count=1)
    assert [m["title"] for m in got] == ["account change on alerts"]


def test_client_holds_no_apprise_url_or_secret(client, secrets):
    leaked = client.run(
        f"grep -rlsF {grep_patterns(secrets)} / --exclude-dir=proc --exclude-dir=sys "
        "--exclude-dir=dev", *secrets
    ).stdout.strip()
    assert leaked == ""
    assert not client.file("/etc/secalert/apprise.yml").exists
    assert not client.file("/opt/secalert/venv").exists
    assert client.run("grep -rlE '[a-z]+://' /etc/syslog-ng/conf.d").stdout == ""
    assert not client.package("syslog-ng-mod-python").is_installed


@pytest.mark.parametrize("name", [CLIENT, SERVER])
def test_tls_files_are_root_only(hosts, name):
    host = hosts[name]
    directory = host.file("/etc/syslog-ng/secalert/tls")
    assert (directory.user, directory.mode) == ("root", 0o700)
    key = host.file("/etc/syslog-ng/secalert/tls/key.pem")
    assert (key.user, key.group, key.mode) == ("root", "root", 0o600)
    assert "PRIVATE KEY" in key.content_string


def test_server_requires_client_certificates(server):
    conf = server.file("/etc/syslog-ng/conf.d/secalert.conf").content_string
    assert "peer-verify(required-trusted)" in conf

# The client-server link through a stopped and a restarted alert server.
#
# TCP and TLS have no application-level acknowledgement: a write into a connection the
# server has closed is accepted by the client's kernel and lost. The client's heartbeat
# (syslog_ng_alerts_forward_heartbeat, a MARK every 10 s by default) makes that lost write
# a MARK; the next write fails, and the events stay in the client's reliable disk-buffer
# until the server is back. Without the heartbeat these tests lose their first event.


def log_events(client, marker, count):
    client.check_output(
        "for i in $(seq 1 %s); do logger -t relay-test -p auth.info -- \"link %s $i\"; done",
        str(count), marker,
    )


def events_in(messages, marker):
    """Distinct events listed in the bodies, and events counted by the titles."""
    listed = set(re.findall(rf"link {re.escape(marker)} (\d+)",
                            "\n".join(m["body"] for m in messages)))
    return listed, counted_events(messages)


def wait_for_events(receiver, marker, count, timeout=90):
    wait_for(lambda: counted_events(receiver.messages(contains=marker)) >= count, timeout,
             interval=2)
    return events_in(receiver.messages(contains=marker), marker)


def test_heartbeat_is_configured(client):
    conf = client.file("/etc/syslog-ng/conf.d/secalert.conf").content_string
    assert "mark-mode(periodical)" in conf
    assert f"mark-freq({HEARTBEAT})" in conf


def test_events_logged_while_the_server_is_down_arrive_when_it_returns(
    client, server, receiver, marker
):
    server.check_output("systemctl stop syslog-ng")
    try:
        # An idle client: the heartbeat, not an event, meets the closed connection.
        time.sleep(HEARTBEAT + 3)
        log_events(client, marker, 5)
        time.sleep(3)
        assert receiver.messages(contains=marker) == []  # the server is down
    finally:
        server.check_output("systemctl start syslog-ng")
    listed, counted = wait_for_events(receiver, marker, 5)
    assert (sorted(listed), counted) == (["1", "2", "3", "4", "5"], 5)


def test_first_event_after_a_server_restart_arrives(client, server, receiver, marker):
    before, after = f"{marker}-before", f"{marker}-after"
    # The client is connected and idle when the server restarts under it.
    log_events(client, before, 1)
    assert wait_for_events(receiver, before, 1, timeout=40) == ({"1"}, 1)
    server.check_output("systemctl restart syslog-ng")
    time.sleep(HEARTBEAT + 3)
    log_events(client, after, 1)
    assert wait_for_events(receiver, after, 1) == ({"1"}, 1)


def test_heartbeats_never_alert(receiver):
    assert receiver.messages(contains="MARK") == []


def test_a_sudo_events_own_tags_choose_its_targets_through_the_server(client, receiver,
                                                                      marker):
    """The client forwards the tags of the sudo rule with the event; the server routes by
    them: /denied (tagged sudo-denied) gets the refusal, and the event tagged only sudo,
    which no target here carries, goes to the default tags (/relay)."""
    for what, tags in (("denied", ["sudo", "sudo-denied"]), ("routine", ["sudo"])):
        event = json.dumps({
            "schema": 1, "type": "sudo", "user": "alice",
            "command": f"/usr/bin/{what}-{marker}", "args": [], "runas_user": "root",
            "decision": "reject", "rule": what, "severity": "critical", "tags": tags,
            "tty": "", "cwd": "/"}, separators=(",", ":"))
        client.check_output("logger -u /run/secalert/log.sock -t secalert-sudo "
                            "-p authpriv.crit -- %s", event)
    got = receiver.messages(contains=marker, wait=60, count=2)
    time.sleep(4)
    got = receiver.messages(contains=marker)
    where = sorted((m["path"], "denied" if f"denied-{marker}" in m["title"] else "routine")
                   for m in got)
    assert where == [("/denied", "denied"), ("/relay", "routine")], got
    # The server wrote them from the client's lines (render: sudo), in direct mode's words
    # and under the client's verified name.
    assert sorted(m["title"] for m in got) == [
        f"[relay-client] [critical] sudo: alice was denied /usr/bin/{what}-{marker} on "
        "relay-client" for what in ("denied", "routine")], got
