"""Secrets that must never show: the pieces of Apprise URLs that carry a credential, and
where on a host any of them shows (world-readable files, the journal, process arguments).
"""

import re
import shlex
import subprocess
from collections import namedtuple
from urllib.parse import unquote

# As plugins/module_utils/secalert_apprise/targets.py shows targets: path segments up to
# MAX_PLAIN_SEGMENT characters are shown, longer ones are tokens; every ntfy topic is a
# credential, also in the cloud form where it stands for the host (ntfys://TOPIC).
MAX_PLAIN_SEGMENT = 8
NTFY_SCHEMES = ("ntfy", "ntfys")
MAIL_SCHEMES = ("mailto", "mailtos")  # the path is an address
# Query values that are secrets: headers (+Name=value), request parameters Apprise adds
# (-name=value), and parameters named like a credential (token=, apikey=, pass=, ...).
SECRET_PREFIXES = ("+", "-")
CREDENTIAL_KEY = re.compile(r"token|key|secret|pass|pwd|auth", re.IGNORECASE)
# Shorter pieces would be found everywhere.
MIN_SECRET = 4

ROOTS = ("/etc", "/opt", "/var", "/tmp", "/root", "/home", "/usr/local", "/run")


def url_secrets(url):
    """Every secret piece of one Apprise URL, as written and percent-decoded, longest
    first: the userinfo password, path tokens (segments longer than MAX_PLAIN_SEGMENT;
    for ntfy every topic, and the host of the cloud form ``ntfys://TOPIC``), and the query
    values of headers (``+Name=value``), of ``-name=value`` parameters and of parameters
    named like a credential. Pieces shorter than MIN_SECRET are left out."""
    scheme, sep, rest = str(url).partition("://")
    if not sep:
        return []
    scheme = scheme.lower()
    rest, _1, query = rest.split("#", 1)[0].partition("?")
    netloc, _1, path = rest.partition("/")
    userinfo, at, host = netloc.rpartition("@")
    pieces = []
    if at and ":" in userinfo:
        pieces.append(userinfo.split(":", 1)[1])
    segments = [segment for segment in path.split("/") if segment]
    if scheme in NTFY_SCHEMES:
        pieces += segments
        if host and "." not in host and ":" not in host and host != "localhost":
            pieces.append(host)
    elif scheme not in MAIL_SCHEMES:
        pieces += [segment for segment in segments if len(segment) > MAX_PLAIN_SEGMENT]
    for item in query.split("&"):
        key, equals, value = item.partition("=")
        key = unquote(key)
        if equals and (key.startswith(SECRET_PREFIXES) or CREDENTIAL_KEY.search(key)):
            pieces.append(value)
    found = {variant for piece in pieces for variant in (piece, unquote(piece))
             if len(variant) >= MIN_SECRET}
    return sorted(found, key=lambda piece: (-len(piece), piece))


def secrets_of(urls, *tokens):
    """The secret pieces of all ``urls``, and ``tokens`` themselves, longest first."""
    found = {piece for url in urls for piece in url_secrets(url)}
    found.update(token for token in tokens if token)
    return sorted(found, key=lambda piece: (-len(piece), piece))


def shown(text, secrets):
    """The secrets that ``text`` (a command's output, a log) shows."""
    return [secret for secret in secrets if secret in (text or "")]


Result = namedtuple("Result", "rc stdout stderr")


class Shell:
    """Runs commands the way a testinfra host does (``run(command, *args)``: each arg
    shell-quoted into a ``%s`` of ``command``) through ``prefix``: ``["podman", "exec",
    NAME]`` for a container, ``[]`` for this machine."""

    def __init__(self, prefix, timeout=600):
        self.prefix = list(prefix)
        self.timeout = timeout

    def run(self, command, *args):
        if args:
            command = command % tuple(shlex.quote(str(arg)) for arg in args)
        proc = subprocess.run([*self.prefix, "sh", "-c", command], capture_output=True,
                              text=True, timeout=self.timeout, check=False)
        return Result(proc.returncode, proc.stdout, proc.stderr)


def grep_patterns(secrets):
    """``-e %s`` once per secret: for ``host.run("grep -F " + grep_patterns(s), *s)``."""
    return " ".join(["-e %s"] * len(secrets))


def leaks(host, secrets, roots=ROOTS):
    """Where any of ``secrets`` shows on ``host`` (a testinfra host, or a container's
    name): world-readable files under ``roots`` (paths), "the journal", "process
    arguments". An empty list is what every scenario must see."""
    if isinstance(host, str):
        host = Shell(["podman", "exec", host])
    secrets = [secret for secret in secrets if secret]
    if not secrets:
        raise ValueError("no secret to look for")
    patterns = grep_patterns(secrets)
    where = " ".join(["%s"] * len(roots))
    found = host.run(
        f"find {where} -xdev -type f -perm -004 -size -20M -exec grep -lF {patterns} {{}} + "
        "2>/dev/null", *roots, *secrets,
    ).stdout.split()
    journal = host.run(f"journalctl --no-pager -o cat | grep -cF {patterns}", *secrets)
    if journal.stdout.strip() != "0":
        found.append("the journal")
    processes = host.run("ps -eww -o args")  # ww: whole lines, whatever COLUMNS says
    if processes.rc != 0:
        raise RuntimeError(f"ps: rc={processes.rc} {processes.stderr}")
    if shown(processes.stdout, secrets):
        found.append("process arguments")
    return found
