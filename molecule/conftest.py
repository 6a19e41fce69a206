"""Fixtures shared by the Molecule scenarios' testinfra tests.

Hosts are testinfra's podman hosts whose commands run through ``runc exec`` (RuncBackend:
what ``podman exec`` does, without its two podman processes and conmon; as the harness's
podman_runc connection), keyed by inventory name; the receiver is queried with ``podman exec``;
playbooks run with the scenario's own inventory, so group_vars apply exactly as in
converge. What the demo and the benchmarks use too (the receiver's client, digest
counting, polling, the leak check) is in tests/support/secalert_testlib.
"""

import json
import os
import re
import subprocess
import sys
import uuid

import pytest
import testinfra
import yaml
from ansible.release import __version__ as CORE_VERSION  # the core this scenario runs on
from testinfra.backend.podman import PodmanBackend

SUPPORT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "tests", "support"))
if SUPPORT not in sys.path:
    sys.path.insert(0, SUPPORT)

from secalert_testlib import fleet  # noqa: E402
from secalert_testlib.leaks import secrets_of  # noqa: E402
from secalert_testlib.polling import wait_for  # noqa: E402
from secalert_testlib.receiver_client import Receiver  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "destructive: restarts or breaks what other tests use; runs last")


def pytest_collection_modifyitems(items):
    """Tests marked destructive run after all others (in their own order): their order
    is stated by the mark, not by file names."""
    items.sort(key=lambda item: item.get_closest_marker("destructive") is not None)


def _scenario():
    with open(os.environ["MOLECULE_FILE"], encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def run_name():
    """The run's name: the scenario's, or the Makefile's "<scenario>-core<X_Y>" on a core other
    than the newest (molecule/shared/create.yml names the run's podman objects by it)."""
    return os.environ.get("SECALERT_RUN") or os.environ["MOLECULE_SCENARIO_NAME"]


def network():
    """The run's podman network."""
    return fleet.network(run_name())


def container(platform):
    """The podman container of a platform (inventory name) in this run."""
    path = os.environ.get("MOLECULE_INSTANCE_CONFIG", "")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            for instance in yaml.safe_load(handle) or []:
                if instance["instance"] == platform:
                    return instance["address"]
    return platform


class Playbook:
    """Runs ansible-playbook against the scenario's inventory."""

    def __init__(self):
        self.inventory = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
        self.directory = os.environ["MOLECULE_SCENARIO_DIRECTORY"]

    def run(self, playbook, *args, extra_vars=None, timeout=900):
        cmd = ["ansible-playbook", "-i", self.inventory, os.path.join(self.directory, playbook)]
        if extra_vars:
            cmd += ["--extra-vars", json.dumps(extra_vars)]
        cmd += list(args)
        env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
        proc.output = proc.stdout + proc.stderr
        proc.recap = {
            host: {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", counts)}
            for host, counts in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", proc.stdout, re.M)
        }
        return proc


@pytest.fixture(scope="session")
def scenario():
    return _scenario()


@pytest.fixture(scope="session")
def platform_names(scenario):
    return [platform["name"] for platform in scenario["platforms"]]


class RuncBackend(PodmanBackend):
    """testinfra's podman backend with each command run by ``runc exec`` in the container
    podman started (its namespaces, cgroup, capabilities, seccomp, user, environment), as
    tests/harness/connection_plugins/podman_runc.py does for Ansible."""

    RUNC = "runc --root /run/runc"

    def __init__(self, name, *args, **kwargs):
        super().__init__(name, *args, **kwargs)
        self._id = None

    def container_id(self):
        if self._id is None:
            self._id = subprocess.run(
                ["podman", "inspect", "--type", "container", "--format", "{{.Id}}", self.name],
                capture_output=True, text=True, check=True).stdout.strip()
        return self._id

    def run(self, command, *args, **kwargs):
        if self.user is not None:
            return super().run(command, *args, **kwargs)
        cmd = self.get_command(command, *args)
        out = self.run_local(self.RUNC + " exec %s /bin/sh -c %s", self.container_id(), cmd)
        out.command = self.encode(cmd)
        return out


@pytest.fixture(scope="session")
def hosts(platform_names):
    return {name: testinfra.host.Host(RuncBackend(container(name))) for name in platform_names}


@pytest.fixture(scope="session")
def group_vars(scenario):
    return scenario["provisioner"]["inventory"]["group_vars"]["all"]


@pytest.fixture(scope="session")
def receiver():
    return Receiver(f"{network()}-receiver")


@pytest.fixture(scope="session")
def playbook():
    return Playbook()


def _rendered(value, variables):
    """A molecule.yml string with each ``{{ name }}`` replaced from ``variables``: enough
    for the scenarios' target URLs; anything else is refused, not guessed."""
    text = re.sub(r"{{\s*(\w+)\s*}}", lambda m: str(variables[m.group(1)]), value)
    assert "{{" not in text, f"cannot render {value!r} here"
    return text


@pytest.fixture(scope="session")
def secrets(scenario, group_vars):
    """What must never show: every secret piece of the scenario's Apprise URLs
    (group_vars and host_vars ``apprise_targets``; password, path tokens, header values,
    ntfy topics) and its stand-in token ``secalert_test_token``, longest first."""
    urls = []
    for variables in (group_vars,
                      *(scenario["provisioner"]["inventory"].get("host_vars") or {}).values()):
        for target in variables.get("apprise_targets") or []:
            urls.append(_rendered(target["url"], {**group_vars, **variables}))
    return secrets_of(urls, group_vars.get("secalert_test_token"))


@pytest.fixture()
def marker():
    """A unique string to find one test's notifications among all others."""
    return f"mark-{uuid.uuid4().hex[:12]}"


def start_sudo_probe(host, unit, count=60):
    """`sudo -n true` as root every 0.1 s (``count`` times) in a transient unit."""
    host.run("rm -f /root/%s.log", unit)
    script = (f"for i in $(seq 1 {count}); do if timeout -k 2 10 sudo -n true >/dev/null "
              f"2>&1; then echo ok; else echo denied; fi; sleep 0.1; done > /root/{unit}.log; "
              f"echo done >> /root/{unit}.log")
    assert host.run("systemd-run --quiet --collect --unit %s sh -c %s", unit, script).rc == 0


def sudo_probe_result(host, unit):
    """(denied, total) of a finished start_sudo_probe (bounded wait)."""
    wait_for(lambda: host.run("grep -qx done /root/%s.log", unit).rc == 0, 60)
    lines = host.run("cat /root/%s.log", unit).stdout.split()
    assert lines and lines[-1] == "done", lines
    return lines.count("denied"), len(lines) - 1


# Tests of runtime behaviour (what hosts do, not what Ansible does) run once, on the
# newest core (make exports TOOLS_CORE); a scenario that also runs on the oldest core
# skips them there.
newest_core_only = pytest.mark.skipif(
    bool(os.environ.get("TOOLS_CORE"))
    and not CORE_VERSION.startswith(os.environ.get("TOOLS_CORE", "") + "."),
    reason="runtime behaviour: run once, on the newest core")


def record_figure(text):
    """Print a measured figure and keep it in .cache/figures (``make test``'s summary
    lists them), named by scenario and ansible-core version."""
    line = f"{os.environ['MOLECULE_SCENARIO_NAME']}@{CORE_VERSION}: {text}"
    print(line)
    path = os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], ".cache", "figures")
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")
