"""Events: fields, one per command, close events, hostile input, truncation."""

import json
import os

import pytest
import sudo
from conftest import USER_INFO, command_info, make_plugin, run_accepted, run_rejected
from secalert_sudo import config, delivery, event
from secalert_sudo.plugin import SecalertAuditPlugin

OK = int(sudo.RC.OK)


def test_accept_event_fields(write_config, receiver):
    plugin = make_plugin(write_config())
    assert run_accepted(plugin, ["/bin/bash", "-c", "id"]) == [OK, OK, OK]
    (event,) = receiver.events()
    assert event == {
        "schema": 1, "type": "sudo", "time": event["time"], "host": "web1", "pid": 4242,
        "user": "alice", "uid": 1000, "tty": "/dev/pts/3", "cwd": "/home/alice",
        "runas_user": "root", "runas_group": "root", "command": "/bin/bash",
        "args": ["-c", "id"], "decision": "accept", "plugin": "sudoers_policy",
        "truncated": False, "rule": "shell", "severity": "warning",
        "tags": ["sudo", "sudo-shell"],
    }
    assert event["time"].endswith("Z") and len(event["time"]) == 24


def test_no_environment_anywhere(write_config, receiver):
    plugin = make_plugin(write_config({"close_events": True}))
    run_accepted(plugin, ["/usr/bin/env"])
    run_rejected(make_plugin(write_config()), ["/usr/bin/env"])
    frames = b"".join(receiver.frames())
    assert b"hunter2" not in frames and b"SECRET_TOKEN" not in frames
    assert not hasattr(plugin, "user_env")


def test_syslog_frame_header(write_config, receiver):
    run_accepted(make_plugin(write_config()), ["/usr/bin/id"])
    (frame,) = receiver.frames()
    # authpriv (10) * 8 + info (6) = 86; glibc-style header with sudo's pid
    assert frame.startswith(b"<86>")
    assert b" secalert-sudo[4242]: {" in frame
    assert b"\n" not in frame


@pytest.mark.parametrize("facility, severity, pri", [
    ("authpriv", "critical", 82), ("auth", "info", 38), ("local3", "warning", 156),
])
def test_syslog_priority(facility, severity, pri):
    frame = delivery.syslog_frame("{}", facility, severity, "x", 1, now=0)
    assert frame.startswith(f"<{pri}>Jan  1 ".encode())


def test_counted_once_per_command(write_config, receiver):
    plugin = make_plugin(write_config())
    run_accepted(plugin, ["/usr/bin/id"])
    # sudo calls accept() once per policy/approval plugin and once for the front end
    assert [e["decision"] for e in receiver.events()] == ["accept"]


def test_accept_without_front_end_confirmation_still_counted(write_config, receiver):
    plugin = make_plugin(write_config())
    sudo.call(plugin, "open", 1, ("sudo", "/usr/bin/id"))
    sudo.call(plugin, "accept", "sudoers_policy", int(sudo.PLUGIN_TYPE.POLICY),
              command_info(), ("/usr/bin/id",), ())
    plugin.close(int(sudo.EXIT_REASON.SUDO_ERROR), 1)
    assert [e["decision"] for e in receiver.events()] == ["accept"]


@pytest.mark.parametrize("decision, reason", [
    ("reject", "command not allowed"),
    ("reject", "authentication failure"),
    ("error", "unable to open audit system"),
])
def test_denials(write_config, receiver, decision, reason):
    plugin = make_plugin(write_config())
    assert run_rejected(plugin, ["/usr/bin/cat", "/etc/shadow"], reason, decision) == [OK, OK]
    # the same denial reported twice still makes one event
    sudo.call(plugin, decision, "sudoers_policy", 1, reason, ())
    (event,) = receiver.events()
    assert (event["decision"], event["reason"], event["rule"], event["severity"]) == (
        decision, reason, "denied", "critical")
    assert event["command"] == "/usr/bin/cat" and event["args"] == ["/etc/shadow"]


def test_reject_without_command_info_uses_typed_command(write_config, receiver):
    plugin = make_plugin(write_config())
    sudo.call(plugin, "open", 2, ("sudo", "-u", "vi", "/etc/hosts"))
    sudo.call(plugin, "reject", "sudoers_policy", 1, "command not allowed", ())
    (event,) = receiver.events()
    assert event["command"] == "vi" and event["args"] == ["/etc/hosts"]
    assert event["runas_user"] == "root"  # from sudo's settings


@pytest.mark.parametrize("kind, status, fields", [
    ("WAIT_STATUS", 3 << 8, {"exit_status": 3}),
    ("WAIT_STATUS", 0, {"exit_status": 0}),
    ("WAIT_STATUS", 9, {"signal": 9, "core_dumped": False}),
    ("WAIT_STATUS", 11 | 0x80, {"signal": 11, "core_dumped": True}),
    ("EXEC_ERROR", 2, {"exec_error": "ENOENT"}),
    ("SUDO_ERROR", 5, {"sudo_error": 5}),
])
def test_close_events(write_config, receiver, kind, status, fields):
    plugin = make_plugin(write_config({"close_events": True}))
    argv = ("/usr/bin/id",)
    sudo.call(plugin, "open", 1, ("sudo",) + argv)
    for name, ptype in (("sudoers_policy", 1), ("sudo", 0)):
        sudo.call(plugin, "accept", name, ptype, command_info(), argv, ())
    plugin.close(int(getattr(sudo.EXIT_REASON, kind)), status)
    accept, close = receiver.events()
    assert accept["decision"] == "accept" and close["decision"] == "close"
    assert {k: close[k] for k in fields} == fields
    assert close["rule"] == "exit"


def test_no_close_event_by_default_or_without_command(write_config, receiver):
    run_accepted(make_plugin(write_config()), ["/usr/bin/id"], status=1 << 8)
    run_rejected(make_plugin(write_config({"close_events": True})), ["/usr/bin/id"])
    assert [e["decision"] for e in receiver.events()] == ["accept", "reject"]


def test_ignore_rule_sends_nothing(write_config, receiver):
    path = write_config({"rules": [{"match": {"command": "/usr/bin/id"}, "action": "ignore"}]})
    assert run_accepted(make_plugin(path), ["/usr/bin/id"]) == [OK, OK, OK]
    assert receiver.events() == []


HOSTILE = [
    "line1\nline2\r\n<86>Jan  1 00:00:00 host sudo: forged",
    "\x1b[31mred\x1b[0m \x1b]0;title\x07 \x9b2J",
    "\udcff\udcfeinvalid utf-8",
    "\ud800 lone high surrogate",
    "@everyone @here <@123456> <@&42> <#7> **bold** [x](http://evil) `code`",
    "\u202eevil\u2066 \u2028 separators",
    "A" * 100_000,
]


def test_hostile_arguments_make_one_wellformed_event(write_config, receiver):
    plugin = make_plugin(write_config())
    assert run_accepted(plugin, ["/usr/bin/echo"] + HOSTILE) == [OK, OK, OK]
    (frame,) = receiver.frames()
    assert b"\n" not in frame and b"\r" not in frame and b"\x1b" not in frame
    assert frame.isascii() and len(frame) < config.DEFAULT_LIMITS["event_bytes"] + 100
    event = json.loads(frame.partition(b": ")[2])
    args = event["args"]
    assert len(args) == len(HOSTILE)
    assert args[0].startswith("line1\\x0aline2\\x0d\\x0a<86>")
    assert "\\x1b[31mred" in args[1] and "\\x9b2J" in args[1]
    assert args[2].startswith("\\xff\\xfeinvalid")
    assert args[3].startswith("\\ud800")
    assert "\\u202eevil\\u2066 \\u2028" in args[5]
    # chat markup is kept verbatim in the event; the sender neutralises it per service
    assert args[4].startswith("@everyone")
    assert args[6].endswith("...[truncated]") and len(args[6]) == 1024
    assert event["truncated"] is True
    for text in args:
        assert all(c.isprintable() for c in text)


def test_too_many_and_too_long_arguments_fit_the_datagram(write_config, receiver):
    plugin = make_plugin(write_config())
    argv = ["/usr/bin/echo"] + ["\x00" * 5000] * 500
    run_accepted(plugin, argv)
    (frame,) = receiver.frames()
    event = json.loads(frame.partition(b": ")[2])
    assert len(frame) <= config.DEFAULT_LIMITS["event_bytes"] + 100
    assert event["truncated"] is True
    assert event["args"][-1].startswith("...[") or len(event["args"]) <= 65


@pytest.mark.parametrize("value, limit, expected, cut", [
    ("plain", 10, "plain", False),
    ("a\nb", 10, "a\\x0ab", False),
    ("x" * 20, 18, "xxxx...[truncated]", True),
    (b"\xff\xfe", 10, "\\xff\\xfe", False),
    (None, 10, None, False),
    (42, 10, "42", False),
    ("\x7f\x85", 10, "\\x7f\\x85", False),
])
def test_clean(value, limit, expected, cut):
    assert event.clean(value, limit) == (expected, cut)


def test_user_fields_are_cleaned(write_config, receiver):
    info = tuple(x for x in USER_INFO if not x.startswith(("user=", "cwd=")))
    info += ("user=ali\x1b[2Jce", "cwd=/tmp/\nevil")
    run_accepted(make_plugin(write_config(), user_info=info), ["/usr/bin/id"])
    (event,) = receiver.events()
    assert event["user"] == "ali\\x1b[2Jce" and event["cwd"] == "/tmp/\\x0aevil"


def test_plugin_id_in_events(write_config, receiver):
    run_accepted(make_plugin(write_config(), extra_options=("Id=second",)), ["/usr/bin/id"])
    (event,) = receiver.events()
    assert event["plugin_id"] == "second"


def test_drops_are_reported_once_with_their_count(write_config, receiver, shortdir):
    path = write_config()
    with open(shortdir + "/drops", "wb") as fh:
        fh.write(b"...")
    run_accepted(make_plugin(path), ["/usr/bin/id"])
    fault, accepted = receiver.events()
    assert fault["type"] == "fault" and fault["where"] == "syslog", fault
    assert fault["error"].startswith("3 earlier sudo event(s) could not be logged"), fault
    assert fault["severity"] == "error"
    assert accepted["command"] == "/usr/bin/id" and "dropped" not in accepted
    assert [x for x in os.listdir(shortdir) if x.startswith("drops")] == []  # no claim left
    # reported: the next command carries no report
    run_accepted(make_plugin(path), ["/usr/bin/true"])
    assert [e["command"] for e in receiver.events()] == ["/usr/bin/true"]


def test_a_report_that_is_not_delivered_keeps_its_count(shortdir):
    counter = os.path.join(shortdir, "drops")
    delivery.bump_counter(counter, 4)
    count, claim = delivery.claim_drops(counter)
    assert count == 4 and delivery.drop_count(counter) == 0
    # a sudo call running meanwhile finds nothing to claim, and counts its own drop
    assert delivery.claim_drops(counter) == (0, None)
    delivery.bump_counter(counter)
    delivery.settle_drops(counter, claim, count, reported=False)
    assert delivery.drop_count(counter) == 5 and not os.path.exists(claim)
    count, claim = delivery.claim_drops(counter)
    delivery.settle_drops(counter, claim, count, reported=True)
    assert count == 5 and delivery.drop_count(counter) == 0 and not os.path.exists(claim)


def test_show_version():
    plugin = SecalertAuditPlugin(plugin_options=("Config=/nonexistent",))
    assert plugin.show_version(1) == OK
    assert any("secalert sudo audit plugin version" in text for _unused, text in sudo.LOG)
