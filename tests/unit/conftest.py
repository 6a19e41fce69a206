"""Make the code under test importable without installing anything.

- the collection as ``ansible_collections.secalert.alerting`` (a symlink tree in .cache),
- the host-side code shipped in role ``files/`` directories,
- the stand-ins for the ``sudo`` and ``syslogng`` modules (unit tests only).
"""

import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TREE = os.path.join(ROOT, ".cache", "collections")
LINK = os.path.join(TREE, "ansible_collections", "secalert", "alerting")

if not os.path.lexists(LINK):
    os.makedirs(os.path.dirname(LINK), exist_ok=True)
    os.symlink(ROOT, LINK)

for path in (
    TREE,
    os.path.join(ROOT, "roles", "apprise", "files"),
    os.path.join(ROOT, "roles", "sudo_alerts", "files"),
    os.path.join(ROOT, "roles", "syslog_ng_alerts", "files"),
    os.path.join(os.path.dirname(__file__), "stubs"),
):
    if path not in sys.path:
        sys.path.insert(0, path)
