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
2. Ordinary traffic: a start line and --ordinary non-matching lines are written to the
   journal while syslog-ng is stopped, then syslog-ng is started; the rate is the lines
   over the time from the start line to the last line appearing in /var/log/syslog, so
   syslog-ng's own start (and the Python destination's) is not counted. Alternates the
   alert pipeline (conf.d/secalert.conf) off and on, --rounds times each; prints each run
   and the ratio of the medians. journald's rate limit is lifted for this (a drop-in,
   removed at the end).
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "support"))

from secalert_testlib.digests import counted_events  # noqa: E402
from secalert_testlib.polling import poll  # noqa: E402
from secalert_testlib.receiver_client import Receiver  # noqa: E402

CONF = "/etc/syslog-ng/conf.d/secalert.conf"
PARKED = "/etc/syslog-ng/secalert/secalert.conf.off"


def sh(host, script, check=True, timeout=900):
    proc = subprocess.run(["podman", "exec", host, "bash", "-c", script],
                          capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        sys.exit(f"{host}: {script!r} failed: {proc.stderr or proc.stdout}")
    return proc.stdout


def most_in_a_minute(times):
    times = sorted(times)
    best, start = 0, 0
    for end, now in enumerate(times):
        while now - times[start] >= 60.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def storm(args):
    host, receiver = args.host, Receiver(args.receiver)
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
    msgs = poll(lambda: receiver.messages(contains=marker),
                lambda got: counted_events(got) >= events_in,
                sent_at + args.drain_timeout - time.monotonic(), interval=2)
    drained = time.monotonic() - sent_at
    got = counted_events(msgs)
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
    sh(host, "systemctl stop syslog-ng && : > /var/log/syslog")
    sh(host, f"logger -t benchapp -p user.info {tag} start; "
             f"seq 1 {count} | sed 's/^/{tag} ordinary line /' | logger -t benchapp -p user.info")
    sh(host, "journalctl --sync || true")
    # One process polls inside the container: the first and the last line's arrival.
    probe = (
        "import subprocess, sys, time\n"
        "first = sys.argv[1]; last = sys.argv[2]; seen = None\n"
        "subprocess.run(['systemctl', 'start', 'syslog-ng'], check=True)\n"
        "deadline = time.monotonic() + 900\n"
        "while time.monotonic() < deadline:\n"
        "    with open('/var/log/syslog', 'rb') as f:\n"
        "        if seen is None:\n"
        "            if first.encode() in f.read(65536):\n"
        "                seen = time.monotonic()\n"
        "        else:\n"
        "            f.seek(0, 2); f.seek(max(0, f.tell() - 4096))\n"
        "            if last.encode() in f.read():\n"
        "                print(time.monotonic() - seen); break\n"
        "    time.sleep(0.05)\n"
    )
    out = subprocess.run(
        ["podman", "exec", host, "python3", "-c", probe, f"{tag} start",
         f"{tag} ordinary line {count}"],
        capture_output=True, text=True, timeout=1000, check=True).stdout.strip()
    if not out:
        sys.exit(f"{host}: the last ordinary line never reached /var/log/syslog")
    took = float(out)
    return count / took, took


def ordinary(args):
    host = args.host
    sh(host, "mkdir -p /etc/systemd/journald.conf.d && printf '[Journal]\\nRateLimitBurst=0\\n'"
             " > /etc/systemd/journald.conf.d/zz-bench.conf && systemctl restart systemd-journald")
    try:
        rates = {}
        for _round in range(args.rounds):
            for pipeline in (False, True):
                rate, took = ordinary_rate(host, args.ordinary, pipeline)
                rates.setdefault(pipeline, []).append(rate)
                print(f"ordinary: pipeline {'on ' if pipeline else 'off'}: {args.ordinary} lines"
                      f" in {took:.2f} s = {rate:,.0f}/s", flush=True)
        off, on = statistics.median(rates[False]), statistics.median(rates[True])
        print(f"  median off {off:,.0f}/s, on {on:,.0f}/s: ratio on/off {on / off:.2f}"
              f" (goal: at least 0.9)")
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
    parser.add_argument("--ordinary", type=int, default=500000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-storm", action="store_true")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    print(sh(args.host, "syslog-ng --version | head -1").strip())
    if not args.skip_storm:
        storm(args)
    ordinary(args)


if __name__ == "__main__":
    main()
