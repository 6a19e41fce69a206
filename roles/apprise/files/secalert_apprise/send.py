"""Send secalert events through Apprise: ``python -m secalert_apprise.send``.

Usage::

    python -I -m secalert_apprise.send --config /etc/secalert/apprise.yml \\
        [--tag TAG ...] [--input FILE] [--timeout SECONDS] [--dry-run]

Reads events from stdin (or ``--input``): JSON objects, one per line (the sudo audit
plugin's direct mode writes exactly one). Each event becomes one notification whose title
and body are made safe with :mod:`secalert_apprise.text`, sent to the Apprise targets of
``--config`` whose tags match any ``--tag`` (default: the event's own ``tags``).

Runs detached from sudo, so it may take its time, but never longer than ``--timeout``
(default 30 s) in total. Failures are logged to syslog (authpriv, ``secalert-send``)
without URLs or tokens; nothing is printed unless ``--dry-run``.

Exit status (Apprise's own codes where they exist, sysexits(3) for the rest):

====  ==========================================================================
0     every event was delivered (or printed, with ``--dry-run``)
1     delivery failed for at least one event
2     bad command line
3     no Apprise target matched the tags: nothing was sent
4     partial: some targets took an event, others did not
5     timed out
65    no valid event in the input (EX_DATAERR)
69    Apprise is not installed (EX_UNAVAILABLE)
78    the Apprise config is missing, unreadable or has no targets (EX_CONFIG)
====  ==========================================================================
"""

import argparse
import json
import signal
import sys

from secalert_apprise import text

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NO_MATCH = 3
EXIT_PARTIAL = 4
EXIT_TIMEOUT = 5
EXIT_DATAERR = 65
EXIT_UNAVAILABLE = 69
EXIT_CONFIG = 78

PROGRAM = "secalert-send"
MAX_INPUT = 1024 * 1024
MAX_EVENTS = 20
TITLE_LIMIT = 200
BODY_LIMIT = 1900  # under Discord's 2000, Slack's and Telegram's limits
FIELD_LIMIT = 300
COMMAND_LIMIT = 1000

_SEVERITY_TYPE = {
    "emergency": "failure", "alert": "failure", "critical": "failure", "error": "failure",
    "warning": "warning", "notice": "info", "info": "info", "debug": "info",
}


class Timeout(Exception):  # noqa: N818
    pass


def log(message, priority="err"):
    """One line to syslog. Never raises: the sender has nobody else to tell."""
    try:
        import syslog

        syslog.openlog(PROGRAM, syslog.LOG_PID, syslog.LOG_AUTHPRIV)
        syslog.syslog(getattr(syslog, "LOG_" + priority.upper(), syslog.LOG_ERR),
                      text.safe(message, limit=900, multiline=False))
    except Exception:  # noqa: BLE001, S110 - logging must not fail the sender
        pass


def read_events(stream):
    """Parse JSON lines from ``stream`` (bytes). Returns (events, bad_lines)."""
    data = stream.read(MAX_INPUT + 1)
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    events, bad = [], 0
    for raw in data[:MAX_INPUT].splitlines():
        if not raw.strip():
            continue
        try:
            event = json.loads(raw.decode("utf-8", "replace"))
        except ValueError:
            bad += 1
            continue
        if isinstance(event, dict):
            events.append(event)
        else:
            bad += 1
    return events[:MAX_EVENTS], bad + max(0, len(events) - MAX_EVENTS)


def _field(value, limit=FIELD_LIMIT):
    return text.safe(value, limit=limit, multiline=False)


def _command_line(event):
    parts = [event.get("command") or "?"]
    parts += [a if isinstance(a, str) else str(a) for a in (event.get("args") or [])]
    return _field(" ".join(str(p) for p in parts), COMMAND_LIMIT)


def format_event(event):
    """Return ``(title, body, notify_type)`` for one event, all safe to post."""
    kind = event.get("type", "sudo")
    severity = str(event.get("severity", "info"))
    user = _field(event.get("user") or "?", 64)
    host = _field(event.get("host") or "?", 128)
    if kind == "fault":
        title = f"secalert sudo plugin fault on {host}"
        lines = [f"where: {_field(event.get('where'))}", f"error: {_field(event.get('error'))}",
                 f"user: {user}", f"fail_closed: {bool(event.get('fail_closed'))}"]
    else:
        decision = str(event.get("decision", "?"))
        command = _field(event.get("command") or "?", 120)
        runas = _field(event.get("runas_user") or "?", 64)
        if decision == "accept":
            title = f"sudo: {user} ran {command} as {runas} on {host}"
        elif decision == "reject":
            title = f"sudo: {user} was denied {command} on {host}"
        elif decision == "error":
            title = f"sudo: error for {user} running {command} on {host}"
        else:
            outcome = (f"signal {event['signal']}" if "signal" in event
                       else f"exit {event.get('exit_status', '?')}")
            title = f"sudo: {command} by {user} on {host} ended ({outcome})"
        lines = [f"command: {_command_line(event)}"]
        if event.get("reason"):
            lines.append(f"reason: {_field(event['reason'])}")
        lines.append(f"user: {user} (uid {_field(event.get('uid'), 12)})")
        runas_group = event.get("runas_group")
        lines.append(f"run as: {runas}" + (f":{_field(runas_group, 64)}" if runas_group else ""))
        for key in ("tty", "cwd", "plugin"):
            if event.get(key):
                lines.append(f"{key}: {_field(event[key])}")
        if event.get("truncated"):
            lines.append("note: the event was truncated at the source")
    lines.append(f"rule: {_field(event.get('rule') or '-', 64)}, severity: {_field(severity, 16)}")
    lines.append(f"host: {host}, time: {_field(event.get('time'), 40)}")
    if event.get("dropped"):
        lines.append(f"warning: {int(event['dropped'])} earlier events were dropped")
    title = text.safe(f"[{severity}] {title}", limit=TITLE_LIMIT, multiline=False)
    body = text.truncate("\n".join(lines), BODY_LIMIT)
    return title, body, _SEVERITY_TYPE.get(severity, "info")


def _status(result):
    """Map an Apprise notify() result (2.x AppriseResult, 1.x bool/None) to an exit code."""
    if result is None:
        return EXIT_NO_MATCH
    status = getattr(result, "status", None)
    if status is not None:
        code = int(status)
        return code if code in (EXIT_OK, EXIT_FAILED, EXIT_NO_MATCH, EXIT_PARTIAL,
                                EXIT_TIMEOUT) else EXIT_FAILED
    return EXIT_OK if result else EXIT_FAILED


class SetupError(Exception):
    """Sending is impossible (no Apprise, no usable config); carries the exit status."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def build_apprise(config_path):
    """Return ``(apprise module, Apprise object)`` loaded from ``config_path``.

    Raises SetupError when Apprise is missing or the config is unreadable or empty.
    """
    try:
        import apprise
    except ImportError as exc:
        raise SetupError(EXIT_UNAVAILABLE, f"apprise is not importable: {exc}") from None
    try:
        with open(config_path, "rb"):
            pass
    except OSError as exc:
        raise SetupError(EXIT_CONFIG, f"cannot read {config_path}: {exc.strerror}") from None
    config = apprise.AppriseConfig()
    if not config.add(config_path):
        raise SetupError(EXIT_CONFIG, f"{config_path} is not a usable Apprise config")
    apobj = apprise.Apprise()
    apobj.add(config)
    if len(apobj) == 0:
        raise SetupError(EXIT_CONFIG, f"{config_path} defines no valid targets")
    return apprise, apobj


def _fail(code, message):
    log(message)
    return code


def _on_alarm(signum, frame):
    raise Timeout()


def _prepare_process(timeout):
    """Undo what the sudo process leaves us: blocked signals, ignored SIGTERM."""
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, signal.valid_signals())
    except (OSError, ValueError):
        pass
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(max(1, int(timeout)))


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m secalert_apprise.send",
                                     description="Send secalert events through Apprise.")
    parser.add_argument("--config", required=True, help="Apprise config file (YAML/text)")
    parser.add_argument("--tag", action="append", default=[],
                        help="send to targets with this tag (repeatable: any of them)")
    parser.add_argument("--input", help="read events from this file instead of stdin")
    parser.add_argument("--timeout", type=int, default=30, help="overall limit in seconds")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the notifications instead of sending them")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    _prepare_process(args.timeout)
    try:
        return _run(args)
    except SetupError as exc:
        return _fail(exc.code, str(exc))
    except Timeout:
        return _fail(EXIT_TIMEOUT, f"gave up after {args.timeout} s")
    finally:
        signal.alarm(0)


def _run(args):
    if args.input:
        try:
            with open(args.input, "rb") as stream:
                events, bad = read_events(stream)
        except OSError as exc:
            return _fail(EXIT_DATAERR, f"cannot read {args.input}: {exc.strerror}")
    else:
        events, bad = read_events(sys.stdin.buffer)
    if bad:
        log(f"ignored {bad} malformed or surplus input lines", "warning")
    if not events:
        return _fail(EXIT_DATAERR, "no valid event on input")

    if args.dry_run:
        for event in events:
            title, body, kind = format_event(event)
            sys.stdout.write(json.dumps({"title": title, "body": body, "type": kind}) + "\n")
        return EXIT_OK

    apprise, apobj = build_apprise(args.config)
    codes = []
    for event in events:
        title, body, kind = format_event(event)
        tags = args.tag or [t for t in (event.get("tags") or []) if isinstance(t, str)]
        tags = tags or ["sudo"]
        result = apobj.notify(body=body, title=title, notify_type=kind, tag=tags,
                              body_format=apprise.NotifyFormat.TEXT)
        code = _status(result)
        codes.append(code)
        what = _field(event.get("decision") or event.get("type"), 16)
        if code == EXIT_NO_MATCH:
            log("no Apprise target is tagged {}: {} event not sent".format(
                " or ".join(_field(t, 64) for t in tags), what), "warning")
        elif code != EXIT_OK:
            log(f"delivery failed for an event ({what}), status {code}")
    return aggregate(codes)


def aggregate(codes):
    """One exit status for several events: success only if all succeeded."""
    if all(code == EXIT_OK for code in codes):
        return EXIT_OK
    if EXIT_FAILED in codes:
        return EXIT_FAILED
    return max(codes)

if __name__ == "__main__":
    sys.exit(main())
