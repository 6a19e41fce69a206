"""Print the receiver's notifications (JSON from `receiver.py list` on stdin) for a person.

    receiver.py list | python3 demo/print_alerts.py [EVENTS_START_EPOCH]

With the time the events were caused, it also prints the time to the first alert.
"""

import json
import sys

messages = json.load(sys.stdin)["messages"]
for message in messages:
    kind = message["type"] or "-"
    print(f"--- [{message['channel']}] {kind}: {message['title']}")
    for line in (message["body"] or "").splitlines()[:12]:
        print(f"    {line}")
if len(sys.argv) > 1:
    if messages:
        first = min(m["time"] for m in messages) - float(sys.argv[1])
        print(f"\ntime to first alert: {first:.1f} s ({len(messages)} notifications)")
    else:
        print("\nno alert arrived", file=sys.stderr)
        sys.exit(1)
