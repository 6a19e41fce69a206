"""secalert sudo audit plugin: one event per sudo decision, without slowing or breaking sudo.

Loaded by sudo's python_plugin.so (sudo_plugin_python(5)) from /etc/sudo.conf::

    Plugin python_audit python_plugin.so \
        ModulePath=/usr/libexec/secalert/secalert_sudo_audit.py \
        ClassName=SecalertAuditPlugin Config=/etc/secalert/sudo_alerts.json

(one line in the file; sudo.conf has no continuation lines).

Plugin options (sudo.conf, ``Key=Value``, no spaces, no secrets):

``Config``      JSON configuration (default ``/etc/secalert/sudo_alerts.json``). Must be
                owned by root and not group- or world-writable, else it is ignored.
``FailClosed``  ``yes`` denies commands when alerting is broken (also when the config
                cannot be read). Default: fail open.
``Id``          label copied into events (for several plugin lines).

Configuration: a JSON object, every key optional (defaults in ``DEFAULT_SETTINGS``)::

    {"schema": 1,
     "delivery": "syslog",               # or "direct"
     "fail_closed": false,
     "close_events": false,              # also an event when the command ends
     "include_default_rules": true,      # DEFAULT_RULES after your rules
     "rules": [
       {"name": "db-admins", "match": {"group": "dba", "runas_user": "postgres"},
        "action": "alert", "severity": "notice", "tags": ["sudo", "db"]},
       {"name": "backups", "match": {"user": "backup*", "command": "/usr/bin/rsync",
                                     "decision": ["accept"]}, "action": "ignore"},
       {"name": "rm-rf", "match": {"args": "(^| )-[a-z]*(rf|fr)"},
        "severity": "critical", "tags": ["sudo", "danger"]}],
     "syslog": {"facility": "authpriv", "ident": "secalert-sudo", "socket": "/dev/log",
                "drop_counter": "/run/secalert/sudo-drops"},
     "direct": {"python": "/opt/secalert/venv/bin/python",
                "apprise_config": "/etc/secalert/apprise.yml",
                "min_severity": "warning", "syslog_copy": true,
                "spool": "/run/secalert/sudo-spool",
                "lock": "/run/secalert/sudo-sender.lock",
                "spool_max_bytes": 1048576},
     "limits": {"field_chars": 256, "arg_chars": 1024, "args": 64, "event_bytes": 6000}}

Rules: the first whose every ``match`` key matches wins. ``user``, ``group`` (any of the
invoking user's groups), ``runas_user`` and ``command`` (the resolved path) take shell
globs (a string or a list: any of them); ``args`` is a regular expression searched in the
space-joined arguments; ``decision`` is a list of accept/reject/error/close. ``action`` is
``alert`` (with ``severity`` and ``tags``; tags route the alert to Apprise targets) or
``ignore``. Event fields: see ``SecalertAuditPlugin.build_event``.

Everything runs inside the sudo process, as root, on every sudo call. Hence:

- standard library only; ``subprocess`` is imported only in ``direct`` delivery;
- no thread, no ``os.fork()``, no ``signal.signal()`` (they hang or abort sudo);
- nothing blocks: syslog lines go out as one non-blocking datagram (``MSG_DONTWAIT``),
  dropped and counted when the daemon is stopped or its queue is full; ``direct``
  delivery appends the event to a root-only spool file (one ``write()``, non-blocking
  locks only) and starts a detached ``python -m secalert_apprise.send --spool`` only when
  no sender holds the sender lock. That sender drains the spool until it is empty and
  sends a burst as a digest, so a burst of sudo calls costs one sender, not one each;
- fail open: every callback catches everything. A fault before or in ``open()`` makes
  ``open()`` return ``sudo.RC.REJECT``, which unloads the plugin for this invocation and
  lets the command run; a later fault is reported and the command still runs. Faults go
  to syslog as ``"type": "fault"`` events; users never see a traceback. With
  ``FailClosed=yes`` the same faults deny the command instead, with a one-line reason.
"""

# Everything that could fail at import time is guarded: a module that fails to import
# makes sudo refuse every command, root's included.
try:
    import sudo
except Exception:  # noqa: BLE001 - outside sudo (tooling); the class must still exist
    sudo = None

try:
    import errno
    import fcntl
    import fnmatch
    import json
    import os
    import re
    import socket
    import time

    _IMPORT_ERROR = None
except Exception as _exc:  # noqa: BLE001 - reported by open(), which then unloads us
    _IMPORT_ERROR = f"{type(_exc).__name__}: {_exc}"

__version__ = "1.0.0"

SCHEMA_VERSION = 1
PROGRAM = "secalert-sudo"
DEFAULT_CONFIG = "/etc/secalert/sudo_alerts.json"
DEFAULT_SOCKET = "/dev/log"
DEFAULT_DROP_COUNTER = "/run/secalert/sudo-drops"
DEFAULT_PYTHON = "/opt/secalert/venv/bin/python"
DEFAULT_APPRISE_CONFIG = "/etc/secalert/apprise.yml"
DEFAULT_SPOOL = "/run/secalert/sudo-spool"
DEFAULT_LOCK = "/run/secalert/sudo-sender.lock"
SPOOL_ATTEMPTS = 5  # a sender swaps the spool away at most this often under our feet
SENDER_NICENESS = 19  # the detached sender yields the CPU to sudo and the command
TRUSTED_UID = 0  # owner the config file must have (unit tests run as someone else)

FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6,
    "news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
    "local0": 16, "local1": 17, "local2": 18, "local3": 19,
    "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}
SEVERITIES = {
    "emergency": 0, "alert": 1, "critical": 2, "error": 3,
    "warning": 4, "notice": 5, "info": 6, "debug": 7,
}
DECISIONS = ("accept", "reject", "error", "close")
MATCH_KEYS = ("decision", "user", "group", "runas_user", "command", "args")
_TAG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$") if _IMPORT_ERROR is None else None

# Limits that keep one event one well-formed syslog datagram, whatever the input.
DEFAULT_LIMITS = {
    "field_chars": 256,  # user, tty, cwd, command, reason ...
    "arg_chars": 1024,  # each argument
    "args": 64,  # number of arguments kept
    "event_bytes": 6000,  # the whole JSON line
}

SENSITIVE_FILES = r"/etc/(?:sudoers|passwd|shadow|gshadow|group|security/)|/etc/sudoers\.d/"

# Shipped rules, first match wins. Loud for what an attacker or a mistake looks like,
# quiet ("info": logged, not pushed to chat by default) for routine commands.
DEFAULT_RULES = [
    {
        "name": "denied",
        "match": {"decision": ["reject", "error"]},
        "action": "alert", "severity": "critical", "tags": ["sudo", "sudo-denied"],
    },
    {
        "name": "sensitive-editor",
        "match": {"decision": ["accept"],
                  "command": ["*/visudo", "*/vipw", "*/vigr", "sudoedit", "*/sudoedit"]},
        "action": "alert", "severity": "critical", "tags": ["sudo", "sudo-sensitive"],
    },
    {
        "name": "sensitive-file",
        "match": {"decision": ["accept"], "args": SENSITIVE_FILES},
        "action": "alert", "severity": "critical", "tags": ["sudo", "sudo-sensitive"],
    },
    {
        "name": "shell",
        "match": {"decision": ["accept"],
                  "command": ["*/sh", "*/bash", "*/dash", "*/zsh", "*/ksh", "*/ksh93",
                              "*/mksh", "*/fish", "*/csh", "*/tcsh", "*/busybox",
                              "*/su", "*/sudo", "*/login", "*/runuser", "*/machinectl"]},
        "action": "alert", "severity": "warning", "tags": ["sudo", "sudo-shell"],
    },
    {
        "name": "exit",
        "match": {"decision": ["close"]},
        "action": "alert", "severity": "info", "tags": ["sudo"],
    },
    {
        "name": "routine",
        "match": {},
        "action": "alert", "severity": "info", "tags": ["sudo"],
    },
]

DEFAULT_SETTINGS = {
    "delivery": "syslog",  # or "direct"
    "fail_closed": False,
    "close_events": False,  # also an event when the command ends (exit status/signal)
    "include_default_rules": True,  # append DEFAULT_RULES after the configured rules
    "rules": [],
    "syslog": {
        "facility": "authpriv",
        "ident": PROGRAM,
        "socket": DEFAULT_SOCKET,
        "drop_counter": DEFAULT_DROP_COUNTER,
    },
    "direct": {
        "python": DEFAULT_PYTHON,
        "apprise_config": DEFAULT_APPRISE_CONFIG,
        "min_severity": "warning",  # less severe events only go to syslog
        "syslog_copy": True,  # also log every event to syslog
        "spool": DEFAULT_SPOOL,  # events waiting for the sender (root-only)
        "lock": DEFAULT_LOCK,  # held by the running sender
        "spool_max_bytes": 1024 * 1024,  # beyond this, events go to syslog only
    },
    "limits": DEFAULT_LIMITS,
}

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_CHILD_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/"}


class ConfigError(Exception):
    """The configuration file is missing, unsafe or invalid."""


# --------------------------------------------------------------------------- text


if _IMPORT_ERROR is None:
    # C0/C1 controls and DEL, lone surrogates (undecodable bytes), bidi overrides and
    # Unicode line separators: shown as visible escapes, never passed through.
    _UNSAFE_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
                            "\ud800-\udfff]")


def _escape_char(match):
    code = ord(match.group(0))
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape'd byte: show the byte
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def clean(value, limit):
    """Return ``(text, truncated)``: ``value`` as one safe line of at most ``limit`` chars."""
    if value is None:
        return None, False
    if isinstance(value, bytes):
        value = value.decode("utf-8", "surrogateescape")
    elif not isinstance(value, str):
        value = str(value)
    cut = False
    # Cut before escaping too, so 100 KB of garbage costs no more than the limit.
    if len(value) > 4 * limit:
        value, cut = value[: 4 * limit], True
    if not value.isprintable():
        value = _UNSAFE_RE.sub(_escape_char, value)
    if len(value) > limit:
        cut = True
    if cut:
        marker = "...[truncated]"
        value = value[: max(0, limit - len(marker))] + marker
    return value, cut


# --------------------------------------------------------------------------- config


def _as_list(value, what):
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ConfigError(f"{what} must be a string or a list of strings")


def compile_rules(rules):
    """Validate rules and precompile their patterns. Raises ConfigError."""
    if not isinstance(rules, list):
        raise ConfigError("rules must be a list")
    compiled = []
    for index, rule in enumerate(rules):
        where = "rule {} ({})".format(index, rule.get("name", "unnamed")
                                      if isinstance(rule, dict) else "?")
        if not isinstance(rule, dict):
            raise ConfigError(where + ": must be an object")
        unknown = set(rule) - {"name", "match", "action", "severity", "tags"}
        if unknown:
            raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
        match = rule.get("match", {})
        if not isinstance(match, dict) or set(match) - set(MATCH_KEYS):
            raise ConfigError(f"{where}: match keys must be among {MATCH_KEYS}")
        action = rule.get("action", "alert")
        if action not in ("alert", "ignore"):
            raise ConfigError(where + ": action must be alert or ignore")
        severity = rule.get("severity", "warning")
        if severity not in SEVERITIES:
            raise ConfigError(f"{where}: severity must be one of {list(SEVERITIES)}")
        tags = _as_list(rule.get("tags", ["sudo"]), where + ": tags")
        for tag in tags:
            if not _TAG_RE.match(tag):
                raise ConfigError(f"{where}: invalid tag {tag!r}")
        entry = {"name": str(rule.get("name", f"rule{index}"))[:64], "action": action,
                 "severity": severity, "tags": tags}
        for key in ("decision", "user", "group", "runas_user", "command"):
            if key in match:
                entry[key] = _as_list(match[key], f"{where}: match.{key}")
        for decision in entry.get("decision", ()):
            if decision not in DECISIONS:
                raise ConfigError(f"{where}: unknown decision {decision!r}")
        if "args" in match:
            if not isinstance(match["args"], str):
                raise ConfigError(where + ": match.args must be a regular expression")
            try:
                entry["args"] = re.compile(match["args"])
            except re.error as exc:
                raise ConfigError(f"{where}: match.args: {exc}") from None
        compiled.append(entry)
    return compiled


def _merge(defaults, override, where):
    result = dict(defaults)
    for key, value in override.items():
        if key not in defaults:
            raise ConfigError(f"unknown setting {where}{key}")
        if isinstance(defaults[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"setting {where}{key} must be an object")
            value = _merge(defaults[key], value, where + key + ".")
        elif isinstance(defaults[key], bool) and not isinstance(value, bool):
            raise ConfigError(f"setting {where}{key} must be true or false")
        elif isinstance(defaults[key], int) and not isinstance(defaults[key], bool) and (
                not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ConfigError(f"setting {where}{key} must be a positive integer")
        elif isinstance(defaults[key], str) and not isinstance(value, str):
            raise ConfigError(f"setting {where}{key} must be a string")
        result[key] = value
    return result


def load_settings(path):
    """Read the JSON config at ``path``; return settings with compiled rules.

    Raises ConfigError when the file is missing, not root-owned, writable by others,
    too large or invalid. The caller then uses ``default_settings()``.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags | os.O_NONBLOCK)
    except OSError as exc:
        raise ConfigError(f"cannot open {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not (st.st_mode & 0o170000 == 0o100000):
            raise ConfigError(f"{path} is not a regular file")
        if st.st_uid != TRUSTED_UID or st.st_mode & 0o022:
            raise ConfigError(f"{path} must be owned by root and not writable by group or others"
                              )
        if st.st_size > 256 * 1024:
            raise ConfigError(f"{path} is larger than 256 KiB")
        data = os.read(fd, 256 * 1024 + 1)
    finally:
        os.close(fd)
    try:
        raw = json.loads(data.decode("utf-8"))
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    raw.pop("schema", None)
    raw.pop("comment", None)
    settings = _merge(DEFAULT_SETTINGS, raw, "")
    if settings["delivery"] not in ("syslog", "direct"):
        raise ConfigError("delivery must be syslog or direct")
    if settings["syslog"]["facility"] not in FACILITIES:
        raise ConfigError("unknown syslog facility {!r}".format(settings["syslog"]["facility"]))
    if settings["direct"]["min_severity"] not in SEVERITIES:
        raise ConfigError(f"direct.min_severity must be one of {list(SEVERITIES)}")
    for key in ("python", "apprise_config", "spool", "lock"):
        if not os.path.isabs(settings["direct"][key]):
            raise ConfigError(f"direct.{key} must be an absolute path")
    rules = list(settings["rules"])
    if settings["include_default_rules"]:
        rules += DEFAULT_RULES
    settings["compiled_rules"] = compile_rules(rules)
    return settings


def default_settings():
    settings = _merge(DEFAULT_SETTINGS, {}, "")
    settings["compiled_rules"] = compile_rules(DEFAULT_RULES)
    return settings


# --------------------------------------------------------------------------- rules


def _any_glob(value, patterns):
    return value is not None and any(fnmatch.fnmatchcase(value, p) for p in patterns)


def match_rule(rules, event, groups=None):
    """Return the first rule in ``rules`` that matches ``event`` (dict), or None.

    ``groups`` is a callable returning the user's group names; it is only called when a
    rule matches on groups (the lookup may be slow on directory-backed hosts).
    """
    group_names = None
    for rule in rules:
        if "decision" in rule and event.get("decision") not in rule["decision"]:
            continue
        if "user" in rule and not _any_glob(event.get("user"), rule["user"]):
            continue
        if "runas_user" in rule and not _any_glob(event.get("runas_user"), rule["runas_user"]):
            continue
        if "command" in rule and not _any_glob(event.get("command"), rule["command"]):
            continue
        if "args" in rule and not rule["args"].search(" ".join(event.get("args") or ())):
            continue
        if "group" in rule:
            if group_names is None:
                group_names = list(groups()) if groups else []
            if not any(_any_glob(g, rule["group"]) for g in group_names):
                continue
        return rule
    return None


# --------------------------------------------------------------------------- delivery


def _bump_counter(path):
    """Count a dropped event: the counter file's size is the number of drops since boot."""
    if not path:
        return
    flags = (os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK
             | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        try:
            fd = os.open(path, flags, 0o600)
        except FileNotFoundError:
            os.mkdir(os.path.dirname(path), 0o700)
            fd = os.open(path, flags, 0o600)
        try:
            os.write(fd, b".")
        finally:
            os.close(fd)
    except OSError:
        pass


def drop_count(path):
    try:
        return os.stat(path).st_size if path else 0
    except OSError:
        return 0


def syslog_frame(message, facility, severity, ident, pid, now=None):
    """An RFC 3164 line as glibc's syslog(3) sends it to /dev/log (locale-independent)."""
    tm = time.localtime(now)
    stamp = f"{_MONTHS[tm.tm_mon - 1]} {tm.tm_mday:2d} " + time.strftime("%H:%M:%S", tm)
    pri = FACILITIES[facility] * 8 + SEVERITIES[severity]
    return f"<{pri}>{stamp} {ident}[{pid}]: {message}".encode(
        "utf-8", "backslashreplace")


def send_syslog(data, path=DEFAULT_SOCKET):
    """Send one syslog frame to the local socket without ever blocking.

    Returns None on success or a short reason ("EAGAIN", "ENOENT" ...) when the frame was
    dropped. Datagram sockets (journald, rsyslog, syslog-ng's unix-dgram) get one
    MSG_DONTWAIT datagram; a stream socket (syslog-ng's unix-stream) gets a non-blocking
    connect and send, and a frame it cannot take at once is dropped.
    """
    sock = None
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.sendto(data, socket.MSG_DONTWAIT, path)
            return None
        except OSError as exc:
            if exc.errno != errno.EPROTOTYPE:
                return errno.errorcode.get(exc.errno, str(exc.errno))
        sock.close()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            sock.connect(path)
            frame = data + b"\0"
            sent = sock.send(frame, socket.MSG_DONTWAIT | getattr(socket, "MSG_NOSIGNAL", 0))
        except OSError as exc:
            return errno.errorcode.get(exc.errno, str(exc.errno))
        return None if sent == len(frame) else "partial"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno)) if exc.errno else str(exc)
    finally:
        if sock is not None:
            sock.close()


def direct_argv(python, apprise_config, spool, lock):
    return [python, "-I", "-m", "secalert_apprise.send", "--config", apprise_config,
            "--spool", spool, "--lock", lock]


def _open_private(path, flags):
    """Open ``path`` (no symlinks) creating it 0600 and its directory 0700 if missing."""
    flags |= os.O_CREAT | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(
        os, "O_CLOEXEC", 0)
    try:
        return os.open(path, flags, 0o600)
    except FileNotFoundError:
        os.mkdir(os.path.dirname(path), 0o700)
        return os.open(path, flags, 0o600)


def spool_event(path, line, max_bytes):
    """Append one event line to the spool without ever blocking. Raises OSError.

    Writers hold a shared flock while they write; the sender renames the spool away and
    then takes an exclusive flock on it, so it reads only after every write to that file
    has finished. A writer that finds the file renamed or locked exclusively (the sender
    has it) opens the new spool instead.
    """
    data = line.encode("ascii") + b"\n"
    for _attempt in range(SPOOL_ATTEMPTS):
        fd = _open_private(path, os.O_WRONLY | os.O_APPEND)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # the sender is reading this file: it is no longer the spool
            st = os.fstat(fd)
            try:
                live = os.stat(path, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if (st.st_dev, st.st_ino) != (live.st_dev, live.st_ino):
                continue  # renamed away by the sender before we locked it
            if st.st_uid != TRUSTED_UID or st.st_mode & 0o077 or not (
                    st.st_mode & 0o170000 == 0o100000):
                raise OSError(errno.EPERM, "spool must be a root-only regular file", path)
            if st.st_size + len(data) > max_bytes:
                raise OSError(errno.ENOSPC, "spool full (is the sender stuck?)", path)
            if os.write(fd, data) != len(data):
                raise OSError(errno.EIO, "short write to the spool", path)
            return
        finally:
            os.close(fd)
    raise OSError(errno.EAGAIN, "spool busy", path)


def sender_running(lock):
    """True when a sender holds ``lock`` (checked with a non-blocking flock)."""
    fd = _open_private(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also drops the lock we may just have taken
    return False


def spawn_sender(argv, payload=b""):
    """Start ``argv`` detached with ``payload`` (bytes) on its stdin; never wait for it.

    The payload is written into an empty pipe before the child exists, with O_NONBLOCK:
    that cannot block (it is far below the pipe's 64 KiB capacity) and the child reads it
    whenever it runs. The child gets its own session, no inherited descriptors, "/" as
    working directory, a fixed environment, and real and effective uid/gid 0 so the
    invoking user can neither signal it nor influence what it imports.
    """
    import subprocess  # only in direct mode: it costs milliseconds to import

    rfd, wfd = os.pipe()
    try:
        os.set_blocking(wfd, False)
        written = os.write(wfd, payload) if payload else 0
        os.close(wfd)
        wfd = None
        if written != len(payload):
            raise OSError(errno.EAGAIN, "event larger than the pipe buffer")
        extra = {}
        if os.geteuid() == 0:
            extra = {"user": 0, "group": 0, "extra_groups": []}
        proc = subprocess.Popen(  # noqa: S603 - fixed argv from the root-owned config
            argv, stdin=rfd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            cwd="/", env=dict(_CHILD_ENV), close_fds=True, start_new_session=True,
            umask=0o077, **extra)
    finally:
        os.close(rfd)
        if wfd is not None:
            os.close(wfd)
    try:
        # Python and Apprise take a few hundred ms of CPU to start: let sudo and the
        # command it runs go first on a busy host.
        os.setpriority(os.PRIO_PROCESS, proc.pid, SENDER_NICENESS)
    except OSError:
        pass
    return proc.pid


# --------------------------------------------------------------------------- plugin


_PluginBase = getattr(sudo, "Plugin", object)


def _rc(name, fallback):
    rc = getattr(sudo, "RC", None)
    return int(getattr(rc, name, fallback)) if rc is not None else fallback


class SecalertAuditPlugin(_PluginBase):
    """sudo python_audit plugin. See the module docstring for options and guarantees."""

    def __init__(self, version=None, settings=(), user_info=(), plugin_options=(), **kwargs):
        # user_env (in kwargs) holds the user's environment, secrets included: never read.
        self._disabled = None  # reason when this invocation runs without the plugin
        self._config_broken = False
        self._fail_closed = False
        self._settings = None
        self._events = 0
        self._faults = 0
        self._accepted = None  # (plugin_name, command_info, run_argv) of the policy accept
        self._accept_sent = False
        self._denials = set()
        self._typed = ()
        self._user_info = {}
        self._sudo_settings = {}
        self._options = {}
        try:
            if _IMPORT_ERROR is not None:
                self._disabled = "import failed: " + _IMPORT_ERROR
                return
            self._options = _options(plugin_options)
            self._fail_closed = self._options.get("FailClosed", "no").lower() in (
                "yes", "true", "1", "on")
            self._user_info = _options(user_info)
            self._sudo_settings = _options(settings)
            config = self._options.get("Config", DEFAULT_CONFIG)
            try:
                self._settings = load_settings(config)
                self._fail_closed = self._fail_closed or self._settings["fail_closed"]
            except ConfigError as exc:
                self._settings = default_settings()
                self._fault("config", f"ConfigError: {exc}; using built-in rules and syslog",
                            config_fault=True)
        except BaseException as exc:  # noqa: BLE001 - sudo must never see this
            self._disabled = self._describe(exc)

    # -- sudo callbacks ------------------------------------------------------------

    def open(self, submit_optind, submit_argv):
        try:
            if self._disabled is None:
                self._typed = tuple(submit_argv[submit_optind:])
        except BaseException as exc:  # noqa: BLE001
            self._disabled = self._describe(exc)
        if self._disabled is not None:
            # Broken before or while opening: report, then run without the plugin
            # (REJECT from open() unloads an audit plugin for this invocation).
            self._fault("open", "plugin disabled for this command: " + self._disabled)
            return self._deny("alerting is broken") if self._fail_closed else _rc("REJECT", 0)
        if self._config_broken and self._fail_closed:
            return self._deny("the alerting configuration is broken")
        return _rc("OK", 1)

    def accept(self, plugin_name, plugin_type, command_info, run_argv, run_envp):
        # run_envp is the command's environment: never read.
        delivered = True
        try:
            if self._is_front_end(plugin_type):
                delivered = self._emit_accept(plugin_name, command_info, run_argv)
            elif self._accepted is None:
                self._accepted = (plugin_name, command_info, run_argv)
        except BaseException as exc:  # noqa: BLE001
            self._fault("accept", self._describe(exc))
            delivered = False
        if not delivered and self._fail_closed:
            return self._deny("the audit event could not be delivered", reject=True)
        return _rc("OK", 1)

    def reject(self, plugin_name, plugin_type, audit_msg, command_info):
        return self._denial("reject", plugin_name, plugin_type, audit_msg, command_info)

    def error(self, plugin_name, plugin_type, audit_msg, command_info):
        return self._denial("error", plugin_name, plugin_type, audit_msg, command_info)

    def close(self, status_kind, status):
        try:
            if self._accepted is not None and not self._accept_sent and not self._denials:
                # The front end never confirmed (it failed before exec, or an older
                # sudo): still count the command, once.
                self._emit_accept(None, None, None)
            if self._accept_sent and self._settings is not None and (
                    self._settings["close_events"]):
                extra = _exit_fields(status_kind, status)
                if extra is not None:
                    name, command_info, run_argv = self._accepted
                    self._emit("close", name, None, command_info, run_argv, extra)
        except BaseException as exc:  # noqa: BLE001 - close() errors print a traceback
            self._fault("close", self._describe(exc))

    def show_version(self, is_verbose):
        try:
            if is_verbose and sudo is not None:
                sudo.log_info(f"secalert sudo audit plugin version {__version__}")
        except BaseException:  # noqa: BLE001, S110 - nothing to report to
            pass
        return _rc("OK", 1)

    # -- internals -----------------------------------------------------------------

    def _is_front_end(self, plugin_type):
        kind = getattr(sudo, "PLUGIN_TYPE", None)
        return kind is not None and int(plugin_type) == int(kind.SUDO)

    def _emit_accept(self, plugin_name, command_info, run_argv):
        """Emit the one accept event of this invocation. Returns False if undelivered."""
        if self._accept_sent:
            return True
        self._accept_sent = True
        if self._accepted is not None:
            # The policy plugin made the decision; the front end only confirms it.
            plugin_name = self._accepted[0]
            command_info = command_info or self._accepted[1]
            run_argv = run_argv or self._accepted[2]
        self._accepted = (plugin_name, command_info, run_argv)
        return self._emit("accept", plugin_name, None, command_info, run_argv)

    def _denial(self, decision, plugin_name, plugin_type, audit_msg, command_info):
        try:
            key = (decision, plugin_name, audit_msg)
            if key not in self._denials:  # sudo may report the same failure twice
                self._denials.add(key)
                self._emit(decision, plugin_name, audit_msg, command_info, None)
        except BaseException as exc:  # noqa: BLE001
            self._fault(decision, self._describe(exc))
        return _rc("OK", 1)

    def _emit(self, decision, plugin_name, reason, command_info, run_argv, extra=None):
        """Build, match and deliver one event. Returns False when it was not delivered."""
        if self._settings is None:
            return False
        event = self.build_event(decision, plugin_name, reason, command_info, run_argv)
        if extra:
            event.update(extra)
        rule = match_rule(self._settings["compiled_rules"], event, self._group_names)
        if rule is None or rule["action"] == "ignore":
            return True
        event["rule"] = rule["name"]
        event["severity"] = rule["severity"]
        event["tags"] = list(rule["tags"])
        self._events += 1
        return self._deliver(event)

    def build_event(self, decision, plugin_name, reason, command_info, run_argv):
        limits = self._settings["limits"] if self._settings else DEFAULT_LIMITS
        field = limits["field_chars"]
        info = _options(command_info)
        ui = self._user_info
        truncated = False

        def text(value, limit=field):
            nonlocal truncated
            value, cut = clean(value, limit)
            truncated = truncated or cut
            return value

        argv = list(run_argv or ()) or list(self._typed)
        command = info.get("command") or (argv[0] if argv else None)
        args = []
        for arg in argv[1: 1 + limits["args"]]:
            args.append(text(arg, limits["arg_chars"]))
        if len(argv) - 1 > limits["args"]:
            args.append("...[{} more arguments]".format(len(argv) - 1 - limits["args"]))
            truncated = True
        now = time.time()
        event = {
            "schema": SCHEMA_VERSION,
            "type": "sudo",
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
            + f".{int(now * 1000) % 1000:03d}Z",
            "host": text(ui.get("host") or socket.gethostname()),
            "pid": _int(ui.get("pid")) or os.getpid(),
            "user": text(ui.get("user")),
            "uid": _int(ui.get("uid")),
            "tty": text(ui.get("tty")),
            "cwd": text(ui.get("cwd")),
            "runas_user": text(self._runas_user(info)),
            "runas_group": text(self._runas_group(info)),
            "command": text(command),
            "args": args,
            "decision": decision,
            "plugin": text(plugin_name),
        }
        if reason is not None:
            event["reason"] = text(reason, 2 * field)
        if self._options.get("Id"):
            event["plugin_id"] = text(self._options["Id"], 64)
        dropped = drop_count(self._settings["syslog"]["drop_counter"] if self._settings
                             else DEFAULT_DROP_COUNTER)
        if dropped:
            event["dropped"] = dropped
        event["truncated"] = truncated
        return event

    def _runas_user(self, info):
        name = info.get("runas_user") or self._sudo_settings.get("runas_user")
        if name:
            return name
        uid = _int(info.get("runas_uid") or info.get("runas_euid"))
        if uid is None:
            return "root" if info else None
        try:
            import pwd

            return pwd.getpwuid(uid).pw_name
        except (KeyError, ImportError, OverflowError):
            return f"#{uid}"

    def _runas_group(self, info):
        name = info.get("runas_group") or self._sudo_settings.get("runas_group")
        if name:
            return name
        gid = _int(info.get("runas_gid") or info.get("runas_egid"))
        if gid is None:
            return None
        try:
            import grp

            return grp.getgrgid(gid).gr_name
        except (KeyError, ImportError, OverflowError):
            return f"#{gid}"

    def _group_names(self):
        import grp

        gids = {_int(g) for g in (self._user_info.get("groups") or "").split(",")}
        gids.add(_int(self._user_info.get("gid")))
        for gid in sorted(g for g in gids if g is not None):
            try:
                yield grp.getgrgid(gid).gr_name
            except (KeyError, OverflowError):
                yield f"#{gid}"

    def _serialise(self, event):
        limit = (self._settings["limits"] if self._settings else DEFAULT_LIMITS)["event_bytes"]
        line = json.dumps(event, ensure_ascii=True, separators=(",", ":"), sort_keys=False)
        # Shrink the arguments until the line fits; the other fields are bounded already.
        arg_limit = 512
        while len(line) > limit and event.get("args") and arg_limit >= 16:
            event["args"] = [clean(a, arg_limit)[0] for a in event["args"]]
            event["truncated"] = True
            arg_limit //= 2
            line = json.dumps(event, ensure_ascii=True, separators=(",", ":"))
        if len(line) > limit and event.get("args"):
            event["args"] = ["...[{} arguments omitted]".format(len(event["args"]))]
            event["truncated"] = True
            line = json.dumps(event, ensure_ascii=True, separators=(",", ":"))
        return line

    def _deliver(self, event):
        settings = self._settings
        line = self._serialise(event)
        severity = event.get("severity", "info")
        ok = True
        to_syslog = True
        if settings["delivery"] == "direct" and event.get("type") == "sudo":
            to_syslog = settings["direct"]["syslog_copy"]
            if SEVERITIES[severity] <= SEVERITIES[settings["direct"]["min_severity"]]:
                ok = self._deliver_direct(line, event)
                to_syslog = to_syslog or not ok
        if to_syslog:
            ok = self._send_syslog(line, severity) and ok
        return ok

    def _deliver_direct(self, line, event):
        """Queue the event for the sender; start one if none runs. False if not queued."""
        direct = self._settings["direct"]
        try:
            spool_event(direct["spool"], line, direct["spool_max_bytes"])
        except BaseException as exc:  # noqa: BLE001 - not queued: syslog gets it
            self._fault("direct", "event not queued: " + self._describe(exc))
            return False
        try:
            if not sender_running(direct["lock"]):
                python = direct["python"]
                if not os.access(python, os.X_OK):
                    raise OSError(errno.ENOENT, "sender interpreter missing", python)
                spawn_sender(direct_argv(python, direct["apprise_config"], direct["spool"],
                                         direct["lock"]))
        except BaseException as exc:  # noqa: BLE001 - queued; the next sender sends it
            self._fault("direct", "sender not started: " + self._describe(exc))
            return False
        return True

    def _send_syslog(self, line, severity):
        cfg = (self._settings or DEFAULT_SETTINGS)["syslog"]
        pid = _int(self._user_info.get("pid")) or os.getpid()
        frame = syslog_frame(line, cfg["facility"], severity, cfg["ident"], pid)
        failure = send_syslog(frame, cfg["socket"])
        if failure is not None:
            _bump_counter(cfg["drop_counter"])
            return False
        return True

    def _fault(self, where, description, config_fault=False):
        """Report an internal fault to syslog (never to the user). Never raises."""
        try:
            self._faults += 1
            if config_fault:
                self._config_broken = True
            event = {
                "schema": SCHEMA_VERSION,
                "type": "fault",
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "host": clean(self._user_info.get("host") or socket.gethostname(), 256)[0],
                "pid": _int(self._user_info.get("pid")) or os.getpid(),
                "user": clean(self._user_info.get("user"), 256)[0],
                "where": where,
                "error": clean(description, 512)[0],
                "fail_closed": self._fail_closed,
                "severity": "error",
                "tags": ["sudo", "secalert-fault"],
            }
            line = json.dumps(event, ensure_ascii=True, separators=(",", ":"))
            self._send_syslog(line, "error")
        except BaseException:  # noqa: BLE001, S110 - last resort: stay silent, stay open
            pass

    def _deny(self, why, reject=False):
        """Refuse the command (fail_closed): REJECT from accept(), ERROR from open().

        (REJECT from open() would only unload the plugin and run the command.)
        """
        message = f"secalert: {why}; command denied (fail_closed)"
        exc = getattr(sudo, "PluginReject" if reject else "PluginError", None)
        if exc is not None:
            raise exc(message)
        return _rc("REJECT", 0) if reject else _rc("ERROR", -1)

    @staticmethod
    def _describe(exc):
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        where = f" (line {tb.tb_lineno})" if tb is not None else ""
        return f"{type(exc).__name__}: {str(exc)[:300]}{where}"


def _options(items):
    """sudo's ("key=value", ...) tuples as a dict; tolerant of junk."""
    result = {}
    for item in items or ():
        if isinstance(item, str):
            key, sep, value = item.partition("=")
            if sep:
                result[key] = value
    return result


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _exit_fields(status_kind, status):
    """Fields for a close event, or None when no command ran."""
    reasons = getattr(sudo, "EXIT_REASON", None)
    kind = int(status_kind)
    if reasons is None or kind == int(reasons.NO_STATUS):
        return None
    if kind == int(reasons.WAIT_STATUS):
        if os.WIFEXITED(status):
            return {"exit_status": os.WEXITSTATUS(status)}
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            return {"signal": sig, "core_dumped": bool(os.WCOREDUMP(status))}
        return {"wait_status": int(status)}
    if kind == int(reasons.EXEC_ERROR):
        return {"exec_error": errno.errorcode.get(int(status), str(status))}
    if kind == int(reasons.SUDO_ERROR):
        return {"sudo_error": int(status)}
    return {"status_kind": kind, "status": int(status)}


def main(argv):
    """``python3 -I secalert_sudo_audit.py --check CONFIG``: validate a configuration.

    The role runs this on the rendered file before it replaces the live one.
    """
    import sys

    if len(argv) != 3 or argv[1] != "--check":
        sys.stderr.write("usage: secalert_sudo_audit.py --check CONFIG\n")
        return 2
    try:
        settings = load_settings(argv[2])
    except ConfigError as exc:
        sys.stderr.write(f"invalid: {exc}\n")
        return 1
    rules = len(settings["compiled_rules"])
    sys.stdout.write(f"ok: delivery {settings['delivery']}, {rules} rules\n")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv))
