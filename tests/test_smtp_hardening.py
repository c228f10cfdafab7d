"""The e-mail channel against hostile input and a hostile relay, over real SMTP on loopback.

Two defects are shown here: values that could break their line of the e-mail (and so inject a
``text:`` or ``mobile:`` line, a header, or an SMTP command), and relay replies that quote the
body or the login and so carried the passwords into errors, logs, summaries and pickles.
Then a generated hostile relay (hypothesis): whatever it says at each stage, a send accounts for
every input, never sends again an e-mail the relay may have taken, and leaks neither password.
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
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sandbox_helpers import SandboxTime

from airflow_provider_kwtsms.errors import KwtSMSError
from airflow_provider_kwtsms.gateway.redact import secret_forms
from airflow_provider_kwtsms.send.results import SENT
from airflow_provider_kwtsms.smtp.sender import KwtSMSSmtpSender, SmtpFieldError, SmtpSendError

USER = "smtp_user"
PASSWORD = 'Pa55"wörd/+&<x>=1'  # one that JSON, URL, HTML and quoted-printable all write differently
RELAY_LOGIN, RELAY_PASSWORD = "relay-user", "relay%Secret=77"
NUMBER = "96598765432"
# Everything str.splitlines() splits on.
LINE_BREAKS = ["\n", "\r", "\r\n", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
FIELDS = ("username", "password", "sender", "mobile", "lang", "text")

Reply = str | bytes | Callable[[bytes], str | bytes]
HANG_UP = "<hang up>"  # a reply that is no reply: the relay closes the connection at that stage


class HostileRelay(socketserver.ThreadingTCPServer):
    """An SMTP relay on 127.0.0.1 that answers what it is told, and records what it got.

    ``replies`` maps a stage (greeting, ehlo, auth, mail, rcpt, data, end, quit) to a reply: a
    string, raw bytes (sent as they are), ``HANG_UP``, or a function of the body received so far
    (the relay that quotes the e-mail back) returning one of those.
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

    def reply(self, stage: str, default: str) -> bytes | None:
        """The stage's reply as it goes on the wire; None for ``HANG_UP``."""
        reply = self.replies.get(stage, default)
        if callable(reply):
            reply = reply(self.bodies[-1] if self.bodies else b"")
        if reply == HANG_UP:
            return None
        return reply if isinstance(reply, bytes) else reply.encode("utf-8")


class _RelayHandler(socketserver.StreamRequestHandler):
    server: HostileRelay

    def say(self, reply: bytes) -> None:
        self.wfile.write(reply + b"\r\n")
        self.wfile.flush()

    def answer(self, stage: str, default: str) -> bool:
        """Send the stage's reply; False when it was a 421 or ``HANG_UP``: the relay hangs up."""
        reply = self.server.reply(stage, default)
        if reply is None:
            return False
        self.say(reply)
        return not (reply.splitlines() or [b""])[-1].startswith(b"421")

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
                if go is None:
                    return
                self.say(go)
                if go.startswith(b"354"):
                    lines = []
                    while (got := self.rfile.readline()) not in (b".\r\n", b""):
                        lines.append(got)
                    if not got:
                        return  # the client left mid-body: no whole e-mail
                    relay.bodies.append(b"".join(lines))
                    going = self.answer("end", "250 queued")
            elif verb == b"QUIT":
                self.answer("quit", "221 bye")
                return
            else:
                self.say(b"250 ok")


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
        sender.send(NUMBER, "Hello", sender=f"K{brk}text:pwn")  # within the 11 characters
    assert caught.value.field == "sender" and "registered" in str(caught.value)  # says what to do
    with sender_for(relay) as sender, pytest.raises(SmtpFieldError, match="sender"):
        sender.send_batch([NUMBER], "Hello", sender=f"K{brk}text:pwn", test=False)
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


@pytest.mark.parametrize(
    "reply",
    [b"", b"\xff\xfe\x00garbage", b"2x0 ok", "250 " + "y" * 9000],
    ids=["empty", "garbage", "no-code", "too-long"],
)
def test_an_unreadable_reply_to_the_whole_email_is_a_lost_reply_not_a_refusal(relay_factory, reply):
    # Was: "failed, SMTP_REFUSED: -1" (or smtplib's own 500 "Line too long."), i.e. nothing sent,
    # so the resume ledger would send it again; the relay got the whole e-mail and may have taken it.
    relay = relay_factory({"end": reply})
    with sender_for(relay) as sender:
        batch = sender.send_batch([NUMBER], "Hello", sender="KWT-SMS", test=False)
        assert batch.state == "sent" and batch.relay_reply_lost
        [batch] = sender.send(["96550000001"], "Hello").batches
    assert batch.state == "sent" and batch.relay_reply_lost and len(relay.bodies) == 2  # neither resent


# -- 3. a generated hostile relay: every input accounted for, no e-mail twice, no leak ----------

NORMAL = {  # each stage's reply when the relay behaves (as HostileRelay answers by default)
    "greeting": "220 hostile.test ESMTP",
    "ehlo": "250-hostile.test\r\n250-8BITMIME\r\n250 AUTH PLAIN",
    "auth": "235 ok",
    "mail": "250 ok",
    "rcpt": "250 ok",
    "data": "354 go on",
    "end": "250 queued",
    "quit": "221 bye",
}
StageReply = tuple[str, Reply | None, bool]  # (kind, the reply or None for the normal one, refusal?)
Replies = list[StageReply]  # a stage's replies to its 1st, 2nd ... occurrence
ERROR_CODES = [421, 450, 451, 452, 454, 500, 501, 535, 550, 552, 553, 554]
GARBAGE = [
    b"",
    b"\xff\xfe\x00\x80",
    b"HELLO?",
    "ünïcödé".encode(),
    b"\x1b[2J\x00",
    b"2x0 ok",
    b"\xff\r\n\x00junk",
]


@st.composite
def stage_replies(draw, stage: str) -> StageReply:
    """One reply for ``stage``: (kind, reply or None for the normal one, a readable 4xx/5xx?)."""
    normal = int(NORMAL[stage][:3])
    kind = draw(st.sampled_from(["normal", "code", "multi", "quote", "garbage", "huge", "hang-up"]))
    code = draw(st.sampled_from([normal, *ERROR_CODES]))
    if kind == "normal":
        return kind, None, False
    if kind == "code":
        return kind, f"{code} hostile {stage}", code != normal
    if kind == "multi":
        return kind, f"{normal}-{stage} says\r\n{normal}-and more\r\n{NORMAL[stage]}", False
    if kind == "quote":
        return kind, quoting(code), code != normal
    if kind == "garbage":
        return kind, draw(st.sampled_from(GARBAGE)), False
    if kind == "huge":
        if draw(st.booleans()):  # one line longer than smtplib reads: no readable reply
            return kind, f"{code} " + "y" * 20_000 + PASSWORD, False
        return kind, "\r\n".join([f"{code}-{'x' * 900} {PASSWORD}"] * 40) + f"\r\n{code} end", code != normal
    return kind, HANG_UP, False


@st.composite
def hostile_relays(draw) -> dict[str, Replies]:
    """A few hostile stages (the end of data more often: it is where at most once is at stake),
    each with the replies to its 1st, 2nd, 3rd ... occurrence; the last one repeats, or the
    relay behaves again (a passing fault, so the batches after it are sent)."""
    stages = draw(st.lists(st.sampled_from([*NORMAL, "end", "end", "end", "data"]), min_size=1, max_size=3))
    normal: Replies = [("normal", None, False)]
    script = {}
    for stage in NORMAL:
        replies = draw(st.lists(stage_replies(stage), min_size=1, max_size=3)) if stage in stages else normal
        script[stage] = replies if draw(st.booleans()) else replies + normal
    return script


def scripted(script: dict[str, Replies], ends: list[tuple[bytes, bool]]):
    """The relay's ``replies``: each stage walks its list; ``ends`` records each whole e-mail and
    whether its end-of-data reply may have been an acceptance (anything but a readable 4xx/5xx)."""
    seen = dict.fromkeys(script, 0)

    def stage_reply(stage: str) -> Callable[[bytes], str | bytes]:
        def reply(body: bytes) -> str | bytes:
            _kind, text, refusal = script[stage][min(seen[stage], len(script[stage]) - 1)]
            seen[stage] += 1
            if stage == "end":
                ends.append((body, not refusal))
            out = NORMAL[stage] if text is None else text
            return out(body) if callable(out) else out

        return reply

    return {stage: stage_reply(stage) for stage in script}


def mobile_line(raw: bytes) -> str:
    """The ``mobile:`` line of an e-mail the relay received (whatever its transfer encoding)."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    [line] = [line for line in message.get_content().splitlines() if line.startswith("mobile:")]
    return line.removeprefix("mobile:")


HOSTILE_RELAY = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def shared_relay():
    """One relay for every generated example (each scripts it anew): no server per example."""
    import threading

    relay = HostileRelay()
    threading.Thread(target=relay.serve_forever, daemon=True).start()
    yield relay
    relay.shutdown()
    relay.server_close()


def _script(**hostile: Replies) -> dict[str, Replies]:
    return {stage: hostile.get(stage, [("normal", None, False)]) for stage in NORMAL}


@HOSTILE_RELAY
@example(  # the reply to batch 1's e-mail lost, then a relay that behaves: batch 1 is not resent
    script=_script(end=[("hang-up", HANG_UP, False), ("normal", None, False)]), count=450, retries=2
)
@example(script=_script(end=[("garbage", b"", False)]), count=1, retries=2)  # an empty reply to the e-mail
@given(
    script=hostile_relays(),
    count=st.integers(0, 2).flatmap(lambda k: st.integers(200 * k + 1, min(200 * (k + 1), 450))),  # batches
    retries=st.integers(0, 2),
)
def test_send_by_email_accounts_for_everyone_sends_nothing_twice_and_leaks_nothing(
    shared_relay, caplog, script, count, retries
):
    # The SMTP counterpart of test_client_hostile's property test, on the same promises.
    relay = shared_relay
    ends: list[tuple[bytes, bool]] = []
    relay.replies, relay.bodies, relay.commands = scripted(script, ends), [], []
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    numbers = [f"96550{i:06d}" for i in range(count)]
    inputs = [*numbers, "12345", numbers[0]]  # one invalid, one duplicate
    vt = SandboxTime()  # waits (backoff, pacing, same number) only move a virtual clock
    try:
        with sender_for(relay, clock=vt.clock, sleep=vt.sleep, max_retries=retries, timeout=5.0) as sender:
            result = sender.send(inputs, "Hello")
    except KwtSMSError as exc:  # ours only: anything else fails the test
        assert_clean(exc, caplog)
        return
    # Every input accounted for exactly once; every valid number in exactly one batch.
    recipients = result.plan.recipients
    assert len(recipients.valid) + len(recipients.invalid) + len(recipients.duplicates) == len(inputs)
    assert sorted(n for b in result.batches for n in b.numbers) == sorted(recipients.valid) == sorted(numbers)
    assert all(len(b.numbers) <= 200 for b in result.batches)
    assert not [b.error_description for b in result.batches if b.error_code == "UNEXPECTED"]
    # An e-mail the relay may have accepted is never sent again, and its batch is reported sent.
    by_batch = {",".join(b.numbers): b for b in result.batches}
    received: dict[str, list[bool]] = {}
    for body, maybe_accepted in ends:
        received.setdefault(mobile_line(body), []).append(maybe_accepted)
    assert set(received) <= set(by_batch)
    for mobiles, accepted in received.items():
        assert True not in accepted[:-1], f"batch #{by_batch[mobiles].index + 1} sent again: {accepted}"
        if accepted[-1]:
            assert by_batch[mobiles].state == SENT, by_batch[mobiles]
    for key, batch in by_batch.items():
        if batch.state == SENT and not batch.relay_reply_lost:
            assert received.get(key, [False])[-1], batch  # "taken by the relay" only when it was
    # Neither password, in any form, anywhere: result, summary, errors (and their pickles), log.
    summary = json.dumps(result.to_dict())
    assert leaks(repr(result), summary, pickle.dumps(result), caplog.text) == []
    for batch in result.batches:
        if batch.state != SENT:
            assert_clean(batch.error(), caplog, summary)
    if not result.ok:
        with pytest.raises(KwtSMSError) as caught:
            result.raise_for_status()
        assert_clean(caught.value, caplog)
