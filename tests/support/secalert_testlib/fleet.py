"""A fleet in containers for the demo and the benchmarks: the podman network
``secalert-<scenario>``, the test receiver ``secalert-<scenario>-receiver`` (DNS name
``receiver``) and systemd hosts, all labelled ``secalert.scenario=<scenario>`` so that
tests/harness/cleanup removes them (also after a crash). The podman calls are those of
molecule/shared/create.yml; CONTAINERS_CONF must be set (the Makefile and demo/run do).

    PYTHONPATH=tests/support python3 -m secalert_testlib.fleet SCENARIO \
        --host NAME IMAGE ALIAS [--host ...]
"""

import argparse
import os
import subprocess
import sys

from . import TOP
from .receiver_client import Receiver

IMAGES = {"debian12": "localhost/secalert-test:debian12",
          "debian13": "localhost/secalert-test:debian13"}
CLEANUP = os.path.join(TOP, "tests", "harness", "cleanup")


class FleetError(RuntimeError):
    """A fleet could not be started."""


def podman(*args, check=True, timeout=600):
    """``podman ARGS``; its stdout, stripped. Raise FleetError on failure when ``check``."""
    proc = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout,
                          check=False)
    if check and proc.returncode != 0:
        raise FleetError(f"podman {' '.join(args)}: rc={proc.returncode} {proc.stderr.strip()}")
    return proc.stdout.strip()


def network(scenario):
    return f"secalert-{scenario}"


def cleanup(scenario):
    """Remove the scenario's containers and network (whatever is left of them)."""
    subprocess.run([CLEANUP, scenario], capture_output=True, timeout=600, check=False)


def start(scenario, hosts, boot_timeout=60, receiver_timeout=30):
    """Start the scenario afresh: its network, the receiver, and ``hosts`` (``(name,
    image, alias)``: container name, image, host name and DNS alias) booted by systemd.
    Returns the receiver's client once it answers."""
    net = network(scenario)
    label = f"secalert.scenario={scenario}"
    cleanup(scenario)
    podman("network", "create", "--label", label, net)
    podman("run", "-d", "--pull=never", f"--name={net}-receiver", "--hostname=receiver",
           f"--label={label}", f"--network={net}", "--network-alias=receiver",
           f"--volume={TOP}/tests/receiver:/receiver:ro", IMAGES["debian12"],
           "python3", "/receiver/receiver.py", "serve")
    for name, image, alias in hosts:
        podman("run", "-d", "--pull=never", "--systemd=always", f"--name={name}",
               f"--hostname={alias}", f"--label={label}", f"--network={net}",
               f"--network-alias={alias}", image, "/sbin/init")
    for name, _image, _alias in hosts:
        # "degraded" is booted too: its exit status is not the question
        podman("exec", name, "timeout", str(boot_timeout), "systemctl", "is-system-running",
               "--wait", check=False, timeout=boot_timeout + 30)
    receiver = Receiver(f"{net}-receiver")
    if not receiver.wait_healthy(receiver_timeout):
        raise FleetError(f"{net}-receiver does not answer after {receiver_timeout} s")
    return receiver


def main(argv=None):
    parser = argparse.ArgumentParser(description="Start a fleet in containers afresh.")
    parser.add_argument("scenario", help="names the network, the receiver and the label")
    parser.add_argument("--host", nargs=3, action="append", default=[],
                        metavar=("NAME", "IMAGE", "ALIAS"), help="one systemd container")
    args = parser.parse_args(argv)
    try:
        start(args.scenario, [tuple(host) for host in args.host])
    except FleetError as exc:
        print(f"fleet {args.scenario}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
