"""secalert sudo audit plugin: the entry module sudo loads. Small, stdlib only, stable.

sudo.conf (one line; with session rules a second one, ``Plugin python_io ...
ClassName=SecalertIOPlugin`` and the same options, see ``secalert_sudo.session``)::

    Plugin python_audit python_plugin.so ModulePath=/usr/libexec/secalert/secalert_sudo_audit.py
        ClassName=SecalertAuditPlugin Config=/etc/secalert/sudo_alerts.json [FailClosed=yes]

The real plugin is the package ``secalert_sudo`` (config, rules, event, delivery, plugin)
in the version directory that ``sudo-plugin/current`` (a symlink next to this file)
points to; the role installs a new version beside the old one, checks it, then swaps the
symlink. The link is resolved once, so one sudo call imports one version only.

sudo refuses every command, root's included, when the module it loads fails to import.
So this file imports the package under a guard that catches everything (SyntaxError,
SystemExit, ImportError, MemoryError ...). When that import fails, ``SecalertAuditPlugin``
is a stand-in that, on each sudo call:

- reports it to syslog (authpriv, ``secalert-sudo``, one non-blocking datagram each): a
  ``"type":"fault"`` event with ``"where":"import"``, and once per outage a
  ``"type":"status"`` ``"state":"off"`` event (the next healthy call says ``"on"``);
- unloads itself (``open()`` returns ``sudo.RC.REJECT``: the command runs without it), or
  with ``FailClosed=yes`` denies the command with a one-line reason;
- answers ``sudo -V`` with ``secalert sudo audit plugin version V BROKEN: <reason>``.

``python3 -I secalert_sudo_audit.py --check CONFIG`` validates a configuration.
"""

import os
import sys

try:
    import sudo
except BaseException:  # noqa: BLE001 - outside sudo (tooling, tests)
    sudo = None

__version__ = "2.0.0"
HERE = os.path.dirname(os.path.abspath(__file__))
CURRENT = os.path.join(HERE, "sudo-plugin", "current")
SYSLOG_SOCKET = "/dev/log"
ROOT_SOCKET = "/run/secalert/log.sock"  # syslog-ng's root-only socket, tried first
STATE_FILE = "/run/secalert/entry-off"  # exists while the package fails to import
DROP_COUNTER = "/run/secalert/sudo-drops"
ACTION = ("run the sudo_alerts role to reinstall the plugin (or repair the files under "
          + os.path.join(HERE, "sudo-plugin") + ")")


def _load():
    # The host layout (sudo-plugin/current -> a version) or, in a source tree, the
    # package next to this file. The package must come from that directory only.
    root = os.path.realpath(CURRENT) if os.path.lexists(CURRENT) else HERE
    if root not in sys.path:
        sys.path.insert(0, root)
    from secalert_sudo import plugin

    if not plugin.__file__.startswith(root + os.sep):
        raise ImportError(f"secalert_sudo came from {plugin.__file__}, not from {root}")
    return plugin


def _describe(exc):
    """(one-line reason, file that caused it)."""
    path, line = getattr(exc, "filename", None), getattr(exc, "lineno", None)
    tb = exc.__traceback__
    while tb is not None and not path:
        if tb.tb_next is None:
            path, line = tb.tb_frame.f_code.co_filename, tb.tb_lineno
        tb = tb.tb_next
    where = f" ({path}, line {line})" if path and line else (f" ({path})" if path else "")
    text = f"{type(exc).__name__}: {exc}{where}"
    return " ".join(text.split())[:400], str(path or "")


try:
    SecalertAuditPlugin = _load().SecalertAuditPlugin
    BROKEN, BROKEN_FILE = None, ""
except BaseException as _exc:  # noqa: BLE001 - anything here would make sudo refuse all
    try:
        BROKEN, BROKEN_FILE = _describe(_exc)
    except BaseException:  # noqa: BLE001 - e.g. MemoryError again
        BROKEN, BROKEN_FILE = "the secalert_sudo package failed to import", ""
    del _exc


def _syslog(event, severity):
    """One JSON event as one non-blocking datagram to /dev/log (authpriv). Never raises."""
    try:
        import json
        import socket
        import time

        tm = time.localtime()
        month = "JanFebMarAprMayJunJulAugSepOctNovDec"[3 * tm.tm_mon - 3: 3 * tm.tm_mon]
        frame = "<{}>{} {:2d} {} secalert-sudo[{}]: {}".format(
            10 * 8 + severity, month, tm.tm_mday, time.strftime("%H:%M:%S", tm),
            event.get("pid") or os.getpid(),
            json.dumps(event, ensure_ascii=True, separators=(",", ":")))
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            try:
                sock.sendto(frame.encode("ascii"), socket.MSG_DONTWAIT, ROOT_SOCKET)
            except OSError:  # no syslog-ng there (or not answering): the system log
                sock.sendto(frame.encode("ascii"), socket.MSG_DONTWAIT, SYSLOG_SOCKET)
        finally:
            sock.close()
    except BaseException:  # noqa: BLE001 - dropped: count it
        try:
            fd = os.open(DROP_COUNTER, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK
                         | os.O_NOFOLLOW, 0o600)
            os.write(fd, b".")
            os.close(fd)
        except BaseException:  # noqa: BLE001, S110 - nothing left to tell
            pass


def _base(kind, info):
    import socket
    import time

    return {"schema": 1, "type": kind, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "host": info.get("host") or socket.gethostname()}


def _status(state, info, reason="", detail="", path=""):
    event = _base("status", info)
    event.update(state=state, where="entry", reason=reason, file=path, detail=detail,
                 action=ACTION if state == "off" else "",
                 severity="critical" if state == "off" else "warning",
                 tags=["sudo", "secalert-status"])
    _syslog(event, 2 if state == "off" else 4)


def report_broken(info, fail_closed):
    """The fault of this call, and "alerting off" once per outage."""
    event = _base("fault", info)
    event.update(pid=_int(info.get("pid")) or os.getpid(), user=info.get("user"),
                 where="import", error=BROKEN, fail_closed=fail_closed, severity="error",
                 tags=["sudo", "secalert-fault"])
    _syslog(event, 3)
    try:
        fd = os.open(STATE_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        os.write(fd, BROKEN.encode("ascii", "backslashreplace"))
        os.close(fd)
    except FileExistsError:
        return  # already said
    except BaseException:  # noqa: BLE001, S110 - cannot remember: say it every time
        pass
    _status("off", info, "the secalert sudo plugin does not import, so sudo runs without "
            "alerts" + (" and denies every command (FailClosed=yes)" if fail_closed else ""),
            BROKEN, BROKEN_FILE)


def report_back():
    """The package imports again after an outage: say so, once."""
    try:
        os.unlink(STATE_FILE)
    except BaseException:  # noqa: BLE001 - no outage (the usual case), or not ours to say
        return
    _status("on", {}, "the secalert sudo plugin imports again: sudo alerts are back on")


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _pairs(items):
    return dict(i.split("=", 1) for i in items or () if isinstance(i, str) and "=" in i)


class _StandIn(getattr(sudo, "Plugin", object)):
    """What both stand-ins read from sudo: the user, and FailClosed=yes."""

    def __init__(self, version=None, settings=(), user_info=(), plugin_options=(), **kwargs):
        self._info, self._fail_closed = {}, False
        try:
            self._info = _pairs(user_info)
            self._fail_closed = _pairs(plugin_options).get("FailClosed", "").lower() in (
                "yes", "true", "1", "on")
        except BaseException:  # noqa: BLE001, S110 - defaults: fail open
            pass


class _BrokenPlugin(_StandIn):
    """Stands in for the real plugin while it does not import (see the module docstring)."""

    def open(self, submit_optind, submit_argv):
        report_broken(self._info, self._fail_closed)
        try:
            if any(a in ("-V", "--version") for a in submit_argv[1:int(submit_optind)]):
                return 1  # stay loaded so that show_version says BROKEN
        except BaseException:  # noqa: BLE001, S110
            pass
        if not self._fail_closed:
            return int(getattr(getattr(sudo, "RC", None), "REJECT", 0))  # run without us
        message = (f"secalert: sudo alerting is broken ({BROKEN[:200]}); "
                   "command denied (FailClosed=yes)")
        try:
            sudo.log_error(message)  # sudo does not print an audit open()'s error string
        except BaseException:  # noqa: BLE001, S110
            pass
        error = getattr(sudo, "PluginError", None)
        if error is not None:
            raise error(message)
        return -1

    def show_version(self, is_verbose):
        try:
            if is_verbose:
                sudo.log_info(f"secalert sudo audit plugin version {__version__} BROKEN: {BROKEN}")
        except BaseException:  # noqa: BLE001, S110
            pass
        return 1


class _BrokenIOPlugin(_StandIn):
    """Stands in for the I/O plugin (session rules) while its code does not import: the
    session runs without session rules (open() returns REJECT: unloaded), or with
    FailClosed=yes is refused. The audit plugin's stand-in reports a broken package;
    a broken ``secalert_sudo.session`` alone is reported here, once per call."""

    reason = None  # set on the subclass made for a broken session module

    def open(self, argv, command_info):
        if self.reason is not None:
            event = _base("fault", self._info)
            event.update(pid=_int(self._info.get("pid")) or os.getpid(),
                         user=self._info.get("user"), where="import-session",
                         error=self.reason, fail_closed=self._fail_closed, severity="error",
                         tags=["sudo", "secalert-fault"])
            _syslog(event, 3)
        if not self._fail_closed:
            return int(getattr(getattr(sudo, "RC", None), "REJECT", 0))
        return int(getattr(getattr(sudo, "RC", None), "ERROR", -1))

    def close(self, exit_status, error):
        return None

    def show_version(self, is_verbose):
        try:
            if is_verbose:
                sudo.log_info(f"secalert sudo session plugin version {__version__} BROKEN: "
                              + (self.reason or BROKEN or "?"))
        except BaseException:  # noqa: BLE001, S110
            pass
        return 1


def __getattr__(name):
    """``SecalertIOPlugin``, imported only by the I/O plugin's interpreter (the audit
    plugin does not pay for it). Never raises for that name: sudo refuses every command
    when the class it names cannot be had."""
    global SecalertIOPlugin
    if name != "SecalertIOPlugin":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    cls = _BrokenIOPlugin
    if BROKEN is None:
        try:
            from secalert_sudo import session

            root = os.path.realpath(CURRENT) if os.path.lexists(CURRENT) else HERE
            if not session.__file__.startswith(root + os.sep):
                raise ImportError(f"secalert_sudo came from {session.__file__}, not from {root}")
            cls = session.SecalertIOPlugin
        except BaseException as exc:  # noqa: BLE001 - anything here would refuse all
            try:
                reason = _describe(exc)[0]
            except BaseException:  # noqa: BLE001
                reason = "the secalert_sudo.session module failed to import"
            cls = type("_BrokenSessionPlugin", (_BrokenIOPlugin,), {"reason": reason})
    SecalertIOPlugin = cls
    return cls


if BROKEN is not None:
    SecalertAuditPlugin = _BrokenPlugin
elif sudo is not None:
    report_back()


if __name__ == "__main__":
    if BROKEN is not None:
        sys.stderr.write(f"broken: {BROKEN}\n")
        sys.exit(1)
    from secalert_sudo.cli import main

    sys.exit(main(sys.argv))
