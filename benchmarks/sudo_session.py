"""What session rules (the I/O plugin) cost inside a session (prints figures, asserts nothing).

Runs against a converged `sudo_alerts` scenario host, whose sudo.conf has the role's
session lines (`sudo_alerts_session: true`)::

    molecule converge -s sudo_alerts
    python benchmarks/sudo_session.py [--host NAME] [--rounds 3] [--megabytes 50] [--keys 200]
    molecule destroy -s sudo_alerts

Configurations (one sudo.conf each; the audit plugin's line and the rest of the host's
file are kept):

no-io     no Python I/O plugin (sudo's own sudoers_io as the host has it)
empty-io  an empty Python I/O plugin with every log callback (the C bridge's floor: one
          Python call and one decode per buffer)
session   the role's lines: secalert's I/O plugin with the shipped rules and the secret
          pattern, beside sudoers_io

Rows: MEGABYTES of base64 text (76-character lines, written once to the host) shown
through a pty (`sudo cat FILE` on a new pty, read to the end) and piped through sudo
(`cat FILE | sudo cat > /dev/null`: sudo's stdin and stdout are both pipes; and into a
shell, `sudo sh -c 'cat > /dev/null'`, whose piped input session rules judge), wall time;
and the delay from a key written to the pty of `sudo -s` (bash) until its echo is read
back, KEYS keys, median and p90. The configurations are interleaved round by round.
Throughput ratio = no-io's time / the configuration's (1.00: as fast; the goals: pty
>= 0.95, pipe >= 0.5); the echo row adds the difference of the medians (goal < 1 ms).
"""

import argparse
import json
import subprocess
import sys

DRIVER = r'''
import json, os, pty, random, select, shutil, statistics, subprocess, sys, time

BENCH = "/root/secalert-bench-io"
CONF = "/etc/sudo.conf"
SO = "/usr/libexec/secalert/python_plugin.so"
EMPTY = """
import sudo

class EmptyIO(sudo.Plugin):
    def open(self, argv, command_info):
        return sudo.RC.OK
    def log_ttyin(self, buf):
        return sudo.RC.OK
    def log_ttyout(self, buf):
        return sudo.RC.OK
    def log_stdin(self, buf):
        return sudo.RC.OK
    def log_stdout(self, buf):
        return sudo.RC.OK
    def log_stderr(self, buf):
        return sudo.RC.OK
    def close(self, exit_status, error):
        pass
"""


def setup(megabytes):
    os.makedirs(BENCH, mode=0o700, exist_ok=True)
    with open(f"{BENCH}/empty_io.py", "w") as fh:
        fh.write(EMPTY)
    data = f"{BENCH}/data.txt"
    if not os.path.exists(data) or os.path.getsize(data) < megabytes * 1000000:
        subprocess.run(f"head -c {megabytes * 750000} /dev/urandom | base64 -w 76 "
                       f"| head -c {megabytes * 1000000} > {data}", shell=True, check=True)
    with open(CONF) as fh:
        live = fh.read()
    shutil.copy2(CONF, f"{BENCH}/sudo.conf.orig")
    if "Plugin python_io " not in live:
        raise SystemExit("sudo.conf has no python_io line: converge with sudo_alerts_session")
    base = [ln for ln in live.splitlines() if not ln.startswith("Plugin python_io ")
            and not ln.endswith("#secalert-keeps-sudoers_io")]
    empty = [f"Plugin python_io {SO} ModulePath={BENCH}/empty_io.py ClassName=EmptyIO",
             "Plugin sudoers_io sudoers.so"]
    return {"no-io": "\n".join(base) + "\n", "empty-io": "\n".join(base + empty) + "\n",
            "session": live}, data


def install(text):
    with open(CONF + ".bench", "w") as fh:
        fh.write(text)
    os.chmod(CONF + ".bench", 0o644)
    os.replace(CONF + ".bench", CONF)


def drain(fd):
    total = 0
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            return total
        if not chunk:
            return total
        total += len(chunk)


def pty_run(data):
    start = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp("sudo", ["sudo", "cat", data])
    size = drain(fd)
    _pid, status = os.waitpid(pid, 0)
    os.close(fd)
    return time.perf_counter() - start, size, os.waitstatus_to_exitcode(status)


def pipe_run(data, command="cat"):
    start = time.perf_counter()
    proc = subprocess.run(f"cat {data} | sudo {command} > /dev/null", shell=True, timeout=600,
                          check=False)
    return time.perf_counter() - start, proc.returncode


def echo_delays(keys):
    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe("sudo", ["sudo", "-s"], dict(os.environ, PS1="$ ", SHELL="/bin/bash"))
    delays = []
    def read_for(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if select.select([fd], [], [], 0.01)[0]:
                try:
                    if not os.read(fd, 65536):
                        return
                except OSError:  # the shell has ended
                    return
    read_for(1.0)
    for i in range(keys):
        key = b"abcdefgh"[i % 8:i % 8 + 1]
        start = time.perf_counter()
        os.write(fd, key)
        got = b""
        while key not in got:
            if not select.select([fd], [], [], 2.0)[0]:
                break
            got += os.read(fd, 1024)
        delays.append((time.perf_counter() - start) * 1000)
        if i % 50 == 49:
            os.write(fd, b"\x15")  # ^U: keep the line short
            read_for(0.05)
    os.write(fd, b"\x15exit\r")
    read_for(2.0)
    os.waitpid(pid, 0)
    os.close(fd)
    return delays


def main():
    spec = json.loads(sys.argv[1])
    texts, data = setup(spec["megabytes"])
    rng = random.Random(1)
    out = {name: {"pty": [], "pipe": [], "shell": [], "echo": [], "failed": 0}
           for name in texts}
    try:
        for _round in range(spec["rounds"]):
            order = list(texts)
            rng.shuffle(order)
            for name in order:
                install(texts[name])
                seconds, size, rc = pty_run(data)
                out[name]["pty"].append(seconds)
                out[name]["failed"] += int(rc != 0 or size < spec["megabytes"] * 1000000)
                seconds, rc = pipe_run(data)
                out[name]["pipe"].append(seconds)
                out[name]["failed"] += int(rc != 0)
                # a shell reads the pipe: session rules judge every line holding a literal
                seconds, rc = pipe_run(data, "sh -c 'cat > /dev/null'")
                out[name]["shell"].append(seconds)
                out[name]["failed"] += int(rc != 0)
                out[name]["echo"] += echo_delays(spec["keys"] // spec["rounds"])
    finally:
        shutil.copy2(f"{BENCH}/sudo.conf.orig", CONF)
    print(json.dumps(out))


main()
'''


def median(values):
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="secalert-sudo_alerts-debian12")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--megabytes", type=int, default=50)
    parser.add_argument("--keys", type=int, default=240)
    args = parser.parse_args()
    spec = json.dumps({"rounds": args.rounds, "megabytes": args.megabytes, "keys": args.keys})
    proc = subprocess.run(["podman", "exec", args.host, "python3", "-c", DRIVER, spec],
                          capture_output=True, text=True, timeout=3600, check=False)
    if proc.returncode != 0:
        sys.exit(f"driver failed: {proc.stderr[-2000:]}")
    data = json.loads(proc.stdout)
    base = data["no-io"]
    print(f"sudo sessions on {args.host}: {args.megabytes} MB of base64 text, "
          f"{args.rounds} rounds interleaved; throughput ratio = no-io time / time\n")
    print("| config | pty s (median) | pty ratio | pipe s (median) | pipe ratio "
          "| pipe to sh s | pipe to sh ratio | echo ms median | echo p90 | echo added ms "
          "| failed |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in ("no-io", "empty-io", "session"):
        cell = data[name]
        print(f"| {name} | {median(cell['pty']):.2f} | "
              f"{median(base['pty']) / median(cell['pty']):.2f} | {median(cell['pipe']):.2f} | "
              f"{median(base['pipe']) / median(cell['pipe']):.2f} | "
              f"{median(cell['shell']):.2f} | "
              f"{median(base['shell']) / median(cell['shell']):.2f} | "
              f"{median(cell['echo']):.3f} | {percentile(cell['echo'], 0.9):.3f} | "
              f"{median(cell['echo']) - median(base['echo']):+.3f} | {cell['failed']} |")


if __name__ == "__main__":
    main()
