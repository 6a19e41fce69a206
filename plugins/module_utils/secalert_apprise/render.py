# Copyright: (c) 2026, secalert.alerting contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a notification says: severity to notify type, digests, the sudo event text.

Standard library only, no state: used by the syslog-ng ``apprise()`` destination and by
the sudo direct-mode sender, inside syslog-ng and next to sudo.

- ``notify_type`` / ``rank``: the one severity table (syslog names and rule severities).
- ``renders_markdown``: whether an Apprise server object shows Markdown (compares
  ``NotifyFormat`` *values*, so it works with Apprise 2.x enums and 1.x strings).
- ``digest``: one notification for many log events, most severe first; a source with
  many events at one severity is folded into one counted line instead of being listed.
- ``attribute``: text written by another host, shown as that host's: every line starts
  with the sender the alert server verified ("[web1] ..."), whatever the text claims.
- ``read_sudo`` / ``sudo_event`` / ``sudo_line`` / ``sudo_digest``: the sudo decision,
  fault and status events of the sudo audit plugin (their fields: roles/sudo_alerts/README.md),
  each with its own title. Both delivery modes use them: the direct sender next to sudo,
  and the syslog-ng destination (the ``sudo_events`` rule's ``render: sudo``, on the host
  that sends the notification), so a sudo alert reads the same whichever way it came
  and whatever role version the client that logged it runs.
"""

import json

from . import text

# Notify type of every severity name a rule or a syslog level may use. Unknown: warning
# (never shown as harmless info).
SEVERITY_TYPE = {
    "emergency": "failure", "emerg": "failure", "alert": "failure", "critical": "failure",
    "crit": "failure", "high": "failure", "error": "failure", "err": "failure",
    "failure": "failure",
    "warning": "warning", "warn": "warning", "medium": "warning",
    "notice": "info", "info": "info", "low": "info", "debug": "info",
    "success": "success",
}
DEFAULT_TYPE = "warning"
TYPE_RANK = {"success": 0, "info": 1, "warning": 2, "failure": 3}
# Severity names from the most to the least severe (for titles that name one).
SEVERITY_ORDER = ("emergency", "alert", "critical", "error", "warning", "notice", "info",
                  "debug")

# Digest of log events (syslog-ng destination). The tests import these.
DIGEST_TITLE = "{count} events: {label}"
DIGEST_HEADER = "{count} events, most severe first:"
DIGEST_BULLET = "• "
FOLD_AT = 3  # events of one source at one severity from which they are counted, not listed
FOLD_LINE = "{source}: {count} × {what}"
FOLD_EXAMPLES = ", first: {first}; last: {last}"
EXAMPLE_LIMIT = 80
LINE_LIMIT = 300

# Services whose plain-text message is rendered as Markdown by the service itself
# (Discord renders `content`, masked links included, whatever Apprise declares).
MARKDOWN_PROTOCOLS = ("discord",)


def _name(value):
    return str(getattr(value, "value", value) or "").strip().lower()


def notify_type(severity):
    """Apprise notify type (info, success, warning, failure) of a severity name."""
    return SEVERITY_TYPE.get(_name(text.to_text(severity)), DEFAULT_TYPE)


def rank(severity):
    """How severe ``severity`` is (higher is worse), through its notify type."""
    return TYPE_RANK[notify_type(severity)]


def most_severe(severities):
    """The notify type of the most severe of ``severities``."""
    return max((notify_type(s) for s in severities), key=TYPE_RANK.__getitem__,
               default=DEFAULT_TYPE)


def renders_markdown(server, mode="auto"):
    """Whether text sent to ``server`` is shown as Markdown, so it must be escaped.

    ``mode``: "yes"/"true"/"1" always, "no"/"false"/"0" never, "auto": the format the
    server renders: the one its URL asks for (``?format=``), else its primary
    ``notify_format``, else a service in MARKDOWN_PROTOCOLS.
    """
    mode = _name(mode)
    if mode in ("yes", "true", "1"):
        return True
    if mode != "auto":
        return False
    override = getattr(server, "_format_override", None)
    formats = getattr(server, "notify_format", None)
    if not isinstance(formats, (tuple, list)):
        formats = (formats,)
    primary = override if override is not None else (formats[0] if formats else None)
    if _name(primary) == "markdown":
        return True
    protocols = []
    for attr in ("protocol", "secure_protocol"):
        value = getattr(server, attr, None)
        protocols += list(value) if isinstance(value, (tuple, list)) else [value]
    return any(_name(p) in MARKDOWN_PROTOCOLS for p in protocols)


def limits(server, max_body=0):
    """``(title_max, body_max)`` for one server object."""
    title_max = min(getattr(server, "title_maxlen", 250) or 250, 250)
    body_max = getattr(server, "body_maxlen", 4000) or 4000
    if max_body and max_body > 0:
        body_max = min(body_max, max_body)
    return title_max, body_max


# -- log events (syslog-ng) ------------------------------------------------------------

# What the alert server puts in front of a line a client wrote that does not begin with
# the client's verified name (its certificate's CN).
ORIGIN_PREFIX = "[{origin}] "


def attribute(value, origin, multiline=False):
    """``value`` (str or bytes) as text written by ``origin``: a line that does not begin
    with ``origin`` (followed by a space, a colon or nothing) gets ORIGIN_PREFIX in front,
    so the first word of every line is the sender the server verified, not one the text
    claims. ``multiline``: every line of a body (else one line). Empty ``origin``: the
    text is unchanged (the alert server's own events, a standalone host's).
    """
    origin = text.clean(origin, multiline=False)
    value = text.clean(value, multiline=multiline)
    if not origin:
        return value
    prefix = ORIGIN_PREFIX.format(origin=origin)

    def own(line):
        line = line.lstrip()
        return line.startswith(origin) and line[len(origin):len(origin) + 1] in ("", " ", ":")

    lines = value.split("\n") if multiline else [value]
    return "\n".join(line if own(line) or (multiline and not line.strip()) else prefix + line
                     for line in lines)


def single(title, body, severity, markdown, title_max=250, body_max=4000):
    """``(title, body, notify_type)`` of one event; never an empty body."""
    title = text.safe(title, limit=title_max, multiline=False, markdown=markdown)
    body = text.safe(body, limit=max(1, body_max - len(title) - 2), markdown=markdown)
    if not body.strip():
        body = title or "(empty event)"
    return title, body, notify_type(severity)


def digest(events, markdown, title_max=250, body_max=4000, max_lines=50, fold_at=FOLD_AT):
    """``(title, body, notify_type)`` of one notification for ``events``.

    ``events``: ``(title, body, severity, source[, origin])`` tuples (str or bytes),
    oldest first. ``origin`` (the sender the alert server verified, see ``attribute``)
    leads the title and every listed line; a folded line starts with it through its
    source ("web1 sshd: 250 × ..."), so its titles and examples keep their own words.
    Lines go most severe first (oldest first inside one severity), so one critical event
    is the first line whatever floods beside it. When every event fits (``max_lines``
    and the body limit), every event gets its own line. When not, floods are folded,
    the biggest first, until the rest fits: first the repeats of one title from one
    source ("alice: 250 × sudo reject on h1: ..."), then whatever one source sent
    ("alice: 300 events (250 × ...; 50 × ...)"). What still does not fit is counted in the
    last line per source ("… and 12 more: bob 10, carol 2"). The title names the most
    severe event: DIGEST_TITLE ("N events: <title>[ and others]").
    """
    items = []
    for t, b, s, src, *origin in events:
        origin = text.to_text(origin[0]) if origin else ""
        if origin:
            src = origin + " " + text.to_text(src)

        def one(value, limit=LINE_LIMIT):
            return text.safe(value, limit=limit, multiline=False, markdown=markdown)

        items.append((one(t), one(b), rank(s), s, one(src, 64) or "?",
                      one(attribute(b, origin)), one(attribute(t, origin))))
    order = sorted(range(len(items)), key=lambda i: -items[i][2])
    first = items[order[0]][6] if items else ""
    label = first if len({e[6] for e in items}) <= 1 else first + " and others"
    title = text.truncate(DIGEST_TITLE.format(count=len(items), label=label), title_max)
    header = DIGEST_HEADER.format(count=len(items))
    limit = max(1, body_max - len(title) - 2)

    def build(folded):
        lines, seen = [], set()
        for i in order:
            level, src, ttl = items[i][2], items[i][4], items[i][0]
            for key in ((level, src, None), (level, src, ttl)):
                if key in folded:
                    if key not in seen:
                        seen.add(key)
                        idx = folded[key]
                        lines.append((fold_line(src, [items[j][0] for j in idx],
                                                items[idx[0]][1], items[idx[-1]][1]), idx))
                    break
            else:
                lines.append((DIGEST_BULLET + items[i][5], [i]))
        return lines

    def fits(lines):
        return len(lines) <= max_lines and \
            len(header) + sum(1 + len(line) for line, _idx in lines) <= limit

    folded = {}
    lines = build(folded)
    for by_title in (True, False):
        if fits(lines):
            break
        groups = {}
        for i in order:
            key = (items[i][2], items[i][4], items[i][0] if by_title else None)
            groups.setdefault(key, []).append(i)
        # Fold the biggest groups until the estimate fits, then build once (a flood of
        # thousands must not cost a rebuild per group).
        count, chars = len(lines), sum(1 + len(line) for line, _idx in lines)
        average = chars / max(1, count)
        for key, idx in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            if len(idx) < fold_at or (count <= max_lines and chars + len(header) <= limit):
                break
            for old in [k for k in folded if not by_title and k[:2] == key[:2]]:
                del folded[old]
            folded[key] = idx
            count -= len(idx) - 1
            chars -= (len(idx) - 1) * average
        lines = build(folded)
    body = _fit(header, lines, items, limit, max_lines)
    return title, body, most_severe(e[3] for e in items)


def _fit(header, lines, items, limit, max_lines):
    """Header and the lines that fit; the rest counted per source in a last line."""
    out, used, shown = [header], len(header), 0
    for n, (line, idx) in enumerate(lines):
        rest = [i for _l, ix in lines[n:] for i in ix]
        tail = 1 + len(_more(rest[len(idx):], items)) if n + 1 < len(lines) else 0
        if shown < max_lines and used + 1 + len(line) + tail <= limit:
            out.append(line)
            used += 1 + len(line)
            shown += 1
            continue
        if shown == 0 and limit - used - 1 - tail > 2 * len(text.TRUNCATION_MARKER):
            out.append(text.truncate(line, limit - used - 1 - tail))
            rest = rest[len(idx):]
        out.append(_more(rest, items))
        break
    return text.truncate("\n".join(out), limit)


def _more(rest, items, shown=4):
    """ "… and N more: alice 250, bob 3" for the events ``rest`` (indexes into items)."""
    if not rest:
        return ""
    counts = {}
    for i in rest:
        counts[items[i][4]] = counts.get(items[i][4], 0) + 1
    top = sorted(counts.items(), key=lambda kv: -kv[1])
    parts = [f"{src} {n}" for src, n in top[:shown]]
    if len(top) > shown:
        parts.append(f"others {sum(n for _s, n in top[shown:])}")
    return text.MORE_MARKER.format(n=len(rest)) + ": " + ", ".join(parts)


def fold_line(source, titles, first="", last="", shown=3):
    """One counted line for the events of one source: the commonest titles first, then
    the first and the last event's text ("first: ...; last: ...")."""
    counts = {}
    for t in titles:
        counts[t] = counts.get(t, 0) + 1
    common = sorted(counts.items(), key=lambda kv: -kv[1])
    if len(common) == 1:
        line = FOLD_LINE.format(source=source or "?", count=len(titles), what=common[0][0])
    else:
        parts = [f"{n} × {t}" for t, n in common[:shown]]
        if len(common) > shown:
            parts.append(f"{sum(n for _t, n in common[shown:])} × others")
        line = f"{source or '?'}: {len(titles)} events (" + "; ".join(parts) + ")"
    if first:
        line += FOLD_EXAMPLES.format(first=text.truncate(first, EXAMPLE_LIMIT),
                                     last=text.truncate(last or first, EXAMPLE_LIMIT))
    return DIGEST_BULLET + text.truncate(line, 2 * LINE_LIMIT)


# -- sudo events (the audit plugin's JSON lines) -----------------------------------------

SUDO_TITLE_LIMIT = 200
SUDO_BODY_LIMIT = 1900  # under Discord's 2000, Slack's and Telegram's limits
FIELD_LIMIT = 300
COMMAND_LIMIT = 1000
SUDO_DIGEST_TITLE = "[{severity}] sudo: {count} events on {where} ({kinds})"
SUDO_DIGEST_HEADER = "{count} sudo events, most severe first:"
DROPPED_LINE = "{n} earlier sudo event(s) could not be logged"
# what a digest calls the events of one kind, per user ("alice: 250 refused sudo")
SUDO_KINDS = {"accept": "sudo commands run", "reject": "refused sudo",
              "error": "sudo errors", "exit": "sudo commands ended",
              "fault": "plugin faults", "status": "alerting status changes",
              "input": "session lines typed that matched", "output": "session outputs that matched"}


SUDO_TYPES = ("sudo", "fault", "status")


def read_sudo(line, host=None):
    """The event (a dict) of one event line of the sudo audit plugin (str or bytes).

    Strict: the line must be UTF-8 (the plugin writes ASCII), one JSON object, of a known
    ``type`` (SUDO_TYPES; none: "sudo"), else ValueError says what is wrong. ``host``
    (the syslog host that logged it, as the receiving syslog-ng knows it) replaces the
    host the line names.
    """
    if isinstance(line, (bytes, bytearray)):
        try:
            line = bytes(line).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        event = json.loads(line)
    except ValueError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(event, dict):
        raise ValueError(f"not a JSON object but {type(event).__name__}")
    kind = event.get("type", "sudo")
    if kind not in SUDO_TYPES:
        raise ValueError(f"unknown type {kind!r}")
    if host:
        event["host"] = text.to_text(host)
    return event


def _field(value, limit=FIELD_LIMIT, markdown=False):
    return text.safe(value, limit=limit, multiline=False, markdown=markdown)


def sudo_severity(event):
    severity = _name(event.get("severity")) or "info"
    return severity if severity in SEVERITY_TYPE else "warning"


def command_line(event, limit=COMMAND_LIMIT, markdown=False):
    """The command and its arguments, each argument quoted when it needs it."""
    parts = [str(event.get("command") or "?")]
    args = event.get("args") or []
    if isinstance(args, str):
        args = [args]
    for arg in args:
        arg = text.to_text(arg)
        parts.append(arg if arg and not any(c in arg for c in " \t'\",\\") else repr(arg))
    return _field(" ".join(parts), limit, markdown)


def sudo_kind(event):
    kind = event.get("type") or "sudo"
    if kind == "sudo":
        return str(event.get("decision") or "?")
    return str(kind)


def sudo_event(event, markdown=False):
    """``(title, body, notify_type)`` for one event line of the sudo plugin.

    "sudo" decisions, "fault" and "status" events each get their own title and body
    (a fault or a status change never reads like a command someone ran). ``dropped`` is
    shown once, as DROPPED_LINE.
    """
    kind = event.get("type") or "sudo"
    severity = sudo_severity(event)
    host = _field(event.get("host") or "?", 128, markdown)

    def f(key, limit=FIELD_LIMIT):
        return _field(event.get(key), limit, markdown)

    if kind == "status":
        state = _name(event.get("state"))
        title = (f"sudo alerts OFF on {host}" if state == "off"
                 else f"sudo alerts back ON on {host}")
        lines = [f"reason: {f('reason')}"]
        if event.get("file"):
            lines.append(f"file: {f('file')}")
        if event.get("detail"):
            lines.append(f"detail: {f('detail', 400)}")
        if event.get("action"):
            lines.append(f"action: {f('action')}")
        lines.append(f"where: {f('where', 32)}, time: {f('time', 40)}")
    elif kind == "fault":
        where = _field(event.get("where") or "?", 64, markdown)
        title = f"sudo alerting fault on {host} ({where})"
        lines = [f"error: {f('error', 600)}"]
        if event.get("user"):
            lines.append(f"user: {f('user', 64)}")
        lines.append(f"fail_closed: {bool(event.get('fail_closed'))}")
        lines.append(f"host: {host}, time: {f('time', 40)}")
    else:
        user = _field(event.get("user") or "?", 64, markdown)
        runas = _field(event.get("runas_user") or "?", 64, markdown)
        title = "sudo: " + _what(event, _field(event.get("command") or "?", 120, markdown),
                                 markdown)
        lines = [f"command: {command_line(event, markdown=markdown)}"]
        if event.get("reason"):
            lines.append(f"reason: {f('reason')}")
        lines.append(f"user: {user} (uid {f('uid', 12)})")
        runas_group = event.get("runas_group")
        lines.append(f"run as: {runas}"
                     + (f":{_field(runas_group, 64, markdown)}" if runas_group else ""))
        for key in ("tty", "cwd", "plugin"):
            if event.get(key):
                lines.append(f"{key}: {f(key)}")
        if event.get("decision") in ("input", "output"):
            # session rules: never more of the session than the plugin's short excerpt
            lines.append(f"stream: {f('stream', 16)}, action: {f('action', 16)}, "
                         f"ended: {event.get('ended') is True}")
            if event.get("excerpt"):
                lines.append(f"excerpt: {f('excerpt', 160)}")
            elif event.get("excerpt_withheld"):
                lines.append(f"excerpt withheld: {f('excerpt_withheld', 32)}")
            if event.get("end_skipped"):
                lines.append(f"not ended: {f('end_skipped', 80)}")
            if event.get("unsent"):
                lines.append(f"further matches not sent: {f('unsent', 12)}")
        if event.get("truncated"):
            lines.append("note: the event was truncated at the source")
        lines.append(f"rule: {_field(event.get('rule') or '-', 64, markdown)}, "
                     f"severity: {_field(severity, 16, markdown)}")
        lines.append(f"host: {host}, time: {f('time', 40)}")
    dropped = _dropped(event)
    if dropped:
        lines.append(DROPPED_LINE.format(n=dropped))
    title = text.truncate(f"[{severity}] {title}", SUDO_TITLE_LIMIT)
    body = text.truncate("\n".join(lines), SUDO_BODY_LIMIT)
    return title, body, notify_type(severity)


def _what(event, command, markdown=False):
    """What the decision was, in words, naming its host: "alice ran CMD as root on web1",
    "alice was denied CMD on web1", "error for alice running CMD on web1", "CMD by alice
    on web1 ended (exit 1)"; a subcommand adds ", inside PARENT"."""
    user = _field(event.get("user") or "?", 64, markdown)
    host = _field(event.get("host") or "?", 128, markdown)
    decision = str(event.get("decision", "?"))
    # a command run inside a sudo'd one (sudoers' log_subcmds): say which
    inside = (f", inside {_field(event.get('parent_command') or '?', 120, markdown)}"
              if event.get("subcommand") else "")
    if decision == "accept":
        runas = _field(event.get("runas_user") or "?", 64, markdown)
        return f"{user} ran {command} as {runas} on {host}{inside}"
    if decision == "reject":
        return f"{user} was denied {command} on {host}{inside}"
    if decision == "error":
        return f"error for {user} running {command} on {host}{inside}"
    if decision in ("input", "output"):
        # session rules (the I/O plugin): what was typed or shown in a sudo session
        rule = _field(event.get("rule") or "?", 64, markdown)
        what = "typed" if decision == "input" else "was shown"
        ended = ", session ended" if event.get("ended") is True else ""
        return f"{user} {what} {rule} in {command} on {host}{ended}"
    outcome = (f"signal {_field(event.get('signal'), 16, markdown)}" if "signal" in event
               else f"exit {_field(event.get('exit_status', '?'), 16, markdown)}")
    return f"{command} by {user} on {host} ended ({outcome})"


def _dropped(event):
    try:
        return max(0, int(event.get("dropped") or 0))
    except (TypeError, ValueError):
        return 0


def sudo_line(event, markdown=False):
    """The event in one line, naming its host (a digest of the alert server mixes hosts):
    "alice ran /bin/bash -c true as root on web1 (tty pts/0, cwd /home/alice): accept by
    rule shell, warning" (the title's words, with the arguments); a fault or a status
    change: its title without the severity."""
    kind = event.get("type") or "sudo"
    severity = sudo_severity(event)
    if kind in ("fault", "status"):
        title = sudo_event(event, markdown)[0]
        return text.truncate(title[len(f"[{severity}] "):], LINE_LIMIT)
    where = [f"tty {_field(event['tty'], 32, markdown)}"] if event.get("tty") else []
    if event.get("cwd"):
        where.append(f"cwd {_field(event['cwd'], 120, markdown)}")
    line = (_what(event, command_line(event, 200, markdown), markdown)
            + (f" ({', '.join(where)})" if where else "")
            + f": {_field(sudo_kind(event), 16, markdown)} by rule "
            + f"{_field(event.get('rule') or '-', 64, markdown)}, {severity}")
    dropped = _dropped(event)
    if dropped:
        line += ". " + DROPPED_LINE.format(n=dropped)
    return text.truncate(line, LINE_LIMIT)


def sudo_summary(event, markdown=False):
    """One digest line for one event."""
    kind = event.get("type") or "sudo"
    if kind in ("fault", "status"):
        title = sudo_event(event, markdown)[0]
        return f"{_field(event.get('time'), 24, markdown)} {title}"
    parts = [_field(event.get("time"), 24, markdown),
             _field(event.get("user") or "?", 32, markdown),
             _field(event.get("decision") or kind, 8, markdown),
             command_line(event, 200, markdown)]
    return " ".join(p for p in parts if p)


def sudo_digest(events, markdown=False, fold_at=FOLD_AT):
    """One notification for several sudo events: ``(title, body, notify_type)``.

    Most severe first. Every event is listed while the whole list fits the body; when it
    does not, per severity the users with at least ``fold_at`` events of one kind get one
    counted line ("alice: 250 refused sudo") followed by their first and last event, and
    the others stay listed line by line. Fault and status events are always listed. The
    drop count is shown once (the largest).
    """
    ordered = sorted(events, key=lambda e: -_severity_index(sudo_severity(e)))
    severity = sudo_severity(ordered[0]) if ordered else "info"
    hosts = sorted({_field(e.get("host") or "?", 128, markdown) for e in events})
    where = hosts[0] if len(hosts) == 1 else f"{len(hosts)} hosts"
    kinds = {}
    for event in events:
        key = _field(sudo_kind(event), 16)
        kinds[key] = kinds.get(key, 0) + 1
    title = text.truncate(
        SUDO_DIGEST_TITLE.format(severity=severity, count=len(events), where=where,
                                 kinds=", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))),
        SUDO_TITLE_LIMIT)
    dropped = max((_dropped(e) for e in events), default=0)
    header = SUDO_DIGEST_HEADER.format(count=len(events))
    if dropped:
        header = DROPPED_LINE.format(n=dropped) + "\n" + header

    def line(event):
        return text.truncate("- " + sudo_summary(event, markdown), 240)

    listed = [line(e) for e in ordered]
    if len(header) + sum(1 + len(x) for x in listed) <= SUDO_BODY_LIMIT:
        return title, "\n".join([header] + listed), notify_type(severity)
    lines = []
    levels = []
    for event in ordered:
        level = _severity_index(sudo_severity(event))
        if level not in levels:
            levels.append(level)
    for level in levels:
        group = [e for e in ordered if _severity_index(sudo_severity(e)) == level]
        sources = {}
        for event in group:
            if (event.get("type") or "sudo") == "sudo":
                key = (_field(event.get("user") or "?", 32, markdown), sudo_kind(event))
                sources.setdefault(key, []).append(event)
        for event in group:
            key = (_field(event.get("user") or "?", 32, markdown), sudo_kind(event))
            if (event.get("type") or "sudo") != "sudo" or len(sources.get(key, ())) < fold_at:
                lines.append(line(event))
        for (user, kind), folded in sorted(sources.items(), key=lambda kv: -len(kv[1])):
            if len(folded) >= fold_at:
                lines.append(f"- {user}: {len(folded)} {SUDO_KINDS.get(kind, kind + ' events')}")
                lines.append(text.truncate("  first: " + sudo_summary(folded[0], markdown), 240))
                lines.append(text.truncate("  last: " + sudo_summary(folded[-1], markdown), 240))
    body = text.digest_body(lines, limit=SUDO_BODY_LIMIT, header=header)
    return title, body, notify_type(severity)


def _severity_index(severity):
    try:
        return len(SEVERITY_ORDER) - SEVERITY_ORDER.index(severity)
    except ValueError:
        return len(SEVERITY_ORDER) - SEVERITY_ORDER.index("warning")
