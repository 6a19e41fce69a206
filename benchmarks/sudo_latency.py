"""Latency of `sudo -n true` with and without audit plugins (prints figures, asserts nothing).

Runs against a converged `sudo_alerts` scenario host (plugin built and installed, Apprise
venv, the receiver container on the scenario network)::

    molecule converge -s sudo_alerts
    python benchmarks/sudo_latency.py [--host NAME] [--rounds 30] [--slow-rounds 8]
                                      [--compare-so .cache/sudo-alerts-plugins/KEY/python_plugin.so]
    molecule destroy -s sudo_alerts

Configurations (one sudo.conf each; the other lines of the host's sudo.conf are kept):

none    no Python plugin
empty   an empty python_audit plugin (the floor of any Python plugin: the interpreter)
syslog  secalert's plugin, syslog delivery
session secalert's plugin and its I/O plugin (sudo_alerts_session: the shipped session
        rules; the receiver answering only): what every sudo call pays for session rules
direct  secalert's plugin, direct delivery, with a rule that pushes *every* command (so
        each `sudo -n true` queues an alert; a burst is sent by one detached sender)
sync    the talk's way, a BENCHMARK FIXTURE that is not shipped: Apprise imported and
        notify() called inside sudo's accept()

each with the receiver instant (ok), delayed by one second (slow), hanging (hang, Apprise
gives up after its 4 s timeout) and down (connection refused). Within one receiver
condition the configurations are interleaved round by round (shuffled each round) so that
drift on a shared machine hits them alike. Interleaved, direct mode sees sudo calls some
100-300 ms apart; the `burst` rows run blocks of --burst consecutive calls of one
configuration (a tight loop: every call queues an alert while the sender is busy).
With --compare-so, `empty other-so` and `syslog other-so` run the same with another build of
python_plugin.so (an earlier one from the controller's cache), interleaved with the rest
while the receiver answers. Timing runs inside the container (no podman exec per sample),
with a blocking wait for each sudo (a wait with a timeout polls, in steps of up to 50 ms).
Prints median and p90 in ms and the ratio of each median to the empty plugin's in the
same condition, and the same for the CPU time of sudo (user + system, sudo and what it
waited for, not the detached sender), which other load on a shared machine disturbs far
less than wall time; the goal for `syslog` and `direct` is <= 1.05.
"""

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "support"))

from secalert_testlib.receiver_client import Receiver  # noqa: E402

CONDITIONS = {"ok": ["ok"], "slow": ["slow", "--delay", "1"], "hang": ["hang"],
              "down": ["down"]}
CONFIGS = ["none", "empty", "syslog", "direct", "sync"]

# ---------------------------------------------------------------- in-container driver
# Runs with the host's /usr/bin/python3 as root inside the container.
DRIVER = r'''
import glob, json, os, random, shutil, statistics, subprocess, sys, threading, time

BENCH = "/root/secalert-bench"
CONF = "/etc/sudo.conf"
MODULE = "/usr/libexec/secalert/secalert_sudo_audit.py"
SO = "/usr/libexec/secalert/python_plugin.so"
SPOOL_LOCK = "/run/secalert/sudo-sender.lock"

EMPTY = """
import sudo

class EmptyAudit(sudo.Plugin):
    def accept(self, plugin_name, plugin_type, command_info, run_argv, run_envp):
        return sudo.RC.OK
"""

# BENCHMARK FIXTURE, NOT SHIPPED: the talk's synchronous plugin. Apprise is imported and
# notify() runs inside sudo, once per command (the front end's accept).
SYNC = """
import sys
sys.path.insert(0, %(purelib)r)
import apprise
import sudo

class TalkSyncAudit(sudo.Plugin):
    def accept(self, plugin_name, plugin_type, command_info, run_argv, run_envp):
        if int(plugin_type) == int(sudo.PLUGIN_TYPE.SUDO):
            notifier = apprise.Apprise()
            notifier.add(%(url)r)
            notifier.notify(title="sudo by someone", body=" ".join(run_argv))
        return sudo.RC.OK
"""


def setup(url):
    os.makedirs(BENCH, mode=0o700, exist_ok=True)
    purelib = glob.glob("/opt/secalert/venv/lib/python3.*/site-packages")[0]
    with open(f"{BENCH}/empty_audit.py", "w") as fh:
        fh.write(EMPTY)
    with open(f"{BENCH}/talk_sync_audit.py", "w") as fh:
        fh.write(SYNC % {"purelib": purelib, "url": url})
    with open("/etc/secalert/sudo_alerts.json") as fh:
        live = json.load(fh)
    for name, delivery in (("syslog", "syslog"), ("direct", "direct")):
        cfg = dict(live, delivery=delivery)
        if delivery == "direct":
            cfg["rules"] = [{"name": "bench", "match": {}, "action": "alert",
                             "severity": "warning", "tags": ["sudo"]}]
        path = f"{BENCH}/{name}.json"
        with open(path, "w") as fh:
            json.dump(cfg, fh)
        os.chmod(path, 0o600)
    with open(CONF) as fh:
        original = fh.read()
    shutil.copy2(CONF, f"{BENCH}/sudo.conf.orig")
    # our lines (the audit plugin's; with session rules the I/O plugin's and sudoers_io's)
    # go: each configuration says which it has
    base = [ln for ln in original.splitlines() if "python_audit" not in ln
            and not ln.startswith("Plugin python_io ")
            and not ln.endswith("#secalert-keeps-sudoers_io")]
    plugin = f"Plugin python_audit {SO} ModulePath="
    ours = plugin + MODULE + " ClassName=SecalertAuditPlugin Config=" + BENCH + "/%s.json"
    lines = {
        "none": None,
        "empty": f"{plugin}{BENCH}/empty_audit.py ClassName=EmptyAudit",
        "syslog": ours % "syslog",
        "direct": ours % "direct",
        "sync": f"{plugin}{BENCH}/talk_sync_audit.py ClassName=TalkSyncAudit",
    }
    io = [ln for ln in original.splitlines() if ln.startswith("Plugin python_io ")
          and "ModulePath=" + MODULE in ln.split()]
    if io:  # sudo_alerts_session: the role's lines, the I/O plugin on the syslog config
        lines["session"] = "\n".join([ours % "syslog", io[0].replace(
            "Config=/etc/secalert/sudo_alerts.json", f"Config={BENCH}/syslog.json"),
            "Plugin sudoers_io sudoers.so"])
    if os.path.exists(f"{BENCH}/other.so"):  # --compare-so
        other = plugin.replace(SO, f"{BENCH}/other.so")
        lines["empty other-so"] = f"{other}{BENCH}/empty_audit.py ClassName=EmptyAudit"
        lines["syslog other-so"] = (other + MODULE + " ClassName=SecalertAuditPlugin Config="
                                    + BENCH + "/syslog.json")
    texts = {}
    for name, line in lines.items():
        texts[name] = "\n".join(base + ([line] if line else [])) + "\n"
    return texts


def settle():
    """Let a sender of the previous condition finish (bounded), start with no spool."""
    import fcntl
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        try:
            fd = os.open(SPOOL_LOCK, os.O_RDWR)
        except FileNotFoundError:
            break
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            time.sleep(0.2)
        finally:
            os.close(fd)
    for path in ("/run/secalert/sudo-spool", "/run/secalert/sudo-spool.work"):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def install(text):
    with open(CONF + ".bench", "w") as fh:
        fh.write(text)
    os.chmod(CONF + ".bench", 0o644)
    os.replace(CONF + ".bench", CONF)


def preflight(texts, configs):
    """Each configuration must run sudo before it is timed (else the figures lie)."""
    for name in configs:
        install(texts[name])
        try:
            proc = subprocess.run(["sudo", "-n", "true"], stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=30, check=False)
        except subprocess.TimeoutExpired:
            continue  # slow, not broken: that is what is being measured
        if proc.returncode != 0:
            raise SystemExit(f"{name}: sudo -n true fails: {proc.stderr.strip()}")


def timed_sudo():
    """One `sudo -n true`: (exit code or "timeout", wall ms, CPU ms of sudo and its children).

    A blocking wait4(): subprocess's wait with a timeout polls with sleeps of up to 50 ms,
    which rounded every sample up (an empty plugin's 60 ms read as 114 ms). A timer kills
    a sudo that hangs for 30 s."""
    start = time.perf_counter()
    proc = subprocess.Popen(["sudo", "-n", "true"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    timer = threading.Timer(30, proc.kill)
    timer.start()
    try:
        _pid, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    elapsed = (time.perf_counter() - start) * 1000
    proc.returncode = rc = os.waitstatus_to_exitcode(status)
    if rc == -9:
        rc = "timeout"
    return rc, elapsed, (usage.ru_utime + usage.ru_stime) * 1000


def measure(texts, configs, rounds, seed, block):
    preflight(texts, configs)
    settle()
    rng = random.Random(seed)
    samples = {name: [] for name in configs}
    cpu = {name: [] for name in configs}
    failures = {name: 0 for name in configs}
    for _round in range(rounds):
        order = list(configs)
        rng.shuffle(order)
        for name in [n for n in order for _repeat in range(block)]:
            install(texts[name])
            rc, elapsed, cpu_ms = timed_sudo()
            if rc != 0:
                failures[name] += 1
            samples[name].append(elapsed)
            # CPU of sudo and what it waited for (not the detached sender): less
            # sensitive than wall time to other load on a shared machine.
            cpu[name].append(cpu_ms)
    return samples, cpu, failures


def main():
    action, arg = sys.argv[1], json.loads(sys.argv[2])
    if action == "run":
        texts = setup(arg["url"])
        try:
            samples, cpu, failures = measure(texts, arg["configs"], arg["rounds"],
                                             arg["seed"], arg["block"])
        finally:
            shutil.copy2(f"{BENCH}/sudo.conf.orig", CONF)
        print(json.dumps({"samples": samples, "cpu": cpu, "failures": failures}))
    elif action == "restore":
        if os.path.exists(f"{BENCH}/sudo.conf.orig"):
            shutil.copy2(f"{BENCH}/sudo.conf.orig", CONF)
        shutil.rmtree(BENCH, ignore_errors=True)


main()
'''


def run(argv, timeout=3600):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def percentile(values, fraction):
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def median(values):
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="secalert-sudo_alerts-debian12")
    parser.add_argument("--receiver", default="secalert-sudo_alerts-receiver")
    parser.add_argument("--url", default="json://receiver:8080/bench")
    parser.add_argument("--rounds", type=int, default=30,
                        help="samples per configuration and condition")
    parser.add_argument("--slow-rounds", type=int, default=8,
                        help="samples for `sync` when the receiver is slow, hangs or is down "
                             "(each takes 1-5 s)")
    parser.add_argument("--burst", type=int, default=25,
                        help="consecutive calls per block in the tight-loop rows (0: skip)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--compare-so", metavar="PATH",
                        help="another python_plugin.so for the same host (say, an earlier build "
                             "from the controller's cache): adds `empty other-so` and "
                             "`syslog other-so`, interleaved with the others, receiver ok")
    args = parser.parse_args()
    configs_ok = list(CONFIGS)
    if run(["podman", "exec", args.host, "grep", "-q", "^Plugin python_io ",
            "/etc/sudo.conf"]).returncode == 0:
        configs_ok.append("session")
    if args.compare_so:
        run(["podman", "exec", args.host, "mkdir", "-p", "/root/secalert-bench"])
        proc = run(["podman", "cp", args.compare_so, f"{args.host}:/root/secalert-bench/other.so"])
        if proc.returncode != 0:
            sys.exit(f"podman cp {args.compare_so}: {proc.stderr.strip()}")
        run(["podman", "exec", args.host, "chmod", "0644", "/root/secalert-bench/other.so"])
        configs_ok += ["empty other-so", "syslog other-so"]

    receiver = Receiver(args.receiver)
    results = {}
    try:
        for condition in CONDITIONS:
            receiver.mode(*CONDITIONS[condition])
            fast = [c for c in CONFIGS if c != "sync"] if condition != "ok" else configs_ok
            plans = [(fast, args.rounds, 1)]
            if condition != "ok":
                # sync costs seconds per call here: fewer rounds, still interleaved
                plans.append((["empty", "direct", "sync"], args.slow_rounds, 1))
            if args.burst:
                plans.append((["empty", "direct"], 2, args.burst))
            for configs, rounds, block in plans:
                payload = json.dumps({"url": args.url, "configs": configs, "rounds": rounds,
                                      "seed": args.seed, "block": block})
                proc = run(["podman", "exec", args.host, "python3", "-c", DRIVER, "run",
                            payload])
                if proc.returncode != 0:
                    sys.exit(f"driver failed: {proc.stderr[-2000:]}")
                data = json.loads(proc.stdout)
                for name in configs:
                    label = name if block == 1 else f"{name} burst"
                    cell = results.setdefault((condition, label),
                                              {"samples": [], "cpu": [], "failures": 0})
                    cell["samples"] += data["samples"][name]
                    cell["cpu"] += data["cpu"][name]
                    cell["failures"] += data["failures"][name]
                print(f"# {condition}: {', '.join(configs)} x {rounds} done", file=sys.stderr)
    finally:
        receiver.mode("ok")
        run(["podman", "exec", args.host, "python3", "-c", DRIVER, "restore", "{}"])

    print(f"sudo -n true on {args.host}, ms (ratio = median / median of `empty` in the "
          "same receiver condition; burst rows: to `empty burst`; vs none = median / "
          "median of `none`, no plugin, in the same condition)\n")
    print("| receiver | config | n | median | p90 | ratio | vs none | cpu median | cpu ratio "
          "| failed |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for condition in CONDITIONS:
        for name in configs_ok + ["empty burst", "direct burst"]:
            cell = results.get((condition, name))
            if not cell:
                continue
            base = results[(condition, "empty burst" if "burst" in name else "empty")]
            floor, cpu_floor = median(base["samples"]), median(base["cpu"])
            none = results.get((condition, "none"))
            values, cpu = cell["samples"], cell["cpu"]
            native = f"{median(values) / median(none['samples']):.1f}x" if none else "-"
            print(f"| {condition} | {name} | {len(values)} | {median(values):.1f} | "
                  f"{percentile(values, 0.9):.1f} | {median(values) / floor:.2f}x | {native} | "
                  f"{median(cpu):.1f} | {median(cpu) / cpu_floor:.2f}x | "
                  f"{cell['failures']} |")


if __name__ == "__main__":
    main()
