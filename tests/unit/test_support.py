"""tests/support/secalert_testlib: what the Molecule tests, the demo and the benchmarks
share. The receiver client runs against the real receiver on 127.0.0.1 (free ports); the
leak check runs on this machine over a temporary directory, with a stand-in journalctl."""

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from urllib.request import Request, urlopen

import pytest
from ansible_collections.secalert.alerting.plugins.module_utils.secalert_apprise import render

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from secalert_testlib import digests, fleet, leaks, polling  # noqa: E402
from secalert_testlib.receiver_client import Receiver, ReceiverError  # noqa: E402

SECRET = "Tok3nSecretValue42"  # noqa: S105 - a fake secret to look for

# ------------------------------------------------------------------ secret pieces


@pytest.mark.parametrize("url, pieces", [
    # the userinfo password; a short path segment is shown, not a token
    (f"json://secalert:{SECRET}@receiver:8080/json", [SECRET]),
    (f"form://secalert:{SECRET}@receiver:8080/form", [SECRET]),
    # json:// path tokens: segments longer than 8 characters
    (f"json://receiver:8080/hooks/{SECRET}", [SECRET]),
    ("jsons://receiver/a/abcdefgh/abcdefghi", ["abcdefghi"]),
    (f"discord://123456/{SECRET}/", [SECRET]),
    # +Header= values (also with the + percent-encoded), -param= values, credential names
    (f"json://receiver:8080/x?method=POST&+X-Token={SECRET}", [SECRET]),
    (f"json://receiver:8080/x?%2BX-Token={SECRET}&mode=insecure", [SECRET]),
    ("json://receiver/x?+Authorization=Bearer%20abc123", ["Bearer%20abc123", "Bearer abc123"]),
    (f"json://receiver/x?+X-Request-Id={SECRET}&-sig={SECRET}z", [f"{SECRET}z", SECRET]),
    (f"json://receiver/x?-key={SECRET}", [SECRET]),
    (f"gotify://host/app?token={SECRET}&priority=high", [SECRET]),
    # ntfy: every topic, the cloud form's topic where the host would be, and a password
    (f"ntfy://{SECRET}", [SECRET]),
    (f"ntfys://{SECRET}?mode=cloud", [SECRET]),
    (f"ntfys://ntfy.example.org/{SECRET}", [SECRET]),
    ("ntfys://ntfy.sh/alerts/ops-team", ["ops-team", "alerts"]),
    (f"ntfy://user:pass1234@127.0.0.1:9/{SECRET}?mode=private", [SECRET, "pass1234"]),
    (f"ntfy://localhost/{SECRET}", [SECRET]),
    # nothing secret: mail addresses and options, short pieces, no URL
    ("mailto://receiver:2525?mode=insecure&from=alerts@secalert.test&to=admins@secalert.test",
     []),
    (f"mailtos://user:{SECRET}@smtp.example.org/ops@example.org", [SECRET]),
    ("ntfys://ntfy.sh/abc", []),
    ("json://receiver:8080/alerts#fragment-not-a-token", []),
    ("not a url", []),
])
def test_url_secrets(url, pieces):
    assert leaks.url_secrets(url) == pieces


def test_secrets_of_all_urls_and_tokens_longest_first():
    urls = [f"json://u:{SECRET}@h/x", f"ntfys://h.example/{SECRET}", "ntfy://topic1"]
    assert leaks.secrets_of(urls, "stand-in", None) == [SECRET, "stand-in", "topic1"]


@pytest.mark.parametrize("text, found", [
    (f"ok: [host] => {SECRET}", [SECRET]),
    ("json://secalert:****@receiver", []),
    (None, []),
])
def test_shown(text, found):
    assert leaks.shown(text, [SECRET, "other-secret"]) == found


# ------------------------------------------------------------------ leak check


@pytest.fixture()
def local_host(tmp_path):
    """This machine as a leak-check host; its journalctl prints tmp_path/journal."""
    fakebin = tmp_path / "bin"
    fakebin.mkdir()
    journalctl = fakebin / "journalctl"
    journalctl.write_text(f"#!/bin/sh\ncat {tmp_path / 'journal'}\n")
    journalctl.chmod(0o755)
    (tmp_path / "journal").write_text("an ordinary line\n")
    (tmp_path / "root").mkdir()
    return leaks.Shell(["env", f"PATH={fakebin}:{os.environ['PATH']}"])


def _place(tmp_path, where, secret):
    """Put ``secret`` at ``where``; returns a process to end, if one was started."""
    if where == "world-readable file":
        (tmp_path / "root" / "leak.txt").write_text(f"x {secret} y\n")
        (tmp_path / "root" / "leak.txt").chmod(0o644)
    elif where == "root-only file":
        (tmp_path / "root" / "config.yml").write_text(f"x {secret} y\n")
        (tmp_path / "root" / "config.yml").chmod(0o600)
    elif where == "journal":
        (tmp_path / "journal").write_text(f"sent to {secret}\n")
    elif where == "process":
        return subprocess.Popen(  # pylint: disable=consider-using-with
            [sys.executable, "-c", "import time; time.sleep(30)", secret])
    return None


@pytest.mark.parametrize("where, found", [
    ("world-readable file", ["{root}/leak.txt"]),
    ("root-only file", []),
    ("journal", ["the journal"]),
    ("process", ["process arguments"]),
    ("nowhere", []),
])
@pytest.mark.parametrize("which", [0, 1], ids=["first secret", "second secret"])
def test_leaks_finds_any_secret_where_others_can_read_it(local_host, tmp_path, where, found,
                                                         which):
    secrets = [f"{SECRET}-{uuid.uuid4().hex}", f"topic-{uuid.uuid4().hex}"]
    process = _place(tmp_path, where, secrets[which])
    try:
        got = leaks.leaks(local_host, secrets, roots=[str(tmp_path / "root")])
    finally:
        if process:
            process.kill()
            process.wait(timeout=10)
    assert got == [entry.format(root=tmp_path / "root") for entry in found]


def test_leaks_refuses_to_look_for_nothing(local_host):
    with pytest.raises(ValueError, match="no secret"):
        leaks.leaks(local_host, ["", None])


def test_leaks_on_a_container_name_runs_there(monkeypatch):
    prefixes = []

    class Recording(leaks.Shell):
        def run(self, command, *args):
            prefixes.append(self.prefix)
            return leaks.Result(0, "0\n" if "journalctl" in command else "", "")

    monkeypatch.setattr(leaks, "Shell", Recording)
    assert leaks.leaks("secalert-x-debian12", [SECRET]) == []
    assert prefixes == [["podman", "exec", "secalert-x-debian12"]] * 3


def test_leaks_fails_when_ps_does_not_run(monkeypatch):
    class NoPs(leaks.Shell):
        def run(self, command, *args):
            if command.startswith("ps "):
                return leaks.Result(127, "", "ps: not found")
            return leaks.Result(0, "0\n" if "journalctl" in command else "", "")

    with pytest.raises(RuntimeError, match="ps: rc=127"):
        leaks.leaks(NoPs([]), [SECRET])


# ------------------------------------------------------------------ digests


def _msg(title):
    return {"title": title, "body": "b"}


@pytest.mark.parametrize("title, events", [
    ("SSH login failure on web1", 1),
    (None, 1),
    ("7 events: SSH login failure on web1 and others", 7),
    (render.DIGEST_TITLE.format(count=250, label="sudo: alice ran /bin/sh"), 250),
    ("[warning] sudo: 25 events on deb12 (25 sudo commands run)", 25),
    (render.SUDO_DIGEST_TITLE.format(severity="critical", count=12, where="2 hosts",
                                     kinds="12 refused sudo"), 12),
    # a count elsewhere in a title is no digest's
    ("[relay-client] 3 events: x", 1),
    ("sudo: alice ran /usr/bin/echo 5 events on h", 1),
])
def test_events_in(title, events):
    assert digests.events_in(_msg(title)) == events


@pytest.mark.parametrize("titles, total", [
    ([], 0),
    (["a", "b"], 2),
    (["3 events: a", "b", "[info] sudo: 4 events on h (4 sudo commands run)"], 8),
])
def test_counted_events(titles, total):
    assert digests.counted_events([_msg(t) for t in titles]) == total


# ------------------------------------------------------------------ polling


def test_poll_returns_the_first_value_that_is_done():
    values = iter([1, 2, 3, 4])
    assert polling.poll(lambda: next(values), lambda v: v >= 3, 5, interval=0.01) == 3


@pytest.mark.parametrize("timeout, interval, calls", [(1, 0.1, 12), (1, 0.4, 4), (0, 0.5, 1)])
def test_poll_gives_up_after_a_bounded_number_of_calls(monkeypatch, timeout, interval, calls):
    """Even a clock that stands still ends the loop, after timeout / interval + 2 calls
    (with time passing, the deadline comes first)."""
    monkeypatch.setattr(polling.time, "monotonic", lambda: 100.0)
    monkeypatch.setattr(polling.time, "sleep", lambda seconds: None)
    count = []
    assert polling.poll(lambda: count.append(1) or len(count), lambda v: False, timeout,
                        interval) == calls
    assert len(count) == calls


def test_wait_for_returns_at_the_deadline_with_the_last_value():
    start = time.monotonic()
    assert polling.wait_for(lambda: [], 0.3, interval=0.05) == []
    assert 0.3 <= time.monotonic() - start < 2


def test_wait_for_returns_the_truthy_value():
    assert polling.wait_for(lambda: ["message"], 5) == ["message"]


def test_poll_refuses_a_non_positive_interval():
    with pytest.raises(ValueError):
        polling.poll(lambda: 1, bool, 1, interval=0)


# ------------------------------------------------------------------ receiver client


@pytest.fixture()
def client(rcv):
    return Receiver(control=f"http://127.0.0.1:{rcv.ports['control']}")


def _notify(rcv, title, path="/json"):
    data = json.dumps({"version": "1.0", "title": title, "message": f"body of {title}",
                       "type": "info"}).encode()
    request = Request(f"http://127.0.0.1:{rcv.ports['http']}{path}", data=data,
                      headers={"Content-Type": "application/json"}, method="POST")
    with urlopen(request, timeout=5) as response:  # noqa: S310 - a loopback http URL
        return response.status


def test_messages_filtered_by_text_and_channel(rcv, client):
    assert _notify(rcv, "alpha one") == 200
    assert _notify(rcv, "beta two", path="/other") == 200
    assert [m["title"] for m in client.messages()] == ["alpha one", "beta two"]
    assert [m["path"] for m in client.messages(contains="beta")] == ["/other"]
    assert client.messages(channel="smtp") == []
    assert [m["title"] for m in client.messages(contains="alpha", channel="json")] == [
        "alpha one"]


def test_messages_wait_for_a_count_and_return_fewer_without_failing(rcv, client):
    _notify(rcv, "gamma")
    assert len(client.messages(contains="gamma", wait=5, count=1)) == 1
    start = time.monotonic()
    assert len(client.messages(contains="gamma", wait=0.5, count=2)) == 1
    assert time.monotonic() - start >= 0.5


@pytest.mark.parametrize("args, state", [
    (("500",), {"mode": "500"}),
    (("429", "--retry-after", "7"), {"mode": "429", "retry_after": 7.0}),
    (("slow", "--delay", "0.5"), {"mode": "slow", "delay": 0.5}),
    (("hang",), {"mode": "hang"}),
    (("down",), {"mode": "down"}),
    (("ok",), {"mode": "ok"}),
])
def test_mode(rcv, client, args, state):
    client.mode(*args)
    got = rcv.store.mode_state()
    assert {key: got[key] for key in state} == state
    assert rcv.http_listening() == (args[0] != "down")


def test_stats_clear_and_reset(rcv, client):
    _notify(rcv, "delta")
    client.mode("500")
    with pytest.raises(OSError):  # HTTPError: the 500 answer
        _notify(rcv, "epsilon")
    stats = client.stats()
    assert (stats["http"], stats["messages"], stats["mode"]) == ({"200": 1, "500": 1}, 1, "500")
    client.clear()
    assert (client.stats()["messages"], rcv.store.mode_state()["mode"]) == (0, "500")
    client.reset()
    assert client.stats() == {"http": {}, "smtp": {}, "messages": 0, "mode": "ok"}


def test_a_refused_command_raises(client):
    with pytest.raises(ReceiverError, match="rc=2"):
        client.mode("sideways")


def _closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_health(client):
    assert client.health() is True
    gone = Receiver(control=f"http://127.0.0.1:{_closed_port()}")
    assert gone.health() is False
    start = time.monotonic()
    assert gone.wait_healthy(timeout=1) is False
    assert time.monotonic() - start < 10


def test_messages_of_an_unreachable_receiver_raise():
    with pytest.raises(ReceiverError, match="rc=3"):
        Receiver(control=f"http://127.0.0.1:{_closed_port()}").messages()


def test_a_container_receiver_runs_through_podman_exec():
    assert Receiver("secalert-x-receiver").command == [
        "podman", "exec", "secalert-x-receiver", "python3", "/receiver/receiver.py"]


# ------------------------------------------------------------------ fleet bring-up


@pytest.fixture()
def podman_calls(monkeypatch):
    calls = []
    monkeypatch.setattr(fleet, "podman", lambda *args, **kwargs: calls.append(args) or "")
    monkeypatch.setattr(fleet, "cleanup", lambda scenario: calls.append(("cleanup", scenario)))
    return calls


def test_fleet_start_brings_up_network_receiver_and_hosts(monkeypatch, podman_calls):
    monkeypatch.setattr(Receiver, "wait_healthy", lambda self, timeout=30: True)
    receiver = fleet.start("demo", [("secalert-demo-server", fleet.IMAGES["debian12"],
                                     "alert-server"),
                                    ("secalert-demo-client13", "img13", "client13")])
    assert receiver.container == "secalert-demo-receiver"
    label = "--label=secalert.scenario=demo"
    assert podman_calls == [
        ("cleanup", "demo"),
        ("network", "create", "--label", "secalert.scenario=demo", "secalert-demo"),
        ("run", "-d", "--pull=never", "--name=secalert-demo-receiver", "--hostname=receiver",
         label, "--network=secalert-demo", "--network-alias=receiver",
         f"--volume={fleet.TOP}/tests/receiver:/receiver:ro", fleet.IMAGES["debian12"],
         "python3", "/receiver/receiver.py", "serve"),
        ("run", "-d", "--pull=never", "--systemd=always", "--name=secalert-demo-server",
         "--hostname=alert-server", label, "--network=secalert-demo",
         "--network-alias=alert-server", fleet.IMAGES["debian12"], "/sbin/init"),
        ("run", "-d", "--pull=never", "--systemd=always", "--name=secalert-demo-client13",
         "--hostname=client13", label, "--network=secalert-demo",
         "--network-alias=client13", "img13", "/sbin/init"),
        ("exec", "secalert-demo-server", "timeout", "60", "systemctl", "is-system-running",
         "--wait"),
        ("exec", "secalert-demo-client13", "timeout", "60", "systemctl", "is-system-running",
         "--wait"),
    ]


def test_fleet_start_fails_when_the_receiver_does_not_answer(monkeypatch, podman_calls):
    monkeypatch.setattr(Receiver, "wait_healthy", lambda self, timeout=30: False)
    with pytest.raises(fleet.FleetError, match="secalert-bench-receiver does not answer"):
        fleet.start("bench", [])


def test_fleet_cli_exit_status(monkeypatch, podman_calls, capsys):
    monkeypatch.setattr(Receiver, "wait_healthy", lambda self, timeout=30: False)
    assert fleet.main(["demo", "--host", "n", "i", "a"]) == 1
    assert "fleet demo: secalert-demo-receiver does not answer" in capsys.readouterr().err
    assert ("run", "-d", "--pull=never", "--systemd=always", "--name=n", "--hostname=a",
            "--label=secalert.scenario=demo", "--network=secalert-demo", "--network-alias=a",
            "i", "/sbin/init") in podman_calls
