"""The notify module end to end, against the test receiver on 127.0.0.1."""

import json

import apprise
import pytest
from ansible.module_utils.common import warnings as ansible_warnings
from ansible.module_utils.testing import patch_module_args
from ansible_collections.secalert.alerting.plugins.modules import notify

HOST = "127.0.0.1"
TOKEN = "Tok3nInPath0123456789"  # noqa: S105 - a fake secret to look for
PASSWORD = "Pa55wordSecret"  # noqa: S105 - a fake secret to look for
HEADER = "HeaderSecret9876"


@pytest.fixture()
def rcv(rcv):
    """The shared receiver fixture, and no warnings left from an earlier module run."""
    ansible_warnings._global_warnings.clear()
    return rcv


def urls(rcv):
    http, smtp = rcv.ports["http"], rcv.ports["smtp"]
    return {
        "json": f"json://{HOST}:{http}/alerts?cto=2&rto=2",
        "form": f"form://{HOST}:{http}/form-hook",
        "mailto": f"mailto://{HOST}:{smtp}?mode=insecure"
        "&from=secalert@receiver.test&to=alerts@receiver.test",
        "secret": f"json://bot:{PASSWORD}@{HOST}:{http}/hooks/{TOKEN}?+X-Token={HEADER}",
    }


def run(args, capsys):
    """Run the module; return (exit code, parsed result, raw stdout)."""
    with patch_module_args(args), pytest.raises(SystemExit) as exc:
        notify.main()
    out = capsys.readouterr().out
    result = json.loads(out)
    # ansible-core 2.22 hands the no_log values a module saw back to the controller in
    # _ansible_new_secrets (the controller masks them in its output and drops the key).
    # Every other part of the result must still be free of them.
    new_secrets = result.pop("_ansible_new_secrets", None)
    if new_secrets is not None:
        assert isinstance(new_secrets, list)
        out = json.dumps(result)
    return exc.value.code, result, out


@pytest.mark.parametrize(
    "channel, body_format, body, expected_body",
    [
        ("json", "text", "line 1\nline 2", "line 1\nline 2"),
        ("form", "text", "plain body", "plain body"),
        ("mailto", "text", "mail body\nsecond", "mail body\nsecond"),
        ("json", "html", "<b>bold</b>", "<b>bold</b>"),
    ],
)
def test_sends_title_body_type(rcv, capsys, channel, body_format, body, expected_body):
    code, result, _1 = run(
        {
            "urls": [urls(rcv)[channel]],
            "title": "Title " + channel,
            "body": body,
            "notify_type": "warning",
            "body_format": body_format,
        },
        capsys,
    )
    assert code == 0
    assert (result["changed"], result["sent"], result["not_sent"]) == (True, 1, 0)
    (target,) = result["targets"]
    assert (target["success"], target["outcome"]) == (True, "ok")
    assert target["source"] == "urls[0]"
    (msg,) = rcv.store.select()
    expected_channel = "smtp" if channel == "mailto" else channel
    assert (msg["channel"], msg["title"], msg["body"]) == (
        expected_channel, "Title " + channel, expected_body
    )
    # Mail carries no notification type.
    assert msg["type"] == (None if channel == "mailto" else "warning")


def test_attachment_reaches_receiver(rcv, capsys, tmp_path):
    report = tmp_path / "report.txt"
    report.write_text("attached text")
    code, result, _1 = run(
        {"urls": [urls(rcv)["json"]], "body": "b", "attachments": [str(report)]}, capsys
    )
    assert code == 0
    (msg,) = rcv.store.select()
    assert [a["filename"] for a in msg["attachments"]] == ["report.txt"]
    assert result["notification"]["attachments"] == [str(report)]


def test_check_mode_sends_nothing(rcv, capsys):
    code, result, _1 = run(
        {"urls": [urls(rcv)["json"], urls(rcv)["mailto"]], "title": "T", "body": "B",
         "_ansible_check_mode": True},
        capsys,
    )
    assert code == 0
    assert (result["changed"], result["total"], result["sent"]) == (True, 2, 0)
    assert [(t["success"], t["outcome"]) for t in result["targets"]] == [(None, None)] * 2
    assert result["msg"] == "would send 'T' (info) to 2 target(s)"
    assert rcv.store.select() == []
    assert rcv.store.stats()["http"] == {} and rcv.store.stats()["smtp"] == {}


@pytest.mark.parametrize(
    "mode, fail_on, code, sent, msg_start, outcome",
    [
        ("500", "any", 1, 1, "2 of 3 target(s) failed: JSON json://", "transient"),
        ("500", "all", 0, 1, "2 of 3 target(s) failed: JSON json://", "transient"),
        ("down", "any", 1, 1, "2 of 3 target(s) failed: JSON json://", "transient"),
        ("429", "all", 0, 1, "2 of 3 target(s) failed: JSON json://", "rate-limited"),
    ],
)
def test_failure_policy(rcv, capsys, mode, fail_on, code, sent, msg_start, outcome):
    """JSON and form fail (HTTP listener in `mode`), mail succeeds."""
    rcv.set_mode(mode)
    target_urls = [urls(rcv)["secret"], urls(rcv)["form"], urls(rcv)["mailto"]]
    got, result, out = run(
        {"urls": target_urls, "body": "B", "fail_on": fail_on}, capsys
    )
    assert got == code
    assert result.get("failed", False) is bool(code)
    assert (result["sent"], result["not_sent"]) == (sent, 3 - sent)
    assert [t["success"] for t in result["targets"]] == [False, False, True]
    assert [t["outcome"] for t in result["targets"]] == [outcome, outcome, "ok"]
    assert result["msg"].startswith(msg_start)
    assert result["targets"][0]["url"] == f"json://bot:****@{HOST}:{rcv.ports['http']}/hooks/****"
    assert result["targets"][0]["errors"], "a failed target says why"
    if not code:
        assert result["warnings"]
    for secret in (TOKEN, PASSWORD, HEADER):
        assert secret not in out


def test_all_targets_failing_with_fail_on_all(rcv, capsys):
    rcv.set_mode("500")
    code, result, out = run(
        {"urls": [urls(rcv)["secret"]], "body": "B", "fail_on": "all"}, capsys
    )
    assert code == 1
    assert result["msg"].startswith("1 of 1 target(s) failed: JSON json://bot:****@")
    assert result["targets"][0]["errors"] == [
        "Failed to send JSON POST notification: Internal server error., error=500."
    ]
    for secret in (TOKEN, PASSWORD, HEADER):
        assert secret not in out


def test_success_result_has_no_secret(rcv, capsys):
    code, result, out = run({"urls": [urls(rcv)["secret"]], "title": "T", "body": "B"}, capsys)
    assert code == 0
    (msg,) = rcv.store.select()
    assert msg["path"] == "/hooks/" + TOKEN  # it did go to the secret URL
    for secret in (TOKEN, PASSWORD, HEADER):
        assert secret not in out


CONFIG = """\
version: 1
urls:
  - json://{host}:{http}/ops:
      tag: ops
  - json://{host}:{http}/security:
      tag: security
  - mailto://{host}:{smtp}?mode=insecure&from=secalert@receiver.test&to=sec@receiver.test:
      tag: security
"""


@pytest.mark.parametrize(
    "tag, channels",
    [
        (["ops"], [("json", "/ops")]),
        (["security"], [("json", "/security"), ("smtp", "sec@receiver.test")]),
        (None, [("json", "/ops"), ("json", "/security"), ("smtp", "sec@receiver.test")]),
    ],
)
def test_config_with_tag(rcv, capsys, tmp_path, tag, channels):
    config = tmp_path / "apprise.yml"
    config.write_text(
        CONFIG.format(host=HOST, http=rcv.ports["http"], smtp=rcv.ports["smtp"])
    )
    args = {"config": str(config), "title": "Cfg", "body": "B", "notify_type": "failure"}
    if tag:
        args["tag"] = tag
    code, result, _1 = run(args, capsys)
    assert code == 0
    assert result["total"] == len(channels)
    got = sorted((m["channel"], m["path"]) for m in rcv.store.select())
    assert got == sorted(channels)
    assert {m["title"] for m in rcv.store.select()} == {"Cfg"}


@pytest.mark.parametrize(
    "args, message",
    [
        ({"body": "B"}, "one of the following is required: urls, config"),
        ({"urls": ["json://127.0.0.1:9/x"], "config": "/x", "body": "B"},
         "parameters are mutually exclusive: urls|config"),
        ({"urls": ["json://127.0.0.1:9/x"], "tag": ["ops"], "body": "B"},
         "missing parameter(s) required by 'tag': config"),
        ({"urls": ["json://127.0.0.1:9/x"]}, "missing required arguments: body"),
        ({"urls": ["json://127.0.0.1:9/x"], "body": "B", "notify_type": "bad"},
         "value of notify_type must be one of"),
        ({"urls": [], "body": "B"}, "urls is empty: there is no target to notify"),
        ({"urls": ["nope://" + TOKEN], "body": "B"},
         "urls[0] is not a usable Apprise URL: nope:// is not a scheme Apprise supports here"),
        ({"urls": ["json://127.0.0.1:9/x"], "body": "B", "timeout": 0},
         "timeout must be greater than 0"),
        ({"urls": ["json://127.0.0.1:9/x"], "body": "B", "attachments": ["/nonexistent/f"]},
         "attachment /nonexistent/f does not exist or is not a file"),
        ({"config": "/nonexistent/apprise.yml", "body": "B"},
         "config /nonexistent/apprise.yml does not exist or is not a file"),
    ],
)
def test_argument_errors(rcv, capsys, args, message):
    code, result, out = run(args, capsys)
    assert code == 1
    assert result["failed"] is True
    assert message in result["msg"]
    assert TOKEN not in out
    assert rcv.store.select() == []


def test_missing_apprise(rcv, capsys, monkeypatch):
    monkeypatch.setattr(
        notify, "import_apprise", lambda venv: (None, "ModuleNotFoundError: apprise")
    )
    code, result, _1 = run({"urls": ["json://127.0.0.1:9/x"], "body": "B"}, capsys)
    assert code == 1
    assert result["msg"].startswith("Failed to import the required Python library (apprise)")
    assert result["failed"] is True


def test_venv_option_reaches_import(rcv, capsys, monkeypatch):
    seen = []

    def fake_import(venv):
        seen.append(venv)
        return None, "missing"

    monkeypatch.setattr(notify, "import_apprise", fake_import)
    run({"urls": ["json://127.0.0.1:9/x"], "body": "B", "venv": "/srv/venv"}, capsys)
    run({"urls": ["json://127.0.0.1:9/x"], "body": "B"}, capsys)
    assert seen == ["/srv/venv", "/opt/secalert/venv"]


def test_exception_in_a_target_is_masked(rcv, capsys, monkeypatch):
    """An exception out of Apprise (whose text may hold a URL) only names its type."""

    def boom(self, *args, **kwargs):
        raise RuntimeError("failed for " + TOKEN)

    monkeypatch.setattr(apprise.Apprise, "notify", boom)
    code, result, out = run({"urls": [urls(rcv)["secret"]], "body": "B"}, capsys)
    assert code == 1
    assert result["targets"][0]["errors"] == ["JSON raised RuntimeError"]
    assert result["targets"][0]["outcome"] == "transient"
    assert TOKEN not in out
