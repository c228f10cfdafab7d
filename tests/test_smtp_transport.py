"""KwtSMSSmtpSender against the sandbox's SMTP listener, over real SMTP on loopback."""

from __future__ import annotations

import logging
import math
import pickle
import socket
import threading

import pytest
from sandbox_helpers import SandboxTime

from airflow_provider_kwtsms.errors import KwtSMSError, KwtSMSInputError, KwtSMSNetworkError
from airflow_provider_kwtsms.hooks.kwtsms import relay_settings
from airflow_provider_kwtsms.ledger import MemoryStore, resume_send
from airflow_provider_kwtsms.smtp.sender import (
    SUBMITTED_UNCONFIRMED,
    KwtSMSSmtpSender,
    SmtpSendError,
    email_body,
    lang_for,
)

USER, PASSWORD = "smtp_user", "Pa55-w0rd-in-body"
RELAY_PASSWORD = "relay-secret-77"


@pytest.fixture
def sb(kwtsms_sandbox_factory):
    return kwtsms_sandbox_factory(
        smtp_port=0, username=USER, password=PASSWORD, balance=1000, senders=["KWT-SMS", "MY-APP"]
    )


def make(sb, **options) -> KwtSMSSmtpSender:
    settings = {
        "smtp_host": "127.0.0.1",
        "smtp_port": sb.smtp_port,
        "from_address": "alerts@example.com",
    }
    if "clock" not in options:  # 5 e-mails a second on the sandbox's clock: no real time
        vt = SandboxTime(sb)
        settings.update(clock=vt.clock, sleep=vt.sleep, pacer=vt.pacer())
    settings.update(options)
    return KwtSMSSmtpSender(
        options.pop("username", USER),
        options.pop("password", PASSWORD),
        **{k: v for k, v in settings.items() if k not in ("username", "password")},
    )


def test_an_english_send_arrives_in_the_inbox_with_its_charge(sb):
    with make(sb) as sender:
        result = sender.send(
            ["+965 9876 5432", "96550123456", "96550123456", "not a number"], "Disk full on db1\nplease check"
        )
    [message] = sb.messages()
    assert message["api"] == "smtp" and message["sender"] == "KWT-SMS"
    assert sorted(message["mobile"]) == ["96550123456", "96598765432"]
    assert message["message"] == "Disk full on db1 please check"  # one line: the body needs it
    assert message["encoding"] == "GSM-7" and message["points"] == 2
    assert sb.account()["available"] == 998
    [record] = sb.emails()
    assert (record["outcome"], record["lang"], record["rcpt_to"]) == ("accepted", "1", ["sms@kwtsms.com"])
    summary = result.to_dict()
    assert summary["transport"] == "smtp" and summary["confirmed"] is False and "no msg-id" in summary["note"]
    assert summary["msg_ids"] == [] and summary["numbers_sent"] == 2 and summary["ok"] is True
    assert summary["counts"] == {
        "inputs": 4,
        "valid": 2,
        "invalid": 1,
        "duplicates": 1,
        "suppressed": 0,
        "sent": 2,
        "failed": 0,
        "not_attempted": 0,
        "uncertain": 0,
        "gateway_dropped": 0,
    }
    assert summary["batches"][0]["state"] == SUBMITTED_UNCONFIRMED
    assert summary["batches"][0]["msg_id"] is None and summary["batches"][0]["confirmed"] is False


def test_an_arabic_send_goes_as_utf8_with_lang_3(sb):
    text = "تنبيه: القرص ممتلئ"
    with make(sb, sender="MY-APP") as sender:
        result = sender.send("96598765432", text)
    [message] = sb.messages()
    assert message["message"] == text and message["encoding"] == "UCS-2" and message["sender"] == "MY-APP"
    assert sb.emails()[0]["lang"] == "3" and result.plan.info.encoding == "UCS-2"


def test_spaces_as_plus_arrive_the_same(sb):
    with make(sb, spaces_as_plus=True) as sender:
        sender.send("96598765432", "Meet me at starbuck!")
    assert sb.messages()[0]["message"] == "Meet me at starbuck!"


def test_201_numbers_make_two_emails(sb):
    numbers = [f"9655{i:07d}" for i in range(201)]
    seen = []
    with make(sb) as sender:
        result = sender.send(numbers, "Hello", on_batch=lambda b, done, total: seen.append((done, total)))
    assert [len(m["mobile"]) for m in sb.messages()] == [200, 1]
    assert len(sb.emails()) == 2 and seen == [(1, 2), (2, 2)]
    assert result.numbers_sent == 201 and sb.account()["available"] == 1000 - 201


def test_a_wrong_password_is_dropped_by_the_gateway_and_unconfirmed_here(sb):
    with make(sb, password="wrong-one") as sender:
        result = sender.send("96598765432", "Hello")
    # The relay took it; kwtSMS dropped it in silence. Only the sandbox can tell.
    assert result.ok and result.to_dict()["confirmed"] is False
    assert sb.messages() == [] and sb.emails()[0]["code"] == "ERR003"


def test_unknown_sender_is_dropped_without_a_word(sb):
    with make(sb, sender="NOT-MINE") as sender:
        sender.send("96598765432", "Hello")
    assert sb.messages() == [] and sb.emails()[0]["code"] == "ERR008"


def test_balance_over_http_refuses_what_the_gateway_would_drop(sb):
    with make(sb, balance_over_http=True, base_url=sb.url, sender="NOT-MINE") as sender:
        with pytest.raises(KwtSMSError) as caught:
            sender.send("96598765432", "Hello")
        assert caught.value.code == "ERR008" and "KWT-SMS" in caught.value.description
    sb.set_balance(1)
    with make(sb, balance_over_http=True, base_url=sb.url) as sender:
        with pytest.raises(KwtSMSError) as caught:
            sender.send(["96598765432", "96550123456"], "Hello")
        assert caught.value.code == "ERR011" and caught.value.permanent
        assert sender.balance().available == 1
    assert sb.emails() == []  # nothing was e-mailed


def test_balance_over_http_unreachable_only_warns(sb, caplog):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    with (
        make(sb, balance_over_http=True, base_url=dead, max_retries=0) as sender,
        caplog.at_level(logging.WARNING),
    ):
        sender.send("96598765432", "Hello")
    assert "not reachable" in caplog.text and len(sb.messages()) == 1


def test_without_http_the_balance_is_unknown(sb):
    with make(sb) as sender:
        assert math.isnan(sender.balance().available)
        with pytest.raises(KwtSMSInputError, match="balance_over_http"):
            sender.sender_ids()


def test_relay_login_is_used(sb):
    with make(sb, smtp_login="relay-user", smtp_password=RELAY_PASSWORD) as sender:
        assert "took a session as relay-user" in sender.check_relay()
        sender.send("96598765432", "Hello")
    assert sb.emails()[0]["relay_user"] == "relay-user"
    with pytest.raises(KwtSMSNetworkError, match="Cannot reach"):
        make(sb, smtp_port=1).check_relay()


def test_the_password_never_appears_in_logs_or_reprs(sb, caplog):
    caplog.set_level(logging.DEBUG)
    with make(sb, smtp_login="relay-user", smtp_password=RELAY_PASSWORD) as sender:
        result = sender.send(["96598765432", "bad"], "Hello")
        shown = repr(sender) + str(sender)
    failing = make(sb, password=PASSWORD, smtp_port=1, sleep=lambda s: None)
    failed = failing.send("96598765432", "Hello")  # relay unreachable: a failed batch
    everything = (
        caplog.text
        + shown
        + repr(result)
        + str(result.to_dict())
        + repr(failed)
        + str(failed.to_dict())
        + str(sb.emails())
        + repr(failing)
    )
    assert "password='***'" in shown and "smtp_password='***'" in shown
    for secret in (PASSWORD, RELAY_PASSWORD):
        assert secret not in everything
    assert "e-mail 1/1" in caplog.text  # it did log, just not the body


def test_same_number_within_15_seconds_waits_instead_of_being_dropped(sb):
    clock = [1000.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock[0] += seconds
        sb.advance(seconds)

    with make(sb, clock=lambda: clock[0], sleep=sleep) as sender:
        sender.send("96598765432", "first")
        sender.send("96598765432", "second")
    assert any(w >= 15 for w in waits)
    assert [m["message"] for m in sb.messages()] == ["first", "second"]


def test_test_mode_is_refused_before_anything_is_sent(sb):
    with pytest.raises(KwtSMSInputError, match="no test mode"):
        make(sb, test_mode=True)
    with make(sb) as sender, pytest.raises(KwtSMSInputError, match="no test mode"):
        sender.send("96598765432", "Hello", test=True)
    assert sb.emails() == []


def test_dry_run_and_max_credits_send_nothing(sb):
    with make(sb) as sender:
        assert sender.send("96598765432", "Hello", dry_run=True).to_dict()["dry_run"] is True
        with pytest.raises(KwtSMSInputError, match="max_credits"):
            sender.send(["96598765432", "96550123456"], "Hello", max_credits=1)
    assert sb.emails() == []


def test_unreachable_relay_fails_every_batch_clearly(sb):
    sender = make(sb, smtp_port=1, max_retries=1, sleep=lambda s: None)
    result = sender.send([f"9655{i:07d}" for i in range(300)], "Hello")
    assert not result.ok and [b.state for b in result.batches] == ["failed", "failed"]
    assert result.batches[0].error_code == "SMTP_NETWORK" and result.batches[1].attempted is False
    with pytest.raises(KwtSMSNetworkError, match=r"Cannot reach the SMTP relay 127\.0\.0\.1:1\b"):
        result.raise_for_status()


def test_starttls_not_offered_is_a_configuration_error(sb):
    with make(sb, smtp_starttls=True) as sender:
        result = sender.send("96598765432", "Hello")
    err = result.permanent_error
    assert err is not None and err.code == "SMTP_CONFIG" and "STARTTLS" in err.description
    assert pickle.loads(pickle.dumps(err)).permanent  # survives Airflow's pickling


def test_a_refused_recipient_is_permanent(sb):
    with make(sb, to_address="info@kwtsms.com") as sender:
        result = sender.send("96598765432", "Hello")
    err = result.permanent_error
    assert isinstance(err, SmtpSendError) and err.code == "SMTP_REFUSED" and "550" in err.description


def test_the_resume_ledger_drives_it_like_the_http_client(sb):
    """What the operator does: plan_send, then resume_send with send_batch and balance()."""
    sender = make(sb)
    plan = sender.plan_send([f"9655{i:07d}" for i in range(250)], "Hello")
    store = MemoryStore()
    result = resume_send(sender, plan, store, try_number=1)
    assert [len(m["mobile"]) for m in sb.messages()] == [200, 50]
    assert [b["state"] for b in result.to_dict()["batches"]] == [SUBMITTED_UNCONFIRMED] * 2
    again = resume_send(sender, plan, store, try_number=2)  # a retry sends nothing twice
    assert [b.state for b in again.batches] == ["skipped", "skipped"] and len(sb.emails()) == 2
    sender.close()


def test_a_lost_relay_reply_is_not_sent_again(caplog):
    """A relay that takes the body and hangs up before replying: at most once."""
    bodies: list[bytes] = []
    server = socket.create_server(("127.0.0.1", 0))

    def relay() -> None:
        conn, _ = server.accept()
        f = conn.makefile("rwb")

        def say(text: str) -> None:
            f.write(text.encode() + b"\r\n")
            f.flush()

        say("220 fake")
        while line := f.readline():
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                say("250 fake")
            elif verb == b"DATA":
                say("354 go")
                data = b"".join(iter(f.readline, b".\r\n"))
                bodies.append(data)
                break  # hang up without the final reply
            else:
                say("250 ok")
        conn.close()

    thread = threading.Thread(target=relay, daemon=True)
    thread.start()
    sender = KwtSMSSmtpSender(
        USER,
        PASSWORD,
        smtp_host="127.0.0.1",
        smtp_port=server.getsockname()[1],
        from_address="a@example.com",
    )
    with caplog.at_level(logging.INFO):
        result = sender.send("96598765432", "Hello")
    thread.join(5)
    server.close()
    [batch] = result.batches
    assert len(bodies) == 1 and batch.state == "sent" and batch.relay_reply_lost
    assert result.to_dict()["batches"][0]["relay_reply_lost"] is True
    assert b"password:" + PASSWORD.encode() in bodies[0]  # the document's design...
    assert PASSWORD not in caplog.text  # ...never logged


def test_email_body_and_lang():
    body = email_body(
        username="u",
        password="p",
        sender="MY APP",
        numbers=["1", "2"],
        text="a b\nc",
        lang="1",
        spaces_as_plus=True,
    )
    assert body == "username:u\r\npassword:p\r\nsender:MY+APP\r\nmobile:1,2\r\nlang:1\r\ntext:a+b+c\r\n"
    assert [lang_for(t) for t in ("Hello {x}", "مرحبا", "Ça va", "你好")] == ["1", "3", "1", "3"]


def test_bad_settings_name_the_input():
    with pytest.raises(KwtSMSInputError, match="smtp_host"):
        KwtSMSSmtpSender(USER, PASSWORD, smtp_host="", from_address="a@b.c")
    with pytest.raises(KwtSMSInputError, match="from_address"):
        KwtSMSSmtpSender(USER, PASSWORD, smtp_host="h", from_address="nobody")
    with pytest.raises(KwtSMSInputError, match="not both"):
        KwtSMSSmtpSender(
            USER, PASSWORD, smtp_host="h", from_address="a@b.c", smtp_ssl=True, smtp_starttls=True
        )
    with pytest.raises(KwtSMSInputError, match="password"):
        KwtSMSSmtpSender(USER, "", smtp_host="h", from_address="a@b.c")


def test_relay_settings_read_an_smtp_connection_like_the_smtp_provider():
    from types import SimpleNamespace

    def conn(**extra):
        return SimpleNamespace(
            conn_id="relay", host="mail.corp", port=587, login="af", password="pw", extra_dejson=extra
        )

    default = relay_settings(conn(from_email="af@corp"))
    assert (default["smtp_ssl"], default["smtp_starttls"]) == (True, False)
    assert default["from_address"] == "af@corp"
    tls = relay_settings(conn(disable_ssl=True), from_address="x@corp")
    assert (tls["smtp_ssl"], tls["smtp_starttls"], tls["smtp_port"], tls["from_address"]) == (
        False,
        True,
        587,
        "x@corp",
    )
    plain = relay_settings(conn(disable_ssl="true", disable_tls="1", from_email="a@b", timeout="5"))
    assert (plain["smtp_ssl"], plain["smtp_starttls"], plain["timeout"]) == (False, False, 5.0)
    with pytest.raises(KwtSMSInputError, match="from_email"):
        relay_settings(conn())
    with pytest.raises(KwtSMSInputError, match="disable_ssl"):
        relay_settings(conn(disable_ssl="maybe", from_email="a@b"))


def test_a_sender_with_a_separator_injects_no_text_into_the_gateway(sb):
    """str.splitlines() (the sandbox's reader) ends a line at \\x1c: the old body carried a second text."""
    from airflow_provider_kwtsms.smtp.sender import SmtpFieldError

    with make(sb) as sender, pytest.raises(SmtpFieldError) as caught:
        sender.send("96598765432", "Hello", sender="K\x1ctext:pwn")  # within the 11 characters
    assert caught.value.field == "sender"
    assert sb.emails() == [] and sb.messages() == []  # refused before the relay was reached
