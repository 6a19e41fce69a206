"""playbooks/verify.yml proves a direct-mode host through its real path: a sudo event
through the plugin, the spool, the sender and Apprise, read back from the host's own
delivery ledger (what a target took, not a guess)."""

import os

TOP = os.environ["MOLECULE_PROJECT_DIRECTORY"]
VERIFY = os.path.join(TOP, "playbooks", "verify.yml")
LEDGER = "/var/log/secalert/sudo-delivered.log"


def test_verify_proves_each_direct_host_through_the_sender(playbook, hosts):
    run = playbook.run(VERIFY)
    assert run.returncode == 0, run.output
    for name, host in hosts.items():
        assert f"{name} | direct | ok (sudo event delivered by the direct-mode sender)" \
            in run.output, run.output
        ledger = host.file(LEDGER)
        assert (ledger.user, ledger.mode) == ("root", 0o600)
        assert "secalert-verify-" in ledger.content_string
        assert host.file(os.path.dirname(LEDGER)).mode == 0o700


def test_verify_fails_when_the_ledger_does_not_show_the_event(playbook, hosts):
    """The same run, reading a ledger the sender does not write: every host fails, and
    the table says where it looked."""
    run = playbook.run(VERIFY, extra_vars={"sudo_alerts_direct_ledger": "/nonexistent.log",
                                           "secalert_verify_timeout": 4})
    assert run.returncode != 0
    for name in hosts:
        assert f"{name} | direct | FAILED: the sudo event is not in /nonexistent.log" \
            in run.output, run.output
