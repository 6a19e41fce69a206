"""The execution environment metadata parses and agrees with the apprise role's pins.

ansible-builder reads meta/execution-environment.yml from the installed collection: the
files it names must exist, ship in the tarball (not in galaxy.yml's build_ignore), parse
as pip and bindep requirement files, and pin what the role installs.
"""

import fnmatch
import os
import re

import yaml
from packaging.requirements import Requirement

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def _yaml(path):
    with open(os.path.join(TOP, path), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _lines(path):
    with open(os.path.join(TOP, path), encoding="utf-8") as handle:
        return [x.strip() for x in handle if x.strip() and not x.lstrip().startswith("#")]


def _ee_dependencies():
    ee = _yaml("meta/execution-environment.yml")
    assert isinstance(ee, dict) and isinstance(ee.get("dependencies"), dict), ee
    deps = ee["dependencies"]
    assert set(deps) <= {"python", "system", "galaxy"}, deps
    return deps


def _pins(path):
    """{name: version} of a pip requirements file; every line must be an exact pin."""
    pins = {}
    for line in _lines(path):
        req = Requirement(line)
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"{path}: {line} is no exact pin"
        pins[req.name.lower()] = specs[0].version
    return pins


def _role_apprise_version():
    return str(_yaml("roles/apprise/defaults/main.yml")["apprise_version"])


# bindep: a package name, then optional [profiles] and version constraints.
_OP = r"(<=|>=|==|<|>|!=)"
BINDEP_LINE = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9+._-]*)( +\[[a-z0-9:!_. -]+\])?"
                         rf"( *{_OP}[0-9][0-9a-z.:~+-]*(,{_OP}[0-9a-z.:~+-]+)*)?$")


def _bindep_names(path):
    names = []
    for line in _lines(path):
        match = BINDEP_LINE.match(line)
        assert match, f"{path}: not a bindep line: {line!r}"
        names.append(match.group("name"))
    return names


def test_files_named_by_the_metadata_exist_and_ship():
    ignored = _yaml("galaxy.yml").get("build_ignore", [])
    for path in _ee_dependencies().values():
        assert not os.path.isabs(path) and os.path.isfile(os.path.join(TOP, path)), path
        hit = [p for p in ignored
               if fnmatch.fnmatch(path, p) or path.startswith(p.rstrip("/") + "/")]
        assert not hit, f"{path} is left out of the collection tarball by build_ignore {hit}"
    # ansible-builder reads the metadata from the installed collection, so it ships too.
    assert not any(fnmatch.fnmatch("meta/execution-environment.yml", p) for p in ignored)


def test_python_requirements_pin_apprise_as_the_role_does():
    pins = _pins(_ee_dependencies()["python"])
    assert pins.get("apprise") == _role_apprise_version(), pins


def test_unit_tests_use_the_apprise_the_role_installs():
    """The unit tests' real Apprise library is the version hosts and the EE get."""
    assert _pins("tests/requirements-units.txt").get("apprise") == _role_apprise_version()


SHELL_COMMAND = re.compile(r"(?:^|\$\(|;|&&|\|\|)\s*([A-Za-z][\w.-]*)(?![\w.-]*=)")
SHELL_BUILTINS = {"set", "trap", "cd", "export", "exit", "test", "echo", "printf"}
COREUTILS = {"mkdir", "mktemp", "mv", "rm", "cp", "ln", "chmod", "cat"}


def test_bindep_lists_what_the_controller_runs_for_the_wheelhouse():
    names = _bindep_names(_ee_dependencies()["system"])
    assert len(names) == len(set(names)), names
    tasks = _yaml("roles/apprise/tasks/wheelhouse.yml")
    commands = set()

    def walk(items):
        for task in items or []:
            walk(task.get("block"))
            if task.get("delegate_to") != "localhost":
                continue
            argv = (task.get("ansible.builtin.command") or {}).get("argv")
            if argv and "{{" not in argv[0]:
                commands.add(argv[0])
                if argv[0] == "tar" and any("z" in a for a in argv[1:] if a.startswith("-")):
                    commands.add("gzip")
            shell = task.get("ansible.builtin.shell")
            script = shell.get("cmd", "") if isinstance(shell, dict) else shell or ""
            for line in script.splitlines():
                # the command word of each simple command: at the line's start, after
                # $( ; && || (not an assignment, a variable or a quoted word)
                for word in SHELL_COMMAND.findall(line):
                    if word in SHELL_BUILTINS:
                        continue
                    commands.add("coreutils" if word in COREUTILS else word)
                    if word == "tar" and re.search(r"\s-\w*z", line):
                        commands.add("gzip")

    walk(tasks)
    assert commands, "no controller-side command found in roles/apprise/tasks/wheelhouse.yml"
    assert commands <= set(names), f"bindep.txt lacks {sorted(commands - set(names))}"
