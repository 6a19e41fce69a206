"""What following subcommands costs (prints figures, asserts nothing).

Runs against a converged `sudo_alerts` scenario's Debian 13 host, where the role follows
alice's sudo'd commands (sudo_alerts_subcommands, intercept, intercept_type=dso: the
scenario's host_vars) and the plugin logs each one::

    molecule converge -s sudo_alerts
    python benchmarks/sudo_subcommands.py [--rounds 15] [--count 200]
    molecule destroy -s sudo_alerts

alice runs `sudo -S /bin/bash -c 'for ((i = 0; i < N; i++)); do /usr/bin/true; done'` with N = 0
and N = --count, with the role's drop-in in place (`on`) and moved out of sudoers.d
(`off`), and with the drop-in but our plugin's sudo.conf line commented out (`sudo only`),
the six cases interleaved round by round (shuffled each round; the guard's path unit is
stopped meanwhile). The time of one subcommand is the slope: (median(N) - median(0)) / N.
What following adds is on's slope minus off's; sudo only's slope minus off's is sudo's own
part (the intercept library, the policy check), the rest our plugin's (the rules, the
event, the syslog datagram). Timing runs inside the container (no podman exec per sample).
"""

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from sudo_latency import median  # noqa: E402

DRIVER = r'''
import json, os, random, statistics, subprocess, sys, time

DROPIN = "/etc/sudoers.d/secalert-subcommands"
ASIDE = "/root/secalert-subcommands.bench"
CONF = "/etc/sudo.conf"
MODULE = "ModulePath=/usr/libexec/secalert/secalert_sudo_audit.py"
rounds, count, seed = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
random.seed(seed)
with open(CONF) as handle:
    with_plugin = handle.read()
without_plugin = "".join("#" + line if MODULE in line else line
                         for line in with_plugin.splitlines(True))

def command(n):
    # arithmetic, not $(seq): under intercept seq is a subcommand too, and alice's sudoers
    # rule does not allow it
    loop = f"for ((i = 0; i < {n}; i++)); do /usr/bin/true; done" if n else ":"
    inner = f"printf '%s\\n' Al1ce-sudo-pass | sudo -S -p '' /bin/bash -c '{loop}'"
    return ["su", "-", "alice", "-c", inner]

def write_conf(text):
    with open(CONF + ".bench", "w") as handle:
        handle.write(text)
    os.chmod(CONF + ".bench", 0o644)
    os.rename(CONF + ".bench", CONF)

def state(name):
    dropin = name != "off"
    if dropin and os.path.exists(ASIDE):
        os.rename(ASIDE, DROPIN)
    if not dropin and os.path.exists(DROPIN):
        os.rename(DROPIN, ASIDE)
    write_conf(without_plugin if name == "sudo only" else with_plugin)

# off: no drop-in (our plugin logs the sudo call); on: the role's drop-in and our plugin
# (an event per subcommand); sudo only: the drop-in, our plugin line commented out (what
# sudo's intercept costs by itself)
cases = [(name, n) for name in ("off", "on", "sudo only") for n in (0, count)]
samples = {f"{name} {n}": [] for name, n in cases}
# the guard's path unit would run the guard on every sudo.conf change
subprocess.run(["systemctl", "stop", "secalert-sudo-guard.path"], check=False)
try:
    for _round in range(rounds):
        random.shuffle(cases)
        for name, n in cases:
            state(name)
            start = time.perf_counter()
            subprocess.run(command(n), check=True, capture_output=True, timeout=300)
            samples[f"{name} {n}"].append(time.perf_counter() - start)
finally:
    state("on")
    subprocess.run(["systemctl", "start", "secalert-sudo-guard.path"], check=False)
print(json.dumps(samples))
'''


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="secalert-sudo_alerts-debian13")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    check = subprocess.run(["podman", "exec", args.host, "test", "-e",
                            "/etc/sudoers.d/secalert-subcommands"], check=False)
    if check.returncode != 0:
        raise SystemExit(f"{args.host} has no /etc/sudoers.d/secalert-subcommands: converge the "
                         "sudo_alerts scenario first")
    proc = subprocess.run(["podman", "exec", args.host, "python3", "-c", DRIVER, str(args.rounds),
                           str(args.count), str(args.seed)],
                          capture_output=True, text=True, timeout=3600, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"the driver failed: {proc.stderr.strip()[-2000:]}")
    samples = json.loads(proc.stdout)
    med = {name: median(values) * 1000 for name, values in samples.items()}
    print(f"# {args.host}: alice's sudo /bin/bash -c with N subcommands (/usr/bin/true), "
          f"{args.rounds} rounds, medians (ms)")
    print(f"{'drop-in':10} {'N=0':>9} {f'N={args.count}':>10} {'per subcommand':>15}")
    slope = {}
    for state in ("off", "on", "sudo only"):
        zero, many = med[f"{state} 0"], med[f"{state} {args.count}"]
        slope[state] = (many - zero) / args.count
        print(f"{state:10} {zero:9.1f} {many:10.1f} {slope[state]:12.3f} ms")
    print(f"added per subcommand: {slope['on'] - slope['off']:.3f} ms "
          f"({slope['on'] / slope['off']:.1f}x of a subcommand without the drop-in), of "
          f"which sudo's intercept alone {slope['sudo only'] - slope['off']:.3f} ms and our "
          f"plugin's event {slope['on'] - slope['sudo only']:.3f} ms; added to the sudo call "
          f"itself (N=0): {med['on 0'] - med['off 0']:.1f} ms")


if __name__ == "__main__":
    main()
