"""The harness's runc exec (Ansible's podman_runc connection and the testinfra hosts) puts
a command where `podman exec` puts it: the same capabilities, seccomp mode, no_new_privs,
cgroup, user and PATH. Were it to run commands with more rights than podman gives them,
the scenarios would prove less than they claim."""

import os
import subprocess

import pytest
from conftest import container

PROBE = ("grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status;"
         " cat /proc/self/cgroup; id; echo PATH=$PATH;"
         " readlink /proc/self/ns/pid /proc/self/ns/mnt")


def podman_exec(name):
    return subprocess.run(["podman", "exec", container(name), "/bin/sh", "-c", PROBE],
                          capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("name", ["secalert-apprise-debian12", "secalert-apprise-debian13"])
def test_testinfra_runs_commands_as_podman_exec_does(hosts, name):
    assert hosts[name].check_output(PROBE) + "\n" == podman_exec(name)


@pytest.mark.parametrize("name", ["secalert-apprise-debian12", "secalert-apprise-debian13"])
def test_ansible_runs_commands_as_podman_exec_does(name):
    run = subprocess.run(
        ["ansible", name, "-i", os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"]),
         "-o", "-m", "ansible.builtin.shell", "-a", PROBE],
        capture_output=True, text=True, check=False,
        env={**os.environ, "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1"})
    assert run.returncode == 0, run.stdout + run.stderr
    # one line: "<host> | CHANGED | rc=0 | (stdout) <lines joined by \n>"
    stdout = run.stdout.split(" | (stdout) ", 1)[1].rstrip("\n").replace("\\n", "\n")
    assert stdout + "\n" == podman_exec(name)
