# Copyright: (c) 2026, secalert.alerting contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Apprise targets: load them, name them without secrets, notify one, classify the answer.

The one Apprise layer of the collection, used by the ``secalert.alerting.notify`` module
(through AnsiballZ), by the syslog-ng ``apprise()`` destination (``AppriseTransport``) and
by the sudo direct-mode sender. Apprise itself is never imported at module level: callers
pass the ``apprise`` module in (``import_apprise``), so this file imports with the
standard library alone.

Nothing here returns, raises or logs a target URL or a token: targets are shown in one
masked form (``display_url``: Apprise's privacy URL without its query string, with the
path tokens Apprise does not mask hidden) and Apprise's own messages are scrubbed before
they are kept.

Apprise lives in a virtualenv built with the system python3 (``/opt/secalert/venv`` by
default). ``import_apprise`` adds that venv's purelib directory to ``sys.path`` when the
plain import fails.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import sys
import threading
import traceback
from urllib.parse import unquote

NOTIFY_TYPES = ("info", "success", "warning", "failure")
BODY_FORMATS = ("text", "markdown", "html")
FAIL_POLICIES = ("any", "all")

# Apprise messages kept per target, and how long each may be.
MAX_ERRORS = 5
MAX_ERROR_LEN = 300

# Pieces of a URL shorter than this are not treated as secrets when scrubbing text
# (they would mask ordinary words); tokens and passwords are longer in practice.
MIN_SECRET_LEN = 4


class NotifyError(Exception):
    """A problem with the request (not with a target): the task fails with this text."""


def venv_site_packages(venv):
    """The purelib directory of a venv built by this interpreter's X.Y."""
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    return os.path.join(venv, "lib", version, "site-packages")


def import_apprise(venv=None):
    """Return ``(apprise, None)``, or ``(None, traceback_text)`` when it cannot be imported.

    When the plain import fails and ``venv`` is given, the venv's site-packages for the
    running Python X.Y is put first on ``sys.path`` and the import is tried again.
    """
    try:
        return importlib.import_module("apprise"), None
    except ImportError:
        error = traceback.format_exc()
    if venv:
        site = venv_site_packages(venv)
        if os.path.isdir(site):
            if site not in sys.path:
                sys.path.insert(0, site)
            importlib.invalidate_caches()
            for name in [m for m in sys.modules if m == "apprise" or m.startswith("apprise.")]:
                del sys.modules[name]
            try:
                return importlib.import_module("apprise"), None
            except ImportError:
                error = traceback.format_exc()
        else:
            error += f"\n{site} does not exist (no venv for this Python there)"
    return None, error


class LogCapture(logging.Handler):
    """Collect Apprise's log records instead of letting them reach stderr.

    While active, the ``apprise`` logger does not propagate, so no record (which may
    contain a URL) reaches the root logger or Python's last-resort stderr handler.
    """

    def __init__(self, level=logging.WARNING):
        super().__init__(level=level)
        self.records = []
        self._logger = logging.getLogger("apprise")
        self._saved = None

    def emit(self, record):
        try:
            self.records.append(record.getMessage())
        except Exception:  # noqa: BLE001 - a bad record must not break sending
            self.records.append("(unformattable Apprise log record)")

    def take(self):
        records, self.records = self.records, []
        return records

    def __enter__(self):
        self._saved = (self._logger.level, self._logger.propagate)
        self._logger.addHandler(self)
        self._logger.propagate = False
        if self._logger.getEffectiveLevel() > self.level:
            self._logger.setLevel(self.level)
        return self

    def __exit__(self, *exc):
        self._logger.removeHandler(self)
        self._logger.setLevel(self._saved[0])
        self._logger.propagate = self._saved[1]
        return False


_SPLIT = re.compile(r"[/?&=:@#,;+\s]+")
_URLISH = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://\S+")
_REQ_URL = re.compile(r"(url: )\S+")


def _pieces(text):
    pieces = set()
    for piece in _SPLIT.split(text or ""):
        for variant in (piece, unquote(piece)):
            if len(variant) >= MIN_SECRET_LEN:
                pieces.add(variant)
    return pieces


def secrets_of(raw_urls, masked_urls):
    """Pieces of the raw URLs that the masked (privacy) forms do not show."""
    shown = set()
    for masked in masked_urls:
        shown |= _pieces(masked)
    secrets = set()
    for raw in raw_urls:
        secrets.add(raw)
        secrets |= _pieces(raw) - shown
    return sorted(secrets, key=len, reverse=True)


def scrub(text, secrets):
    """Text with every secret replaced, and anything URL-like masked."""
    text = str(text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = _URLISH.sub("<url>", text)
    text = _REQ_URL.sub(r"\1<masked>", text)
    if len(text) > MAX_ERROR_LEN:
        text = text[: MAX_ERROR_LEN - 3] + "..."
    return text


# Generic webhook schemes: Apprise does not treat their paths as private, yet a path is
# where such a webhook usually carries its token.
GENERIC_SCHEMES = ("json", "jsons", "form", "forms", "xml", "xmls")
# ntfy: the topic is the only credential of a public topic; in cloud mode Apprise writes it
# where the host would be (ntfys://TOPIC).
NTFY_SCHEMES = ("ntfy", "ntfys")
MAX_PLAIN_SEGMENT = 8
MASK = "****"


def display_url(privacy_url):
    """How a target is shown, and the pieces hidden on top of Apprise's masking.

    Returns ``(masked, hidden)``. ``masked`` is Apprise's privacy URL without its query
    string, which can carry values Apprise does not mask (``+Header=value`` headers,
    ``:key=value`` payload entries, tokens given as parameters). For the generic webhook
    schemes, path segments longer than MAX_PLAIN_SEGMENT characters are masked as well; for
    ntfy every path segment (the topics) is, and a host without a dot or a port (a topic
    in Apprise's cloud form) too. This is the one display form for every log line and
    result of the collection.
    """
    masked = str(privacy_url).split("?", 1)[0].split("#", 1)[0]
    hidden = []
    scheme, sep, rest = masked.partition("://")
    lower = scheme.lower()
    if sep and lower in GENERIC_SCHEMES + NTFY_SCHEMES:
        host, _1, path = rest.partition("/")
        segments = path.split("/") if path else []
        if lower in NTFY_SCHEMES:
            hidden = [seg for seg in segments if seg]
            hostname = host.rpartition("@")[2]
            if hostname and "." not in hostname and ":" not in hostname \
                    and hostname != "localhost":
                hidden.append(hostname)
                host = host[: len(host) - len(hostname)] + MASK
        else:
            hidden = [seg for seg in segments if len(seg) > MAX_PLAIN_SEGMENT]
        segments = [MASK if seg in hidden else seg for seg in segments]
        masked = f"{scheme}://{host}" + ("/" + "/".join(segments) if segments else "")
    return masked, hidden


def display_name(server):
    """The masked display form of one Apprise server object (never its raw URL)."""
    try:
        return display_url(server.url(privacy=True))[0]
    except Exception:  # noqa: BLE001 - never fall back to an unmasked URL
        return f"{getattr(server, 'service_name', None) or type(server).__name__} (URL not shown)"


class Target:
    """One Apprise service instance and how it is shown in results."""

    def __init__(self, server, source):
        self.server = server
        self.source = source
        self.service = str(getattr(server, "service_name", None) or type(server).__name__)
        self.hidden = []
        try:
            self.privacy = server.url(privacy=True)
            self.masked, self.hidden = display_url(self.privacy)
        except Exception:  # noqa: BLE001 - never fall back to an unmasked URL
            self.privacy = ""
            self.masked = f"{self.service} (URL not shown)"
        try:
            self.raw = server.url(privacy=False)
        except Exception:  # noqa: BLE001
            self.raw = ""

    def describe(self):
        return {"service": self.service, "url": self.masked, "source": self.source}


def _asset(apprise):
    asset = apprise.AppriseAsset()
    # One target per call, sent in this thread: results stay per target.
    if hasattr(asset, "async_mode"):
        asset.async_mode = False
    return asset


def _scheme(url):
    match = re.match(r"^\s*([a-zA-Z][a-zA-Z0-9+.-]{0,31})://", url or "")
    return match.group(1).lower() if match else None


def _apply_timeout(server, timeout):
    if timeout is None:
        return
    for attr in ("socket_connect_timeout", "socket_read_timeout"):
        if hasattr(server, attr):
            setattr(server, attr, float(timeout))


def load_targets(apprise, urls=None, config=None, tag=None, timeout=None):
    """The targets to notify, as a list of ``Target``; raise NotifyError when unusable.

    ``urls`` and ``config`` are alternatives; ``tag`` (a list of Apprise tag
    expressions: items OR-ed, comma/space separated names inside one item AND-ed)
    filters the entries of ``config``.
    """
    asset = _asset(apprise)
    targets, raw_urls = [], []
    if urls is not None:
        if not urls:
            raise NotifyError("urls is empty: there is no target to notify")
        for index, url in enumerate(urls):
            if not isinstance(url, str) or not url.strip():
                raise NotifyError(f"urls[{index}] is empty")
            raw_urls.append(url)
            server = apprise.Apprise.instantiate(url.strip(), asset=asset)
            if server is None:
                scheme = _scheme(url)
                if scheme is None:
                    hint = "it does not start with a scheme such as json://"
                elif scheme not in _known_schemes(apprise):
                    hint = f"{scheme}:// is not a scheme Apprise supports here"
                else:
                    hint = f"Apprise could not parse this {scheme}:// URL"
                raise NotifyError(f"urls[{index}] is not a usable Apprise URL: {hint}")
            targets.append(Target(server, f"urls[{index}]"))
    elif config is not None:
        if not os.path.isfile(config):
            raise NotifyError(f"config {config} does not exist or is not a file")
        if not os.access(config, os.R_OK):
            raise NotifyError(f"config {config} is not readable by this user")
        ap_config = apprise.AppriseConfig(asset=asset)
        if not ap_config.add(config):
            raise NotifyError(f"config {config} could not be loaded by Apprise")
        ap = apprise.Apprise(asset=asset)
        ap.add(ap_config)
        match = list(tag) if tag else apprise.common.MATCH_ALL_TAG
        for server in ap.find(tag=match):
            targets.append(Target(server, "config"))
        if not targets:
            if tag:
                wanted = ", ".join(repr(t) for t in tag)
                raise NotifyError(f"config {config} has no usable target matching tag {wanted}")
            raise NotifyError(
                f"config {config} has no usable target (empty, invalid or unparsable entries)"
            )
    else:
        raise NotifyError("one of urls or config is required")
    for target in targets:
        _apply_timeout(target.server, timeout)
    secrets = secrets_of(raw_urls + [t.raw for t in targets], [t.privacy for t in targets])
    for target in targets:
        secrets.extend(target.hidden)
    return targets, sorted(set(secrets), key=len, reverse=True)


def _known_schemes(apprise):
    try:
        return set(apprise.manager_plugins.NotificationManager().schemas())
    except Exception:  # noqa: BLE001 - only used to word an error message
        try:
            from apprise.common import NOTIFY_SCHEMA_MAP  # Apprise < 1.5

            return set(NOTIFY_SCHEMA_MAP)
        except Exception:  # noqa: BLE001
            return set()


def check_attachments(attachments):
    """Raise NotifyError unless every attachment is a readable file."""
    for path in attachments or []:
        if not os.path.isfile(path):
            raise NotifyError(f"attachment {path} does not exist or is not a file")
        if not os.access(path, os.R_OK):
            raise NotifyError(f"attachment {path} is not readable by this user")


def send(apprise, targets, secrets, body, title="", notify_type="info",
         body_format="text", attachments=None):
    """Notify each target on its own (``notify_once``); return one result dict per target:
    its masked description, ``success``, ``outcome`` (``classify``) and Apprise's messages
    about a failure, scrubbed of ``secrets``."""
    results = []
    for target in targets:
        success, lines, timed_out, raised = notify_once(
            apprise, target.server, body, title, notify_type, body_format, attachments)
        errors = [] if success else lines[-MAX_ERRORS:]
        if raised:
            errors.append(f"{target.service} raised {raised}")
        result = target.describe()
        result["success"] = success
        result["outcome"] = classify(success, lines, timed_out)[0]
        result["errors"] = [scrub(e, secrets) for e in errors[-MAX_ERRORS:]]
        results.append(result)
    return results


def summarize(results, fail_on="any"):
    """``(failed, message)``: whether the task fails under ``fail_on``, and why."""
    failed = [r for r in results if not r["success"]]
    total = len(results)
    if not failed:
        return False, f"notified {total} of {total} target(s)"
    names = ", ".join(f"{r['service']} {r['url']}" for r in failed)
    message = f"{len(failed)} of {total} target(s) failed: {names}"
    if fail_on == "all" and len(failed) < total:
        return False, message
    return True, message


# -- one notification to one target, and what its answer means ----------------------------

# Outcome of one notification to one target.
OK, LIMITED, TRANSIENT, PERMANENT = "ok", "rate-limited", "transient", "permanent"
_HTTP_CODE_RE = re.compile(r"error=(\d{3})\b")

# Apprise logs through the global "apprise" logger: one notification at a time per
# process, so the captured lines belong to that notification.
NOTIFY_LOCK = threading.Lock()


def classify(success, log_lines, timed_out=False):
    """Map an Apprise result (bool and captured log lines) to ``(outcome, http code)``.

    429 is LIMITED; 5xx, 408 and 425, timeouts and answers without a code (connection
    refused, DNS) are TRANSIENT (an outage: keep the events); other 4xx are PERMANENT.
    A 429's Retry-After is not among them: Apprise passes no response header back (its
    Discord plugin waits out Discord's own reset headers itself), so callers back off by
    their rate period and exponentially.
    """
    if success:
        return OK, None
    codes = [int(c) for line in log_lines for c in _HTTP_CODE_RE.findall(line)]
    if timed_out or not codes:
        return TRANSIENT, None
    code = codes[-1]
    if code == 429:
        return LIMITED, code
    if code >= 500 or code in (408, 425):
        return TRANSIENT, code
    return PERMANENT, code


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        try:
            self.lines.append(record.getMessage())
        except Exception:  # noqa: BLE001 - a log record must never break delivery
            self.lines.append(str(record.msg))


def notify_once(apprise, server, body, title="", notify_type="info", body_format="text",
                attachments=None):
    """Send one notification to one Apprise server object: ``(success, log lines, timed
    out, exception type name or None)``. The one place the collection notifies: it holds
    NOTIFY_LOCK so that the Apprise log lines captured belong to this notification, and
    never raises for a failing target."""
    single = apprise.Apprise(asset=getattr(server, "asset", None) or _asset(apprise))
    single.add(server)
    capture = _Lines()
    alog = logging.getLogger("apprise")
    raised = None
    with NOTIFY_LOCK:
        alog.addHandler(capture)
        try:
            result = single.notify(body=body, title=title, notify_type=notify_type,
                                   body_format=body_format,
                                   attach=list(attachments) if attachments else None)
        except Exception as exc:  # noqa: BLE001 - a broken plugin is an outage here
            raised = type(exc).__name__
            result = False
        finally:
            alog.removeHandler(capture)
    timed_out = str(getattr(result, "status", "")).endswith("TIMEOUT")
    return bool(result), capture.lines, timed_out, raised


def notify_one(apprise, server, body, title="", notify_type="info", body_format="text"):
    """Send one notification to one Apprise server object; ``(outcome, code)``
    (``classify``: an exception is TRANSIENT). What the daemons use."""
    success, lines, timed_out, _raised = notify_once(apprise, server, body, title,
                                                     notify_type, body_format)
    return classify(success, lines, timed_out)


def server_key(server):
    """A stable key for one server object (a hash of its full URL; never shown)."""
    import hashlib

    try:
        url = server.url()
    except Exception:  # noqa: BLE001
        url = repr(server)
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def split_tags(value):
    """A tag set as a tuple: ``"a, b"``, ``"a,b"`` (syslog-ng's form of a JSON list, its
    elements quoted when they hold a comma or a quote), bytes, or a list."""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", "replace")
    if isinstance(value, str):
        value = value.split(",")
    tags = (str(t).strip().strip("'\"").strip() for t in value or ())
    return tuple(dict.fromkeys(t for t in tags if t))


class AppriseTransport:
    """Targets of one Apprise config per tag set, reloaded when the file changes.

    What the syslog-ng ``apprise()`` destination calls (it takes the transport as an object,
    so tests give it another one): ``targets(now, tags)`` and ``notify(server, ...)``.
    ``tag`` is the destination's own tag set, for events that bring none. A tag set
    selects every target that carries any of its tags (Apprise's OR of a list).
    ``report(key, message)`` is how problems reach the caller's log (masked, rate-limited
    by the caller).
    """

    CHECK_EVERY = 10.0  # seconds between looks at the config file

    def __init__(self, config, tag, venv=None, report=None):
        self.config, self.venv = config, venv
        self.tag = split_tags(tag)
        self.report = report or (lambda key, message: None)
        self.apprise = None
        self.apobj = None
        self.servers = {}  # tag set -> [(key, display name, server)]
        self.sig = None
        self.checked = -1e18

    def targets(self, now, tags=None):
        """``[(key, display name, server)]`` of the targets of ``tags`` (anything
        ``split_tags`` reads; None or empty: the transport's own tag set), or None while
        Apprise or the config is missing."""
        tags = split_tags(tags) or self.tag
        if self.apobj is None or now - self.checked >= self.CHECK_EVERY:
            self.checked = now
            if not self._reload():
                return None
        if tags not in self.servers:
            servers = list(self.apobj.find(tag=list(tags)))
            self.servers[tags] = [(server_key(s), display_name(s), s) for s in servers]
            if not servers:
                self.report("config", f"{self.config}: no target for tags "
                                      f"{', '.join(tags)!r}")
        return self.servers[tags]

    def _reload(self):
        """Load the config when it changed; False while Apprise or the config is missing."""
        if self.apprise is None:
            self.apprise, error = import_apprise(self.venv)
            if self.apprise is None:
                last = (error or "").strip().splitlines()[-1:] or [""]
                self.report("import", f"cannot import apprise (venv {self.venv}): {last[0]}")
                return False
        try:
            st = os.stat(self.config)
            sig = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError as exc:
            # Not there (yet): a rollout in progress, keep the events until it is.
            self.report("config", f"cannot read {self.config}: {exc.strerror}")
            return False
        if self.apobj is not None and sig == self.sig:
            return True
        capture = _Lines()
        alog = logging.getLogger("apprise")
        with NOTIFY_LOCK:
            alog.addHandler(capture)
            try:
                cfg = self.apprise.AppriseConfig()
                cfg.add(self.config)
                apobj = self.apprise.Apprise()
                apobj.add(cfg)
                count = len(apobj)  # loads the config now, inside the capture
            finally:
                alog.removeHandler(capture)
        self.sig, self.apobj, self.servers = sig, apobj, {}
        problems = [line for line in capture.lines
                    if "rror" in line or "nvalid" in line or "nparseable" in line]
        if problems or not count:
            self.report("config", f"{self.config}: {count} target(s), {len(problems)} "
                                  "problem(s) while loading it")
        return True

    def notify(self, server, body, title, notify_type, body_format):
        return notify_one(self.apprise, server, body, title, notify_type, body_format)
