"""Print the receiver's notifications for a person, once the expected events are in.

    python3 demo/print_alerts.py EVENTS_START_EPOCH --expect N --timeout S --receiver NAME

It asks the receiver container NAME for its notifications (`receiver.py list`) every
2 s until the digests account for N events (a digest titled "K events: ..." counts K)
or S seconds have passed. Prints each notification, the time from EVENTS_START_EPOCH to
the first alert and to the last one.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "support"))

from secalert_testlib.digests import counted_events  # noqa: E402
from secalert_testlib.polling import poll  # noqa: E402
from secalert_testlib.receiver_client import Receiver  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("start", type=float)
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=150.0)
    parser.add_argument("--receiver", required=True, help="the receiver's container")
    args = parser.parse_args()
    receiver = Receiver(args.receiver)
    messages = poll(receiver.messages, lambda got: counted_events(got) >= args.expect,
                    args.timeout, interval=2)
    for message in messages:
        kind = message["type"] or "-"
        print(f"--- [{message['channel']}] {kind}: {message['title']}")
        for line in (message["body"] or "").splitlines()[:12]:
            print(f"    {line}")
    if not messages:
        print("\nno alert arrived", file=sys.stderr)
        sys.exit(1)
    times = [m["time"] - args.start for m in messages]
    got = counted_events(messages)
    print(f"\ntime to first alert: {min(times):.1f} s; {got} of {args.expect} events"
          f" in {len(messages)} notifications, the last after {max(times):.1f} s")
    if got < args.expect:
        print(f"{args.expect - got} event(s) not arrived yet: list them later with"
              f" podman exec {args.receiver} python3 /receiver/receiver.py list",
              file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
