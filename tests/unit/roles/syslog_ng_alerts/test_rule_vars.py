"""The role's rule variables (vars/main.yml) as Ansible templates them: the filters wired in.

One ansible-playbook run on the controller (connection local, nothing but a JSON file per
case in a temporary directory): the role's defaults as group_vars, each case's settings as
host_vars, vars/main.yml as the play's vars_files, so each case's variables stand where
they would for the role."""

import json
import os
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
ROLE = os.path.join(ROOT, "roles", "syslog_ng_alerts")
COLLECTIONS = os.path.join(ROOT, ".cache", "collections")  # tests/unit/conftest.py

CASES = {
    "override": {
        "syslog_ng_alerts_presets": ["ssh_failed", "root_login"],
        "syslog_ng_alerts_preset_overrides": {
            "ssh_failed": {"severity": "critical"},
            "root_login": {"sender": {"uids": [0, 1000]}},
            "accounts": {"severity": "info"},
            "forgery": {"severity": "critical"},
        },
        "syslog_ng_alerts_rules": [{"name": "mine", "filter": "program('mine')"}],
    },
    "server": {
        "syslog_ng_alerts_topology": "server",
        "syslog_ng_alerts_presets": ["verify"],
        "syslog_ng_alerts_expected_clients": ["c1"],
        "syslog_ng_alerts_watchdog_interval": "20",
        "syslog_ng_alerts_silence_tags": ["quiet"],
    },
    "client": {
        "syslog_ng_alerts_topology": "client",
        "syslog_ng_alerts_server": "s",
        "syslog_ng_alerts_presets": ["verify"],
        "syslog_ng_alerts_expected_clients": ["c1"],
        "syslog_ng_alerts_watchdog_interval": 20,
    },
    "bad": {
        "syslog_ng_alerts_presets": ["ssh_failed"],
        "syslog_ng_alerts_preset_overrides": {"ssh_failed": {"severty": "critical"}},
    },
    "bad_forgery": {
        "syslog_ng_alerts_presets": ["ssh_failed"],
        "syslog_ng_alerts_preset_overrides": {"forgery": {"name": "fake"}},
    },
}

PLAY = """
- name: Render the rule variables
  hosts: all
  gather_facts: false
  vars_files:
    - {vars}
  tasks:
    - name: Write the rules of each case
      ansible.builtin.copy:
        content: "{{{{ {{'rules': __syslog_ng_alerts_all_rules,
                        'forgery': __syslog_ng_alerts_forgery_rule}} | to_json }}}}"
        dest: "{out}/{{{{ inventory_hostname }}}}.json"
        mode: "0644"
"""


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rule_vars")
    inv = tmp / "inventory"
    (inv / "group_vars").mkdir(parents=True)
    (inv / "host_vars").mkdir()
    with open(os.path.join(ROLE, "defaults", "main.yml"), encoding="utf-8") as f:
        (inv / "group_vars" / "all.yml").write_text(f.read())
    hosts = {}
    for name, settings in CASES.items():
        hosts[name] = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
        (inv / "host_vars" / f"{name}.yml").write_text(yaml.safe_dump(settings))
    (inv / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    out = tmp / "out"
    out.mkdir()
    play = tmp / "play.yml"
    play.write_text(PLAY.format(vars=os.path.join(ROLE, "vars", "main.yml"), out=out))
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": COLLECTIONS,
           "ANSIBLE_HOME": str(tmp / "home"), "ANSIBLE_LOCAL_TEMP": str(tmp / "home" / "tmp"),
           "ANSIBLE_NOCOLOR": "1", "ANSIBLE_RETRY_FILES_ENABLED": "0"}
    playbook = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    proc = subprocess.run([playbook, "-i", str(inv), str(play)], capture_output=True, text=True,
                          env=env, timeout=300, check=False)
    results = {}
    for name in CASES:
        path = out / f"{name}.json"
        results[name] = json.loads(path.read_text()) if path.exists() else None
    return proc, results


def test_a_severity_override_keeps_the_rest_of_the_preset(rendered):
    _proc, results = rendered
    rules = results["override"]["rules"]
    assert [r["name"] for r in rules] == ["ssh_failed", "root_login", "mine"]
    ssh = rules[0]
    assert ssh["severity"] == "critical"
    assert ssh["sender"] == {"uids": [0]}
    assert ssh["tags"] == ["secalert", "ssh"]
    assert ssh["filter"].startswith("program('^sshd(-session)?$')")
    assert ssh["title"] == "SSH login failure on ${HOST}"
    assert ssh["body"] == "${HOST} ${PROGRAM}: ${MESSAGE}"
    assert rules[1]["sender"] == {"uids": [0, 1000], "setuid": ["/usr/bin/su"]}
    assert rules[1]["severity"] == "critical"
    assert results["override"]["forgery"]["severity"] == "critical"
    assert results["override"]["forgery"]["tags"] == ["secalert", "forgery"]


def test_a_server_gets_the_dead_man_and_watchdog_rules(rendered):
    _proc, results = rendered
    rules = results["server"]["rules"]
    assert [r["name"] for r in rules] == ["verify", "host_silence", "watchdog"]
    assert rules[1]["tags"] == ["quiet"]
    assert "repeats every 20 s" in rules[2]["body"]


def test_a_client_gets_neither(rendered):
    _proc, results = rendered
    assert [r["name"] for r in results["client"]["rules"]] == ["verify"]


@pytest.mark.parametrize("case, message", [
    ("bad", "secalert.alerting.alert_rules: the override of preset ssh_failed has unknown "
            "field(s) severty; it may set body, event_tags, filter, name, parser, render, "
            "sender, severity, tags, title, variants"),
    ("bad_forgery", "secalert.alerting.forgery_rule: the override of the forgery alert cannot "
                    "rename it (name 'fake'); leave name out"),
])
def test_a_bad_override_fails_with_the_filter_message(rendered, case, message):
    proc, results = rendered
    assert results[case] is None
    assert proc.returncode != 0
    failed = [line for line in proc.stdout.splitlines() if line.startswith(f"fatal: [{case}]")]
    assert len(failed) == 1
    assert message in failed[0]
