"""sudo-alerts-ctl's reading of sudo.conf (status, enable --check, disable --check).

Only the paths that never run sudo: the proof and the rollback are exercised on real sudo
in the Molecule scenario. The script insists on root, so these tests need it too.
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


def ctl(tmp_path, content, *args):
    conf = tmp_path / "sudo.conf"
    if content is not None:
        conf.write_text(content)
    env = dict(os.environ, SECALERT_SUDO_CONF=str(conf), SECALERT_SUDO_LOCK=str(tmp_path / "l"))
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
