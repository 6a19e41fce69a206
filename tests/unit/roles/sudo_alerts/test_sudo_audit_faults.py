"""Every fault path: sudo keeps working (fail open), or denies only when fail_closed."""

import errno
import importlib
import os
import socket
import sys
import time

import pytest
import sudo
from conftest import SyslogReceiver, command_info, make_plugin, run_accepted, run_rejected
from secalert_sudo import config, delivery
from secalert_sudo import plugin as plugin_mod

OK, REJECT, ERROR = int(sudo.RC.OK), int(sudo.RC.REJECT), int(sudo.RC.ERROR)


def faults(receiver):
    return [e for e in receiver.events() if e["type"] == "fault"]


@pytest.mark.parametrize("setup", ["missing", "invalid-json", "bad-rule", "world-writable",
                                   "directory"])
def test_broken_config_falls_back_to_defaults_and_reports(write_config, receiver, shortdir,
                                                          setup):
    path = write_config(raw="{}")
    if setup == "missing":
        os.unlink(path)
    elif setup == "invalid-json":
        write_config(raw='{"rules": [')
    elif setup == "bad-rule":
        write_config(raw='{"rules": [{"match": {"args": "("}}]}')
    elif setup == "world-writable":
        os.chmod(path, 0o666)  # noqa: S103 - the fault under test
    elif setup == "directory":
        os.unlink(path)
        os.mkdir(path)
    plugin = make_plugin(path)
    assert run_accepted(plugin, ["/bin/bash"]) == [OK, OK, OK]
    events = receiver.events()
    assert [e["type"] for e in events] == ["fault", "sudo"]
    assert events[0]["where"] == "config" and "built-in rules" in events[0]["error"]
    assert events[1]["rule"] == "shell"  # the shipped defaults still apply
    assert not [entry for entry in sudo.LOG if entry[0] in ("error", "errstr")]


@pytest.mark.parametrize("how", ["plugin-option", "config-file"])
def test_fail_closed_denies_when_config_broken(write_config, receiver, how):
    path = write_config(raw="nonsense")
    plugin = make_plugin(path, extra_options=("FailClosed=yes",) if how == "plugin-option"
                         else ())
    rc = sudo.call(plugin, "open", 1, ("sudo", "/usr/bin/id"))
    if how == "plugin-option":
        assert rc == ERROR  # ERROR, not REJECT: REJECT would just unload the plugin
        assert ("errstr", "secalert: the alerting configuration is broken; command denied "
                          "(fail_closed)") in sudo.LOG
    else:
        assert rc == OK  # fail_closed in an unreadable file cannot be known: fail open
    assert faults(receiver)[0]["fail_closed"] is (how == "plugin-option")


def test_fail_closed_from_config_file(write_config):
    plugin = make_plugin(write_config({"fail_closed": True, "syslog": {"socket": "/nonexist"}}))
    assert sudo.call(plugin, "open", 1, ("sudo", "/usr/bin/id")) == OK
    info = command_info()
    assert sudo.call(plugin, "accept", "sudoers_policy", 1, info, ("/usr/bin/id",), ()) == OK
    # the event cannot be delivered: the front end's accept is refused
    assert sudo.call(plugin, "accept", "sudo", 0, info, ("/usr/bin/id",), ()) == REJECT


def test_exception_in_init_disables_plugin_for_invocation(write_config, receiver,
                                                          monkeypatch):
    def boom(path):
        raise MemoryError("simulated")

    monkeypatch.setattr(config, "load_settings", boom)
    plugin = make_plugin(write_config())
    assert sudo.call(plugin, "open", 1, ("sudo", "/usr/bin/id")) == REJECT
    (fault,) = faults(receiver)
    assert fault["where"] == "open" and "MemoryError: simulated" in fault["error"]


def test_exception_in_init_with_fail_closed_denies(write_config, monkeypatch):
    monkeypatch.setattr(config, "load_settings", lambda path: 1 / 0)
    plugin = make_plugin(write_config(), extra_options=("FailClosed=yes",))
    assert sudo.call(plugin, "open", 1, ("sudo", "/usr/bin/id")) == ERROR


def test_exception_in_open_disables_plugin(write_config, receiver):
    plugin = make_plugin(write_config())
    assert sudo.call(plugin, "open", "not-an-int", ("sudo",)) == REJECT
    assert faults(receiver)[0]["where"] == "open"


@pytest.mark.parametrize("callback", ["accept", "reject", "error", "close"])
def test_exception_inside_callbacks_fails_open(write_config, receiver, monkeypatch, callback):
    plugin = make_plugin(write_config({"close_events": True}))

    def broken(*args, **kwargs):
        raise RuntimeError("bug in build_event")

    monkeypatch.setattr(plugin, "build_event", broken)
    if callback in ("accept", "close"):
        rcs = run_accepted(plugin, ["/usr/bin/id"])
    else:
        rcs = run_rejected(plugin, ["/usr/bin/id"], decision=callback)
    assert set(rcs) == {OK}
    assert faults(receiver)[0]["error"].startswith("RuntimeError: bug in build_event")


def test_garbage_arguments_from_sudo_never_raise(write_config):
    plugin = make_plugin(write_config({"close_events": True}))
    assert sudo.call(plugin, "open", 0, ()) == OK
    assert sudo.call(plugin, "accept", None, 0, None, None, None) == OK
    assert sudo.call(plugin, "reject", None, 1, None, None) == OK
    assert sudo.call(plugin, "error", "x", 1, "\udcff", ("junk", 5, None)) == OK
    assert plugin.close(99, -1) is None


def test_module_imports_without_sudo(monkeypatch):
    monkeypatch.setitem(sys.modules, "sudo", None)  # "import sudo" raises ImportError
    module = importlib.reload(plugin_mod)
    try:
        assert module.sudo is None
        assert callable(module.SecalertAuditPlugin.accept)
    finally:
        monkeypatch.undo()
        importlib.reload(plugin_mod)


# -- syslog transport ------------------------------------------------------------------


def test_syslog_socket_missing_is_counted(shortdir):
    counter = os.path.join(shortdir, "sub", "drops")
    for _unused in range(3):
        assert delivery.send_syslog(b"x", os.path.join(shortdir, "nope")) == "ENOENT"
        delivery.bump_counter(counter)
    assert delivery.drop_count(counter) == 3


def test_events_prefer_the_root_socket_and_fall_back(receiver, write_config, shortdir):
    root = SyslogReceiver(os.path.join(shortdir, "root"))
    try:
        path = write_config({"syslog": {"root_socket": root.path}})
        run_accepted(make_plugin(path), ["/usr/bin/id"])
        assert [e["command"] for e in root.events()] == ["/usr/bin/id"]
        assert receiver.events() == []
    finally:
        root.close()
    # syslog-ng stopped: the socket file stays, nobody reads it -> /dev/log gets the event
    run_accepted(make_plugin(path), ["/usr/bin/true"])
    assert [e["command"] for e in receiver.events()] == ["/usr/bin/true"]
    assert delivery.drop_count(os.path.join(shortdir, "drops")) == 0


def test_syslog_daemon_stopped_leaves_stale_socket(shortdir):
    path = os.path.join(shortdir, "stale")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.close()  # the socket file stays, nobody listens
    assert delivery.send_syslog(b"x", path) == "ECONNREFUSED"


def test_full_datagram_queue_never_blocks(receiver, write_config, shortdir):
    # Fill the receiver's queue (a stuck syslog daemon), then run sudo twenty times.
    filler = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    for _unused in range(100000):
        try:
            filler.sendto(b"f" * 200, socket.MSG_DONTWAIT, receiver.path)
        except BlockingIOError:
            break
    else:
        pytest.fail("queue never filled")
    path = write_config()
    start = time.monotonic()
    for _unused in range(20):
        assert run_accepted(make_plugin(path), ["/usr/bin/id"]) == [OK, OK, OK]
    assert time.monotonic() - start < 2
    assert delivery.drop_count(os.path.join(shortdir, "drops")) == 20
    filler.close()


def test_stream_socket_is_used_without_blocking(shortdir):
    path = os.path.join(shortdir, "stream")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    assert delivery.send_syslog(b"<86>hello", path) is None
    conn, _unused = server.accept()
    conn.settimeout(2)
    assert conn.recv(100) == b"<86>hello\0"
    conn.close()
    server.close()


def test_stuck_stream_socket_never_blocks(shortdir):
    path = os.path.join(shortdir, "stuck")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(0)  # never accepts: the backlog fills up
    start = time.monotonic()
    results = [delivery.send_syslog(b"x" * 100, path) for _unused in range(50)]
    assert time.monotonic() - start < 1
    assert {"EAGAIN"} & set(results)
    server.close()


def test_fault_report_failure_stays_silent(write_config, monkeypatch):
    plugin = make_plugin(write_config())

    def broken(*args):
        raise OSError(errno.EIO, "disk on fire")

    monkeypatch.setattr(delivery, "send_syslog", broken)
    plugin._fault("test", "whatever")  # must not raise
    assert run_accepted(plugin, ["/usr/bin/id"]) == [OK, OK, OK]
