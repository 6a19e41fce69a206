"""The whole fleet: events on the clients reach the receiver through the alert server."""

import os
import re
import subprocess

import pytest
import yaml
from conftest import newest_core_only
from secalert_testlib.leaks import grep_patterns, leaks, secrets_of, shown
from secalert_testlib.polling import wait_for

TOP = os.environ["MOLECULE_PROJECT_DIRECTORY"]
VAULT = ["--vault-id", f"demo@{TOP}/demo/vault-password.txt"]
SERVER = "secalert-fleet-server"
CLIENTS = ["secalert-fleet-debian12", "secalert-fleet-debian13"]


@pytest.fixture(scope="session")
def secrets():
    """The secret pieces of the vaulted Apprise URLs (read through ansible-vault)."""
    out = subprocess.run(
        ["ansible-vault", "view", *VAULT,
         f"{TOP}/inventories/example/group_vars/all/vault.yml"],
        capture_output=True, text=True, check=True,
    ).stdout
    pieces = secrets_of(target["url"] for target in yaml.safe_load(out)["vault_apprise_targets"])
    # the receiver URL's password at least
    assert pieces and len(pieces[0]) >= 16, [len(piece) for piece in pieces]
    return pieces


def test_verify_playbook_passes(playbook):
    run = playbook.run(os.path.join(TOP, "playbooks", "verify.yml"), *VAULT)
    assert run.returncode == 0, run.output
    for host in [SERVER, *CLIENTS]:
        assert host in run.output


def _event(receiver, text, wait=150):
    """(the alert, its line) of one event: alone, the body line that holds ``text``; in a
    digest, the event's line."""
    for message in receiver.messages(contains=text, wait=wait, count=1):
        for line in (message["body"] or "").splitlines():
            if text in line:
                return message, line
    return None, None


# The server writes a sudo event from the plugin's line (render.sudo_event; in a digest
# render.sudo_line), as the direct-mode sender does, under the client's verified name
# (its certificate) on every title and line.
@pytest.mark.parametrize("client", CLIENTS)
def test_accepted_sudo_arrives_through_the_server(hosts, receiver, client, marker):
    hosts[client].run("su - alice -c %s", f"sudo -n /bin/bash -c ': {marker}'")
    message, line = _event(receiver, f": {marker}")
    assert line, f"no accepted-sudo alert from {client}"
    # the arguments as the list they are: "-c" and ": mark-..." (quoted: it has a space)
    command = f"/bin/bash -c ': {marker}'"
    if line.startswith("• "):
        assert line.startswith(f"• [{client}] alice ran {command} as root on {client}"), line
        assert line.endswith("): accept by rule shell, warning"), line
    else:
        assert message["title"] == (f"[{client}] [warning] sudo: alice ran /bin/bash as "
                                    f"root on {client}"), message
        assert line == f"[{client}] command: {command}", message
        assert f"[{client}] rule: shell, severity: warning" in message["body"].splitlines()


@pytest.mark.parametrize("client", CLIENTS)
def test_rejected_sudo_arrives_through_the_server(hosts, receiver, client, marker):
    out = hosts[client].run("su - alice -c %s", f"sudo -n /bin/cat /etc/{marker}")
    assert out.rc != 0
    message, line = _event(receiver, f"/etc/{marker}")
    assert line, f"no rejected-sudo alert from {client}"
    # Without a password (sudo -n) sudo reports an error rather than a reject: both alert.
    # It fails before it resolves the target user: no "as ..." then.
    what = "(alice was denied|error for alice running) /bin/cat"
    if line.startswith("• "):
        assert re.match(rf"• \[{client}\] {what} /etc/{marker} on {client}\b", line), line
        assert re.search(r": (reject|error) by rule denied, critical$", line), line
    else:
        assert re.fullmatch(rf"\[{client}\] \[critical\] sudo: {what} on {client}",
                            message["title"]), message
        assert line == f"[{client}] command: /bin/cat /etc/{marker}", message
        assert f"[{client}] rule: denied, severity: critical" in message["body"].splitlines()


@newest_core_only
@pytest.mark.parametrize("client", CLIENTS)
def test_failed_ssh_logins_arrive_through_the_server(hosts, receiver, client):
    codes = []
    for _attempt in range(3):
        # A loaded host's sshd can take over 5 s to answer (seen: no attempt reached the
        # password, so nothing was logged): wait up to 30 s. sshpass exits 5 when the
        # password was refused, i.e. when sshd logged the failure.
        codes.append(hosts[client].run(
            "timeout 60 sshpass -p wrong ssh -o StrictHostKeyChecking=no "
            "-o PubkeyAuthentication=no -o ConnectTimeout=30 alice@localhost true").rc)
    assert 5 in codes, f"no attempt reached sshd's password check: {codes}"
    # Alone or as a line of a digest that mixes hosts (whose title names another event),
    # the event's body names its host: "<client> sshd[-session]: Failed password for alice".
    prefix = f"{client} sshd"

    def lines():
        got = receiver.messages(contains=prefix)
        return [line for m in got for line in (m["body"] or "").splitlines()
                if prefix in line and "alice" in line]

    assert wait_for(lines, 150, interval=2), (
        f"no SSH alert from {client}: "
        + repr([m["title"] for m in receiver.messages(contains="SSH login failure")]))


@pytest.mark.parametrize("client", CLIENTS)
def test_ansible_become_is_logged_not_alerted(hosts, receiver, client):
    """The example inventory names Ansible's user: its become commands stay in syslog."""
    logged = hosts[client].run(
        "grep -F secalert-sudo /var/log/auth.log | grep -F BECOME-SUCCESS | tail -n 1").stdout
    assert '"rule":"ansible-become"' in logged.replace(" ", ""), logged
    assert '"severity":"info"' in logged.replace(" ", ""), logged
    assert receiver.messages(contains="BECOME-SUCCESS") == []


def test_clients_hold_no_apprise_configuration(hosts, secrets):
    for client in CLIENTS:
        host = hosts[client]
        assert not host.file("/etc/secalert/apprise.yml").exists
        leaked = host.run(
            f"grep -rlsF {grep_patterns(secrets)} /etc /opt /var /root /home /usr/local /run "
            "/tmp", *secrets
        ).stdout.strip()
        assert leaked == "", f"{client}: {leaked}"


@newest_core_only
def test_no_token_in_world_readable_files_journal_or_processes(hosts, secrets):
    for name, host in hosts.items():
        assert leaks(host, secrets) == [], name


def test_rerun_changes_nothing_and_verbose_output_holds_no_token(playbook, secrets):
    run = playbook.run("converge.yml", "-vvv", *VAULT)
    assert run.returncode == 0, run.output[-3000:]
    assert run.recap and {c["changed"] for c in run.recap.values()} == {0}, run.recap
    assert shown(run.output, secrets) == []
