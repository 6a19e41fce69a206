# Copyright: (c) 2026, secalert.alerting contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make log text safe to post to chat services.

The one implementation shared by the syslog-ng ``apprise()`` destination, the sudo
plugin's direct-mode sender and the ``notify`` module. Standard library only, no state,
safe to import inside sudo or syslog-ng.

Typical use::

    from secalert_apprise import text  # or, in a module, from ..module_utils.secalert_apprise

    title = text.safe(event_title, limit=200, multiline=False)
    body = text.safe(event_body, limit=1900, markdown=True)

    lines = [text.safe(m, limit=300, multiline=False, markdown=True) for m in messages]
    body = text.digest_body(lines, limit=1900, header="5 sudo events")

What ``safe()`` does, in order (each step is also a public function):

1. ``to_text``: bytes are decoded as UTF-8 with invalid sequences replaced (U+FFFD);
   ``None`` becomes ``""``; anything else goes through ``str()``.
2. ``clean``: ANSI/VT escape sequences are removed; CR LF, lone CR and the Unicode line
   and paragraph separators become LF; other control characters (C0, DEL, C1), every
   invisible or format character (Unicode category Cf: zero-width spaces and joiners,
   U+2060, U+FEFF, the soft hyphen, bidirectional controls, tag characters) and the
   characters that render as nothing although they are letters (the Hangul fillers
   U+115F U+1160 U+3164 U+FFA0, U+034F, U+2800) are removed. LF and TAB are kept when
   ``multiline`` is true, otherwise each run of whitespace containing them becomes one
   space.
3. ``escape_markdown`` (only when ``markdown=True``): CommonMark punctuation gets a
   backslash so the text renders literally on Markdown services (Discord, Slack,
   Telegram, Matrix...). Leave it off for plain-text targets (email, JSON), where the
   backslashes would show.
4. ``neutralise_mentions``: ``@everyone``, ``@here``, ``@name`` (but not ``user@host``)
   get a zero-width space after the ``@``; ``<@id>``, ``<@!id>``, ``<@&id>``, ``<#id>``
   and Slack's ``<!here>``/``<!channel>`` get one after the ``<``. The text still reads
   the same; no service turns it into a ping.
5. ``truncate`` (only when ``limit`` is given): the result is at most ``limit``
   characters; when cut, it ends with ``TRUNCATION_MARKER``.
"""

import re
import unicodedata

__all__ = [
    "MORE_MARKER",
    "TRUNCATION_MARKER",
    "ZWSP",
    "clean",
    "digest_body",
    "escape_markdown",
    "neutralise_mentions",
    "remove_invisible",
    "safe",
    "to_text",
    "truncate",
]

ZWSP = "\u200b"
TRUNCATION_MARKER = "…[truncated]"
MORE_MARKER = "… and {n} more"

# ANSI / VT100 escape sequences: CSI (ESC [ or the C1 byte 0x9b), OSC / DCS / PM / APC /
# SOS strings ended by BEL or ST, and the two-character ESC sequences.
_ANSI_RE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
)
_NEWLINES_RE = re.compile(r"\r\n|\r|\u2028|\u2029|\x85")
# C0 controls except TAB and LF, DEL, C1 controls, bidi embeddings/overrides/isolates.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# Letters and marks that render as nothing (category Cf is handled by unicodedata).
_BLANK_LETTERS = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180e\u180f"
                           "\u2800\u3164\uffa0")
_ONELINE_WS_RE = re.compile(r"[ \t]*[\t\n][ \t\n]*")

# The CommonMark set Apprise itself escapes, plus '<' (autolinks, inline HTML).
_MARKDOWN_RE = re.compile(r"([\\_*\[\]()~`>#+=|{}.!<-]|&(?=#?[0-9A-Za-z]{1,32};))")

# '@everyone', '@here', '@channel' wherever they stand; '@name' not preceded by a word
# character (so user@host stays); the bracketed Discord/Slack mention forms.
_AT_RE = re.compile(r"@(?=(?:everyone|here|channel)\b)|(?<![\w.+-])@(?=[\w!&#])", re.I)
_BRACKET_RE = re.compile(r"<(?=[@#!]|\\[@#!])")


def to_text(value):
    """Return ``value`` as ``str``: bytes decoded as UTF-8 (invalid bytes replaced)."""
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, str):
        return value
    return str(value)


def clean(value, multiline=True):
    """Remove escape sequences and control characters from ``value`` (str or bytes).

    With ``multiline`` LF and TAB are kept; without, whitespace runs holding them
    become a single space and the result is stripped.
    """
    s = _ANSI_RE.sub("", to_text(value))
    s = _NEWLINES_RE.sub("\n", s)
    s = _CONTROL_RE.sub("", s)
    s = remove_invisible(s)
    if multiline:
        return s
    return _ONELINE_WS_RE.sub(" ", s).strip()


def remove_invisible(s):
    """``s`` without format (Cf) characters and blank letters (see the module doc)."""
    if s.isascii():
        return s
    return "".join(
        ch for ch in s
        if ch not in _BLANK_LETTERS and unicodedata.category(ch) != "Cf"
    )


def escape_markdown(s):
    """Backslash-escape Markdown punctuation in ``s`` so it renders literally."""
    return _MARKDOWN_RE.sub(r"\\\1", s)


def neutralise_mentions(s):
    """Insert a zero-width space into every mention form so no service pings anyone."""
    s = _BRACKET_RE.sub("<" + ZWSP, s)
    return _AT_RE.sub("@" + ZWSP, s)


def truncate(s, limit, marker=TRUNCATION_MARKER):
    """Return ``s`` cut to at most ``limit`` characters, ending in ``marker`` if cut.

    ``limit`` of ``None`` or below 1 means no limit. A limit shorter than the marker
    cuts without it.
    """
    if limit is None or limit < 1 or len(s) <= limit:
        return s
    if limit <= len(marker):
        return s[:limit]
    return s[: limit - len(marker)].rstrip() + marker


def safe(value, limit=None, multiline=True, markdown=False):
    """Everything above in one call: text fit to put in a title or body.

    ``value``: str, bytes or anything ``str()`` accepts. ``limit``: maximum length of
    the result in characters (``None``: no limit). ``multiline``: keep LF and TAB
    (bodies) or fold to one line (titles, digest lines). ``markdown``: escape Markdown
    for services that render it.
    """
    s = clean(value, multiline=multiline)
    if markdown:
        s = escape_markdown(s)
    s = neutralise_mentions(s)
    return truncate(s, limit)


def digest_body(lines, limit=None, total=None, header=None, more=MORE_MARKER):
    """Join already-safe ``lines`` into one body of at most ``limit`` characters.

    ``total`` is how many events the digest stands for (default ``len(lines)``; it may
    be larger when the caller passes only the first lines). ``header``, if given, is the
    first line. Lines are added in order while they fit; the rest are counted in a last
    line ``more.format(n=...)`` ("… and 12 more"). When not even the first line fits
    whole, it is truncated to fit. The result never exceeds ``limit``.
    """
    lines = list(lines)
    total = len(lines) if total is None else max(total, len(lines))
    out = [header] if header else []
    used = len(header) if header else 0
    for i, line in enumerate(lines):
        sep = 1 if out else 0
        left = total - i - 1
        tail = 1 + len(more.format(n=left)) if left else 0
        if limit is None or used + sep + len(line) + tail <= limit:
            out.append(line)
            used += sep + len(line)
            continue
        if i == 0:
            # Show at least part of the first event rather than only a count.
            tail = 1 + len(more.format(n=left)) if left else 0
            room = limit - used - sep - tail
            if room > 2 * len(TRUNCATION_MARKER):
                out.append(truncate(line, room))
                i += 1
        if total > i:
            out.append(more.format(n=total - i))
        break
    else:
        if total > len(lines):
            out.append(more.format(n=total - len(lines)))
    return truncate("\n".join(out), limit)
