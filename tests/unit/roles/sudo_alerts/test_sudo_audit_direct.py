"""Direct delivery: the plugin spools the event and starts a sender only when none runs."""

import fcntl
import json
import os
import stat
import time

import pytest
import sudo
from conftest import USER_INFO, make_plugin, run_accepted, run_rejected
from secalert_sudo import delivery

OK = int(sudo.RC.OK)

FAKE_PYTHON = """#!/bin/sh
# Stands in for <venv>/bin/python: records what it got, then dawdles like a slow network.
out={out}/sent.$$
{{
  echo "argv: $*"
  echo "cwd: $(pwd)"
  echo "sid: $(ps -o sid= -p $$ 2>/dev/null || echo unknown) pid: $$"
  echo "env: $(env | grep -v '^PWD=' | sort | tr '\\n' ' ')"
}} > "$out.tmp"
mv "$out.tmp" "$out"
sleep {sleep}
"""


@pytest.fixture
def fake_python(shortdir):
    def make(sleep=0):
        path = os.path.join(shortdir, "python")
        with open(path, "w") as fh:
            fh.write(FAKE_PYTHON.format(out=shortdir, sleep=sleep))
        os.chmod(path, stat.S_IRWXU)
        return path

    return make


def sent_records(directory):
    return sorted(f for f in os.listdir(directory) if f.startswith("sent.")
                  and not f.endswith(".tmp"))


def wait_for_sent(directory, count=1, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sent = sent_records(directory)
        if len(sent) >= count:
            return [open(os.path.join(directory, f)).read() for f in sent]
        time.sleep(0.05)
    raise AssertionError(f"sender did not run: {os.listdir(directory)}")


def spooled(shortdir):
    try:
        with open(os.path.join(shortdir, "spool"), encoding="ascii") as fh:
            return [json.loads(line) for line in fh]
    except FileNotFoundError:
        return []


def direct_config(write_config, shortdir, python, **direct):
    return write_config({"delivery": "direct",
                         "direct": dict({"python": python,
                                         "apprise_config": "/etc/secalert/apprise.yml",
                                         "spool": os.path.join(shortdir, "spool"),
                                         "lock": os.path.join(shortdir, "lock")},
                                        **direct)})


def test_spools_event_and_starts_detached_sender(write_config, receiver, fake_python,
                                                 shortdir, monkeypatch):
    monkeypatch.setenv("SECRET_TOKEN", "hunter2")  # sudo's own environment: not passed on
    plugin = make_plugin(direct_config(write_config, shortdir, fake_python(sleep=5)))
    start = time.monotonic()
    assert run_accepted(plugin, ["/bin/bash", "-i"]) == [OK, OK, OK]
    assert time.monotonic() - start < 1.0, "sudo waited for the sender"
    (record,) = wait_for_sent(shortdir)
    head = dict(line.split(": ", 1) for line in record.splitlines())
    assert head["argv"] == ("-I /usr/libexec/secalert/secalert_sudo_send.py "
                            "--config /etc/secalert/apprise.yml "
                            f"--spool {shortdir}/spool --lock {shortdir}/lock "
                            "--rate-limit 5 --rate-period 60 "
                            "--state /run/secalert/sudo-sender.rate "
                            "--ledger /var/log/secalert/sudo-delivered.log")
    assert head["cwd"] == "/"
    assert "hunter2" not in record and head["env"].split() == [
        "HOME=/", "LANG=C.UTF-8", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
    sid, _unused, pid = head["sid"].partition(" pid: ")
    if sid != "unknown":
        assert sid.strip() == pid, "sender must lead its own session"
    (event,) = spooled(shortdir)
    assert (event["command"], event["rule"], event["tags"]) == (
        "/bin/bash", "shell", ["sudo", "sudo-shell"])
    assert stat.S_IMODE(os.stat(os.path.join(shortdir, "spool")).st_mode) == 0o600
    # syslog_copy (default): the event is in syslog as well
    assert [e["rule"] for e in receiver.events()] == ["shell"]


def test_no_second_sender_while_one_runs(write_config, receiver, fake_python, shortdir):
    path = direct_config(write_config, shortdir, fake_python())
    fd = os.open(os.path.join(shortdir, "lock"), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a sender is draining
    try:
        for _unused in range(5):
            run_accepted(make_plugin(path), ["/bin/sh"])
        time.sleep(0.3)
        assert sent_records(shortdir) == []
        assert len(spooled(shortdir)) == 5
    finally:
        os.close(fd)
    run_accepted(make_plugin(path), ["/bin/sh"])  # lock free again: one sender
    wait_for_sent(shortdir)
    assert len(spooled(shortdir)) == 6


def test_quiet_events_stay_in_syslog(write_config, receiver, fake_python, shortdir):
    plugin = make_plugin(direct_config(write_config, shortdir, fake_python()))
    run_accepted(plugin, ["/usr/bin/id"])  # "routine": info < min_severity warning
    time.sleep(0.3)
    assert sent_records(shortdir) == [] and spooled(shortdir) == []
    assert [e["rule"] for e in receiver.events()] == ["routine"]


def test_rejection_is_sent_direct_without_syslog_copy(write_config, receiver, fake_python,
                                                      shortdir):
    path = direct_config(write_config, shortdir, fake_python(), syslog_copy=False)
    run_rejected(make_plugin(path), ["/usr/bin/cat", "/etc/shadow"])
    wait_for_sent(shortdir)
    (event,) = spooled(shortdir)
    assert (event["decision"], event["tags"]) == ("reject", ["sudo", "sudo-denied"])
    assert receiver.events() == []


@pytest.mark.parametrize("python", ["/nonexistent/venv/bin/python", "/etc/hostname"])
def test_sender_missing_falls_back_to_syslog(write_config, receiver, shortdir, python):
    path = direct_config(write_config, shortdir, python, syslog_copy=False)
    assert run_accepted(make_plugin(path), ["/bin/bash"]) == [OK, OK, OK]
    events = receiver.events()
    assert [e["type"] for e in events] == ["fault", "sudo"]
    assert events[0]["where"] == "direct" and "sender not started" in events[0]["error"]
    assert events[1]["rule"] == "shell"
    assert len(spooled(shortdir)) == 1  # still queued for the next sender


@pytest.mark.parametrize("problem", ["full", "mode", "symlink", "directory"])
def test_spool_problems_fall_back_to_syslog(write_config, receiver, fake_python, shortdir,
                                            problem):
    spool = os.path.join(shortdir, "spool")
    extra = {}
    if problem == "full":
        with open(spool, "w") as fh:
            fh.write("x" * 100)
        os.chmod(spool, 0o600)
        extra = {"spool_max_bytes": 120}
    elif problem == "mode":
        with open(spool, "w"):
            pass
        os.chmod(spool, 0o644)
    elif problem == "symlink":
        os.symlink("/etc/passwd", spool)
    else:
        os.mkdir(spool)
    path = direct_config(write_config, shortdir, fake_python(), syslog_copy=False, **extra)
    assert run_accepted(make_plugin(path), ["/bin/bash"]) == [OK, OK, OK]
    events = receiver.events()
    assert [e["type"] for e in events] == ["fault", "sudo"], events
    assert "event not queued" in events[0]["error"]
    time.sleep(0.2)
    assert sent_records(shortdir) == []


@pytest.mark.parametrize("syslog_works", [True, False])
def test_fail_closed_counts_syslog_as_delivered(write_config, receiver, shortdir, syslog_works):
    syslog = {} if syslog_works else {"socket": os.path.join(shortdir, "nolog")}
    path = write_config({"delivery": "direct", "fail_closed": True, "syslog": syslog,
                         "direct": {"python": "/nonexistent/python", "syslog_copy": False,
                                    "spool": os.path.join(shortdir, "spool"),
                                    "lock": os.path.join(shortdir, "lock")}})
    # The push alert cannot go out. The event reached syslog: delivered, the command
    # runs. Only when syslog fails too does fail_closed refuse it (REJECT from the front
    # end's accept).
    rcs = run_accepted(make_plugin(path), ["/bin/bash"])
    assert rcs == [OK, OK, OK if syslog_works else int(sudo.RC.REJECT)]
    assert [e["type"] for e in receiver.events()] == (["fault", "sudo"] if syslog_works
                                                      else [])


def test_one_uid_cannot_fill_the_spool_for_everyone(write_config, receiver, fake_python,
                                                    shortdir):
    """A user who floods sudo (refused calls) uses up only their share; root still queues."""
    path = direct_config(write_config, shortdir, fake_python(), syslog_copy=False,
                         spool_max_bytes=64 * 1024, spool_uid_bytes=16 * 1024)
    lock = os.open(os.path.join(shortdir, "lock"), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)  # a sender is busy: nothing drains the spool
    mallory = tuple(x for x in USER_INFO if not x.startswith(("user=", "uid=")))
    mallory += ("user=mallory", "uid=1001")
    root = tuple(x for x in USER_INFO if not x.startswith(("user=", "uid=")))
    root += ("user=root", "uid=0")
    try:
        for index in range(60):
            assert run_rejected(make_plugin(path, user_info=mallory),
                                ["/usr/bin/cat", f"/etc/shadow{index}"]) == [OK, OK]
        queued = spooled(shortdir)
        size = os.path.getsize(os.path.join(shortdir, "spool"))
        assert size <= 16 * 1024 and 0 < len(queued) < 60
        receiver.events()
        assert run_accepted(make_plugin(path, user_info=root), ["/bin/bash"]) == [OK, OK, OK]
        assert spooled(shortdir)[-1]["user"] == "root"
        # root's event went into the spool, not to syslog; syslog got at most the report
        # of mallory's lines that the receiver's full queue refused
        assert [e.get("where") for e in receiver.events()] in ([], ["syslog"])
    finally:
        os.close(lock)
    # mallory's overflow is not lost: it went to syslog, with a fault saying why
    run_rejected(make_plugin(path, user_info=mallory), ["/usr/bin/cat", "/etc/shadow"])
    events = receiver.events()
    assert [e["type"] for e in events] == ["fault", "sudo"], events
    assert "share of uid 1001 used up" in events[0]["error"]


def test_spawn_failure_does_not_leak_descriptors(shortdir):
    before = len(os.listdir("/proc/self/fd"))
    for _unused in range(20):
        with pytest.raises(OSError):
            delivery.spawn_sender([os.path.join(shortdir, "missing")])
        delivery.sender_running(os.path.join(shortdir, "lock"))
        delivery.spool_event(os.path.join(shortdir, "spool"), "{}", 1 << 20)
    assert len(os.listdir("/proc/self/fd")) == before


def test_oversized_payload_is_refused_not_blocking(fake_python):
    start = time.monotonic()
    with pytest.raises(OSError):
        delivery.spawn_sender([fake_python()], b"x" * (4 * 1024 * 1024))
    assert time.monotonic() - start < 1


def test_spawn_never_forks_python_or_starts_threads(write_config, fake_python, shortdir,
                                                    monkeypatch):
    import threading

    def no_fork():
        raise AssertionError("os.fork() aborts inside sudo")

    monkeypatch.setattr(os, "fork", no_fork)
    threads = threading.active_count()
    run_accepted(make_plugin(direct_config(write_config, shortdir, fake_python())), ["/bin/sh"])
    assert threading.active_count() == threads
    wait_for_sent(shortdir)


WRITER = """
import json, sys
from secalert_sudo import config, delivery
config.TRUSTED_UID = int(sys.argv[3])
for index in range(int(sys.argv[2])):
    delivery.spool_event(sys.argv[1], json.dumps({"w": int(sys.argv[4]), "i": index}), 1 << 30)
"""


def test_spool_protocol_loses_nothing_under_concurrency(shortdir):
    """Writers append while a drainer swaps the spool away: every line arrives once."""
    import subprocess
    import sys

    import secalert_sudo_send as send

    spool = os.path.join(shortdir, "spool")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(delivery.__file__)))
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, spool, "300",
                                 str(os.getuid()), str(tag)], env=env)
               for tag in range(4)]
    seen = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        alive = any(proc.poll() is None for proc in writers)
        events, bad = send.take_spool(spool)
        assert bad == 0
        seen += events
        if not alive and not events:
            break
    for proc in writers:
        assert proc.wait(10) == 0
    seen += send.take_spool(spool)[0]
    assert sorted((e["w"], e["i"]) for e in seen) == [
        (w, i) for w in range(4) for i in range(300)]
