"""Fixtures for the sudo audit plugin: a syslog receiver, a config file, a fake sudo run."""

import json
import os
import shutil
import socket
import tempfile

import pytest
import sudo
from secalert_sudo import config
from secalert_sudo.plugin import SecalertAuditPlugin


class SyslogReceiver:
    """A datagram socket standing in for /dev/log (short path: AF_UNIX limits it)."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setblocking(False)

    def frames(self):
        out = []
        for _unused in range(10000):
            try:
                out.append(self.sock.recv(65536))
            except BlockingIOError:
                break
        return out

    def events(self):
        """Parsed JSON payloads of every frame received so far."""
        result = []
        for frame in self.frames():
            header, _unused, payload = frame.decode("utf-8").partition(": ")
            assert header.startswith("<") and "secalert-sudo[" in header, frame
            result.append(json.loads(payload))
        return result

    def close(self):
        self.sock.close()


@pytest.fixture
def shortdir():
    path = tempfile.mkdtemp(prefix="sa", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def receiver(shortdir):
    rcv = SyslogReceiver(os.path.join(shortdir, "log"))
    yield rcv
    rcv.close()


@pytest.fixture(autouse=True)
def _isolate(monkeypatch, receiver, shortdir):
    # The config must be owned by root on hosts; here by whoever runs the tests.
    monkeypatch.setattr(config, "TRUSTED_UID", os.getuid())
    # Fallback settings (used when the config is broken) must not reach the host's
    # /dev/log or /run either.
    monkeypatch.setitem(config.DEFAULT_SETTINGS, "syslog", dict(
        config.DEFAULT_SETTINGS["syslog"], socket=receiver.path,
        root_socket=os.path.join(shortdir, "no-root-socket"),
        drop_counter=os.path.join(shortdir, "drops")))
    sudo.reset()
    yield
    # No callback may ever let an exception reach sudo (it would print a traceback).
    assert not [entry for entry in sudo.LOG if entry[0] == "traceback"], sudo.LOG


@pytest.fixture
def write_config(shortdir, receiver):
    """write_config(dict) -> path of a config whose syslog goes to the test receiver."""

    def write(settings=None, raw=None):
        path = os.path.join(shortdir, "sudo_alerts.json")
        data = dict(settings or {})
        syslog = dict(data.get("syslog", {}))
        syslog.setdefault("socket", receiver.path)
        syslog.setdefault("root_socket", os.path.join(shortdir, "no-root-socket"))
        syslog.setdefault("drop_counter", os.path.join(shortdir, "drops"))
        data["syslog"] = syslog
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(raw if raw is not None else json.dumps(data))
        os.chmod(path, 0o600)
        return path

    return write


USER_INFO = ("user=alice", "uid=1000", "gid=1000", "groups=1000,27", "cwd=/home/alice",
             "tty=/dev/pts/3", "host=web1", "pid=4242")
SETTINGS = ("runas_user=root",)


def make_plugin(config_path, extra_options=(), user_info=USER_INFO, settings=SETTINGS):
    options = ("ModulePath=/x/secalert_sudo_audit.py", "ClassName=SecalertAuditPlugin",
               "Config=" + config_path) + tuple(extra_options)
    return SecalertAuditPlugin(
        version="1.0", settings=settings, user_info=user_info,
        user_env=("SECRET_TOKEN=hunter2", "PATH=/usr/bin"), plugin_options=options)


def command_info(command="/usr/bin/id", **extra):
    info = {"command": command, "runas_uid": "0", "runas_gid": "0", "cwd": "/home/alice"}
    info.update(extra)
    return tuple(f"{k}={v}" for k, v in info.items())


def run_accepted(plugin, argv, command=None, status=0, cwd="/home/alice"):
    """Drive the callbacks the way sudo 1.9.13 does for an accepted command."""
    argv = tuple(argv)
    info = command_info(command or argv[0], cwd=cwd)
    rcs = [sudo.call(plugin, "open", 1, ("sudo",) + argv)]
    rcs.append(sudo.call(plugin, "accept", "sudoers_policy", int(sudo.PLUGIN_TYPE.POLICY),
                         info, argv, ("SECRET_TOKEN=hunter2",)))
    rcs.append(sudo.call(plugin, "accept", "sudo", int(sudo.PLUGIN_TYPE.SUDO), info, argv,
                         ("SECRET_TOKEN=hunter2",)))
    plugin.close(int(sudo.EXIT_REASON.WAIT_STATUS), status)
    return rcs


def run_rejected(plugin, argv, reason="command not allowed", decision="reject"):
    argv = tuple(argv)
    rcs = [sudo.call(plugin, "open", 1, ("sudo",) + argv)]
    rcs.append(sudo.call(plugin, decision, "sudoers_policy", int(sudo.PLUGIN_TYPE.POLICY),
                         reason, command_info(argv[0])))
    plugin.close(int(sudo.EXIT_REASON.NO_STATUS), 0)
    return rcs


def sub_info(command, cwd="/home/alice"):
    """command_info of a command run inside the accepted one, as sudo 1.9.16 passes it
    (log_subcmds/intercept: ``runcwd``, no ``cwd``)."""
    return ("runas_user=root", "runas_uid=0", "runas_gid=0", "log_subcmds=true",
            f"command={command}", f"runcwd={cwd}")


def run_with_subcommands(plugin, argv, subcommands, intercept=False, status=0):
    """Drive the callbacks as sudo 1.9.16p2 did (probed with log_subcmds, intercept_type
    dso): the command's policy and front-end accepts, then per subcommand a front-end
    accept (with intercept, after the policy's own accept of it), or with intercept a
    policy reject ``("deny", command)`` with only the command in command_info and no
    argv; close once, at the end."""
    argv = tuple(argv)
    info = command_info(argv[0])
    rcs = [sudo.call(plugin, "open", 1, ("sudo",) + argv)]
    rcs.append(sudo.call(plugin, "accept", "sudoers_policy", int(sudo.PLUGIN_TYPE.POLICY),
                         info, argv, ("SECRET_TOKEN=hunter2",)))
    rcs.append(sudo.call(plugin, "accept", "sudo", int(sudo.PLUGIN_TYPE.SUDO), info, argv,
                         ("SECRET_TOKEN=hunter2",)))
    for sub in subcommands:
        if sub[0] == "deny":
            rcs.append(sudo.call(plugin, "reject", "sudoers_policy",
                                 int(sudo.PLUGIN_TYPE.POLICY), "command not allowed",
                                 (f"command={sub[1]}", "runas_user=root", "intercept=true")))
            continue
        sub_argv, cwd = (tuple(sub[0]), sub[1]) if isinstance(sub[0], (list, tuple)) else (
            tuple(sub), "/home/alice")
        sinfo = sub_info(sub_argv[0], cwd)
        if intercept:
            rcs.append(sudo.call(plugin, "accept", "sudoers_policy",
                                 int(sudo.PLUGIN_TYPE.POLICY), sinfo, sub_argv, ()))
        rcs.append(sudo.call(plugin, "accept", "sudo", int(sudo.PLUGIN_TYPE.SUDO), sinfo,
                             sub_argv, ("SECRET_TOKEN=hunter2",)))
    plugin.close(int(sudo.EXIT_REASON.WAIT_STATUS), status)
    return rcs
