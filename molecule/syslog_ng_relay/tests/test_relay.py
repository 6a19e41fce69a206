"""syslog_ng_alerts client -> server over TLS (client certificates) -> Apprise."""


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
