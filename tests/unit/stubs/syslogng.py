"""Stand-in for syslog-ng's embedded ``syslogng`` module (unit tests only).

Models the parts the secalert destination uses, as syslog-ng provides them:
``LogDestination`` (3.38 lacks it: tests can delete it and re-import), ``LogTemplate``
with a minimal ``$NAME`` / ``${NAME}`` formatter, ``LogMessage`` (a dict of bytes) and
``Logger`` (records what the destination logs in ``Logger.records``).

``LogTemplate.format()`` returns what the C side returns (syslog-ng 3.38.1
modules/python/python-logtemplate.c -> python-helpers.c ``_py_string_from_string``;
4.8 python-types.c ``py_string_from_string``): the formatted bytes go through
``PyUnicode_FromStringAndSize``, a *strict* UTF-8 decode, when the locale's charset is
UTF-8, so invalid UTF-8 in a value raises UnicodeDecodeError; under another charset
(``CHARSET_UTF8 = False``, e.g. the C locale) it tries ``g_locale_to_utf8`` and returns
``bytes`` when that fails (here: non-ASCII input).
"""

import re

LTZ_LOCAL = 0
LTZ_SEND = 1

CHARSET_UTF8 = True  # g_get_charset(): the locale syslog-ng runs in is UTF-8


class LogDestination:
    DROP = 0
    ERROR = 1
    SUCCESS = 3
    QUEUED = 4
    NOT_CONNECTED = 5
    RETRY = 6


class LogTemplateException(Exception):
    pass


_MACRO_RE = re.compile(rb"\$\{([A-Za-z0-9_.]+)\}|\$([A-Za-z0-9_]+)")


class LogTemplate:
    def __init__(self, template, options=None):
        if not isinstance(template, str):
            raise TypeError("template must be str")
        self.template = template
        self.options = options

    def format(self, msg, options=None, tz=LTZ_SEND, seqnum=0):
        if not isinstance(msg, LogMessage):
            raise TypeError("LogMessage expected in the first parameter")

        def value(match):
            name = (match.group(1) or match.group(2)).decode()
            raw = msg.get(name, b"")
            return raw if isinstance(raw, bytes) else str(raw).encode()

        result = _MACRO_RE.sub(value, self.template.encode("utf-8"))
        if CHARSET_UTF8:
            return result.decode("utf-8")  # strict: raises UnicodeDecodeError
        try:
            return result.decode("ascii")
        except UnicodeDecodeError:
            return result


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
