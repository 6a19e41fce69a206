# Copyright: (c) 2026, secalert.alerting contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The delivery ledger: one JSON line per event that Apprise's targets accepted.

Written by the syslog-ng ``apprise()`` destination and by the sudo direct-mode sender,
root-only, and read by ``playbooks/verify.yml`` to confirm delivery: what the targets
took, not a guess. Each line holds the time, the event's tags, the sender the alert
server verified (``origin``, empty for a host's own events) and the title and body as
they were written. ASCII only: a raw U+2028 in a body would end the record for readers
that split on every Unicode line break (``str.splitlines``). Kept to ``max_bytes`` by
one rotation (``.1``).
"""

from __future__ import annotations

import json
import os
import time

BODY_LIMIT = 2000  # characters of a body kept in the ledger


def line(tag, title, body, origin="", now=None):
    """One ledger line (with its newline) for one delivered event."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    return json.dumps({"time": stamp, "tag": tag, "origin": origin, "title": title,
                       "body": body[:BODY_LIMIT]}, ensure_ascii=True) + "\n"


def append(path, lines, max_bytes):
    """Append ``lines`` (from ``line()``) to the ledger at ``path`` in one write, rotating
    it first when it is larger than ``max_bytes``. Its directory is the role's to make.
    Raises OSError (the caller reports it: a ledger never holds delivery back)."""
    if not lines:
        return
    try:
        if os.stat(path).st_size > max_bytes:
            os.replace(path, path + ".1")
    except FileNotFoundError:
        pass
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600)
    try:
        os.write(fd, "".join(lines).encode("ascii"))
    finally:
        os.close(fd)
