"""syslog_ng_alerts client -> server over TLS (client certificates) -> Apprise."""

import time

import pytest

CLIENT = "secalert-syslog_ng_relay-debian12"
SERVER = "secalert-syslog_ng_relay-debian13"


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
    assert (got[0]["title"], got[0]["body"], got[0]["type"]) == (title, text, ntype)
    assert got[0]["path"] == "/relay"


def test_server_alerts_on_its_own_events(server, receiver, marker):
    server.check_output("logger -t useradd -p authpriv.info -- %s",
                        f"new user: name={marker}, UID=1002")
    got = receiver.messages(contains=marker, wait=40, count=1)
    assert [m["title"] for m in got] == ["account change on alerts"]


def _client_saw_the_server_go(client, since, timeout=30):
    """Wait until the client's syslog-ng noticed that the server closed the connection."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = client.run("journalctl -u syslog-ng --no-pager -o cat --since @%s", since).stdout
        if "connection broken" in log.lower() or "connection closed" in log.lower():
            return True
        time.sleep(1)
    return False


def test_client_buffers_while_the_server_is_down(client, server, receiver, marker):
    # Syslog over TCP/TLS has no application-level acknowledgement: an event written in
    # the instant between the server closing the connection and the client noticing it
    # can be lost (README: Limitations). What the client must guarantee is that, once it
    # knows the server is gone, every event waits in its disk-buffer until the server is
    # back. That is what this test proves.
    since = int(float(client.check_output("date +%s.%N")))
    server.check_output("systemctl stop syslog-ng")
    try:
        assert _client_saw_the_server_go(client, since), diagnostics(client, server)
        for i in range(3):
            client.check_output("logger -t sshd -p auth.info -- %s",
                                f"Invalid user {marker}-{i} from 192.0.2.7 port 1")
        time.sleep(2)
        assert receiver.messages(contains=marker) == []
    finally:
        server.check_output("systemctl start syslog-ng")
    # The client reconnects within time-reopen (10 s); the three may come in 1-3 digests.
    deadline = time.monotonic() + 90
    while True:
        listed = "".join(m["body"] for m in receiver.messages(contains=marker))
        if all(f"{marker}-{i}" in listed for i in range(3)) or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert all(f"{marker}-{i}" in listed for i in range(3)), diagnostics(client, server)


def test_client_holds_no_apprise_url_or_secret(client, group_vars):
    token = group_vars["secalert_test_token"]
    leaked = client.run(
        "grep -rlsF %s / --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev", token
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
