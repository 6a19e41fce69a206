"""Rules match what runs: spelling, relative paths and truncation cannot hide a command."""

import pytest
import sudo
from conftest import USER_INFO, make_plugin, run_accepted
from secalert_sudo import rules

OK = int(sudo.RC.OK)
DEFAULTS = rules.compile_rules(rules.DEFAULT_RULES)
LONG_BASH = "/bin/" + "./" * 400 + "bash"  # longer than field_chars (256): cut for output

# (argv as typed after sudo, cwd, rule the shipped rules must pick)
SPELLINGS = [
    (["/usr/bin/vim", "/etc/shadow"], "/root", "sensitive-file"),
    (["/usr/bin/vim", "/etc/./shadow"], "/root", "sensitive-file"),
    (["/usr/bin/vim", "/etc//shadow"], "/root", "sensitive-file"),
    (["/usr/bin/vim", "//etc/shadow"], "/root", "sensitive-file"),
    (["/usr/bin/vim", "/etc/app/../shadow"], "/root", "sensitive-file"),
    (["/usr/bin/vim", "shadow"], "/etc", "sensitive-file"),
    (["/usr/bin/vim", "./shadow"], "/etc", "sensitive-file"),
    (["/usr/bin/vim", "../etc/sudoers.d/x"], "/usr", "sensitive-file"),
    (["/usr/bin/vim", "sudoers"], "/etc/", "sensitive-file"),
    (["/usr/bin/dd", "if=/etc/./shadow", "of=/tmp/x"], "/root", "sensitive-file"),
    (["/usr/bin/tee", "--output=/etc//passwd"], "/root", "sensitive-file"),
    (["/usr/bin/cat", "/etc/" + "./" * 600 + "shadow"], "/root", "sensitive-file"),
    (["/usr/bin/cat", "x" * 5000, "/etc/shadow"], "/root", "sensitive-file"),
    ([LONG_BASH], "/root", "shell"),
    (["/usr/bin/./bash"], "/root", "shell"),
    (["/usr/bin//bash", "-i"], "/root", "shell"),
    (["/usr/sbin/../sbin/visudo"], "/root", "sensitive-editor"),
    # what must stay routine
    (["/usr/bin/vim", "shadow"], "/home/alice", "routine"),
    (["/usr/bin/vim", "/etc/hosts"], "/root", "routine"),
    (["/usr/bin/vim", "/etc/app/shadow"], "/root", "routine"),
]


@pytest.mark.parametrize("argv, cwd, rule", SPELLINGS)
def test_match_rule_on_raw_normalised_values(argv, cwd, rule):
    raw = {"decision": "accept", "user": "alice", "runas_user": "root", "command": argv[0],
           "args": argv[1:], "cwd": cwd}
    assert rules.match_rule(DEFAULTS, raw)["name"] == rule


@pytest.mark.parametrize("argv, cwd, rule", SPELLINGS)
def test_spellings_through_the_plugin(write_config, receiver, argv, cwd, rule):
    info = tuple(x for x in USER_INFO if not x.startswith("cwd=")) + ("cwd=" + cwd,)
    plugin = make_plugin(write_config(), user_info=info)
    assert run_accepted(plugin, argv, cwd=cwd) == [OK, OK, OK]
    (event,) = receiver.events()
    assert event["rule"] == rule, event


def test_command_info_cwd_wins_for_relative_paths(write_config, receiver):
    """sudo -D /etc vim shadow: the command runs in /etc (command_info cwd)."""
    from conftest import command_info

    plugin = make_plugin(write_config())  # user's cwd is /home/alice
    info = command_info("/usr/bin/vim", cwd="/etc")
    sudo.call(plugin, "open", 1, ("sudo", "vim", "shadow"))
    for name, kind in (("sudoers_policy", 1), ("sudo", 0)):
        sudo.call(plugin, "accept", name, kind, info, ("/usr/bin/vim", "shadow"), ())
    (event,) = receiver.events()
    assert event["rule"] == "sensitive-file"


@pytest.mark.parametrize("argv", [
    ["/usr/bin/echo", "x" * 3000],  # one argument cut for output
    ["/usr/bin/echo"] + ["a"] * 100,  # arguments omitted (limits.args is 64)
    ["/usr/bin/echo"] + ["y" * 1000] * 20,  # the line is shrunk to fit event_bytes
])
def test_truncation_raises_severity(write_config, receiver, argv):
    run_accepted(make_plugin(write_config()), argv)
    (event,) = receiver.events()
    assert event["truncated"] is True and event["rule"] == "routine"
    assert event["severity"] == "warning"  # routine is info: raised, never lowered


def test_truncation_never_lowers_severity(write_config, receiver):
    run_accepted(make_plugin(write_config()), ["/usr/bin/cat", "/etc/shadow", "z" * 3000])
    (event,) = receiver.events()
    assert event["truncated"] is True and event["severity"] == "critical"


def test_basename_patterns_match_any_directory():
    compiled = rules.compile_rules([{"name": "editor", "match": {"command": "vim"}}])
    for command in ("/usr/bin/vim", "/tmp/./vim", "vim"):
        assert rules.match_rule(compiled, {"command": command}) is not None
    # a pattern with a slash still means that path
    compiled = rules.compile_rules([{"name": "x", "match": {"command": "/usr/bin/vim"}}])
    assert rules.match_rule(compiled, {"command": "/tmp/vim"}) is None
    assert rules.match_rule(compiled, {"command": "/usr/bin/../bin/vim"}) is not None


def test_user_path_rule_is_validated():
    with pytest.raises(rules.RuleError, match="match.path"):
        rules.compile_rules([{"match": {"path": "("}}])


@pytest.mark.parametrize("pattern", ["/usr/bin/id", "*/bash", "backup*", "*", "b*p*", "[!r]*",
                                     "?ash", "*/s[hu]", "", "**"])
@pytest.mark.parametrize("value", ["/usr/bin/id", "/bin/bash", "backup1", "bash", "", "root",
                                   "/bin/su", "*/bash"])
def test_glob_fast_path_is_fnmatchcase(pattern, value):
    from fnmatch import fnmatchcase

    assert rules._glob(value, pattern) is fnmatchcase(value, pattern)
