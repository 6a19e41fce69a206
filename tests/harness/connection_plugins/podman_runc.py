"""Run Ansible's commands in a podman container through its OCI runtime (runc exec).

The test harness's own connection (not shipped: galaxy.yml leaves tests/ out), for the
Molecule scenarios (the demo and the benchmarks still use containers.podman). Each `podman
exec` costs two podman processes (the command and the exec session's cleanup) and a conmon
besides the runtime; on the 2-core test machine that was about a quarter of a `make test`
run's CPU. `runc exec` enters the same container the same way podman does (the container's
own process spec: its namespaces, cgroup, capabilities, seccomp profile, environment and
user), without podman in between. Files go through the same exec (`cat`), so every path in
the container is reachable (tmpfs mounts included).

The container is found by name once (`podman inspect`) and its ID kept in a small cache
file in the system's temporary directory (CACHE_DIR); an ID whose container no longer runs
(runc's state gone, or its init process ended: the container was re-created) is looked up
again.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tempfile

from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.module_utils.common.text.converters import to_bytes, to_native, to_text
from ansible.plugins.connection import ConnectionBase, ensure_connect
from ansible.utils.display import Display

DOCUMENTATION = """
    name: podman_runc
    short_description: Run commands in a podman container through runc exec
    description:
      - Like containers.podman.podman, but runs each command with C(runc exec) in the
        container podman started, and transfers files with the same exec.
      - For containers that podman runs with the runc runtime, as root.
    options:
      remote_addr:
        description: The name or ID of the container.
        default: inventory_hostname
        vars:
          - name: inventory_hostname
          - name: ansible_host
          - name: ansible_podman_host
      runc_root:
        description: runc's state directory (podman's runtime root for runc).
        default: /run/runc
        type: str
        vars:
          - name: ansible_runc_root
        env:
          - name: ANSIBLE_RUNC_ROOT
"""

display = Display()
CACHE_DIR = os.path.join(tempfile.gettempdir(), "secalert-podman-runc-ids")


class Connection(ConnectionBase):
    transport = "podman_runc"
    has_pipelining = True

    def __init__(self, play_context, new_stdin, *args, **kwargs):
        super().__init__(play_context, new_stdin, *args, **kwargs)
        self._container = self._play_context.remote_addr
        self._id = None

    def _runc(self):
        return ["runc", "--root", self.get_option("runc_root")]

    def _state_ok(self, cid):
        """Whether runc knows the container CID and its init process still runs.

        runc's own test: the state's init PID with the start time it recorded. A container
        killed without podman's cleanup (an interrupted run) leaves its state directory
        behind; a new container of the same name then has a new ID.
        """
        if not cid:
            return False
        try:
            with open(os.path.join(self.get_option("runc_root"), cid, "state.json"),
                      encoding="utf-8") as handle:
                state = json.load(handle)
            pid, start = int(state["init_process_pid"]), int(state["init_process_start"])
            with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
                # the fields after the command's ")": state is the 3rd, starttime the 22nd
                starttime = int(handle.read().rsplit(")", 1)[1].split()[19])
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return False
        return pid > 0 and starttime == start

    def _container_id(self):
        if self._id:
            return self._id
        name = self.get_option("remote_addr") or self._container
        cache = os.path.join(CACHE_DIR, name.replace("/", "_"))
        try:
            with open(cache, encoding="utf-8") as handle:
                cid = handle.read().strip()
        except OSError:
            cid = ""
        if not self._state_ok(cid):
            proc = subprocess.run(["podman", "inspect", "--type", "container", "--format",
                                   "{{.Id}} {{.State.Running}} {{.OCIRuntime}}", name],
                                  capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise AnsibleConnectionFailure(f"container {name}: {proc.stderr.strip()}")
            cid, running, runtime = (proc.stdout.split() + ["", "", ""])[:3]
            if running != "true":
                raise AnsibleConnectionFailure(f"container {name} is not running")
            if not self._state_ok(cid):
                raise AnsibleConnectionFailure(
                    f"container {name}: runc under {self.get_option('runc_root')} does not"
                    f" run it (its runtime is {runtime!r}; this connection needs runc)")
            os.makedirs(CACHE_DIR, mode=0o700, exist_ok=True)
            tmp = f"{cache}.{os.getpid()}"
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(cid)
            os.replace(tmp, cache)
        self._id = cid
        return cid

    def _connect(self):
        super()._connect()
        if not self._connected:
            self._container_id()
            self._connected = True
        return self

    def _exec(self, argv, in_data=None):
        cmd = [*self._runc(), "exec", self._container_id(), *argv]
        display.vvv(f"RUNC EXEC {shlex.join(argv)}", host=self._container)
        proc = subprocess.run([to_bytes(a, errors="surrogate_or_strict") for a in cmd],
                              input=in_data, capture_output=True, check=False)
        return proc.returncode, proc.stdout, proc.stderr

    @ensure_connect
    def exec_command(self, cmd, in_data=None, sudoable=False):
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        argv = shlex.split(to_native(cmd, errors="surrogate_or_strict"))
        return self._exec(argv, in_data=in_data if in_data is not None else b"")

    @ensure_connect
    def put_file(self, in_path, out_path):
        super().put_file(in_path, out_path)
        display.vvv(f"PUT {in_path} TO {out_path}", host=self._container)
        try:
            with open(to_bytes(in_path, errors="surrogate_or_strict"), "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise AnsibleError(f"cannot read {in_path}: {exc}") from exc
        rc, _out, err = self._exec(["/bin/sh", "-c", 'cat > "$1"', "put", out_path], in_data=data)
        if rc != 0:
            raise AnsibleError(f"put {out_path} in {self._container}: {to_text(err).strip()}")

    @ensure_connect
    def fetch_file(self, in_path, out_path):
        super().fetch_file(in_path, out_path)
        display.vvv(f"FETCH {in_path} TO {out_path}", host=self._container)
        rc, out, err = self._exec(["cat", "--", in_path])
        if rc != 0:
            raise AnsibleError(f"fetch {in_path} from {self._container}: {to_text(err).strip()}")
        with open(to_bytes(out_path, errors="surrogate_or_strict"), "wb") as handle:
            handle.write(out)

    def close(self):
        super().close()
        self._connected = False
