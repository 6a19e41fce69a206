# Copyright: (c) 2026, secalert.alerting contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rate limits per Apprise target: at most ``limit`` notifications in any ``period``.

One limiter per target (``targets.server_key``) and settings. The syslog-ng ``apprise()``
destination keeps its limiters for the life of the syslog-ng process (``shared``: several
destinations that reach one service share its budget); the sudo direct-mode sender, a
process per burst, keeps them in a root-only state file between its runs (``load`` and
``save``), so the budget holds across senders. Times are ``time.monotonic()`` seconds:
system-wide and never set back, and a state file under /run goes with a reboot as the
clock does.
"""

from __future__ import annotations

import json
import os
import threading

# How much of a state file is read at the most; entries beyond ``limit`` per target are
# never needed.
MAX_STATE_BYTES = 256 * 1024


class RateLimiter:
    """At most ``limit`` notifications in any ``period`` seconds (sliding window).

    With ``limit`` of 2 or more, the last slot of the window is kept for sends that carry
    a critical event (``take(now, critical=True)``). Lesser sends get it only when the
    window frees a slot within LEND seconds anyway, so a critical event that arrives
    meanwhile waits at most LEND seconds; a flood keeps nearly the whole budget (a storm
    drains at ~``limit`` per period, not ``limit - 1``). The total never exceeds ``limit``.
    """

    LEND = 5.0  # seconds: how long the kept slot may be lent to lesser events

    def __init__(self, limit, period, sent=()):
        self.limit = max(1, int(limit))
        self.period = max(0.0, float(period))
        self.reserve = 1 if self.limit >= 2 else 0
        self.sent = sorted(float(t) for t in sent)[-self.limit:]
        self.lock = threading.Lock()

    def take(self, now, critical=False):
        """Record a send and return True if one is allowed now (atomic)."""
        with self.lock:
            if not self.ready(now, critical):
                return False
            self.record(now)
            return True

    def _trim(self, now):
        while self.sent and self.sent[0] <= now - self.period:
            self.sent.pop(0)

    def room(self, now, critical=False):
        """How many sends of this kind the window allows now (the kept slot not lent)."""
        self._trim(now)
        return max(0, self.limit - (0 if critical else self.reserve) - len(self.sent))

    def ready(self, now, critical=False):
        return self.next_free(now, critical) <= now

    def next_free(self, now, critical=False):
        """The earliest time (>= now) a send of this kind is allowed."""
        self._trim(now)
        sent, limit = self.sent, self.limit
        if len(sent) < limit - (0 if critical else self.reserve):
            return now
        if critical or not self.reserve:
            return sent[len(sent) - limit] + self.period
        # lesser: when exactly limit-1 remain and the oldest of them expires within LEND
        full = sent[len(sent) - limit] + self.period if len(sent) >= limit else now
        return max(now, full, sent[len(sent) - limit + 1] + self.period - self.LEND)

    def record(self, now):
        self.sent.append(now)
        self.sent.sort()

    def settle(self, started, finished):
        """The send that took its slot at ``started`` ended at ``finished``: count the slot
        from then on. The service counts by arrival, so a slow send (a big digest, a slow
        answer) must not let the next ones in early by the service's clock."""
        with self.lock:
            if started in self.sent:
                self.sent.remove(started)
                self.sent.append(max(started, finished))
                self.sent.sort()


# One limiter per (target, limit, period) for the whole process: several syslog-ng
# apprise() destinations (one per tag set) that reach the same service share its budget.
_SHARED = {}
_SHARED_LOCK = threading.Lock()


def shared(key, limit, period):
    """The process-wide limiter of one target for these settings."""
    with _SHARED_LOCK:
        limiter = _SHARED.get((key, limit, period))
        if limiter is None:
            limiter = _SHARED[(key, limit, period)] = RateLimiter(limit, period)
        return limiter


def load(path, limit, period, now):
    """``{target key: RateLimiter}`` from the state file ``path`` (sends older than
    ``period`` before ``now`` forgotten, and any from the future: a state file from
    before a reboot). A missing, foreign or unreadable file is an empty state: the budget
    may then be spent once more, which the service's own 429 still catches."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return {}
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid() or st.st_mode & 0o077:
            return {}
        data = json.loads(os.read(fd, MAX_STATE_BYTES).decode("utf-8"))
        sends = data.get("targets", {}) if data.get("period") == period else {}
        return {str(key): RateLimiter(limit, period, [
            t for t in times if isinstance(t, (int, float)) and now - period < t <= now])
            for key, times in sends.items() if isinstance(times, list)}
    except (OSError, ValueError, AttributeError):
        return {}
    finally:
        os.close(fd)


def save(path, limiters):
    """Write the sends of ``limiters`` to ``path`` (0600, replaced atomically). Raises
    OSError."""
    period = next(iter(limiters.values())).period if limiters else 0.0
    data = {"period": period,
            "targets": {key: limiter.sent for key, limiter in limiters.items()
                        if limiter.sent}}
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            json.dump(data, handle, separators=(",", ":"))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
