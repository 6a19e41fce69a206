"""Direct delivery: a detached sender gets the event on stdin; sudo never waits for it."""

import json
import os
import stat
import time

import pytest
import secalert_sudo_audit as p
import sudo
from conftest import make_plugin, run_accepted, run_rejected

OK = int(sudo.RC.OK)

FAKE_PYTHON = """#!/bin/sh
# Stands in for <venv>/bin/python: records what it got, then dawdles like a slow network.
out={out}/sent.$$
{{
  echo "argv: $*"
  echo "cwd: $(pwd)"
  echo "sid: $(ps -o sid= -p $$ 2>/dev/null || echo unknown) pid: $$"
  echo "env: $(env | grep -v '^PWD=' | sort | tr '\\n' ' ')"
  echo "stdin:"
  cat
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


def wait_for_sent(directory, count=1, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sent = sorted(f for f in os.listdir(directory) if f.startswith("sent.")
                      and not f.endswith(".tmp"))
        if len(sent) >= count:
            return [open(os.path.join(directory, f)).read() for f in sent]
        time.sleep(0.05)
    raise AssertionError(f"sender did not run: {os.listdir(directory)}")


def parse(record):
    head, _, stdin = record.partition("stdin:\n")
    fields = dict(line.split(": ", 1) for line in head.splitlines())
    return fields, [json.loads(line) for line in stdin.splitlines()]


def direct_config(write_config, python, **direct):
    return write_config({"delivery": "direct",
                         "direct": dict({"python": python,
                                         "apprise_config": "/etc/secalert/apprise.yml"},
                                        **direct)})


def test_spawns_detached_sender_with_event_on_stdin(write_config, receiver, fake_python,
                                                    shortdir, monkeypatch):
    monkeypatch.setenv("SECRET_TOKEN", "hunter2")  # sudo's own environment: not passed on
    python = fake_python(sleep=5)
    plugin = make_plugin(direct_config(write_config, python))
    start = time.monotonic()
    assert run_accepted(plugin, ["/bin/bash", "-i"]) == [OK, OK, OK]
    assert time.monotonic() - start < 1.0, "sudo waited for the sender"
    (record,) = wait_for_sent(shortdir)
    fields, events = parse(record)
    assert fields["argv"] == ("-I -m secalert_apprise.send --config /etc/secalert/apprise.yml "
                              "--tag sudo --tag sudo-shell")
    assert fields["cwd"] == "/"
    assert "hunter2" not in record and fields["env"].split() == [
        "HOME=/", "LANG=C.UTF-8", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
    sid, _, pid = fields["sid"].partition(" pid: ")
    if sid != "unknown":
        assert sid.strip() == pid, "sender must lead its own session"
    (event,) = events
    assert (event["command"], event["rule"], event["tags"]) == (
        "/bin/bash", "shell", ["sudo", "sudo-shell"])
    # syslog_copy (default): the event is in syslog as well
    assert [e["rule"] for e in receiver.events()] == ["shell"]


def test_quiet_events_stay_in_syslog(write_config, receiver, fake_python, shortdir):
    plugin = make_plugin(direct_config(write_config, fake_python()))
    run_accepted(plugin, ["/usr/bin/id"])  # "routine": info < min_severity warning
    time.sleep(0.3)
    assert not [f for f in os.listdir(shortdir) if f.startswith("sent.")]
    assert [e["rule"] for e in receiver.events()] == ["routine"]


def test_rejection_is_sent_direct_without_syslog_copy(write_config, receiver, fake_python,
                                                      shortdir):
    path = direct_config(write_config, fake_python(), syslog_copy=False)
    run_rejected(make_plugin(path), ["/usr/bin/cat", "/etc/shadow"])
    (record,) = wait_for_sent(shortdir)
    assert "--tag sudo --tag sudo-denied" in record
    assert parse(record)[1][0]["decision"] == "reject"
    assert receiver.events() == []


@pytest.mark.parametrize("python", ["/nonexistent/venv/bin/python", "/etc/hostname"])
def test_sender_missing_falls_back_to_syslog(write_config, receiver, python):
    path = direct_config(write_config, python, syslog_copy=False)
    assert run_accepted(make_plugin(path), ["/bin/bash"]) == [OK, OK, OK]
    events = receiver.events()
    assert [e["type"] for e in events] == ["fault", "sudo"]
    assert events[0]["where"] == "direct"
    assert events[1]["rule"] == "shell"


def test_sender_missing_with_fail_closed_denies_but_logs(write_config, receiver):
    path = write_config({"delivery": "direct", "fail_closed": True,
                         "direct": {"python": "/nonexistent/python", "syslog_copy": False}})
    # The push alert cannot go out: fail_closed refuses the command (REJECT from the
    # front end's accept), and the event still reaches syslog for the record.
    assert run_accepted(make_plugin(path), ["/bin/bash"]) == [OK, OK, int(sudo.RC.REJECT)]
    assert [e["type"] for e in receiver.events()] == ["fault", "sudo"]


def test_spawn_failure_does_not_leak_descriptors(fake_python, shortdir):
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        with pytest.raises(OSError):
            p.spawn_sender([os.path.join(shortdir, "missing")], b"{}\n")
    assert len(os.listdir("/proc/self/fd")) == before


def test_oversized_payload_is_refused_not_blocking(fake_python):
    start = time.monotonic()
    with pytest.raises(OSError):
        p.spawn_sender([fake_python()], b"x" * (4 * 1024 * 1024))
    assert time.monotonic() - start < 1


def test_spawn_never_forks_python_or_starts_threads(write_config, fake_python, shortdir,
                                                    monkeypatch):
    import threading

    def no_fork():
        raise AssertionError("os.fork() aborts inside sudo")

    monkeypatch.setattr(os, "fork", no_fork)
    threads = threading.active_count()
    run_accepted(make_plugin(direct_config(write_config, fake_python())), ["/bin/sh"])
    assert threading.active_count() == threads
    wait_for_sent(shortdir)
