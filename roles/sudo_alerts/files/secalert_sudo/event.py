"""One event: its fields from what sudo passed, escaping for output, serialisation.

Rules never see the escaped, truncated text built here: ``build`` returns the event for
output and, beside it, the raw values the rules match on (``rules.match_rule``).
"""

import json
import os
import re
import time

SCHEMA_VERSION = 1
MATCH_CHARS = 256 * 1024  # raw argument text rules search at most (the rest raises severity)
TRUNCATED = "...[truncated]"

# C0/C1 controls and DEL, lone surrogates (undecodable bytes), bidi overrides and
# Unicode line separators: shown as visible escapes, never passed through. Compiled on
# first use (most calls have only printable text).
_UNSAFE = ("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
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
        value = re.compile(_UNSAFE).sub(_escape_char, value)
    if len(value) > limit:
        cut = True
    if cut:
        value = value[: max(0, limit - len(TRUNCATED))] + TRUNCATED
    return value, cut


def options(items):
    """sudo's ("key=value", ...) tuples as a dict; tolerant of junk."""
    result = {}
    for item in items or ():
        if isinstance(item, str):
            key, sep, value = item.partition("=")
            if sep:
                result[key] = value
    return result


def to_int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def account_name(number, group=False):
    """The user (or group) name of a uid (gid), ``#N`` when it has none, None for None."""
    number = to_int(number)
    if number is None:
        return None
    try:
        if group:
            import grp

            return grp.getgrgid(number).gr_name
        import pwd

        return pwd.getpwuid(number).pw_name
    except (KeyError, ImportError, OverflowError):
        return f"#{number}"


def timestamp(now=None, millis=True):
    now = time.time() if now is None else now
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
    return text + (f".{int(now * 1000) % 1000:03d}Z" if millis else "Z")


def hostname(user_info):
    host = user_info.get("host")
    if host:
        return host
    import _socket

    return _socket.gethostname()


def build(decision, plugin_name, reason, fields, argv, limits):
    """Return ``(event, raw)``.

    ``fields``: user/uid/tty/cwd/host/pid/runas_user/runas_group/command/plugin_id as
    sudo gave them, and ``parent_command`` for a command run inside an accepted one
    (sudoers' log_subcmds); ``argv``: the command and its arguments. ``event`` is what goes out
    (escaped, bounded); ``raw`` is what the rules match on.
    """
    field = limits["field_chars"]
    truncated = False

    def text(value, limit=field):
        nonlocal truncated
        value, cut = clean(value, limit)
        truncated = truncated or cut
        return value

    argv = list(argv or ())
    command = fields.get("command") or (argv[0] if argv else None)
    raw_args = []
    budget = MATCH_CHARS
    for arg in argv[1:]:
        arg = arg if isinstance(arg, str) else str(arg)
        if len(arg) > budget:
            raw_args.append(arg[:budget])
            truncated = True
            break
        raw_args.append(arg)
        budget -= len(arg) + 1
    args = [text(arg, limits["arg_chars"]) for arg in argv[1: 1 + limits["args"]]]
    if len(argv) - 1 > limits["args"]:
        args.append("...[{} more arguments]".format(len(argv) - 1 - limits["args"]))
        truncated = True
    event = {
        "schema": SCHEMA_VERSION,
        "type": "sudo",
        "time": timestamp(),
        "host": text(fields.get("host")),
        "pid": fields.get("pid") or os.getpid(),
        "user": text(fields.get("user")),
        "uid": fields.get("uid"),
        "tty": text(fields.get("tty")),
        "cwd": text(fields.get("cwd")),
        "runas_user": text(fields.get("runas_user")),
        "runas_group": text(fields.get("runas_group")),
        "command": text(command),
        "args": args,
        "decision": decision,
        "plugin": text(plugin_name),
    }
    if reason is not None:
        event["reason"] = text(reason, 2 * field)
    if fields.get("plugin_id"):
        event["plugin_id"] = text(fields["plugin_id"], 64)
    subcommand = "parent_command" in fields
    if subcommand:
        event["subcommand"] = True
        event["parent_command"] = text(fields["parent_command"])
    event["truncated"] = truncated
    raw = {"decision": decision, "user": fields.get("user"),
           "runas_user": fields.get("runas_user"), "command": command, "args": raw_args,
           "cwd": fields.get("run_cwd") or fields.get("cwd"),
           "scope": "subcommand" if subcommand else "top"}
    return event, raw


def _dumps(event):
    return json.dumps(event, ensure_ascii=True, separators=(",", ":"))


def serialise(event, limit, on_truncate=None):
    """One JSON line of at most ``limit`` bytes: the arguments shrink until it fits.

    ``on_truncate(event)`` runs whenever arguments had to be cut here (the caller raises
    the severity: what was cut cannot be read in the alert).
    """
    line = _dumps(event)
    arg_limit = 512
    while len(line) > limit and event.get("args") and arg_limit >= 16:
        event["args"] = [clean(a, arg_limit)[0] for a in event["args"]]
        event["truncated"] = True
        if on_truncate is not None:
            on_truncate(event)
        arg_limit //= 2
        line = _dumps(event)
    if len(line) > limit and event.get("args"):
        event["args"] = ["...[{} arguments omitted]".format(len(event["args"]))]
        event["truncated"] = True
        if on_truncate is not None:
            on_truncate(event)
        line = _dumps(event)
    return line


def fault(where, description, user_info, fail_closed):
    """A ``"type": "fault"`` event (roles/sudo_alerts/README.md, "Event fields")."""
    return {
        "schema": SCHEMA_VERSION,
        "type": "fault",
        "time": timestamp(millis=False),
        "host": clean(hostname(user_info), 256)[0],
        "pid": to_int(user_info.get("pid")) or os.getpid(),
        "user": clean(user_info.get("user"), 256)[0],
        "where": where,
        "error": clean(description, 512)[0],
        "fail_closed": fail_closed,
        "severity": "error",
        "tags": ["sudo", "secalert-fault"],
    }


def fault_line(event):
    return _dumps(event)


def exit_fields(reasons, status_kind, status):
    """Fields for a close event, or None when no command ran. ``reasons``: sudo.EXIT_REASON."""
    import errno

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
