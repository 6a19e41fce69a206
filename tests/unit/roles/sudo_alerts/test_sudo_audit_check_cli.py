"""The config check the role runs before a rendered config replaces the live one."""

import json
import os

import pytest
from secalert_sudo import cli


@pytest.mark.parametrize("content, rc, words", [
    ({"delivery": "direct", "rules": [{"name": "x", "match": {"user": "bob"}}]}, 0,
     "ok: delivery direct, 7 rules"),
    ({"delivery": "email"}, 1, "delivery must be syslog or direct"),
    ({"rules": [{"match": {"colour": "red"}}]}, 1, "match keys must be among"),
    ({"limits": {"args": 0}}, 1, "positive integer"),
    ("{not json", 1, "not valid JSON"),
])
def test_check_cli(tmp_path, capsys, content, rc, words):
    path = tmp_path / "sudo_alerts.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    os.chmod(path, 0o600)
    assert cli.main(["x", "--check", str(path)]) == rc
    out = capsys.readouterr()
    assert words in (out.out + out.err)


def test_check_cli_usage(capsys):
    assert cli.main(["x"]) == 2
