"""The sudo audit plugin's direct-mode sender: the other half of its spool protocol.

Usage (what the plugin and sudo-alerts-ctl start, detached, with the Apprise venv's
Python, which has ``secalert_apprise``)::

    /opt/secalert/venv/bin/python -I /usr/libexec/secalert/secalert_sudo_send.py \\
        --config /etc/secalert/apprise.yml \\
        --spool /run/secalert/sudo-spool --lock /run/secalert/sudo-sender.lock

The plugin (``secalert_sudo.delivery.spool_event``) appends events to the spool file, one
JSON line each, and starts a sender only when nobody holds ``--lock``. The sender holds
the lock while it drains the spool (rename, then an exclusive flock that waits for writers
still inside their one ``write()``), sends what it found, and repeats until the spool is
empty (it first waits ``--gather`` seconds, 1 by default, so that a burst arrives whole);
it re-checks the spool after releasing the lock, so an event appended while the plugin
saw the lock held is never stranded. Events with the same tags that arrive together are
sent as one digest when there are more than ``DIGEST_AFTER`` of them. An event's own
``tags`` choose its Apprise targets (any of them; ``sudo`` when it has none).

Each matching target gets the event in the format it renders (``render.renders_markdown``:
Markdown targets get escaped titles and bodies, the others plain text); decisions, faults
and status events each read their own way (``render.sudo_event``), and a digest lists the
most severe first and counts floods per user (``render.sudo_digest``).

Runs detached from sudo, so it may take its time, but never longer than ``--timeout``
(default 30 s) per round. Failures are logged to syslog (authpriv, ``secalert-send``)
without URLs or tokens. An event no target took is not retried: the sender writes it to
syslog itself (``UNSENT_PREFIX`` and the event's JSON line), whether or not the plugin's
own syslog copy got there, so the log line that says where it is is always true.

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

from secalert_apprise import render, targets, text

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


class SetupError(Exception):
    """Sending is impossible (no Apprise, no usable config); carries the exit status."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def build_apprise(config_path):
    """Return ``(apprise module, Apprise object)`` loaded from ``config_path``.

    Raises SetupError when Apprise is missing or the config is unreadable or empty.
    """
    try:
        import apprise
    except ImportError as exc:
        raise SetupError(EXIT_UNAVAILABLE, f"apprise is not importable: {exc}") from None
    try:
        with open(config_path, "rb"):
            pass
    except OSError as exc:
        raise SetupError(EXIT_CONFIG, f"cannot read {config_path}: {exc.strerror}") from None
    config = apprise.AppriseConfig()
    if not config.add(config_path):
        raise SetupError(EXIT_CONFIG, f"{config_path} is not a usable Apprise config")
    apobj = apprise.Apprise()
    apobj.add(config)
    if len(apobj) == 0:
        raise SetupError(EXIT_CONFIG, f"{config_path} defines no valid targets")
    return apprise, apobj


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
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    _prepare_process(args.timeout)
    try:
        return drain(args)
    except Timeout:
        return _fail(EXIT_TIMEOUT, f"gave up after {args.timeout} s")
    finally:
        signal.alarm(0)


def _tags(event):
    """The event's own tags choose its targets (any of them); ``sudo`` when it has none."""
    tags = [t for t in (event.get("tags") or []) if isinstance(t, str)]
    return tuple(tags or ["sudo"])


def _notify_tags(apprise, apobj, tags, compose):
    """Notify every target matching any of ``tags``, each in the format it renders.

    ``compose(markdown)`` returns ``(title, body, notify_type)``; it is called once per
    format, so Markdown targets get escaped titles and bodies and the others plain text.
    Returns an exit status: OK, NO_MATCH, PARTIAL or FAILED.
    """
    servers = list(apobj.find(tag=list(tags)))
    if not servers:
        return EXIT_NO_MATCH
    made, results = {}, []
    for index, server in enumerate(servers, 1):
        markdown = render.renders_markdown(server)
        if markdown not in made:
            made[markdown] = compose(markdown)
        title, body, kind = made[markdown]
        outcome, code = targets.notify_one(apprise, server, body, title, kind,
                                           "markdown" if markdown else "text")
        results.append(outcome == targets.OK)
        if outcome != targets.OK:
            service = getattr(server, "service_name", None) or type(server).__name__
            log(f"{service} target {index} of {len(servers)}: {outcome} (HTTP {code or '-'})")
    if all(results):
        return EXIT_OK
    return EXIT_PARTIAL if any(results) else EXIT_FAILED


def send_batch(apprise, apobj, events):
    """Send ``events``: one notification each, or a digest per tag set.

    Returns ``(codes, unsent)``: an exit status per notification and the events that no
    target took (a failed or partial notification, or no target for their tags).
    """
    groups = {}
    for event in events:
        groups.setdefault(_tags(event), []).append(event)
    codes, unsent = [], []
    for group_tags, group in groups.items():
        if len(group) > DIGEST_AFTER:
            messages = [((lambda md, g=group: render.sudo_digest(g, md)), group)]
        else:
            messages = [((lambda md, e=event: render.sudo_event(e, md)), [event])
                        for event in group]
        for compose, covered in messages:
            code = _notify_tags(apprise, apobj, group_tags, compose)
            codes.append(code)
            if code == EXIT_OK:
                continue
            unsent += covered
            if code == EXIT_NO_MATCH:
                log("no Apprise target is tagged {}: {} event(s) not sent".format(
                    " or ".join(_field(t, 64) for t in group_tags), len(covered)), "warning")
            else:
                log(f"delivery failed for {len(covered)} event(s), status {code}")
    return codes, unsent


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


def drain(args):
    """Spool mode: send what the spool holds until it is empty (see the module doc)."""
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    lock_fd = os.open(args.lock, flags, 0o600)
    try:
        if not _lock(lock_fd):
            return EXIT_OK  # another sender is draining; it re-checks before it exits
        codes = []
        sender = None
        # The sudo call that started us is still running: stay off the CPU while it
        # finishes, and let the rest of a burst reach the spool, before importing Apprise.
        time.sleep(min(max(0.0, args.gather), 10.0))
        for _round in range(MAX_ROUNDS):
            signal.alarm(max(1, int(args.timeout)))
            events, bad = take_spool(args.spool)
            if bad:
                log(f"ignored {bad} malformed spool lines", "warning")
            if events:
                try:
                    if sender is None:
                        sender = build_apprise(args.config)
                    more, unsent = send_batch(sender[0], sender[1], events)
                    codes += more
                except SetupError as exc:
                    codes.append(_fail(exc.code, f"{exc}: {len(events)} event(s) not sent"))
                    unsent = events
                except Timeout:
                    codes.append(_fail(EXIT_TIMEOUT, f"gave up after {args.timeout} s: "
                                       f"{len(events)} event(s) may not have been sent"))
                    unsent = events
                signal.alarm(0)
                keep_in_syslog(unsent)
                continue
            # Empty: let go of the lock, then look again. A plugin that appended while
            # it saw the lock held relies on this look.
            fcntl.flock(lock_fd, fcntl.LOCK_UN)
            if not _spool_pending(args.spool) or not _lock(lock_fd):
                return aggregate(codes)
        if _spool_pending(args.spool):
            log(f"events still queued after {MAX_ROUNDS} rounds: the next sender sends them",
                "warning")
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
