"""Escaping with the real Apprise: real server objects, the HTTP call intercepted.

Both delivery paths are driven end to end inside the process: the syslog-ng destination
(secalert_syslogng.AppriseDestination with its real AppriseTransport) and the sudo
direct-mode sender (roles/sudo_alerts/files/secalert_sudo_send.py). requests'
HTTPAdapter.send, the lowest layer every Apprise plugin here goes through, records the
request instead of sending it: nothing leaves the process. The assertions read the
payload Apprise would have sent.
"""

import json
import time
from urllib.parse import parse_qs

import apprise
import pytest
import requests
import secalert_sudo_send as send
import secalert_syslogng
import syslogng
from secalert_apprise import render, text

EVIL = "sudo /tmp/[Approve](https://evil.example/a)"
# invisible and format characters: Cf (zero-width, bidi, BOM, soft hyphen, word joiner)
# and the Hangul fillers, which are letters that render as nothing
INVISIBLE = ("\u200b\u200c\u200d\u200e\u200f\u2060\ufeff\u00ad\u115f\u1160\u3164\uffa0"
             "\u202e\u2066\u061c\U000e0041")
LINE = f"alice refused: {EVIL} ad{INVISIBLE}min"

MD_LINK = "[Approve]("  # a Markdown link (Discord, Telegram Markdown, CommonMark)
SLACK_LINK = "|Approve>"  # Slack's <url|text>
HTML_LINK = "<a href"
# service -> (URL, what a live masked link looks like in what that service renders)
URLS = {
    "discord": ("discord://111111/abcdefghijklmnop", MD_LINK),
    "discord-md": ("discord://111111/abcdefghijklmnop?format=markdown", MD_LINK),
    "slack": ("slack://T1abcdefg/B1abcdefg/abcdefghijklmnopqrstuvwx", SLACK_LINK),
    "tgram": ("tgram://123456789:abcdefghijklmnopqrstuvwxyzABCDEFGHI/12345", HTML_LINK),
    "tgram-md": ("tgram://123456789:abcdefghijklmnopqrstuvwxyzABCDEFGHI/12345?format=markdown",
                 MD_LINK),
    "json-md": ("json://127.0.0.1:9/hook?format=markdown", MD_LINK),
    "json-html": ("json://127.0.0.1:9/hook?format=html", HTML_LINK),
}


@pytest.fixture
def wire(monkeypatch):
    """Every HTTP request Apprise makes, answered 200, recorded as (url, payload)."""
    sent = []

    def fake_send(self, request, **kwargs):
        body = request.body or b""
        body = body.decode() if isinstance(body, bytes) else body
        try:
            payload = json.loads(body)
        except ValueError:
            payload = {k: v[0] for k, v in parse_qs(body).items()}
        sent.append((request.url, payload))
        response = requests.Response()
        response.status_code = 200
        slack = "hooks.slack.com" in request.url
        response._content = b"ok" if slack else b'{"ok": true, "result": {}}'
        response.request, response.url = request, request.url
        return response

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", fake_send)
    return sent


def strings(payload):
    """Every string in a JSON payload (titles, bodies, embeds, attachments)."""
    if isinstance(payload, str):
        return [payload]
    if isinstance(payload, dict):
        return [s for value in payload.values() for s in strings(value)]
    if isinstance(payload, list):
        return [s for value in payload for s in strings(value)]
    return []


def config_for(tmp_path, name):
    path = tmp_path / "apprise.yml"
    path.write_text(f"urls:\n  - {URLS[name][0]}:\n      tag: sudo\n")
    return str(path)


def through_destination(tmp_path, name, messages, render_as=""):
    """``render_as="sudo"``: the messages are sudo event lines, as the sudo_events rule
    hands them over (``render("sudo")``)."""
    dest = secalert_syslogng.AppriseDestination()
    dest.init({"config": config_for(tmp_path, name), "tag": "sudo", "venv": "",
               "title": "${PROGRAM} on ${HOST}: ${MESSAGE}", "body": "${MESSAGE}",
               "render": render_as, "rate_limit": "100"})
    for message in messages:
        assert dest.send(syslogng.LogMessage(message, HOST="h1", PROGRAM="sudo")) == dest.QUEUED
    assert dest.flush() == dest.SUCCESS


def through_sender(tmp_path, name, events):
    """The sender's Outbox with its real Transport: one round, no rate limit in the way."""
    outbox = send.Outbox(send.Transport(config_for(tmp_path, name)), {}, 100, 60.0, 0.0)
    assert outbox.add(events, time.monotonic()) == []
    assert outbox.send(time.monotonic)
    _delivered, unsent, codes = outbox.finished()
    assert codes == [send.EXIT_OK] * len(events) and unsent == []


def sudo_event(user="alice"):
    return {"schema": 1, "type": "sudo", "time": "2026-12-01T17:00:00Z", "host": "h1",
            "user": user + INVISIBLE, "uid": 1000, "runas_user": "root",
            "command": "/tmp/[Approve](https://evil.example/a)", "args": ["x" + INVISIBLE],
            "decision": "reject", "severity": "warning", "tags": ["sudo"]}


def assert_safe(wire, name, shown=True):
    assert wire, "nothing was sent"
    live = URLS[name][1]
    for _url, payload in wire:
        for value in strings(payload):
            assert live not in value, value
            assert not any(ch in value for ch in INVISIBLE if ch != text.ZWSP), value
        if shown:  # the text itself is still there to read
            assert any("Approve" in value for value in strings(payload))


@pytest.mark.parametrize("name", sorted(URLS))
@pytest.mark.parametrize("count", [1, 5])  # one event, and a digest
def test_destination_payload_has_no_live_link_or_invisible_character(tmp_path, wire, name,
                                                                     count):
    through_destination(tmp_path, name, [LINE] * count)
    assert_safe(wire, name)


@pytest.mark.parametrize("name", sorted(URLS))
@pytest.mark.parametrize("count", [1, 5])
def test_direct_sender_payload_has_no_live_link_or_invisible_character(tmp_path, wire, name,
                                                                       count):
    through_sender(tmp_path, name, [sudo_event()] * count)
    assert_safe(wire, name, shown=count == 1)  # a digest folds them: "alice: 5 refused sudo"


@pytest.mark.parametrize("name", sorted(URLS))
@pytest.mark.parametrize("count", [1, 5])
def test_destination_sudo_payload_has_no_live_link_or_invisible_character(tmp_path, wire,
                                                                          name, count):
    through_destination(tmp_path, name, [json.dumps(sudo_event())] * count, "sudo")
    assert_safe(wire, name)


@pytest.mark.parametrize("path", ["destination", "sudo-line", "sender"])
def test_discord_gets_escaped_title_and_body(tmp_path, wire, path):
    if path == "destination":
        through_destination(tmp_path, "discord", [LINE])
    elif path == "sudo-line":
        through_destination(tmp_path, "discord", [json.dumps(sudo_event())], "sudo")
    else:
        through_sender(tmp_path, "discord", [sudo_event()])
    ((_url, payload),) = wire
    title, _sep, body = payload["content"].partition("\r\n")
    assert "\\[Approve\\]\\(https://evil\\.example/a\\)" in title
    assert "\\[Approve\\]\\(https://evil\\.example/a\\)" in body


def test_plain_json_receiver_gets_the_text_unescaped(tmp_path, wire):
    path = tmp_path / "apprise.yml"
    path.write_text("urls:\n  - json://127.0.0.1:9/hook:\n      tag: sudo\n")
    outbox = send.Outbox(send.Transport(str(path)), {}, 100, 60.0, 0.0)
    outbox.add([sudo_event()], time.monotonic())
    outbox.send(time.monotonic)
    ((_url, payload),) = wire
    assert payload["title"] == "[warning] sudo: alice was denied " \
                               "/tmp/[Approve](https://evil.example/a) on h1"


@pytest.mark.parametrize("url, markdown", [
    ("discord://111111/abcdefghijklmnop", True),  # Discord renders its text content
    ("slack://T1abcdefg/B1abcdefg/abcdefghijklmnopqrstuvwx", True),
    ("tgram://123456789:abcdefghijklmnopqrstuvwxyzABCDEFGHI/12345", False),  # HTML first
    ("json://127.0.0.1:9/hook", False),
    ("json://127.0.0.1:9/hook?format=markdown", True),
    ("json://127.0.0.1:9/hook?format=html", False),
    ("ntfy://127.0.0.1:9/topic", False),
])
def test_renders_markdown_compares_enum_values(url, markdown):
    server = apprise.Apprise.instantiate(url)
    assert isinstance(server.notify_format, (tuple, apprise.NotifyFormat))
    assert render.renders_markdown(server) is markdown
    assert render.renders_markdown(server, "no") is False
    assert render.renders_markdown(server, "yes") is True


@pytest.mark.parametrize("char", list(INVISIBLE))
def test_every_invisible_character_is_removed(char):
    assert text.safe(f"ad{char}min") == "admin"


def test_status_and_fault_events_have_their_own_text():
    off = {"type": "status", "state": "off", "host": "h1", "where": "guard",
           "reason": "plugin file changed", "file": "/usr/libexec/secalert/x.py",
           "detail": "sudo: unable to load plugins", "action": "run sudo-alerts-ctl on",
           "time": "2026-12-01T17:00:00Z", "severity": "critical", "dropped": 3}
    title, body, kind = render.sudo_event(off)
    assert title == "[critical] sudo alerts OFF on h1" and kind == "failure"
    assert body.splitlines() == [
        "reason: plugin file changed", "file: /usr/libexec/secalert/x.py",
        "detail: sudo: unable to load plugins", "action: run sudo-alerts-ctl on",
        "where: guard, time: 2026-12-01T17:00:00Z",
        render.DROPPED_LINE.format(n=3)]
    assert "ran" not in title + body
    fault = {"type": "fault", "host": "h1", "where": "accept", "error": "KeyError: 'x'",
             "severity": "error", "fail_closed": False, "time": "t"}
    title, body, kind = render.sudo_event(fault)
    assert title == "[error] sudo alerting fault on h1 (accept)" and kind == "failure"
    assert body.startswith("error: KeyError: 'x'\n") and "ran" not in body


def test_read_sudo_is_strict_and_takes_the_syslog_host():
    line = json.dumps(sudo_event()).encode()
    assert render.read_sudo(line)["host"] == "h1"
    assert render.read_sudo(line, host="web1")["host"] == "web1"
    assert render.read_sudo('{"user": "a"}')["user"] == "a"  # no type: a decision
    for bad, reason in [(b"\xff{}", "not UTF-8"), ("", "not JSON"), ("1", "not a JSON object"),
                        ('{"type": "x"}', "unknown type 'x'")]:
        with pytest.raises(ValueError, match=reason):
            render.read_sudo(bad)


def test_sudo_line_names_host_arguments_rule_and_severity():
    event = dict(sudo_event(), user="alice", command="/bin/sh",
                 args=["-c", "a,b", "it's"], tty="pts/0", cwd="/root", rule="denied",
                 dropped=2)
    assert render.sudo_line(event) == (
        "alice was denied /bin/sh -c 'a,b' \"it's\" on h1 (tty pts/0, cwd /root): "
        "reject by rule denied, warning. 2 earlier sudo event(s) could not be logged")
    assert render.sudo_line(dict(event, decision="accept", dropped=0)) == (
        "alice ran /bin/sh -c 'a,b' \"it's\" as root on h1 (tty pts/0, cwd /root): "
        "accept by rule denied, warning")
    assert render.sudo_line(dict(event, decision="error", args=[], tty="", cwd="", dropped=0)) \
        == "error for alice running /bin/sh on h1: error by rule denied, warning"
    off = {"type": "status", "state": "off", "host": "h1", "severity": "critical"}
    assert render.sudo_line(off) == "sudo alerts OFF on h1"


def test_a_subcommand_says_what_it_ran_inside():
    event = dict(sudo_event(), user="alice", decision="accept", command="/usr/bin/id",
                 args=["-u"], subcommand=True, parent_command="/usr/bin/bash")
    title, _body, _kind = render.sudo_event(event)
    assert title == "[warning] sudo: alice ran /usr/bin/id as root on h1, inside /usr/bin/bash"
    assert render.sudo_line(dict(event, decision="reject", args=[])) == (
        "alice was denied /usr/bin/id on h1, inside /usr/bin/bash: reject by rule -, warning")


def test_a_session_rule_event_names_the_rule_and_shows_only_the_excerpt():
    event = dict(sudo_event(), user="alice", decision="input", command="/usr/bin/bash",
                 args=[], rule="rm-recursive-root", severity="critical", stream="tty",
                 action="end-session", ended=True, excerpt="echo [x](https://evil) rm -fr /")
    title, body, kind = render.sudo_event(event)
    assert title == ("[critical] sudo: alice typed rm-recursive-root in /usr/bin/bash on h1, "
                     "session ended")
    assert "stream: tty, action: end-session, ended: True" in body
    assert "excerpt: echo [x](https://evil) rm -fr /" in body, body
    assert kind == "failure"
    # a markdown target: the excerpt is text, its link never a link
    _title, body, _kind = render.sudo_event(event, markdown=True)
    assert "](https" not in body and "\\[x\\]" in body, body
    shown = dict(event, decision="output", rule="secret-on-screen", ended=False,
                 excerpt_withheld="output", action="alert")
    del shown["excerpt"]
    title, body, _kind = render.sudo_event(shown)
    assert title == "[critical] sudo: alice was shown secret-on-screen in /usr/bin/bash on h1"
    assert "excerpt withheld: output" in body and "excerpt:" not in body
    assert render.sudo_summary(shown).endswith("alice output /usr/bin/bash")


def test_sudo_digest_folds_a_flood_per_user_and_puts_critical_first():
    flood = [dict(sudo_event("alice"), user="alice") for _i in range(250)]
    real = dict(sudo_event("bob"), user="bob", decision="accept", severity="critical",
                command="/usr/bin/passwd", args=["root"])
    title, body, kind = render.sudo_digest(flood[:100] + [real] + flood[100:])
    assert title == render.SUDO_DIGEST_TITLE.format(
        severity="critical", count=251, where="h1", kinds="1 accept, 250 reject")
    lines = body.splitlines()
    assert lines[1].endswith("bob accept /usr/bin/passwd root")
    assert lines[2] == "- alice: 250 refused sudo"
    assert lines[3].startswith("  first: ") and lines[4].startswith("  last: ")
    assert len(lines) == 5
    assert kind == "failure"


def test_sudo_digest_lists_every_event_while_they_fit():
    """A burst of distinct commands is not folded into a count when it fits the body."""
    burst = [dict(sudo_event("root"), user="root", decision="accept", severity="warning",
                  command="/bin/bash", args=["-c", f": mark-burst {i}"]) for i in range(20)]
    title, body, _kind = render.sudo_digest(burst)
    assert title.startswith("[warning] sudo: 20 events on ")
    for i in range(20):
        assert f"mark-burst {i}'" in body, body


@pytest.mark.parametrize(
    "value, origin, multiline, expected",
    [
        ("web1 sshd: Failed password", "web2", False, "[web2] web1 sshd: Failed password"),
        ("web2 sshd: Failed password", "web2", False, "web2 sshd: Failed password"),
        ("web2: sshd", "web2", False, "web2: sshd"),
        ("web2", "web2", False, "web2"),
        # a longer name that starts with the sender's is another name
        ("web2x sshd: x", "web2", False, "[web2] web2x sshd: x"),
        ("web2.example.org sshd: x", "web2", False, "[web2] web2.example.org sshd: x"),
        # invisible and control characters cannot hide or fake the name
        ("\u202eweb1 sshd: x", "web2", False, "[web2] web1 sshd: x"),
        ("\u200bweb2 sshd: x", "web2", False, "web2 sshd: x"),
        # every line of a body, whatever line break it uses; blank lines stay blank
        ("web2 a\u2028web1 b\r\n\nweb1 c", "web2", True, "web2 a\n[web2] web1 b\n\n[web2] web1 c"),
        # one line: the breaks are folded first
        ("web2 a\nweb1 b", "web2", False, "web2 a web1 b"),
        (b"web1 \xff", b"web2", False, "[web2] web1 \ufffd"),
        # no origin: the alert server's own events, a standalone host's
        ("web1 sshd: x", "", True, "web1 sshd: x"),
    ],
)
def test_attribute_puts_the_verified_sender_first_on_every_line(
        value, origin, multiline, expected):
    assert render.attribute(value, origin, multiline=multiline) == expected


def test_a_folded_line_leads_with_the_origin_and_keeps_its_examples_whole():
    """The origin is said once, at the start: the 80 characters of each example are the
    event's own (a flood test once lost its marker to a repeated prefix)."""
    body = "mallory ran /bin/cat (arguments: /etc/mark-1234567890ab-{i}) on web2"
    events = [("sudo error on web2", body.format(i=i), "critical", "secalert-sudo", "web2")
              for i in range(300)]
    title, text_, _type = render.digest(events, False, body_max=500)
    assert title == "300 events: [web2] sudo error on web2"
    assert text_.splitlines()[1] == (
        "• web2 secalert-sudo: 300 × sudo error on web2, first: "
        + body.format(i=0) + "; last: " + body.format(i=299))
