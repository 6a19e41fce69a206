"""Session rules (secalert_sudo.session): the line buffer, the shipped rules, and the I/O
plugin driven the way python_plugin_io.c calls it (sudo.open_io, sudo.call_io: the C
bridge's decoding, patched and unpatched)."""

import random
import re

import pytest
import sudo
from conftest import USER_INFO, command_info
from secalert_sudo import config, rules, session

OK, REJECT, ERROR = int(sudo.RC.OK), int(sudo.RC.REJECT), int(sudo.RC.ERROR)
KEY_PATTERN = r"-----BEGIN ([A-Z]+ )?PRIVATE KEY-----"


# --------------------------------------------------------------------------- line buffer


@pytest.mark.parametrize(("keys", "line"), [
    ("ls -l\r", "ls -l"),
    ("ls   -l \t /tmp\r", "ls -l /tmp"),
    ("rm -fx\x7fr /\r", "rm -fr /"),  # backspace (DEL)
    ("rm -fx\x08r /\r", "rm -fr /"),  # backspace (^H)
    ("echo secret\x15rm -rf /\r", "rm -rf /"),  # ^U kills the line
    ("rm -rf /tmp/x\x17/\r", "rm -rf /"),  # ^W the last word
    ("rm -rf / \x17\x17ls\r", "rm ls"),  # ^W also eats the space before a word
    ("rm -rf /\x03ls\r", "ls"),  # ^C abandons the line
    ("ls\x1b[A\x1b[D\x1bOB -a\r", "ls -a"),  # arrow keys (CSI and SS3) dropped
    ("ls\x1bb -a\r", "ls -a"),  # Alt+b
    ("ls\x1b[1;5C\r", "ls"),  # a CSI with parameters
])
def test_the_line_buffer_edits_like_a_terminal(keys, line):
    buffer = session.LineBuffer()
    assert [entry[0] for entry in buffer.feed(keys)] == [line]
    assert not buffer.pending


def test_keys_arrive_one_read_at_a_time():
    buffer = session.LineBuffer()
    done = []
    for key in "rm -r\x7f\x7f-rf /\r\nls\r":
        done += buffer.feed(key)
    assert [line for line, _needed in done] == ["rm -rf /", "", "ls"]
    assert done[0][1] == set("rm-f/")


def test_raw_mode_for_piped_input_ends_lines_at_newline_only():
    buffer = session.LineBuffer(raw=True)
    assert [line for line, _needed in buffer.feed("a\x7fb\rc\nrest")] == ["abc"]
    assert buffer.pending and buffer.line()[0] == "rest"


def test_a_long_line_keeps_its_end():
    buffer = session.LineBuffer(limit=10)
    (line, _needed), = buffer.feed("x" * 100000 + " rm -rf /\r")
    assert line == "x rm -rf /"
    assert len(buffer.chars) == 0


# --------------------------------------------------------------------------- shipped rules


def _shipped():
    return session.compile_rules(session.DEFAULT_SESSION_RULES + [session.secret_rule(KEY_PATTERN)])


@pytest.mark.parametrize(("line", "rule"), [
    ("rm -fr /", "rm-recursive-root"),
    ("rm -rf /", "rm-recursive-root"),
    ("rm -r -f /*", "rm-recursive-root"),
    ("sudo rm --no-preserve-root -rf /", "rm-recursive-root"),
    ("cd /tmp && rm -rf /etc", "rm-recursive-root"),
    ("rm -Rf /usr/", "rm-recursive-root"),
    ("rm -rf /tmp/build", None),
    ("rm -f /etc/motd", None),
    ("rm -rf ./etc", None),
    ("chmod 777 /etc/shadow", "chmod-world-writable-system"),
    ("chmod -R 0777 /", "chmod-world-writable-system"),
    ("chmod a+rwx /usr/bin/passwd", "chmod-world-writable-system"),
    ("chmod 755 /usr/local/bin/tool", None),
    ("chmod 777 /home/alice/x", None),
    ("cat image > /dev/sda", "write-block-device"),
    ("dd if=/dev/zero of=/dev/nvme0n1 bs=1M", "write-block-device"),
    ("echo x > /dev/null", None),
    ("history -c", "history-clearing"),
    ("unset HISTFILE", "history-clearing"),
    ("export HISTFILE=/dev/null", "history-clearing"),
    ("rm ~/.bash_history", "history-clearing"),
    ("> /root/.bash_history", "history-clearing"),
    ("history | grep ssh", None),
    ("systemctl stop auditd", "logging-off"),
    ("systemctl --now disable syslog-ng.service", "logging-off"),
    ("service rsyslog stop", None),  # "service NAME stop": not this pattern's word order
    ("auditctl -e 0", "logging-off"),
    ("auditctl -D", "logging-off"),
    ("pkill -9 syslog-ng", "logging-off"),
    ("systemctl status auditd", None),
])
def test_the_shipped_input_rules(line, rule):
    found = [r["name"] for r in _shipped() if r["stream"] == "input" and r["pattern"].search(line)]
    assert found[:1] == ([rule] if rule else [])
    # a rule's literals are a fast check only: every line its pattern matches holds one
    for compiled in _shipped():
        if compiled["stream"] == "input" and compiled["pattern"].search(line):
            assert any(x in line for x in compiled["literals"]), (compiled["name"], line)


@pytest.mark.parametrize(("rule", "error"), [
    ({"name": "x"}, "exactly one of input or output"),
    ({"input": "a", "output": "b"}, "exactly one of input or output"),
    ({"input": "("}, "input: missing )"),
    ({"input": "a*"}, "matches the empty line"),
    ({"output": "x", "action": "end-session"}, "end-session needs an input rule"),
    ({"input": "x", "action": "kill"}, "action must be one of"),
    ({"input": "x", "severity": "loud"}, "severity must be one of"),
    ({"input": "x", "tags": ["bad tag"]}, "invalid tag"),
    ({"input": "x", "when": 1}, "unknown keys ['when']"),
    ({"input": "x", "literals": ["a  b"]}, "literals must be a list of strings (single spaces"),
    ({"input": "x", "literals": ["a\tb"]}, "literals must be a list of strings (single spaces"),
    ({"input": "x", "literals": [" "]}, "literals must be a list of strings (single spaces"),
    ({"input": "x", "literals": "x"}, "literals must be a list of strings (single spaces"),
])
def test_invalid_session_rules_say_what_is_wrong(rule, error):
    with pytest.raises(rules.RuleError, match=re.escape(error)):
        session.compile_rules([rule])


def test_end_rules_turn_named_rules_into_end_session_and_must_name_one(write_config):
    path = write_config({"session": {"end_rules": ["rm-recursive-root"]}})
    compiled = config.load_settings(path, session=True)["compiled_session_rules"]
    assert {r["name"]: r["action"] for r in compiled}["rm-recursive-root"] == "end-session"
    assert {r["action"] for r in compiled if r["name"] != "rm-recursive-root"} == {"alert"}
    path = write_config({"session": {"end_rules": ["rm-rf"]}})
    with pytest.raises(config.ConfigError, match=re.escape("names no session rule: ['rm-rf']")):
        config.load_settings(path, session=True)


def test_a_config_with_a_bad_session_rule_fails_the_check_not_the_audit_plugin(write_config):
    path = write_config({"session_rules": [{"input": "("}]})
    with pytest.raises(config.ConfigError, match="session rule 0"):
        config.load_settings(path, session=True)
    assert config.load_settings(path)["compiled_rules"]  # the audit plugin still loads it


# --------------------------------------------------------------------------- the plugin


def make_io(config_path, extra_options=()):
    options = ("ModulePath=/x/secalert_sudo_audit.py", "ClassName=SecalertIOPlugin",
               "Config=" + config_path) + tuple(extra_options)
    return session.SecalertIOPlugin(version="1.0", settings=("runas_user=root",),
                                    user_info=USER_INFO, user_env=("SECRET_TOKEN=hunter2",),
                                    plugin_options=options)


def opened(write_config, session_rules=None, end_session=False, max_events=20, options=()):
    shipped = session_rules is None
    path = write_config({"session_rules": [] if shipped else session_rules,
                         "session": {"end_session": end_session, "max_events": max_events,
                                     "default_rules": shipped,
                                     "secret_pattern": KEY_PATTERN if shipped else ""}})
    plugin = make_io(path, options)
    assert sudo.open_io(plugin, ["/usr/bin/bash"], command_info("/usr/bin/bash")) == OK
    return plugin


def type_echoed(plugin, text):
    """Type ``text`` one key at a time; the terminal echoes each key (Enter as CR LF)."""
    rcs = []
    for key in text:
        rcs.append(sudo.call_io(plugin, "log_ttyin", key.encode("utf-8", "surrogateescape")))
        if rcs[-1] != OK:
            break
        echo = "\r\n" if key == "\r" else key
        rcs.append(sudo.call_io(plugin, "log_ttyout", echo.encode("utf-8", "surrogateescape")))
    return rcs


def test_a_typed_line_alerts_with_an_excerpt_when_echoed(write_config, receiver):
    plugin = opened(write_config)
    assert set(type_echoed(plugin, "ls /tmp\recho rm -fr /\r")) == {OK}
    plugin.close(0, 0)
    (alert,) = receiver.events()
    assert (alert["type"], alert["decision"], alert["rule"], alert["severity"]) == (
        "sudo", "input", "rm-recursive-root", "critical")
    assert alert["excerpt"] == "echo rm -fr /"
    assert (alert["action"], alert["ended"], alert["stream"]) == ("alert", False, "tty")
    assert (alert["user"], alert["command"], alert["tty"]) == ("alice", "/usr/bin/bash",
                                                               "/dev/pts/3")
    assert alert["tags"] == ["sudo", "sudo-session"]


def test_a_line_typed_with_echo_off_never_reaches_an_alert(write_config, receiver):
    plugin = opened(write_config, [{"name": "any", "input": "."}])
    # a password prompt: the program turned echo off, so nothing typed comes back
    assert sudo.call_io(plugin, "log_ttyout", b"Password: ") == OK
    for key in "hunter2\r":
        assert sudo.call_io(plugin, "log_ttyin", key.encode()) == OK
    assert sudo.call_io(plugin, "log_ttyout", b"\r\n") == OK
    # pasted in one read, Enter included: no echo came back before Enter either
    assert sudo.call_io(plugin, "log_ttyin", b"swordfish\r") == OK
    plugin.close(0, 0)
    frames = b"".join(receiver.frames())
    assert frames.count(b'"excerpt_withheld":"not echoed"') == 2
    assert b"hunter2" not in frames and b"swordfish" not in frames


def test_end_session_rejects_at_enter_before_the_line_runs(write_config, receiver):
    plugin = opened(write_config, [{"name": "rm", "input": r"rm -rf /", "action": "end-session",
                                    "severity": "critical"}], end_session=True)
    rcs = type_echoed(plugin, "rm -rf /\r")
    assert rcs[-1] == REJECT and set(rcs[:-1]) == {OK}  # only the Enter key is refused
    (alert,) = receiver.events()
    assert (alert["action"], alert["ended"], alert["rule"]) == ("end-session", True, "rm")


def test_end_session_only_alerts_where_the_config_does_not_allow_it(write_config, receiver):
    plugin = opened(write_config, [{"name": "rm", "input": r"rm -rf /", "action": "end-session"}])
    assert set(type_echoed(plugin, "rm -rf /\r")) == {OK}
    (alert,) = receiver.events()
    assert alert["ended"] is False and "not allowed" in alert["end_skipped"]


def test_piped_input_alerts_and_never_ends_the_session(write_config, receiver):
    plugin = opened(write_config, [{"name": "rm", "input": r"rm -rf /", "action": "end-session"}],
                    end_session=True)
    assert sudo.call_io(plugin, "log_stdin", b"echo start\nrm -rf /\n") == OK
    assert sudo.call_io(plugin, "log_stdin", b"echo one more; rm -rf /") == OK  # no newline
    plugin.close(0, 0)
    first, last = receiver.events()
    for alert in (first, last):
        assert (alert["stream"], alert["ended"]) == ("stdin", False)
        assert alert["end_skipped"] == "no terminal: sudo would hang"
        assert alert["excerpt_withheld"] == "not a terminal" and "excerpt" not in alert


@pytest.mark.parametrize("callback", ["log_ttyin", "log_ttyout", "log_stdin", "log_stdout",
                                      "log_stderr"])
def test_bytes_that_are_not_utf8_never_end_the_session(write_config, receiver, callback):
    plugin = opened(write_config)
    # a binary file, and a euro sign split across two reads
    for data in (bytes(range(256)), b"\xe2\x82", b"\xac\n"):
        assert sudo.call_io(plugin, callback, data) == OK
        # what the unpatched C bridge does with the same bytes: the session would end
        assert sudo.call_io(plugin, callback, data, patched=False) == ERROR
    plugin.close(0, 0)
    assert [e for e in receiver.events() if e["type"] == "fault"] == []


def test_undecodable_bytes_are_matched_and_escaped(write_config, receiver):
    plugin = opened(write_config, [{"name": "rm", "input": r"rm -rf /"}])
    type_echoed(plugin, "rm -rf / # \udcff\r")
    (alert,) = receiver.events()
    assert alert["excerpt"] == "rm -rf / # \\xff"


def test_an_output_rule_alerts_once_without_the_secret(write_config, receiver):
    plugin = opened(write_config)
    key = b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
    # split across two reads, with colour codes around it
    assert sudo.call_io(plugin, "log_ttyout", b"\x1b[32m" + key[:20]) == OK
    assert sudo.call_io(plugin, "log_ttyout", key[20:] + b"\x1b[0m") == OK
    assert sudo.call_io(plugin, "log_stdout", key) == OK  # the same rule: once per session
    plugin.close(0, 0)
    (alert,) = receiver.events()
    assert (alert["decision"], alert["rule"], alert["stream"]) == (
        "output", "secret-on-screen", "ttyout")
    assert "excerpt" not in alert
    assert b"b3BlbnNzaC1rZXktdjEAAAAA" not in b"".join(receiver.frames())


def test_a_flood_is_bounded_and_counted(write_config, receiver):
    plugin = opened(write_config, [{"name": "any", "input": "x"}], max_events=3)
    assert sudo.call_io(plugin, "log_ttyin", b"x\r" * 10) == OK
    plugin.close(0, 0)
    events = receiver.events()
    assert [e["rule"] for e in events] == ["any"] * 3 + ["session-limit"]
    assert events[-1]["unsent"] == 7


def test_without_session_rules_the_plugin_unloads(write_config, receiver):
    plugin = make_io(write_config({"session": {"default_rules": False}}))
    assert sudo.open_io(plugin, ["/usr/bin/id"], command_info()) == REJECT
    assert receiver.events() == []


@pytest.mark.parametrize(("options", "rc"), [((), REJECT), (("FailClosed=yes",), ERROR)])
def test_a_broken_config_unloads_or_with_fail_closed_refuses(write_config, receiver, options, rc):
    plugin = make_io(write_config(raw="{not json"), options)
    assert sudo.open_io(plugin, ["/usr/bin/id"], command_info()) == rc
    assert ("sudo", "sudo: error initializing I/O plugin python_io") in sudo.LOG or rc != ERROR


def test_a_fault_in_a_callback_is_reported_once_and_the_session_goes_on(
        write_config, receiver, monkeypatch):
    plugin = opened(write_config)

    def broken(text):
        raise MemoryError("no room")

    monkeypatch.setattr(plugin._tty, "feed", broken)
    for _unused in range(3):
        assert sudo.call_io(plugin, "log_ttyin", b"x") == OK
    plugin.close(0, 0)
    (fault,) = receiver.events()
    assert (fault["type"], fault["where"]) == ("fault", "log_ttyin")
    assert "MemoryError: no room" in fault["error"]


def test_piped_buffers_without_a_literal_skip_the_lines_but_not_a_match_across_them(
        write_config, receiver):
    plugin = opened(write_config, [{"name": "rm", "input": r"\brm -rf /", "literals": ["rm"]}])
    text = b"".join(b"line %d of a big file\n" % i for i in range(5000))
    assert sudo.call_io(plugin, "log_stdin", text) == OK
    assert receiver.events() == [] and plugin._pipe.chars == []
    # "r" ends one buffer, "m -rf /" starts the next: the literal spans them
    assert sudo.call_io(plugin, "log_stdin", b"more\necho r") == OK
    assert sudo.call_io(plugin, "log_stdin", b"m -rf /\n" + text) == OK
    (alert,) = receiver.events()
    assert (alert["rule"], alert["stream"]) == ("rm", "stdin")


def test_piped_lines_found_by_literal_are_exactly_the_lines_that_hold_one():
    """The C-level search for literals returns the same lines as judging every line and
    keeping those that hold one, whatever the buffer boundaries."""
    rng = random.Random(7)  # noqa: S311 - test data, not secrets
    words = ["rm", "-rf", "/", "echo", "ls", "xrmx", "\t", "HIST", "a\x00b", "  ", "rr", "mm"]
    text = "\n".join(" ".join(rng.choice(words) for _unused in range(rng.randint(0, 8)))
                     for _unused in range(3000)) + "\n"
    literals = ("rm", "HIST")
    every, chosen = session.LineBuffer(raw=True), session.LineBuffer(raw=True)
    all_lines, found = [], []
    pos = 0
    while pos < len(text):
        size = rng.choice([1, 2, 7, 64, 500, 4096])
        all_lines += [line for line, _needed in every.feed(text[pos:pos + size])]
        found += [line for line, _needed in chosen.feed(text[pos:pos + size], literals)]
        pos += size
    assert found == [line for line in all_lines if "rm" in line or "HIST" in line]
    assert len(found) > 1000


@pytest.mark.parametrize(("command", "alerts"), [
    ("/usr/bin/sh", 1), ("/usr/bin/python3.11", 1), ("/usr/bin/tee", 0), ("/usr/bin/cat", 0)])
def test_piped_input_is_judged_where_a_shell_or_interpreter_reads_it(
        write_config, receiver, command, alerts):
    path = write_config({"session_rules": [{"name": "rm", "input": "rm -rf /"}],
                         "session": {"default_rules": False}})
    plugin = make_io(path)
    assert sudo.open_io(plugin, [command], command_info(command)) == OK
    assert sudo.call_io(plugin, "log_stdin", b"rm -rf /\n") == OK
    # typed input is judged whatever reads it
    assert sudo.call_io(plugin, "log_ttyin", b"rm -rf /\r") == OK
    plugin.close(0, 0)
    assert [e["stream"] for e in receiver.events()] == ["stdin"] * alerts + ["tty"]
