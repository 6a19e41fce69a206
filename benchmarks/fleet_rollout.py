"""Fleet benchmark: rollout time by fleet size, and end-to-end alert latency.

    make bench-fleet    (or: python3 benchmarks/fleet_rollout.py [--sizes 1 3 6] [--events 50])

For each size N (one alert server and N-1 clients, alternating Debian 12 and 13, plus the
test receiver) it runs playbooks/site.yml with the example inventory's vault twice: the
first rollout and the idempotent rerun, and prints the wall time of each and the rerun
time per host. On the largest fleet it then measures the end-to-end latency of sudo
alerts: an accepted sudo on a client, through syslog-ng on the client, TLS to the server,
the digest there, Apprise, to the receiver. Latency of an event = the time the receiver
stored the notification that carries its marker - the time the sudo command returned
(containers share the host's clock). Prints median and p99.

Only our own containers and the loopback are involved. Everything it starts carries the
label secalert.scenario=bench-fleet-N and is removed at the end (also on Ctrl-C).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "support"))

from secalert_testlib import fleet  # noqa: E402
from secalert_testlib.polling import poll  # noqa: E402

CACHE = os.path.join(TOP, ".cache")
VAULT = ["--vault-id", f"demo@{TOP}/demo/vault-password.txt"]
IMAGES = [fleet.IMAGES["debian12"], fleet.IMAGES["debian13"]]


def sh(*cmd, check=True, capture=True, timeout=1800):
    return subprocess.run(
        list(cmd), check=check, text=True, timeout=timeout,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.STDOUT if capture else None,
    )


def start_fleet(size):
    scenario = f"bench-fleet-{size}"
    net = fleet.network(scenario)
    hosts = [f"{net}-server"] + [f"{net}-client{i}" for i in range(1, size)]
    receiver = fleet.start(scenario, [
        (name, IMAGES[index % 2], "alert-server" if index == 0 else name)
        for index, name in enumerate(hosts)])
    # What real hosts have before our roles arrive (site.yml becomes root through sudo);
    # not part of the rollout time.
    installs = [subprocess.Popen(  # pylint: disable=consider-using-with
        ["podman", "exec", "-e", "DEBIAN_FRONTEND=noninteractive", name,
         "apt-get", "install", "-y", "-qq", "sudo"], stdout=subprocess.DEVNULL)
        for name in hosts]
    if any(proc.wait(timeout=600) for proc in installs):
        raise SystemExit("could not install sudo in the containers")
    return scenario, receiver, hosts


def inventory(directory, hosts):
    os.symlink(os.path.join(TOP, "inventories", "example", "group_vars"),
               os.path.join(directory, "group_vars"))
    os.symlink(os.path.join(TOP, "inventories", "example", "pki"),
               os.path.join(directory, "pki"))
    data = {
        "all": {
            "vars": {
                "ansible_connection": "containers.podman.podman",
                "apprise_wheelhouse_dir": os.path.join(CACHE, "wheelhouse"),
                "sudo_alerts_plugin_cache_dir": os.path.join(CACHE, "sudo-alerts-plugins"),
                # The receiver is no chat service: no per-minute cap, so latency is
                # the pipeline's own.
                "syslog_ng_alerts_rate_limit": 10000,
            },
            "children": {
                "alert_servers": {"hosts": {hosts[0]: {}}},
                "clients": {"hosts": {h: {} for h in hosts[1:]}},
            },
        }
    }
    path = os.path.join(directory, "hosts.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    return directory


def rollout(inv):
    start = time.monotonic()
    proc = sh("ansible-playbook", "-i", inv, *VAULT,
              os.path.join(TOP, "playbooks", "site.yml"), check=False)
    took = time.monotonic() - start
    if proc.returncode != 0:
        sys.stdout.write(proc.stdout[-5000:])
        raise SystemExit(f"site.yml failed (exit {proc.returncode})")
    return took


def latency(receiver, client, events):
    receiver.reset()
    sent = {}
    for i in range(events):
        marker = f"lat{i:04d}x{int(time.time())}"
        sh("podman", "exec", client, "sh", "-c",
           f"su - alice -c 'sudo -n /bin/bash -c \": {marker}\"'")
        sent[marker] = time.time()
        time.sleep(0.2)
    arrived = {}

    def collect():
        for message in receiver.messages():
            text = f"{message['title']}\n{message['body']}"
            for marker in sent:
                if marker not in arrived and marker in text:
                    arrived[marker] = message["time"]
        return len(arrived)

    poll(collect, lambda count: count >= len(sent), 300, interval=1)
    values = sorted(arrived[m] - sent[m] for m in arrived)
    return values, len(sent) - len(arrived)


def prepare_client(client):
    sh("podman", "exec", client, "sh", "-c",
       "id alice >/dev/null 2>&1 || useradd -m -s /bin/bash alice; "
       "echo 'alice ALL=(root) NOPASSWD: /bin/bash' >/etc/sudoers.d/alice; "
       "chmod 0440 /etc/sudoers.d/alice")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 3, 6])
    parser.add_argument("--events", type=int, default=50)
    args = parser.parse_args()

    rows = []
    lat = None
    try:
        for size in args.sizes:
            scenario, receiver, hosts = start_fleet(size)
            try:
                with tempfile.TemporaryDirectory(prefix="secalert-bench-") as tmp:
                    inv = inventory(tmp, hosts)
                    first = rollout(inv)
                    rerun = rollout(inv)
                    rows.append((size, first, rerun))
                    print(f"{size} host(s): first {first:.0f} s, rerun {rerun:.0f} s", flush=True)
                    if size == max(args.sizes) and size > 1:
                        prepare_client(hosts[1])
                        lat = latency(receiver, hosts[1], args.events)
            finally:
                fleet.cleanup(scenario)
    except KeyboardInterrupt:
        for size in args.sizes:
            fleet.cleanup(f"bench-fleet-{size}")
        raise

    print("\n| hosts | first rollout | idempotent rerun | rerun per host |")
    print("| ---: | ---: | ---: | ---: |")
    for size, first, rerun in rows:
        print(f"| {size} | {first:.0f} s | {rerun:.0f} s | {rerun / size:.1f} s |")
    if lat is not None:
        values, lost = lat
        if values:
            p99 = values[min(len(values) - 1, int(round(0.99 * (len(values) - 1))))]
            print(f"\nend-to-end sudo alert latency over {len(values)} events "
                  f"(client -> server -> receiver): median {statistics.median(values):.2f} s, "
                  f"p99 {p99:.2f} s, max {values[-1]:.2f} s; not arrived: {lost}")
        else:
            print(f"\nno latency sample arrived (sent {args.events})")


if __name__ == "__main__":
    main()
