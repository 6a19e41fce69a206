"""claim-plugin-build.sh: one python_plugin.so build per kind when rollouts share the
controller's cache (run here as the role runs it on the controller: sh, a real lock
directory, real processes)."""

import os
import subprocess
import threading

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "roles", "sudo_alerts",
                      "files", "claim-plugin-build.sh")


def claim(artifact, wait=30):
    proc = subprocess.run(["sh", SCRIPT, str(artifact), str(wait)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.fixture
def artifact(tmp_path):
    return tmp_path / "cache" / "debian12-x86_64-sudo1.9-py3.11" / "python_plugin.so"


def lock_of(artifact):
    return artifact.parent / (artifact.name + ".building")


def test_the_first_run_claims_and_a_built_kind_needs_no_build(artifact):
    assert claim(artifact) == "claimed"
    assert lock_of(artifact).is_dir()
    artifact.write_bytes(b"so")
    assert claim(artifact) == "built"


def test_a_run_waits_for_the_live_holder_and_uses_its_build(artifact):
    lock = lock_of(artifact)
    lock.mkdir(parents=True)
    (lock / "pid").write_text(f"{os.getpid()}\n")  # a live run holds it
    done = threading.Timer(1.5, lambda: artifact.write_bytes(b"so"))
    done.start()
    try:
        assert claim(artifact) == "built"
    finally:
        done.join()


def test_the_lock_of_a_run_that_is_gone_is_taken_over(artifact):
    gone = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True,
                          check=True).stdout.strip()
    lock = lock_of(artifact)
    lock.mkdir(parents=True)
    (lock / "pid").write_text(gone + "\n")
    assert claim(artifact, wait=5) == "claimed"


def test_a_holder_that_never_finishes_is_waited_for_only_so_long(artifact):
    lock = lock_of(artifact)
    lock.mkdir(parents=True)
    (lock / "pid").write_text(f"{os.getpid()}\n")
    assert claim(artifact, wait=2) == "unlocked"
    assert not artifact.exists()


def test_the_lock_names_the_ansible_playbook_not_its_worker(tmp_path, artifact):
    """ansible-playbook forks a worker per task (the same command line), which runs the
    module: the lock must name the playbook run, which outlives the task."""
    (tmp_path / "main").mkdir()
    (tmp_path / "worker").mkdir()
    main, worker = tmp_path / "main" / "ansible-playbook", tmp_path / "worker" / "ansible-playbook"
    main.write_text(f"#!/bin/sh\necho $$\n{worker}\n")
    worker.write_text(f"#!/bin/sh\nsh {SCRIPT} {artifact} 5\n")
    for script in (main, worker):
        script.chmod(0o755)
    out = subprocess.run([str(main)], capture_output=True, text=True, timeout=60,
                         check=True).stdout.split()
    assert out[1] == "claimed"
    assert (lock_of(artifact) / "pid").read_text().strip() == out[0]
