"""sudo-alerts-ctl: its reading of sudo.conf, its failure paths and its status events.

The proof and the rollback run on real sudo in the Molecule scenario. Here a stand-in
`sudo` first on PATH fails while our line is active (a plugin that breaks sudo), and
failing stand-ins for mktemp, awk, cp, chown, chmod and mv show that no failed write is
reported as done and that no half-written sudo.conf is installed. `logger` is a stand-in
that records what would have gone to syslog. The script insists on root, so these tests
need it too.
"""

import fcntl
import json
import os
import shutil
import subprocess
import time

import pytest

CTL = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "roles", "sudo_alerts",
                   "files", "sudo-alerts-ctl")
MODULE = "/usr/libexec/secalert/secalert_sudo_audit.py"
LINE = (f"Plugin python_audit /usr/libexec/secalert/python_plugin.so ModulePath={MODULE} "
        "ClassName=SecalertAuditPlugin Config=/etc/secalert/sudo_alerts.json")
MARK = "#secalert-disabled# "
OTHER = "Plugin sudoers_policy sudoers.so"
# A sudo.conf with lines around ours that must survive every edit, in order.
AROUND = (f"# comment\nPath askpass /usr/bin/ssh-askpass\n{OTHER}\n{{ours}}"
          "Plugin sudoers_io sudoers.so\nSet disable_coredump false\n")
CONTRACT_KEYS = ["schema", "type", "state", "time", "host", "where", "reason", "file",
                 "detail", "action", "severity", "tags"]
REAL = {name: shutil.which(name) for name in ("awk", "mv", "cp", "chown", "chmod", "mktemp")}

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="sudo-alerts-ctl runs as root only")


def _script(path, text):
    path.write_text("#!/bin/sh\n" + text)
    path.chmod(0o755)


class Host:
    """A private sudo.conf, runtime directory, settings file and PATH of stand-ins."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.conf = tmp_path / "sudo.conf"
        self.run_dir = tmp_path / "run"
        self.run_dir.mkdir(mode=0o700)
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        self.syslog = tmp_path / "syslog"
        self.settings = tmp_path / "guard.conf"
        self.sender_log = tmp_path / "sender.log"
        _script(self.bin / "logger", f"printf '%s\\n' \"$*\" >> {self.syslog}\n")
        self.sudo_ok()

    def sudo_ok(self, version="secalert sudo audit plugin version 9"):
        _script(self.bin / "sudo", f"[ \"$1\" = -V ] && echo '{version}'\nexit 0\n")

    def sudo_broken(self, message="sudo: error initializing audit plugin python_audit"):
        """A sudo that refuses every command while our plugin line is active."""
        _script(self.bin / "sudo",
                f"grep -q '^Plugin python_audit .*ModulePath={MODULE}' \"$SECALERT_SUDO_CONF\" "
                f"&& {{ printf '%s\\n' {_sh_quote(message)} >&2; exit 1; }}\nexit 0\n")

    def direct(self):
        """Direct delivery, with a stand-in sender interpreter that records its argv."""
        python = self.bin / "fake-python"
        _script(python, f"printf '%s\\n' \"$*\" >> {self.sender_log}\n")
        self.settings.write_text(
            "# managed\nDELIVERY=direct\nFACILITY=authpriv\nIDENT=secalert-sudo\n"
            f"SPOOL={self.run_dir}/sudo-spool\nSENDER_LOCK={self.run_dir}/sudo-sender.lock\n"
            f"PYTHON={python}\nSENDER={self.tmp}/secalert_sudo_send.py\n"
            "APPRISE_CONFIG=/etc/secalert/apprise.yml\nRATE_LIMIT=7\nRATE_PERIOD=30\n"
            f"RATE_STATE={self.run_dir}/sudo-sender.rate\n"
            "LEDGER=/var/log/secalert/sudo-delivered.log\n")
        self.settings.chmod(0o600)

    def run(self, *args, content=None, env=None):
        if content is not None:
            self.conf.write_text(content)
        full = dict(os.environ, SECALERT_SUDO_CONF=str(self.conf),
                    SECALERT_SUDO_KEYFILE=str(self.tmp / "no-key"),
                    SECALERT_RUN_DIR=str(self.run_dir), SECALERT_GUARD_SETTINGS=str(self.settings),
                    SECALERT_GUARD_UNIT="", PATH=f"{self.bin}:{os.environ['PATH']}")
        full.pop("INVOCATION_ID", None)
        full.update(env or {})
        return subprocess.run(["sh", CTL, *args], capture_output=True, text=True, env=full,
                              timeout=60, check=False)

    def text(self):
        return self.conf.read_text() if self.conf.exists() else None

    def logged(self):
        return self.syslog.read_text().splitlines() if self.syslog.exists() else []

    def events(self):
        """(priority, event) of the status lines sent to syslog as ident secalert-sudo."""
        found = []
        for line in self.logged():
            if " -t secalert-sudo -- " in line:
                prio = line.split("-p ", 1)[1].split(" ", 1)[0]
                found.append((prio, json.loads(line.split(" -- ", 1)[1])))
        return found

    def spool(self):
        path = self.run_dir / "sudo-spool"
        return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def _sh_quote(text):
    return "'" + text.replace("'", "'\\''") + "'"


@pytest.fixture
def host(tmp_path):
    return Host(tmp_path)


# ------------------------------------------------------------------ reading sudo.conf


@pytest.mark.parametrize("content, status", [
    (None, "absent"),
    ("# Plugin sudoers_policy sudoers.so\n", "absent"),
    (f"{OTHER}\n{LINE}\n", "enabled"),
    (f"  {LINE}\n", "enabled"),
    (f"{MARK}{LINE}\n", "disabled"),
    (f"# {LINE}\n", "disabled"),
    (LINE.replace(MODULE, "/elsewhere/x.py") + "\n", "absent"),
])
def test_status(host, content, status):
    assert host.run("status", content=content).stdout.strip() == status


@pytest.mark.parametrize("content, expected", [
    (f"{OTHER}\n{LINE}\n", "unchanged"),
    (f"{OTHER}\n{MARK}{LINE}\n", "changed"),
    (f"{OTHER}\n{LINE} FailClosed=yes\n", "changed"),
    (f"{OTHER}\n", "changed"),
    (None, "changed"),
])
def test_enable_check_never_writes(host, content, expected):
    proc = host.run("enable", "--check", LINE, content=content)
    assert (proc.returncode, proc.stdout.strip()) == (0, expected), proc.stderr
    assert host.text() == content


@pytest.mark.parametrize("content, expected", [
    (f"{OTHER}\n{LINE}\n", "changed"),
    (f"{OTHER}\n{MARK}{LINE}\n", "unchanged"),
    (f"{OTHER}\n", "unchanged"),
])
def test_disable_check_never_writes(host, content, expected):
    proc = host.run("disable", "--check", content=content)
    assert proc.stdout.strip() == expected
    assert host.text() == content


@pytest.mark.parametrize("line", [
    "Plugin python_audit /tmp/evil.so ModulePath=/tmp/evil.py ClassName=X",
    "Plugin sudoers_policy sudoers.so",
])
def test_enable_refuses_lines_that_are_not_ours(host, line):
    proc = host.run("enable", line, content=f"{OTHER}\n")
    assert proc.returncode == 2 and "refusing" in proc.stderr
    assert host.text() == f"{OTHER}\n"


def test_disable_comments_out_only_our_line_and_keeps_owner_and_mode(host):
    before = AROUND.format(ours=LINE + "\n")
    host.conf.write_text(before)
    os.chown(host.conf, 1, 1)
    host.conf.chmod(0o640)
    proc = host.run("disable", "testing")
    assert proc.returncode == 0 and proc.stdout.strip() == "changed", proc.stderr
    assert host.text() == AROUND.format(ours=MARK + LINE + "\n")
    st = host.conf.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (1, 1, 0o640)
    assert sorted(p.name for p in host.tmp.iterdir() if p.name.startswith("sudo.conf")) == [
        "sudo.conf"]


def test_enable_writes_a_missing_final_newline_and_keeps_the_rest(host):
    before = f"{OTHER}\nSet disable_coredump false"  # no newline at the end
    proc = host.run("enable", LINE, content=before)
    assert proc.returncode == 0 and proc.stdout.strip() == "changed", proc.stderr
    assert host.text() == f"{OTHER}\nSet disable_coredump false\n{LINE}\n"


# ------------------------------------------------------------------ failed writes

# name: (stand-in, content of its script). Each fails the way a full disk, a read-only
# file system or a killed process would: the awk ones half-way through the render.
FAILING = {
    "mktemp": ("mktemp", "echo 'mktemp: failed to create file' >&2; exit 1\n"),
    "awk fails half-way": ("awk", 'case "$*" in *SECALERT_LINES*) '
                           f'{REAL["awk"]} "$@" | head -n 2; exit 2 ;; esac\n'
                           f'exec {REAL["awk"]} "$@"\n'),
    "awk truncates silently": ("awk", 'case "$*" in *"if (!done"*) '
                               f'{REAL["awk"]} "$@" | head -n 2; exit 0 ;; esac\n'
                               f'exec {REAL["awk"]} "$@"\n'),
    "cp": ("cp", "echo 'cp: No space left on device' >&2; exit 1\n"),
    "chown": ("chown", "exit 1\n"),
    "chmod": ("chmod", "exit 1\n"),
    "mv": ("mv", "echo 'mv: Read-only file system' >&2; exit 1\n"),
}


def _fail(host, name):
    tool, text = FAILING[name]
    _script(host.bin / tool, text)


def _leftovers(host):
    return sorted(p.name for p in host.tmp.iterdir()
                  if p.name.startswith("sudo.conf") and p.name != "sudo.conf")


@pytest.mark.parametrize("name", sorted(FAILING))
def test_enable_with_a_failing_write_changes_nothing_and_says_so(host, name):
    before = AROUND.format(ours=MARK + LINE + "\n")
    host.conf.write_text(before)
    _fail(host, name)
    proc = host.run("enable", LINE)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert proc.stdout.strip() not in ("changed", "unchanged"), proc.stderr
    assert host.text() == before
    assert "enabled the secalert" not in proc.stderr
    assert "NOT enabled" in proc.stderr, proc.stderr
    assert any(line.startswith("-p authpriv.crit ") for line in host.logged()), host.logged()
    assert _leftovers(host) == []


@pytest.mark.parametrize("name", sorted(FAILING))
def test_disable_with_a_failing_write_changes_nothing_and_says_so(host, name):
    before = AROUND.format(ours=LINE + "\n")
    host.conf.write_text(before)
    _fail(host, name)
    proc = host.run("disable", "testing")
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert proc.stdout.strip() != "changed"
    assert host.text() == before
    assert not any("disabled the secalert" in line for line in host.logged())
    assert "NOT disabled" in proc.stderr, proc.stderr
    assert _leftovers(host) == []


@pytest.mark.parametrize("name", ["mktemp", "awk fails half-way", "awk truncates silently", "mv"])
def test_guard_that_cannot_write_alerts_and_installs_nothing(host, name):
    before = AROUND.format(ours=LINE + "\n")
    host.conf.write_text(before)
    host.sudo_broken()
    _fail(host, name)
    proc = host.run("guard", "--from", "test")
    assert proc.returncode == 1
    assert host.text() == before
    (prio, event), = host.events()
    assert prio == "authpriv.crit" and event["state"] == "off"
    assert "could not disable it" in event["reason"]
    assert "by hand" in event["action"]


# ------------------------------------------------------------------ the guard


def test_guard_disables_a_line_that_breaks_sudo_and_sends_a_status_event(host):
    host.direct()
    before = AROUND.format(ours=LINE + "\n")
    host.sudo_broken('sudo: error "initializing" audit plugin\\python_audit')
    proc = host.run("guard", "--from", "test", content=before)
    assert proc.returncode == 0, proc.stderr
    assert host.text() == AROUND.format(ours=MARK + LINE + "\n")
    assert any("disabled the secalert sudo audit plugin" in x for x in host.logged())
    (prio, event), = host.events()
    assert prio == "authpriv.crit"
    assert list(event) == CONTRACT_KEYS
    assert (event["type"], event["state"], event["where"], event["severity"], event["tags"]) == (
        "status", "off", "guard", "critical", ["sudo", "secalert-status"])
    assert event["host"] == os.uname().nodename
    assert "the guard disabled it" in event["reason"] and "after test" in event["reason"]
    # the .so of the line does not exist here: that is the file to blame
    assert event["file"] == "/usr/libexec/secalert/python_plugin.so"
    assert 'error "initializing" audit plugin\\python_audit' in event["detail"]
    assert "sudo_alerts role" in event["action"]
    # direct delivery: the same line in the spool, and a sender started for it
    assert host.spool() == [event]
    assert _wait(host.sender_log.exists), "no sender started"
    assert host.sender_log.read_text().split() == [
        "-I", str(host.tmp / "secalert_sudo_send.py"), "--config", "/etc/secalert/apprise.yml",
        "--spool", str(host.run_dir / "sudo-spool"), "--lock",
        str(host.run_dir / "sudo-sender.lock"), "--rate-limit", "7", "--rate-period", "30",
        "--state", str(host.run_dir / "sudo-sender.rate"),
        "--ledger", "/var/log/secalert/sudo-delivered.log"]
    st = (host.run_dir / "sudo-spool").stat()
    assert (st.st_uid, st.st_mode & 0o777) == (0, 0o600)


def test_enable_after_the_guard_disabled_it_says_back_on_once(host):
    host.sudo_broken()
    host.run("guard", content=f"{OTHER}\n{LINE}\n")
    host.sudo_ok()
    first = host.run("enable", LINE)
    second = host.run("enable", LINE)
    assert (first.stdout.strip(), second.stdout.strip()) == ("changed", "unchanged")
    states = [(prio, e["state"]) for prio, e in host.events()]
    assert states == [("authpriv.crit", "off"), ("authpriv.warning", "on")]
    on = host.events()[1][1]
    assert list(on) == CONTRACT_KEYS and on["severity"] == "warning"


def test_no_sender_is_started_while_one_holds_the_lock(host):
    host.direct()
    host.sudo_broken()
    with open(host.run_dir / "sudo-sender.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        proc = host.run("guard", content=f"{OTHER}\n{LINE}\n")
        time.sleep(0.5)
    assert proc.returncode == 0, proc.stderr
    assert len(host.spool()) == 1
    assert not host.sender_log.exists()


def test_guard_leaves_a_fail_closed_line_alone_and_alerts(host):
    host.sudo_broken()
    before = f"{OTHER}\n{LINE} FailClosed=yes\n"
    proc = host.run("guard", "--from", "test", content=before)
    assert proc.returncode == 1
    assert "FailClosed=yes, so it stays" in proc.stderr, proc.stderr
    assert host.text() == before
    (_prio, event), = host.events()
    assert event["state"] == "off" and "FailClosed=yes" in event["reason"]


def test_guard_keeps_a_broken_plugin_that_sudo_survives_and_alerts_once(host):
    broken = "secalert sudo audit plugin version 9 BROKEN: ImportError: no module named x"
    host.sudo_ok(broken)
    before = f"{OTHER}\n{LINE}\n"
    for _round in range(2):
        proc = host.run("guard", "--from", "test", content=before)
        assert proc.returncode == 0, proc.stderr
        assert host.text() == before
    (prio, event), = host.events()  # not repeated while nothing changed
    assert (prio, event["state"]) == ("authpriv.crit", "off")
    assert event["detail"] == broken and "failed to import" in event["reason"]
    host.sudo_ok()
    assert host.run("guard", "--from", "test").returncode == 0
    assert [e["state"] for _p, e in host.events()] == ["off", "on"]


def test_a_broken_package_the_entry_module_reported_is_alerted_once(host):
    # The entry module has said "off" to syslog itself (its state file exists) and says
    # "on" when the package imports again: in syslog delivery the guard keeps the state only.
    (host.run_dir / "entry-off").write_text("SyntaxError: bad")
    host.sudo_ok("secalert sudo audit plugin version 9 BROKEN: SyntaxError: bad")
    assert host.run("guard", "--from", "test", content=f"{OTHER}\n{LINE}\n").returncode == 0
    assert host.events() == []
    (host.run_dir / "entry-off").unlink()
    host.sudo_ok()
    assert host.run("guard", "--from", "test").returncode == 0
    assert host.events() == []
    # the guard's state says on again: a later fault of another kind is alerted
    host.sudo_broken()
    host.run("guard", "--from", "test")
    assert [e["state"] for _p, e in host.events()] == ["off"]


def test_a_broken_package_in_direct_mode_is_spooled_by_the_guard(host):
    host.direct()
    (host.run_dir / "entry-off").write_text("SyntaxError: bad")
    host.sudo_ok("secalert sudo audit plugin version 9 BROKEN: SyntaxError: bad")
    assert host.run("guard", "--from", "test", content=f"{OTHER}\n{LINE}\n").returncode == 0
    assert [e["state"] for _p, e in host.events()] == ["off"]


def test_enable_of_a_broken_plugin_keeps_the_line_and_fails(host):
    host.sudo_ok("secalert sudo audit plugin version 9 BROKEN: SyntaxError: bad")
    proc = host.run("enable", LINE, content=f"{OTHER}\n")
    assert proc.returncode == 1 and "BROKEN" in proc.stderr
    assert host.text() == f"{OTHER}\n{LINE}\n"  # sudo works with it
    assert [e["state"] for _p, e in host.events()] == ["off"]


@pytest.mark.parametrize("message", [
    'quote " backslash \\ tab\there',
    "control \x01\x1b[31m chars and a\nnew line",
    "not ascii: caf\u00e9 \u2603",
    "x" * 2000,
])
def test_status_events_are_valid_ascii_json(host, message):
    host.sudo_broken(message)
    host.run("guard", content=f"{OTHER}\n{LINE}\n")
    raw = [x.split(" -- ", 1)[1] for x in host.logged() if " -t secalert-sudo -- " in x]
    assert len(raw) == 1
    assert raw[0].isascii() and all(ord(c) >= 32 for c in raw[0])
    event = json.loads(raw[0])
    assert len(event["detail"]) <= 400
    if "quote" in message:
        assert message.replace("\t", " ") in event["detail"]


def test_guard_that_cannot_take_its_lock_fails_loudly(host):
    host.direct()
    host.sudo_broken()
    before = f"{OTHER}\n{LINE}\n"
    host.conf.write_text(before)
    with open(host.run_dir / "guard.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        proc = host.run("guard", env={"SECALERT_LOCK_WAIT": "1"})
    assert proc.returncode == 75
    assert host.text() == before
    assert any(x.startswith("-p authpriv.crit -t secalert-sudo-guard") and "held" in x
               for x in host.logged())
    (prio, event), = host.events()
    assert (prio, event["state"], event["file"]) == (
        "authpriv.crit", "off", str(host.run_dir / "guard.lock"))
    assert "could not take its lock" in event["reason"]
    assert host.spool() == [event]


def test_a_lock_directory_others_can_write_is_refused(host):
    host.run_dir.chmod(0o1777)
    proc = host.run("disable", content=f"{OTHER}\n{LINE}\n")
    assert proc.returncode == 75
    assert host.text() == f"{OTHER}\n{LINE}\n"
    assert "not root-only" in proc.stderr


def test_settings_are_read_not_sourced_and_only_when_root_only(host):
    host.direct()
    canary = host.tmp / "canary"
    host.settings.write_text(host.settings.read_text() + f"SPOOL_MAX=$(touch {canary})\n")
    host.sudo_broken()
    host.run("guard", content=f"{OTHER}\n{LINE}\n")
    assert not canary.exists()
    assert len(host.spool()) == 1  # a bad SPOOL_MAX falls back to the default
    # writable by others: ignored, syslog only
    (host.run_dir / "sudo-spool").unlink()
    host.settings.chmod(0o666)
    host.conf.write_text(f"{OTHER}\n{LINE}\n")
    host.run("guard")
    assert host.spool() == []
    assert any("not root-only" in x for x in host.logged())


def test_guard_restarts_a_failed_path_unit_and_alerts(host):
    calls = host.tmp / "systemctl.calls"
    _script(host.bin / "systemctl",
            f"echo \"$*\" >> {calls}\n"
            "case \"$1\" in is-failed) exit 0 ;; show) echo start-limit-hit ;; esac\nexit 0\n")
    (host.tmp / "systemd").mkdir()
    proc = host.run("guard", content=f"{OTHER}\n{LINE}\n",
                    env={"SECALERT_GUARD_UNIT": "secalert-sudo-guard",
                         "SECALERT_SYSTEMD_RUN": str(host.tmp / "systemd")})
    assert proc.returncode == 0, proc.stderr
    lines = calls.read_text().splitlines()
    assert "reset-failed secalert-sudo-guard.path secalert-sudo-guard.service" in lines
    assert "restart secalert-sudo-guard.path" in lines
    off, on = [e for _p, e in host.events()]
    assert off["state"] == "off" and "start-limit-hit" in off["reason"]
    assert on["state"] == "on"  # sudo works with the plugin: the guard is whole again


def _wait(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)
    return predicate()


def test_a_logger_that_fails_quietly_is_noticed(host):
    # util-linux logger prints "send message failed" and still exits 0
    _script(host.bin / "logger",
            "echo 'logger: send message failed: Operation not permitted' >&2\n")
    host.sudo_broken()
    proc = host.run("guard", content=f"{OTHER}\n{LINE}\n")
    assert "could not log the off event to syslog: logger: send message failed" in proc.stderr


def test_guard_keeps_checking_while_changes_go_on_then_disables_what_breaks(host):
    """A burst of changes while the guard checks (its path unit reports none of them while
    it runs): the guard looks again as long as the files change, not a fixed number of
    times, so a plugin that breaks sudo at the end of the burst is still disabled."""
    calls = host.tmp / "sudo-calls"
    _script(host.bin / "sudo",
            f"n=$(( $(cat {calls} 2>/dev/null || echo 0) + 1 )); echo $n > {calls}\n"
            # the first 20 calls: the files change under the guard and sudo still works
            f"if [ $n -le 20 ]; then touch \"$SECALERT_SUDO_CONF\"; "
            "[ \"$1\" = -V ] && echo 'secalert sudo audit plugin version 9'; exit 0; fi\n"
            f"grep -q '^Plugin python_audit .*ModulePath={MODULE}' \"$SECALERT_SUDO_CONF\" "
            "&& { echo 'sudo: unable to load plugins' >&2; exit 1; }\nexit 0\n")
    proc = host.run("guard", "--from", "test", content=AROUND.format(ours=LINE + "\n"))
    assert proc.returncode == 0, proc.stderr
    assert int(calls.read_text()) > 20, proc.stderr
    assert host.text() == AROUND.format(ours=MARK + LINE + "\n"), proc.stderr
    assert "then a change during the check" in proc.stderr


def _systemctl(host, guard_state="inactive"):
    """A systemctl stand-in that records its calls; the guard unit is in ``guard_state``."""
    calls = host.tmp / "systemctl.calls"
    _script(host.bin / "systemctl",
            f"echo \"$*\" >> {calls}\n"
            "case \"$1\" in is-failed) exit 1 ;; "
            f"show) echo {guard_state} ;; esac\nexit 0\n")
    (host.tmp / "systemd").mkdir(exist_ok=True)
    env = {"SECALERT_GUARD_UNIT": "secalert-sudo-guard",
           "SECALERT_SYSTEMD_RUN": str(host.tmp / "systemd")}
    return calls, env


REARM = "restart --no-block secalert-sudo-guard-recheck.timer"


@pytest.mark.parametrize("broken", [False, True])
def test_each_run_of_the_guard_unit_arms_the_recheck(host, broken):
    """A change in the last moment of a guard unit's run reaches no path unit (it watches
    again only once the unit is inactive): every run of the unit, whatever it found, arms
    the one-shot timer that looks once more from a unit of its own."""
    calls, env = _systemctl(host)
    if broken:
        host.sudo_broken()
    proc = host.run("guard", "--from", "systemd", content=AROUND.format(ours=LINE + "\n"),
                    env=env)
    assert proc.returncode == 0, proc.stderr
    assert calls.read_text().splitlines().count(REARM) == 1
    assert host.text() == AROUND.format(ours=(MARK if broken else "") + LINE + "\n")


@pytest.mark.parametrize("source", ["test", "dpkg", "recheck"])
def test_other_runs_do_not_arm_the_recheck(host, source):
    """Runs outside the guard unit (the path unit watches meanwhile) and the recheck itself
    arm nothing, so the rechecks end."""
    calls, env = _systemctl(host)
    host.sudo_broken()
    proc = host.run("guard", "--from", source, content=AROUND.format(ours=LINE + "\n"), env=env)
    assert proc.returncode == 0, proc.stderr
    assert REARM not in calls.read_text().splitlines()
    assert host.text() == AROUND.format(ours=MARK + LINE + "\n"), proc.stderr


@pytest.mark.parametrize("state", ["activating", "deactivating"])
def test_the_recheck_waits_while_the_guard_unit_still_runs(host, state):
    """Its look must come after the guard unit's last moment: while that unit runs, the
    recheck arms itself again and checks nothing yet."""
    calls, env = _systemctl(host, guard_state=state)
    host.sudo_broken()
    proc = host.run("guard", "--from", "recheck", content=AROUND.format(ours=LINE + "\n"),
                    env=env)
    assert proc.returncode == 0, proc.stderr
    assert calls.read_text().splitlines() == [
        "show -p ActiveState --value secalert-sudo-guard.service", REARM]
    assert host.text() == AROUND.format(ours=LINE + "\n")  # not yet: sudo was not tried


# ------------------------------------------------------------------ session rules (python_io)

IO_LINE = LINE.replace("python_audit", "python_io").replace("SecalertAuditPlugin",
                                                            "SecalertIOPlugin")
KEEP_IO = "Plugin sudoers_io sudoers.so #secalert-keeps-sudoers_io"
BOTH = "secalert sudo audit plugin version 9\nsecalert sudo session plugin version 9"


def test_enable_writes_the_session_lines_together_and_disable_comments_them_all(host):
    host.sudo_ok(BOTH)
    before = AROUND.format(ours=LINE + "\n")
    proc = host.run("enable", LINE, IO_LINE, KEEP_IO, content=before)
    assert (proc.returncode, proc.stdout) == (0, "changed\n"), proc.stderr
    assert host.text() == AROUND.format(ours=f"{LINE}\n{IO_LINE}\n{KEEP_IO}\n")
    assert host.run("enable", LINE, IO_LINE, KEEP_IO).stdout == "unchanged\n"
    proc = host.run("disable", "test")
    assert proc.stdout == "changed\n", proc.stderr
    assert host.text() == AROUND.format(ours=f"{MARK}{LINE}\n{MARK}{IO_LINE}\n{MARK}{KEEP_IO}\n")
    # back to the audit plugin alone: the session lines go
    host.run("enable", LINE)
    assert host.text() == before


def test_the_session_plugin_must_answer_sudo_v_or_the_lines_are_rolled_back(host):
    host.sudo_ok()  # only the audit plugin answers
    before = AROUND.format(ours=LINE + "\n")
    proc = host.run("enable", LINE, IO_LINE, KEEP_IO, content=before)
    assert proc.returncode == 1
    assert "session plugin (python_io) did not load" in proc.stderr
    assert host.text() == before


@pytest.mark.parametrize("lines", [
    [IO_LINE, LINE],  # the audit plugin's line first
    [LINE, "Plugin sudoers_io sudoers.so"],  # not marked as ours
    [LINE, IO_LINE.replace(MODULE, "/tmp/evil.py")],
    [LINE, IO_LINE + "\nPlugin x y.so"],
])
def test_enable_refuses_session_lines_that_are_not_ours(host, lines):
    before = AROUND.format(ours=LINE + "\n")
    proc = host.run("enable", *lines, content=before)
    assert proc.returncode == 2 and "refusing" in proc.stderr
    assert host.text() == before
