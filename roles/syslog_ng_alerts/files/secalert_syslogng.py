"""syslog-ng python() destination that sends alerts through Apprise.

Used through the ``apprise()`` block in ``secalert-apprise.conf``; see the collection's
docs/syslog-ng-destination.md for the design. One code base for syslog-ng 3.38 (no
``syslogng.LogDestination``) and 4.x.

Delivery model (nothing is acknowledged before it is delivered or deliberately dropped):

- ``send()`` queues *every* message and returns QUEUED, whatever it holds: in a threaded
  syslog-ng destination SUCCESS or DROP from ``send()`` would ack or drop every message
  of the batch so far (logthrdestdrv.c), and an exception counts as ERROR for all of
  them. It renders the title/body/type/source templates; a template that cannot format
  a message (invalid UTF-8 makes ``LogTemplate.format()`` raise UnicodeDecodeError) gets
  a fallback rendered from the raw bytes with replacement characters. No network I/O;
  it never touches Apprise. An event whose ``render()`` template gives "sudo" is an
  event line of the sudo audit plugin (MESSAGE): ``render.sudo_event`` and
  ``render.sudo_line`` write its title, body and digest line, here, on the host that
  notifies (the alert server for its clients); the templates are kept for a line that
  cannot be read, with a note that says why.
- syslog-ng calls ``flush()`` when ``batch-lines()`` events are queued or
  ``batch-timeout()`` (the digest window) has passed. ``flush()`` always empties the
  buffer, then sends one notification per Apprise target: the event itself, or a digest
  (``render.digest``: most severe first, floods counted per source, "and N more").
- SUCCESS acknowledges the batch. When a target is rate limited, answered 429 or 5xx, or
  cannot be reached, ``flush()`` returns NOT_CONNECTED: syslog-ng rewinds and later sends
  the same events again (with newer ones appended): they join the next digest. Targets
  that already got a prefix of the batch skip that prefix on the replay.
- Permanent errors (no valid target for the tag, 4xx other than 408/425/429) are
  reported through syslog-ng's internal log at most once per ``report-interval`` and
  the events are dropped for that target instead of being retried for ever.
- Messages from syslog-ng itself (PROGRAM "syslog-ng") are queued like the others and
  skipped by ``flush()``, so this destination never alerts about its own reports.
- Rate limit (``secalert_apprise.limits``, one limiter per target shared by every
  destination of the process): at most ``rate_limit`` notifications per target in any
  ``rate_period``; the last slot of every period is kept for a notification that carries
  a critical (failure) event, so a flood of lesser events cannot use up the budget a
  critical one needs (it is lent to lesser events only when a slot frees within
  ``RateLimiter.LEND`` seconds anyway, so a critical event waits at most that long, and
  to a full batch of ``max_events``, which has a backlog behind it that must drain
  first). The service never sees more than ``rate_limit`` in a period.
- The delivery ledger (``secalert_apprise.ledger``): one line per delivered event.

Apprise itself is reached through a transport object (``secalert_apprise.targets.
AppriseTransport``: targets of the config for the tag, one notify per target); the
text is made by ``secalert_apprise.render``. All of it lives in the venv's purelib.
"""

import logging
import os
import sys
import time

try:
    import syslogng
except ImportError:  # unit tests use tests/unit/stubs/syslogng.py; this is a last resort
    syslogng = None

_Base = getattr(syslogng, "LogDestination", None) or object

DROP, ERROR, SUCCESS, QUEUED, NOT_CONNECTED, RETRY = 0, 1, 3, 4, 5, 6

DEFAULTS = {
    "config": "/etc/secalert/apprise.yml",
    "tag": "secalert",
    "title": "${HOST}: ${PROGRAM}",
    "body": "${ISODATE} ${HOST} ${PROGRAM}: ${MESSAGE}",
    "type": "warning",
    "source": "${PROGRAM}",
    "origin": "",
    "tags": "",
    "render": "",
    "fallback": "",
    "rate_limit": "5",
    "rate_period": "60",
    "markdown": "auto",
    "max_body": "0",
    "max_lines": "50",
    "max_events": "1000",
    "report_interval": "300",
    "retry_max": "60",
    "venv": "/opt/secalert/venv",
    "ledger": "",
    "ledger_max_bytes": "10485760",
}
TEMPLATES = ("title", "body", "type", "source", "origin", "tags")
# What a message shows when a template cannot format it (invalid UTF-8 and the like):
# the raw values, with replacement characters. Never a drop.
FALLBACK = {
    "title": "${HOST}: unprintable event from ${PROGRAM}",
    "body": "${HOST} ${PROGRAM}: ${MESSAGE}",
    "type": "warning",
    "source": "${PROGRAM}",
    "origin": None,  # the configured template itself, from the raw values
    "tags": None,
}
FALLBACK_NOTE = " [secalert: the event could not be formatted; invalid bytes shown as \ufffd]"
# What render("sudo") shows for a MESSAGE that is not a sudo event line: the templates'
# text and this note.
SUDO_UNREADABLE_NOTE = " [secalert: not a readable sudo event line: {reason}]"
_MACRO = ("${", "}")

# outcome of one notification to one target (secalert_apprise.targets has the same)
OK, LIMITED, TRANSIENT, PERMANENT = "ok", "rate-limited", "transient", "permanent"
FAILURE_RANK = 3  # render.TYPE_RANK["failure"]: a critical event
CRITICAL_POLL = 1.0  # seconds between looks for a critical event while rate limited


def venv_purelib(venv):
    """The site-packages directory of a venv made by this interpreter. The bootstrap that
    makes ``secalert_apprise`` importable, so it cannot come from there
    (``targets.venv_site_packages`` is the same rule for code that has it)."""
    major, minor = sys.version_info[:2]
    return os.path.join(venv, "lib", f"python{major}.{minor}", "site-packages")


class Target:
    """One Apprise service for the tag, with its own limiter, backoff and progress."""

    def __init__(self, key, server, name, limiter):
        self.key = key
        self.server = server
        self.name = name
        self.limiter = limiter
        self.not_before = 0.0
        self.failures = 0
        self.done = 0  # events of the current (replayed) batch this target already has
        self.done_fp = None

    def skip(self, batch):
        """How many leading events of ``batch`` this target got before a rewind."""
        if self.done and len(batch) >= self.done:
            if _fingerprint(batch[: self.done]) == self.done_fp:
                return self.done
        return 0

    def mark(self, batch):
        self.done = len(batch)
        self.done_fp = _fingerprint(batch)

    def reset(self):
        self.done, self.done_fp = 0, None


class Event(tuple):
    """One queued message: ``(title, body, type, source, origin, tags)`` as bytes, plus
    flags and ``line``.

    ``origin``: the sender the alert server verified for a forwarded event (empty for
    its own events and on a standalone host); ``render`` puts it in front of the text.
    ``tags``: the event's own Apprise tags ("a,b"), which choose its targets; empty: the
    destination's tag().
    ``line``: the event's line in a digest (a sudo event's ``render.sudo_line``); empty:
    the body.
    """

    __slots__ = ()

    def __new__(cls, title, body, ntype, source, origin=b"", tags=b"", own=False,
                fallback=False, line=b""):
        return super().__new__(cls, (title, body, ntype, source, own, fallback,
                                     hash((title, body, origin, tags)), origin, tags, line))

    title = property(lambda self: self[0])
    body = property(lambda self: self[1])
    ntype = property(lambda self: self[2])
    source = property(lambda self: self[3])
    own = property(lambda self: self[4])
    fallback = property(lambda self: self[5])
    fp = property(lambda self: self[6])
    origin = property(lambda self: self[7])
    tags = property(lambda self: self[8])
    line = property(lambda self: self[9])


def _fingerprint(events):
    return hash(tuple(e.fp for e in events))


class AppriseDestination(_Base):
    """The python() destination class: ``class("secalert_syslogng.AppriseDestination")``.

    ``transport`` (set by init(), replaceable by tests) is what reaches Apprise:
    ``targets(now)`` gives ``[(key, name, server)]`` or None while Apprise or its config
    is missing; ``notify(server, body, title, notify_type, body_format)`` gives
    ``(outcome, http code)``.
    """

    DROP, ERROR, SUCCESS, QUEUED, NOT_CONNECTED, RETRY = (
        DROP,
        ERROR,
        SUCCESS,
        QUEUED,
        NOT_CONNECTED,
        RETRY,
    )

    clock = staticmethod(time.monotonic)
    transport = None

    # -- syslog-ng callbacks ------------------------------------------------------------

    def init(self, options):
        try:
            return self._init(options)
        except Exception as exc:  # noqa: BLE001 - never stop syslog-ng from starting
            self._log("error", f"init failed, events stay queued: {exc!r}")
            return True

    def _init(self, options):
        opts = dict(DEFAULTS)
        for key, value in (options or {}).items():
            opts[str(key).replace("-", "_")] = str(value)
        self.opts = opts
        self.tag = opts["tag"]
        self.prefix = f"secalert apprise({self.tag}): "
        self.reported = {}
        self.rate_limit = max(1, self._number(opts, "rate_limit", int))
        self.rate_period = self._number(opts, "rate_period", float)
        self.max_body = self._number(opts, "max_body", int)
        self.max_lines = max(1, self._number(opts, "max_lines", int))
        self.max_events = max(1, self._number(opts, "max_events", int))
        self.report_interval = self._number(opts, "report_interval", float)
        self.retry_max = max(1.0, self._number(opts, "retry_max", float))
        self.markdown = opts["markdown"].lower()
        self.fallback = opts["fallback"] or None
        self.templates = [self._template(opts.get(k) or DEFAULTS[k], k) for k in TEMPLATES]
        self.render_as = self._template(opts["render"], "render") if opts["render"] else b""
        self.batch = []
        self.targets = {}
        self.next_attempt = 0.0
        self.opened = False
        self.stats = {"queued": 0, "delivered": 0, "dropped": 0, "ignored": 0,
                      "unprintable": 0}
        # syslog-ng 4.x forwards Python logging to its internal log: keep Apprise's
        # per-send INFO lines out of it; the warnings we classify still pass.
        logging.getLogger("apprise").setLevel(logging.WARNING)
        venv = opts["venv"]
        if venv:
            purelib = venv_purelib(venv)
            if os.path.isdir(purelib) and purelib not in sys.path:
                sys.path.insert(0, purelib)
        if self.transport is None:
            self.transport = self._apprise_transport()
        return True

    def _apprise_transport(self):
        """The real transport; None (events kept, reported) while the runtime is missing."""
        try:
            from secalert_apprise import targets
        except ImportError as exc:
            self._report("import", f"cannot import secalert_apprise (venv "
                                   f"{self.opts['venv']}): {exc}")
            return None
        return targets.AppriseTransport(self.opts["config"], self.tag, venv=None,
                                        report=self._report)

    def _number(self, opts, key, cast):
        try:
            return cast(opts[key])
        except ValueError:
            self._report("option", f"{key}({opts[key]!r}) is not a number, using the default")
            return cast(DEFAULTS[key])

    def _template(self, text, key):
        tmpl_cls = getattr(syslogng, "LogTemplate", None)
        if tmpl_cls is None or "$" not in text:
            return text.encode()
        options = getattr(self, "template_options", None)
        try:
            return tmpl_cls(text, options) if options is not None else tmpl_cls(text)
        except Exception as exc:  # noqa: BLE001 - a bad template must not stop syslog-ng
            self._report("option", f"{key}({text!r}) is not a valid template: {exc}")
            fallback = FALLBACK.get(key) or DEFAULTS[key]
            return tmpl_cls(fallback, options) if options is not None else tmpl_cls(fallback)

    def deinit(self):
        return None

    def open(self):
        self.opened = self.clock() >= self.next_attempt
        return self.opened

    def is_opened(self):
        return self.opened

    def close(self):
        self.opened = False

    def send(self, msg):
        """Queue ``msg``; always QUEUED (see the module doc: never ack or drop here)."""
        try:
            event = self._event(msg)
        except Exception as exc:  # noqa: BLE001 - even our own bug must not drop the batch
            event = Event(b"secalert: unprintable event", b"unprintable event (" +
                          type(exc).__name__.encode() + b")", b"warning", b"?", fallback=True)
        self.batch.append(event)
        self.stats["queued"] += 1
        return QUEUED

    def _event(self, msg):
        if _value(msg, "PROGRAM") == b"syslog-ng":
            return Event(b"", b"", b"", b"", own=True)
        rendered, fallback = [], False
        for key, tmpl in zip(TEMPLATES, self.templates):
            try:
                rendered.append(_format(tmpl, msg))
            except Exception:  # noqa: BLE001 - UnicodeDecodeError on invalid UTF-8 and others
                fallback = True
                rendered.append(_raw_format(FALLBACK[key] or self.opts[key], msg))
        if fallback:
            rendered[1] += FALLBACK_NOTE.encode()
        line = b""
        if self.render_as and _format_or_empty(self.render_as, msg) == b"sudo":
            rendered[0], rendered[1], rendered[2], line = self._sudo_text(msg, rendered)
        return Event(*rendered, fallback=fallback, line=line)

    def _sudo_text(self, msg, rendered):
        """``(title, body, type, line)`` of a sudo event line: render's, or the templates'
        with a note when the line cannot be read (never a drop)."""
        try:
            from secalert_apprise import render

            event = render.read_sudo(_value(msg, "MESSAGE"),
                                     host=_value(msg, "HOST").decode("utf-8", "replace"))
        except (ImportError, ValueError) as exc:
            note = SUDO_UNREADABLE_NOTE.format(reason=exc).encode("utf-8", "replace")
            return rendered[0], rendered[1] + note, rendered[2], b""
        title, body, _ntype = render.sudo_event(event)
        return (title.encode(), body.encode(), render.sudo_severity(event).encode(),
                render.sudo_line(event).encode())

    def flush(self):
        batch, self.batch = self.batch, []  # a failed flush re-sends the whole batch
        if not batch:
            return SUCCESS
        try:
            code = self._deliver(batch)
        except Exception as exc:  # noqa: BLE001
            self._report("flush", f"delivery failed, will retry: {exc!r}")
            self.next_attempt = self.clock() + 1.0
            code = NOT_CONNECTED
        if code == NOT_CONNECTED:
            self.opened = False
        return code

    # -- delivery -----------------------------------------------------------------------

    def _deliver(self, batch):
        """Deliver ``batch`` (the whole replayed batch); SUCCESS only when every target has
        every event of it (or dropped them for a permanent error)."""
        now = self.clock()
        own = sum(1 for e in batch if e.own)
        alerts = [e for e in batch if not e.own]
        if not alerts:
            self.stats["ignored"] += own
            return SUCCESS
        routed = self._routes(now, alerts)
        if routed is None:
            # Apprise or its config missing: keep everything until they are installed.
            self.next_attempt = now + min(self.retry_max, 30.0)
            return NOT_CONNECTED
        routes, orphans = routed
        if not routes:
            return self._done(alerts, orphans, own)
        pending_until = None
        # A full batch means more events wait in syslog-ng's queue behind it: a critical
        # one among them cannot be sent before this batch is acked, and the disk-buffer
        # fills. Such a batch may use the slot kept for critical events.
        backlog = len(batch) >= self.max_events
        for key, target in self.targets.items():
            mine = routes[key]
            part = mine[target.skip(mine) :]
            if not part:
                continue
            critical = backlog or any(self._rank(e) >= FAILURE_RANK for e in part)
            if now < target.not_before or not target.limiter.take(now, critical):
                wait = max(target.not_before, target.limiter.next_free(now, critical))
                if not critical and now >= target.not_before and target.limiter.reserve:
                    # Only the budget of lesser events is used up: look again soon, so a
                    # critical event that arrives meanwhile takes the reserved slot.
                    wait = min(wait, now + CRITICAL_POLL)
                pending_until = wait if pending_until is None else min(pending_until, wait)
                continue
            started = now
            outcome, code = self._notify(target, part)
            now = self.clock()
            target.limiter.settle(started, now)
            if outcome == OK:
                target.failures = 0
                target.mark(mine)
                continue
            if outcome == PERMANENT:
                target.mark(mine)
                self.stats["dropped"] += len(part)
                self._report(
                    "perm:" + target.key,
                    f"{target.name} answered HTTP {code}: "
                    f"{len(part)} event(s) dropped for this target",
                    count=len(part),
                )
                continue
            target.failures += 1
            if outcome == LIMITED:
                delay = max(self.rate_period / self.rate_limit, 2.0**target.failures)
            else:
                delay = 2.0 ** min(target.failures, 16)
            delay = min(delay, self.retry_max)
            target.not_before = now + delay
            self._report(
                f"{outcome}:{target.key}",
                f"{target.name}: {outcome} (HTTP {code or '-'}), "
                f"{len(part)} event(s) kept, retry in {delay:.0f} s",
            )
            pending_until = (
                target.not_before
                if pending_until is None
                else min(pending_until, target.not_before)
            )
        if pending_until is not None:
            self.next_attempt = pending_until
            return NOT_CONNECTED
        for target in self.targets.values():
            target.reset()
        return self._done(alerts, orphans, own)

    def _done(self, alerts, orphans, own):
        """The batch is through: count it, report what no target took, write the ledger."""
        if orphans:
            self.stats["dropped"] += len(orphans)
            tags = sorted({e.tags.decode("utf-8", "replace") or self.tag for e in orphans})
            self._report(
                "no-target",
                f"no valid Apprise target for tags {' / '.join(tags)!r} nor for tag "
                f"{self.fallback or self.tag!r} in {self.opts['config']}: {len(orphans)} "
                "event(s) dropped",
                count=len(orphans),
            )
        dropped = {id(e) for e in orphans}
        taken = [e for e in alerts if id(e) not in dropped] if orphans else alerts
        self.stats["delivered"] += len(taken)
        self.stats["ignored"] += own
        self.stats["unprintable"] += sum(1 for e in taken if e.fallback)
        self._record(taken)
        return SUCCESS

    def _rank(self, event):
        from secalert_apprise import render

        return render.rank(event.ntype)

    def _record(self, batch):
        """Append the delivered events to the ledger (``secalert_apprise.ledger``): what
        every target accepted, as the sender wrote it. A ledger that cannot be written is
        reported and never holds delivery back."""
        path = self.opts["ledger"]
        if not path:
            return
        try:
            from secalert_apprise import ledger

            def text(value):
                return value.decode("utf-8", "replace")

            ledger.append(path, [
                ledger.line(self.tag, text(e.title), text(e.body), origin=text(e.origin))
                for e in batch], self._number(self.opts, "ledger_max_bytes", int))
        except Exception as exc:  # noqa: BLE001 - the ledger never blocks delivery
            self._report("ledger", f"cannot write the delivery ledger {path}: {exc!r}")

    def _routes(self, now, alerts):
        """``({target key: [its events, batch order]}, [events no target takes])``, or
        None while the transport has no targets to give. ``self.targets`` becomes the
        targets of this batch (a known target keeps its backoff and progress).

        An event's own tags choose its targets (any target with any of them); an event
        without tags goes to the destination's tag(); one that no target takes so, to
        fallback() (empty: tag()).
        """
        if self.transport is None:
            self.transport = self._apprise_transport()
            if self.transport is None:
                return None
        from secalert_apprise import limits

        chosen = {}
        for tags in dict.fromkeys(e.tags for e in alerts):
            found = self.transport.targets(now, tags)
            if found is not None and not found and (tags or self.fallback):
                found = self.transport.targets(now, self.fallback)
            if found is None:
                return None
            chosen[tags] = found
        old, self.targets = self.targets, {}
        routes, orphans = {}, []
        for event in alerts:
            if not chosen[event.tags]:
                orphans.append(event)
            for key, name, server in chosen[event.tags]:
                if key not in self.targets:
                    target = old.get(key) or Target(
                        key, server, name,
                        limits.shared(key, self.rate_limit, self.rate_period))
                    target.server, target.name = server, name
                    self.targets[key] = target
                routes.setdefault(key, []).append(event)
        return routes, orphans

    def _notify(self, target, events):
        title, body, ntype, fmt = self.render(target.server, events)
        return self.transport.notify(target.server, body, title, ntype, fmt)

    def render(self, server, events):
        """Title, body, notify type and body format of one notification to ``server``."""
        from secalert_apprise import render

        markdown = render.renders_markdown(server, self.markdown)
        title_max, body_max = render.limits(server, self.max_body)
        if len(events) == 1:
            event = events[0]
            title, body, ntype = render.single(
                render.attribute(event.title, event.origin),
                render.attribute(event.body, event.origin, multiline=True),
                event.ntype, markdown, title_max, body_max)
        else:
            title, body, ntype = render.digest(
                [(e.title, e.line or e.body, e.ntype, e.source, e.origin) for e in events],
                markdown, title_max, body_max, self.max_lines)
        return title, body, ntype, "markdown" if markdown else "text"

    # -- reporting ----------------------------------------------------------------------

    def _report(self, key, message, count=1):
        """Log ``message`` at most once per report interval per ``key``."""
        now = self.clock()
        last, suppressed = self.reported.get(key, (None, 0))
        if last is not None and now - last < self.report_interval:
            self.reported[key] = (last, suppressed + count)
            return
        if suppressed:
            message += f" ({suppressed} more event(s) since the last report)"
        self.reported[key] = (now, 0)
        self._log("warning", message)

    def _log(self, level, message):
        message = getattr(self, "prefix", "secalert apprise: ") + message
        logger_cls = getattr(syslogng, "Logger", None)
        try:
            if logger_cls is not None:
                getattr(logger_cls(), level)(message)
                return
        except Exception:  # noqa: BLE001, S110 - fall back to stderr below
            pass
        print(message, file=sys.stderr)


def _format(tmpl, msg):
    """Format one template strictly, as syslog-ng does: str (UTF-8 locale) or bytes."""
    if isinstance(tmpl, bytes):
        return tmpl
    value = tmpl.format(msg)
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogateescape")


def _format_or_empty(tmpl, msg):
    try:
        return _format(tmpl, msg)
    except Exception:  # noqa: BLE001 - a value that cannot be formatted is not "sudo"
        return b""


def _raw_format(text, msg):
    """The fallback: ``${NAME}`` macros of ``text`` from the message's raw bytes, invalid
    UTF-8 replaced (U+FFFD). Never raises."""
    out, rest = [], text
    while _MACRO[0] in rest:
        head, _1, tail = rest.partition(_MACRO[0])
        name, closed, rest = tail.partition(_MACRO[1])
        out.append(head)
        out.append(_value(msg, name).decode("utf-8", "replace") if closed else _MACRO[0] + name)
    out.append(rest)
    return "".join(out).encode("utf-8")


def _value(msg, name):
    try:
        value = msg[name]
    except Exception:  # noqa: BLE001 - KeyError, or whatever the binding raises
        return b""
    if value is None:
        return b""
    return value if isinstance(value, bytes) else str(value).encode("utf-8", "replace")
