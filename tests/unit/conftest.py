"""Make the code under test importable without installing anything.

- the collection as ``ansible_collections.secalert.alerting`` (a symlink tree in .cache),
- the ``secalert_apprise`` runtime as the apprise role installs it into the venv's purelib
  (``PURELIB``: plugins/module_utils/secalert_apprise/*.py, linked into one package
  directory in .cache; links to files that are gone are removed),
- the host-side code shipped in role ``files/`` directories,
- the stand-ins for the ``sudo`` and ``syslogng`` modules (unit tests only).
"""

import os
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TREE = os.path.join(ROOT, ".cache", "collections")
LINK = os.path.join(TREE, "ansible_collections", "secalert", "alerting")

PURELIB = os.path.join(ROOT, ".cache", "unit-purelib")
RUNTIME_SOURCES = (os.path.join(ROOT, "plugins", "module_utils", "secalert_apprise"),)


def _link(target, link):
    """Create the symlink ``link`` -> ``target`` (several pytest runs may race here)."""
    try:
        os.symlink(target, link)
    except FileExistsError:
        if os.path.realpath(link) != os.path.realpath(target):
            os.replace(_tmp_link(target, link), link)


def _tmp_link(target, link):
    tmp = f"{link}.{os.getpid()}.tmp"
    os.symlink(target, tmp)
    return tmp


if not os.path.lexists(LINK):
    os.makedirs(os.path.dirname(LINK), exist_ok=True)
    _link(ROOT, LINK)

os.makedirs(os.path.join(PURELIB, "secalert_apprise"), exist_ok=True)
for name in os.listdir(os.path.join(PURELIB, "secalert_apprise")):
    stale = os.path.join(PURELIB, "secalert_apprise", name)
    if os.path.islink(stale) and not os.path.exists(stale):
        try:
            os.unlink(stale)
        except FileNotFoundError:  # another pytest run removed it first
            pass
for source in RUNTIME_SOURCES:
    for name in sorted(os.listdir(source)):
        if name.endswith(".py"):
            _link(os.path.join(source, name), os.path.join(PURELIB, "secalert_apprise", name))

for path in (
    TREE,
    PURELIB,
    os.path.join(ROOT, "roles", "sudo_alerts", "files"),
    os.path.join(ROOT, "roles", "syslog_ng_alerts", "files"),
    os.path.join(os.path.dirname(__file__), "stubs"),
    os.path.join(ROOT, "tests", "receiver"),
):
    if path not in sys.path:
        sys.path.insert(0, path)


@pytest.fixture(scope="module")
def receiver_server():
    """The test receiver (tests/receiver/receiver.py) on 127.0.0.1, free ports."""
    import receiver  # noqa: PLC0415 - found through the path set up above

    srv = receiver.Receiver(bind="127.0.0.1", http_port=0, smtp_port=0, control_port=0,
                            hang_max=5)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture()
def rcv(receiver_server):
    """The receiver, emptied and answering normally, for one test."""
    receiver_server.set_mode("ok")
    receiver_server.store.clear()
    yield receiver_server
    receiver_server.set_mode("ok")
