"""Batch integrity through real syslog-ng: a line that cannot be formatted (invalid UTF-8)
between two real events, a failed flush (HTTP 429), then a good one: both real events
arrive, and the crafted line arrives too, its bad bytes shown as U+FFFD. Before the fix,
send() returned DROP for the crafted line, which dropped every event of the batch so far
(syslog-ng's threaded destination drops batch_size messages on DROP)."""

from secalert_testlib.polling import wait_for


def test_invalid_utf8_line_between_two_real_ones_loses_neither(hosts, receiver, marker):
    receiver.reset()
    try:
        receiver.mode("429")
        for name, host in hosts.items():
            host.check_output("logger -t secalert-outage -- %s", f"real-one {marker} {name}")
            # \377\376: bytes that are never valid UTF-8
            host.check_output("printf 'crafted \\377\\376 %%s\\n' %s | "
                              "logger -t secalert-outage", f"{marker} {name}")
            host.check_output("logger -t secalert-outage -- %s", f"real-two {marker} {name}")
        assert wait_for(lambda: receiver.stats()["http"].get("429", 0) >= len(hosts), 60,
                        interval=1.0)
    finally:
        receiver.mode("ok")

    def bodies():
        return "\n".join(m["body"] for m in receiver.messages(contains=marker))

    def complete():
        got = bodies()
        return all(f"real-one {marker} {n}" in got and f"real-two {marker} {n}" in got
                   for n in hosts)

    done = wait_for(complete, 120, interval=2)
    got = bodies()
    logs = {name: host.run("grep -F 'secalert apprise(outage)' /var/log/syslog | tail -n 10"
                           ).stdout for name, host in hosts.items()}
    assert done, f"lost a real event:\n{got}\n{logs}"
    for name in hosts:
        assert f"crafted \ufffd\ufffd {marker} {name}" in got, got
