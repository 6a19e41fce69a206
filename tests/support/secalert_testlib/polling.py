"""Bounded waits: every loop ends at its deadline, and after a bounded number of tries."""

import time


def poll(fetch, done, timeout, interval=0.5):
    """Call ``fetch()`` until ``done(value)`` or ``timeout`` seconds have passed, sleeping
    ``interval`` between calls; return the last value fetched. At most
    ``timeout / interval + 2`` calls: the deadline always comes first."""
    if interval <= 0:
        raise ValueError("interval must be positive")
    deadline = time.monotonic() + timeout
    value = None
    for _try in range(int(max(timeout, 0) / interval) + 2):
        value = fetch()
        if done(value) or time.monotonic() >= deadline:
            break
        time.sleep(interval)
    return value


def wait_for(predicate, timeout, interval=0.5):
    """Poll ``predicate`` until it is truthy or ``timeout`` seconds have passed; return its
    last value."""
    return poll(predicate, bool, timeout, interval)
