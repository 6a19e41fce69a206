"""Fixtures shared by the Molecule scenarios' testinfra tests.

Hosts are reached as ``podman://CONTAINER`` (ten times faster than testinfra's Ansible
backend), keyed by inventory name; the receiver is queried with ``podman exec``;
playbooks run with the scenario's own inventory, so group_vars apply exactly as in
converge.
"""

import json
import os
import re
import subprocess
import time
import uuid

import pytest
import testinfra
import yaml
from ansible.release import __version__ as CORE_VERSION  # the core this scenario runs on


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
    return f"secalert-{run_name()}"


def container(platform):
    """The podman container of a platform (inventory name) in this run."""
    path = os.environ.get("MOLECULE_INSTANCE_CONFIG", "")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            for instance in yaml.safe_load(handle) or []:
                if instance["instance"] == platform:
                    return instance["address"]
    return platform


class Receiver:
    """The test receiver of this scenario (see tests/receiver/README.md)."""

    def __init__(self, container):
        self.container = container

    def _cli(self, *args, check=True):
        proc = subprocess.run(
            ["podman", "exec", self.container, "python3", "/receiver/receiver.py", *args],
            capture_output=True,
            text=True,
            timeout=660,
            check=False,
        )
        if check and proc.returncode not in (0, 1):
            raise AssertionError(f"receiver {args}: rc={proc.returncode} {proc.stderr}")
        return proc

    def messages(self, contains=None, channel=None, wait=0, count=0):
        args = ["list"]
        if contains:
            args += ["--contains", contains]
        if channel:
            args += ["--channel", channel]
        if wait:
            args += ["--wait", str(wait), "--count", str(count)]
        return json.loads(self._cli(*args).stdout)["messages"]

    def mode(self, mode, *extra):
        self._cli("mode", mode, *extra)

    def stats(self):
        return json.loads(self._cli("stats").stdout)

    def reset(self):
        self._cli("reset")


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


@pytest.fixture(scope="session")
def hosts(platform_names):
    return {name: testinfra.get_host(f"podman://{container(name)}") for name in platform_names}


@pytest.fixture(scope="session")
def group_vars(scenario):
    return scenario["provisioner"]["inventory"]["group_vars"]["all"]


@pytest.fixture(scope="session")
def receiver():
    return Receiver(f"{network()}-receiver")


@pytest.fixture(scope="session")
def playbook():
    return Playbook()


@pytest.fixture()
def marker():
    """A unique string to find one test's notifications among all others."""
    return f"mark-{uuid.uuid4().hex[:12]}"


DIGEST_TITLE = re.compile(r"^(\d+) events: ")


def counted_events(messages):
    """How many events these notifications stand for: the apprise() destination titles a
    digest "N events: ...", which counts N; any other notification counts 1."""
    return sum(int(m.group(1)) if (m := DIGEST_TITLE.match(x["title"] or "")) else 1
               for x in messages)


def wait_for(predicate, timeout, interval=0.5):
    """Poll ``predicate`` until it is truthy or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


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


def token_leaks(host, token):
    """Where ``token`` shows on ``host``: world-readable files, the journal, process
    arguments. An empty list is what every scenario must see."""
    found = host.run(
        "find /etc /opt /var /tmp /root /home /usr/local /run -xdev -type f -perm -004 "
        "-size -20M -exec grep -lF %s {} + 2>/dev/null", token,
    ).stdout.split()
    if host.run("journalctl --no-pager -o cat | grep -cF %s", token).stdout.strip() != "0":
        found.append("the journal")
    if token in host.check_output("ps -eo args"):
        found.append("process arguments")
    return found


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
