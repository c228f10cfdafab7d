"""The e-mail channel against hostile input and a hostile relay, over real SMTP on loopback.

Two defects are shown here: values that could break their line of the e-mail (and so inject a
``text:`` or ``mobile:`` line, a header, or an SMTP command), and relay replies that quote the
body or the login and so carried the passwords into errors, logs, summaries and pickles.
"""

from __future__ import annotations

import base64
import email
import email.policy
import json
import logging
import pickle
import socketserver
from collections.abc import Callable
from email import quoprimime
from urllib.parse import quote

import pytest

from airflow_provider_kwtsms.errors import KwtSMSError
from airflow_provider_kwtsms.redact import secret_forms
from airflow_provider_kwtsms.smtp_transport import KwtSMSSmtpSender, SmtpFieldError, SmtpSendError

USER = "smtp_user"
PASSWORD = 'Pa55"wörd/+&<x>=1'  # one that JSON, URL, HTML and quoted-printable all write differently
RELAY_LOGIN, RELAY_PASSWORD = "relay-user", "relay%Secret=77"
NUMBER = "96598765432"
# Everything str.splitlines() splits on.
LINE_BREAKS = ["\n", "\r", "\r\n", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
FIELDS = ("username", "password", "sender", "mobile", "lang", "text")

Reply = str | Callable[[bytes], str]


class HostileRelay(socketserver.ThreadingTCPServer):
    """An SMTP relay on 127.0.0.1 that answers what it is told, and records what it got.

    ``replies`` maps a stage (greeting, ehlo, auth, mail, rcpt, data, end) to a reply: a string,
    or a function of the body received so far (the relay that quotes the e-mail back).
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, replies: dict[str, Reply] | None = None, *, eightbit: bool = True) -> None:
        super().__init__(("127.0.0.1", 0), _RelayHandler)
        self.replies = replies or {}
        self.eightbit = eightbit
        self.connections = 0
        self.bodies: list[bytes] = []
        self.commands: list[bytes] = []

    @property
    def port(self) -> int:
        return self.server_address[1]

    def reply(self, stage: str, default: str) -> str:
        reply = self.replies.get(stage, default)
        return reply(self.bodies[-1] if self.bodies else b"") if callable(reply) else reply


class _RelayHandler(socketserver.StreamRequestHandler):
    server: HostileRelay

    def say(self, text: str) -> None:
        self.wfile.write(text.encode("utf-8") + b"\r\n")
        self.wfile.flush()

    def answer(self, stage: str, default: str) -> bool:
        """Send the stage's reply; False when it was a 421, after which the relay hangs up."""
        text = self.server.reply(stage, default)
        self.say(text)
        return not text.splitlines()[-1].startswith("421")

    def handle(self) -> None:
        relay = self.server
        relay.connections += 1
        going = self.answer("greeting", "220 hostile.test ESMTP")
        while going and (line := self.rfile.readline()):
            relay.commands.append(line)
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                # The first line is the relay's name; smtplib skips it.
                extensions = "250-hostile.test\r\n" + ("250-8BITMIME\r\n" if relay.eightbit else "")
                going = self.answer("ehlo", extensions + "250 AUTH PLAIN")
            elif verb == b"AUTH":
                going = self.answer("auth", "235 ok")
            elif verb == b"MAIL":
                going = self.answer("mail", "250 ok")
            elif verb == b"RCPT":
                going = self.answer("rcpt", "250 ok")
            elif verb == b"DATA":
                go = relay.reply("data", "354 go on")
                self.say(go)
                if go.startswith("354"):
                    relay.bodies.append(b"".join(iter(self.rfile.readline, b".\r\n")))
                    going = self.answer("end", "250 queued")
            elif verb == b"QUIT":
                self.say("221 bye")
                return
            else:
                self.say("250 ok")


@pytest.fixture
def relay_factory():
    relays: list[HostileRelay] = []

    def make(replies: dict[str, Reply] | None = None, **options) -> HostileRelay:
        import threading

        relay = HostileRelay(replies, **options)
        threading.Thread(target=relay.serve_forever, daemon=True).start()
        relays.append(relay)
        return relay

    yield make
    for relay in relays:
        relay.shutdown()
        relay.server_close()


def sender_for(relay: HostileRelay, **options) -> KwtSMSSmtpSender:
    settings = {
        "smtp_host": "127.0.0.1",
        "smtp_port": relay.port,
        "smtp_login": RELAY_LOGIN,
        "smtp_password": RELAY_PASSWORD,
        "from_address": "alerts@example.com",
        "rate": 1000.0,
        "max_retries": 1,
        "sleep": lambda seconds: None,
    }
    settings.update(options)
    return KwtSMSSmtpSender(settings.pop("username", USER), settings.pop("password", PASSWORD), **settings)


# -- 1. what cannot go on one line is refused before any connection ----------------------------


@pytest.mark.parametrize("brk", ["\x1c", "\x1d", "\x1e"], ids=["FS", "GS", "RS"])
def test_a_sender_with_a_separator_cannot_inject_a_text_line(relay_factory, brk):
    relay = relay_factory()
    with pytest.raises(SmtpFieldError) as caught:
        sender_for(relay, sender=f"KWT-SMS{brk}text:Your account is closed, call +96500000000")
    assert caught.value.field == "sender" and "line break" in str(caught.value)
    with sender_for(relay) as sender, pytest.raises(SmtpFieldError) as caught:
        sender.send(NUMBER, "Hello", sender=f"KWT-SMS{brk}text:injected")
    assert caught.value.field == "sender" and "registered" in str(caught.value)  # says what to do
    with sender_for(relay) as sender, pytest.raises(SmtpFieldError, match="sender"):
        sender.send_batch([NUMBER], "Hello", sender=f"KWT-SMS{brk}text:injected", test=False)
    assert relay.connections == 0 and relay.bodies == []


@pytest.mark.parametrize("brk", LINE_BREAKS, ids=repr)
def test_a_sender_with_any_line_break_is_refused_not_rewritten(relay_factory, brk):
    relay = relay_factory()
    with pytest.raises(SmtpFieldError) as caught:
        sender_for(relay, sender=f"MY{brk}APP")
    assert caught.value.field == "sender"
    with sender_for(relay) as sender, pytest.raises(SmtpFieldError, match="sender"):
        sender.send(NUMBER, "Hello", sender=f"MY{brk}APP")
    assert relay.connections == 0


@pytest.mark.parametrize("field", ["from_address", "to_address"])
@pytest.mark.parametrize(
    "bad", ["\r\nBcc: victim@example.com", "\n", "\r", "\x00", "\x85", "\u2028"], ids=repr
)
def test_a_header_or_envelope_address_that_breaks_its_line_is_refused_before_connecting(
    relay_factory, field, bad
):
    relay = relay_factory()
    address = f"alerts{bad}@example.com" if field == "from_address" else f"sms@kwtsms.com{bad}"
    with pytest.raises(SmtpFieldError) as caught:
        sender_for(relay, **{field: address})
    assert caught.value.field == field and field in str(caught.value)
    # Set after construction (public attributes): still refused before the relay is reached.
    sender = sender_for(relay)
    setattr(sender, field, address)
    with pytest.raises(SmtpFieldError) as caught:
        sender.send_batch([NUMBER], "Hello", sender="KWT-SMS", test=False)
    assert caught.value.field == field
    assert relay.connections == 0


def test_an_address_outside_ascii_is_refused_before_connecting(relay_factory):
    relay = relay_factory()
    with pytest.raises(SmtpFieldError, match="ASCII") as caught:
        sender_for(relay, from_address="alérts@example.com")
    assert caught.value.field == "from_address" and relay.connections == 0


@pytest.mark.parametrize("field", ["username", "password", "smtp_login", "smtp_password"])
def test_credentials_that_break_their_line_are_refused_without_showing_a_password(relay_factory, field):
    relay = relay_factory()
    value = {
        "username": USER,
        "password": PASSWORD,
        "smtp_login": RELAY_LOGIN,
        "smtp_password": RELAY_PASSWORD,
    }
    value[field] += "\x1etext:injected"
    with pytest.raises(SmtpFieldError) as caught:
        sender_for(relay, **value)
    assert caught.value.field == field
    shown = str(caught.value) + repr(caught.value) + repr(pickle.dumps(caught.value))
    if "password" in field:
        assert value[field] not in shown and "injected" not in shown
    assert relay.connections == 0


def test_a_relay_password_outside_ascii_is_refused_before_connecting(relay_factory):
    # smtplib would raise a bare UnicodeEncodeError holding the whole AUTH PLAIN string.
    relay = relay_factory()
    with pytest.raises(SmtpFieldError, match="ASCII") as caught:
        sender_for(relay, smtp_password="pässword")
    assert caught.value.field == "smtp_password" and "pässword" not in str(caught.value)
    assert relay.connections == 0


def body_lines(raw: bytes) -> list[str]:
    """The body's lines as a MIME reader sees them (the e-mail goes 7bit/8bit, so also as sent)."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["Content-Transfer-Encoding"] in ("7bit", "8bit")
    return message.get_content().splitlines()


def test_no_kind_of_line_break_in_the_text_can_inject_a_field_line(relay_factory):
    relay = relay_factory()
    fields = ["username:x", "password:y", "sender:EVIL", "mobile:96500000000", "lang:3", "text:evil"]
    text = "Hello" + "".join(brk + fields[i % len(fields)] for i, brk in enumerate(LINE_BREAKS))
    with sender_for(relay) as sender:
        sender.send_batch([NUMBER], text, sender="KWT-SMS", test=False)
    lines = body_lines(relay.bodies[0])
    assert [line.partition(":")[0] for line in lines] == list(FIELDS)
    assert lines[2:5] == ["sender:KWT-SMS", f"mobile:{NUMBER}", "lang:1"]  # lang of the joined text
    assert lines[5] == "text:Hello " + " ".join(fields[i % len(fields)] for i in range(len(LINE_BREAKS)))


def test_the_email_goes_with_crlf_line_ends(relay_factory):
    relay = relay_factory()
    with sender_for(relay) as sender:
        sender.send(NUMBER, "Hello")
    raw = relay.bodies[0]
    assert raw.count(b"\n") == raw.count(b"\r\n") > 6  # no bare LF, as RFC 5321 requires


@pytest.mark.parametrize("bad", ["\x00", "\x07", "\x1b[2J", "\x7f", "\x9b"], ids=repr)
def test_a_control_character_in_the_text_is_refused_before_connecting(relay_factory, bad):
    relay = relay_factory()
    with sender_for(relay) as sender, pytest.raises(SmtpFieldError) as caught:
        sender.send_batch([NUMBER], f"Hello{bad}world", sender="KWT-SMS", test=False)
    assert caught.value.field == "text" and "send()" in str(caught.value)
    assert relay.connections == 0


@pytest.mark.parametrize(
    "number", [f"{NUMBER}\ntext:evil", f"{NUMBER}\x1c", "+96598765432", f"{NUMBER},9650"]
)
def test_a_number_that_is_not_digits_only_is_refused_before_connecting(relay_factory, number):
    relay = relay_factory()
    with sender_for(relay) as sender, pytest.raises(SmtpFieldError) as caught:
        sender.send_batch([number], "Hello", sender="KWT-SMS", test=False)
    assert caught.value.field == "mobile" and relay.connections == 0


def test_the_field_error_is_typed_and_survives_pickling():
    with pytest.raises(SmtpFieldError) as caught:
        KwtSMSSmtpSender(USER, PASSWORD, smtp_host="h", from_address="a@b.c", sender="A\x1dB")
    copy = pickle.loads(pickle.dumps(caught.value))
    assert isinstance(copy, ValueError) and copy.field == "sender" and str(copy) == str(caught.value)
    assert "U+001D" in str(copy)


# -- 2. what a relay says is scrubbed of both passwords -----------------------------------------

CUT = PASSWORD[: len(PASSWORD) // 2 + 1]  # a relay that cuts its quote mid-password
QP_FORM = quoprimime.body_encode(PASSWORD.encode("utf-8").decode("latin-1"))
AUTH_PLAIN = base64.b64encode(f"\0{RELAY_LOGIN}\0{RELAY_PASSWORD}".encode()).decode()
SECRETS = [
    *secret_forms(PASSWORD),
    *secret_forms(RELAY_PASSWORD),
    CUT,
    QP_FORM,
    AUTH_PLAIN,
    base64.b64encode(RELAY_PASSWORD.encode()).decode(),
]


def quoting(code: int) -> Callable[[bytes], str]:
    """A reply that quotes every secret, in every form, and the body it received, if any."""

    def reply(body: bytes) -> str:
        quoted = [
            f"raw {PASSWORD} relay {RELAY_PASSWORD}",
            f"json {json.dumps(PASSWORD)} {json.dumps(PASSWORD, ensure_ascii=False)}",
            f"url {quote(PASSWORD, safe='')} {quote(RELAY_PASSWORD, safe='')}",
            f"cut {CUT}",
            f"auth {AUTH_PLAIN}",
            f"body {body.decode('utf-8', 'replace')!r}",
            f"json-body {json.dumps(body.decode('utf-8', 'replace'))}",
            f"url-body {quote(body)}",
        ]
        return "\r\n".join(f"{code}-{line}" for line in quoted) + f"\r\n{code} marker-kept"

    return reply


def leaks(*texts: str | bytes) -> list[str]:
    found = []
    for text in texts:
        for secret in SECRETS:
            needle = secret.encode("utf-8") if isinstance(text, bytes) else secret
            if needle in text:
                found.append(secret)
    return found


def assert_clean(exc: BaseException, caplog, *more: str) -> None:
    assert isinstance(exc, KwtSMSError)
    assert exc.__context__ is None and exc.__cause__ is None  # no smtplib exception chained
    copy = pickle.loads(pickle.dumps(exc))
    texts = [str(exc), repr(exc), pickle.dumps(exc), str(copy), repr(vars(exc)), caplog.text, *more]
    assert leaks(*texts) == []
    assert all("\n" not in str(t) for t in (str(exc), exc.description)), "one line: no forged log lines"


STAGES = [
    ("greeting", 554, "SMTP_REFUSED"),
    ("ehlo", 554, "SMTP_REFUSED"),
    ("auth", 535, "SMTP_AUTH"),
    ("mail", 553, "SMTP_REFUSED"),
    ("rcpt", 550, "SMTP_REFUSED"),
    ("data", 554, "SMTP_REFUSED"),
    ("end", 552, "SMTP_REFUSED"),
    ("end", 451, "SMTP_TEMPORARY"),
    ("rcpt", 450, "SMTP_TEMPORARY"),
]


@pytest.mark.parametrize(("stage", "code", "error_code"), STAGES, ids=[f"{s}-{c}" for s, c, _ in STAGES])
def test_a_relay_quoting_the_passwords_leaks_them_nowhere(relay_factory, caplog, stage, code, error_code):
    caplog.set_level(logging.DEBUG)
    relay = relay_factory({stage: quoting(code)})
    with sender_for(relay) as sender:
        result = sender.send(NUMBER, "Hello")
    [batch] = result.batches
    assert batch.state == "failed" and batch.error_code == error_code
    summary = result.to_dict()
    assert leaks(json.dumps(summary), repr(result), str(batch.summary()), batch.error_description or "") == []
    assert str(code) in batch.error_description and "***" in batch.error_description  # scrubbed, kept
    with pytest.raises(KwtSMSError) as caught:
        result.raise_for_status()
    assert_clean(caught.value, caplog, json.dumps(summary))
    # Straight from send_batch (the resume ledger's path): the raised error itself.
    with sender_for(relay) as sender, pytest.raises(KwtSMSError) as caught:
        sender.send_batch([NUMBER], "Hello", sender="KWT-SMS", test=False)
    assert caught.value.code == error_code
    assert_clean(caught.value, caplog)
    if error_code == "SMTP_TEMPORARY":
        assert "retry 1/1" in caplog.text  # it was logged, and scrubbed
    assert "WARNING" in caplog.text or error_code == "SMTP_TEMPORARY"


def test_a_relay_quoting_a_quoted_printable_body_leaks_no_password(relay_factory, caplog):
    # Without 8BITMIME, a non-ASCII body goes quoted-printable: the quote holds the password so.
    relay = relay_factory(
        {"end": lambda body: "554 rejected: " + " | ".join(body.decode().splitlines())}, eightbit=False
    )
    with sender_for(relay) as sender, pytest.raises(SmtpSendError) as caught:
        sender.send_batch([NUMBER], "مرحبا", sender="KWT-SMS", test=False)
    assert QP_FORM.encode() in relay.bodies[0]  # the relay did get the password so encoded
    assert_clean(caught.value, caplog)


def test_a_huge_relay_reply_is_scrubbed_then_cut(relay_factory, caplog):
    relay = relay_factory({"end": "\r\n".join([f"550-{'x' * 900} {PASSWORD}"] * 40) + "\r\n550 end"})
    with sender_for(relay) as sender, pytest.raises(SmtpSendError) as caught:
        sender.send_batch([NUMBER], "Hello", sender="KWT-SMS", test=False)
    assert len(caught.value.description) < 400 and caught.value.description.startswith("The relay refused")
    assert_clean(caught.value, caplog)
