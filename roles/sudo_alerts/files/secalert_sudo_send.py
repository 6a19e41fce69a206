"""The sudo audit plugin's direct-mode sender: the other half of its spool protocol.

Usage (what the plugin and sudo-alerts-ctl start, detached, with the Apprise venv's
Python, which has ``secalert_apprise``)::

    /opt/secalert/venv/bin/python -I /usr/libexec/secalert/secalert_sudo_send.py \\
        --config /etc/secalert/apprise.yml \\
        --spool /run/secalert/sudo-spool --lock /run/secalert/sudo-sender.lock \\
        --rate-limit 5 --rate-period 60 --state /run/secalert/sudo-sender.rate \\
        --ledger /var/log/secalert/sudo-delivered.log

The plugin (``secalert_sudo.delivery.spool_event``) appends events to the spool file, one
JSON line each, and starts a sender only when nobody holds ``--lock``. The sender holds
the lock while it drains the spool (rename, then an exclusive flock that waits for writers
still inside their one ``write()``), sends what it found, and repeats until the spool is
empty and nothing is held back (it first waits ``--gather`` seconds, 1 by default, so that
a burst arrives whole); it re-checks the spool after releasing the lock, so an event
appended while the plugin saw the lock held is never stranded. After ``MAX_ROUNDS``
rounds that found events (a long flood) it stops taking more, finishes what it holds and
execs a new sender for what the spool still has.

Delivery is the syslog-ng destination's, per target (``Outbox``): an event's own ``tags``
choose its Apprise targets (any of them; ``sudo`` when it has none, the Apprise layer is
``secalert_apprise.targets``); each target gets its events one by one, or as one digest
when more than ``DIGEST_AFTER`` wait, within its rate limit (``secalert_apprise.limits``:
``--rate-limit`` per ``--rate-period``, the last slot kept for a critical event, the
budget kept in ``--state`` from one sender to the next). A 429, a 5xx or no answer keeps
the events and retries with backoff for up to ``--hold`` seconds; another 4xx drops them
for that target. Every event that a target took is written to the delivery ledger
(``--ledger``, ``secalert_apprise.ledger``), which ``playbooks/verify.yml`` reads.

Each target gets the event in the format it renders (``render.renders_markdown``:
Markdown targets get escaped titles and bodies, the others plain text); decisions, faults
and status events each read their own way (``render.sudo_event``), and a digest lists the
most severe first and counts floods per user (``render.sudo_digest``).

Runs detached from sudo, so it may take its time, but never longer than ``--timeout``
(default 30 s) per round of sending. Failures are logged to syslog (authpriv,
``secalert-send``) per target, named by its masked URL, never with tokens. An event no
target took (none matched its tags, every target refused it or failed for ``--hold``
seconds, Apprise or its config unusable) is written to syslog by the sender itself
(``UNSENT_PREFIX`` and the event's JSON line), whether or not the plugin's own syslog copy
got there, so the log line that says where it is is always true.

Exit status (Apprise's own codes where they exist, sysexits(3) for the rest):

====  ==========================================================================
0     every event was delivered (or the spool was empty, or another sender drains it)
1     delivery failed for at least one event
2     bad command line
3     no Apprise target matched the tags: nothing was sent
4     partial: some targets took an event, others did not
5     timed out
69    Apprise is not installed (EX_UNAVAILABLE)
78    the Apprise config is missing, unreadable or has no targets (EX_CONFIG)
====  ==========================================================================
"""

import argparse
import fcntl
import json
import os
import signal
import sys
import time

from secalert_apprise import ledger, limits, render, targets, text

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NO_MATCH = 3
EXIT_PARTIAL = 4
EXIT_TIMEOUT = 5
EXIT_UNAVAILABLE = 69
EXIT_CONFIG = 78

PROGRAM = "secalert-send"
MAX_SPOOL = 4 * 1024 * 1024  # read at most this much of the spool per round
DIGEST_AFTER = 3  # more events than this with the same tags in one round: one digest
MAX_ROUNDS = 50  # spool rounds per sender; what is left waits for the next sender
LOCK_WAIT = 5.0  # seconds to wait for writers still inside their write()
GATHER = 1.0  # let a burst accumulate (and the sudo that started us finish)
HOLD = 300.0  # seconds an event may wait for a target (rate limit, 429, outage)
RETRY_MAX = 60.0  # the longest backoff after a failed notification
POLL = 1.0  # seconds between looks at the spool while events are held back
CRITICAL_RANK = render.TYPE_RANK["failure"]  # may use the slot kept for critical events
# An event no target took, written to syslog by the sender: the event's own JSON line
# after this prefix.
UNSENT_PREFIX = "undelivered sudo event: "
UNSENT_LIMIT = 800  # characters of JSON per copy (a syslog line stays under 1 KiB)


class Timeout(Exception):  # noqa: N818
    pass


def parse_lines(data):
    """JSON objects, one per line of ``data`` (bytes); returns (events, bad lines)."""
    events, bad = [], 0
    for raw in data.splitlines():
        if not raw.strip():
            continue
        try:
            event = json.loads(raw.decode("utf-8", "replace"))
        except ValueError:
            bad += 1
            continue
        if isinstance(event, dict):
            events.append(event)
        else:
            bad += 1
    return events, bad


def log(message, priority="err"):
    """One line to syslog. Never raises: the sender has nobody else to tell."""
    try:
        import syslog

        syslog.openlog(PROGRAM, syslog.LOG_PID, syslog.LOG_AUTHPRIV)
        syslog.syslog(getattr(syslog, "LOG_" + priority.upper(), syslog.LOG_ERR),
                      text.safe(message, limit=900, multiline=False))
    except Exception:  # noqa: BLE001, S110 - logging must not fail the sender
        pass


def _field(value, limit=render.FIELD_LIMIT):
    return text.safe(value, limit=limit, multiline=False)


def _fail(code, message):
    log(message)
    return code


def _on_alarm(signum, frame):
    raise Timeout()


def _prepare_process(timeout):
    """Undo what the sudo process leaves us: blocked signals, ignored SIGTERM."""
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, signal.valid_signals())
    except (OSError, ValueError):
        pass
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(max(1, int(timeout)))


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="secalert_sudo_send.py",
                                     description="Send the sudo audit plugin's spooled "
                                                 "events through Apprise.")
    parser.add_argument("--config", required=True, help="Apprise config file (YAML/text)")
    parser.add_argument("--spool", required=True, help="the spool file to drain")
    parser.add_argument("--lock", required=True,
                        help="sender lock file, held while draining the spool")
    parser.add_argument("--timeout", type=int, default=30,
                        help="limit per round in seconds (default %(default)s)")
    parser.add_argument("--gather", type=float, default=GATHER,
                        help="seconds to wait for more events of a burst before the first "
                             "round (default %(default)s)")
    parser.add_argument("--hold", type=float, default=HOLD,
                        help="seconds an event may wait for a target that is rate limited "
                             "or failing before it is given to syslog (default %(default)s)")
    parser.add_argument("--rate-limit", type=_positive, default=5,
                        help="notifications per target in any --rate-period "
                             "(default %(default)s)")
    parser.add_argument("--rate-period", type=_positive, default=60,
                        help="seconds (default %(default)s)")
    parser.add_argument("--state", default="",
                        help="root-only file that keeps the rate limit between senders "
                             "(empty: this sender's alone)")
    parser.add_argument("--ledger", default="",
                        help="delivery ledger: one JSON line per delivered event (empty: none)")
    parser.add_argument("--ledger-max-bytes", type=_positive, default=10 * 1024 * 1024,
                        help="rotate the ledger beyond this size (default %(default)s)")
    return parser.parse_args(argv)


def _positive(value):
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


def main(argv=None):
    """The sender. Run as a process (``argv`` None) whose drain ends with events still in
    the spool after MAX_ROUNDS, it execs a new sender for them rather than leave them
    until the next sudo call starts one."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    args.restart = False
    _prepare_process(args.timeout)
    try:
        code = drain(args)
    except Timeout:
        code = _fail(EXIT_TIMEOUT, f"gave up after {args.timeout} s")
    finally:
        signal.alarm(0)
    if args.restart and argv is None:
        this = [sys.executable, *(["-I"] if sys.flags.isolated else []), os.path.abspath(__file__)]
        os.execv(sys.executable, this + sys.argv[1:])  # noqa: S606 - this script, its own argv
    return code


def _tags(event):
    """The event's own tags choose its targets (any of them); ``sudo`` when it has none."""
    tags = [t for t in (event.get("tags") or []) if isinstance(t, str)]
    return tuple(tags or ["sudo"])


class SetupError(Exception):
    """Sending is impossible (no Apprise, no usable config); carries the exit status."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


class Entry:
    """One event on its way: the targets that still owe it, and how it fared."""

    __slots__ = ("event", "tags", "since", "owed", "taken", "failed")

    def __init__(self, event, tags, since, owed):
        self.event, self.tags, self.since = event, tags, since
        self.owed = set(owed)  # keys of the targets that have not taken or refused it
        self.taken = 0  # targets that took it
        self.failed = 0  # targets that refused it, or that we gave up on


class Target:
    """One Apprise target: the events it owes, its rate limit and its backoff."""

    def __init__(self, key, name, server, limiter):
        self.key, self.name, self.server, self.limiter = key, name, server, limiter
        self.entries = []
        self.not_before = 0.0
        self.failures = 0

    def next_part(self, now):
        """``(entries, critical)`` of its next notification: the oldest event while the
        rate limit has a slot for each of the few that wait, else all of them as one
        digest (so a critical event never waits behind lesser ones)."""
        single = len(self.entries) <= min(DIGEST_AFTER, self.limiter.room(now))
        part = self.entries[:1] if single else list(self.entries)
        return part, any(render.rank(render.sudo_severity(e.event)) >= CRITICAL_RANK
                         for e in part)


class Outbox:
    """The events of one sender, per Apprise target, until each target took them.

    What the syslog-ng destination does for a batch, for the spool: an event goes to every
    target that has any of its tags; each target gets its events as they are (up to
    ``DIGEST_AFTER`` at a time) or as one digest, within its rate limit (the last slot of
    a period kept for a critical event); a 429, a 5xx or no answer keeps them and retries
    with backoff, for at most ``hold`` seconds after the event arrived; another 4xx drops
    them for that target. ``finished()`` hands out the events that every target is done
    with: delivered (taken by at least one) or not.
    """

    def __init__(self, transport, limiters, limit, period, hold, retry_max=RETRY_MAX):
        self.transport = transport
        self.limiters = limiters  # target key -> limits.RateLimiter (saved between senders)
        self.limit, self.period, self.hold = limit, period, hold
        self.retry_max = retry_max
        self.targets = {}
        self.entries = []

    def add(self, events, now):
        """Route ``events`` to their targets. Returns the codes of events no target takes
        (those are finished at once). Raises SetupError, having added nothing, while
        Apprise or its config is unusable."""
        routes = []
        for tags, group in _by_tags(events).items():
            found = self.transport.targets(now, tags)
            if found is None or (self.transport.apobj is not None
                                 and len(self.transport.apobj) == 0):
                raise self.transport.problem()
            routes.append((tags, group, found))
        codes = []
        for tags, group, found in routes:
            if not found:
                log("no Apprise target is tagged {}: {} event(s) not sent".format(
                    " or ".join(_field(t, 64) for t in tags), len(group)), "warning")
                self.entries += [Entry(e, tags, now, ()) for e in group]
                codes += [EXIT_NO_MATCH] * len(group)
                continue
            for key, name, server in found:
                if key not in self.targets:
                    limiter = self.limiters.get(key)
                    if limiter is None:
                        limiter = self.limiters[key] = limits.RateLimiter(self.limit,
                                                                          self.period)
                    self.targets[key] = Target(key, name, server, limiter)
            for event in group:
                entry = Entry(event, tags, now, (key for key, _1, _2 in found))
                self.entries.append(entry)
                for key, _1, _2 in found:
                    self.targets[key].entries.append(entry)
        return codes

    def send(self, clock):
        """One notification to every target that may send now. Returns True if any went."""
        went = False
        for target in self.targets.values():
            now = clock()
            if not target.entries or now < target.not_before:
                continue
            part, critical = target.next_part(now)
            if not target.limiter.take(now, critical):
                continue
            went = True
            markdown = render.renders_markdown(target.server)
            if len(part) == 1:
                title, body, kind = render.sudo_event(part[0].event, markdown)
            else:
                title, body, kind = render.sudo_digest([e.event for e in part], markdown)
            outcome, code = self.transport.notify(target.server, body, title, kind,
                                                  "markdown" if markdown else "text")
            target.limiter.settle(now, clock())
            if outcome in (targets.OK, targets.PERMANENT):
                target.failures = 0
                self._done(target, part, taken=outcome == targets.OK)
                if outcome == targets.PERMANENT:
                    log(f"{target.name}: answered HTTP {code}: {len(part)} event(s) "
                        "dropped for this target")
                continue
            target.failures += 1
            if outcome == targets.LIMITED:
                delay = max(self.period / self.limit, 2.0 ** target.failures)
            else:
                delay = 2.0 ** min(target.failures, 16)
            target.not_before = clock() + min(delay, self.retry_max)
            log(f"{target.name}: {outcome} (HTTP {code or '-'}), {len(part)} event(s) kept, "
                f"retry in {min(delay, self.retry_max):.0f} s", "warning")
        return went

    def expire(self, now):
        """Give up on what a target still owes ``hold`` seconds after the event came."""
        for target in self.targets.values():
            old = [e for e in target.entries if now - e.since >= self.hold]
            if old:
                log(f"{target.name}: delivery failed for {len(old)} event(s) within "
                    f"{self.hold:.0f} s")
                self._done(target, old, taken=False)

    def _done(self, target, entries, taken):
        done = {id(e) for e in entries}
        target.entries = [e for e in target.entries if id(e) not in done]
        for entry in entries:
            entry.owed.discard(target.key)
            if taken:
                entry.taken += 1
            else:
                entry.failed += 1

    def finished(self):
        """``(delivered, undelivered, codes)``: the entries no target owes any more."""
        done = [e for e in self.entries if not e.owed]
        self.entries = [e for e in self.entries if e.owed]
        delivered = [e for e in done if e.taken]
        codes = [EXIT_OK if not e.failed else EXIT_PARTIAL if e.taken else EXIT_FAILED
                 for e in done if e.taken or e.failed]
        return delivered, [e for e in done if not e.taken], codes

    def due(self, now):
        """When something may happen next: a target's slot or backoff ends, or an event's
        hold does. None when nothing is owed."""
        times = []
        for target in self.targets.values():
            if target.entries:
                critical = target.next_part(now)[1]
                times.append(max(target.not_before,
                                 target.limiter.next_free(now, critical)))
                times.append(min(e.since for e in target.entries) + self.hold)
        return min(times) if times else None


def _by_tags(events):
    groups = {}
    for event in events:
        groups.setdefault(_tags(event), []).append(event)
    return groups


class Transport(targets.AppriseTransport):
    """The Apprise layer of the collection, with the setup problem it last reported."""

    def __init__(self, config):
        super().__init__(config, "sudo", report=self._remember)
        self.reported = ("config", f"{config} is not usable")

    def _remember(self, key, message):
        self.reported = (key, message)

    def problem(self):
        key, message = self.reported
        if self.apobj is not None and len(self.apobj) == 0:
            return SetupError(EXIT_CONFIG, f"{self.config} defines no valid targets")
        if key == "import":  # "cannot import apprise (venv None): ModuleNotFoundError: ..."
            return SetupError(EXIT_UNAVAILABLE, "apprise is not importable: "
                              + message.partition("): ")[2])
        return SetupError(EXIT_CONFIG, message)


def record(path, entries, max_bytes):
    """The delivered events in the delivery ledger, as a plain-text target reads them."""
    if not path or not entries:
        return
    lines = []
    for entry in entries:
        title, body, _kind = render.sudo_event(entry.event)
        lines.append(ledger.line(",".join(entry.tags), title, body))
    try:
        ledger.append(path, lines, max_bytes)
    except OSError as exc:
        log(f"cannot write the delivery ledger {path}: {exc.strerror or exc}", "warning")


def _copy_line(event, limit=UNSENT_LIMIT):
    """The event as one JSON line that fits a syslog line (arguments dropped first)."""
    line = json.dumps(event, ensure_ascii=True, separators=(",", ":"))
    if len(line) > limit and event.get("args"):
        event = dict(event, args=["...[{} arguments omitted]".format(len(event["args"]))],
                     truncated=True)
        line = json.dumps(event, ensure_ascii=True, separators=(",", ":"))
    if len(line) > limit:
        keep = {k: event[k] for k in ("schema", "type", "time", "host", "user", "decision",
                                      "rule", "severity") if k in event}
        keep["truncated"] = True
        line = json.dumps(keep, ensure_ascii=True, separators=(",", ":"))[:limit]
    return line


def keep_in_syslog(events):
    """Write each undelivered event to syslog (authpriv, ``secalert-send``) as its JSON
    line, and say so. Always: the plugin's own syslog copy (``syslog_copy``) may have
    failed, and a second line in syslog costs less than a claim that is not true."""
    if not events:
        return
    for event in events:
        log(UNSENT_PREFIX + _copy_line(event), "warning")
    log(f"{len(events)} undelivered event(s) are in syslog (written by {PROGRAM})", "warning")


def _lock(fd, wait=0.0):
    """flock(LOCK_EX) with a bounded wait. True when held."""
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)


def take_spool(spool):
    """Move the spool aside and return ``(events, bad_lines)`` from it (and any leftover)."""
    work = spool + ".work"
    if not os.path.lexists(work):
        try:
            os.rename(spool, work)
        except FileNotFoundError:
            return [], 0
    fd = os.open(work, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        # Writers that opened the file before the rename hold a shared lock for the
        # length of one write(); an exclusive lock means they are done.
        if not _lock(fd, LOCK_WAIT):
            log("spool writer did not finish in time; reading anyway", "warning")
        data = b""
        while len(data) < MAX_SPOOL:
            chunk = os.read(fd, MAX_SPOOL - len(data))
            if not chunk:
                break
            data += chunk
        os.unlink(work)
    finally:
        os.close(fd)
    return parse_lines(data)


def _spool_pending(spool):
    try:
        return os.stat(spool).st_size > 0 or os.path.lexists(spool + ".work")
    except OSError:
        return os.path.lexists(spool + ".work")


def _load_limiters(args, now):
    return limits.load(args.state, args.rate_limit, float(args.rate_period), now) \
        if args.state else {}


def _save_limiters(args, limiters):
    if not args.state:
        return
    try:
        limits.save(args.state, limiters)
    except OSError as exc:
        log(f"cannot keep the rate limit in {args.state}: {exc.strerror or exc}", "warning")


def drain(args):
    """Spool mode: send what the spool holds until it is empty (see the module doc)."""
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    lock_fd = os.open(args.lock, flags, 0o600)
    try:
        if not _lock(lock_fd):
            return EXIT_OK  # another sender is draining; it re-checks before it exits
        codes = []
        # The sudo call that started us is still running: stay off the CPU while it
        # finishes, and let the rest of a burst reach the spool, before importing Apprise.
        time.sleep(min(max(0.0, args.gather), 10.0))
        outbox = None
        rounds = 0
        while True:
            signal.alarm(max(1, int(args.timeout)))
            events = []
            if rounds < MAX_ROUNDS:
                events, bad = take_spool(args.spool)
                if bad:
                    log(f"ignored {bad} malformed spool lines", "warning")
                rounds += 1 if events else 0
            unsent = []
            try:
                if outbox is None and events:
                    outbox = Outbox(Transport(args.config),
                                    _load_limiters(args, time.monotonic()),
                                    args.rate_limit, float(args.rate_period), args.hold)
                if events:
                    codes += outbox.add(events, time.monotonic())
                if outbox is not None:
                    if outbox.send(time.monotonic):
                        _save_limiters(args, outbox.limiters)
                    outbox.expire(time.monotonic())
                    delivered, unsent, more = outbox.finished()
                    codes += more
                    record(args.ledger, delivered, args.ledger_max_bytes)
            except SetupError as exc:
                # Nothing of these was added; what the outbox holds waits on (the config
                # may be back by the next look, or the events' hold ends).
                codes.append(_fail(exc.code, f"{exc}: {len(events)} event(s) not sent"))
                unsent = [Entry(e, (), 0.0, ()) for e in events]
                if outbox is not None and not outbox.entries:
                    outbox = None
            except Timeout:
                pending = len(outbox.entries) if outbox is not None else len(events)
                codes.append(_fail(EXIT_TIMEOUT, f"gave up after {args.timeout} s: "
                                   f"{pending} event(s) may not have been sent"))
                unsent = outbox.entries if outbox is not None else [
                    Entry(e, (), 0.0, ()) for e in events]
                outbox = None
            signal.alarm(0)
            keep_in_syslog([entry.event for entry in unsent])
            now = time.monotonic()
            due = outbox.due(now) if outbox is not None else None
            if due is not None:
                # Held back by a rate limit or a backoff: look at the spool meanwhile (a
                # critical event may use the slot kept for it), then try again.
                time.sleep(min(max(0.05, due - now), POLL))
                continue
            if events:
                continue
            # Empty: let go of the lock, then look again. A plugin that appended while
            # it saw the lock held relies on this look.
            fcntl.flock(lock_fd, fcntl.LOCK_UN)
            if not _spool_pending(args.spool) or not _lock(lock_fd):
                return aggregate(codes)
            if rounds >= MAX_ROUNDS:
                log(f"events still queued after {MAX_ROUNDS} rounds: a new sender takes "
                    "them", "warning")
                args.restart = True
                return aggregate(codes)
    finally:
        os.close(lock_fd)


def aggregate(codes):
    """One exit status for several events: success only if all succeeded."""
    if all(code == EXIT_OK for code in codes):
        return EXIT_OK
    if EXIT_FAILED in codes:
        return EXIT_FAILED
    return max(codes)


if __name__ == "__main__":
    sys.exit(main())
