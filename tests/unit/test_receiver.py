"""The test receiver: what it stores per channel, its failure modes and its CLI."""

import http.client
import json
import smtplib
import socket
from email.message import EmailMessage

import pytest
import receiver

HOST = "127.0.0.1"


def post(port, path, body, content_type, timeout=5):
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": content_type})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def cli(rcv, capsys, *argv):
    control = f"http://{HOST}:{rcv.ports['control']}"
    code = receiver.main([argv[0], "--control", control, *argv[1:]])
    return code, json.loads(capsys.readouterr().out)


JSON_BODY = json.dumps(
    {"version": "1.0", "title": "T", "message": "M", "type": "failure", "attachments": []}
)


@pytest.mark.parametrize(
    "content_type, body, channel, title, text, ntype",
    [
        ("application/json", JSON_BODY, "json", "T", "M", "failure"),
        ("application/x-www-form-urlencoded", "title=T2&message=M2&type=info", "form",
         "T2", "M2", "info"),
        ("text/plain", "just text", "http", None, "just text", None),
    ],
)
def test_http_channels_are_stored(rcv, content_type, body, channel, title, text, ntype):
    status, _1, answer = post(rcv.ports["http"], "/p/q", body, content_type)
    assert status == 200
    (msg,) = rcv.store.select()
    assert json.loads(answer)["id"] == msg["id"]
    assert (msg["channel"], msg["path"], msg["title"], msg["body"], msg["type"]) == (
        channel, "/p/q", title, text, ntype
    )
    assert msg["raw"] == body


def test_multipart_form_with_attachment(rcv):
    boundary = "XyZ"
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nT\r\n"
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"message\"\r\n\r\nM\r\n"
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"type\"\r\n\r\nwarning\r\n"
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file01\"; filename=\"a.txt\""
        f"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--{boundary}--\r\n"
    )
    content_type = f"multipart/form-data; boundary={boundary}"
    status, _1, _2 = post(rcv.ports["http"], "/f", body, content_type)
    assert status == 200
    (msg,) = rcv.store.select()
    assert (msg["channel"], msg["title"], msg["body"], msg["type"]) == ("form", "T", "M", "warning")
    assert msg["attachments"] == [
        {"field": "file01", "filename": "a.txt", "mimetype": "text/plain", "size": 5}
    ]


def test_smtp_mail_is_stored(rcv):
    mail = EmailMessage()
    mail["Subject"] = "Subject ü"
    mail["From"] = "secalert@receiver.test"
    mail["To"] = "alerts@receiver.test"
    mail["X-Notify-Type"] = "warning"
    mail.set_content("line one\n.leading dot\nline three")
    with smtplib.SMTP(HOST, rcv.ports["smtp"], timeout=5) as smtp:
        smtp.send_message(mail)
    (msg,) = rcv.store.select()
    assert msg["channel"] == "smtp"
    assert msg["title"] == "Subject ü"
    assert msg["body"] == "line one\n.leading dot\nline three"
    assert msg["type"] == "warning"
    assert msg["meta"]["rcpt_to"] == ["alerts@receiver.test"]
    assert rcv.store.stats()["smtp"] == {"accepted": 1}


def test_smtp_offers_no_auth_and_no_tls(rcv):
    with smtplib.SMTP(HOST, rcv.ports["smtp"], timeout=5) as smtp:
        smtp.ehlo()
        assert not smtp.has_extn("auth")
        assert not smtp.has_extn("starttls")
        with pytest.raises(smtplib.SMTPNotSupportedError):
            smtp.login("user", "password")


@pytest.mark.parametrize(
    "mode, status, header",
    [("429", 429, ("Retry-After", "7")), ("500", 500, None)],
)
def test_error_modes_answer_and_store_nothing(rcv, mode, status, header):
    rcv.set_mode(mode, retry_after=7)
    got, headers, _1 = post(rcv.ports["http"], "/x", JSON_BODY, "application/json")
    assert got == status
    if header:
        assert headers[header[0]] == header[1]
    assert rcv.store.select() == []
    assert rcv.store.stats()["http"] == {str(status): 1}


def test_slow_mode_answers_200_and_stores(rcv):
    rcv.set_mode("slow", delay=0.2)
    status, _1, _2 = post(rcv.ports["http"], "/slow", JSON_BODY, "application/json")
    assert status == 200
    assert [m["path"] for m in rcv.store.select()] == ["/slow"]


def test_down_refuses_connections_and_ok_reopens(rcv):
    port = rcv.ports["http"]
    rcv.set_mode("down")
    with pytest.raises(ConnectionRefusedError):
        post(port, "/x", JSON_BODY, "application/json")
    rcv.set_mode("ok")
    assert rcv.ports["http"] == port
    assert post(port, "/x", JSON_BODY, "application/json")[0] == 200


def test_hang_never_answers_and_is_released(rcv):
    rcv.set_mode("hang")
    with pytest.raises((socket.timeout, TimeoutError)):
        post(rcv.ports["http"], "/x", JSON_BODY, "application/json", timeout=1)
    assert rcv.store.stats()["http"] == {"hang": 1}
    rcv.set_mode("ok")  # releases the held request
    assert rcv.store.select() == []


def test_cli_list_wait_count_and_filter(rcv, capsys):
    post(rcv.ports["http"], "/a", JSON_BODY, "application/json")
    code, answer = cli(rcv, capsys, "list", "--contains", "M", "--wait", "1", "--count", "1")
    assert (code, answer["count"], answer["matched"]) == (0, 1, True)
    code, answer = cli(rcv, capsys, "list", "--contains", "absent", "--wait", "0.5")
    assert (code, answer["count"], answer["matched"]) == (1, 0, False)
    code, answer = cli(rcv, capsys, "list", "--channel", "smtp")
    assert (code, answer["count"]) == (0, 0)


def test_cli_mode_stats_clear_reset(rcv, capsys):
    code, answer = cli(rcv, capsys, "mode", "500")
    assert (code, answer["mode"]) == (0, "500")
    post(rcv.ports["http"], "/a", JSON_BODY, "application/json")
    code, answer = cli(rcv, capsys, "stats")
    assert (code, answer["http"], answer["mode"]) == (0, {"500": 1}, "500")
    code, answer = cli(rcv, capsys, "reset")
    assert (code, answer["mode"]) == (0, "ok")
    code, answer = cli(rcv, capsys, "stats")
    assert (answer["http"], answer["messages"], answer["mode"]) == ({}, 0, "ok")
    code, answer = cli(rcv, capsys, "health")
    assert (code, answer["ok"]) == (0, True)


def test_cli_rejects_unknown_mode(rcv, capsys):
    with pytest.raises(SystemExit) as exc:
        receiver.main(["mode", "sideways"])
    assert exc.value.code == 2


def test_control_rejects_bad_mode_request(rcv):
    status, _1, answer = post(rcv.ports["control"], "/mode", '{"mode": "nope"}', "application/json")
    assert status == 400
    assert "mode must be one of" in json.loads(answer)["error"]
