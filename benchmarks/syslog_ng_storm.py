"""Storm benchmark for the syslog_ng_alerts pipeline (prints figures, asserts nothing).

Runs against a converged `syslog_ng_standalone` scenario host:

    molecule converge -s syslog_ng_standalone
    python benchmarks/syslog_ng_storm.py [--host NAME] [--events 10000] [--seconds 50]
    molecule destroy -s syslog_ng_standalone

1. Storm: puts the destination back to the role's defaults (window 5 s, 5 notifications
   per 60 s per target, max 1000 events per digest), then sends --events matching events
   (the scenario's `outage` rule) in --seconds, paced under journald's default rate limit.
   Prints events in, notifications out, the most notifications in any 60 s, events
   accounted for in digests (the "N events" of each title), lost, and the time from the
   last event sent until the queue drained.
2. Ordinary traffic: --ordinary non-matching lines are written to the journal while
   syslog-ng is stopped, then syslog-ng is started and timed until the last one is in
   /var/log/syslog: with the alert pipeline (conf.d/secalert.conf) off, then on.
   journald's rate limit is lifted for this (a drop-in, removed at the end).
"""

import argparse
import json
import re
import subprocess
import sys
import time
import uuid

CONF = "/etc/syslog-ng/conf.d/secalert.conf"
PARKED = "/etc/syslog-ng/secalert/secalert.conf.off"
DIGEST = re.compile(r"^(\d+) events: ")


def sh(host, script, check=True, timeout=900):
    proc = subprocess.run(["podman", "exec", host, "bash", "-c", script],
                          capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        sys.exit(f"{host}: {script!r} failed: {proc.stderr or proc.stdout}")
    return proc.stdout


def messages(receiver, marker):
    out = subprocess.run(
        ["podman", "exec", receiver, "python3", "/receiver/receiver.py", "list",
         "--contains", marker], capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout)["messages"]


def accounted(msgs):
    return sum(int(m.group(1)) if (m := DIGEST.match(x["title"] or "")) else 1 for x in msgs)


def most_in_a_minute(times):
    times = sorted(times)
    best, start = 0, 0
    for end, now in enumerate(times):
        while now - times[start] >= 60.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def storm(args):
    host, receiver = args.host, args.receiver
    marker = f"storm-{uuid.uuid4().hex[:8]}"
    sh(host, f"sed -i -E 's/window\\([0-9]+\\)/window(5)/; s/rate_limit\\([0-9]+\\)/rate_limit(5)/;"
             f" s/rate_period\\([0-9]+\\)/rate_period(60)/; s/retry_max\\([0-9]+\\)/retry_max(60)/'"
             f" {CONF} && syslog-ng --syntax-only && systemctl restart syslog-ng")
    chunks = 20
    per = args.events // chunks
    started = time.monotonic()
    for c in range(chunks):
        first = c * per + 1
        sh(host, f"seq {first} {first + per - 1} | sed 's/^/{marker} /' | "
                 "logger -t secalert-outage")
        target = started + (c + 1) * args.seconds / chunks
        time.sleep(max(0.0, target - time.monotonic()))
    sent_at = time.monotonic()
    events_in = per * chunks
    print(f"storm: {events_in} matching events sent in {sent_at - started:.1f} s")
    deadline = sent_at + args.drain_timeout
    msgs = []
    while time.monotonic() < deadline:
        msgs = messages(receiver, marker)
        if accounted(msgs) >= events_in:
            break
        time.sleep(2)
    drained = time.monotonic() - sent_at
    got = accounted(msgs)
    print(f"  events in:                     {events_in}")
    print(f"  notifications out:             {len(msgs)}")
    print(f"  most notifications in any 60 s: {most_in_a_minute([m['time'] for m in msgs])}"
          " (configured limit: 5 per 60 s per target)")
    print(f"  events accounted in digests:   {got}")
    print(f"  lost:                          {max(0, events_in - got)}"
          f"{'' if got <= events_in else f' ({got - events_in} duplicates)'}")
    print(f"  time to drain after the storm: {drained:.1f} s"
          f"{'' if got >= events_in else ' (NOT drained: timeout)'}")


def ordinary_rate(host, count, pipeline):
    tag = f"bench{uuid.uuid4().hex[:8]}"
    if pipeline:
        sh(host, f"test -f {CONF} || mv {PARKED} {CONF}")
    else:
        sh(host, f"test -f {PARKED} || mv {CONF} {PARKED}")
    sh(host, "systemctl stop syslog-ng")
    sh(host, f"seq 1 {count} | sed 's/^/{tag} ordinary line /' | logger -t benchapp -p user.info")
    sh(host, "journalctl --sync || true")
    started = time.monotonic()
    sh(host, "systemctl start syslog-ng")
    last = f"{tag} ordinary line {count}"
    deadline = started + 600
    while time.monotonic() < deadline:
        seen = sh(host, f"tail -n 50 /var/log/syslog | grep -cF '{last}'", check=False)
        if seen.strip() not in ("", "0"):
            break
        time.sleep(0.2)
    took = time.monotonic() - started
    return count / took, took


def ordinary(args):
    host = args.host
    sh(host, "mkdir -p /etc/systemd/journald.conf.d && printf '[Journal]\\nRateLimitBurst=0\\n'"
             " > /etc/systemd/journald.conf.d/zz-bench.conf && systemctl restart systemd-journald")
    try:
        rates = {}
        for pipeline in (False, True, False, True):
            rate, took = ordinary_rate(host, args.ordinary, pipeline)
            rates.setdefault(pipeline, []).append(rate)
            print(f"ordinary: pipeline {'on ' if pipeline else 'off'}: {args.ordinary} lines"
                  f" in {took:.2f} s = {rate:,.0f}/s")
        off, on = max(rates[False]), max(rates[True])
        print(f"  ratio on/off (best of 2 each): {on / off:.2f}")
    finally:
        sh(host, f"test -f {CONF} || mv {PARKED} {CONF}; "
                 "rm -f /etc/systemd/journald.conf.d/zz-bench.conf; "
                 "systemctl restart systemd-journald syslog-ng", check=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--host", default="secalert-syslog_ng_standalone-debian12")
    parser.add_argument("--receiver", default="secalert-syslog_ng_standalone-receiver")
    parser.add_argument("--events", type=int, default=10000)
    parser.add_argument("--seconds", type=float, default=50.0)
    parser.add_argument("--drain-timeout", type=float, default=900.0)
    parser.add_argument("--ordinary", type=int, default=100000)
    parser.add_argument("--skip-storm", action="store_true")
    args = parser.parse_args()
    print(sh(args.host, "syslog-ng --version | head -1").strip())
    if not args.skip_storm:
        storm(args)
    ordinary(args)


if __name__ == "__main__":
    main()
