"""Stand-in for syslog-ng's embedded ``syslogng`` module (unit tests only).

Models the parts the secalert destination uses, as syslog-ng 4.x provides them:
``LogDestination`` (3.38 lacks it: tests can delete it and re-import), ``LogTemplate``
with a minimal ``$NAME`` / ``${NAME}`` formatter, ``LogMessage`` (a dict of bytes) and
``Logger`` (records what the destination logs in ``Logger.records``).
"""

import re

LTZ_LOCAL = 0
LTZ_SEND = 1


class LogDestination:
    DROP = 0
    ERROR = 1
    SUCCESS = 3
    QUEUED = 4
    NOT_CONNECTED = 5
    RETRY = 6


class LogTemplateException(Exception):
    pass


_MACRO_RE = re.compile(r"\$\{([A-Za-z0-9_.]+)\}|\$([A-Za-z0-9_]+)")


class LogTemplate:
    def __init__(self, template, options=None):
        if not isinstance(template, str):
            raise TypeError("template must be str")
        self.template = template
        self.options = options

    def format(self, msg, options=None, tz=LTZ_SEND, seqnum=0):
        def value(match):
            raw = msg.get(match.group(1) or match.group(2), b"")
            return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)

        return _MACRO_RE.sub(value, self.template).encode("utf-8", "surrogateescape")


class LogMessage(dict):
    """A message: name-value pairs whose values are bytes, as syslog-ng hands them over."""

    def __init__(self, message=b"", **values):
        super().__init__()
        self["MESSAGE"] = message if isinstance(message, bytes) else message.encode()
        for key, val in values.items():
            self[key] = val if isinstance(val, bytes) else str(val).encode()


class Logger:
    records = []

    def _log(self, level, message):
        Logger.records.append((level, message))

    def error(self, message):
        self._log("error", message)

    def warning(self, message):
        self._log("warning", message)

    def info(self, message):
        self._log("info", message)

    def debug(self, message):
        self._log("debug", message)

    def trace(self, message):
        self._log("trace", message)
