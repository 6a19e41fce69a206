"""The apprise role and the notify module on real hosts, against the real receiver."""

import pytest
from secalert_testlib.leaks import leaks, secrets_of, shown

TYPES = {"json": "warning", "form": "failure"}


def test_config_is_root_only(hosts, group_vars):
    for host in hosts.values():
        directory = host.file("/etc/secalert")
        assert directory.is_directory
        assert (directory.user, directory.group, directory.mode) == ("root", "root", 0o700)
        config = host.file("/etc/secalert/apprise.yml")
        assert (config.user, config.group, config.mode) == ("root", "root", 0o600)
        # The live file holds the targets (checked through root, as the module runs).
        assert group_vars["secalert_test_token"] in config.content_string


def test_nothing_in_the_venv_is_writable_by_others(hosts):
    for name, host in hosts.items():
        writable = host.check_output(
            "find /opt/secalert -perm /022 ! -type l -printf '%p %m\\n'"
        )
        assert writable == "", f"{name}: {writable}"
        assert host.file("/opt/secalert").user == "root"


def test_system_python_imports_apprise_and_the_runtime_from_the_venv(hosts):
    for host in hosts.values():
        out = host.check_output(
            "/usr/bin/python3 -c 'import glob, sys; "
            "sys.path[:0] = glob.glob(\"/opt/secalert/venv/lib/python3*/site-packages\"); "
            "import apprise, secalert_apprise.text; print(apprise.__version__)'"
        )
        assert out == "2.3.0"
        # The distribution's Python is untouched.
        assert host.run("/usr/bin/python3 -c 'import apprise'").rc != 0


@pytest.mark.parametrize("channel", ["json", "form"])
def test_module_notification_arrives_over_http(playbook, receiver, hosts, marker, channel):
    run = playbook.run(
        "notify.yml",
        extra_vars={
            "notify_tag": channel,
            "notify_type": TYPES[channel],
            "notify_title": f"title {marker}",
            "notify_body": f"body {marker}",
        },
    )
    assert run.returncode == 0, run.output
    got = receiver.messages(contains=marker, channel=channel, wait=20, count=len(hosts))
    assert sorted(m["title"] for m in got) == sorted(f"title {marker} {h}" for h in hosts)
    for message in got:
        host = message["title"].rsplit(" ", 1)[1]
        assert message["body"] == f"body {marker} {host}"
        assert message["type"] == TYPES[channel]


def test_module_notification_arrives_by_email(playbook, receiver, hosts, marker):
    run = playbook.run(
        "notify.yml",
        extra_vars={"notify_tag": "email", "notify_title": f"mail {marker}",
                    "notify_body": f"mailbody {marker}"},
    )
    assert run.returncode == 0, run.output
    got = receiver.messages(contains=marker, channel="smtp", wait=20, count=len(hosts))
    assert sorted(m["title"] for m in got) == sorted(f"mail {marker} {h}" for h in hosts)
    for message in got:
        assert f"mailbody {marker}" in message["body"]


def test_check_mode_sends_nothing(playbook, receiver, marker):
    before = receiver.stats()
    run = playbook.run(
        "notify.yml", "--check",
        extra_vars={"notify_title": f"check {marker}", "notify_body": f"check {marker}"},
    )
    assert run.returncode == 0, run.output
    assert {counts["changed"] for counts in run.recap.values()} == {1}, run.output
    # Every other notification of this test arrives within a second; give it five.
    assert receiver.messages(contains=marker, wait=5, count=1) == []
    assert receiver.stats()["http"] == before["http"]


def test_failing_target_fails_the_task_with_a_masked_url(playbook, receiver, group_vars, marker):
    token = group_vars["secalert_test_token"]
    receiver.mode("500")
    try:
        run = playbook.run(
            "notify.yml", "-vvv",
            extra_vars={
                "notify_urls": [f"json://secalert:{token}@receiver:8080/fail"],
                "notify_title": f"fail {marker}",
                "notify_body": f"fail {marker}",
            },
        )
    finally:
        receiver.mode("ok")
    assert run.returncode != 0
    assert "json://secalert:****@receiver" in run.output
    assert token not in run.output


def test_no_path_token_header_value_or_ntfy_topic_shows(playbook, receiver, hosts, marker):
    """Every kind of secret piece of a URL, sent with -vvv: a json:// path token and a
    +Header= value, and an ntfy topic. The receiver gets them; the output, the hosts'
    world-readable files, journal and processes do not show them."""
    path_token, header, topic = (f"{kind}-{marker}" for kind in ("hook", "header", "topic"))
    urls = [f"json://receiver:8080/hooks/{path_token}?+X-Secalert-Token={header}",
            f"ntfy://receiver:8080/{topic}?mode=private"]
    pieces = secrets_of(urls)
    assert sorted(pieces) == sorted([path_token, header, topic])
    run = playbook.run(
        "notify.yml", "-vvv",
        extra_vars={"notify_urls": urls, "notify_title": f"pieces {marker}",
                    "notify_body": f"pieces {marker}"},
    )
    assert run.returncode == 0, run.output
    got = receiver.messages(contains=marker, wait=20, count=2 * len(hosts))
    assert sorted(m["path"] for m in got) == sorted(
        [f"/hooks/{path_token}", "/"] * len(hosts)), got
    assert all(topic in m["raw"] for m in got if m["path"] == "/"), got
    assert shown(run.output, pieces) == []
    for name, host in hosts.items():
        assert leaks(host, pieces) == [], name


def test_rerun_changes_nothing_and_verbose_output_holds_no_token(playbook, secrets):
    run = playbook.run("converge.yml", "-vvv")
    assert run.returncode == 0, run.output
    assert run.recap and {c["changed"] for c in run.recap.values()} == {0}, run.recap
    assert shown(run.output, secrets) == []


def test_no_token_in_world_readable_files_journal_or_processes(hosts, secrets):
    for name, host in hosts.items():
        assert leaks(host, secrets) == [], name
