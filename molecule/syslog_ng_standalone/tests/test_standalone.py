"""syslog_ng_alerts standalone: each preset end to end, non-matching events, rollback."""

import json

import pytest
from secalert_testlib.leaks import grep_patterns, shown

CONF = "/etc/syslog-ng/conf.d/secalert.conf"


def sudo_event(marker, severity="critical", decision="accept", runas="root", tty="pts/0"):
    return json.dumps(
        {"schema": 1, "type": "sudo", "time": "2026-12-07T03:00:00Z", "user": "alice",
         "uid": 1000, "command": "/usr/sbin/visudo",
         "args": ["-f", f"/etc/sudoers.d/{marker}"], "runas_user": runas,
         "decision": decision, "rule": "sensitive-editor",
         "severity": severity, "tags": ["sudo", "sudo-sensitive"], "tty": tty,
         "cwd": f"/home/{marker}"},
        separators=(",", ":"),
    )


def event_text(message, marker, host=None):
    """A sudo event (message None, or a dict of sudo_event() arguments) or a log line."""
    if message is None or isinstance(message, dict):
        return sudo_event(marker, **(message or {}))
    return message.format(m=marker, h=host)


# (case, program, priority, message, title, body, notify type); {m} = marker, {h} = host
PRESET_EVENTS = [
    # Written by the destination from the event line (render: sudo), word for word what
    # the direct-mode sender writes; the host is the one syslog-ng knows.
    ("sudo_events", "secalert-sudo", "authpriv.crit", None,
     "[critical] sudo: alice ran /usr/sbin/visudo as root on {h}",
     "command: /usr/sbin/visudo -f /etc/sudoers.d/{m}\nuser: alice (uid 1000)\n"
     "run as: root\ntty: pts/0\ncwd: /home/{m}\nrule: sensitive-editor, severity: critical\n"
     "host: {h}, time: 2026-12-07T03:00:00Z", "failure"),
    # sudo -n without a password: an error, with no runas user and no tty to show
    ("sudo_events_error", "secalert-sudo", "authpriv.crit",
     {"decision": "error", "runas": "", "tty": ""},
     "[critical] sudo: error for alice running /usr/sbin/visudo on {h}",
     "command: /usr/sbin/visudo -f /etc/sudoers.d/{m}\nuser: alice (uid 1000)\n"
     "run as: ?\ncwd: /home/{m}\nrule: sensitive-editor, severity: critical\n"
     "host: {h}, time: 2026-12-07T03:00:00Z", "failure"),
    ("sudo_log", "sudo", "authpriv.notice",
     "alice : TTY=pts/0 ; PWD=/home/{m} ; USER=root ; COMMAND=/usr/bin/id",
     "sudo on {h}", "{h} sudo: {msg}", "info"),
    ("sudo_log_refused", "sudo", "authpriv.alert",
     "alice : 3 incorrect password attempts ; TTY=pts/0 ; PWD=/home/{m} ; USER=root ; "
     "COMMAND=/usr/bin/id", "sudo on {h}", "{h} sudo: {msg}", "failure"),
    ("ssh_failed", "sshd", "auth.info",
     "Failed password for invalid user {m} from 192.0.2.1 port 4242 ssh2",
     "SSH login failure on {h}", "{h} sshd: {msg}", "warning"),
    ("ssh_invalid_debian13", "sshd-session", "auth.info",
     "Invalid user {m} from 192.0.2.1 port 4242", "SSH login failure on {h}",
     "{h} sshd-session: {msg}",
     "warning"),
    ("root_login_ssh", "sshd", "auth.info",
     "Accepted publickey for root from 192.0.2.1 port 4242 ssh2: ED25519 SHA256:{m}",
     "root login on {h}", "{h} sshd: {msg}", "failure"),
    ("root_login_su", "su", "auth.notice", "(to root) {m} on pts/0",
     "root login on {h}", "{h} su: {msg}", "failure"),
    ("accounts", "useradd", "authpriv.info",
     "new user: name={m}, UID=1001, GID=1001, home=/home/{m}, shell=/bin/sh, from=none",
     "account change on {h}", "{h} useradd: {msg}", "warning"),
    ("user_rule", "secalert-outage", "user.notice", "user rule {m}",
     "outage test on {h}", "{msg}", "warning"),
]

# Events no rule matches: they must never arrive.
UNMATCHED_EVENTS = [
    ("sshd", "auth.info", "Accepted publickey for alice from 192.0.2.1 port 4242 ssh2: {m}"),
    ("sshd", "auth.info", "Connection closed by 192.0.2.1 port 4242 {m}"),
    ("secalert-sudo", "authpriv.info", None),  # routine sudo event: logged, not alerted
    ("sudo", "authpriv.info", "pam_unix(sudo:session): session opened for user root {m}"),
    ("myapp", "user.err", "COMMAND=/bin/rm -rf / Failed password for root {m}"),
    # syslog-ng's own messages (internal()) never alert, whatever they say
    ("syslog-ng", "syslog.err", "Failed password for invalid user {m} from 192.0.2.1"),
]


def logger(host, program, priority, message):
    host.check_output(
        "logger -t %s -p %s -- %s", program, priority, message
    )


def diagnostics(host):
    return "\n".join([
        host.run("journalctl -u syslog-ng --no-pager -n 40").stdout,
        host.run("grep -F 'secalert apprise' /var/log/syslog | tail -n 20").stdout,
        host.run("cat %s", CONF).stdout,
    ])


def hostname(host):
    return host.check_output("hostname")


@pytest.mark.parametrize("case", PRESET_EVENTS, ids=[c[0] for c in PRESET_EVENTS])
def test_preset_event_arrives_with_title_body_and_type(hosts, receiver, marker, case):
    _name, program, priority, message, title, body, ntype = case
    for host in hosts.values():
        logger(host, program, priority, event_text(message, marker, hostname(host)))
    got = receiver.messages(contains=marker, channel="json", wait=40, count=len(hosts))
    names = {hostname(h): h for h in hosts.values()}
    arrived = {m["title"] for m in got}
    expected = {title.format(m=marker, h=name) for name in names}
    assert arrived == expected, "\n".join(diagnostics(h) for h in hosts.values())
    for message_ in got:
        name = next(n for n in names if message_["title"] == title.format(m=marker, h=n))
        text = event_text(message, marker, name)
        assert message_["body"] == body.format(m=marker, h=name, msg=text)
        assert message_["type"] == ntype
        assert message_["path"] == ("/outage" if case[0] == "user_rule" else "/alerts")
    # Every target accepted it: the delivery ledger (read by verify.yml) says so.
    for host in hosts.values():
        ledger = host.file("/var/log/secalert/delivered.log")
        assert (ledger.user, ledger.mode) == ("root", 0o600)
        assert marker in ledger.content_string
        assert host.file("/var/log/secalert").mode == 0o700


def test_events_that_match_no_rule_do_not_arrive(hosts, receiver, marker):
    quiet = f"quiet-{marker}"
    for host in hosts.values():
        for program, priority, message in UNMATCHED_EVENTS:
            text = (sudo_event(quiet, severity="info") if message is None
                    else message.format(m=quiet))
            logger(host, program, priority, text)
        # A matching event sent after them: once it arrived, they were all processed.
        logger(host, "sshd", "auth.info", f"Invalid user {marker} from 192.0.2.1 port 1")
    got = receiver.messages(contains=marker, wait=40, count=len(hosts))
    assert len(got) >= len(hosts), "\n".join(diagnostics(h) for h in hosts.values())
    leaked = [m for m in got if quiet in m["raw"] or quiet in (m["body"] or "")]
    assert leaked == []


def test_files_are_root_owned_and_not_writable_by_others(hosts):
    for name, host in hosts.items():
        for path, mode in [
            (CONF, 0o644),
            ("/etc/syslog-ng/secalert/apprise.conf", 0o644),
            ("/etc/syslog-ng/python/secalert_syslogng.py", 0o644),
        ]:
            f = host.file(path)
            assert (f.user, f.group, f.mode) == ("root", "root", mode), f"{name}: {path}"
        writable = host.check_output(
            "find /etc/syslog-ng /etc/syslog-ng/python -perm /022 ! -type l -printf '%p\\n'"
        )
        assert writable == "", f"{name}: {writable}"
        backups = host.check_output("find /etc/syslog-ng -name '*~'")
        assert backups == "", f"{name}: backups left behind: {backups}"


def test_no_url_or_token_in_any_syslog_ng_file_or_log(hosts, secrets):
    for name, host in hosts.items():
        assert host.run(f"grep -rlF {grep_patterns(secrets)} /etc/syslog-ng /var/log",
                        *secrets).stdout == "", name
        assert host.run("grep -rlE '[a-z]+://' /etc/syslog-ng/conf.d").stdout == "", name


def test_refused_configuration_is_rolled_back(hosts, playbook, receiver, marker):
    before = {name: host.file(CONF).sha256sum for name, host in hosts.items()}
    pids = {name: host.check_output("systemctl show -p MainPID --value syslog-ng")
            for name, host in hosts.items()}
    broken = [{"name": "broken", "filter": "program('sshd' and", "tags": ["secalert"]}]
    run = playbook.run("converge.yml", extra_vars={"syslog_ng_alerts_rules": broken})
    assert run.returncode != 0, run.output
    assert "refused and the last good one restored" in run.output, run.output
    for name, host in hosts.items():
        assert host.file(CONF).sha256sum == before[name], name
        assert host.check_output("systemctl show -p MainPID --value syslog-ng") == pids[name]
        assert host.check_output("find /etc/syslog-ng -name '*~'") == "", name
        assert host.run("syslog-ng --syntax-only").rc == 0, name
        logger(host, "sshd", "auth.info", f"Invalid user {marker} from 192.0.2.1 port 2")
    got = receiver.messages(contains=marker, wait=40, count=len(hosts))
    assert len(got) == len(hosts)


def test_second_converge_changes_nothing_and_shows_no_token(playbook, secrets):
    run = playbook.run("converge.yml", "-vvv")
    assert run.returncode == 0, run.output
    assert run.recap and {c["changed"] for c in run.recap.values()} == {0}, run.recap
    assert shown(run.output, secrets) == []
