"""Dead man's switch and watchdog. Destructive (it stops syslog-ng, cuts the link and
stops the server), and it must follow test_relay.py's restarts: marked so, it runs after
the scenario's other tests (molecule/conftest.py).

The scenario's server expects relay-client (real) and ghost-client (never connects), with
a 45 s bound checked every 3 s, and sends a watchdog every 15 s to /watchdog."""

import time

import pytest
from conftest import container, network, record_figure
from secalert_testlib.fleet import podman
from secalert_testlib.polling import wait_for

pytestmark = pytest.mark.destructive

CLIENT = "secalert-syslog_ng_relay-debian12"
SERVER = "secalert-syslog_ng_relay-debian13"
BOUND = 45  # over the worst reconnect gap: heartbeat + time-reopen + a first message, no CN
WATCHDOG = 15  # 4 a minute: within the 4 of 5 rate-limit slots lesser events may use


@pytest.fixture(scope="module")
def client(hosts):
    return hosts[CLIENT]


@pytest.fixture(scope="module")
def server(hosts):
    return hosts[SERVER]


def diagnostics(server):
    return server.run("systemctl status secalert-deadman.timer --no-pager; "
                      "journalctl -t secalert-deadman --no-pager -n 20; "
                      "ls -l --time-style=+%s /var/lib/secalert/lastseen; date +%s; "
                      "cat /var/lib/secalert/deadman-state.json").stdout


def titled(receiver, text):
    return [m for m in receiver.messages(contains=text) if m["path"] == "/relay"]


def wait_titled(receiver, text, timeout):
    start = time.monotonic()
    got = wait_for(lambda: titled(receiver, text), timeout, interval=1)
    return got, time.monotonic() - start


def test_a_client_that_never_connected_is_reported(server, receiver):
    got = wait_titled(receiver, "host ghost-client never heard from", BOUND + 60)[0]
    assert len(got) == 1, diagnostics(server)


def test_the_connected_client_is_not_reported_silent(receiver):
    assert titled(receiver, "host relay-client silent") == []


def test_a_stopped_client_is_reported_silent_then_back(client, server, receiver):
    client.check_output("systemctl stop syslog-ng")
    try:
        got, waited = wait_titled(receiver, "host relay-client silent for", BOUND + 60)
        assert len(got) == 1, diagnostics(server)
        record_figure(f"silent alert {waited:.1f} s after the client's syslog-ng stopped "
                      f"(bound {BOUND} s)")
    finally:
        client.check_output("systemctl start syslog-ng")
    got, waited = wait_titled(receiver, "host relay-client back after", 60)
    assert len(got) == 1, diagnostics(server)
    record_figure(f"back alert {waited:.1f} s after the client's syslog-ng started")


def test_a_cut_link_is_reported_silent_then_back(client, server, receiver):
    before = len(titled(receiver, "host relay-client silent for"))
    # A cut cable: the same address comes back, and TCP's retransmissions resume the link.
    template = '{{(index .NetworkSettings.Networks "' + network() + '").IPAddress}}'
    address = podman("inspect", "-f", template, container(CLIENT))
    podman("network", "disconnect", network(), container(CLIENT))
    start = time.monotonic()
    try:
        ok = wait_for(lambda: len(titled(receiver, "host relay-client silent for")) > before,
                      BOUND + 60, interval=1)
        assert ok, diagnostics(server)
        record_figure(f"silent alert {time.monotonic() - start:.1f} s after the link was cut")
    finally:
        podman("network", "connect", "--ip", address, "--alias", "relay-client", network(),
               container(CLIENT))
    before_back = len(titled(receiver, "host relay-client back after"))
    start = time.monotonic()
    ok = wait_for(lambda: len(titled(receiver, "host relay-client back after")) > before_back,
                  300, interval=2)
    assert ok, diagnostics(server) + client.run("journalctl -u syslog-ng -n 20 --no-pager").stdout
    record_figure(f"back alert {time.monotonic() - start:.1f} s after the link returned")


def test_the_watchdog_arrives_and_stops_with_the_server(server, receiver):
    def watchdogs():
        return [m for m in receiver.messages(contains="Watchdog") if m["path"] == "/watchdog"]

    count = len(watchdogs())
    assert wait_for(lambda: len(watchdogs()) > count, 3 * WATCHDOG, interval=1), \
        diagnostics(server)
    # alone, or leading a digest of the ones the server's journal still held
    assert watchdogs()[-1]["title"].endswith("Watchdog: alert server alerts is alive")
    podman("stop", "--time", "5", container(SERVER))
    try:
        time.sleep(3)  # one already on its way may still land
        count = len(watchdogs())
        time.sleep(3 * WATCHDOG)
        assert len(watchdogs()) == count
    finally:
        podman("start", container(SERVER))
