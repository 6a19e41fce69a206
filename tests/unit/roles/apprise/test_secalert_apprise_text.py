"""secalert_apprise.text: chat-safe text, table-driven."""

import pytest
from secalert_apprise import text

Z = text.ZWSP


@pytest.mark.parametrize(
    "value, kwargs, expected",
    [
        # decoding
        (b"caf\xc3\xa9", {}, "café"),
        (b"bad \xff\xfe bytes", {}, "bad \ufffd\ufffd bytes"),
        (None, {}, ""),
        (42, {}, "42"),
        # ANSI and control characters
        ("\x1b[31mred\x1b[0m", {}, "red"),
        ("\x1b]0;window title\x07after", {}, "after"),
        ("bell\x07 nul\x00 del\x7f c1\x9b2J", {}, "bell nul del c1"),
        ("a\r\nb\rc\u2028d", {}, "a\nb\nc\nd"),
        ("keep\ttab\nand newline", {}, "keep\ttab\nand newline"),
        ("fold\ttab\n\n and newline ", {"multiline": False}, "fold tab and newline"),
        ("rtl \u202eevil\u202c", {}, "rtl evil"),
        # mentions
        ("@everyone look", {}, f"@{Z}everyone look"),
        ("x@here", {}, f"x@{Z}here"),
        ("ping @channel and @alice", {}, f"ping @{Z}channel and @{Z}alice"),
        ("mail root@example.org", {}, "mail root@example.org"),
        ("<@123> <@!123> <@&9> <#7>", {}, f"<{Z}@{Z}123> <{Z}@{Z}!123> <{Z}@{Z}&9> <{Z}#7>"),
        ("<!here> <!channel>", {}, f"<{Z}!here> <{Z}!channel>"),
        # markdown
        (
            "**bold** _it_ `code` [l](u) # h > q | ~s~",
            {"markdown": True},
            r"\*\*bold\*\* \_it\_ \`code\` \[l\]\(u\) \# h \> q \| \~s\~",
        ),
        ("**bold**", {}, "**bold**"),
        ("<@1>", {"markdown": True}, f"\\<{Z}@{Z}1\\>"),
        # truncation
        ("x" * 100, {"limit": 20}, "x" * 8 + text.TRUNCATION_MARKER),
        ("short", {"limit": 20}, "short"),
    ],
)
def test_safe(value, kwargs, expected):
    assert text.safe(value, **kwargs) == expected


@pytest.mark.parametrize("limit", [1, 5, 12, 13, 50])
def test_truncate_never_exceeds_limit(limit):
    out = text.truncate("y" * 100, limit)
    assert len(out) <= limit


def test_hostile_input_is_one_bounded_line():
    hostile = b"\x1b[2J@everyone\n<@&1>\xff" + b"A" * 100_000
    out = text.safe(hostile, limit=300, multiline=False, markdown=True)
    assert len(out) <= 300
    assert "\n" not in out and "\x1b" not in out
    assert "@everyone" not in out and "<@" not in out


@pytest.mark.parametrize(
    "lines, kwargs, expected",
    [
        (["a", "b"], {}, "a\nb"),
        (["a", "b"], {"header": "2 events"}, "2 events\na\nb"),
        (["a", "b"], {"total": 5}, "a\nb\n… and 3 more"),
        (
            [f"line {i}" for i in range(10)],
            {"limit": 40, "header": "10 events"},
            "10 events\nline 0\nline 1\n… and 8 more",
        ),
        (
            ["x" * 100, "y"],
            {"limit": 50, "header": "2 events"},
            "2 events\n" + "x" * 16 + text.TRUNCATION_MARKER + "\n… and 1 more",
        ),
        ([], {"total": 3, "header": "3 events"}, "3 events\n… and 3 more"),
    ],
)
def test_digest_body(lines, kwargs, expected):
    assert text.digest_body(lines, **kwargs) == expected


@pytest.mark.parametrize("limit", [30, 60, 100, 2000])
@pytest.mark.parametrize("count", [1, 3, 200])
def test_digest_body_fits_and_accounts(limit, count):
    lines = [f"event number {i} " + "z" * (i % 40) for i in range(count)]
    out = text.digest_body(lines, limit=limit, header=f"{count} events")
    assert len(out) <= limit
    shown = sum(1 for line in out.split("\n") if line.startswith("event number"))
    if shown < count and not out.endswith(text.TRUNCATION_MARKER):
        assert out.endswith(f"and {count - shown} more")
