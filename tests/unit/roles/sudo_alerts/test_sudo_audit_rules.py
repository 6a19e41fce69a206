"""Rules: first match wins, every matcher, the shipped defaults, config validation."""

import pytest
from secalert_sudo import config, rules

DEFAULTS = rules.compile_rules(rules.DEFAULT_RULES)


def ev(decision="accept", command="/usr/bin/id", args=(), user="alice", runas="root"):
    return {"decision": decision, "command": command, "args": list(args), "user": user,
            "runas_user": runas}


@pytest.mark.parametrize("event, rule", [
    (ev(), "routine"),
    (ev(command="/usr/bin/bash"), "shell"),
    (ev(command="/bin/sh", args=["-c", "id"]), "shell"),
    (ev(command="/usr/bin/su", args=["-"]), "shell"),
    (ev(command="/usr/sbin/visudo"), "sensitive-editor"),
    (ev(command="sudoedit", args=["/etc/hosts"]), "sensitive-editor"),
    (ev(command="/usr/bin/vi", args=["/etc/sudoers"]), "sensitive-file"),
    (ev(command="/usr/bin/tee", args=["/etc/sudoers.d/evil"]), "sensitive-file"),
    (ev(command="/usr/bin/cat", args=["/etc/shadow"]), "sensitive-file"),
    (ev(command="/usr/bin/cp", args=["x", "/etc/passwd"]), "sensitive-file"),
    (ev(command="/usr/bin/cat", args=["/etc/hosts"]), "routine"),
    (ev(decision="reject", command="/usr/bin/cat"), "denied"),
    (ev(decision="error", command="/usr/bin/bash"), "denied"),
    (ev(decision="close"), "exit"),
    # first match wins: a rejected shell is "denied", not "shell"
    (ev(decision="reject", command="/bin/bash"), "denied"),
])
def test_default_rules(event, rule):
    assert rules.match_rule(DEFAULTS, event)["name"] == rule


def test_default_severities():
    sev = {r["name"]: r["severity"] for r in DEFAULTS}
    assert sev["denied"] == sev["sensitive-file"] == sev["sensitive-editor"] == "critical"
    assert sev["shell"] == "warning"
    assert sev["routine"] == "info"


CUSTOM = rules.compile_rules([
    {"name": "ignore-backup", "match": {"user": "backup*", "command": "/usr/bin/rsync"},
     "action": "ignore"},
    {"name": "dba", "match": {"group": ["dba"], "runas_user": "postgres"},
     "severity": "notice", "tags": ["db"]},
    {"name": "rm-rf", "match": {"args": r"(^|\s)-[a-zA-Z]*r[a-zA-Z]*f|-fr\b",
                                "decision": ["accept"]},
     "severity": "critical", "tags": ["sudo", "danger"]},
    {"name": "to-anyone", "match": {"runas_user": ["!root", "[!r]*"]}, "severity": "warning"},
])


@pytest.mark.parametrize("event, groups, rule", [
    (ev(user="backup1", command="/usr/bin/rsync"), [], "ignore-backup"),
    (ev(user="alice", command="/usr/bin/rsync"), [], None),
    (ev(runas="postgres", command="/usr/bin/psql"), ["alice", "dba"], "dba"),
    (ev(runas="postgres", command="/usr/bin/psql"), ["alice"], "to-anyone"),
    (ev(command="/bin/rm", args=["-rf", "/"]), [], "rm-rf"),
    (ev(command="/bin/rm", args=["-fr", "/"]), [], "rm-rf"),
    (ev(command="/bin/rm", args=["-f", "x"]), [], None),
    (ev(decision="reject", command="/bin/rm", args=["-rf", "/"]), [], None),
])
def test_custom_rules(event, groups, rule):
    found = rules.match_rule(CUSTOM, event, lambda: groups)
    assert (found["name"] if found else None) == rule


def test_group_lookup_only_when_needed():
    calls = []

    def groups():
        calls.append(1)
        return ["dba"]

    rules.match_rule(rules.compile_rules([{"match": {"user": "bob"}}]), ev(), groups)
    assert calls == []
    rules.match_rule(rules.compile_rules([{"match": {"group": "dba"}}]), ev(), groups)
    assert calls == [1]


@pytest.mark.parametrize("rule_list, message", [
    ("nope", "must be a list"),
    ([1], "must be an object"),
    ([{"match": {"colour": "red"}}], "match keys"),
    ([{"action": "page"}], "alert or ignore"),
    ([{"severity": "meh"}], "severity"),
    ([{"tags": ["ok", "bad tag"]}], "invalid tag"),
    ([{"tags": 5}], "tags must be"),
    ([{"match": {"decision": "approve"}}], "unknown decision"),
    ([{"match": {"args": "("}}], "match.args"),
    ([{"match": {"args": ["x"]}}], "regular expression"),
    ([{"match": {"user": [1]}}], "match.user"),
    ([{"when": "always"}], "unknown keys"),
])
def test_invalid_rules(rule_list, message):
    with pytest.raises(rules.RuleError, match=message):
        rules.compile_rules(rule_list)


@pytest.mark.parametrize("raw, message", [
    ("", "not valid JSON"),
    ("[]", "JSON object"),
    ('{"delivery": "pigeon"}', "delivery"),
    ('{"colour": 1}', "unknown setting colour"),
    ('{"syslog": {"facility": "authpriv2"}}', "facility"),
    ('{"syslog": "authpriv"}', "must be an object"),
    ('{"fail_closed": "yes"}', "true or false"),
    ('{"limits": {"arg_chars": 0}}', "positive integer"),
    ('{"direct": {"python": "python3"}}', "absolute path"),
    ('{"direct": {"min_severity": "loud"}}', "min_severity"),
    ('{"rules": [{"action": "x"}]}', "alert or ignore"),
    ("\udcff".encode("utf-8", "surrogateescape").decode("latin-1"), "not valid JSON"),
])
def test_invalid_config(write_config, raw, message):
    path = write_config(raw=raw)
    with pytest.raises(config.ConfigError, match=message):
        config.load_settings(path)


def test_config_rules_come_before_defaults(write_config):
    path = write_config({"rules": [{"name": "mine", "match": {"command": "/usr/bin/id"},
                                    "action": "ignore"}]})
    compiled = config.load_settings(path)["compiled_rules"]
    assert [r["name"] for r in compiled][:2] == ["mine", "denied"]
    path = write_config({"include_default_rules": False, "rules": [{"name": "only"}]})
    assert [r["name"] for r in config.load_settings(path)["compiled_rules"]] == ["only"]


def ansible_rules(users):
    """The ansible-become rule before the shipped rules, as config.load_settings puts it."""
    return rules.compile_rules([rules.ansible_become_rule(users)] + rules.DEFAULT_RULES)


def test_ansible_users_put_the_become_rule_after_the_configured_rules(write_config):
    path = write_config({"ansible_users": ["deploy"],
                         "rules": [{"name": "mine", "match": {"command": "/usr/bin/id"}}]})
    names = [r["name"] for r in config.load_settings(path)["compiled_rules"]]
    assert names[:4] == ["mine", "ansible-become", "ansible-become", "denied"]
    assert "ansible-become" not in [
        r["name"] for r in config.load_settings(write_config({}))["compiled_rules"]]


@pytest.mark.parametrize("users", ["deploy", [""], [1], {"a": 1}])
def test_ansible_users_must_be_a_list_of_names(write_config, users):
    with pytest.raises(config.ConfigError, match="ansible_users"):
        config.load_settings(write_config({"ansible_users": users}))


KEY = "echo BECOME-SUCCESS-" + "qwertyuiopasdfghjklzxcvbnmqwerty"
TMP = "/home/deploy/.ansible/tmp/ansible-tmp-1764172800.21-4242-1234567/AnsiballZ_command.py"


@pytest.mark.parametrize("event, rule", [
    # Ansible's become, with pipelining and without, any interpreter path
    (ev(user="deploy", command="/bin/sh", args=["-c", f"{KEY} ; /usr/bin/python3"]),
     "ansible-become"),
    (ev(user="deploy", command="/usr/bin/sh", args=["-c", f"{KEY} ; /usr/bin/python3.11 {TMP}"]),
     "ansible-become"),
    (ev(user="deploy", command="/bin/sh",
        args=["-c", f"{KEY} ; /usr/bin/env /opt/py/bin/python3 {TMP}"]), "ansible-become"),
    # the existence check of unarchive's creates (seen on a real roll-out)
    (ev(user="deploy", command="/bin/sh",
        args=["-c", f"{KEY} ; test -e /opt/secalert/wheelhouse/.apprise-2.3.0-cp311-x86_64"]),
     "ansible-become"),
    (ev(user="deploy", command="/bin/sh", args=["-c", f"{KEY} ; test -e /x ; id"]), "shell"),
    (ev(user="deploy", command="/bin/sh", args=["-c", f"{KEY} ; test -e '/a b'"]), "shell"),
    (ev(user="deploy", command="/bin/sh", args=["-c", f"{KEY} ; test -e /x || rm -rf /"]),
     "shell"),
    # anything more, or another user, or another shell, alerts as before
    (ev(user="alice", command="/bin/sh", args=["-c", f"{KEY} ; /usr/bin/python3"]), "shell"),
    (ev(user="deploy", command="/bin/bash", args=["-c", f"{KEY} ; /usr/bin/python3"]), "shell"),
    (ev(user="deploy", command="/bin/sh", args=["-c", f"{KEY} ; /usr/bin/python3 ; id"]),
     "shell"),
    (ev(user="deploy", command="/bin/sh", args=["-c", f"{KEY} ; rm -rf /"]), "shell"),
    (ev(user="deploy", command="/bin/sh", args=["-c", f"{KEY} ; /usr/bin/python3 -c 'x'"]),
     "shell"),
    (ev(user="deploy", command="/bin/sh", args=["-c", f"{KEY} ; /usr/bin/python3 /tmp/evil.py"]),
     "shell"),
    (ev(user="deploy", command="/bin/sh",
        args=["-c", "echo BECOME-SUCCESS-short ; /usr/bin/python3"]), "shell"),
    (ev(user="deploy", command="/bin/sh",
        args=["-c", f"{KEY} ; /usr/bin/python3 {TMP}", "/etc/shadow"]), "sensitive-file"),
    (ev(user="deploy", command="/bin/sh", args=["-c", f"{KEY} ; /usr/bin/python3\n"]),
     "shell"),
    (ev(user="deploy", command="/bin/sh", args=["-c", f"{KEY} ; /usr/bin/python3 {TMP}\nid"]),
     "shell"),
    # a rejected Ansible become is still a denial
    (ev(user="deploy", decision="reject", command="/bin/sh",
        args=["-c", f"{KEY} ; /usr/bin/python3"]), "denied"),
])
def test_ansible_become_rule(event, rule):
    assert rules.match_rule(ansible_rules(["deploy"]), event)["name"] == rule


def test_ansible_become_rule_is_quiet():
    rule = ansible_rules(["deploy"])[0]
    assert (rule["name"], rule["severity"], rule["tags"]) == (
        "ansible-become", "info", ["sudo", "sudo-ansible"])
