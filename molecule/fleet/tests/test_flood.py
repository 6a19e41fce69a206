"""A flood cannot bury a critical event (#9): 500 refused `sudo -n` calls by one user
(mallory, who has no sudoers entry) and, in their middle, one real critical event (root
reads /etc/shadow through sudo), through the whole shipped path: the plugin on the
client, syslog-ng, the TLS relay, the server's digests and its rate limit (5 a minute).

Runtime behaviour, not Ansible's: it runs on the newest core only."""

import re

from conftest import newest_core_only, record_figure
from secalert_testlib.digests import DIGEST_TITLE
from secalert_testlib.polling import wait_for

CLIENT = "secalert-fleet-debian12"
FLOOD = 500
# The server writes sudo events from the plugin's lines (render.sudo_event, and
# render.sudo_line in a digest), under the name it verified (the client's certificate),
# whatever the text says. A folded line: "• CLIENT secalert-sudo: 250 × [critical] sudo:
# error for mallory running /bin/cat on CLIENT, first: ...".
MALLORY = "(?:mallory was denied|error for mallory running) /bin/cat"
FOLDED = re.compile(rf"^• {CLIENT} \S+: (\d+) × \[\w+\] sudo: {MALLORY} on {CLIENT}\b")
SENDER = f"[{CLIENT}] "

pytestmark = newest_core_only


def _tally(messages, marker):
    """(mallory's refusals these notifications account for, the notifications that carry
    the critical event with the line that shows it): a folded line counts its N, a listed
    line or a notification of its own counts 1."""
    counted, critical = 0, []
    listed = re.compile(rf"^(• )?{re.escape(SENDER)}{MALLORY} /etc/{marker}-\d+ on {CLIENT}\b")
    for message in sorted(messages, key=lambda m: m["id"]):
        body = message["body"] or ""
        if not DIGEST_TITLE.match(message["title"] or ""):
            # alone: its title says what happened, its body lines each one thing
            if re.search(rf"\] sudo: {MALLORY} on ", message["title"] or "") \
                    and f"/etc/{marker}-" in body:
                counted += 1
            if f"/tmp/{marker}-critical" in body:
                critical.append((message, message["title"]))
            continue
        for line in body.splitlines():
            fold = FOLDED.match(line)
            if fold and marker in line:
                counted += int(fold.group(1))
            elif listed.match(line):
                counted += 1
            if f"/tmp/{marker}-critical" in line:
                critical.append((message, line))
    return counted, critical


def test_a_flood_of_refused_sudo_does_not_bury_a_critical_event(hosts, receiver, marker):
    client = hosts[CLIENT]
    half = FLOOD // 2

    def refusals(first, last):
        # every call is refused (rc 1): exit 0 so that only a failed su fails the script
        loop = (f"for i in $(seq {first} {last}); do sudo -n /bin/cat /etc/{marker}-$i "
                ">/dev/null 2>&1; done; exit 0")
        return "su - mallory -c '" + loop + "'"

    script = (f"{refusals(1, half)}; date +%s.%N >/root/{marker}.t; "
              f"sudo -n /usr/bin/stat /etc/shadow /tmp/{marker}-critical >/dev/null 2>&1; "
              f"{refusals(half + 1, FLOOD)}")
    out = client.run("timeout 300 bash -c %s", script)
    assert out.rc == 0, out.stderr
    sent = float(client.check_output("cat /root/%s.t", marker))

    def complete():
        counted, critical = _tally(receiver.messages(contains=marker), marker)
        return bool(critical) and counted >= FLOOD

    wait_for(complete, 300, interval=2)
    counted, critical = _tally(receiver.messages(contains=marker), marker)
    assert critical, "the critical event never arrived"
    first, line = critical[0]
    # The first notification that carries it shows it by its own line (who, what, the
    # rule), not folded into the flood, or alone, by its title; and it is a critical
    # (failure) notification.
    if line.startswith("• "):
        assert line.startswith(f"• {SENDER}root ran /usr/bin/stat /etc/shadow "
                               f"/tmp/{marker}-critical as root on {CLIENT}"), line
        assert line.endswith("accept by rule sensitive-file, critical"), line
    else:
        assert line == f"{SENDER}[critical] sudo: root ran /usr/bin/stat as root on {CLIENT}"
        assert f"{SENDER}rule: sensitive-file, severity: critical" in first["body"].splitlines()
    assert first["type"] == "failure", first
    assert counted == FLOOD, f"mallory's refusals accounted for: {counted} of {FLOOD}"
    record_figure(f"flood of {FLOOD} refused sudo + 1 critical: its first notification "
                  f"{first['time'] - sent:.1f} s after sudo ran; all {counted} refusals "
                  f"counted in {len(receiver.messages(contains=marker))} notifications")
