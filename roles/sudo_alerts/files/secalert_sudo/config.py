"""The plugin's JSON configuration: defaults, validation and loading."""

import json
import os

from secalert_sudo import rules

DEFAULT_CONFIG = "/etc/secalert/sudo_alerts.json"
PROGRAM = "secalert-sudo"
TRUSTED_UID = 0  # owner the config and the spool must have (unit tests run as someone else)
MAX_CONFIG_BYTES = 256 * 1024

FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6,
    "news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
    "local0": 16, "local1": 17, "local2": 18, "local3": 19,
    "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}
SEVERITIES = rules.SEVERITIES

# Limits that keep one event one well-formed syslog datagram, whatever the input.
DEFAULT_LIMITS = {
    "field_chars": 256,  # user, tty, cwd, command, reason ...
    "arg_chars": 1024,  # each argument
    "args": 64,  # number of arguments kept
    "event_bytes": 6000,  # the whole JSON line
}

DEFAULT_SETTINGS = {
    "delivery": "syslog",  # or "direct"
    "fail_closed": False,
    "close_events": False,  # also an event when the command ends (exit status/signal)
    "include_default_rules": True,  # append rules.DEFAULT_RULES after the configured rules
    "rules": [],
    # Users Ansible connects as: rules.ansible_become_rule, after "rules".
    "ansible_users": [],
    "syslog": {
        "facility": "authpriv",
        "ident": PROGRAM,
        "socket": "/dev/log",
        # Tried first: a datagram socket only root can reach, made by syslog-ng
        # (syslog_ng_alerts_root_socket). Its lines count as sent by root and never meet
        # journald's per-session rate limit. Missing or refused: "socket" is used.
        "root_socket": "/run/secalert/log.sock",
        "drop_counter": "/run/secalert/sudo-drops",
    },
    "direct": {
        "python": "/opt/secalert/venv/bin/python",  # the Apprise venv's: runs the sender
        # the other half of the spool protocol (files/secalert_sudo_send.py)
        "sender": "/usr/libexec/secalert/secalert_sudo_send.py",
        "apprise_config": "/etc/secalert/apprise.yml",
        "min_severity": "warning",  # less severe events only go to syslog
        "syslog_copy": True,  # also log every event to syslog
        "spool": "/run/secalert/sudo-spool",  # events waiting for the sender (root-only)
        "lock": "/run/secalert/sudo-sender.lock",  # held by the running sender
        "spool_max_bytes": 1024 * 1024,  # beyond this, events go to syslog only
        # What one invoking uid other than root may hold of the spool: a user who floods
        # sudo (refused calls included) cannot crowd out the others' alerts.
        "spool_uid_bytes": 256 * 1024,
        # The sender's rate limit per Apprise target, kept in rate_state between senders.
        "rate_limit": 5,
        "rate_period": 60,
        "rate_state": "/run/secalert/sudo-sender.rate",
        # One JSON line per delivered event (playbooks/verify.yml reads it); "": none.
        "ledger": "/var/log/secalert/sudo-delivered.log",
    },
    "limits": DEFAULT_LIMITS,
    # Session rules (secalert_sudo.session, the I/O plugin): what is typed and shown
    # inside a sudo session. Only the I/O plugin compiles them.
    "session_rules": [],
    "session": {
        # "end-session" rules may end a session (else they only alert): the role sets it
        # only on sudo releases where the tests prove it safe.
        "end_session": False,
        "default_rules": True,  # append session.DEFAULT_SESSION_RULES after session_rules
        "secret_pattern": "",  # "": no secret-on-screen output rule
        "end_rules": [],  # names of rules (shipped ones too) whose action is end-session
        "max_events": 20,  # alerts one session sends; the rest are counted at its end
        "line_chars": 1024,  # what the line buffer keeps of a typed line (the end)
        "excerpt_chars": 120,  # of the matched, echoed line in an input rule's alert
    },
}


class ConfigError(Exception):
    """The configuration file is missing, unsafe or invalid."""


def _merge(defaults, override, where):
    result = dict(defaults)
    for key, value in override.items():
        if key not in defaults:
            raise ConfigError(f"unknown setting {where}{key}")
        if isinstance(defaults[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"setting {where}{key} must be an object")
            value = _merge(defaults[key], value, where + key + ".")
        elif isinstance(defaults[key], bool) and not isinstance(value, bool):
            raise ConfigError(f"setting {where}{key} must be true or false")
        elif isinstance(defaults[key], int) and not isinstance(defaults[key], bool) and (
                not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ConfigError(f"setting {where}{key} must be a positive integer")
        elif isinstance(defaults[key], str) and not isinstance(value, str):
            raise ConfigError(f"setting {where}{key} must be a string")
        result[key] = value
    return result


def _compile(rule_list):
    try:
        return rules.compile_rules(rule_list)
    except rules.RuleError as exc:
        raise ConfigError(str(exc)) from None


def load_settings(path, session=False):
    """Read the JSON config at ``path``; return settings with compiled rules (and with
    ``session``, compiled session rules in ``compiled_session_rules``).

    Raises ConfigError when the file is missing, not root-owned, writable by others,
    too large or invalid. The caller then uses ``default_settings()``.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags | os.O_NONBLOCK)
    except OSError as exc:
        raise ConfigError(f"cannot open {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not (st.st_mode & 0o170000 == 0o100000):
            raise ConfigError(f"{path} is not a regular file")
        if st.st_uid != TRUSTED_UID or st.st_mode & 0o022:
            raise ConfigError(f"{path} must be owned by root and not writable by group or others")
        if st.st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path} is larger than 256 KiB")
        data = os.read(fd, MAX_CONFIG_BYTES + 1)
    finally:
        os.close(fd)
    try:
        raw = json.loads(data.decode("utf-8"))
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    raw.pop("schema", None)
    raw.pop("comment", None)
    settings = _merge(DEFAULT_SETTINGS, raw, "")
    if settings["delivery"] not in ("syslog", "direct"):
        raise ConfigError("delivery must be syslog or direct")
    if settings["syslog"]["facility"] not in FACILITIES:
        raise ConfigError("unknown syslog facility {!r}".format(settings["syslog"]["facility"]))
    if settings["direct"]["min_severity"] not in SEVERITIES:
        raise ConfigError(f"direct.min_severity must be one of {list(SEVERITIES)}")
    root_socket = settings["syslog"]["root_socket"]
    if root_socket and not os.path.isabs(root_socket):
        raise ConfigError("syslog.root_socket must be an absolute path or empty")
    for key in ("python", "sender", "apprise_config", "spool", "lock", "rate_state", "ledger"):
        value = settings["direct"][key]
        if not os.path.isabs(value) and not (value == "" and key in ("rate_state", "ledger")):
            raise ConfigError(f"direct.{key} must be an absolute path")
    users = settings["ansible_users"]
    if not isinstance(users, list) or not all(isinstance(u, str) and u for u in users):
        raise ConfigError("ansible_users must be a list of user names")
    rule_list = list(settings["rules"])
    if users:
        rule_list += [rules.ansible_become_rule(users), rules.ANSIBLE_BECOME_SUBCOMMANDS]
    if settings["include_default_rules"]:
        rule_list += rules.DEFAULT_RULES
    settings["compiled_rules"] = _compile(rule_list)
    if session:
        settings["compiled_session_rules"] = compile_session(settings)
    return settings


def compile_session(settings):
    """The session rules the I/O plugin applies: the configured ones, the shipped ones
    (``session.default_rules``), the secret pattern's; ``end_rules`` end the session."""
    from secalert_sudo import session

    options = settings["session"]
    rule_list = settings["session_rules"]
    if not isinstance(rule_list, list):
        raise ConfigError("session_rules must be a list")
    rule_list = list(rule_list)
    if options["default_rules"]:
        rule_list += session.DEFAULT_SESSION_RULES
    if options["secret_pattern"]:
        rule_list.append(session.secret_rule(options["secret_pattern"]))
    end = options["end_rules"]
    if not isinstance(end, list) or not all(isinstance(n, str) for n in end):
        raise ConfigError("session.end_rules must be a list of rule names")
    names = {r.get("name") for r in rule_list if isinstance(r, dict)}
    unknown = sorted(set(end) - names)
    if unknown:
        raise ConfigError(f"session.end_rules names no session rule: {unknown}")
    rule_list = [dict(r, action="end-session") if isinstance(r, dict) and r.get("name") in end
                 else r for r in rule_list]
    try:
        return session.compile_rules(rule_list)
    except rules.RuleError as exc:
        raise ConfigError(str(exc)) from None


def default_settings():
    """The built-in settings (syslog, shipped rules): used when the config is broken."""
    settings = _merge(DEFAULT_SETTINGS, {}, "")
    settings["compiled_rules"] = _compile(rules.DEFAULT_RULES)
    return settings
