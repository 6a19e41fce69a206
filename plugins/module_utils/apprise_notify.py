# Copyright: (c) 2026, secalert.alerting contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Send one notification through Apprise, target by target, and report on each.

Used by the ``secalert.alerting.notify`` module. Nothing here returns, raises or logs a
target URL or a token: targets are named by Apprise's privacy mode
(``url(privacy=True)``) and Apprise's own messages are scrubbed before they are kept.

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
MAX_PLAIN_SEGMENT = 8


def display_url(privacy_url):
    """How a target is shown, and the path segments hidden on top of Apprise's masking.

    The result is Apprise's privacy URL without its query string.

    The query string is left out because it can carry values Apprise does not mask
    (``+Header=value`` headers, ``:key=value`` payload entries). For the generic webhook
    schemes, path segments longer than MAX_PLAIN_SEGMENT characters are masked as well.
    """
    masked = privacy_url.split("?", 1)[0]
    hidden = []
    scheme, sep, rest = masked.partition("://")
    if sep and scheme.lower() in GENERIC_SCHEMES and "/" in rest:
        host, _1, path = rest.partition("/")
        segments = path.split("/")
        hidden = [seg for seg in segments if len(seg) > MAX_PLAIN_SEGMENT]
        segments = ["****" if seg in hidden else seg for seg in segments]
        masked = f"{scheme}://{host}/" + "/".join(segments)
    return masked, hidden


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
         body_format="text", attachments=None, capture=None):
    """Notify each target on its own; return one result dict per target."""
    results = []
    for target in targets:
        ap = apprise.Apprise(asset=target.server.asset)
        ap.add(target.server)
        if capture is not None:
            capture.take()
        try:
            outcome = ap.notify(
                body=body,
                title=title,
                notify_type=notify_type,
                body_format=body_format,
                attach=list(attachments) if attachments else None,
            )
            success = bool(outcome)
            errors = []
        except Exception as exc:  # noqa: BLE001 - a broken target must not stop the rest
            success = False
            errors = [f"{target.service} raised {type(exc).__name__}"]
        if capture is not None:
            logged = capture.take()
            if not success:
                errors = logged[-MAX_ERRORS:] + errors
        result = target.describe()
        result["success"] = success
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
