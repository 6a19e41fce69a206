"""Session rules on real sudo (the I/O plugin, `sudo_alerts_session: true` in this scenario):
what is typed into `sudo -s` through a real pty, piped into sudo, and shown.

A small driver (DRIVER, run by the host's python3) starts a command on a new pty, types
keys one at a time and waits for each echo like a person would, and reports the exit
status, whether the command ended before every key was typed, and the output. Debian 12
(sudo 1.9.13p3) has `sudo_alerts_session_end_rules: [rm-recursive-root]`; Debian 13's
sudo 1.9.16p2 may SIGHUP every process when it ends a session (sudo #458), so the role
refuses end-session rules there (subcommands-gate.yml-style check below).
"""

import json

import pytest
from secalert_testlib.polling import wait_for
from test_sudo_alerts import CTL, diagnose, enable, plugin_lines, sudo_works

PACKAGE = "/usr/libexec/secalert/sudo-plugin/current/secalert_sudo"

DRIVER = r'''
import json, os, pty, select, sys, time
spec = json.loads(sys.argv[1])
pid, fd = pty.fork()
if pid == 0:
    os.execvp(spec["argv"][0], spec["argv"])
out = bytearray()
def read(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        ready, _, _ = select.select([fd], [], [], 0.02)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:
                return False
            if not data:
                return False
            out.extend(data)
    return True
def expect(data, seconds):
    """Read until ``data`` comes back (its echo), at most ``seconds``."""
    start = len(out)
    end = time.monotonic() + seconds
    while data not in out[start:] and time.monotonic() < end:
        if not read(0.02):
            return False
    return True
alive = read(spec.get("settle", 1.0))
typed = 0
for key, echoed in spec["keys"]:
    if not alive:
        break
    data = key.encode("utf-8", "surrogateescape")
    try:
        os.write(fd, data)
    except OSError:
        alive = False
        break
    typed += 1
    if key == "\r":
        alive = read(0.4)
    elif echoed:  # as a person types: the next key once this one is on the screen
        alive = expect(data, 10)
    else:
        alive = read(0.03)
status = None
deadline = time.monotonic() + spec.get("timeout", 30)
while time.monotonic() < deadline:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    read(0.05)
else:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    status = None
print(json.dumps({"typed": typed, "keys": len(spec["keys"]), "status": status,
                  "exit": os.waitstatus_to_exitcode(status) if status is not None else None,
                  "output": out.decode("utf-8", "backslashreplace")}))
'''


@pytest.fixture(params=["debian12", "debian13"])
def host(request, hosts):
    (name,) = [n for n in hosts if n.endswith(request.param)]
    h = hosts[name]
    # the session lines, as the role wrote them (a fault test may have enabled the audit
    # line alone and put them all back; this checks they are all there)
    lines = plugin_lines(h)
    assert len(lines) == 3 and "python_io" in lines[1], lines
    assert h.run(CTL + " status").stdout.strip() == "enabled", diagnose(h)
    return h


def debian12(host):
    return host.file("/etc/debian_version").content_string.startswith("12")


def drive(host, argv, text, settle=1.0, timeout=30, quiet=""):
    """Type ``text`` into ``argv`` on a new pty; ``quiet``, a part of ``text``, is typed
    without waiting for an echo (echo is off there)."""
    start = text.index(quiet) if quiet else len(text)
    keys = [[key, not start <= i < start + len(quiet) and key.isprintable()]
            for i, key in enumerate(text)]
    spec = {"argv": argv, "keys": keys, "settle": settle, "timeout": timeout}
    run = host.run("timeout -k 5 %s python3 -c %s %s", str(timeout + 30), DRIVER,
                   json.dumps(spec))
    assert run.rc == 0, run.stderr
    return json.loads(run.stdout)


def auth_offset(host):
    return int(host.check_output("stat -c %s /var/log/auth.log"))


def session_events(host, offset):
    """The I/O plugin's events (decision input/output) and faults in auth.log after
    byte ``offset``."""
    out = host.run("tail -c +%s /var/log/auth.log", str(offset + 1)).stdout
    events = []
    for line in out.splitlines():
        if "secalert-sudo[" in line:
            event = json.loads(line.split("]: ", 1)[1])
            if event.get("decision") in ("input", "output") or event.get("type") == "fault":
                events.append(event)
    return events


def wait_session(host, offset, count=1, timeout=30):
    return wait_for(lambda: len(session_events(host, offset)) >= count
                    and session_events(host, offset), timeout) or []


def test_a_typed_line_alerts_with_an_excerpt(host, receiver, marker):
    offset = auth_offset(host)
    line = f"echo chmod 777 /etc/{marker}"
    run = drive(host, ["sudo", "-s"], line + "\rexit\r")
    assert (run["exit"], run["typed"]) == (0, run["keys"]), run
    assert f"chmod 777 /etc/{marker}\r\n" in run["output"]  # the line ran
    (event,) = wait_session(host, offset)
    assert (event["decision"], event["rule"], event["severity"]) == (
        "input", "chmod-world-writable-system", "warning"), event
    assert (event["stream"], event["action"], event["ended"]) == ("tty", "alert", False)
    assert event["excerpt"] == line
    assert event["user"] == "root" and event["command"].endswith("/bash"), event
    # direct delivery: a warning reaches the receiver, with the excerpt as text
    (message,) = receiver.messages(contains=marker, wait=30, count=1)
    assert "typed chmod-world-writable-system in" in message["title"], message


def test_a_password_typed_with_echo_off_never_appears(host, receiver, marker):
    """Typed at `read -s` (echo off): the line matches a rule, so it alerts, but no part
    of it is in the event, syslog, the journal or the receiver."""
    offset = auth_offset(host)
    secret = f"chmod 777 /etc/{marker}-pw"
    run = drive(host, ["sudo", "-s"], "read -rs P\r" + secret + "\rexit\r", quiet=secret)
    assert run["exit"] == 0 and secret not in run["output"], run
    (event,) = wait_session(host, offset)
    assert (event["rule"], event["excerpt_withheld"]) == (
        "chmod-world-writable-system", "not echoed"), event
    assert "excerpt" not in event
    # the alert was delivered (it carries the event's time), and nothing anywhere has the line
    assert receiver.messages(contains=event["time"], wait=30, count=1), diagnose(host)
    everywhere = host.run("grep -rF -- %s /var/log /run/secalert; journalctl --no-pager "
                          "| grep -F -- %s", f"{marker}-pw", f"{marker}-pw")
    assert everywhere.stdout == "", everywhere.stdout
    assert receiver.messages(contains=f"{marker}-pw") == []


def test_end_session_ends_the_shell_before_the_line_runs(host, marker):
    if not debian12(host):
        pytest.skip("sudo 1.9.16p2: end-session rules are refused (sudo #458)")
    offset = auth_offset(host)
    flag = f"/tmp/{marker}-ran"
    run = drive(host, ["sudo", "-s"], f"touch {flag}; echo rm -fr /\rexit\r")
    assert run["typed"] < run["keys"], run  # gone before "exit" was typed
    assert run["exit"] != 0, run
    assert host.run("test -e %s", flag).rc != 0, "the matched line ran"
    events = wait_session(host, offset)
    assert [(e["rule"], e["action"], e["ended"]) for e in events] == [
        ("rm-recursive-root", "end-session", True)], events
    # the audit plugin says why the command ended
    denied = host.run("tail -c +%s /var/log/auth.log | grep -F 'rejected by I/O plugin'",
                      str(offset + 1))
    assert denied.rc == 0, diagnose(host)
    assert sudo_works(host)


def test_piped_input_alerts_and_sudo_neither_hangs_nor_is_killed(host, marker):
    offset = auth_offset(host)
    run = host.run("printf 'echo rm -fr / %s\\necho done-%s\\n' | timeout -k 5 30 sudo sh",
                   marker, marker)
    assert run.rc == 0 and f"done-{marker}" in run.stdout, (run.rc, run.stdout, run.stderr)
    (event,) = wait_session(host, offset)
    assert (event["rule"], event["stream"], event["ended"]) == (
        "rm-recursive-root", "stdin", False), event
    assert event["excerpt_withheld"] == "not a terminal" and "excerpt" not in event
    if debian12(host):  # an end-session rule there: not without a tty
        assert event["end_skipped"] == "no terminal: sudo would hang"


def test_bytes_that_are_not_utf8_leave_the_session_alive(host, marker):
    # a binary file and a euro sign split across two writes, through the pty and a pipe
    command = ("head -c 3000 /usr/bin/sudo; printf '\\342\\202'; sleep 0.3; "
               f"printf '\\254\\n'; echo done-{marker}")
    run = drive(host, ["sudo", "sh", "-c", command], "", settle=2.0)
    assert run["exit"] == 0 and f"done-{marker}" in run["output"], run
    piped = host.run("head -c 4096 /usr/bin/sudo | timeout -k 5 30 sudo sh -c 'cat; echo "
                     "done-%s' | tail -c 40", marker)
    assert piped.rc == 0 and f"done-{marker}" in piped.stdout, (piped.rc, piped.stderr)
    typed = drive(host, ["sudo", "-s"], "echo caf\udcc3\udca9 \udcff\rexit\r")
    assert typed["exit"] == 0, typed


def test_an_output_rule_alerts_without_the_secret(host, marker):
    body = f"{marker}AAAAB3NzaC1yc2E"
    key = f"/root/{marker}.key"
    assert host.run("umask 077; printf -- '-----BEGIN OPENSSH PRIVATE KEY-----\\n%s\\n' > %s",
                    body, key).rc == 0
    offset = auth_offset(host)
    run = host.run("timeout -k 5 30 sudo cat %s", key)
    host.run("rm -f %s", key)
    assert run.rc == 0 and body in run.stdout, run.stderr
    (event,) = wait_session(host, offset)
    assert (event["decision"], event["rule"], event["stream"]) == (
        "output", "secret-on-screen", "stdout"), event
    assert body not in host.run("tail -c +%s /var/log/auth.log", str(offset + 1)).stdout


def test_sudoers_io_still_records(host, marker):
    """sudo's own session recording (sudoers_io) keeps working beside the python_io line."""
    dropin = "/etc/sudoers.d/zz-secalert-test-iolog"
    try:
        assert host.run("printf 'Defaults!/usr/bin/echo log_output\\n' > %s && chmod 0440 %s "
                        "&& visudo -c", dropin, dropin).rc == 0
        before = host.run("find /var/log/sudo-io -name log 2>/dev/null | wc -l").stdout
        assert host.run("timeout -k 5 30 sudo /usr/bin/echo %s", marker).rc == 0
        after = host.run("find /var/log/sudo-io -name log 2>/dev/null | wc -l").stdout
        assert int(after) == int(before) + 1, (before, after)
    finally:
        host.run("rm -f %s", dropin)


def test_a_broken_session_module_unloads_the_io_plugin_and_says_so(host, marker):
    """session.py alone broken: sudo works, the audit plugin still alerts, and a fault
    event names the session module; the guard leaves the lines (sudo works)."""
    offset = auth_offset(host)
    module = f"{PACKAGE}/session.py"
    try:
        assert host.run("cp -p %s /root/session.bak && echo 'def (:' >> %s && "
                        "rm -rf %s/__pycache__/session.*", module, module, PACKAGE).rc == 0
        assert sudo_works(host), diagnose(host)
        run = drive(host, ["sudo", "-s"], f"echo chmod 777 /etc/{marker}\rexit\r")
        assert run["exit"] == 0, run
        faults = wait_for(lambda: [e for e in session_events(host, offset)
                                   if e.get("where") == "import-session"], 30)
        assert faults and "SyntaxError" in faults[0]["error"], session_events(host, offset)
        assert not [e for e in session_events(host, offset) if e.get("decision") == "input"]
        assert host.run(CTL + " guard --from test").rc == 0
        assert host.run(CTL + " status").stdout.strip() == "enabled"
    finally:
        host.run("mv /root/session.bak %s && python3 -I -m py_compile %s", module, module)
    assert sudo_works(host)


def test_end_session_rules_are_refused_where_not_proven_safe(hosts, playbook):
    (name,) = [n for n in hosts if n.endswith("debian13")]
    before = hosts[name].file("/etc/secalert/sudo_alerts.json").content_string
    run = playbook.run("session-gate.yml", "--limit", name)
    assert run.returncode != 0
    assert "sudo issue #458" in run.output and "1.9.16p2" in run.output, run.output
    assert hosts[name].file("/etc/secalert/sudo_alerts.json").content_string == before


def test_every_plugin_line_is_proven_and_rolled_back_together(host):
    """A session line sudo fails with: enable rolls all of them back."""
    lines = plugin_lines(host)
    before = host.file("/etc/sudo.conf").content_string
    bad = [lines[0], lines[1].replace("ClassName=SecalertIOPlugin", "ClassName=NoSuchClass"),
           lines[2]]
    run = enable(host, bad)
    assert run.rc == 1 and "NOT enabled" in run.stderr, run.stderr
    assert host.file("/etc/sudo.conf").content_string == before
    assert sudo_works(host)
