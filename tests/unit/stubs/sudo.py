"""Stand-in for the ``sudo`` module that sudo's python_plugin.so provides (unit tests only).

Follows sudo_plugin_python(5) as implemented in sudo 1.9.13 (plugins/python/
sudo_python_module.c, values from include/sudo_plugin.h): the enums ``RC``,
``PLUGIN_TYPE``, ``EXIT_REASON``, ``CONV``, ``DEBUG``, ``log_info``/``log_error``,
``conv``, ``options_as_dict``/``options_from_dict``, the ``Plugin`` base class and the
exceptions (``PluginError`` makes a callback return ERROR, ``PluginReject`` REJECT, both
with their message as the error string sudo shows).

What real sudo prints through its conversation function is captured in ``LOG`` as
``(level, text)`` tuples so tests can assert that users never see a traceback. Call
``reset()`` between tests.
"""

import enum


class RC(enum.IntEnum):
    OK = 1
    ACCEPT = 1
    REJECT = 0
    ERROR = -1
    USAGE_ERROR = -2


class PLUGIN_TYPE(enum.IntEnum):  # noqa: N801 - the name sudo uses
    SUDO = 0  # the front end (SUDO_FRONT_END)
    POLICY = 1
    IO = 2
    AUDIT = 3
    APPROVAL = 4


class EXIT_REASON(enum.IntEnum):  # noqa: N801
    NO_STATUS = 0
    WAIT_STATUS = 1
    EXEC_ERROR = 2
    SUDO_ERROR = 3


class CONV(enum.IntEnum):
    PROMPT_ECHO_OFF = 0x0001
    PROMPT_ECHO_ON = 0x0002
    INFO_MSG = 0x0004  # 1.9.13 registers no ERROR_MSG member
    PROMPT_MASK = 0x0005
    PROMPT_ECHO_OK = 0x1000
    PREFER_TTY = 0x2000


class DEBUG(enum.IntEnum):
    CRIT = 1
    ERROR = 2
    WARN = 3
    NOTICE = 4
    DIAG = 5
    INFO = 6
    TRACE = 7
    DEBUG = 8


class SudoException(Exception):  # noqa: N818 - the name sudo uses
    pass


class PluginException(Exception):  # noqa: N818 - not derived from SudoException in sudo
    pass


class PluginError(PluginException):
    """Raised by a callback: the callback returns RC.ERROR with this message as errstr."""


class PluginReject(PluginException):
    """Raised by a callback: the callback returns RC.REJECT with this message as errstr."""


class ConversationInterrupted(SudoException):
    pass


# Everything the plugin printed through sudo: (level, text).
LOG = []


def reset():
    del LOG[:]


def _log(level, args, sep, end):
    LOG.append((level, (" " if sep is None else sep).join(str(a) for a in args)
                + ("\n" if end is None else end)))


def log_info(*args, sep=None, end=None):
    _log("info", args, sep, end)


def log_error(*args, sep=None, end=None):
    _log("error", args, sep, end)


def debug(level, message):
    LOG.append(("debug", message))


def conv(*messages, on_suspend=None, on_resume=None):
    raise ConversationInterrupted("no terminal in unit tests")


class ConvMessage:
    def __init__(self, msg_type, msg, timeout=0):
        self.msg_type = msg_type
        self.msg = msg
        self.timeout = timeout


def options_as_dict(options):
    """("key=value", ...) -> {"key": "value"}; like sudo's, items without '=' are skipped."""
    result = {}
    for item in options or ():
        key, sep, value = item.partition("=")
        if sep:
            result[key] = value
    return result


def options_from_dict(options_dict):
    return tuple(f"{k}={v}" for k, v in options_dict.items())


class Plugin:
    """Like sudo's: stores the keyword arguments it receives as attributes."""

    def __init__(self, **kwargs):
        for key, value in kwargs.items():
            setattr(self, key, value)


def call(plugin, name, *args, kind="audit"):
    """Call a plugin callback the way python_plugin.so does and return the int sudo sees.

    None counts as RC.OK; PluginError gives RC.ERROR; any other exception gives RC.ERROR
    and a printed traceback (recorded in LOG as level "traceback", which tests forbid).
    What the sudo front end then prints (src/sudo.c) is recorded as level "sudo": for an
    audit plugin's open() only "error initializing audit plugin" (its error string is
    not shown, so a plugin that wants a reason seen must print it itself), for accept()
    "unable to log accept event: <errstr>".
    """
    func = getattr(plugin, name, None)
    if func is None:
        return int(RC.OK)
    errstr = None
    try:
        result = func(*args)
        rc = int(RC.OK) if result is None else int(result)
    except PluginReject as exc:
        errstr, rc = str(exc), int(RC.REJECT)
        LOG.append(("errstr", errstr))
    except PluginError as exc:
        errstr, rc = str(exc), int(RC.ERROR)
        LOG.append(("errstr", errstr))
    except BaseException as exc:  # noqa: BLE001 - what sudo does with any exception
        LOG.append(("traceback", repr(exc)))
        rc = int(RC.ERROR)
    if name == "open" and rc not in (int(RC.OK), int(RC.REJECT)):
        label = "I/O" if kind == "io" else kind
        LOG.append(("sudo", f"sudo: error initializing {label} plugin python_{kind}"))
    elif name in ("accept", "reject", "error") and rc != int(RC.OK):
        LOG.append(("sudo", f"sudo: python_audit: unable to log {name} event"
                            + (f": {errstr}" if errstr else "")))
    return rc


def call_io(plugin, name, data, patched=True):
    """Call an I/O plugin's log callback (log_ttyin, log_ttyout, log_stdin, log_stdout,
    log_stderr) with ``data`` (bytes) the way python_plugin_io.c does, and return the int
    sudo sees.

    Unpatched, the C bridge builds the argument with ``Py_BuildValue("(s#)")``: strict
    UTF-8, so a byte that is not UTF-8 (or a character split across two reads) fails
    before the plugin runs, and the callback returns ERROR (sudo ends the session, or
    hangs without a tty). The collection's python_plugin-utf8.patch decodes with
    ``surrogateescape`` instead.
    """
    try:
        text = data.decode("utf-8", "surrogateescape" if patched else "strict")
    except UnicodeDecodeError:
        LOG.append(("error", f"Failed to build arguments for python plugin API call '{name}'"))
        return int(RC.ERROR)
    return call(plugin, name, text, kind="io")


def open_io(plugin, argv, command_info):
    """An I/O plugin's open() as sudo 1.9.13's iolog_open() treats it: 1 runs the session
    with the plugin, 0 unloads the plugin (the session runs without it), anything else
    is fatal ("error initializing I/O plugin"), recorded as level "sudo"."""
    return call(plugin, "open", tuple(argv), tuple(command_info), kind="io")
