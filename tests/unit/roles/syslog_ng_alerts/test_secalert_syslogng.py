"""The syslog-ng apprise() destination, driven the way syslog-ng drives it.

``Driver`` plays syslog-ng's threaded worker: it hands queued messages to send() up to
batch-lines, calls flush(), acknowledges the batch on SUCCESS and rewinds it on any
other code (after close(); open() is retried once a second). Targets are fakes whose
answers come from a script, except in the last tests, which send through real Apprise to
a json:// receiver on 127.0.0.1.
"""

import http.server
import importlib
import itertools
import json
import threading

import pytest
import secalert_syslogng as mod
import syslogng
from secalert_apprise import render, targets

OK, LIMITED, TRANSIENT, PERMANENT = mod.OK, mod.LIMITED, mod.TRANSIENT, mod.PERMANENT


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class FakeServer:
    """Looks like an Apprise server object to render: a markdown service."""

    notify_format = "markdown"
    body_maxlen = 2000
    title_maxlen = 256

    def __init__(self, name):
        self.name = name

    def url(self, privacy=False):
        return f"fake://{self.name}" + ("" if privacy else "/secret")


_TRANSPORTS = itertools.count()


class FakeTransport:
    """The destination's transport, answering from a script: target name -> outcomes.

    ``sent`` records every delivered notification as (target, events, title, body);
    ``calls`` the simulated time of every notify; ``took`` how long each one lasts."""

    def __init__(self, clock, names, script=None, took=None):
        self.clock = clock
        # Keys are unique per transport: rate limiters are shared per key process-wide.
        # Not id(self): a freed transport's id comes back, and with it its limiter's
        # state (a test then found its slots used: 0 sends instead of 5, now and then).
        serial = next(_TRANSPORTS)
        self.servers = [(f"key-{n}-{serial}", n, FakeServer(n)) for n in names]
        self.script = {name: list(outcomes) for name, outcomes in (script or {}).items()}
        self.took = iter(took or [])
        self.sent, self.calls = [], []
        self.broken = False  # notify() raises, as a bug in a plugin would
        self.tagged = {}  # target name -> its tags, for events that bring their own
        self.own = None  # the targets of the destination's own tag (None: all of them)

    def targets(self, now, tags=None):
        """Every target for the destination's own tag; for an event's tags, the targets
        whose name is one of them (``tagged`` maps a tag to the names it selects)."""
        tags = targets.split_tags(tags)
        if not tags:
            return self.servers if self.own is None else self.own
        return [s for s in self.servers if set(self.tagged.get(s[1], ())) & set(tags)]

    def notify(self, server, body, title, notify_type, body_format):
        if self.broken:
            raise RuntimeError("bug")
        self.clock.now += next(self.took, 0.0)
        self.calls.append(self.clock.now)
        outcome = self.script.get(server.name, [])
        outcome = outcome.pop(0) if outcome else OK
        if outcome == OK:
            count = int(title.split(" events: ")[0]) if " events: " in title else 1
            self.sent.append((server.name, count, title, body))
        return outcome, {LIMITED: 429, TRANSIENT: 503, PERMANENT: 404}.get(outcome)


def msg(i, program="sudo"):
    return syslogng.LogMessage(f"event {i}", HOST="h1", PROGRAM=program, SEV="warning")


def make_dest(clock, script=None, targets=("a",), took=None, **options):
    """A destination whose transport is a FakeTransport (``dest.transport``)."""
    opts = {
        "title": "${HOST}: ${PROGRAM}",
        "body": "${MESSAGE}",
        "type": "${SEV}",
        "venv": "",
        "rate_limit": "100",
        "rate_period": "60",
        "report_interval": "300",
    }
    opts.update({k: str(v) for k, v in options.items()})
    dest = mod.AppriseDestination()
    dest.clock = clock
    dest.transport = FakeTransport(clock, targets, script, took)
    assert dest.init(opts) is True
    dest.sent = dest.transport.sent
    return dest


class Driver:
    """syslog-ng's worker loop around a python() destination, in simulated time."""

    def __init__(self, dest, clock, batch_lines=1000):
        self.dest, self.clock, self.batch_lines = dest, clock, batch_lines
        self.queue, self.acked, self.codes = [], 0, []
        self.connected = bool(dest.open())

    def log(self, *messages):
        self.queue.extend(messages)

    def cycle(self):
        """One batch: reconnect if needed, send, flush, ack or rewind."""
        if not self.connected:
            self.connected = bool(self.dest.open())
            if not self.connected:
                return None
        batch = self.queue[: self.batch_lines]
        if not batch:
            return None
        for m in batch:
            code = self.dest.send(m)
            assert code in (mod.QUEUED, mod.SUCCESS), code
            if code == mod.SUCCESS:  # acks this and everything queued before it
                raise AssertionError("send() acknowledged a batch")
        code = self.dest.flush()
        self.codes.append(code)
        assert self.dest.batch == []  # flush always empties its buffer
        if code == mod.SUCCESS:
            del self.queue[: len(batch)]
            self.acked += len(batch)
        else:
            assert code == mod.NOT_CONNECTED
            self.dest.close()
            self.connected = False
        return code

    def run(self, seconds, step=1.0):
        for _1 in range(int(seconds / step)):
            self.cycle()
            self.clock.now += step


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture(autouse=True)
def _records():
    syslogng.Logger.records.clear()
    yield


def delivered(dest, target="a"):
    return sum(n for t, n, _1, _2 in dest.sent if t == target)


def test_send_only_queues_and_flush_sends_one_digest(clock):
    dest = make_dest(clock)
    drv = Driver(dest, clock)
    drv.log(*(msg(i) for i in range(30)))
    assert drv.cycle() == mod.SUCCESS
    assert drv.acked == 30
    ((target, count, title, body),) = dest.sent
    assert (target, count) == ("a", 30)
    assert title == render.DIGEST_TITLE.format(count=30, label="h1: sudo")
    assert body.startswith(render.DIGEST_HEADER.format(count=30) + "\n• event 0\n• event 1\n")
    assert "more" not in body


def test_single_event_is_sent_as_itself(clock):
    dest = make_dest(clock)
    drv = Driver(dest, clock)
    drv.log(syslogng.LogMessage("@everyone **x**", HOST="h", PROGRAM="p", SEV="high"))
    drv.cycle()
    ((_1, _2, title, body),) = dest.sent
    assert title == "h: p"
    assert "@everyone" not in body and "\\*\\*x\\*\\*" in body


def test_a_flood_is_folded_into_one_counted_line(clock):
    dest = make_dest(clock, max_body=500)
    drv = Driver(dest, clock)
    drv.log(*(msg(i) for i in range(400)))
    drv.cycle()
    ((_1, count, _2, body),) = dest.sent
    assert count == 400 and len(body) <= 500
    assert body == (render.DIGEST_HEADER.format(count=400)
                    + "\n• sudo: 400 × h1: sudo, first: event 0; last: event 399")


def test_distinct_events_beyond_the_limit_are_counted_per_source(clock):
    dest = make_dest(clock, max_body=500, title="${MESSAGE}")
    drv = Driver(dest, clock)
    drv.log(*(msg(i, program=f"p{i % 2}") for i in range(2)))
    drv.log(*(msg(i, program="flood") for i in range(2, 400)))
    drv.cycle()
    ((_1, count, _2, body),) = dest.sent
    assert count == 400 and len(body) <= 500
    assert body.startswith(render.DIGEST_HEADER.format(count=400) + "\n• event 0\n• event 1\n")
    assert "• flood: 398 events (1 × event 2; 1 × event 3; 1 × event 4; 395 × others)" in body


def test_syslog_ng_own_messages_are_queued_and_skipped(clock):
    dest = make_dest(clock)
    drv = Driver(dest, clock)
    drv.log(msg(1), msg(2, program="syslog-ng"), msg(3))
    assert drv.cycle() == mod.SUCCESS and drv.acked == 3
    ((_1, count, _2, body),) = dest.sent
    assert count == 2 and "event 2" not in body
    assert dest.stats["ignored"] == 1


@pytest.mark.parametrize(
    "script, seconds, expect_codes",
    [
        # outage (5xx), then recovery: kept, then delivered once
        ({"a": [TRANSIENT, TRANSIENT]}, 30, [5, 5, 3]),
        # 429 then recovery
        ({"a": [LIMITED]}, 30, [5, 3]),
        # 500, 429, down, recovery
        ({"a": [TRANSIENT, LIMITED, TRANSIENT]}, 60, [5, 5, 5, 3]),
        # permanent error: reported, dropped, acknowledged, no retry
        ({"a": [PERMANENT]}, 5, [3]),
    ],
)
def test_return_codes_across_failures_lose_nothing(clock, script, seconds, expect_codes):
    dest = make_dest(clock, script=script, retry_max=5)
    drv = Driver(dest, clock)
    drv.log(*(msg(i) for i in range(10)))
    drv.run(seconds)
    assert drv.codes == expect_codes
    assert drv.queue == [] and drv.acked == 10
    assert delivered(dest) + dest.stats["dropped"] == 10
    if PERMANENT in script["a"]:
        assert dest.stats["dropped"] == 10
        assert any("HTTP 404" in m for _1, m in syslogng.Logger.records)


def test_events_arriving_during_outage_join_the_next_digest(clock):
    dest = make_dest(clock, script={"a": [TRANSIENT] * 3}, retry_max=4)
    drv = Driver(dest, clock)
    for i in range(40):
        drv.log(msg(i))
        drv.run(1)
    drv.run(30)
    assert drv.acked == 40 and drv.queue == []
    assert delivered(dest) == 40
    assert dest.stats["dropped"] == 0


@pytest.mark.parametrize("limit, period, events, minutes", [(5, 60, 300, 10), (2, 60, 50, 5)])
def test_rate_limit_per_target_never_drops(clock, limit, period, events, minutes):
    dest = make_dest(clock, rate_limit=limit, rate_period=period)
    drv = Driver(dest, clock, batch_lines=1000)
    sends_at = dest.transport.calls
    for i in range(events):  # a storm: one event every 0.5 s
        drv.log(msg(i))
        if i % 2:
            drv.run(1)
    drv.run(minutes * 60)
    assert delivered(dest) == events and drv.acked == events
    for t in sends_at:  # at most `limit` notifications in any window of `period`
        assert sum(1 for u in sends_at if t <= u < t + period) <= limit


def test_rate_limit_holds_by_arrival_when_sends_are_slow(clock):
    """A service counts by arrival: a slow first send must not let the sixth in early."""
    # the first request takes 3 s; the service stores it at the end
    dest = make_dest(clock, rate_limit=5, rate_period=60, took=[3.0])
    drv = Driver(dest, clock, batch_lines=1000)
    arrivals = dest.transport.calls
    for i in range(400):
        drv.log(msg(i))
        if i % 2:
            drv.run(1)
    drv.run(600)
    assert delivered(dest) == 400 and len(arrivals) > 5
    for t in arrivals:
        assert sum(1 for u in arrivals if t <= u < t + 60) <= 5


def test_partial_failure_does_not_duplicate_for_the_target_that_succeeded(clock):
    dest = make_dest(clock, targets=("a", "b"), script={"b": [TRANSIENT, TRANSIENT]}, retry_max=2)
    drv = Driver(dest, clock)
    drv.log(*(msg(i) for i in range(5)))
    drv.cycle()
    drv.log(*(msg(i) for i in range(5, 8)))  # arrive while b is failing
    drv.run(20)
    assert drv.acked == 8
    assert [n for t, n, _1, _2 in dest.sent if t == "a"] == [5, 3]
    assert [n for t, n, _1, _2 in dest.sent if t == "b"] == [8]


def test_permanent_error_reported_once_per_interval(clock):
    dest = make_dest(clock, targets=(), report_interval=60)
    drv = Driver(dest, clock)
    for i in range(100):
        drv.log(msg(i))
        drv.run(1)
    assert drv.acked == 100 and dest.stats["dropped"] == 100
    reports = [m for _1, m in syslogng.Logger.records if "no valid Apprise target" in m]
    assert len(reports) == 2  # at 0 s and 60 s
    assert "59 more event(s)" in reports[1]


def test_flush_exception_keeps_events(clock):
    dest = make_dest(clock)
    dest.transport.broken = True
    drv = Driver(dest, clock)
    drv.log(msg(1))
    assert drv.cycle() == mod.NOT_CONNECTED and drv.queue


def test_bad_options_fall_back_to_defaults_and_are_reported(clock):
    dest = mod.AppriseDestination()
    assert dest.init({"rate_limit": "not a number", "venv": ""}) is True
    assert dest.rate_limit == 5
    assert any("rate_limit" in m for _1, m in syslogng.Logger.records)
    assert dest.send(msg(1)) == mod.QUEUED


@pytest.mark.parametrize(
    "success, lines, expected",
    [
        (True, [], (OK, None)),
        (
            False,
            ["Failed to send JSON POST notification: Too Many Requests, error=429."],
            (LIMITED, 429),
        ),
        (False, ["Failed to send JSON POST notification: error=500."], (TRANSIENT, 500)),
        (False, ["Failed to send Discord notification: Not Found, error=404."], (PERMANENT, 404)),
        (False, ["A Connection error occurred sending JSON notification to x."], (TRANSIENT, None)),
    ],
)
def test_classify(success, lines, expected):
    assert targets.classify(success, lines) == expected


def test_works_without_logdestination_base(monkeypatch):
    """syslog-ng 3.38 has no syslogng.LogDestination: the module must still load."""
    monkeypatch.delattr(syslogng, "LogDestination")
    fresh = importlib.reload(mod)
    try:
        assert fresh.AppriseDestination.__mro__[1] is object
        assert fresh.AppriseDestination.NOT_CONNECTED == 5
    finally:
        monkeypatch.undo()
        importlib.reload(mod)


# -- real Apprise to a receiver on 127.0.0.1 ----------------------------------------------


class Receiver:
    def __init__(self):
        self.status, self.got = 200, []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.status == 200:
                    receiver.got.append({**json.loads(data), "path": self.path})
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    rx = Receiver()
    yield rx
    rx.stop()


def real_dest(tmp_path, port, clock, tag="sudo"):
    pytest.importorskip("apprise")
    cfg = tmp_path / "apprise.yml"
    cfg.write_text(f"urls:\n  - json://127.0.0.1:{port}/hook:\n      tag: sudo\n")
    dest = mod.AppriseDestination()
    dest.clock = clock
    dest.init(
        {
            "config": str(cfg),
            "tag": tag,
            "venv": "",
            "body": "${MESSAGE}",
            "title": "${HOST}",
            "retry_max": "2",
            "rate_limit": "100",
        }
    )
    return dest


def test_real_apprise_json_outage_then_recovery(tmp_path, receiver, clock):
    dest = real_dest(tmp_path, receiver.port, clock)
    drv = Driver(dest, clock)
    drv.log(*(syslogng.LogMessage(f"ev {i} @everyone", HOST="h") for i in range(3)))
    for status, code in ((500, mod.NOT_CONNECTED), (429, mod.NOT_CONNECTED), (200, 3)):
        receiver.status = status
        clock.now += 10
        assert drv.cycle() == code
    assert drv.acked == 3
    (got,) = receiver.got
    assert got["title"] == "3 events: h"
    assert got["message"].count("ev ") == 3 and "@everyone" not in got["message"]
    assert [m for _1, m in syslogng.Logger.records if "HTTP 500" in m]
    assert [m for _1, m in syslogng.Logger.records if "HTTP 429" in m]


def test_real_apprise_receiver_down(tmp_path, clock):
    rx = Receiver()
    port = rx.port
    rx.stop()  # nothing listens there now
    dest = real_dest(tmp_path, port, clock)
    drv = Driver(dest, clock)
    drv.log(syslogng.LogMessage("lost?", HOST="h"))
    assert drv.cycle() == mod.NOT_CONNECTED and drv.queue


def test_real_apprise_no_target_for_tag(tmp_path, receiver, clock):
    dest = real_dest(tmp_path, receiver.port, clock, tag="nosuch")
    drv = Driver(dest, clock)
    drv.log(syslogng.LogMessage("x", HOST="h"))
    assert drv.cycle() == mod.SUCCESS and dest.stats["dropped"] == 1
    assert receiver.got == []


@pytest.mark.parametrize(
    "severity, expected",
    [("emergency", "failure"), ("crit", "failure"), ("critical", "failure"),
     ("err", "failure"), ("warning", "warning"), ("notice", "info"), ("info", "info"),
     ("debug", "info"), ("nonsense", "warning")],
)
def test_syslog_severities_map_to_notify_types(clock, severity, expected):
    dest = make_dest(clock)
    drv = Driver(dest, clock)
    drv.log(syslogng.LogMessage("x", HOST="h1", PROGRAM="p", SEV=severity))
    assert drv.cycle() == mod.SUCCESS
    event = mod.Event(b"t", b"b", severity.encode(), b"p")
    assert dest.render(FakeServer("a"), [event])[2] == expected


@pytest.mark.parametrize("utf8_locale", [True, False])
def test_templates_format_to_str_or_bytes_like_the_c_side(clock, monkeypatch, utf8_locale):
    # python-logtemplate.c: str under a UTF-8 locale, bytes when the conversion fails.
    monkeypatch.setattr(syslogng, "CHARSET_UTF8", utf8_locale)
    dest = make_dest(clock)
    drv = Driver(dest, clock)
    drv.log(syslogng.LogMessage("caf\u00e9 1", HOST="h1", PROGRAM="sudo", SEV="warning"))
    assert drv.cycle() == mod.SUCCESS
    assert dest.sent == [("a", 1, "h1: sudo", "caf\u00e9 1")]


def test_stub_log_template_decodes_strictly_like_syslog_ng():
    bad = syslogng.LogMessage(b"bad \xff\xfe byte", HOST="h1")
    with pytest.raises(UnicodeDecodeError):
        syslogng.LogTemplate("${MESSAGE}").format(bad)
    assert syslogng.LogTemplate("${HOST}").format(bad) == "h1"


def test_invalid_utf8_between_two_real_events_loses_neither(tmp_path, receiver, clock):
    """The crafted line is queued like any other; a failed flush rewinds all three; the
    good flush delivers both real events (and the crafted one, shown with U+FFFD)."""
    dest = real_dest(tmp_path, receiver.port, clock)
    drv = Driver(dest, clock)
    drv.log(syslogng.LogMessage("real event one", HOST="h1", PROGRAM="sshd"),
            syslogng.LogMessage(b"crafted \xff\xfe line", HOST="h1", PROGRAM="evil"),
            syslogng.LogMessage("real event two", HOST="h1", PROGRAM="sshd"))
    receiver.status = 429
    assert drv.cycle() == mod.NOT_CONNECTED
    assert drv.acked == 0 and len(drv.queue) == 3  # nothing acked, nothing dropped
    clock.now += 10
    receiver.status = 200
    assert drv.cycle() == mod.SUCCESS and drv.acked == 3
    (got,) = receiver.got
    assert "real event one" in got["message"] and "real event two" in got["message"]
    assert "crafted \ufffd\ufffd line" in got["message"]
    assert dest.stats["unprintable"] == 1 and dest.stats["dropped"] == 0


def test_invalid_utf8_alone_after_receiver_down_is_delivered_later(tmp_path, clock):
    rx = Receiver()
    port = rx.port
    rx.stop()  # nothing listens there now
    dest = real_dest(tmp_path, port, clock)
    drv = Driver(dest, clock)
    drv.log(syslogng.LogMessage("real one", HOST="h1"),
            syslogng.LogMessage(b"\xc3(", HOST="h1"),
            syslogng.LogMessage("real two", HOST="h1"))
    assert drv.cycle() == mod.NOT_CONNECTED and len(drv.queue) == 3 and drv.acked == 0


def test_a_critical_event_is_not_held_back_by_a_flood(clock):
    """A flood uses the budget but for the reserved slot; the critical event gets it."""
    dest = make_dest(clock, rate_limit=5, rate_period=60)
    drv = Driver(dest, clock)
    for i in range(20):  # one lesser event a second
        drv.log(msg(i))
        drv.run(1)
    critical = syslogng.LogMessage("root login", HOST="h1", PROGRAM="sshd", SEV="critical")
    drv.log(critical)
    at = clock.now
    drv.run(2)
    carrying = [(when, body) for when, (_t, _n, _title, body) in
                zip(dest.transport.calls, dest.sent) if "root login" in body]
    assert carrying and carrying[0][0] <= at + 1, (dest.transport.calls, dest.sent)
    assert carrying[0][1].split("\n")[1] == "• root login"  # its own line, first
    calls = dest.transport.calls
    for t in calls:
        assert sum(1 for u in calls if t <= u < t + 60) <= 5


def _ledger(path):
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize(
    "script, seconds, in_ledger",
    [
        ({}, 1, 3),  # delivered at once: every event recorded
        ({"a": [TRANSIENT, TRANSIENT]}, 10, 3),  # after an outage: recorded once, at the end
        ({"a": [TRANSIENT] * 50}, 10, 0),  # still failing: nothing recorded
    ],
)
def test_ledger_records_exactly_the_delivered_events(tmp_path, clock, script, seconds, in_ledger):
    path = tmp_path / "delivered.log"
    dest = make_dest(clock, script=script, retry_max=2, ledger=str(path))
    drv = Driver(dest, clock)
    drv.log(*(msg(f"ledger-{i}") for i in range(3)))
    drv.run(seconds)
    rows = _ledger(path)
    assert len(rows) == in_ledger
    assert sorted(r["body"] for r in rows) == sorted(f"event ledger-{i}" for i in range(in_ledger))
    if rows:
        assert {r["tag"] for r in rows} == {"secalert"}
        assert path.stat().st_mode & 0o777 == 0o600


def test_ledger_rotates_and_a_broken_ledger_never_blocks_delivery(tmp_path, clock):
    path = tmp_path / "delivered.log"
    dest = make_dest(clock, ledger=str(path), ledger_max_bytes=10)
    drv = Driver(dest, clock)
    drv.log(msg(1))
    drv.cycle()
    drv.log(msg(2))
    drv.cycle()
    assert [r["body"] for r in _ledger(path)] == ["event 2"]
    assert [r["body"] for r in _ledger(tmp_path / "delivered.log.1")] == ["event 1"]

    broken = make_dest(clock, ledger=str(tmp_path / "missing-dir" / "delivered.log"))
    drv = Driver(broken, clock)
    drv.log(msg(3))
    assert drv.cycle() == mod.SUCCESS and drv.acked == 1
    assert any("delivery ledger" in m for _1, m in syslogng.Logger.records)


def test_a_full_batch_may_use_the_kept_slot(clock):
    """A full batch has a backlog behind it: keeping the slot would only fill the queue."""
    dest = make_dest(clock, rate_limit=5, rate_period=60, max_events=10)
    drv = Driver(dest, clock, batch_lines=10)
    drv.log(*(msg(i) for i in range(60)))
    drv.run(5)
    assert len(dest.transport.calls) == 5 and drv.acked == 50


def forwarded(text, origin, title="SSH login failure on web1"):
    """A client's event as the alert server holds it: the client's text, and the sender the
    server verified in .secalert.origin (the certificate's CN)."""
    return syslogng.LogMessage(text, HOST=origin, PROGRAM="sshd", SEV="warning", T=title,
                               **{".secalert.origin": origin})


def origin_dest(clock, tmp_path=None, **options):
    return make_dest(clock, title="${T}", origin="${.secalert.origin}", markdown="no",
                     **options)


def test_a_client_naming_another_host_is_shown_under_its_verified_name(clock, tmp_path):
    """A compromised client (web2) writes web1's name into its title and body, one line
    of them through a Unicode line separator: every line still starts with web2."""
    dest = origin_dest(clock, ledger=str(tmp_path / "delivered.log"))
    drv = Driver(dest, clock)
    drv.log(forwarded("web1 sshd: Failed password for root\u2028web1 sshd: again", "web2"))
    drv.cycle()
    ((_1, _2, title, body),) = dest.sent
    assert title == "[web2] SSH login failure on web1"
    assert body == "[web2] web1 sshd: Failed password for root\n[web2] web1 sshd: again"
    # the ledger keeps the text as sent and the verified sender beside it
    ((row,),) = [_ledger(tmp_path / "delivered.log")]
    assert (row["origin"], row["title"]) == ("web2", "SSH login failure on web1")


def test_text_that_starts_with_its_verified_sender_is_left_as_it_is(clock):
    dest = origin_dest(clock)
    drv = Driver(dest, clock)
    drv.log(forwarded("web2 sshd: Failed password for root", "web2", title="web2: sshd"))
    drv.cycle()
    ((_1, _2, title, body),) = dest.sent
    assert (title, body) == ("web2: sshd", "web2 sshd: Failed password for root")


def test_a_digest_attributes_every_line_and_counts_floods_per_sender(clock):
    dest = origin_dest(clock, max_body=600)
    drv = Driver(dest, clock)
    drv.log(forwarded("web1 sshd: forged", "web2"), forwarded("web1 sshd: real", "web1"),
            *(forwarded(f"web1 sshd: flood {i}", "web2") for i in range(300)))
    drv.cycle()
    ((_1, count, title, body),) = dest.sent
    assert count == 302
    assert title == "302 events: [web2] SSH login failure on web1 and others"
    lines = body.splitlines()[1:]
    assert "• web1 sshd: real" in lines
    # web2's flood, folded under its verified name; its title and examples keep their
    # own words (the fold line starts with the sender already)
    assert ("• web2 sshd: 301 × SSH login failure on web1, first: web1 sshd: forged; "
            "last: web1 sshd: flood 299") in lines
    assert not [line for line in lines if line.startswith("• web1") and "real" not in line]


def test_events_without_an_origin_are_shown_as_written(clock):
    """The alert server's own events (no .secalert.origin) and a standalone host's."""
    dest = origin_dest(clock)
    drv = Driver(dest, clock)
    drv.log(syslogng.LogMessage("alerts sshd: x", HOST="alerts", PROGRAM="sshd",
                                SEV="warning", T="SSH login failure on alerts"))
    drv.cycle()
    ((_1, _2, title, body),) = dest.sent
    assert (title, body) == ("SSH login failure on alerts", "alerts sshd: x")


def tagged(i, tags):
    return syslogng.LogMessage(f"event {i}", HOST="h1", PROGRAM="sudo", SEV="warning",
                               TAGS=tags)


def test_an_events_own_tags_choose_its_targets(clock):
    """Any target with any of the event's tags; an event without tags, or with tags no
    target carries, goes to the destination's tag() (here: every target)."""
    dest = make_dest(clock, targets=("sudo", "denied", "other"), tags="${TAGS}")
    dest.transport.tagged = {"sudo": ["sudo"], "denied": ["sudo-denied"], "other": ["x"]}
    drv = Driver(dest, clock)
    drv.log(tagged(1, "sudo,sudo-denied"), tagged(2, "sudo"), tagged(3, ""),
            tagged(4, "nobody"), tagged(5, '"sudo-denied"'))
    assert drv.cycle() == mod.SUCCESS
    got = {t: sorted(line for line in body.splitlines() if line.startswith("• "))
           for t, _1, _2, body in dest.sent}
    assert got == {
        "sudo": ["• event 1", "• event 2", "• event 3", "• event 4"],
        "denied": ["• event 1", "• event 3", "• event 4", "• event 5"],
        "other": ["• event 3", "• event 4"],
    }
    assert dest.stats["delivered"] == 5 and dest.stats["dropped"] == 0


def test_events_no_target_takes_are_counted_and_the_others_delivered(clock):
    dest = make_dest(clock, targets=("sudo",), tags="${TAGS}")
    dest.transport.tagged = {"sudo": ["sudo"]}
    dest.transport.own = []  # nothing for the destination's own tag either
    drv = Driver(dest, clock)
    drv.log(tagged(1, "sudo"), tagged(2, "nobody"))
    assert drv.cycle() == mod.SUCCESS and drv.acked == 2
    ((target, count, _1, body),) = dest.sent
    assert (target, count, body) == ("sudo", 1, "event 1")
    assert (dest.stats["delivered"], dest.stats["dropped"]) == (1, 1)
    assert [m for _1, m in syslogng.Logger.records
            if "no valid Apprise target for tags 'nobody'" in m and "1 event(s) dropped" in m]


def test_an_outage_of_one_tags_target_replays_only_what_it_lacks(clock):
    """The tag set of each event routes the replay the same way: the target that had its
    events does not get them twice."""
    dest = make_dest(clock, script={"denied": [TRANSIENT]}, targets=("sudo", "denied"),
                     tags="${TAGS}", retry_max=2)
    dest.transport.tagged = {"sudo": ["sudo"], "denied": ["sudo-denied"]}
    drv = Driver(dest, clock)
    drv.log(tagged(1, "sudo"), tagged(2, "sudo,sudo-denied"))
    drv.run(10)
    assert drv.acked == 2 and drv.codes[0] == mod.NOT_CONNECTED
    assert [(t, n) for t, n, _1, _2 in dest.sent] == [("sudo", 2), ("denied", 1)]


def test_real_apprise_routes_by_the_events_tags(tmp_path, receiver, clock):
    pytest.importorskip("apprise")
    cfg = tmp_path / "apprise.yml"
    cfg.write_text(
        f"urls:\n"
        f"  - json://127.0.0.1:{receiver.port}/all:\n      tag: secalert, sudo\n"
        f"  - json://127.0.0.1:{receiver.port}/denied:\n      tag: sudo-denied\n")
    dest = mod.AppriseDestination()
    dest.clock = clock
    dest.init({"config": str(cfg), "tag": "secalert", "tags": "${TAGS}", "venv": "",
               "body": "${MESSAGE}", "title": "${MESSAGE}", "rate_limit": "100"})
    drv = Driver(dest, clock)
    drv.log(tagged(1, "sudo-denied"))
    assert drv.cycle() == mod.SUCCESS
    drv.log(tagged(2, ""))
    assert drv.cycle() == mod.SUCCESS
    # event 1 reached only the target tagged sudo-denied, event 2 (no tags) only the
    # destination's tag's
    assert [(m["path"], m["title"]) for m in receiver.got] == [
        ("/denied", "event 1"), ("/all", "event 2")]


def test_events_no_target_takes_go_to_the_fallback_tags(clock):
    """syslog_ng_alerts_default_tags: a target tagged secalert only still gets a sudo event
    tagged sudo, sudo-denied (upgrades from routing by the preset's fixed tags)."""
    dest = make_dest(clock, targets=("secalert", "web"), tags="${TAGS}", fallback="secalert")
    dest.transport.tagged = {"secalert": ["secalert"], "web": ["web"]}
    dest.transport.own = []  # the destination's own tag (sudo) has no target
    drv = Driver(dest, clock)
    drv.log(tagged(1, "sudo,sudo-denied"), tagged(2, "web"), tagged(3, ""))
    assert drv.cycle() == mod.SUCCESS
    got = {t: [line for line in body.splitlines() if line.startswith("• ")] or [body]
           for t, _1, _2, body in dest.sent}
    assert got == {"secalert": ["• event 1", "• event 3"], "web": ["event 2"]}


# -- render("sudo"): the sudo audit plugin's event lines, written by secalert_apprise.render

SUDO_LINE = {"schema": 1, "type": "sudo", "time": "2026-12-07T03:00:00Z", "host": "claimed",
             "user": "alice", "uid": 1000, "runas_user": "root", "command": "/bin/bash",
             "args": ["-c", "echo a,b"], "cwd": "/home/alice", "decision": "accept",
             "rule": "shell", "severity": "warning", "tags": ["sudo"]}


def sudo_line(host="web1", origin="", raw=None, **changes):
    """A sudo event as the notifying syslog-ng holds it: MESSAGE is the plugin's line;
    the rule's title and body are the fallback the preset sets."""
    line = raw if raw is not None else json.dumps(dict(SUDO_LINE, **changes))
    values = {"HOST": host, "PROGRAM": "secalert-sudo", "SEV": "warning",
              "R": "sudo", "T": f"sudo event on {host}"}
    if origin:
        values[".secalert.origin"] = origin
    return syslogng.LogMessage(line, **values)


def sudo_dest(clock, **options):
    return make_dest(clock, title="${T}", body="${HOST} ${PROGRAM}: ${MESSAGE}",
                     render="${R}", origin="${.secalert.origin}", markdown="no", **options)


def test_a_sudo_event_line_reads_as_the_direct_sender_writes_it(clock):
    """One renderer in both delivery modes: the destination's title and body are
    render.sudo_event's, under the host syslog-ng knows (not the one the line claims);
    the arguments stay a list until they are shown ("echo a,b" is one argument)."""
    dest = sudo_dest(clock)
    drv = Driver(dest, clock)
    drv.log(sudo_line())
    drv.cycle()
    ((_1, _2, title, body),) = dest.sent
    direct = render.sudo_event(dict(SUDO_LINE, host="web1"))
    assert (title, body) == direct[:2]
    assert title == "[warning] sudo: alice ran /bin/bash as root on web1"
    assert body.splitlines()[0] == "command: /bin/bash -c 'echo a,b'"
    assert "claimed" not in title + body


def test_a_forwarded_sudo_event_starts_every_line_with_its_verified_sender(clock):
    dest = sudo_dest(clock)
    drv = Driver(dest, clock)
    drv.log(sudo_line(host="web2", origin="web2"))
    drv.cycle()
    ((_1, _2, title, body),) = dest.sent
    assert title == "[web2] [warning] sudo: alice ran /bin/bash as root on web2"
    assert all(line.startswith("[web2] ") for line in body.splitlines()), body


def test_sudo_events_in_a_digest_are_one_line_each_and_floods_fold(clock):
    dest = sudo_dest(clock, max_body=900)
    drv = Driver(dest, clock)
    critical = sudo_line(user="root", command="/usr/bin/stat", args=["/etc/shadow"],
                         rule="sensitive-file", severity="critical")
    drv.log(*(sudo_line(user="mallory", command="/bin/cat", args=[f"/etc/x-{i}"],
                        decision="reject", rule="denied") for i in range(40)), critical)
    drv.cycle()
    ((_1, count, title, body),) = dest.sent
    assert count == 41
    assert title.startswith("41 events: [critical] sudo: root ran /usr/bin/stat")
    lines = body.splitlines()
    assert lines[1] == ("• root ran /usr/bin/stat /etc/shadow as root on web1 "
                        "(cwd /home/alice): accept by rule sensitive-file, critical")
    assert lines[2].startswith("• secalert-sudo: 40 × [warning] sudo: mallory was denied "
                               "/bin/cat on web1, first: mallory was denied /bin/cat "
                               "/etc/x-0 on web1")


@pytest.mark.parametrize("raw, reason", [
    (b"\xffnot utf-8", "not UTF-8"),
    (b"secalert-sudo: plain text", "not JSON"),
    (b"[1, 2]", "not a JSON object but list"),
    (json.dumps(dict(SUDO_LINE, type="party")).encode(), "unknown type 'party'"),
])
def test_a_line_that_is_not_a_sudo_event_is_alerted_with_its_text_and_why(clock, raw,
                                                                          reason):
    dest = sudo_dest(clock)
    drv = Driver(dest, clock)
    drv.log(sudo_line(raw=raw))
    drv.cycle()
    ((_1, _2, title, body),) = dest.sent
    assert title == "sudo event on web1"
    assert body.startswith("web1 secalert-sudo: ")
    assert f"[secalert: not a readable sudo event line: {reason}" in body
    assert drv.acked == 1 and dest.stats["delivered"] == 1


def test_without_render_a_sudo_line_uses_the_templates(clock):
    dest = make_dest(clock, title="${T}", body="${MESSAGE}", markdown="no")
    drv = Driver(dest, clock)
    drv.log(sudo_line())
    drv.cycle()
    ((_1, _2, title, body),) = dest.sent
    assert (title, json.loads(body)["user"]) == ("sudo event on web1", "alice")
