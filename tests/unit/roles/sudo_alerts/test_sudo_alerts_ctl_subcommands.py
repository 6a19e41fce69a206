"""sudo-alerts-ctl subcommands: the sudoers drop-in for log_subcmds/intercept is installed
only when visudo accepts it and sudo is proven to work with it, else the previous one
stays; failing writes change nothing; the guard sets aside a drop-in sudo fails with.

Stand-ins first on PATH: `visudo` refuses a file with "bogus" in it, `sudo` fails the
proof call (`env true`) while the root-only proof drop-in asks for intercept_type=trace
(what a container does to real sudo: "unable to set seccomp filter"). Real sudo and
visudo run the same paths in the sudo_alerts scenario (test_subcommands.py).
"""

import os

import pytest
from test_sudo_alerts_ctl import LINE, OTHER, Host, _script

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="sudo-alerts-ctl runs as root only")

GOOD = "Defaults:alice log_subcmds, intercept, intercept_type=dso\n"
OTHER_GOOD = "Defaults:%admins log_subcmds, intercept_type=dso\n"
TRACE = "Defaults:alice log_subcmds, intercept_type=trace\n"


class SudoersHost(Host):
    def __init__(self, tmp_path):
        super().__init__(tmp_path)
        self.sudoers_d = tmp_path / "sudoers.d"
        self.sudoers_d.mkdir(mode=0o755)
        self.dropin = self.sudoers_d / "secalert-subcommands"
        self.proof = self.sudoers_d / "secalert-subcommands-proof"
        self.aside = self.sudoers_d / ".secalert-subcommands.disabled"
        self.staged = tmp_path / "staged"
        _script(self.bin / "visudo",
                'if [ "$1" = -cf ]; then\n'
                '  if grep -q bogus "$2"; then\n'
                '    echo "$2:1:20: unknown defaults entry \\"bogus\\"" >&2; exit 1\n'
                '  fi\n'
                '  echo "$2: parsed OK"; exit 0\nfi\necho "/etc/sudoers: parsed OK"\n'
                # what the host's sudoers includes (@includedir): the drop-in directory
                f'[ -e {tmp_path}/no-includedir ] && exit 0\n'
                f'for f in {self.sudoers_d}/*; do case ${{f##*/}} in *.*|*~) ;; '
                '*) [ -e "$f" ] && echo "$f: parsed OK" ;; esac; done\n')
        _script(self.bin / "sudo",
                '[ "$1" = -V ] && { echo "secalert sudo audit plugin version 9"; exit 0; }\n'
                f'if [ "$2" = env ] && grep -qs trace {self.proof}; then\n'
                '  echo "sudo: unable to set seccomp filter: Permission denied" >&2; exit 1\n'
                'fi\nexit 0\n')

    def stage(self, text):
        self.staged.write_text(text)
        self.staged.chmod(0o440)
        return str(self.staged)

    def ctl(self, *args, env=None, content=f"{OTHER}\n{LINE}\n"):
        return self.run(*args, content=content,
                        env={"SECALERT_SUDOERS_DROPIN": str(self.dropin), **(env or {})})

    def leftovers(self):
        return sorted(p.name for p in self.sudoers_d.iterdir()
                      if p.name not in ("secalert-subcommands",
                                        ".secalert-subcommands.disabled"))


@pytest.fixture
def host(tmp_path):
    return SudoersHost(tmp_path)


def test_install_proves_and_is_idempotent(host):
    run = host.ctl("subcommands", host.stage(GOOD))
    assert (run.returncode, run.stdout) == (0, "changed\n"), run.stderr
    assert host.dropin.read_text() == GOOD and (host.dropin.stat().st_mode & 0o777) == 0o440
    assert any("installed" in line and "proved" in line for line in host.logged())
    assert host.ctl("subcommands", host.stage(GOOD)).stdout == "unchanged\n"
    assert host.ctl("subcommands", "--check", host.stage(GOOD)).stdout == "unchanged\n"
    assert host.ctl("subcommands", "--check", host.stage(OTHER_GOOD)).stdout == "changed\n"
    assert host.dropin.read_text() == GOOD  # --check changed nothing
    assert host.leftovers() == []


def test_what_visudo_refuses_is_never_installed(host):
    host.ctl("subcommands", host.stage(GOOD))
    run = host.ctl("subcommands", host.stage("Defaults:alice log_subcmds, bogus\n"))
    assert run.returncode == 1
    assert "visudo rejects" in run.stderr and "unknown defaults entry" in run.stderr
    assert host.dropin.read_text() == GOOD and host.leftovers() == []


def test_settings_sudo_fails_with_are_rolled_back(host):
    host.ctl("subcommands", host.stage(GOOD))
    run = host.ctl("subcommands", host.stage(TRACE))
    assert run.returncode == 1
    assert "unable to set seccomp filter" in run.stderr
    assert "the previous" in run.stderr and "is restored" in run.stderr
    assert host.dropin.read_text() == GOOD
    assert not host.proof.exists() and host.leftovers() == []


def test_a_drop_in_sudo_does_not_read_is_refused(host, tmp_path):
    """A sudoers without @includedir /etc/sudoers.d: the settings would do nothing."""
    (tmp_path / "no-includedir").touch()
    run = host.ctl("subcommands", host.stage(GOOD))
    assert run.returncode == 1 and "sudo does not read" in run.stderr, run.stderr
    assert not host.dropin.exists() and host.leftovers() == []


def test_a_first_drop_in_sudo_fails_with_is_removed(host):
    run = host.ctl("subcommands", host.stage(TRACE))
    assert run.returncode == 1 and "is removed" in run.stderr, run.stderr
    assert not host.dropin.exists() and host.leftovers() == []


@pytest.mark.parametrize("name", ["mktemp", "cp", "chmod", "mv"])
def test_a_failing_write_changes_nothing_and_says_so(host, name):
    host.ctl("subcommands", host.stage(GOOD))
    _script(host.bin / name, "exit 1\n")
    run = host.ctl("subcommands", host.stage(OTHER_GOOD))
    os.unlink(host.bin / name)
    assert run.returncode == 1 and "NOT installed" in run.stderr, run.stderr
    assert host.dropin.read_text() == GOOD
    assert host.leftovers() == [] and run.stdout == ""


def test_a_staged_file_others_can_write_is_refused(host):
    path = host.stage(GOOD)
    os.chmod(path, 0o666)  # noqa: S103 - what the test refuses
    run = host.ctl("subcommands", path)
    assert run.returncode == 2 and "writable by others" in run.stderr
    assert not host.dropin.exists()


def test_remove(host):
    host.ctl("subcommands", host.stage(GOOD))
    assert host.ctl("subcommands", "--remove").stdout == "changed\n"
    assert not host.dropin.exists()
    assert host.ctl("subcommands", "--remove").stdout == "unchanged\n"


def test_the_guard_sets_a_drop_in_sudo_fails_with_aside_until_a_role_run(host):
    host.ctl("subcommands", host.stage(GOOD))
    host.dropin.write_text(TRACE)  # an upgrade broke it, say
    assert host.ctl("guard").returncode == 0
    assert not host.dropin.exists() and host.aside.read_text() == TRACE
    assert not host.proof.exists()
    (event,) = [e for _prio, e in host.events()]
    assert (event["state"], event["file"]) == ("off", str(host.dropin))
    assert "unable to set seccomp filter" in event["detail"]
    # guard runs while it is aside: no "back on"
    host.ctl("guard")
    assert [e["state"] for _prio, e in host.events()] == ["off"]
    # the role's next run installs the staged settings again: back on
    run = host.ctl("subcommands", host.stage(GOOD))
    assert run.returncode == 0 and host.dropin.read_text() == GOOD and not host.aside.exists()
    assert [e["state"] for _prio, e in host.events()] == ["off", "on"]


def test_an_interrupted_proofs_drop_in_is_removed_by_the_next_run(host):
    """The proof drop-in applies the settings to root: one left by a killed run goes at
    the next guard or subcommands run, also when there is no drop-in to prove."""
    host.proof.write_text(TRACE)
    host.ctl("guard")
    assert not host.proof.exists()
    host.proof.write_text(TRACE)
    host.ctl("subcommands", "--remove")
    assert not host.proof.exists()


def test_the_guard_does_not_blame_the_drop_in_when_sudo_fails_without_it(host, tmp_path):
    """sudo breaks between the guard's first look and the drop-in's proof (the plugin was
    being replaced, say): sudo fails with and without the drop-in, so it is not the
    drop-in's fault; it stays, and no alert names it."""
    host.ctl("subcommands", host.stage(GOOD))
    count = tmp_path / "sudo-calls"
    _script(host.bin / "sudo",
            '[ "$1" = -V ] && { echo "secalert sudo audit plugin version 9"; exit 0; }\n'
            f'n=$(cat {count} 2>/dev/null || echo 0); echo $((n + 1)) > {count}\n'
            '[ "$n" -ge 1 ] && { echo "sudo: error initializing audit plugin" >&2; exit 1; }\n'
            'exit 0\n')
    host.ctl("guard")
    assert host.dropin.read_text() == GOOD and not host.aside.exists()
    assert not [e for _prio, e in host.events() if e.get("file") == str(host.dropin)]
