"""Rules: the shipped ones, their compilation, and matching on what really runs.

Rules see the raw values sudo passed (before any escaping or truncation for output),
with two normalisations so that spelling cannot hide a command or a file:

- ``command`` globs are tried on the command as given and as ``os.path.normpath`` makes it
  (``/bin/./././bash`` is ``/bin/bash``); a pattern without ``/`` is tried on the basename;
- ``path`` (the sensitive-file rule) is searched in every argument read as a path:
  normalised, relative ones joined with the command's working directory
  (``vim shadow`` in ``/etc`` is ``/etc/shadow``), ``//`` and ``/./`` collapsed, ``..``
  resolved lexically; for ``--opt=VALUE`` / ``if=VALUE`` the value is a path too.
"""

import os
import re

SEVERITIES = {
    "emergency": 0, "alert": 1, "critical": 2, "error": 3,
    "warning": 4, "notice": 5, "info": 6, "debug": 7,
}
DECISIONS = ("accept", "reject", "error", "close")
# "top": the command given to sudo; "subcommand": one run inside it (sudoers' log_subcmds
# and intercept, role variable sudo_alerts_subcommands)
SCOPES = ("top", "subcommand")
MATCH_KEYS = ("decision", "scope", "parent_rule", "user", "group", "runas_user", "command",
              "args", "path")
# An event whose arguments were cut for output (or for matching) is at least this severe:
# what nobody can read in the alert must not be the reason it stays quiet.
TRUNCATED_SEVERITY = "warning"
_TAG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")

SENSITIVE_FILES = r"/etc/(?:sudoers|passwd|shadow|gshadow|group|security/)|/etc/sudoers\.d/"

# Shipped rules, first match wins. Loud for what an attacker or a mistake looks like,
# quiet ("info": logged, not pushed to chat by default) for routine commands.
DEFAULT_RULES = [
    {
        "name": "denied",
        "match": {"decision": ["reject", "error"]},
        "action": "alert", "severity": "critical", "tags": ["sudo", "sudo-denied"],
    },
    {
        "name": "sensitive-editor",
        "match": {"decision": ["accept"],
                  "command": ["*/visudo", "*/vipw", "*/vigr", "sudoedit", "*/sudoedit"]},
        "action": "alert", "severity": "critical", "tags": ["sudo", "sudo-sensitive"],
    },
    {
        "name": "sensitive-file",
        "match": {"decision": ["accept"], "path": SENSITIVE_FILES},
        "action": "alert", "severity": "critical", "tags": ["sudo", "sudo-sensitive"],
    },
    {
        # Only as the command given to sudo: inside a root shell, every script starts one.
        "name": "shell",
        "match": {"decision": ["accept"], "scope": ["top"],
                  "command": ["*/sh", "*/bash", "*/dash", "*/zsh", "*/ksh", "*/ksh93",
                              "*/mksh", "*/fish", "*/csh", "*/tcsh", "*/busybox",
                              "*/su", "*/sudo", "*/login", "*/runuser", "*/machinectl"]},
        "action": "alert", "severity": "warning", "tags": ["sudo", "sudo-shell"],
    },
    {
        "name": "exit",
        "match": {"decision": ["close"]},
        "action": "alert", "severity": "info", "tags": ["sudo"],
    },
    {
        "name": "routine",
        "match": {},
        "action": "alert", "severity": "info", "tags": ["sudo"],
    },
]


# Ansible's become command, as the plugin sees its arguments (after /bin/sh): the marker
# with Ansible's 32 lower-case letters, then only a Python interpreter, optionally with the
# AnsiballZ file Ansible copied (no pipelining), or the read-only existence check Ansible's
# actions make (``test -e PATH``, e.g. unarchive's creates). Anything more is not Ansible's.
ANSIBLE_BECOME_ARGS = (
    r"^-c echo BECOME-SUCCESS-[a-z]{32} ; "
    r"((/usr/bin/env )?/[A-Za-z0-9_./-]*/python[0-9.]*"
    r"( /[A-Za-z0-9_./-]+/AnsiballZ_[A-Za-z0-9_]+[.]py)?"
    r"|test -e /[A-Za-z0-9_./-]+)\Z"
)


def ansible_become_rule(users):
    """The shipped rule for the become commands of the users Ansible connects as (setting
    ``ansible_users``): logged as info, not pushed. It sits after the configured rules and
    before DEFAULT_RULES."""
    return {
        "name": "ansible-become",
        "match": {"decision": ["accept"], "user": list(users), "command": ["*/sh"],
                  "args": ANSIBLE_BECOME_ARGS},
        "action": "alert", "severity": "info", "tags": ["sudo", "sudo-ansible"],
    }


# What runs inside an Ansible become command (the modules' own commands, with
# sudo_alerts_subcommands) is Ansible's too: logged as info like the command itself.
ANSIBLE_BECOME_SUBCOMMANDS = {
    "name": "ansible-become",
    "match": {"scope": ["subcommand"], "parent_rule": ["ansible-become"]},
    "action": "alert", "severity": "info", "tags": ["sudo", "sudo-ansible"],
}


class RuleError(Exception):
    """A rule is invalid (config.ConfigError wraps it)."""


def _as_list(value, what):
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise RuleError(f"{what} must be a string or a list of strings")


def _regex(match, key, where):
    if not isinstance(match[key], str):
        raise RuleError(f"{where}: match.{key} must be a regular expression")
    try:
        return re.compile(match[key])
    except re.error as exc:
        raise RuleError(f"{where}: match.{key}: {exc}") from None


def check_tags(value, where):
    """A rule's tags as a list; RuleError when one is not a valid tag."""
    tags = _as_list(value, where + ": tags")
    for tag in tags:
        if not _TAG_RE.match(tag):
            raise RuleError(f"{where}: invalid tag {tag!r}")
    return tags


def compile_rules(rule_list):
    """Validate rules and precompile their patterns. Raises RuleError."""
    if not isinstance(rule_list, list):
        raise RuleError("rules must be a list")
    compiled = []
    for index, rule in enumerate(rule_list):
        where = "rule {} ({})".format(index, rule.get("name", "unnamed")
                                      if isinstance(rule, dict) else "?")
        if not isinstance(rule, dict):
            raise RuleError(where + ": must be an object")
        unknown = set(rule) - {"name", "match", "action", "severity", "tags"}
        if unknown:
            raise RuleError(f"{where}: unknown keys {sorted(unknown)}")
        match = rule.get("match", {})
        if not isinstance(match, dict) or set(match) - set(MATCH_KEYS):
            raise RuleError(f"{where}: match keys must be among {MATCH_KEYS}")
        action = rule.get("action", "alert")
        if action not in ("alert", "ignore"):
            raise RuleError(where + ": action must be alert or ignore")
        severity = rule.get("severity", "warning")
        if severity not in SEVERITIES:
            raise RuleError(f"{where}: severity must be one of {list(SEVERITIES)}")
        tags = check_tags(rule.get("tags", ["sudo"]), where)
        entry = {"name": str(rule.get("name", f"rule{index}"))[:64], "action": action,
                 "severity": severity, "tags": tags}
        for key in ("decision", "scope", "parent_rule", "user", "group", "runas_user",
                    "command"):
            if key in match:
                entry[key] = _as_list(match[key], f"{where}: match.{key}")
        for decision in entry.get("decision", ()):
            if decision not in DECISIONS:
                raise RuleError(f"{where}: unknown decision {decision!r}")
        for scope in entry.get("scope", ()):
            if scope not in SCOPES:
                raise RuleError(f"{where}: unknown scope {scope!r} (top or subcommand)")
        for key in ("args", "path"):
            if key in match:
                entry[key] = _regex(match, key, where)
        compiled.append(entry)
    return compiled


def raise_severity(severity, floor=TRUNCATED_SEVERITY):
    """``severity``, or ``floor`` when that is more severe. Never lowers."""
    return floor if SEVERITIES[floor] < SEVERITIES[severity] else severity


# --------------------------------------------------------------------------- matching


def _normpath(path):
    path = os.path.normpath(path)
    return "/" + path.lstrip("/") if path.startswith("//") else path


def command_forms(command):
    """(full forms, basename) of a command as rules see it."""
    if not command:
        return (), None
    forms = [command]
    if "/" in command:
        normal = _normpath(command)
        if normal != command:
            forms.append(normal)
    return forms, command.rstrip("/").rsplit("/", 1)[-1]


def path_forms(args, cwd):
    """Every argument read as a path: normalised, relative ones joined with ``cwd``."""
    base = cwd if cwd and cwd.startswith("/") else None
    out = []
    for arg in args or ():
        if not isinstance(arg, str) or not arg:
            continue
        values = [arg]
        if "=" in arg:
            values.append(arg.split("=", 1)[1])
        for value in values:
            if not value:
                continue
            if value.startswith("/"):
                out.append(_normpath(value))
            elif base is not None:
                out.append(_normpath(base + "/" + value))
            else:
                out.append(value)
    return out


def _glob(value, pattern):
    """fnmatchcase, without compiling a regex for the common shapes (``x``, ``*x``, ``x*``).

    fnmatch compiles one regex per pattern and process: for the shipped rules that costs
    more than the rest of a sudo call.
    """
    if "[" not in pattern and "?" not in pattern:
        stars = pattern.count("*")
        if stars == 0:
            return value == pattern
        if stars == 1 and pattern.startswith("*"):
            return value.endswith(pattern[1:])
        if stars == 1 and pattern.endswith("*"):
            return value.startswith(pattern[:-1])
    from fnmatch import fnmatchcase  # only for other patterns

    return fnmatchcase(value, pattern)


def _any_glob(value, patterns):
    return value is not None and any(_glob(value, p) for p in patterns)


def _command_matches(command, patterns):
    forms, base = command_forms(command)
    for pattern in patterns:
        candidates = forms if "/" in pattern else [*forms, base]
        if any(_any_glob(value, (pattern,)) for value in candidates):
            return True
    return False


def match_rule(rule_list, event, groups=None):
    """Return the first rule in ``rule_list`` that matches ``event`` (dict), or None.

    ``event`` holds raw values: decision, scope, user, runas_user, command, args (list),
    cwd, and for a subcommand parent_rule (the rule of the command it ran inside).
    ``groups`` is a callable returning the user's group names; it is only called when a
    rule matches on groups (the lookup may be slow on directory-backed hosts).
    """
    group_names = None
    paths = None
    joined = None
    for rule in rule_list:
        if "decision" in rule and event.get("decision") not in rule["decision"]:
            continue
        if "scope" in rule and event.get("scope", "top") not in rule["scope"]:
            continue
        if "parent_rule" in rule and not _any_glob(event.get("parent_rule"), rule["parent_rule"]):
            continue
        if "user" in rule and not _any_glob(event.get("user"), rule["user"]):
            continue
        if "runas_user" in rule and not _any_glob(event.get("runas_user"), rule["runas_user"]):
            continue
        if "command" in rule and not _command_matches(event.get("command"), rule["command"]):
            continue
        if "args" in rule:
            if joined is None:
                joined = " ".join(a for a in event.get("args") or () if isinstance(a, str))
            if not rule["args"].search(joined):
                continue
        if "path" in rule:
            if paths is None:
                paths = path_forms(event.get("args"), event.get("cwd"))
            if not any(rule["path"].search(p) for p in paths):
                continue
        if "group" in rule:
            if group_names is None:
                group_names = list(groups()) if groups else []
            if not any(_any_glob(g, rule["group"]) for g in group_names):
                continue
        return rule
    return None
