# Copyright: (c) 2026, secalert.alerting contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rules of the syslog_ng_alerts role: presets, their overrides, the user's rules.

Standard library only (unit-tested with plain pytest); the filters
``secalert.alerting.alert_rules`` and ``secalert.alerting.forgery_rule`` turn
``RuleError`` into ``AnsibleFilterError``.

- ``deep_merge``: dictionaries merge key by key, recursively; anything else (strings,
  numbers, lists, ``None``) replaces.
- ``alert_rules``: the selected presets (in the order selected, each once) with their
  overrides, then the user's rules, then the server's dead man's switch rules and its
  watchdog rule when they are on.
- ``forgery_rule``: the forgery alert with its override.

An override never renames a preset: ``name`` may only repeat the preset's own name.
Every override is checked (a dictionary, known fields), also one of a preset that is not
selected, which then has no effect.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

# The fields a rule may have (roles/syslog_ng_alerts/tasks/assert.yml checks their values).
RULE_FIELDS = ("name", "filter", "sender", "parser", "severity", "tags", "event_tags",
               "render", "title", "body", "variants")
# The forgery alert's fields that its configuration uses.
FORGERY_FIELDS = ("name", "severity", "tags", "title", "body")
# The key of the overrides that belongs to the forgery alert.
FORGERY = "forgery"


class RuleError(ValueError):
    """Input the rules cannot be built from; the message says what to fix."""


def _type(value):
    return "null" if value is None else type(value).__name__


def _is_list(value):
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def deep_merge(base, override):
    """``base`` with ``override`` merged in, neither modified.

    Where both have a dictionary under a key, they merge recursively; any other value of
    ``override`` (a string, number, list, ``None``) replaces the one of ``base``. Keys keep
    ``base``'s order; new keys follow in ``override``'s order.
    """
    result = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = deep_merge(result[key], value)
        else:
            result[key] = value
    return result


def apply_override(preset, override, fields=RULE_FIELDS, what=None):
    """The preset with one override deep-merged into it.

    ``override`` must be a dictionary of the given ``fields``; its ``name``, if any, must be
    the preset's own (a preset cannot be renamed).
    """
    name = preset.get("name")
    what = what or f"the override of preset {name}"
    if not isinstance(override, Mapping):
        raise RuleError(f"{what} must be a dictionary of rule fields, not {_type(override)}")
    unknown = sorted(str(key) for key in override if key not in fields)
    if unknown:
        raise RuleError(f"{what} has unknown field(s) {', '.join(unknown)}; "
                        f"it may set {', '.join(sorted(fields))}")
    if "name" in override and override["name"] != name:
        raise RuleError(f"{what} cannot rename it (name {override['name']!r}); "
                        f"leave name out")
    return deep_merge(preset, override)


def _check_overrides(catalogue, overrides):
    if not isinstance(overrides, Mapping):
        raise RuleError(f"the preset overrides must be a dictionary (preset name: fields), "
                        f"not {_type(overrides)}")
    unknown = sorted(str(key) for key in overrides if key not in catalogue and key != FORGERY)
    if unknown:
        raise RuleError(f"override(s) of unknown preset(s) {', '.join(unknown)}; known: "
                        f"{', '.join(list(catalogue) + [FORGERY])}")


def preset_rules(catalogue, presets, overrides):
    """The selected presets, in the order selected and each once, with their overrides.

    ``catalogue`` maps preset names to rules; ``presets`` lists selected names;
    ``overrides`` maps preset names to fields merged into the preset (``deep_merge``).
    Overrides of presets that are not selected have no effect, but are checked.
    """
    if not isinstance(catalogue, Mapping):
        raise RuleError(f"the preset catalogue must be a dictionary, not {_type(catalogue)}")
    bad = [str(name) for name, rule in catalogue.items()
           if not isinstance(rule, Mapping) or rule.get("name") != name]
    if bad:
        raise RuleError(f"the preset catalogue's entries must be rules named as their key: "
                        f"{', '.join(bad)}")
    if not _is_list(presets):
        raise RuleError(f"the selected presets must be a list of preset names, "
                        f"not {_type(presets)}")
    unknown = [str(name) for name in presets if not isinstance(name, str) or name not in catalogue]
    if unknown:
        raise RuleError(f"unknown preset(s) {', '.join(unknown)}; known: {', '.join(catalogue)}")
    _check_overrides(catalogue, overrides)
    checked = {name: apply_override(catalogue[name], override)
               for name, override in overrides.items() if name != FORGERY}
    rules = []
    for name in dict.fromkeys(presets):
        rules.append(checked[name] if name in checked else dict(catalogue[name]))
    return rules


def alert_rules(catalogue, presets, overrides=None, rules=None, deadman=False,
                deadman_rules=None, watchdog_rule=None, watchdog_interval=0):
    """Every rule in force, in this order.

    The selected presets with their overrides (``preset_rules``), then the user's
    ``rules`` as they are, then ``deadman_rules`` if ``deadman``, then ``watchdog_rule`` if
    ``deadman`` and ``watchdog_interval`` > 0.
    """
    overrides = {} if overrides is None else overrides
    rules = [] if rules is None else rules
    deadman_rules = [] if deadman_rules is None else deadman_rules
    if not _is_list(rules):
        raise RuleError(f"the user's rules must be a list, not {_type(rules)}")
    if not isinstance(deadman, bool):
        raise RuleError(f"deadman must be true or false, not {_type(deadman)}")
    if not _is_list(deadman_rules):
        raise RuleError(f"the dead man's switch rules must be a list, not {_type(deadman_rules)}")
    if isinstance(watchdog_interval, bool) or not isinstance(watchdog_interval, int):
        raise RuleError(f"watchdog_interval must be an integer, not {_type(watchdog_interval)}")
    result = preset_rules(catalogue, presets, overrides) + list(rules)
    if deadman:
        result += list(deadman_rules)
        if watchdog_interval > 0:
            if not isinstance(watchdog_rule, Mapping):
                raise RuleError(f"the watchdog rule must be a dictionary, "
                                f"not {_type(watchdog_rule)}")
            result.append(watchdog_rule)
    return result


def forgery_rule(preset, overrides=None):
    """The forgery alert: ``preset`` with ``overrides['forgery']`` deep-merged into it."""
    overrides = {} if overrides is None else overrides
    if not isinstance(preset, Mapping) or preset.get("name") != FORGERY:
        raise RuleError(f"the forgery preset must be a dictionary named {FORGERY}")
    if not isinstance(overrides, Mapping):
        raise RuleError(f"the preset overrides must be a dictionary (preset name: fields), "
                        f"not {_type(overrides)}")
    if FORGERY not in overrides:
        return dict(preset)
    return apply_override(preset, overrides[FORGERY], FORGERY_FIELDS,
                          what="the override of the forgery alert")
