"""How many events notifications stand for.

A digest says its count in its title, in one of the two forms of
plugins/module_utils/secalert_apprise/render.py: DIGEST_TITLE "N events: ..." (the
syslog-ng destination, on a host or the alert server) and SUDO_DIGEST_TITLE
"[severity] sudo: N events on HOST (...)" (the sudo plugin's direct sender). Any other
notification is one event.
"""

import re

DIGEST_TITLE = re.compile(r"^(\d+) events: ")
SUDO_DIGEST_TITLE = re.compile(r"^\[[^\]]*\] sudo: (\d+) events on ")


def events_in(message):
    """The events one stored notification (a receiver message) stands for."""
    title = message.get("title") or ""
    for pattern in (DIGEST_TITLE, SUDO_DIGEST_TITLE):
        match = pattern.match(title)
        if match:
            return int(match.group(1))
    return 1


def counted_events(messages):
    """The events these notifications stand for: a digest counts N, any other one 1."""
    return sum(events_in(message) for message in messages)
