"""The dead man's switch checker (roles/syslog_ng_alerts/files/secalert_deadman.py).

Stamp files are real files whose mtime is set by the test; the syslog calls are
collected instead of sent."""

import importlib.machinery
import importlib.util
import json
import os
import syslog

import pytest

PATH = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..",
                    "roles", "syslog_ng_alerts", "files", "secalert_deadman.py")
_loader = importlib.machinery.SourceFileLoader("secalert_deadman", PATH)
_spec = importlib.util.spec_from_loader("secalert_deadman", _loader)
deadman = importlib.util.module_from_spec(_spec)
_loader.exec_module(deadman)

BOUND = 30


@pytest.fixture()
def fleet(tmp_path):
    cfg = {"expected": ["web1", "web2"], "bound": BOUND, "dir": str(tmp_path),
           "state": str(tmp_path / "state.json"), "watchdog_interval": 0}
    events = []

    def stamp(host, when):
        path = tmp_path / f"{host}.seen"
        path.write_text(f"{int(when)}\n")
        os.utime(path, (when, when))

    def run(state, now):
        return deadman.check(cfg, state, now,
                             lambda ident, prio, ev: events.append((ident, prio, ev)))

    return cfg, events, stamp, run


def kinds(events):
    return [(e[2]["event"], e[2]["host"]) for e in events if isinstance(e[2], dict)]


def test_a_host_heard_within_the_bound_raises_nothing(fleet):
    _cfg, events, stamp, run = fleet
    stamp("web1", 1000)
    stamp("web2", 1000)
    run({}, 1000 + BOUND)
    assert events == []


def test_silent_once_then_back_with_the_silence_length(fleet):
    _cfg, events, stamp, run = fleet
    stamp("web2", 2000)
    stamp("web1", 1000)
    state = run({}, 1000)
    state = run(state, 1000 + BOUND + 5)
    state = run(state, 1000 + BOUND + 10)  # still silent: not repeated
    assert kinds(events) == [("silent", "web1")]
    silent = events[0]
    assert silent[1] == syslog.LOG_CRIT
    assert silent[2]["silent_for"] == BOUND + 5 and silent[2]["severity"] == "critical"
    stamp("web1", 1100)
    run(state, 1101)
    assert kinds(events) == [("silent", "web1"), ("back", "web1")]
    back = events[1][2]
    assert back["silent_for"] == 100 and back["severity"] == "warning"


def test_a_host_never_heard_from_is_reported_from_when_it_was_expected(fleet):
    _cfg, events, stamp, run = fleet
    stamp("web2", 5000)
    state = run({}, 5000)
    state = run(state, 5000 + BOUND)
    assert events == []
    state = run(state, 5000 + BOUND + 1)
    assert kinds(events) == [("never", "web1"), ("silent", "web2")]
    assert events[0][2]["last_seen"] == "never" and events[0][2]["silent_for"] == BOUND + 1


def test_the_state_survives_a_restart_of_the_checker(fleet):
    cfg, events, stamp, run = fleet
    stamp("web1", 1000)
    stamp("web2", 1000)
    deadman.save_json(cfg["state"], run({}, 1000 + BOUND + 1))
    again = deadman.load_json(cfg["state"], {})
    run(again, 1000 + BOUND + 50)
    assert sorted(kinds(events)) == [("silent", "web1"), ("silent", "web2")]
    assert oct(os.stat(cfg["state"]).st_mode & 0o777) == "0o600"


def test_watchdog_every_interval(fleet):
    cfg, events, stamp, run = fleet
    cfg["watchdog_interval"] = 60
    stamp("web1", 1000)
    stamp("web2", 1000)
    state = run({}, 1000)
    state = run(state, 1030)
    state = run(state, 1060)
    dogs = [e for e in events if e[0] == "secalert-watchdog"]
    assert len(dogs) == 2
    assert dogs[0][2].startswith("alert server alive at ")
    assert "2 expected client(s), 0 silent" in dogs[0][2]


def test_a_big_stamp_file_is_cut_back_and_keeps_its_time(fleet, tmp_path):
    _cfg, events, stamp, run = fleet
    path = tmp_path / "web1.seen"
    path.write_text("1\n" * 5000)
    os.utime(path, (1000, 1000))
    stamp("web2", 1000)
    run({}, 1001)
    assert path.stat().st_size == 0 and path.stat().st_mtime == 1000
    assert events == []


def test_main_logs_an_error_without_configuration(tmp_path, monkeypatch):
    sent = []
    monkeypatch.setattr(deadman, "log", lambda ident, prio, ev: sent.append(ev))
    assert deadman.main(["x", str(tmp_path / "missing.json")]) == 1
    assert sent and sent[-1]["event"] == "error"


def test_main_writes_the_state(tmp_path, monkeypatch):
    monkeypatch.setattr(deadman.syslog, "syslog", lambda *a: None)
    cfg = {"expected": ["web1"], "bound": BOUND, "dir": str(tmp_path),
           "state": str(tmp_path / "state.json"), "watchdog_interval": 0}
    (tmp_path / "c.json").write_text(json.dumps(cfg))
    assert deadman.main(["x", str(tmp_path / "c.json")]) == 0
    assert "web1" in json.loads((tmp_path / "state.json").read_text())["hosts"]
