"""Commands run inside a sudo'd command (sudoers' log_subcmds and intercept): one event
each, naming the command they ran inside; rules choose them with ``scope``.

The callback order is what sudo 1.9.16p2 did with a probe plugin (conftest's
run_with_subcommands): the top-level accepts first, then one front-end accept per
subcommand, with intercept after the policy's accept of it, and a policy reject for a
subcommand sudoers refuses.
"""

import os

import pytest
import sudo
from conftest import make_plugin, run_accepted, run_with_subcommands
from secalert_sudo import rules

OK = int(sudo.RC.OK)


@pytest.mark.parametrize("intercept", [False, True])
def test_one_event_per_subcommand_naming_its_parent(write_config, receiver, intercept):
    plugin = make_plugin(write_config())
    rcs = run_with_subcommands(
        plugin, ["/usr/bin/bash", "-c", "id -u; whoami"],
        [["/usr/bin/id", "-u"], ["/usr/bin/whoami"]], intercept=intercept)
    assert set(rcs) == {OK}
    top, first, second = receiver.events()
    assert (top["command"], top["args"], top["rule"]) == (
        "/usr/bin/bash", ["-c", "id -u; whoami"], "shell")
    assert "subcommand" not in top and "parent_command" not in top
    assert (first["command"], first["args"], first["decision"]) == (
        "/usr/bin/id", ["-u"], "accept")
    assert (second["command"], second["args"]) == ("/usr/bin/whoami", [])
    for sub in (first, second):
        assert sub["subcommand"] is True and sub["parent_command"] == "/usr/bin/bash"
        assert sub["pid"] == top["pid"] and sub["user"] == "alice"
        assert (sub["rule"], sub["severity"]) == ("routine", "info")


def test_a_subcommand_shell_is_routine_a_sensitive_file_is_not(write_config, receiver):
    plugin = make_plugin(write_config())
    run_with_subcommands(plugin, ["/usr/bin/bash"], [
        ["/usr/bin/sh", "-c", "make"],
        # relative to the subcommand's own working directory (runcwd)
        (["/usr/bin/cat", "shadow"], "/etc"),
        ["/usr/sbin/visudo"],
    ])
    _top, shell, cat, visudo = receiver.events()
    assert (shell["rule"], shell["severity"]) == ("routine", "info")
    assert (cat["rule"], cat["severity"], cat["cwd"]) == ("sensitive-file", "critical", "/etc")
    assert (visudo["rule"], visudo["severity"]) == ("sensitive-editor", "critical")


def test_a_denied_subcommand_alerts_with_its_own_command(write_config, receiver):
    plugin = make_plugin(write_config())
    run_with_subcommands(plugin, ["/usr/bin/bash", "-c", "passwd; passwd; chsh"], [
        ("deny", "/usr/bin/passwd"), ("deny", "/usr/bin/passwd"), ("deny", "/usr/bin/chsh"),
    ])
    _top, passwd, chsh = receiver.events()  # the same denial twice is one event
    for sub, command in ((passwd, "/usr/bin/passwd"), (chsh, "/usr/bin/chsh")):
        assert (sub["decision"], sub["command"], sub["reason"]) == (
            "reject", command, "command not allowed")
        # sudo passes no argv with the denial: the top-level command's are not its own
        assert sub["args"] == []
        assert sub["subcommand"] is True and sub["parent_command"] == "/usr/bin/bash"
        assert (sub["rule"], sub["severity"]) == ("denied", "critical")


def test_rules_choose_the_scope(write_config, receiver):
    plugin = make_plugin(write_config({"rules": [
        {"name": "inside", "match": {"scope": ["subcommand"], "command": "*/id"},
         "severity": "notice", "tags": ["inside"]},
        {"name": "outside", "match": {"scope": "top", "command": "*/id"},
         "severity": "error", "tags": ["outside"]},
        {"name": "anywhere", "match": {"command": "*/rm", "args": "-rf"},
         "severity": "critical", "tags": ["rm"]},
    ]}))
    inside = [["/usr/bin/id"], ["/usr/bin/rm", "-rf", "/srv/x"]]
    run_with_subcommands(plugin, ["/usr/bin/bash"], inside)
    run_accepted(make_plugin(write_config({"rules": [
        {"name": "outside", "match": {"scope": ["top"], "command": "*/id"}},
    ]})), ["/usr/bin/id"])
    run_accepted(make_plugin(write_config({"rules": [
        {"name": "anywhere", "match": {"command": "*/rm"}, "severity": "critical"},
    ]})), ["/usr/bin/rm", "-rf", "/srv/x"])
    names = [(e["command"], e["rule"], e.get("subcommand", False)) for e in receiver.events()]
    assert names == [
        ("/usr/bin/bash", "shell", False),
        ("/usr/bin/id", "inside", True),
        ("/usr/bin/rm", "anywhere", True),
        ("/usr/bin/id", "outside", False),
        ("/usr/bin/rm", "anywhere", False),
    ]


@pytest.mark.parametrize("scope", [["sub"], "all", ["top", "both"]])
def test_an_unknown_scope_is_refused(scope):
    with pytest.raises(rules.RuleError, match="scope"):
        rules.compile_rules([{"name": "x", "match": {"scope": scope}}])


def test_an_undelivered_subcommand_is_refused_only_fail_closed(write_config, receiver, shortdir):
    # syslog gone after the top-level event: the subcommand's event is not delivered
    for fail_closed, expected in ((False, OK), (True, int(sudo.RC.REJECT))):
        plugin = make_plugin(write_config({"fail_closed": fail_closed}))
        info = ("command=/usr/bin/bash",)
        sudo.call(plugin, "open", 1, ("sudo", "/usr/bin/bash"))
        sudo.call(plugin, "accept", "sudo", int(sudo.PLUGIN_TYPE.SUDO), info,
                  ("/usr/bin/bash",), ())
        plugin._settings["syslog"]["socket"] = os.path.join(shortdir, "gone")
        rc = sudo.call(plugin, "accept", "sudo", int(sudo.PLUGIN_TYPE.SUDO),
                       ("command=/usr/bin/id", "runcwd=/"), ("/usr/bin/id",), ())
        assert rc == expected
        plugin._settings["syslog"]["socket"] = receiver.path


def test_what_ansible_runs_inside_its_become_command_is_ansibles(write_config, receiver):
    become = ["/bin/sh", "-c", "echo BECOME-SUCCESS-" + "a" * 32 + " ; /usr/bin/python3"]
    inside = [["/usr/sbin/visudo", "-cf", "/etc/sudoers.d/.x"], ["/usr/bin/cat", "/etc/shadow"]]
    run_with_subcommands(make_plugin(write_config({"ansible_users": ["deploy"]}),
                                     user_info=("user=deploy", "uid=1001", "pid=7")),
                         become, inside)
    # the same commands inside a command that is not Ansible's become alert as usual
    run_with_subcommands(make_plugin(write_config({"ansible_users": ["deploy"]}),
                                     user_info=("user=deploy", "uid=1001", "pid=8")),
                         ["/bin/sh", "-c", "make"], inside)
    got = [(e["pid"], e["command"], e["rule"], e["severity"]) for e in receiver.events()]
    assert got == [
        (7, "/bin/sh", "ansible-become", "info"),
        (7, "/usr/sbin/visudo", "ansible-become", "info"),
        (7, "/usr/bin/cat", "ansible-become", "info"),
        (8, "/bin/sh", "shell", "warning"),
        (8, "/usr/sbin/visudo", "sensitive-editor", "critical"),
        (8, "/usr/bin/cat", "sensitive-file", "critical"),
    ]


def test_an_io_plugins_rejection_after_the_accept_is_the_commands_own(write_config, receiver):
    """sudo tells the audit plugins "command rejected by I/O plugin" when an I/O plugin
    ends the session: that is the accepted command's, not a subcommand's."""
    plugin = make_plugin(write_config())
    info = ("command=/usr/bin/bash", "runas_uid=0")
    sudo.call(plugin, "open", 1, ("sudo", "/usr/bin/bash"))
    sudo.call(plugin, "accept", "sudo", int(sudo.PLUGIN_TYPE.SUDO), info, ("/usr/bin/bash",), ())
    sudo.call(plugin, "reject", "python_io", int(sudo.PLUGIN_TYPE.IO),
              "command rejected by I/O plugin", info)
    _top, rejected = receiver.events()
    assert (rejected["decision"], rejected["command"], rejected["rule"]) == (
        "reject", "/usr/bin/bash", "denied")
    assert "subcommand" not in rejected and "parent_command" not in rejected
