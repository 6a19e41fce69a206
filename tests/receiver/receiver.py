"""Notification receiver for the secalert.alerting tests (standard library only).

It stands in for the services Apprise talks to, stores every notification it gets and
answers the tests' questions about them. It runs on Python 3.9 to 3.13 (Debian 12's
python3.11 and Debian 13's python3.13): no ``smtpd``/``asyncore``, no ``cgi``.

Listeners (``serve``)
---------------------
- HTTP notifications on port 8080: what Apprise's ``json://`` and ``form://`` send.
- SMTP on port 2525: what Apprise's ``mailto://`` sends, plain SMTP, no TLS, no AUTH.
- Control API (HTTP, JSON) on port 8081.

Apprise URLs that reach it (``receiver`` is the container's name on the scenario network;
unit tests use ``127.0.0.1`` and free ports)::

    json://receiver:8080/PATH
    form://receiver:8080/PATH
    mailto://receiver:2525?mode=insecure&from=secalert@receiver.test&to=alerts@receiver.test

For mail, ``mode=insecure`` is what keeps Apprise from trying STARTTLS on a custom port,
``from=`` is needed because the host name alone is no mail domain, and the URL must not
carry a user and password (Apprise would try SMTP AUTH, which the receiver does not offer).
No mail leaves the receiver: the addresses are never resolved.

Stored notification (``list`` prints them)::

    {"id": 1, "time": 1700000000.12, "channel": "json" | "form" | "smtp" | "http",
     "path": "/PATH" (HTTP) or the envelope recipients joined by "," (SMTP),
     "method": "POST", "title": ..., "body": ..., "type": "info" | ... | null,
     "attachments": [{"filename": ..., "mimetype": ..., "size": ...}],
     "meta": {...}, "raw": "the whole request body or mail as text"}

Mail carries no notification type: ``type`` is taken from an ``X-Notify-Type`` header
when there is one (Apprise adds headers from ``+Name=value`` URL arguments), else null.

Modes of the HTTP notification listener (SMTP always accepts)::

    ok     answer 200 and store the notification
    429    answer 429 Too Many Requests with Retry-After (default 1 s); nothing stored
    500    answer 500; nothing stored
    slow   wait --delay seconds (default 5), then answer 200 and store
    hang   read the request and never answer; the connection is closed after --hang-max
           seconds (default 60) or as soon as the mode changes; nothing stored
    down   close the listening socket (connection refused); any other mode reopens it

Every request to the HTTP listener is counted by the answer it got ("200", "429",
"500", "hang"; "400"/"413" for unreadable ones).

CLI (each client command prints JSON on stdout)::

    receiver.py serve [--bind ADDR] [--http-port N] [--smtp-port N] [--control-port N]
                      [--hang-max S] [--max-lifetime S]
    receiver.py list [--contains TEXT] [--channel json|form|smtp|http]
                     [--wait SECONDS] [--count K]     exit 1 if fewer than K match
    receiver.py clear                                  messages and counters
    receiver.py reset                                  clear, and mode ok
    receiver.py mode ok|429|500|slow|hang|down [--delay S] [--retry-after S]
    receiver.py stats                                  counters, mode, message count
    receiver.py health                                 exit 0 when the control API answers

Client commands talk to ``--control URL`` (default ``$RECEIVER_CONTROL`` or
``http://127.0.0.1:8081``). ``serve`` takes its defaults from ``RECEIVER_BIND``,
``RECEIVER_HTTP_PORT``, ``RECEIVER_SMTP_PORT``, ``RECEIVER_CONTROL_PORT``,
``RECEIVER_HANG_MAX`` and ``RECEIVER_MAX_LIFETIME``; a port of 0 picks a free one. Once
listening it prints one JSON line: ``{"ready": true, "http": N, "smtp": N, "control": N}``.

Control API: ``GET /health``, ``GET /messages?contains=&channel=&count=&wait=``,
``POST /clear``, ``POST /reset``, ``GET /mode``, ``POST /mode`` (JSON body ``{"mode": ...,
"delay": ..., "retry_after": ...}``), ``GET /stats``.
"""

import argparse
import email
import email.policy
import json
import os
import signal
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.error import HTTPError, URLError
from urllib.parse import parse_qs, urlencode, urlsplit
from urllib.request import Request, urlopen

MODES = ("ok", "429", "500", "slow", "hang", "down")

# Hard limits so that nothing a client sends or asks for can grow or block for ever.
MAX_BODY = 16 * 1024 * 1024
MAX_LINE = 4096
MAX_SMTP_COMMANDS = 1000
MAX_WAIT = 600.0
SMTP_IDLE_TIMEOUT = 30.0
HTTP_IDLE_TIMEOUT = 30.0


def _text(data):
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data


class Store:
    """Messages, counters and the HTTP listener's mode, shared by every thread."""

    def __init__(self, hang_max=60.0):
        self._cond = threading.Condition()
        self._messages = []
        self._next_id = 1
        self.http_counts = {}
        self.smtp_counts = {}
        self.hang_max = float(hang_max)
        self.mode = "ok"
        self.delay = 5.0
        self.retry_after = 1.0
        # Hanging handlers wait on this; a new mode sets it and installs a fresh one.
        self.hang_release = threading.Event()

    def add(self, record):
        with self._cond:
            record["id"] = self._next_id
            record["time"] = time.time()
            self._next_id += 1
            self._messages.append(record)
            self._cond.notify_all()
            return record["id"]

    def count_http(self, status):
        with self._cond:
            key = str(status)
            self.http_counts[key] = self.http_counts.get(key, 0) + 1

    def count_smtp(self, what):
        with self._cond:
            self.smtp_counts[what] = self.smtp_counts.get(what, 0) + 1

    @staticmethod
    def _matches(record, contains, channel):
        if channel and record.get("channel") != channel:
            return False
        if not contains:
            return True
        return any(
            contains in (record.get(field) or "") for field in ("title", "body", "path", "raw")
        )

    def select(self, contains=None, channel=None, count=0, wait=0.0):
        """Matching messages; with ``wait`` block up to that long for ``count`` of them."""
        deadline = time.monotonic() + min(max(float(wait), 0.0), MAX_WAIT)
        with self._cond:
            while True:
                found = [m for m in self._messages if self._matches(m, contains, channel)]
                left = deadline - time.monotonic()
                if len(found) >= count or left <= 0:
                    return [dict(m) for m in found]
                self._cond.wait(min(left, 1.0))

    def clear(self):
        with self._cond:
            cleared = len(self._messages)
            self._messages = []
            self.http_counts = {}
            self.smtp_counts = {}
            return cleared

    def mode_state(self):
        with self._cond:
            return {
                "mode": self.mode,
                "delay": self.delay,
                "retry_after": self.retry_after,
                "hang_max": self.hang_max,
            }

    def set_mode(self, mode, delay=None, retry_after=None):
        if mode not in MODES:
            raise ValueError("mode must be one of " + ", ".join(MODES))
        with self._cond:
            if delay is not None:
                self.delay = min(max(float(delay), 0.0), self.hang_max)
            if retry_after is not None:
                self.retry_after = max(float(retry_after), 0.0)
            self.mode = mode
            self.hang_release.set()
            self.hang_release = threading.Event()

    def snapshot(self):
        with self._cond:
            return self.mode, self.delay, self.retry_after, self.hang_release

    def stats(self):
        with self._cond:
            return {
                "http": dict(self.http_counts),
                "smtp": dict(self.smtp_counts),
                "messages": len(self._messages),
                "mode": self.mode,
            }


# --------------------------------------------------------------------------- HTTP


def _parse_multipart(content_type, data):
    """Fields and files of a multipart/form-data body (the ``cgi`` module is gone)."""
    head = ("Content-Type: " + content_type + "\r\nMIME-Version: 1.0\r\n\r\n").encode()
    msg = email.message_from_bytes(head + data, policy=email.policy.HTTP)
    fields, files = {}, []
    if not msg.is_multipart():
        return fields, files
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename:
            files.append(
                {
                    "field": name,
                    "filename": filename,
                    "mimetype": part.get_content_type(),
                    "size": len(payload),
                }
            )
        elif name:
            fields[name] = _text(payload)
    return fields, files


def parse_http_notification(method, target, content_type, data):
    """Turn one request to the notification listener into a stored record."""
    split = urlsplit(target)
    ctype = (content_type or "").split(";")[0].strip().lower()
    raw = _text(data)
    record = {
        "channel": "http",
        "path": split.path,
        "method": method,
        "title": None,
        "body": raw,
        "type": None,
        "attachments": [],
        "meta": {"content_type": content_type or "", "query": split.query},
        "raw": raw,
    }
    if ctype == "application/json":
        payload = json.loads(raw or "null")
        if not isinstance(payload, dict):
            raise ValueError("JSON body is not an object")
        record.update(
            channel="json",
            title=payload.get("title"),
            body=payload.get("message"),
            type=payload.get("type"),
        )
        record["meta"]["version"] = payload.get("version")
        for item in payload.get("attachments") or []:
            if isinstance(item, dict):
                record["attachments"].append(
                    {
                        "filename": item.get("filename"),
                        "mimetype": item.get("mimetype"),
                        "size": len(item.get("base64") or "") * 3 // 4,
                    }
                )
        return record
    if ctype == "multipart/form-data":
        fields, files = _parse_multipart(content_type, data)
        record["attachments"] = files
        record["raw"] = raw if len(raw) <= 65536 else raw[:65536] + "...(truncated)"
    elif ctype == "application/x-www-form-urlencoded":
        fields = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
    elif method == "GET" and split.query:
        fields = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
    else:
        return record
    record.update(
        channel="form",
        title=fields.get("title"),
        body=fields.get("message"),
        type=fields.get("type"),
    )
    record["meta"]["fields"] = sorted(fields)
    return record


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # A hanging handler must not block closing the listener ("down").
    block_on_close = False
    allow_reuse_address = True


class _Handler(BaseHTTPRequestHandler):
    server_version = "secalert-receiver/1"
    timeout = HTTP_IDLE_TIMEOUT

    def log_message(self, format, *args):  # noqa: A002 - name fixed by the base class
        if getattr(self.server, "verbose", False):
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    def _read_body(self):
        """The request body, bounded by MAX_BODY; None when it is too large."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks, total = [], 0
            for _1 in range(100000):
                size = int(self.rfile.readline(MAX_LINE).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline(MAX_LINE)
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline(MAX_LINE)
            return None
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _answer(self, status, payload, headers=None):
        body = json.dumps(payload, sort_keys=True).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class NotifyHandler(_Handler):
    """The notification listener: json://, form:// and plain HTTP."""

    def _handle(self):
        store = self.server.store
        try:
            data = self._read_body()
        except ValueError:
            data = None
        if data is None:
            store.count_http(413)
            self._answer(413, {"error": "body too large or unreadable"})
            return
        mode, delay, retry_after, release = store.snapshot()
        if mode == "429":
            store.count_http(429)
            self._answer(
                429, {"error": "too many requests"}, {"Retry-After": str(int(retry_after))}
            )
            return
        if mode == "500":
            store.count_http(500)
            self._answer(500, {"error": "internal server error"})
            return
        if mode == "hang":
            store.count_http("hang")
            release.wait(store.hang_max)
            self.close_connection = True
            return
        if mode == "slow":
            time.sleep(min(delay, store.hang_max))
        try:
            record = parse_http_notification(
                self.command, self.path, self.headers.get("Content-Type"), data
            )
        except ValueError as exc:
            store.count_http(400)
            self._answer(400, {"error": str(exc)})
            return
        store.count_http(200)
        self._answer(200, {"id": store.add(record)})

    do_POST = do_PUT = do_PATCH = do_GET = do_DELETE = _handle


class ControlHandler(_Handler):
    """The control API the CLI (and the unit tests) talk to."""

    def do_GET(self):
        store, receiver = self.server.store, self.server.receiver
        split = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(split.query).items()}
        try:
            if split.path == "/health":
                self._answer(200, {"ok": True, "listening": receiver.http_listening()})
            elif split.path == "/messages":
                count = int(query.get("count") or 0)
                found = store.select(
                    contains=query.get("contains"),
                    channel=query.get("channel"),
                    count=count,
                    wait=float(query.get("wait") or 0),
                )
                self._answer(
                    200,
                    {"count": len(found), "matched": len(found) >= count, "messages": found},
                )
            elif split.path == "/mode":
                self._answer(200, store.mode_state())
            elif split.path == "/stats":
                self._answer(200, store.stats())
            else:
                self._answer(404, {"error": "unknown path"})
        except ValueError as exc:
            self._answer(400, {"error": str(exc)})

    def do_POST(self):
        store, receiver = self.server.store, self.server.receiver
        path = urlsplit(self.path).path
        try:
            data = self._read_body() or b""
            if path == "/clear":
                self._answer(200, {"cleared": store.clear()})
            elif path == "/reset":
                cleared = store.clear()
                receiver.set_mode("ok")
                self._answer(200, {"cleared": cleared, "mode": "ok"})
            elif path == "/mode":
                request = json.loads(_text(data) or "{}")
                if not isinstance(request, dict):
                    raise ValueError("expected a JSON object")
                receiver.set_mode(
                    request.get("mode"), request.get("delay"), request.get("retry_after")
                )
                self._answer(200, store.mode_state())
            else:
                self._answer(404, {"error": "unknown path"})
        except (ValueError, TypeError) as exc:
            self._answer(400, {"error": str(exc)})


# --------------------------------------------------------------------------- SMTP


def parse_mail(mail_from, rcpts, data):
    """Turn one mail received over SMTP into a stored record."""
    msg = email.message_from_bytes(data, policy=email.policy.default)
    body_part = msg.get_body(preferencelist=("plain", "html"))
    body = None
    if body_part is not None:
        # SMTP carries CRLF line ends; give the text back as it was sent.
        body = body_part.get_content().replace("\r\n", "\n")
        if body.endswith("\n"):
            body = body[:-1]
    attachments = []
    if msg.is_multipart():
        for part in msg.iter_attachments():
            payload = part.get_payload(decode=True) or b""
            attachments.append(
                {
                    "filename": part.get_filename(),
                    "mimetype": part.get_content_type(),
                    "size": len(payload),
                }
            )
    notify_type = msg.get("X-Notify-Type")
    return {
        "channel": "smtp",
        "path": ",".join(rcpts),
        "method": "SMTP",
        "title": str(msg.get("Subject", "")),
        "body": body,
        "type": str(notify_type) if notify_type else None,
        "attachments": attachments,
        "meta": {
            "mail_from": mail_from,
            "rcpt_to": list(rcpts),
            "from": str(msg.get("From", "")),
            "to": str(msg.get("To", "")),
            "x_application": str(msg.get("X-Application", "")),
            "content_type": msg.get_content_type(),
            "body_type": body_part.get_content_type() if body_part is not None else None,
        },
        "raw": _text(data),
    }


class SMTPHandler(socketserver.StreamRequestHandler):
    """A minimal SMTP server: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT."""

    timeout = SMTP_IDLE_TIMEOUT

    def _reply(self, line):
        self.wfile.write(line.encode() + b"\r\n")
        self.wfile.flush()

    def _read_data(self):
        lines, size = [], 0
        while True:
            line = self.rfile.readline(MAX_BODY)
            if not line:
                return None
            if line in (b".\r\n", b".\n"):
                return b"".join(lines)
            if line.startswith(b".."):
                line = line[1:]
            size += len(line)
            if size > MAX_BODY:
                return None
            lines.append(line)

    def handle(self):
        store = self.server.store
        mail_from, rcpts = None, []
        try:
            self._reply("220 receiver ESMTP secalert test receiver")
            for _1 in range(MAX_SMTP_COMMANDS):
                line = self.rfile.readline(MAX_LINE)
                if not line:
                    return
                command = _text(line).strip()
                verb, _1, arg = command.partition(" ")
                verb = verb.upper()
                if verb == "EHLO":
                    self._reply("250-receiver")
                    self._reply("250-8BITMIME")
                    self._reply("250-SMTPUTF8")
                    self._reply(f"250 SIZE {MAX_BODY}")
                elif verb == "HELO":
                    self._reply("250 receiver")
                elif verb == "MAIL":
                    mail_from = arg.partition(":")[2].split()[0].strip("<>") if ":" in arg else ""
                    rcpts = []
                    self._reply("250 OK")
                elif verb == "RCPT":
                    if mail_from is None:
                        self._reply("503 MAIL first")
                        continue
                    rcpts.append(arg.partition(":")[2].split()[0].strip("<>"))
                    self._reply("250 OK")
                elif verb == "DATA":
                    if not rcpts:
                        self._reply("503 RCPT first")
                        continue
                    self._reply("354 End data with <CR><LF>.<CR><LF>")
                    data = self._read_data()
                    if data is None:
                        store.count_smtp("rejected")
                        self._reply("552 message too large or connection lost")
                        return
                    msg_id = store.add(parse_mail(mail_from, rcpts, data))
                    store.count_smtp("accepted")
                    self._reply(f"250 OK id={msg_id}")
                    mail_from, rcpts = None, []
                elif verb == "RSET":
                    mail_from, rcpts = None, []
                    self._reply("250 OK")
                elif verb == "NOOP":
                    self._reply("250 OK")
                elif verb == "QUIT":
                    self._reply("221 Bye")
                    return
                elif verb == "STARTTLS":
                    self._reply("454 TLS not available")
                elif verb == "AUTH":
                    self._reply("502 AUTH not supported")
                else:
                    self._reply("500 Command not recognized")
            self._reply("421 Too many commands")
        except (OSError, ValueError):
            return


class _SMTPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True


# --------------------------------------------------------------------------- server


class Receiver:
    """All three listeners; usable in-process (unit tests) or through ``serve``."""

    def __init__(self, bind="0.0.0.0", http_port=8080, smtp_port=2525, control_port=8081,
                 hang_max=60.0, verbose=False):
        self.bind = bind
        self.store = Store(hang_max=hang_max)
        self.verbose = verbose
        self.ports = {"http": http_port, "smtp": smtp_port, "control": control_port}
        self._lock = threading.Lock()
        self._http = None
        self._servers = []

    def _start(self, server):
        server.store = self.store
        server.receiver = self
        server.verbose = self.verbose
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2})
        thread.daemon = True
        thread.start()
        return server

    def _open_http(self):
        self._http = self._start(_Server((self.bind, self.ports["http"]), NotifyHandler))
        self.ports["http"] = self._http.server_address[1]

    def start(self):
        smtp = self._start(_SMTPServer((self.bind, self.ports["smtp"]), SMTPHandler))
        self.ports["smtp"] = smtp.server_address[1]
        control = self._start(_Server((self.bind, self.ports["control"]), ControlHandler))
        self.ports["control"] = control.server_address[1]
        self._servers = [smtp, control]
        with self._lock:
            self._open_http()
        return self

    def http_listening(self):
        with self._lock:
            return self._http is not None

    def set_mode(self, mode, delay=None, retry_after=None):
        self.store.set_mode(mode, delay, retry_after)
        with self._lock:
            if mode == "down" and self._http is not None:
                self._http.shutdown()
                self._http.server_close()
                self._http = None
            elif mode != "down" and self._http is None:
                self._open_http()

    def stop(self):
        self.store.set_mode("ok")  # frees hanging handlers
        with self._lock:
            servers = self._servers + ([self._http] if self._http else [])
            self._http, self._servers = None, []
        for server in servers:
            server.shutdown()
            server.server_close()


def serve(args):
    receiver = Receiver(
        bind=args.bind,
        http_port=args.http_port,
        smtp_port=args.smtp_port,
        control_port=args.control_port,
        hang_max=args.hang_max,
        verbose=args.verbose,
    ).start()
    stop = threading.Event()

    def _stop(signum, frame):
        stop.set()

    # PID 1 in a container ignores SIGTERM unless it installs a handler.
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(json.dumps(dict(receiver.ports, ready=True), sort_keys=True), flush=True)
    lifetime = args.max_lifetime if args.max_lifetime > 0 else float("inf")
    started = time.monotonic()
    while not stop.is_set() and time.monotonic() - started < lifetime:
        stop.wait(1.0)
    receiver.stop()
    return 0


# --------------------------------------------------------------------------- client


def _call(control, method, path, query=None, payload=None, timeout=10.0):
    if not control.startswith(("http://", "https://")):
        raise ValueError("the control URL must be http:// or https://")
    url = control.rstrip("/") + path + ("?" + urlencode(query) if query else "")
    data = json.dumps(payload).encode() if payload is not None else None
    request = Request(url, data=data, method=method)  # noqa: S310 - scheme checked above
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked
            return response.status, json.loads(response.read() or b"null")
    except HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def client(args):
    if args.command == "list":
        count = args.count if args.count is not None else (1 if args.wait else 0)
        query = {"count": count, "wait": args.wait}
        if args.contains:
            query["contains"] = args.contains
        if args.channel:
            query["channel"] = args.channel
        status, answer = _call(args.control, "GET", "/messages", query,
                               timeout=min(args.wait, MAX_WAIT) + 10)
        ok = status == 200 and answer.get("matched")
    elif args.command in ("clear", "reset"):
        status, answer = _call(args.control, "POST", "/" + args.command, payload={})
        ok = status == 200
    elif args.command == "mode":
        payload = {"mode": args.mode, "delay": args.delay, "retry_after": args.retry_after}
        status, answer = _call(args.control, "POST", "/mode", payload=payload)
        ok = status == 200
    else:  # stats, health
        status, answer = _call(args.control, "GET", "/" + args.command)
        ok = status == 200
    print(json.dumps(answer, indent=2, sort_keys=True))
    return 0 if ok else 1


def _env(name, default, cast=str):
    value = os.environ.get(name)
    return cast(value) if value not in (None, "") else default


def build_parser():
    parser = argparse.ArgumentParser(description="Notification receiver for tests.")
    sub = parser.add_subparsers(dest="command", required=True)

    srv = sub.add_parser("serve", help="run the listeners")
    srv.add_argument("--bind", default=_env("RECEIVER_BIND", "0.0.0.0"))
    srv.add_argument("--http-port", type=int, default=_env("RECEIVER_HTTP_PORT", 8080, int))
    srv.add_argument("--smtp-port", type=int, default=_env("RECEIVER_SMTP_PORT", 2525, int))
    srv.add_argument(
        "--control-port", type=int, default=_env("RECEIVER_CONTROL_PORT", 8081, int)
    )
    srv.add_argument(
        "--hang-max", type=float, default=_env("RECEIVER_HANG_MAX", 60.0, float),
        help="longest a 'hang' or 'slow' request is held, in seconds",
    )
    srv.add_argument(
        "--max-lifetime", type=float, default=_env("RECEIVER_MAX_LIFETIME", 0.0, float),
        help="exit after this many seconds (0: run until SIGTERM)",
    )
    srv.add_argument("--verbose", action="store_true", help="log requests to stderr")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--control", default=_env("RECEIVER_CONTROL", "http://127.0.0.1:8081"),
        help="control API base URL",
    )
    lst = sub.add_parser("list", parents=[common], help="print stored notifications")
    lst.add_argument("--contains", "--filter", dest="contains", help="substring to match")
    lst.add_argument("--channel", choices=("json", "form", "smtp", "http"))
    lst.add_argument("--wait", type=float, default=0.0, help="seconds to wait for --count")
    lst.add_argument("--count", type=int, help="matches needed (default 1 with --wait)")
    sub.add_parser("clear", parents=[common], help="forget messages and counters")
    sub.add_parser("reset", parents=[common], help="clear, and set mode ok")
    mode = sub.add_parser("mode", parents=[common], help="set the HTTP listener's mode")
    mode.add_argument("mode", choices=MODES)
    mode.add_argument("--delay", type=float, help="seconds for 'slow'")
    mode.add_argument("--retry-after", type=float, help="Retry-After seconds for '429'")
    sub.add_parser("stats", parents=[common], help="print counters")
    sub.add_parser("health", parents=[common], help="check the control API answers")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    try:
        return client(args)
    except (URLError, OSError, ValueError) as exc:
        print(json.dumps({"error": str(exc)}), file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
