"""Shared Apprise logic of the notify module: loading, masking, failure policy."""

import logging
import os
import sys

import apprise
import pytest
from ansible_collections.secalert.alerting.plugins.module_utils.secalert_apprise import (
    targets as an,
)

SECRET = "Tok3nSecretValue42"  # noqa: S105 - a fake secret to look for


@pytest.mark.parametrize(
    "privacy, shown, hidden",
    [
        ("json://h:8080/alerts?method=POST", "json://h:8080/alerts", []),
        ("json://h/hooks/" + SECRET + "?x=1", "json://h/hooks/****", [SECRET]),
        ("form://u:****@h/a/" + SECRET, "form://u:****@h/a/****", [SECRET]),
        ("discord://i/t...n/?avatar=No", "discord://i/t...n/", []),
        ("mailto://h:2525/a%40b.test?from=x", "mailto://h:2525/a%40b.test", []),
        # ntfy: the topic is the credential; in cloud form it stands where the host would
        ("ntfy://127.0.0.1:9/topicsecret?mode=private", "ntfy://127.0.0.1:9/****",
         ["topicsecret"]),
        ("ntfys://topicsecret?mode=cloud", "ntfys://****", ["topicsecret"]),
        ("ntfys://ntfy.sh/a/b", "ntfys://ntfy.sh/****/****", ["a", "b"]),
        # header values and other parameters live in the query string: never shown
        ("json://h/x?method=POST&%2BX-Token=" + SECRET, "json://h/x", []),
    ],
)
def test_display_url(privacy, shown, hidden):
    assert an.display_url(privacy) == (shown, hidden)


@pytest.mark.parametrize("url", [
    "ntfy://127.0.0.1:9/" + SECRET,
    "ntfy://" + SECRET,
    "json://127.0.0.1:9/hooks/" + SECRET + "?+X-Token=" + SECRET,
    "discord://111111/" + SECRET,
])
def test_display_name_of_real_servers_hides_the_secret(url):
    server = apprise.Apprise.instantiate(url)
    name = an.display_name(server)
    assert SECRET not in name and "?" not in name


def test_scrub_masks_secrets_and_urls():
    secrets = an.secrets_of(["json://user:" + SECRET + "@h/p"], ["json://user:****@h/p"])
    assert SECRET in secrets
    text = an.scrub(
        f"failed for json://user:{SECRET}@h/p with {SECRET}; url: /p?token={SECRET}"
        " via https://elsewhere/x",
        secrets,
    )
    assert text == "failed for *** with ***; url: <masked> via <url>"


@pytest.mark.parametrize(
    "outcomes, policy, failed, message",
    [
        ([True, True], "any", False, "notified 2 of 2 target(s)"),
        ([True, False], "any", True, "1 of 2 target(s) failed: S1 u1"),
        ([True, False], "all", False, "1 of 2 target(s) failed: S1 u1"),
        ([False, False], "all", True, "2 of 2 target(s) failed: S0 u0, S1 u1"),
    ],
)
def test_summarize(outcomes, policy, failed, message):
    results = [
        {"service": f"S{i}", "url": f"u{i}", "success": ok} for i, ok in enumerate(outcomes)
    ]
    assert an.summarize(results, policy) == (failed, message)


@pytest.mark.parametrize(
    "urls, message",
    [
        ([], "urls is empty: there is no target to notify"),
        (["  "], "urls[0] is empty"),
        (["no-scheme-" + SECRET], "urls[0] is not a usable Apprise URL: it does not start"),
        (["json://127.0.0.1/x", "nope://" + SECRET], "urls[1] is not a usable Apprise URL: "
         "nope:// is not a scheme"),
        (["mailto://127.0.0.1?from=not-an-address&mode=insecure"],
         "urls[0] is not a usable Apprise URL: Apprise could not parse this mailto://"),
    ],
)
def test_load_targets_errors(urls, message):
    with pytest.raises(an.NotifyError) as exc:
        an.load_targets(apprise, urls=urls)
    assert str(exc.value).startswith(message)
    assert SECRET not in str(exc.value)


def test_load_targets_from_urls_with_timeout():
    targets, secrets = an.load_targets(
        apprise, urls=["json://user:" + SECRET + "@127.0.0.1:9/a"], timeout=1.5
    )
    (target,) = targets
    assert (target.service, target.masked, target.source) == (
        "JSON", "json://user:****@127.0.0.1:9/a", "urls[0]"
    )
    assert target.server.socket_connect_timeout == 1.5
    assert target.server.socket_read_timeout == 1.5
    assert SECRET in secrets


CONFIG = """\
version: 1
urls:
  - json://127.0.0.1:9/ops:
      tag: ops
  - form://127.0.0.1:9/sec:
      tag: security, critical
  - json://127.0.0.1:9/low:
      tag: security
"""


@pytest.mark.parametrize(
    "tag, paths",
    [
        (None, ["/ops", "/sec", "/low"]),
        (["ops"], ["/ops"]),
        (["security"], ["/sec", "/low"]),
        (["security, critical"], ["/sec"]),
        (["ops", "security critical"], ["/ops", "/sec"]),
    ],
)
def test_load_targets_config_and_tags(tmp_path, tag, paths):
    config = tmp_path / "apprise.yml"
    config.write_text(CONFIG)
    targets, _1 = an.load_targets(apprise, config=str(config), tag=tag)
    assert sorted(t.masked.split(":9")[1] for t in targets) == sorted(paths)
    assert {t.source for t in targets} == {"config"}


@pytest.mark.parametrize(
    "content, tag, message",
    [
        (CONFIG, ["nobody"], "has no usable target matching tag 'nobody'"),
        ("version: 1\nurls: []\n", None, "has no usable target"),
        (None, None, "does not exist or is not a file"),
    ],
)
def test_load_targets_config_errors(tmp_path, content, tag, message):
    config = tmp_path / "apprise.yml"
    if content is not None:
        config.write_text(content)
    with pytest.raises(an.NotifyError) as exc:
        an.load_targets(apprise, config=str(config), tag=tag)
    assert message in str(exc.value)


def test_check_attachments(tmp_path):
    good = tmp_path / "a.txt"
    good.write_text("x")
    an.check_attachments([str(good)])
    with pytest.raises(an.NotifyError, match="does not exist"):
        an.check_attachments([str(good), str(tmp_path / "missing")])


def test_log_capture_keeps_apprise_records_off_stderr(capsys):
    with an.LogCapture() as capture:
        logging.getLogger("apprise").warning("secret %s", SECRET)
        assert capture.take() == ["secret " + SECRET]
    assert SECRET not in capsys.readouterr().err


@pytest.fixture()
def no_apprise(monkeypatch):
    """Hide the real Apprise: drop it from sys.modules and its directory from sys.path."""
    saved = {k: v for k, v in sys.modules.items() if k == "apprise" or k.startswith("apprise.")}
    real_dir = os.path.dirname(os.path.dirname(apprise.__file__))
    monkeypatch.setattr(sys, "path", [p for p in sys.path if os.path.abspath(p) != real_dir])
    for name in saved:
        monkeypatch.delitem(sys.modules, name)
    yield
    for name in [k for k in sys.modules if k == "apprise" or k.startswith("apprise.")]:
        del sys.modules[name]
    sys.modules.update(saved)


def test_import_apprise_missing(no_apprise, tmp_path):
    module, error = an.import_apprise(str(tmp_path / "novenv"))
    assert module is None
    assert "ModuleNotFoundError" in error and "does not exist" in error


def test_import_apprise_from_venv(no_apprise, tmp_path):
    site = an.venv_site_packages(str(tmp_path))
    os.makedirs(os.path.join(site, "apprise"))
    with open(os.path.join(site, "apprise", "__init__.py"), "w") as handle:
        handle.write("FROM_TEST_VENV = True\n")
    module, error = an.import_apprise(str(tmp_path))
    assert error is None
    assert module.FROM_TEST_VENV is True
    assert site == sys.path[0]
