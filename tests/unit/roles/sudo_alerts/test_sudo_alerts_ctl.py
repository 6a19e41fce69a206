"""sudo-alerts-ctl's reading of sudo.conf (status, enable --check, disable --check).

Mostly the paths that never run sudo: the proof and the rollback are exercised on real
sudo in the Molecule scenario. The guard's decision is tested here too, with a stand-in
`sudo` first on PATH that fails while our line is active (a plugin that breaks sudo).
The script insists on root, so these tests need it too.
"""

import os
import subprocess

import pytest

CTL = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "roles", "sudo_alerts",
                   "files", "sudo-alerts-ctl")
MODULE = "/usr/libexec/secalert/secalert_sudo_audit.py"
LINE = (f"Plugin python_audit /usr/libexec/secalert/python_plugin.so ModulePath={MODULE} "
        "ClassName=SecalertAuditPlugin Config=/etc/secalert/sudo_alerts.json")
OTHER = "Plugin sudoers_policy sudoers.so"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="sudo-alerts-ctl runs as root only")


def ctl(tmp_path, content, *args, path=None):
    conf = tmp_path / "sudo.conf"
    if content is not None:
        conf.write_text(content)
    env = dict(os.environ, SECALERT_SUDO_CONF=str(conf), SECALERT_SUDO_LOCK=str(tmp_path / "l"),
               SECALERT_SUDO_KEYFILE=str(tmp_path / "no-key"))
    if path:
        env["PATH"] = f"{path}:{env['PATH']}"
    proc = subprocess.run(["sh", CTL, *args], capture_output=True, text=True, env=env,
                          timeout=30, check=False)
    return proc, (conf.read_text() if conf.exists() else None)


@pytest.mark.parametrize("content, status", [
    (None, "absent"),
    ("# Plugin sudoers_policy sudoers.so\n", "absent"),
    (f"{OTHER}\n{LINE}\n", "enabled"),
    (f"  {LINE}\n", "enabled"),
    (f"#secalert-disabled# {LINE}\n", "disabled"),
    (f"# {LINE}\n", "disabled"),
    (LINE.replace(MODULE, "/elsewhere/x.py") + "\n", "absent"),
])
def test_status(tmp_path, content, status):
    proc, _unused = ctl(tmp_path, content, "status")
    assert proc.stdout.strip() == status


@pytest.mark.parametrize("content, expected", [
    (f"{OTHER}\n{LINE}\n", "unchanged"),
    (f"{OTHER}\n#secalert-disabled# {LINE}\n", "changed"),
    (f"{OTHER}\n{LINE} FailClosed=yes\n", "changed"),
    (f"{OTHER}\n", "changed"),
    (None, "changed"),
])
def test_enable_check_never_writes(tmp_path, content, expected):
    proc, after = ctl(tmp_path, content, "enable", "--check", LINE)
    assert (proc.returncode, proc.stdout.strip()) == (0, expected), proc.stderr
    assert after == content


@pytest.mark.parametrize("content, expected", [
    (f"{OTHER}\n{LINE}\n", "changed"),
    (f"{OTHER}\n#secalert-disabled# {LINE}\n", "unchanged"),
    (f"{OTHER}\n", "unchanged"),
])
def test_disable_check_never_writes(tmp_path, content, expected):
    proc, after = ctl(tmp_path, content, "disable", "--check")
    assert proc.stdout.strip() == expected
    assert after == content


@pytest.mark.parametrize("line", [
    "Plugin python_audit /tmp/evil.so ModulePath=/tmp/evil.py ClassName=X",
    "Plugin sudoers_policy sudoers.so",
])
def test_enable_refuses_lines_that_are_not_ours(tmp_path, line):
    proc, after = ctl(tmp_path, f"{OTHER}\n", "enable", line)
    assert proc.returncode == 2 and "refusing" in proc.stderr
    assert after == f"{OTHER}\n"


def test_disable_comments_out_only_our_line(tmp_path):
    before = f"# comment\n{OTHER}\n{LINE}\nPath askpass /usr/bin/ssh-askpass\n"
    proc, after = ctl(tmp_path, before, "disable", "testing")
    assert proc.returncode == 0 and proc.stdout.strip() == "changed", proc.stderr
    assert after == before.replace(LINE, f"#secalert-disabled# {LINE}")
    assert not os.path.exists(tmp_path / "sudo.conf.secalert-prev")


@pytest.fixture
def broken_sudo(tmp_path):
    """A stand-in sudo that refuses every command while our plugin line is active."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "sudo"
    fake.write_text(
        "#!/bin/sh\n"
        f"grep -q '^Plugin python_audit .*ModulePath={MODULE}' \"$SECALERT_SUDO_CONF\" "
        "&& { echo 'sudo: secalert: command denied' >&2; exit 1; }\n"
        "exit 0\n"
    )
    fake.chmod(0o755)
    return str(bindir)


def test_guard_disables_a_line_that_breaks_sudo(tmp_path, broken_sudo):
    proc, after = ctl(tmp_path, f"{OTHER}\n{LINE}\n", "guard", "--from", "test", path=broken_sudo)
    assert proc.returncode == 0, proc.stderr
    assert "disabled the secalert sudo audit plugin" in proc.stderr
    assert after == f"{OTHER}\n#secalert-disabled# {LINE}\n"


def test_guard_leaves_a_fail_closed_line_alone(tmp_path, broken_sudo):
    before = f"{OTHER}\n{LINE} FailClosed=yes\n"
    proc, after = ctl(tmp_path, before, "guard", "--from", "test", path=broken_sudo)
    assert proc.returncode == 1
    assert "FailClosed=yes, so it stays" in proc.stderr, proc.stderr
    assert after == before
