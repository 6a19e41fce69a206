"""The test receiver's client: its CLI (tests/receiver/README.md), run in the receiver's
container with ``podman exec`` as the Molecule tests, the demo and the benchmarks reach
it (no published ports), or on this machine against a control URL (the unit tests)."""

import json
import os
import subprocess
import sys

from . import TOP
from .polling import wait_for

RECEIVER_PY = os.path.join(TOP, "tests", "receiver", "receiver.py")
# The receiver bounds a server-side wait (list --wait) to this many seconds; a call may
# take that long plus TIMEOUT.
MAX_WAIT = 600
TIMEOUT = 60


class ReceiverError(RuntimeError):
    """A receiver command failed: no answer, or an answer other than success."""


class Receiver:
    """One receiver: ``Receiver(container)`` runs ``receiver.py`` inside that container;
    ``Receiver(control=URL)`` runs this checkout's receiver.py here against ``URL``."""

    def __init__(self, container=None, control=None):
        if container:
            self.command = ["podman", "exec", container, "python3", "/receiver/receiver.py"]
        else:
            self.command = [sys.executable, RECEIVER_PY]
        self.container = container
        self.control = control

    def run(self, command, *args, wait=0, ok=(0,)):
        """``receiver.py COMMAND ARGS``; raise ReceiverError unless its exit status is in
        ``ok`` (None: any)."""
        argv = [*self.command, command]
        if self.control:
            argv += ["--control", self.control]
        argv += [str(arg) for arg in args]
        timeout = TIMEOUT + min(max(float(wait), 0.0), MAX_WAIT)
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                  check=False)
        except subprocess.TimeoutExpired as exc:
            raise ReceiverError(f"receiver {command}: no answer in {timeout:.0f} s") from exc
        if ok is not None and proc.returncode not in ok:
            raise ReceiverError(f"receiver {command} {' '.join(argv[len(self.command) + 1:])}:"
                                f" rc={proc.returncode} {proc.stderr.strip()}")
        return proc

    def messages(self, contains=None, channel=None, wait=0, count=0):
        """Stored notifications (oldest first) that contain ``contains`` (in title, body,
        path or raw) on ``channel``; with ``wait``, the receiver waits up to that many
        seconds until ``count`` match (then returns what matched, maybe fewer)."""
        args = []
        if contains:
            args += ["--contains", contains]
        if channel:
            args += ["--channel", channel]
        if wait:
            args += ["--wait", wait, "--count", count]
        # exit 1: fewer than count matched within wait
        return json.loads(self.run("list", *args, wait=wait, ok=(0, 1)).stdout)["messages"]

    def mode(self, mode, *extra):
        """The HTTP listener's mode: ok, 429, 500, slow, hang or down (extra: --delay S,
        --retry-after S)."""
        self.run("mode", mode, *extra)

    def stats(self):
        return json.loads(self.run("stats").stdout)

    def clear(self):
        """Forget messages and counters."""
        self.run("clear")

    def reset(self):
        """Clear, and mode ok."""
        self.run("reset")

    def health(self):
        """True when the control API answers."""
        try:
            return self.run("health", ok=None).returncode == 0
        except ReceiverError:
            return False

    def wait_healthy(self, timeout=30):
        return wait_for(self.health, timeout, interval=1)
