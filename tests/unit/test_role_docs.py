"""Each role's argument specs, defaults and README describe the same variables."""

import os
import re

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ROLES = sorted(
    name
    for name in os.listdir(os.path.join(ROOT, "roles"))
    if os.path.exists(os.path.join(ROOT, "roles", name, "meta", "argument_specs.yml"))
)


def _load(role, *path):
    with open(os.path.join(ROOT, "roles", role, *path), encoding="utf-8") as handle:
        return handle.read()


def _spec_options(role):
    specs = yaml.safe_load(_load(role, "meta", "argument_specs.yml"))["argument_specs"]
    return specs["main"]["options"]


def _readme_variables(role):
    # Variables are documented as the first cell of a Markdown table row: | `name` | ...
    return set(re.findall(r"^\|\s*`([a-z][a-z0-9_]*)`\s*\|", _load(role, "README.md"), re.M))


def test_every_role_has_argument_specs():
    assert set(ROLES) >= {"apprise"}


@pytest.mark.parametrize("role", ROLES)
def test_readme_lists_exactly_the_specified_variables(role):
    assert _readme_variables(role) == set(_spec_options(role))


@pytest.mark.parametrize("role", ROLES)
def test_defaults_match_the_specified_variables(role):
    defaults = yaml.safe_load(_load(role, "defaults", "main.yml")) or {}
    options = _spec_options(role)
    assert set(defaults) == set(options)
    for name, value in defaults.items():
        assert options[name].get("default") == value, name


@pytest.mark.parametrize("role", ROLES)
def test_internal_variables_are_prefixed(role):
    path = os.path.join(ROOT, "roles", role, "vars")
    for name in os.listdir(path):
        data = yaml.safe_load(_load(role, "vars", name)) or {}
        bad = [key for key in data if not key.startswith(f"__{role}_")]
        assert not bad, f"{name}: {bad}"
