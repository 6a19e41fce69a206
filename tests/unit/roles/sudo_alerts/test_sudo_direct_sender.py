"""The direct-mode sender (roles/sudo_alerts/files/secalert_sudo_send.py) draining a
spool as the plugin fills it, against a real Apprise json:// target on 127.0.0.1."""

import http.server
import json
import os
import subprocess
import sys
import threading
import time

import pytest
import secalert_sudo_send as send
from secalert_apprise import render

# The runtime as the apprise role installs it (tests/unit/conftest.py links it there).
PURELIB = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", ".cache",
                       "unit-purelib")

EVENT = {
    "schema": 1, "type": "sudo", "time": "2026-11-26T14:26:16.032Z", "host": "web1",
    "pid": 4242, "user": "alice", "uid": 1000, "tty": "/dev/pts/3", "cwd": "/home/alice",
    "runas_user": "root", "runas_group": "root", "command": "/usr/bin/echo",
    "args": ["@everyone", "<@123456>", "\\x1b[31mred", "**bold** [x](http://evil)",
             "line\nbreak\x1b[2J", "A" * 5000],
    "decision": "accept", "plugin": "sudoers_policy", "truncated": True,
    "rule": "shell", "severity": "warning", "tags": ["sudo", "sudo-shell"],
}


class Receiver(http.server.ThreadingHTTPServer):
    """Takes json:// notifications: /fail answers 500, /deny 403, and a path in
    ``answers`` its codes in turn (then 200). ``received`` has what was taken, with the
    time it came (``times``)."""

    daemon_threads = True

    def __init__(self):
        self.received, self.times, self.answers = [], [], {}
        super().__init__(("127.0.0.1", 0), Handler)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        path = self.path.split("?")[0]
        script = self.server.answers.get(path) or []
        code = script.pop(0) if script else (
            500 if path.startswith("/fail") else 403 if path.startswith("/deny") else 200)
        if code == 200:
            self.server.received.append((self.path, json.loads(body)))
            self.server.times.append(time.monotonic())
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def http_receiver():
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def apprise_config(tmp_path, http_receiver):
    port = http_receiver.server_address[1]

    def write(targets):
        lines = ["urls:"]
        for path, tag in targets:
            lines += [f"  - json://127.0.0.1:{port}{path}?token=s3cr3t:", f"    - tag: {tag}"]
        config = tmp_path / "apprise.yml"
        config.write_text("\n".join(lines) + "\n")
        config.chmod(0o600)
        return str(config)

    return write


@pytest.fixture(autouse=True)
def logged(monkeypatch):
    lines = []
    monkeypatch.setattr(send, "log", lambda message, priority="err": lines.append(message))
    # main() resets signal dispositions for the detached process: not in pytest's.
    monkeypatch.setattr(send, "_prepare_process", lambda timeout: None)
    return lines


@pytest.fixture
def spool(tmp_path):
    """The spool the plugin appends to: ``spool(*events)`` appends JSON lines (or raw
    bytes), ``spool.path`` and ``spool.lock`` are what the sender is given."""
    path = tmp_path / "spool"

    def write(*events):
        with open(path, "ab") as fh:
            for event in events:
                fh.write(event if isinstance(event, bytes) else (json.dumps(event) + "\n").encode())
        return str(path)

    write.path = str(path)
    write.lock = str(tmp_path / "lock")
    return write


def drain_argv(config, spool, gather=0, hold=0, *more):
    """The sender's command line; ``hold`` 0: one try per target, as the tests of what
    happens to undelivered events want (the shipped default waits for a failing target)."""
    return ["--config", config, "--spool", spool.path, "--lock", spool.lock,
            "--gather", str(gather), "--hold", str(hold), *more]


def test_sends_safe_notification(apprise_config, http_receiver, spool, logged):
    config = apprise_config([("/chat", "sudo-shell"), ("/pager", "pager")])
    spool(EVENT)
    assert send.main(drain_argv(config, spool)) == send.EXIT_OK, logged
    ((path, payload),) = http_receiver.received  # only the target with a matching tag
    assert path.startswith("/chat")
    title, body = payload["title"], payload["message"]
    assert title == "[warning] sudo: alice ran /usr/bin/echo as root on web1"
    assert payload["type"] == "warning"
    assert "@\u200beveryone" in body and "<\u200b@" in body
    assert "@everyone" not in body and "<@123456>" not in body
    assert "\x1b" not in body and "\x1b" not in title
    assert len(body) <= render.SUDO_BODY_LIMIT and body.count("\n") < 15
    assert "command: /usr/bin/echo" in body and "rule: shell" in body
    assert "truncated at the source" in body
    assert logged == []


def test_an_events_own_tags_choose_its_targets(apprise_config, http_receiver, spool):
    config = apprise_config([("/chat", "sudo-denied"), ("/other", "other")])
    spool(dict(EVENT, decision="reject", reason="command not allowed", tags=["sudo-denied"],
               severity="critical"))
    assert send.main(drain_argv(config, spool)) == send.EXIT_OK
    ((path, payload),) = http_receiver.received
    assert path.startswith("/chat") and payload["type"] == "failure"
    assert payload["title"].startswith("[critical] sudo: alice was denied /usr/bin/echo")
    assert "reason: command not allowed" in payload["message"]


@pytest.mark.parametrize("targets, tags, expected", [
    ([("/chat", "chat")], ["sudo-shell"], send.EXIT_NO_MATCH),
    ([("/fail", "sudo")], ["sudo"], send.EXIT_FAILED),
])
def test_delivery_problems(apprise_config, spool, logged, targets, tags, expected):
    spool(dict(EVENT, tags=tags))
    assert send.main(drain_argv(apprise_config(targets), spool)) == expected
    # a target is named in its masked display form (targets.display_url): no query string,
    # so no token given as a parameter
    assert logged and all("s3cr3t" not in line and "token" not in line for line in logged)
    if expected == send.EXIT_FAILED:
        assert any(line.startswith(f"json://127.0.0.1:{port(logged)}/fail: transient (HTTP 500)")
                   for line in logged), logged


def port(lines):
    return next(line.split("127.0.0.1:", 1)[1].split("/", 1)[0] for line in lines
                if "127.0.0.1:" in line)


@pytest.mark.parametrize("raw, bad", [
    (b"", 0), (b"not json\n", 1), (b"[1, 2]\n", 1), (b"\xff\xfe\n", 1),
])
def test_bad_spool_lines_are_counted_and_the_rest_is_sent(apprise_config, http_receiver,
                                                          spool, logged, raw, bad):
    config = apprise_config([("/chat", "sudo")])
    spool(raw, EVENT)
    assert send.main(drain_argv(config, spool)) == send.EXIT_OK
    assert len(http_receiver.received) == 1
    assert [line for line in logged if "malformed" in line] == (
        [f"ignored {bad} malformed spool lines"] if bad else [])


def test_config_problems(tmp_path, spool, logged):
    spool(EVENT)
    assert send.main(drain_argv(str(tmp_path / "nope.yml"), spool)) == send.EXIT_CONFIG
    empty = tmp_path / "empty.yml"
    empty.write_text("urls: []\n")
    spool(EVENT)
    assert send.main(drain_argv(str(empty), spool)) == send.EXIT_CONFIG
    assert "defines no valid targets" in " ".join(logged)


@pytest.mark.parametrize("changes, title", [
    ({"decision": "error", "reason": "x"}, "[warning] sudo: error for alice running"),
    ({"decision": "close", "exit_status": 3}, "[warning] sudo: /usr/bin/echo by alice on web1 "
                                              "ended (exit 3)"),
    ({"decision": "close", "signal": 9}, "[warning] sudo: /usr/bin/echo by alice on web1 "
                                         "ended (signal 9)"),
    ({"type": "fault", "where": "config", "error": "ConfigError: x", "severity": "error"},
     "[error] sudo alerting fault on web1 (config)"),
    ({"type": "status", "state": "off", "where": "guard", "reason": "plugin missing",
      "severity": "critical"}, "[critical] sudo alerts OFF on web1"),
    ({"type": "status", "state": "on", "where": "guard", "reason": "plugin back",
      "severity": "warning"}, "[warning] sudo alerts back ON on web1"),
    ({"user": "@everyone\n**x**", "host": "<@1>"}, "[warning] sudo: @\u200beveryone **x** ran"),
])
def test_titles(changes, title):
    got, body, _unused = render.sudo_event(dict(EVENT, **changes))
    assert got.startswith(title)
    assert "\n" not in got and len(got) <= render.SUDO_TITLE_LIMIT


@pytest.mark.parametrize("codes, expected", [
    ([0, 0], 0), ([0, 1, 3], 1), ([0, 3], 3), ([4, 5], 5), ([], 0),
])
def test_aggregate(codes, expected):
    assert send.aggregate(codes) == expected


def test_the_script_runs_as_the_plugin_starts_it(apprise_config, http_receiver, spool):
    """A file run by path, as delivery.direct_argv starts it. On hosts the venv's Python
    runs it with -I and finds secalert_apprise in its site-packages; here the runtime is
    in .cache/unit-purelib, so -s and PYTHONPATH stand in for that."""
    config = apprise_config([("/chat", "sudo-shell")])
    spool(EVENT)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": os.path.abspath(PURELIB)}
    proc = subprocess.run(
        [sys.executable, "-s", send.__file__, *drain_argv(config, spool), "--timeout", "20"],
        env=env, cwd="/", capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"" and proc.stderr == b""
    assert len(http_receiver.received) == 1


def test_spool_gather_waits_for_the_rest_of_a_burst(apprise_config, http_receiver, spool):
    config = apprise_config([("/chat", "sudo")])
    spool(EVENT)
    late = threading.Timer(0.2, lambda: spool(*[EVENT] * 5))
    late.start()
    try:
        assert send.main(drain_argv(config, spool, gather=1.0)) == send.EXIT_OK
    finally:
        late.join()
    ((_unused, payload),) = http_receiver.received  # one digest, not 1 + a digest of 5
    assert payload["title"].startswith("[warning] sudo: 6 events on web1")


def test_spool_single_events_are_sent_one_by_one(monkeypatch, apprise_config, http_receiver,
                                                 spool, logged):
    config = apprise_config([("/chat", "sudo-shell"), ("/denied", "sudo-denied")])
    spool(EVENT, dict(EVENT, decision="reject", tags=["sudo", "sudo-denied"],
                      severity="critical"))
    assert send.main(drain_argv(config, spool)) == send.EXIT_OK, logged
    paths = sorted(path.split("?")[0] for path, _unused in http_receiver.received)
    assert paths == ["/chat", "/denied"]
    assert not os.path.exists(spool.path) and not os.path.exists(spool.path + ".work")


def test_spool_burst_becomes_one_digest(monkeypatch, apprise_config, http_receiver, spool,
                                        logged):
    config = apprise_config([("/chat", "sudo")])
    burst = [dict(EVENT, args=[f"n{i}", "@everyone"], user=f"u{i}") for i in range(40)]
    burst[7] = dict(burst[7], severity="critical")
    spool(*burst)
    assert send.main(drain_argv(config, spool)) == send.EXIT_OK, logged
    ((_unused, payload),) = http_receiver.received
    assert payload["title"] == "[critical] sudo: 40 events on web1 (40 accept)"
    body = payload["message"]
    assert len(body) <= render.SUDO_BODY_LIMIT and "@everyone" not in body
    # most severe first: the critical one leads, the others follow oldest first
    assert body.startswith("40 sudo events, most severe first:\n"
                           "- 2026-11-26T14:26:16.032Z u7 accept /usr/bin/echo n7")
    assert "\n- 2026-11-26T14:26:16.032Z u0 accept /usr/bin/echo n0" in body
    assert body.rsplit("\n", 1)[1].startswith("… and ")


def test_spool_left_alone_while_another_sender_holds_the_lock(apprise_config, http_receiver,
                                                              spool, logged):
    import fcntl

    config = apprise_config([("/chat", "sudo")])
    spool(EVENT)
    fd = os.open(spool.lock, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert send.main(drain_argv(config, spool)) == send.EXIT_OK
    finally:
        os.close(fd)
    assert http_receiver.received == [] and os.path.getsize(spool.path) > 0


def test_spool_leftover_of_a_crashed_sender_is_sent(apprise_config, http_receiver, spool):
    config = apprise_config([("/chat", "sudo")])
    spool(EVENT)
    os.rename(spool.path, spool.path + ".work")
    spool(dict(EVENT, user="bob"))
    assert send.main(drain_argv(config, spool)) == send.EXIT_OK
    users = sorted(p["title"].split()[2] for _unused, p in http_receiver.received)
    assert users == ["alice", "bob"]


@pytest.mark.parametrize("problem, expected, words", [
    ("apprise", send.EXIT_UNAVAILABLE, "apprise is not importable"),
    ("config", send.EXIT_CONFIG, "2 event(s) not sent"),
    ("target", send.EXIT_FAILED, "delivery failed for"),
])
def test_spool_failures_are_logged_with_counts(monkeypatch, apprise_config, spool, logged,
                                               problem, expected, words):
    config = apprise_config([("/fail", "sudo")])
    if problem == "apprise":
        monkeypatch.setitem(sys.modules, "apprise", None)
    elif problem == "config":
        config = "/nonexistent/apprise.yml"
    spool(EVENT, EVENT)
    assert send.main(drain_argv(config, spool)) == expected
    assert sum(int(line.split(" event(s)")[0].rsplit(" ", 1)[1]) for line in logged
               if words in line) == 2, logged
    assert not os.path.exists(spool.path)  # not retried for ever: logged instead


@pytest.mark.parametrize("argv", [
    ["--config", "x", "--spool", "/tmp/x"], ["--config", "x", "--lock", "/tmp/x"],
    ["--spool", "/tmp/x", "--lock", "/tmp/y"], [],
])
def test_config_spool_and_lock_are_required(argv):
    with pytest.raises(SystemExit):
        send.parse_args(argv)


@pytest.mark.parametrize("problem", ["target", "config"])
def test_undelivered_events_end_up_in_syslog(apprise_config, spool, logged, problem):
    """The sender writes every event no target took to syslog itself: the plugin's own
    copy (syslog_copy) may have failed, so the line that says where they are is true."""
    config = apprise_config([("/fail", "sudo")])
    if problem == "config":
        config = "/nonexistent/apprise.yml"
    spool(EVENT, dict(EVENT, user="bob"))
    assert send.main(drain_argv(config, spool)) != send.EXIT_OK
    copies = [json.loads(line[len(send.UNSENT_PREFIX):]) for line in logged
              if line.startswith(send.UNSENT_PREFIX)]
    assert sorted(c["user"] for c in copies) == ["alice", "bob"]
    assert copies[0]["command"] == EVENT["command"]
    assert "2 undelivered event(s) are in syslog (written by secalert-send)" in logged


def test_status_event_through_the_spool_is_its_own_notification(apprise_config,
                                                                http_receiver, spool):
    config = apprise_config([("/chat", "sudo")])
    spool({"schema": 1, "type": "status", "state": "off", "time": "2026-12-01T17:00:00Z",
           "host": "web1", "where": "guard", "reason": "sudo.conf changed", "file": "",
           "detail": "", "action": "sudo-alerts-ctl enable", "severity": "critical",
           "tags": ["sudo", "secalert-status"], "dropped": 7})
    assert send.main(drain_argv(config, spool)) == send.EXIT_OK
    ((_unused, payload),) = http_receiver.received
    assert payload["title"] == "[critical] sudo alerts OFF on web1"
    assert payload["message"].startswith("reason: sudo.conf changed\n")
    assert "7 earlier sudo event(s) could not be logged" in payload["message"]
    assert " ran " not in payload["message"]


def _users(receiver):
    return [p["title"].split()[2] for _unused, p in receiver.received]


def _ledger(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="ascii") as handle:
        return [json.loads(line) for line in handle]


@pytest.mark.parametrize("state, waited", [(True, True), (False, False)])
def test_the_rate_limit_holds_from_one_sender_to_the_next(
        tmp_path, apprise_config, http_receiver, spool, logged, state, waited):
    """Each sender is a process of its own: the budget one spent is in --state for the
    next, whose event waits for the slot to free (limit 1 in 4 s). Without --state (the
    control) each sender has the whole budget."""
    config = apprise_config([("/chat", "sudo")])
    rate = ["--rate-limit", "1", "--rate-period", "4"]
    rate += ["--state", str(tmp_path / "rate")] if state else []
    spool(dict(EVENT, user="u1"))
    assert send.main(drain_argv(config, spool, 0, 30, *rate)) == send.EXIT_OK, logged
    spool(dict(EVENT, user="u2"))
    assert send.main(drain_argv(config, spool, 0, 30, *rate)) == send.EXIT_OK, logged
    assert _users(http_receiver) == ["u1", "u2"]
    gap = http_receiver.times[1] - http_receiver.times[0]
    assert (gap >= 3.0) == waited, gap  # not before the slot freed (4 s after the first)


def test_a_critical_event_is_not_buried_behind_held_events(tmp_path, apprise_config,
                                                           http_receiver, spool, logged):
    """Limit 2 a minute: the first event takes a slot, the second waits for the slot kept
    for critical events; a refusal that comes meanwhile takes it, in one digest with the
    waiting event, at once."""
    config = apprise_config([("/chat", "sudo")])
    rate = ["--rate-limit", "2", "--rate-period", "60", "--state", str(tmp_path / "rate")]
    spool(dict(EVENT, user="u1"))
    assert send.main(drain_argv(config, spool, 0, 30, *rate)) == send.EXIT_OK, logged
    spool(dict(EVENT, user="u2"))
    critical = dict(EVENT, user="mallory", decision="reject", severity="critical")
    late = threading.Timer(0.5, lambda: spool(critical))
    late.start()
    try:
        assert send.main(drain_argv(config, spool, 0, 30, *rate)) == send.EXIT_OK, logged
    finally:
        late.join()
    titles = [p["title"] for _unused, p in http_receiver.received]
    assert len(titles) == 2 and titles[1].startswith("[critical] sudo: 2 events on web1"), titles
    assert "u2" in http_receiver.received[1][1]["message"]


def test_a_429_is_retried_until_the_target_takes_it(tmp_path, apprise_config, http_receiver,
                                                    spool, logged):
    config = apprise_config([("/busy", "sudo")])
    http_receiver.answers["/busy"] = [429]
    ledger_path = str(tmp_path / "delivered.log")
    spool(EVENT)
    assert send.main(drain_argv(config, spool, 0, 30, "--rate-period", "2",
                                "--ledger", ledger_path)) == send.EXIT_OK, logged
    assert len(http_receiver.received) == 1
    assert any("rate-limited (HTTP 429), 1 event(s) kept, retry in 2 s" in x for x in logged)
    assert [row["tag"] for row in _ledger(ledger_path)] == ["sudo,sudo-shell"]


def test_the_ledger_holds_exactly_what_a_target_took(tmp_path, apprise_config, http_receiver,
                                                     spool, logged):
    """alice's event reaches /chat (and is refused by /deny: partial); bob's only has /deny:
    it is not in the ledger, it is in syslog."""
    config = apprise_config([("/chat", "sudo-shell"), ("/deny", "sudo")])
    ledger_path = str(tmp_path / "delivered.log")
    spool(EVENT, dict(EVENT, user="bob", tags=["sudo"]))
    code = send.main(drain_argv(config, spool, 0, 30, "--ledger", ledger_path))
    assert code == send.EXIT_FAILED, logged
    rows = _ledger(ledger_path)
    assert [r["title"] for r in rows] == [render.sudo_event(EVENT)[0]]
    assert rows[0]["body"] == render.sudo_event(EVENT)[1][:2000]
    assert os.stat(ledger_path).st_mode & 0o777 == 0o600
    unsent = [json.loads(x[len(send.UNSENT_PREFIX):])["user"] for x in logged
              if x.startswith(send.UNSENT_PREFIX)]
    assert unsent == ["bob"]
    assert sum("answered HTTP 403" in x for x in logged) == 2


def test_an_outage_longer_than_the_hold_ends_in_syslog(apprise_config, http_receiver, spool,
                                                       logged):
    config = apprise_config([("/fail", "sudo")])
    spool(EVENT)
    started = time.monotonic()
    assert send.main(drain_argv(config, spool, 0, 3)) == send.EXIT_FAILED
    assert 3.0 <= time.monotonic() - started < 30  # retried (backoff 2 s) until the hold
    assert sum("transient (HTTP 500)" in x for x in logged) >= 2
    assert any(x.startswith(send.UNSENT_PREFIX) for x in logged)


def test_a_sender_that_used_up_its_rounds_hands_over(monkeypatch, apprise_config, http_receiver,
                                                     spool, logged):
    """Events still in the spool when a sender has taken MAX_ROUNDS rounds (a long flood)
    are not left for the next sudo call: the sender says so and, run as a process, execs
    a new one (main() with argv given, as here, returns instead)."""
    monkeypatch.setattr(send, "MAX_ROUNDS", 0)
    spool(EVENT)
    assert send.main(drain_argv(apprise_config([("/chat", "sudo")]), spool)) == send.EXIT_OK
    assert "events still queued after 0 rounds: a new sender takes them" in logged
    assert http_receiver.received == [] and os.path.getsize(spool.path) > 0


def test_a_new_sender_takes_what_its_predecessor_left(apprise_config, http_receiver, spool):
    """The exec'd successor is the same script with the same arguments: run as a process,
    it drains what is left."""
    spool(EVENT)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": os.path.abspath(PURELIB)}
    proc = subprocess.run(
        [sys.executable, "-s", "-c",
         "import sys; sys.argv = sys.argv[1:]; "
         "import secalert_sudo_send as s; s.MAX_ROUNDS = 0; "
         "sys.path.insert(0, ''); s.main()",
         send.__file__, *drain_argv(apprise_config([("/chat", "sudo")]), spool),
         "--timeout", "20"],
        env=dict(env, PYTHONPATH=os.path.abspath(PURELIB) + ":" + os.path.dirname(send.__file__)),
        cwd="/", capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert len(http_receiver.received) == 1  # sent by the exec'd successor
