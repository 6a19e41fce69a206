# Copyright: (c) 2026, secalert.alerting contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: forgery_rule
short_description: The forgery alert with its override
version_added: "0.1.0"
description:
  - The alert the P(secalert.alerting.syslog_ng_alerts#role) role raises instead of a rule's
    own when a line matches a rule but comes from a sender the rule does not allow.
  - The override under the key C(forgery) of O(overrides) is deep-merged into O(_input), as
    P(secalert.alerting.alert_rules#filter) does for presets; it may set C(severity),
    C(tags), C(title) and C(body) (and C(name), only as C(forgery)).
  - Other keys of O(overrides) are presets', which this filter leaves alone.
positional: overrides
options:
  _input:
    description:
      - The forgery alert's preset, a dictionary named C(forgery).
    type: dict
    required: true
  overrides:
    description:
      - The preset overrides (preset name to fields); only C(forgery) is read.
    type: dict
    default: {}
seealso:
  - plugin: secalert.alerting.alert_rules
    plugin_type: filter
author:
  - secalert.alerting developers (@secalert)
"""

EXAMPLES = r"""
- name: Make forgery alerts critical and send them to their own targets
  ansible.builtin.debug:
    msg: "{{ forgery_preset | secalert.alerting.forgery_rule(overrides) }}"
  vars:
    forgery_preset:
      name: forgery
      filter: "none"
      severity: warning
      tags: [secalert, forgery]
      title: forged
      body: a forged line
    overrides:
      ssh_failed: {severity: info}    # a preset's, not read here
      forgery:
        severity: critical
        tags: [forgery]
# msg: {name: forgery, filter: "none", severity: critical, tags: [forgery], title: forged,
#       body: a forged line}
"""

RETURN = r"""
_value:
  description: The forgery alert, a new dictionary.
  type: dict
"""

from ansible.errors import AnsibleFilterError  # noqa: E402
from ansible_collections.secalert.alerting.plugins.plugin_utils import (  # noqa: E402
    alert_rules as logic,
)


def forgery_rule(preset, overrides=None):
    """Filter ``secalert.alerting.forgery_rule`` (see DOCUMENTATION)."""
    try:
        return logic.forgery_rule(preset, overrides)
    except logic.RuleError as exc:
        raise AnsibleFilterError(f"secalert.alerting.forgery_rule: {exc}") from exc


class FilterModule:
    """The forgery alert of the syslog_ng_alerts role."""

    def filters(self):
        return {"forgery_rule": forgery_rule}
