"""The client-server link through a stopped and a restarted alert server.

TCP and TLS have no application-level acknowledgement: a write into a connection the
server has closed is accepted by the client's kernel and lost. The client's heartbeat
(syslog_ng_alerts_forward_heartbeat, a MARK every 10 s by default) makes that lost write
a MARK; the next write fails, and the events stay in the client's reliable disk-buffer
until the server is back. Without the heartbeat these tests lose their first event.
Runs last (zz): it stops and restarts the server."""

import re
import time

import pytest

CLIENT = "secalert-syslog_ng_relay-debian12"
SERVER = "secalert-syslog_ng_relay-debian13"
HEARTBEAT = 10  # the role's default, which this scenario keeps
DIGEST_TITLE = re.compile(r"^(\d+) events: ")


@pytest.fixture(scope="module")
def client(hosts):
    return hosts[CLIENT]


@pytest.fixture(scope="module")
def server(hosts):
    return hosts[SERVER]


def log_events(client, marker, count):
    client.check_output(
        "for i in $(seq 1 %s); do logger -t relay-test -p auth.info -- \"link %s $i\"; done",
        str(count), marker,
    )


def events_in(messages, marker):
    """Distinct events listed in the bodies, and events counted by the titles."""
    listed = set(re.findall(rf"link {re.escape(marker)} (\d+)",
                            "\n".join(m["body"] for m in messages)))
    counted = sum(int(m.group(1)) if (m := DIGEST_TITLE.match(x["title"])) else 1
                  for x in messages)
    return listed, counted


def wait_for_events(receiver, marker, count, timeout=90):
    deadline = time.monotonic() + timeout
    while True:
        got = receiver.messages(contains=marker)
        listed, counted = events_in(got, marker)
        if counted >= count or time.monotonic() > deadline:
            return listed, counted
        time.sleep(2)


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
