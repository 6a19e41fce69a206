"""secalert_apprise.limits (the per-target rate limit) and secalert_apprise.ledger, which
the syslog-ng destination and the sudo direct-mode sender share."""

import json
import os

import pytest
from secalert_apprise import ledger, limits


def test_targets_share_one_limiter_per_settings():
    key = "shared-test-target"
    first = limits.shared(key, 2, 60.0)
    assert limits.shared(key, 2, 60.0) is first
    assert limits.shared(key, 3, 60.0) is not first
    # Two destinations reaching the same target draw from the same budget; the last
    # slot of the period is kept for a notification that carries a critical event.
    assert first.take(10.0)
    assert not limits.shared(key, 2, 60.0).take(11.0)
    assert limits.shared(key, 2, 60.0).take(11.0, critical=True)
    assert not first.take(12.0, critical=True)
    assert first.next_free(12.0) == 70.0 and first.next_free(12.0, critical=True) == 70.0
    assert first.take(70.0)  # lent: the other slot frees at 71, within LEND


def test_the_kept_slot_is_lent_only_when_a_slot_frees_soon():
    limiter = limits.RateLimiter(5, 60.0)
    for t in (0.0, 1.0, 2.0, 3.0):
        assert limiter.take(t)
    assert not limiter.take(4.0)  # the fifth slot is kept for a critical event ...
    assert limiter.next_free(4.0) == 60.0 - limiter.LEND  # ... lent 5 s before 0 expires
    assert limiter.take(55.0)
    assert not limiter.take(56.0, critical=True)  # five in the window: even critical waits
    assert limiter.next_free(56.0, critical=True) == 60.0
    fresh = limits.RateLimiter(5, 60.0)
    for t in (0.0, 1.0, 2.0, 3.0):
        fresh.take(t)
    assert fresh.take(4.0, critical=True)


def test_a_saved_budget_holds_in_the_next_process(tmp_path):
    """The direct-mode sender is a process per burst: what one spent, the next sees."""
    path = str(tmp_path / "rate")
    first = {"a": limits.RateLimiter(2, 60.0), "b": limits.RateLimiter(2, 60.0)}
    assert first["a"].take(100.0) and first["a"].take(101.0, critical=True)
    limits.save(path, first)
    assert os.stat(path).st_mode & 0o777 == 0o600
    later = limits.load(path, 2, 60.0, now=110.0)
    assert set(later) == {"a"}  # b never sent
    assert not later["a"].take(110.0, critical=True)
    assert later["a"].next_free(110.0, critical=True) == 160.0
    assert limits.load(path, 2, 60.0, now=161.5)["a"].sent == []  # the period is over


@pytest.mark.parametrize("content, mode, period, now", [
    (None, 0o600, 60.0, 110.0),  # no file yet
    (b"not json", 0o600, 60.0, 110.0),
    (b'{"period": 60.0, "targets": {"a": [100.0, 101.0]}}', 0o644, 60.0, 110.0),  # not ours
    (b'{"period": 30.0, "targets": {"a": [100.0, 101.0]}}', 0o600, 60.0, 110.0),  # other settings
    (b'{"period": 60.0, "targets": {"a": [100.0, 101.0]}}', 0o600, 60.0, 50.0),  # before a reboot
    (b'{"period": 60.0, "targets": {"a": ["x", null]}}', 0o600, 60.0, 110.0),
    (b'[1, 2]', 0o600, 60.0, 110.0),
])
def test_a_state_that_cannot_be_trusted_is_an_empty_budget(tmp_path, content, mode, period, now):
    path = tmp_path / "rate"
    if content is not None:
        path.write_bytes(content)
        path.chmod(mode)
    state = limits.load(str(path), 2, period, now)
    assert all(limiter.sent == [] for limiter in state.values())


def test_ledger_lines_are_ascii_json_and_rotate(tmp_path):
    path = str(tmp_path / "delivered.log")
    ledger.append(path, [ledger.line("sudo", "t\u2028itle", "b" * 5000, origin="web1")], 10)
    ledger.append(path, [ledger.line("sudo,x", "second", "body")], 10)
    with open(path + ".1", "rb") as handle:
        first = handle.read()
    assert first.isascii() and first.count(b"\n") == 1
    row = json.loads(first)
    assert (row["tag"], row["origin"], row["title"]) == ("sudo", "web1", "t\u2028itle")
    assert len(row["body"]) == ledger.BODY_LIMIT
    with open(path, encoding="ascii") as handle:
        assert [json.loads(x)["title"] for x in handle] == ["second"]
    assert os.stat(path).st_mode & 0o777 == 0o600
    with pytest.raises(OSError):
        ledger.append(str(tmp_path / "missing" / "delivered.log"), ["x\n"], 10)
