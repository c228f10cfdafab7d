"""The sandbox's SMTP listener: e-mails to sms@kwtsms.com over real SMTP on loopback."""

from __future__ import annotations

import os
import smtplib
import socket
import subprocess
import sys
from email.message import EmailMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

import pytest
import requests

from airflow_provider_kwtsms.sandbox.smtp import parse_body

REPO = Path(__file__).resolve().parents[1]

USER, PASSWORD = "sandbox_user", "sandbox_pass"
NUMBER, NUMBER2 = "96598765432", "96550123456"


@pytest.fixture
def sb(kwtsms_sandbox_factory):
    return kwtsms_sandbox_factory(smtp_port=0, senders=["KWT-SMS", "MY APP"])


def body(**overrides: str | None) -> str:
    fields = {
        "username": USER,
        "password": PASSWORD,
        "sender": "KWT-SMS",
        "mobile": NUMBER,
        "lang": "1",
        "text": "Meet+me+at+starbuck!",
    }
    fields.update(overrides)
    return "".join(f"{k}:{v}\n" for k, v in fields.items() if v is not None)


def plain(text: str, *, to: str = "sms@kwtsms.com", subject: str = "anything") -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "ops@example.com", to, subject
    msg.set_content(text)
    return msg


def mail(sb, msg, *, to: list[str] | None = None) -> dict:
    with smtplib.SMTP("127.0.0.1", sb.smtp_port, timeout=10) as smtp:
        refused = smtp.send_message(msg, to_addrs=to)
    assert refused == {}
    return sb.emails()[-1]


def test_document_sample_body_becomes_an_sms(sb):
    record = mail(sb, plain(body(mobile=f"{NUMBER},{NUMBER2}")))
    assert record["outcome"] == "accepted" and record["reason"] is None
    [message] = sb.messages()
    assert message["msg_id"] == record["msg_id"]
    assert message["mobile"] == [NUMBER, NUMBER2]
    assert message["message"] == "Meet me at starbuck!"  # "+" read as a space
    assert message["api"] == "smtp" and message["points"] == 2 and message["test"] is False
    assert sb.account()["available"] == 998
    assert "password" not in record and PASSWORD not in repr(record)


def test_arabic_utf8_body_is_charged_as_ucs2_pages(sb):
    text = "مرحبا+بكم+في+الاختبار"
    record = mail(sb, plain(body(lang="3", text=text)))
    [message] = sb.messages()
    assert record["outcome"] == "accepted"
    assert message["message"] == "مرحبا بكم في الاختبار" and message["encoding"] == "UCS-2"


def test_sender_with_plus_for_space_and_unknown_lines_ignored(sb):
    mail(sb, plain("Hello team,\n" + body(sender="MY+APP") + "--\nsent from my phone\n"))
    assert sb.messages()[0]["sender"] == "MY APP"


@pytest.mark.parametrize(
    "change, code, words",
    [
        ({"password": "wrong"}, "ERR003", "Authentication"),
        ({"sender": "NOT-MINE"}, "ERR008", "ender"),
        ({"mobile": "123"}, "ERR025", None),
        ({"text": None}, "ERR002", "text:"),
        ({"lang": None}, "ERR002", "lang:"),
        ({"lang": "7"}, "ERR002", "lang must be"),
        ({"lang": "1", "text": "مرحبا"}, "LANG", "lang:3"),
        ({"text": "<b>hi</b>"}, "ERR027", None),
    ],
)
def test_wrong_emails_are_dropped_silently_and_the_record_says_why(sb, change, code, words):
    record = mail(sb, plain(body(**change)))  # the SMTP answer was still 250: no exception
    assert record["outcome"] == "dropped" and record["msg_id"] is None
    assert record["code"] == code
    if words:
        assert words in record["reason"]
    assert sb.messages() == [] and sb.account()["available"] == 1000
    assert "wrong" not in str(record)  # a wrong password is not recorded either


def test_html_email_is_dropped(sb):
    msg = EmailMessage()
    msg["From"], msg["To"] = "ops@example.com", "sms@kwtsms.com"
    msg.set_content("<html><body>" + body().replace("\n", "<br>") + "</body></html>", subtype="html")
    record = mail(sb, msg)
    assert (record["outcome"], record["content_type"]) == ("dropped", "text/html")
    assert "HTML" in record["reason"] and sb.messages() == []


def test_multipart_alternative_with_a_plain_part_is_dropped_too(sb):
    msg = MIMEMultipart("alternative")
    msg["From"], msg["To"] = "ops@example.com", "sms@kwtsms.com"
    msg.attach(MIMEText(body(), "plain"))
    msg.attach(MIMEText("<p>" + body() + "</p>", "html"))
    record = mail(sb, msg)
    assert record["outcome"] == "dropped" and record["content_type"] == "multipart/alternative"
    assert "plain-text e-mails only" in record["reason"] and sb.messages() == []


def test_rich_text_email_is_dropped(sb):
    msg = MIMEText(body(), "enriched")
    msg["From"], msg["To"] = "ops@example.com", "sms@kwtsms.com"
    assert mail(sb, msg)["reason"].startswith("A rich-text e-mail")


def test_other_recipients_are_refused_at_rcpt(sb):
    with smtplib.SMTP("127.0.0.1", sb.smtp_port, timeout=10) as smtp:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as caught:
            smtp.send_message(plain(body(), to="info@kwtsms.com"))
        assert caught.value.recipients["info@kwtsms.com"][0] == 550
        # One good recipient among bad ones: the good one gets it.
        refused = smtp.send_message(plain(body()), to_addrs=["SMS@kwtsms.com", "x@example.com"])
    assert list(refused) == ["x@example.com"]
    assert [e["outcome"] for e in sb.emails()] == ["accepted"]


def test_the_smtp_conversation_by_hand(sb):
    """Dot-unstuffing, RSET, NOOP, sequence errors, AUTH; the verdict is always 250."""
    with socket.create_connection(("127.0.0.1", sb.smtp_port), timeout=10) as sock:
        f = sock.makefile("rwb")

        def say(line: str) -> str:
            f.write(line.encode() + b"\r\n")
            f.flush()
            reply = f.readline().decode()
            while reply[3:4] == "-":
                reply = f.readline().decode()
            return reply

        assert f.readline().startswith(b"220")
        assert say("MAIL FROM:<a@b.c>").startswith("503")  # no HELO yet
        assert say("EHLO test").startswith("250 ")
        assert say("RCPT TO:<sms@kwtsms.com>").startswith("503")  # no MAIL yet
        assert say("DATA").startswith("503")
        assert say("AUTH PLAIN AHJlbGF5AHNlY3JldA==").startswith("235")  # relay / secret
        assert say("MAIL FROM:<a@b.c>").startswith("250")
        assert say("RSET").startswith("250")
        assert say("RCPT TO:<sms@kwtsms.com>").startswith("503")  # RSET forgot the sender
        assert say("NOOP").startswith("250")
        assert say("BOGUS").startswith("500")
        assert say("MAIL FROM:<a@b.c> SIZE=99999999").startswith("552")
        assert say("MAIL FROM:<a@b.c> SIZE=100").startswith("250")
        assert say("RCPT TO:<sms@kwtsms.com>").startswith("250")
        assert say("DATA").startswith("354")
        text = body(text="..dots+lead").replace("\n", "\r\n").replace("text:", ".text:")
        f.write(b"Subject: hi\r\n\r\n" + text.encode() + b"..\r\n")
        assert say(".").startswith("250")
        assert say("QUIT").startswith("221")
    [record] = sb.emails()
    assert record["relay_user"] == "relay" and "secret" not in str(record)
    # ".text:" was unstuffed to "text:", and the lone ".." line to ".": the e-mail is whole.
    assert record["outcome"] == "accepted" and sb.messages()[0]["message"] == "..dots lead"


def test_dot_unstuffing_restores_leading_dots(sb):
    # smtplib stuffs a line starting with "." as ".."; the listener must take one away again.
    record = mail(sb, plain(body() + ".\n.. leading dots\n", subject="dots"))
    assert record["outcome"] == "accepted"
    mail(sb, plain(body(mobile=NUMBER2, text="..hello")))
    assert sb.messages()[-1]["message"] == "..hello"


def test_size_limit_refuses_a_huge_email(kwtsms_sandbox_factory):
    sb = kwtsms_sandbox_factory(smtp_port=0, max_body=2000)
    with smtplib.SMTP("127.0.0.1", sb.smtp_port, timeout=10) as smtp:
        with pytest.raises(smtplib.SMTPSenderRefused) as caught:  # declared with SIZE= at MAIL
            smtp.sendmail("a@b.c", ["sms@kwtsms.com"], body() + "x" * 5000)
        assert caught.value.smtp_code == 552
        # Not declared: read to the end, kept nowhere, refused after the final dot.
        assert smtp.mail("a@b.c")[0] == 250 and smtp.rcpt("sms@kwtsms.com")[0] == 250
        assert smtp.data(body() + "x" * 5000)[0] == 552
        assert smtp.noop()[0] == 250  # the session is still usable
    assert sb.emails() == []


def test_emails_are_served_over_http_and_reset(sb):
    mail(sb, plain(body(password="nope")))
    answer = requests.get(sb.url + "/sandbox/emails", timeout=5).json()
    assert answer["result"] == "OK" and answer["emails"][0]["code"] == "ERR003"
    assert sb.requests()[-1]["api"] == "smtp"
    sb.reset()
    assert sb.emails() == []


def test_the_same_rules_apply_as_over_http(sb):
    mail(sb, plain(body()))
    record = mail(sb, plain(body()))  # same number within 15 s
    assert record["code"] == "ERR028"
    sb.set_balance(0)
    sb.advance(20)
    assert mail(sb, plain(body()))["code"] == "ERR010"


def test_no_smtp_listener_unless_asked(kwtsms_sandbox_factory):
    sb = kwtsms_sandbox_factory()
    with pytest.raises(RuntimeError, match="smtp_port=0"):
        _ = sb.smtp_port


def test_stop_closes_the_smtp_listener(kwtsms_sandbox_factory):
    sb = kwtsms_sandbox_factory(smtp_port=0)
    port = sb.smtp_port
    sb.stop()
    with pytest.raises(OSError):
        smtplib.SMTP("127.0.0.1", port, timeout=2)


def test_parse_body_first_value_wins_and_case_is_ignored():
    assert parse_body("TEXT: a+b \ntext:second\nMobile:1,2\nnot a field") == {"text": "a b", "mobile": "1,2"}


def test_command_line_prints_the_smtp_port():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_kwtsms.sandbox", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        process.stdout.readline()
        line = process.stdout.readline()
        assert "SMTP: e-mails to sms@kwtsms.com at 127.0.0.1:" in line, process.stderr.read()
        port = int(line.rsplit(":", 1)[1])
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            assert smtp.noop()[0] == 250
    finally:
        process.terminate()
        process.wait(timeout=10)
