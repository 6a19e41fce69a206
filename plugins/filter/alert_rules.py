# Copyright: (c) 2026, secalert.alerting contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: alert_rules
short_description: The alert rules in force, from presets, their overrides and own rules
version_added: "0.1.0"
description:
  - Builds the list of rules the P(secalert.alerting.syslog_ng_alerts#role) role writes into
    syslog-ng's configuration. First the selected presets, then the user's rules,
    then the alert server's dead man's switch rules and its watchdog rule when they are on.
  - Each selected preset appears once, in the order of its first mention in O(presets).
  - An override is deep-merged into its preset; where the preset and the override both
    have a dictionary (such as C(sender)), they merge key by key, recursively; any other
    value (a string, a number, a list such as C(tags) or C(variants)) replaces the preset's.
    So an override of C(ssh_failed) that gives only C(severity) changes nothing else.
  - An override cannot rename a preset; its C(name), if given, must be the preset's own.
  - Every override is checked, also one of a preset that is not selected (it then has no
    effect). The key C(forgery) is the forgery alert's, left to
    P(secalert.alerting.forgery_rule#filter).
  - The user's rules, the dead man's switch rules and the watchdog rule are taken as they
    are; the role checks every rule's fields afterwards.
positional: presets, overrides, rules
options:
  _input:
    description:
      - The preset catalogue; preset name to rule (a dictionary with at least C(name), the
        same as its key).
    type: dict
    required: true
  presets:
    description:
      - Names of the presets to switch on, each a key of O(_input).
    type: list
    elements: str
    required: true
  overrides:
    description:
      - Preset name (or C(forgery)) to the fields that change it; C(name), C(filter),
        C(sender), C(parser), C(severity), C(tags), C(event_tags), C(render), C(title),
        C(body), C(variants).
    type: dict
    default: {}
  rules:
    description:
      - The user's own rules, appended after the presets in their order.
    type: list
    elements: dict
    default: []
  deadman:
    description:
      - Whether the dead man's switch runs on this host (an alert server that expects
        clients or sends a watchdog); only then are O(deadman_rules) and O(watchdog_rule)
        added.
    type: bool
    default: false
  deadman_rules:
    description:
      - The dead man's switch's rules, appended when O(deadman) is true.
    type: list
    elements: dict
    default: []
  watchdog_rule:
    description:
      - The watchdog rule, appended last when O(deadman) is true and O(watchdog_interval) is
        more than 0.
    type: dict
  watchdog_interval:
    description:
      - Seconds between two watchdog notifications; V(0) means none.
    type: int
    default: 0
seealso:
  - plugin: secalert.alerting.forgery_rule
    plugin_type: filter
author:
  - secalert.alerting developers (@secalert)
"""

EXAMPLES = r"""
- name: Switch on two presets, make failed SSH logins critical, add a rule of our own
  ansible.builtin.debug:
    msg: "{{ catalogue | secalert.alerting.alert_rules(presets, overrides, rules) }}"
  vars:
    catalogue:
      ssh_failed:
        name: ssh_failed
        filter: program('^sshd$')
        sender: {uids: [0]}
        severity: warning
      verify:
        name: verify
        filter: program('^secalert-verify$')
        severity: info
    presets: [ssh_failed, verify]
    overrides:
      ssh_failed:
        severity: critical
        sender: {setuid: [/usr/bin/su]}
    rules:
      - name: backup_failed
        filter: program('^backup$')
# msg:
#   - name: ssh_failed
#     filter: program('^sshd$')
#     sender: {uids: [0], setuid: [/usr/bin/su]}
#     severity: critical
#   - name: verify
#     filter: program('^secalert-verify$')
#     severity: info
#   - name: backup_failed
#     filter: program('^backup$')

- name: The role's rules, with the dead man's switch rules and the watchdog rule on a server
  ansible.builtin.set_fact:
    rules_in_force: >-
      {{ catalogue | secalert.alerting.alert_rules(
           presets=presets, overrides=overrides, rules=rules,
           deadman=true, deadman_rules=deadman_rules, watchdog_rule=watchdog_rule,
           watchdog_interval=60) }}
"""

RETURN = r"""
_value:
  description:
    - The rules in force, each a dictionary; the presets' are new dictionaries, the others
      are the ones given.
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError  # noqa: E402
from ansible_collections.secalert.alerting.plugins.plugin_utils import (  # noqa: E402
    alert_rules as logic,
)


def alert_rules(catalogue, presets, overrides=None, rules=None, deadman=False,
                deadman_rules=None, watchdog_rule=None, watchdog_interval=0):
    """Filter ``secalert.alerting.alert_rules`` (see DOCUMENTATION)."""
    try:
        return logic.alert_rules(catalogue, presets, overrides, rules, deadman=deadman,
                                 deadman_rules=deadman_rules, watchdog_rule=watchdog_rule,
                                 watchdog_interval=watchdog_interval)
    except logic.RuleError as exc:
        raise AnsibleFilterError(f"secalert.alerting.alert_rules: {exc}") from exc


class FilterModule:
    """The alert rules of the syslog_ng_alerts role."""

    def filters(self):
        return {"alert_rules": alert_rules}
