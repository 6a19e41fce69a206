"""The rules of syslog_ng_alerts: presets, deep-merged overrides, own rules, dead man's switch.

The logic of the filters alert_rules and forgery_rule (plugins/plugin_utils/alert_rules.py,
standard library only) on the role's real catalogue (roles/syslog_ng_alerts/vars/main.yml).
The filter plugins themselves, which only turn its errors into AnsibleFilterError, run in
tests/unit/roles/syslog_ng_alerts/test_rule_vars.py through ansible-playbook: importing
them here would import Ansible's controller code into this process, after which
AnsibleModule.warn() in the module tests displays warnings instead of returning them."""

import copy
import os

import pytest
import yaml
from ansible_collections.secalert.alerting.plugins.plugin_utils import alert_rules as ar

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
with open(os.path.join(ROOT, "roles", "syslog_ng_alerts", "vars", "main.yml"),
          encoding="utf-8") as _f:
    VARS = yaml.safe_load(_f)
CATALOGUE = VARS["__syslog_ng_alerts_presets"]
FORGERY = VARS["__syslog_ng_alerts_forgery_preset"]
DEADMAN = VARS["__syslog_ng_alerts_deadman_rules"]
WATCHDOG = VARS["__syslog_ng_alerts_watchdog_rule"]
SSH = CATALOGUE["ssh_failed"]
ROOT_LOGIN = CATALOGUE["root_login"]


def rules(presets, overrides=None, own=None, **kw):
    return ar.alert_rules(CATALOGUE, presets, overrides, own, **kw)


def with_(rule, **fields):
    return {**rule, **fields}


# (case, presets, overrides, the rules expected)
MERGES = [
    # Issue #11: the shallow combine replaced the whole preset by {severity: critical}.
    ("severity only keeps every other field",
     ["ssh_failed"], {"ssh_failed": {"severity": "critical"}},
     [with_(SSH, severity="critical")]),
    ("nested sender merges key by key",
     ["root_login"], {"root_login": {"sender": {"uids": [0, 1000]}}},
     [with_(ROOT_LOGIN, sender={"uids": [0, 1000], "setuid": ["/usr/bin/su"]})]),
    ("a new sender key is added beside the preset's",
     ["ssh_failed"], {"ssh_failed": {"sender": {"setuid": ["/usr/bin/su"]}}},
     [with_(SSH, sender={"uids": [0], "setuid": ["/usr/bin/su"]})]),
    ("lists replace, they do not append",
     ["ssh_failed"], {"ssh_failed": {"tags": ["ops"]}},
     [with_(SSH, tags=["ops"])]),
    ("an empty list replaces too",
     ["root_login"], {"root_login": {"sender": {"setuid": []}}},
     [with_(ROOT_LOGIN, sender={"uids": [0], "setuid": []})]),
    ("variants replace as a whole",
     ["sudo_events"], {"sudo_events": {"variants": [{"when": "1", "title": "t"}]}},
     [with_(CATALOGUE["sudo_events"], variants=[{"when": "1", "title": "t"}])]),
    ("the preset's own name may be repeated",
     ["ssh_failed"], {"ssh_failed": {"name": "ssh_failed", "title": "x"}},
     [with_(SSH, title="x")]),
    ("an override of a preset that is not selected has no effect",
     ["ssh_failed"], {"root_login": {"severity": "info"}},
     [SSH]),
    ("the forgery override does not touch the presets",
     ["ssh_failed"], {"forgery": {"severity": "critical"}},
     [SSH]),
    ("each preset once, in the order of its first mention",
     ["verify", "ssh_failed", "verify"], {},
     [CATALOGUE["verify"], SSH]),
    ("no presets, no overrides",
     [], {}, []),
]


@pytest.mark.parametrize("case, presets, overrides, expected", MERGES, ids=[m[0] for m in MERGES])
def test_presets_with_deep_merged_overrides(case, presets, overrides, expected):
    catalogue_before = copy.deepcopy(CATALOGUE)
    overrides_before = copy.deepcopy(overrides)
    result = rules(presets, overrides)
    assert result == expected
    # same keys in the same order as the preset (the configuration reads them by name,
    # but the shape stays what the Jinja made)
    assert [list(r) for r in result] == [list(e) for e in expected]
    assert CATALOGUE == catalogue_before
    assert overrides == overrides_before


def test_the_merged_rule_is_a_new_dictionary():
    result = rules(["ssh_failed"], {"ssh_failed": {"sender": {"setuid": ["/x"]}}})
    result[0]["severity"] = "changed"
    result[0]["sender"]["uids"] = "changed"
    assert SSH["severity"] == "warning"
    assert SSH["sender"] == {"uids": [0]}


@pytest.mark.parametrize("base, override, expected", [
    ({"a": 1}, {"a": 2}, {"a": 2}),
    ({"a": {"x": 1, "y": 2}}, {"a": {"y": 3, "z": 4}}, {"a": {"x": 1, "y": 3, "z": 4}}),
    ({"a": {"b": {"c": 1, "d": 2}}}, {"a": {"b": {"d": 3}}}, {"a": {"b": {"c": 1, "d": 3}}}),
    ({"a": [1, 2]}, {"a": [3]}, {"a": [3]}),
    ({"a": {"x": 1}}, {"a": "scalar"}, {"a": "scalar"}),
    ({"a": "scalar"}, {"a": {"x": 1}}, {"a": {"x": 1}}),
    ({"a": {"x": 1}}, {"a": None}, {"a": None}),
    ({"a": 1}, {}, {"a": 1}),
    ({}, {"b": 1}, {"b": 1}),
])
def test_deep_merge(base, override, expected):
    assert ar.deep_merge(base, override) == expected


def test_user_rules_follow_the_presets_in_their_order():
    own = [{"name": "zeta", "filter": "program('z')"},
           {"name": "alpha", "filter": "program('a')", "sender": {"uids": [0]}}]
    result = rules(["accounts", "verify"], {}, own)
    assert [r["name"] for r in result] == ["accounts", "verify", "zeta", "alpha"]
    assert result[2:] == own


def test_null_overrides_and_rules_are_none():
    assert rules(["verify"], None, None) == [CATALOGUE["verify"]]
    assert ar.forgery_rule(FORGERY, None) == FORGERY


def test_user_rules_are_taken_as_they_are():
    # The role's assert checks them (name, filter, sender, ...) with its own messages.
    own = [{"filter": "no name"}, {"name": "x", "filter": "f", "extra": 1}]
    assert rules([], {}, own) == own


# (case, deadman, watchdog_interval, rule names after the presets and own rules)
DEADMAN_CASES = [
    ("not a server (or nothing to watch): neither", False, 0, []),
    ("a watchdog interval without the dead man's switch: neither", False, 30, []),
    ("expected clients, no watchdog: the silence rule", True, 0, ["host_silence"]),
    ("dead man's switch and a watchdog: both, watchdog last", True, 30,
     ["host_silence", "watchdog"]),
]


@pytest.mark.parametrize("case, deadman, interval, expected", DEADMAN_CASES,
                         ids=[c[0] for c in DEADMAN_CASES])
def test_dead_man_and_watchdog_rules_only_when_on(case, deadman, interval, expected):
    own = [{"name": "mine", "filter": "f"}]
    result = rules(["verify"], {}, own, deadman=deadman, deadman_rules=DEADMAN,
                   watchdog_rule=WATCHDOG, watchdog_interval=interval)
    assert [r["name"] for r in result] == ["verify", "mine", *expected]
    if "watchdog" in expected:
        assert result[-1] is WATCHDOG


def test_no_watchdog_rule_needed_while_it_is_off():
    assert rules([], {}, [], deadman=True, deadman_rules=DEADMAN, watchdog_rule=None,
                 watchdog_interval=0) == DEADMAN


# (case, forgery override, the forgery rule expected)
FORGERIES = [
    ("no override", {}, FORGERY),
    ("severity only keeps the rest", {"forgery": {"severity": "critical"}},
     with_(FORGERY, severity="critical")),
    ("tags replace", {"forgery": {"tags": ["forged"], "title": "t"}},
     with_(FORGERY, tags=["forged"], title="t")),
    ("its own name may be repeated", {"forgery": {"name": "forgery", "body": "b"}},
     with_(FORGERY, body="b")),
    ("preset overrides are not its business", {"ssh_failed": {"severity": "info"}}, FORGERY),
]


@pytest.mark.parametrize("case, overrides, expected", FORGERIES, ids=[f[0] for f in FORGERIES])
def test_forgery_rule(case, overrides, expected):
    result = ar.forgery_rule(FORGERY, overrides)
    assert result == expected
    assert list(result) == list(expected)
    assert result is not FORGERY


# (case, arguments of alert_rules, words the message must contain)
BAD_RULES = [
    ("override not a dictionary", (["ssh_failed"], {"ssh_failed": "critical"}),
     ["override of preset ssh_failed", "must be a dictionary", "not str"]),
    ("override null", (["ssh_failed"], {"ssh_failed": None}),
     ["override of preset ssh_failed", "not null"]),
    ("override a list", (["ssh_failed"], {"ssh_failed": [{"severity": "x"}]}),
     ["must be a dictionary", "not list"]),
    ("bad override of a preset that is not selected", ([], {"root_login": "x"}),
     ["override of preset root_login", "must be a dictionary"]),
    ("unknown field", (["ssh_failed"], {"ssh_failed": {"severty": "critical"}}),
     ["unknown field(s) severty", "it may set body, event_tags, filter"]),
    ("rename", (["ssh_failed"], {"ssh_failed": {"name": "ssh2"}}),
     ["cannot rename it", "'ssh2'"]),
    ("override of an unknown preset", (["ssh_failed"], {"ssh_fialed": {"severity": "x"}}),
     ["unknown preset(s) ssh_fialed", "known: sudo_events", "forgery"]),
    ("overrides not a dictionary", (["ssh_failed"], [{"ssh_failed": {}}]),
     ["preset overrides must be a dictionary", "not list"]),
    ("user rules a string", (["ssh_failed"], {}, "x"),
     ["user's rules must be a list", "not str"]),
    ("unknown preset", (["ssh_failed", "nope"], {}),
     ["unknown preset(s) nope", "known: sudo_events, sudo_log"]),
    ("presets a string", ("ssh_failed", {}),
     ["selected presets must be a list", "not str"]),
    ("user rules a dictionary", ([], {}, {"name": "x"}),
     ["user's rules must be a list", "not dict"]),
]


@pytest.mark.parametrize("case, args, words", BAD_RULES, ids=[b[0] for b in BAD_RULES])
def test_bad_input_is_a_clear_error(case, args, words):
    with pytest.raises(ar.RuleError) as err:
        ar.alert_rules(CATALOGUE, *args)
    for word in words:
        assert word in str(err.value)


@pytest.mark.parametrize("kw, words", [
    ({"deadman": "yes"}, ["deadman must be true or false", "not str"]),
    ({"deadman_rules": {"name": "x"}}, ["dead man's switch rules must be a list"]),
    ({"watchdog_interval": "30"}, ["watchdog_interval must be an integer", "not str"]),
    ({"watchdog_interval": True}, ["watchdog_interval must be an integer", "not bool"]),
    ({"deadman": True, "watchdog_interval": 30, "watchdog_rule": None},
     ["watchdog rule must be a dictionary", "not null"]),
])
def test_bad_dead_man_inputs(kw, words):
    with pytest.raises(ar.RuleError) as err:
        ar.alert_rules(CATALOGUE, [], {}, [], **kw)
    for word in words:
        assert word in str(err.value)


def test_bad_catalogue():
    with pytest.raises(ar.RuleError, match="catalogue must be a dictionary"):
        ar.alert_rules([SSH], ["ssh_failed"])
    with pytest.raises(ar.RuleError, match="named as their key: ssh"):
        ar.alert_rules({"ssh": SSH}, ["ssh"])


@pytest.mark.parametrize("preset, overrides, words", [
    (FORGERY, {"forgery": "critical"}, ["override of the forgery alert", "not str"]),
    (FORGERY, {"forgery": {"filter": "program('x')"}},
     ["unknown field(s) filter", "it may set body, name, severity, tags, title"]),
    (FORGERY, {"forgery": {"sender": {"uids": [0]}}}, ["unknown field(s) sender"]),
    (FORGERY, {"forgery": {"name": "fake"}}, ["cannot rename it", "'fake'"]),
    (FORGERY, "x", ["preset overrides must be a dictionary", "not str"]),
    (SSH, {}, ["forgery preset must be a dictionary named forgery"]),
])
def test_bad_forgery_input(preset, overrides, words):
    with pytest.raises(ar.RuleError) as err:
        ar.forgery_rule(preset, overrides)
    for word in words:
        assert word in str(err.value)
