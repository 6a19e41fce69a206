"""syslog-ng python() destination that sends alerts through Apprise.

Used through the ``apprise()`` block in ``secalert-apprise.conf``; see NOTES.md for the
design. One code base for syslog-ng 3.38 (no ``syslogng.LogDestination``) and 4.x.

Delivery model (nothing is acknowledged before it is delivered or deliberately dropped):

- ``send()`` renders the message with the title/body/type templates, keeps it in memory
  and returns QUEUED. No network I/O; it never touches Apprise.
- syslog-ng calls ``flush()`` when ``batch-lines()`` events are queued or
  ``batch-timeout()`` (the digest window) has passed. ``flush()`` always empties the
  buffer, then sends one notification per Apprise target: the event itself, or a digest
  ("N events" and a list that ends in "and N more").
- SUCCESS acknowledges the batch. When a target is rate limited, answered 429 or 5xx, or
  cannot be reached, ``flush()`` returns NOT_CONNECTED: syslog-ng rewinds and later sends
  the same events again (with newer ones appended): they join the next digest. Targets
  that already got a prefix of the batch skip that prefix on the replay.
- Permanent errors (no valid target for the tag, 4xx other than 408/425/429) are
  reported through syslog-ng's internal log at most once per ``report-interval`` and
  the events are dropped for that target instead of being retried for ever.
- Messages from syslog-ng itself (PROGRAM "syslog-ng") are acknowledged and ignored, so
  this destination never alerts about its own reports.
"""

import json
import logging
import os
import re
import sys
import threading
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
    "rate_limit": "5",
    "rate_period": "60",
    "markdown": "auto",
    "max_body": "0",
    "max_lines": "50",
    "report_interval": "300",
    "retry_max": "60",
    "venv": "/opt/secalert/venv",
    "ledger": "",
    "ledger_max_bytes": "10485760",
}

# notify types by name, and the syslog-style names a rule may use for severity
_TYPES = {
    "info": "info",
    "success": "success",
    "warning": "warning",
    "failure": "failure",
    "low": "info",
    "notice": "info",
    "medium": "warning",
    "warn": "warning",
    "high": "failure",
    "critical": "failure",
    "crit": "failure",
    "error": "failure",
    "err": "failure",
    "alert": "failure",
    "emerg": "failure",
    "emergency": "failure",
    "debug": "info",
}
_TYPE_RANK = {"success": 0, "info": 1, "warning": 2, "failure": 3}

# outcome of one notification to one target
OK, LIMITED, TRANSIENT, PERMANENT = "ok", "rate-limited", "transient", "permanent"
_HTTP_CODE_RE = re.compile(r"error=(\d{3})\b")


def classify(success, log_lines, timed_out=False):
    """Map an Apprise result (bool and captured log lines) to an outcome."""
    if success:
        return OK, None
    codes = [int(c) for line in log_lines for c in _HTTP_CODE_RE.findall(line)]
    if timed_out or not codes:
        return TRANSIENT, None  # connection refused, timeout, DNS: an outage
    code = codes[-1]
    if code == 429:
        return LIMITED, code
    if code >= 500 or code in (408, 425):
        return TRANSIENT, code
    return PERMANENT, code


def venv_purelib(venv):
    """The site-packages directory of a venv made by this interpreter."""
    major, minor = sys.version_info[:2]
    return os.path.join(venv, "lib", f"python{major}.{minor}", "site-packages")


class RateLimiter:
    """At most ``limit`` notifications in any ``period`` seconds (sliding window)."""

    def __init__(self, limit, period):
        self.limit = max(1, limit)
        self.period = max(0.0, period)
        self.sent = []
        self.lock = threading.Lock()

    def take(self, now):
        """Record a send and return True if one is allowed now (atomic)."""
        with self.lock:
            if not self.ready(now):
                return False
            self.record(now)
            return True

    def _trim(self, now):
        while self.sent and self.sent[0] <= now - self.period:
            self.sent.pop(0)

    def ready(self, now):
        self._trim(now)
        return len(self.sent) < self.limit

    def next_free(self, now):
        self._trim(now)
        if len(self.sent) < self.limit:
            return now
        return self.sent[0] + self.period

    def record(self, now):
        self.sent.append(now)

    def settle(self, started, finished):
        """The send that took its slot at ``started`` ended at ``finished``: count the slot
        from then on. The service counts by arrival, so a slow send (a big digest, a slow
        answer) must not let the next ones in early by the service's clock."""
        with self.lock:
            if started in self.sent:
                self.sent.remove(started)
                self.sent.append(max(started, finished))
                self.sent.sort()


# One limiter per (target, limit, period) for the whole syslog-ng process: several
# apprise() destinations (one per tag set) that reach the same service share its budget.
_LIMITERS = {}
_LIMITERS_LOCK = threading.Lock()


def shared_limiter(key, limit, period):
    """The process-wide limiter of one target for these settings."""
    with _LIMITERS_LOCK:
        limiter = _LIMITERS.get((key, limit, period))
        if limiter is None:
            limiter = _LIMITERS[(key, limit, period)] = RateLimiter(limit, period)
        return limiter


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


def _fingerprint(events):
    return hash(tuple(e[3] for e in events))


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        try:
            self.lines.append(record.getMessage())
        except Exception:  # noqa: BLE001 - a log record must never break delivery
            self.lines.append(str(record.msg))


# Apprise logs through the global "apprise" logger: one notification at a time per
# process, so the captured lines belong to that notification.
_NOTIFY_LOCK = threading.Lock()


class AppriseDestination(_Base):
    """The python() destination class: ``class("secalert_syslogng.AppriseDestination")``."""

    DROP, ERROR, SUCCESS, QUEUED, NOT_CONNECTED, RETRY = (
        DROP,
        ERROR,
        SUCCESS,
        QUEUED,
        NOT_CONNECTED,
        RETRY,
    )

    clock = staticmethod(time.monotonic)

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
        self.report_interval = self._number(opts, "report_interval", float)
        self.retry_max = max(1.0, self._number(opts, "retry_max", float))
        self.markdown = opts["markdown"].lower()
        self.templates = [self._template(opts, k) for k in ("title", "body", "type")]
        self.batch = []
        self.targets = {}
        self.apprise = None
        self.config_sig = None
        self.config_checked = -1e18
        self.next_attempt = 0.0
        self.opened = False
        self.stats = {"queued": 0, "delivered": 0, "dropped": 0, "ignored": 0}
        # syslog-ng 4.x forwards Python logging to its internal log: keep Apprise's
        # per-send INFO lines out of it; the warnings we classify still pass.
        logging.getLogger("apprise").setLevel(logging.WARNING)
        venv = opts["venv"]
        if venv:
            purelib = venv_purelib(venv)
            if os.path.isdir(purelib) and purelib not in sys.path:
                sys.path.insert(0, purelib)
        return True

    def _number(self, opts, key, cast):
        try:
            return cast(opts[key])
        except ValueError:
            self._report("option", f"{key}({opts[key]!r}) is not a number, using the default")
            return cast(DEFAULTS[key])

    def _template(self, opts, key):
        text = opts[key]
        tmpl_cls = getattr(syslogng, "LogTemplate", None)
        if tmpl_cls is None or "$" not in text:
            return text.encode()
        options = getattr(self, "template_options", None)
        try:
            return tmpl_cls(text, options) if options is not None else tmpl_cls(text)
        except Exception as exc:  # noqa: BLE001 - a bad template must not stop syslog-ng
            self._report("option", f"{key}({text!r}) is not a valid template: {exc}")
            return tmpl_cls(DEFAULTS[key]) if "$" in DEFAULTS[key] else DEFAULTS[key].encode()

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
        try:
            if _value(msg, "PROGRAM") == b"syslog-ng":
                self.stats["ignored"] += 1
                return SUCCESS  # never alert about syslog-ng's own (or our) messages
            # LogTemplate.format() returns str on some versions, bytes on others.
            title, body, ntype = (
                _as_bytes(t if isinstance(t, bytes) else t.format(msg)) for t in self.templates
            )
            self.batch.append((title, body, ntype, hash((title, body))))
            self.stats["queued"] += 1
            return QUEUED
        except Exception as exc:  # noqa: BLE001
            self._report("send", f"cannot format a message, dropped: {exc!r}")
            return DROP

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
        now = self.clock()
        if not self._load(now):
            # Apprise or its config missing: keep everything until they are installed.
            self.next_attempt = now + min(self.retry_max, 30.0)
            return NOT_CONNECTED
        if not self.targets:
            self.stats["dropped"] += len(batch)
            self._report(
                "no-target",
                f"no valid Apprise target for tag {self.tag!r} in {self.opts['config']}: "
                f"{len(batch)} event(s) dropped",
                count=len(batch),
            )
            return SUCCESS
        pending_until = None
        for target in self.targets.values():
            part = batch[target.skip(batch) :]
            if not part:
                continue
            if now < target.not_before or not target.limiter.take(now):
                wait = max(target.not_before, target.limiter.next_free(now))
                pending_until = wait if pending_until is None else min(pending_until, wait)
                continue
            started = now
            outcome, code = self._notify(target, part)
            now = self.clock()
            target.limiter.settle(started, now)
            if outcome == OK:
                target.failures = 0
                target.mark(batch)
                continue
            if outcome == PERMANENT:
                target.mark(batch)
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
        self.stats["delivered"] += len(batch)
        self._record(batch)
        return SUCCESS

    def _record(self, batch):
        """Append the delivered events to the ledger: what every target accepted.

        One JSON line per event (time, tag, title, body), root-only. playbooks/verify.yml
        reads it to confirm delivery. Kept to ledger_max_bytes by one rotation (.1). A
        ledger that cannot be written is reported and never holds delivery back.
        """
        path = self.opts["ledger"]
        if not path:
            return
        try:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            lines = "".join(
                json.dumps(
                    {"time": stamp, "tag": self.tag,
                     "title": title.decode("utf-8", "replace"),
                     "body": body.decode("utf-8", "replace")[:2000]},
                    ensure_ascii=False,
                ) + "\n"
                for title, body, _ntype, _fp in batch
            )
            try:
                if os.stat(path).st_size > self._number(self.opts, "ledger_max_bytes", int):
                    os.replace(path, path + ".1")
            except FileNotFoundError:
                pass
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as handle:
                handle.write(lines)
        except Exception as exc:  # noqa: BLE001 - the ledger never blocks delivery
            self._report("ledger", f"cannot write the delivery ledger {path}: {exc!r}")

    def _load(self, now):
        """(Re)load the Apprise config when it changed; False if Apprise is missing."""
        if self.apprise is not None and now - self.config_checked < 10.0:
            return True
        self.config_checked = now
        try:
            import apprise
        except ImportError as exc:
            self._report("import", f"cannot import apprise (venv {self.opts['venv']}): {exc}")
            return False
        path = self.opts["config"]
        try:
            st = os.stat(path)
            sig = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError as exc:
            # Not there (yet): a rollout in progress, keep the events until it is.
            self._report("config", f"cannot read {path}: {exc.strerror}")
            return False
        if self.apprise is not None and sig == self.config_sig:
            return True
        capture = _Capture()
        alog = logging.getLogger("apprise")
        with _NOTIFY_LOCK:
            alog.addHandler(capture)
            try:
                cfg = apprise.AppriseConfig()
                cfg.add(path)
                apobj = apprise.Apprise()
                apobj.add(cfg)
                servers = list(apobj.find(self.tag))
            finally:
                alog.removeHandler(capture)
        self.apprise, self.config_sig = apobj, sig
        old, self.targets = self.targets, {}
        for server in servers:
            key = _server_key(server)
            target = old.get(key) or Target(
                key,
                server,
                _server_name(server),
                shared_limiter(key, self.rate_limit, self.rate_period),
            )
            target.server = server
            self.targets[key] = target
        problems = [
            line
            for line in capture.lines
            if "rror" in line or "nvalid" in line or "nparseable" in line
        ]
        if problems or not servers:
            self._report(
                "config",
                f"{path}: {len(servers)} target(s) for tag {self.tag!r}, "
                f"{len(problems)} problem(s) while loading it",
            )
        return True

    def _notify(self, target, events):
        import apprise

        title, body, ntype, fmt = self._render(target, events)
        single = apprise.Apprise()
        single.add(target.server)
        capture = _Capture()
        alog = logging.getLogger("apprise")
        with _NOTIFY_LOCK:
            alog.addHandler(capture)
            try:
                result = single.notify(body=body, title=title, notify_type=ntype, body_format=fmt)
            finally:
                alog.removeHandler(capture)
        timed_out = str(getattr(result, "status", "")).endswith("TIMEOUT")
        return classify(bool(result), capture.lines, timed_out)

    def _render(self, target, events):
        """Title, body, notify type and body format of one notification."""
        from secalert_apprise import text

        server = target.server
        formats = getattr(server, "notify_format", "text")
        formats = formats if isinstance(formats, (tuple, list)) else (formats,)
        markdown = self.markdown in ("yes", "true", "1") or (
            self.markdown == "auto" and any(str(f) == "markdown" for f in formats)
        )
        title_max = min(getattr(server, "title_maxlen", 250) or 250, 250)
        body_max = getattr(server, "body_maxlen", 4000) or 4000
        if self.max_body > 0:
            body_max = min(body_max, self.max_body)
        ntype = max(
            (
                _TYPES.get(e[2].decode("utf-8", "replace").strip().lower(), "warning")
                for e in events
            ),
            key=_TYPE_RANK.__getitem__,
        )
        first_title = text.safe(events[0][0], multiline=False)
        if len(events) == 1:
            title = text.truncate(first_title, title_max)
            body = text.safe(events[0][1], limit=body_max - len(title) - 2, markdown=markdown)
        else:
            titles = {e[0] for e in events[: self.max_lines]}
            label = first_title if len(titles) == 1 else first_title + " and others"
            title = text.truncate(f"{len(events)} events: {label}", title_max)
            lines = [
                "• " + text.safe(e[1], limit=300, multiline=False, markdown=markdown)
                for e in events[: self.max_lines]
            ]
            body = text.digest_body(
                lines,
                limit=body_max - len(title) - 2,
                total=len(events),
                header=f"{len(events)} events, oldest first:",
            )
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


def _as_bytes(value):
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogateescape")


def _value(msg, name):
    try:
        value = msg[name]
    except (KeyError, IndexError, TypeError):
        return b""
    return value if isinstance(value, bytes) else str(value).encode()


def _server_key(server):
    import hashlib

    try:
        url = server.url()
    except Exception:  # noqa: BLE001
        url = repr(server)
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def _server_name(server):
    try:
        return server.url(privacy=True)
    except Exception:  # noqa: BLE001
        return type(server).__name__
