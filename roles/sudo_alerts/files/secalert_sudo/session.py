"""``SecalertIOPlugin``: session rules, on what is typed and shown inside a sudo session.

sudo.conf (the role writes it beside the audit plugin's line; same entry module, same
config file, same delivery)::

    Plugin python_io python_plugin.so ModulePath=/usr/libexec/secalert/secalert_sudo_audit.py
        ClassName=SecalertIOPlugin Config=/etc/secalert/sudo_alerts.json

A session rule has one of ``input`` (a regular expression searched in each typed line)
or ``output`` (searched in what the session shows), an ``action`` (``alert``, or for
input ``end-session``), a ``severity``, ``tags`` and optionally ``literals`` (strings
without spaces, one of which every line the pattern matches contains: a fast check first;
when every input rule has them, a piped buffer without any skips line-by-line work).

- **Typed input** (``log_ttyin``) goes through ``LineBuffer``: backspace, ^U, ^W and ^C
  edit the line as a terminal does, escape sequences (arrow keys) are dropped, and runs of
  white space count as one space. A line is judged when Enter is typed, before the Enter
  reaches the command: ``end-session`` ends the session before the line runs. What the
  shell does that the keys do not show (history recall, tab completion) is not seen.
- **Secrets stay out of alerts.** An input alert names the rule; it carries a short
  excerpt of the matched line only when every character typed on it came back on the
  screen (echo), so anything typed while echo was off (a password prompt) is never
  included (``"excerpt_withheld": "not echoed"``). Piped input (``log_stdin``) never
  gets an excerpt; neither does output (a secret pattern would copy the secret).
- **Piped input** is judged only when the sudo'd command is a shell or an interpreter
  (PIPE_READERS): what is piped into ``sudo tee`` is data, not commands.
- **Never without a terminal:** ``end-session`` acts only in ``log_ttyin`` (with a tty)
  and only when the config allows it (``session.end_session``: the role sets it on sudo
  releases where the tests prove it safe). Piped input only alerts: a REJECT there leaves
  sudo hung for ever.
- **Fail open:** every callback catches everything and returns OK (an error from a log
  callback would end the session); a fault is reported once per session as a
  ``"type": "fault"`` event. Bytes that are not UTF-8 arrive as surrogates (the built
  plugin's patch) and are matched and escaped like any other character.
- **Bounded:** at most ``session.max_events`` alerts per session, the rest counted in one
  last event at the end; one output rule alerts once per session.
"""

try:
    import sudo
except Exception:  # noqa: BLE001 - outside sudo (tooling, tests)
    sudo = None

from secalert_sudo import __version__, config, event, rules
from secalert_sudo.plugin import Reporter

VERSION_TEXT = "secalert sudo session plugin version"  # sudo -V (sudo-alerts-ctl looks)
ACTIONS = ("alert", "end-session")
# Piped input is judged only when the sudo'd command reads commands from it: a shell or
# an interpreter (`echo 'rm -rf /' | sudo sh`); what is piped into `sudo tee` or `sudo cat`
# is data, and judging every line of it would cost a 50 MB pipe several times its time.
PIPE_READERS = ("sh", "bash", "dash", "zsh", "ksh", "ksh93", "mksh", "fish", "csh", "tcsh",
                "busybox", "su", "sudo", "runuser", "login", "machinectl", "perl", "ruby",
                "php", "node", "lua")
OUTPUT_TAIL = 256  # characters kept between output buffers (a match across two reads)
ECHO_CHARS = 4096  # output kept while a typed line waits for its echo

# Shipped session rules, close to the talk's examples (the role adds them unless
# sudo_alerts_session_default_rules is false; the secret pattern is a role variable).
# Lines are normalised (runs of spaces and tabs are one space), so words are separated
# by " ", and each rule's literals are in every line its pattern matches.
DEFAULT_SESSION_RULES = [
    {
        "name": "rm-recursive-root",
        "input": r"\brm (?:-\S+ )*-\S*[rR]\S* (?:-\S+ )*(?:-- )?"
                 r"/(?:\*|(?:bin|boot|etc|home|lib\w*|opt|root|sbin|srv|usr|var)/?\*?)?"
                 r"(?=[ ;&|)]|$)",
        "literals": ["rm "], "severity": "critical", "tags": ["sudo", "sudo-session"],
    },
    {
        "name": "chmod-world-writable-system",
        "input": r"\bchmod (?:-\S+ )*(?:0?777|a\+rwx|o\+\S*w\S*) (?:\S+ )*"
                 r"/(?:bin|boot|etc|lib\w*|root|sbin|usr|var)?(?:/\S*)?(?=[ ;&|)]|$)",
        "literals": ["chmod "], "severity": "warning", "tags": ["sudo", "sudo-session"],
    },
    {
        "name": "write-block-device",
        "input": r"(?:>|\bof=) ?/dev/(?:sd[a-z]|nvme\d|vd[a-z]|xvd[a-z]|hd[a-z]|mmcblk\d"
                 r"|dm-\d|md\d)",
        "literals": ["/dev/"], "severity": "critical", "tags": ["sudo", "sudo-session"],
    },
    {
        "name": "history-clearing",
        "input": r"\bhistory -[cw]\b|\bunset HISTFILE\b|\bHISTFILE=/dev/null|"
                 r"\bHISTSIZE=0\b|\b(?:rm|shred|truncate)\b.*\.\w*_history\b|"
                 r"> ?\S*\.\w*_history\b",
        "literals": ["history", "HIST"], "severity": "warning", "tags": ["sudo", "sudo-session"],
    },
    {
        "name": "logging-off",
        "input": r"\b(?:systemctl|service) (?:\S+ )*(?:stop|disable|mask|kill) "
                 r"(?:\S+ )*(?:auditd|syslog-ng|rsyslog|systemd-journald|secalert\S*)\b|"
                 r"\bauditctl (?:-e ?0|-D)\b|\b(?:killall|pkill) (?:\S+ )*"
                 r"(?:auditd|syslog-ng|rsyslogd|systemd-journald)\b",
        "literals": ["systemctl", "service", "auditctl", "killall", "pkill"],
        "severity": "critical", "tags": ["sudo", "sudo-session"],
    },
]


def secret_rule(pattern):
    """The shipped output rule for a secret pattern (role variable
    sudo_alerts_session_secret_pattern)."""
    return {"name": "secret-on-screen", "output": pattern, "severity": "critical",
            "tags": ["sudo", "sudo-session"]}


def compile_rules(rule_list):
    """Validate session rules and compile their patterns. Raises rules.RuleError."""
    import re

    if not isinstance(rule_list, list):
        raise rules.RuleError("session_rules must be a list")
    compiled = []
    for index, rule in enumerate(rule_list):
        where = "session rule {} ({})".format(
            index, rule.get("name", "unnamed") if isinstance(rule, dict) else "?")
        if not isinstance(rule, dict):
            raise rules.RuleError(where + ": must be an object")
        unknown = set(rule) - {"name", "input", "output", "action", "severity", "tags",
                               "literals"}
        if unknown:
            raise rules.RuleError(f"{where}: unknown keys {sorted(unknown)}")
        streams = [k for k in ("input", "output") if k in rule]
        if len(streams) != 1:
            raise rules.RuleError(where + ": needs exactly one of input or output")
        stream = streams[0]
        if not isinstance(rule[stream], str) or not rule[stream]:
            raise rules.RuleError(f"{where}: {stream} must be a regular expression")
        try:
            pattern = re.compile(rule[stream])
        except re.error as exc:
            raise rules.RuleError(f"{where}: {stream}: {exc}") from None
        if pattern.search(""):
            raise rules.RuleError(f"{where}: {stream} matches the empty line")
        action = rule.get("action", "alert")
        if action not in ACTIONS:
            raise rules.RuleError(f"{where}: action must be one of {list(ACTIONS)}")
        if action == "end-session" and stream != "input":
            raise rules.RuleError(where + ": end-session needs an input rule")
        severity = rule.get("severity", "warning")
        if severity not in rules.SEVERITIES:
            raise rules.RuleError(f"{where}: severity must be one of {list(rules.SEVERITIES)}")
        tags = rules.check_tags(rule.get("tags", ["sudo"]), where)
        literals = rule.get("literals", [])
        if not isinstance(literals, list) or not all(
                isinstance(x, str) and x.strip(" ") and "  " not in x
                and not any(c.isspace() and c != " " for c in x) for x in literals):
            raise rules.RuleError(where + ": literals must be a list of strings (single "
                                  "spaces only, no other white space)")
        compiled.append({"name": str(rule.get("name", f"session{index}"))[:64],
                         "stream": stream, "pattern": pattern, "action": action,
                         "severity": severity, "tags": tags,
                         "literals": tuple(literals),
                         # one C-level search for "holds one of the literals"
                         "literal_re": re.compile("|".join(map(re.escape, literals)))
                         if literals else None})
    return compiled


class LineBuffer:
    """The line being typed, as a terminal in canonical mode (or readline) edits it.

    ``feed(text)`` returns the lines completed by Enter in ``text``, each as
    ``(line, echo_needed)``: the normalised line (runs of white space as one space, no
    leading or trailing space) and the set of characters that must come back on screen
    for it to count as echoed. Only the last ``limit`` characters of a line are kept.
    In ``raw`` mode (piped input) only a newline ends a line and no key edits it.
    """

    def __init__(self, limit=1024, raw=False):
        self.limit = limit
        self.raw = raw
        self.chars = []
        self._escape = None  # None, "" (after ESC) or the CSI/SS3 sequence so far

    @property
    def pending(self):
        return bool(self.chars)

    def feed(self, text, literals=None):
        """``literals``: see _feed_raw (piped input only)."""
        if self.raw:
            return self._feed_raw(text, literals)
        if self._escape is None and text.isprintable():
            self._add_text(text)  # typed or pasted text without an editing key: as it is
            return []
        done = []
        for char in text:
            if self._escape is not None and not self.raw:
                if self._escape == "":
                    # ESC [ or ESC O start a sequence; ESC and one key (Alt+key) end here
                    self._escape = char if char in "[O" else None
                elif "@" <= char <= "~" and not (self._escape == "O" and char == "O"):
                    self._escape = None  # the final byte
                elif len(self._escape) < 32:
                    self._escape += char
                else:
                    self._escape = None
                continue
            if char in "\r\n":
                done.append(self.line())
                self.chars = []
            elif char in "\x7f\x08":  # backspace
                if self.chars:
                    self.chars.pop()
            elif char in "\x15\x03":  # ^U kills the line, ^C abandons it
                self.chars = []
            elif char == "\x17":  # ^W: the word before the cursor, and the space before it
                while self.chars and self.chars[-1] in " \t":
                    self.chars.pop()
                while self.chars and self.chars[-1] not in " \t":
                    self.chars.pop()
            elif char == "\x1b":
                self._escape = ""
            elif char == "\t" or char.isprintable() or "\udc80" <= char <= "\udcff":
                self._add(" " if char == "\t" else char)
        return done

    def _feed_raw(self, text, literals=None):
        """Piped input: lines end at a newline, control characters are dropped, nothing
        edits. Per buffer, not per character (50 MB may come through a pipe).

        ``literals`` (strings; every rule needs one of them in its line): only the lines
        that hold one are returned, found with ``str.find`` (C speed; a regex alternation
        is ten times slower), and a buffer without any costs a few scans."""
        if text.isascii():  # bytes.translate is ten times faster than a regex here
            raw = text.encode("ascii")
            cleaned = raw.translate(_TAB_TO_SPACE, _ASCII_CONTROLS)
            if cleaned != raw:
                text = cleaned.decode("ascii")
        else:
            text = _compiled("controls").sub("", text.replace("\t", " "))
        cut = text.rfind("\n")
        if cut < 0:
            self._add_text(text)
            return []
        pending = "".join(self.chars)
        self.chars = []
        self._add_text(text[cut + 1:])
        if literals is None:
            pieces = (pending + text[:cut]).split("\n")
        else:
            # the first line continues the pending one: its start may hold the literal
            head = text.find("\n")
            first = pending[-64:] + text[:head]
            pieces = [pending + text[:head]] if any(x in first for x in literals) else []
            starts = set()
            for literal in literals:
                found = text.find(literal, head + 1, cut)
                while found >= 0:
                    starts.add(text.rfind("\n", 0, found) + 1)
                    found = text.find(literal, text.find("\n", found) + 1, cut)
            pieces += [text[start:text.find("\n", start)] for start in sorted(starts)]
        return [(_spaces(piece[-self.limit:]), None) for piece in pieces]

    def _add(self, char):
        self.chars.append(char)
        if len(self.chars) > 2 * self.limit:
            del self.chars[: len(self.chars) - self.limit]

    def _add_text(self, text):
        self.chars.extend(text[-self.limit:])
        if len(self.chars) > 2 * self.limit:
            del self.chars[: len(self.chars) - self.limit]

    def line(self):
        text = "".join(self.chars[-self.limit:])
        return _spaces(text), {c for c in text if not c.isspace()}


# Patterns compiled on first use (most sudo calls never need them).
_PATTERNS = {
    # control characters piped input drops (the newline splits lines first)
    "controls": "[\x00-\x08\x0b-\x1f\x7f-\x9f]",
    # terminal escape sequences (colours, cursor moves, titles), dropped from output
    # before output rules search it
    "escapes": r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|.)",
}
_COMPILED = {}


def _compiled(name):
    if name not in _COMPILED:
        import re

        _COMPILED[name] = re.compile(_PATTERNS[name])
    return _COMPILED[name]


_TAB_TO_SPACE = bytes.maketrans(b"\t", b" ")
_ASCII_CONTROLS = bytes(range(0, 9)) + bytes(range(11, 32)) + b"\x7f"  # not \t, \n


def _spaces(text):
    """Runs of spaces and tabs as one space, none at the ends. Only these: a shell
    splits words on them, and a literal with a space (``"rm "``) stays sound."""
    if "  " in text or "\t" in text or text[:1] == " " or text[-1:] == " ":
        return " ".join(w for w in text.replace("\t", " ").split(" ") if w)
    return text


def excerpt(line, match, limit):
    """At most ``limit`` characters of ``line`` around ``match``."""
    start = max(0, min(match.start() - limit // 3, len(line) - limit))
    cut = line[start: start + limit]
    return ("..." if start else "") + cut + ("..." if start + limit < len(line) else "")


_PluginBase = getattr(sudo, "Plugin", object)


def _rc(name, fallback):
    rc = getattr(sudo, "RC", None)
    return int(getattr(rc, name, fallback)) if rc is not None else fallback


class SecalertIOPlugin(Reporter, _PluginBase):
    """sudo python_io plugin: session rules (see the module docstring)."""

    def __init__(self, version=None, settings=(), user_info=(), plugin_options=(), **kwargs):
        # user_env (in kwargs) holds the user's environment, secrets included: never read.
        self._ok = _rc("OK", 1)
        self._active = False  # True between a successful open() and close()
        self._settings = None
        self._fail_closed = False
        self._faults = 0
        self._config_broken = False
        self._user_info = {}
        self._options = {}
        self._disabled = None
        try:
            self._options = event.options(plugin_options)
            self._fail_closed = self._options.get("FailClosed", "no").lower() in (
                "yes", "true", "1", "on")
            self._user_info = event.options(user_info)
        except BaseException as exc:  # noqa: BLE001 - sudo must never see this
            self._disabled = self._describe(exc)

    # -- sudo callbacks ------------------------------------------------------------

    def open(self, argv, command_info):
        """Load the config and the session rules. No session rule: unload (REJECT), at no
        further cost to the session."""
        try:
            if self._disabled is not None:
                raise RuntimeError(self._disabled)
            path = self._options.get("Config", config.DEFAULT_CONFIG)
            try:
                self._settings = config.load_settings(path, session=True)
            except config.ConfigError as exc:
                # The audit plugin reports a broken config (and denies with fail_closed):
                # here it only means no session rules.
                self._settings = None
                if self._fail_closed:
                    raise
                del exc
                return _rc("REJECT", 0)
            compiled = self._settings["compiled_session_rules"]
            if not compiled:
                return _rc("REJECT", 0)
            self._input_rules = [r for r in compiled if r["stream"] == "input"]
            # piped input: only lines with one of these can match (when every rule has some)
            self._literals = None
            if all(r["literals"] for r in self._input_rules):
                self._literals = tuple(sorted({x for r in self._input_rules
                                               for x in r["literals"]}))
            self._output_rules = [r for r in compiled if r["stream"] == "output"]
            session = self._settings["session"]
            self._max_events = session["max_events"]
            self._excerpt_chars = session["excerpt_chars"]
            self._may_end = session["end_session"]
            self._tty = LineBuffer(session["line_chars"])
            self._pipe = LineBuffer(session["line_chars"], raw=True)
            self._echo = []  # output seen since the typed line began
            self._echo_len = 0
            self._tail = ""  # the end of the previous output buffer
            self._alerted_output = set()
            self._sent = 0
            self._unsent = 0
            self._fault_told = False
            self._argv = list(argv or ())
            self._command_info = event.options(command_info)
            command = self._command_info.get("command") or (self._argv[:1] or [""])[0]
            name = command.rstrip("/").rsplit("/", 1)[-1]
            self._pipe_rules = bool(self._input_rules) and (
                name in PIPE_READERS or name.startswith("python"))
            self._active = True
            return self._ok
        except BaseException as exc:  # noqa: BLE001
            self._active = False
            self._fault("io-open", "session rules disabled for this command: "
                        + self._describe(exc))
            if self._fail_closed:
                return _rc("ERROR", -1)
            return _rc("REJECT", 0)

    def log_ttyin(self, buf):
        if not self._active:
            return self._ok
        try:
            if not self._input_rules:
                return self._ok
            for line, needed in self._tty.feed(buf):
                echoed = bool(needed) and self._echoed(needed)
                self._echo, self._echo_len = [], 0
                if self._judge(line, "tty", echoed):
                    return _rc("REJECT", 0)  # ends the session: the line never ran
        except BaseException as exc:  # noqa: BLE001 - an error would end the session
            self._io_fault("log_ttyin", exc)
        return self._ok

    def log_stdin(self, buf):
        if not self._active:
            return self._ok
        try:
            if self._pipe_rules:
                for line, _needed in self._pipe.feed(buf, self._literals):
                    self._judge(line, "stdin", False)  # never ends: sudo would hang
        except BaseException as exc:  # noqa: BLE001
            self._io_fault("log_stdin", exc)
        return self._ok

    def log_ttyout(self, buf):
        if not self._active:
            return self._ok
        try:
            if self._tty.pending and self._echo_len < ECHO_CHARS:
                self._echo.append(buf[: ECHO_CHARS - self._echo_len])
                self._echo_len += len(self._echo[-1])
            if self._output_rules:
                self._scan_output(buf, "ttyout")
        except BaseException as exc:  # noqa: BLE001
            self._io_fault("log_ttyout", exc)
        return self._ok

    def log_stdout(self, buf):
        if not self._active:
            return self._ok
        try:
            if self._output_rules:
                self._scan_output(buf, "stdout")
        except BaseException as exc:  # noqa: BLE001
            self._io_fault("log_stdout", exc)
        return self._ok

    log_stderr = log_stdout

    def close(self, exit_status, error):
        try:
            if not self._active:
                return
            self._active = False
            # Piped input whose last line has no newline: judge it now.
            if self._pipe.pending and self._pipe_rules:
                line, _needed = self._pipe.line()
                self._judge(line, "stdin", False)
            if self._unsent:
                self._report_unsent()
        except BaseException as exc:  # noqa: BLE001 - close() errors print a traceback
            self._fault("io-close", self._describe(exc))

    def show_version(self, is_verbose):
        try:
            if is_verbose and sudo is not None:
                sudo.log_info(f"{VERSION_TEXT} {__version__}")
        except BaseException:  # noqa: BLE001, S110 - nothing to report to
            pass
        return self._ok

    # -- internals -----------------------------------------------------------------

    def _echoed(self, needed):
        shown = "".join(self._echo)
        return all(c in shown for c in needed)

    def _judge(self, line, stream, echoed):
        """Match a completed input line; alert; True when the session must end."""
        if not line:
            return False
        for rule in self._input_rules:
            if rule["literal_re"] is not None and not rule["literal_re"].search(line):
                continue
            found = rule["pattern"].search(line)
            if found is None:
                continue
            end = rule["action"] == "end-session" and stream == "tty" and self._may_end
            extra = {"stream": stream, "action": rule["action"], "ended": end}
            if rule["action"] == "end-session" and not end:
                extra["end_skipped"] = ("no terminal: sudo would hang" if stream != "tty"
                                        else "not allowed on this sudo (session.end_session)")
            if echoed:
                extra["excerpt"] = excerpt(line, found, self._excerpt_chars)
            else:
                extra["excerpt_withheld"] = ("not echoed" if stream == "tty"
                                             else "not a terminal")
            self._alert("input", rule, extra, force=end)
            return end
        return False

    def _scan_output(self, buf, stream):
        """Output rules, each alerting once per session. A match is found within one
        buffer, or across two when it starts in the last OUTPUT_TAIL characters of the
        one before."""
        waiting = [r for r in self._output_rules if r["name"] not in self._alerted_output]
        if not waiting:
            return
        if "\x1b" in buf:
            buf = _compiled("escapes").sub("", buf)
        edge = None
        for rule in waiting:
            found = rule["pattern"].search(buf)
            if found is None and self._tail:
                if edge is None:
                    edge = self._tail + buf[:OUTPUT_TAIL]
                found = rule["pattern"].search(edge)
                # a match wholly in the kept tail was judged with the last buffer
                if found is not None and found.end() <= len(self._tail):
                    found = None
            if found is not None:
                self._alerted_output.add(rule["name"])
                self._alert("output", rule, {"stream": stream, "action": "alert",
                                             "excerpt_withheld": "output"})
        self._tail = (buf if len(buf) >= OUTPUT_TAIL else self._tail + buf)[-OUTPUT_TAIL:]

    def _alert(self, decision, rule, extra, force=False):
        if self._sent >= self._max_events and not force:
            self._unsent += 1
            return
        self._sent += 1
        out = self._event(decision, rule["name"], rule["severity"], rule["tags"])
        out.update(extra)
        if "excerpt" in out:
            out["excerpt"] = event.clean(out["excerpt"], self._excerpt_chars + 8)[0]
        self._deliver(out)

    def _report_unsent(self):
        out = self._event("input", "session-limit", "warning", ["sudo", "sudo-session"])
        out.update(stream="tty", action="alert", unsent=self._unsent,
                   excerpt_withheld="count only")
        self._deliver(out)

    def _event(self, decision, rule_name, severity, tags):
        limits = self._settings["limits"]
        info = self._command_info
        ui = self._user_info
        fields = {
            "host": event.hostname(ui), "pid": event.to_int(ui.get("pid")),
            "user": ui.get("user"), "uid": event.to_int(ui.get("uid")),
            "tty": ui.get("tty"), "cwd": info.get("cwd") or ui.get("cwd"),
            "runas_user": info.get("runas_user") or event.account_name(
                info.get("runas_uid") or info.get("runas_euid")),
            "runas_group": info.get("runas_group") or event.account_name(
                info.get("runas_gid") or info.get("runas_egid"), group=True),
            "command": info.get("command"), "plugin_id": self._options.get("Id"),
        }
        out, _raw = event.build(decision, "secalert_io", None, fields, self._argv, limits)
        out["rule"] = rule_name
        out["severity"] = (rules.raise_severity(severity) if out["truncated"] else severity)
        out["tags"] = list(tags)
        return out

    def _io_fault(self, where, exc):
        if not self._fault_told:  # once per session: a callback may run a million times
            self._fault_told = True
            self._fault(where, "session rules: " + self._describe(exc))
