"""Dead man's switch of a secalert alert server (run by secalert-deadman.timer as root).

syslog-ng stamps <dir>/<client>.seen with every message a client sends (its heartbeat
MARKs included). Each run compares the stamps' times with the bound and logs, as root
through syslog (ident secalert-deadman, one JSON line), what changed:

  {"event": "silent", "host": H, "silent_for": S, "last_seen": T, "bound": B, ...}
  {"event": "never",  ...}   an expected client that has not been heard from since the
                             check started
  {"event": "back",   ...}   heard again; silent_for is how long it was silent

Each change is logged once; the state file remembers it across runs and reboots. With
a watchdog interval, it also logs (ident secalert-watchdog) that the server is alive.
The syslog_ng_alerts presets host_silence and watchdog turn these lines into alerts.
"""

import json
import os
import sys
import syslog
import time

CONFIG = "/etc/secalert/deadman.json"
MAX_STAMP_BYTES = 4096  # a stamp file is cut back to nothing beyond this


def iso(ts):
    if ts is None:
        return "never"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def load_json(path, default):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return default
    except (OSError, ValueError) as e:
        log("secalert-deadman", syslog.LOG_ERR,
            {"event": "error", "error": f"cannot read {path}: {e}"})
        return default


def save_json(path, data):
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, sort_keys=True)
    os.replace(tmp, path)


def log(ident, priority, event):
    syslog.openlog(ident, syslog.LOG_PID, syslog.LOG_DAEMON)
    syslog.syslog(priority, json.dumps(event, sort_keys=True, separators=(",", ":")))
    syslog.closelog()


def last_seen(directory, host):
    """Time of the client's last message, or None; keeps the stamp file small."""
    path = os.path.join(directory, host + ".seen")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    if st.st_size > MAX_STAMP_BYTES:
        try:
            os.truncate(path, 0)
            os.utime(path, (st.st_atime, st.st_mtime))
        except OSError:
            pass
    return st.st_mtime


def check(cfg, state, now, emit):
    """Update state for this run and emit each change once. Returns the new state."""
    bound = int(cfg["bound"])
    hosts = {}
    started = state.get("started", now)
    known = state.get("hosts", {})
    for host in cfg.get("expected", []):
        old = known.get(host, {"silent": False, "added": now})
        seen = last_seen(cfg["dir"], host)
        # A client never heard from counts from when the check began to expect it.
        ref = seen if seen is not None else old.get("added", now)
        new = dict(old)
        new.setdefault("added", now)
        if now - ref > bound:
            if not old.get("silent"):
                kind = "never" if seen is None else "silent"
                emit("secalert-deadman", syslog.LOG_CRIT, {
                    "event": kind, "host": host, "silent_for": int(now - ref),
                    "last_seen": iso(seen), "bound": bound, "severity": "critical"})
                new["silent"] = True
                new["since"] = ref
        elif old.get("silent"):
            since = old.get("since", ref)
            emit("secalert-deadman", syslog.LOG_WARNING, {
                "event": "back", "host": host, "silent_for": int(max(0, ref - since)),
                "last_seen": iso(since), "bound": bound, "severity": "warning"})
            new["silent"] = False
            new.pop("since", None)
        hosts[host] = new
    result = {"started": started, "hosts": hosts, "watchdog": state.get("watchdog", 0)}
    interval = int(cfg.get("watchdog_interval", 0))
    if interval > 0 and now - result["watchdog"] >= interval - 1:
        silent = sorted(h for h, v in hosts.items() if v.get("silent"))
        emit("secalert-watchdog", syslog.LOG_NOTICE,
             f"alert server alive at {iso(now)}: {len(hosts)} expected client(s), "
             f"{len(silent)} silent" + (" (" + ", ".join(silent) + ")" if silent else ""))
        result["watchdog"] = now
    return result


def main(argv):
    config = argv[1] if len(argv) > 1 else CONFIG
    cfg = load_json(config, None)
    if not cfg:
        log("secalert-deadman", syslog.LOG_ERR,
            {"event": "error", "error": "no configuration in " + config})
        return 1

    def emit(ident, priority, event):
        if isinstance(event, str):
            syslog.openlog(ident, syslog.LOG_PID, syslog.LOG_DAEMON)
            syslog.syslog(priority, event)
            syslog.closelog()
        else:
            log(ident, priority, event)

    state = load_json(cfg["state"], {})
    state = check(cfg, state, time.time(), emit)
    save_json(cfg["state"], state)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
