"""The 2009 document's SMTP channel: an e-mail to sms@kwtsms.com becomes an SMS.

A small threaded SMTP server (``socketserver``; ``smtpd`` is gone from Python 3.12 and
``aiosmtpd`` is not installed with Airflow) speaking HELO/EHLO, AUTH PLAIN/LOGIN (any login is
taken, as a relay would), MAIL, RCPT, DATA (dot-unstuffing, SIZE limit), RSET, NOOP, VRFY,
HELP and QUIT.

Each e-mail is judged by ``judge_email`` and sent through the same ``Gateway.call("send")`` as
the HTTP API: same rules, charging and inbox. Whatever is wrong is dropped in silence, as the
real service does (the SMTP answer is still 250), and the reason goes to ``Sandbox.emails()``.
The record never holds the password nor the raw body (which holds it).

Choices where the document is silent (see docs/smtp.md):

- only a top-level ``text/plain`` e-mail (or one without Content-Type) is read; HTML, rich text
  and every ``multipart/*`` e-mail, ``multipart/alternative`` with a plain part included, are
  dropped: the document asks for "Text, and not Rich text or HTML";
- ``RCPT TO`` another address than sms@kwtsms.com is refused with 550, as a mail server refuses
  an unknown mailbox;
- lines are ``name:value``; unknown lines are ignored, the first of a repeated name wins,
  ``+`` is a space in ``sender`` and ``text``; every one of the six parameters is required;
- ``lang`` must be 1 to 4, and ``lang:1`` (English) with text outside GSM-7 is dropped;
- there is no ``test`` parameter: every e-mail is a live send.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import email
import email.policy
import re
import socketserver
from typing import TYPE_CHECKING, Any

from airflow_provider_kwtsms.sandbox.connections import TracksOpenConnections
from airflow_provider_kwtsms.sandbox.rules import ApiError, has_lone_surrogate, one_line
from airflow_provider_kwtsms.text.message import encoding_of

if TYPE_CHECKING:
    from airflow_provider_kwtsms.sandbox.state import Gateway

SMS_ADDRESS = "sms@kwtsms.com"
DEFAULT_SMTP_PORT = 8025
PARAMETERS = ("username", "password", "sender", "mobile", "lang", "text")
LANGS = ("1", "2", "3", "4")
MAX_RECIPIENTS = 100
MAX_LINE = 4096  # RFC 5321 allows 1000; be lenient, but bounded
RICH_TYPES = frozenset({"text/enriched", "text/richtext", "text/rtf", "application/rtf"})

ACCEPTED = "accepted"
DROPPED = "dropped"

_LINE = re.compile(r"^\s*(username|password|sender|mobile|lang|text)\s*:(.*)$", re.IGNORECASE)
_PATH = re.compile(r"^\s*<([^<>]*)>(.*)$")
_ASCII_DIGITS = re.compile("[0-9]+")


def parse_body(text: str) -> dict[str, str]:
    """The parameters of a body: one ``name:value`` a line; ``+`` is a space in sender and text."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        match = _LINE.match(line)
        if not match:
            continue  # greetings, signatures, disclaimers a relay appends
        name, value = match.group(1).lower(), match.group(2).strip()
        if name in ("sender", "text"):
            value = value.replace("+", " ").strip()
        fields.setdefault(name, value)
    return fields


def judge_email(
    gateway: Gateway, raw: bytes, *, mail_from: str, rcpt_to: list[str], relay_user: str | None
) -> dict[str, Any]:
    """Read one e-mail, send it through the gateway when it is right; return its record."""
    request_id = gateway.next_request_id()
    record: dict[str, Any] = {
        "email_id": request_id,
        "received_at": gateway.now(),
        "mail_from": mail_from,
        "rcpt_to": list(rcpt_to),
        "relay_user": relay_user,
        "size": len(raw),
        "subject": None,
        "content_type": None,
        "outcome": DROPPED,
        "code": None,
        "reason": None,
        "msg_id": None,
        "username": None,
        "sender": None,
        "mobile": [],
        "lang": None,
        "text": None,
    }
    try:
        fields = _read(raw, record)
        record.update(
            username=fields.get("username"),
            sender=fields.get("sender"),
            mobile=[n.strip() for n in fields.get("mobile", "").split(",") if n.strip()],
            lang=fields.get("lang"),
            text=fields.get("text"),
        )
        _check(fields)
        answer = gateway.call(
            "send",
            {
                "username": fields["username"],
                "password": fields["password"],
                "sender": fields["sender"],
                "mobile": fields["mobile"],
                "message": fields["text"],
                "test": "0",
            },
            request_id=request_id,
            api="smtp",
        )
    except ApiError as error:
        record.update(code=error.code, reason=error.description)
    else:
        record.update(outcome=ACCEPTED, msg_id=answer["msg-id"])
    gateway.log_request(
        {
            "request_id": request_id,
            "time": record["received_at"],
            "endpoint": "send",
            "api": "smtp",
            "username": record["username"],
            "code": record["code"] or "OK",
            "http_status": None,
            "fault": None,
        }
    )
    gateway.record_email(record)
    return record


def _read(raw: bytes, record: dict[str, Any]) -> dict[str, str]:
    """The body's parameters, or ApiError("EMAIL", why) for an e-mail the gateway cannot read."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    content_type = msg.get_content_type()
    record["content_type"] = content_type
    with contextlib.suppress(Exception):  # a malformed Subject must not stop the record
        subject = str(msg.get("Subject", "") or "")
        # An encoded word can decode to a lone surrogate: keep the record encodable (shown escaped).
        record["subject"] = subject.encode("utf-8", "backslashreplace").decode("utf-8") or None
    if msg.is_multipart():
        raise ApiError(
            "EMAIL",
            f"A {content_type} e-mail is not read: the gateway reads plain-text "
            "e-mails only (one text/plain part, no HTML alternative, no attachment).",
        )
    if content_type == "text/html":
        raise ApiError("EMAIL", "An HTML e-mail is not read: send it as plain text (text/plain).")
    if content_type in RICH_TYPES:
        raise ApiError("EMAIL", f"A rich-text e-mail ({content_type}) is not read: send plain text.")
    if content_type != "text/plain":
        raise ApiError("EMAIL", f"A {content_type} e-mail is not read: send plain text (text/plain).")
    try:
        body = msg.get_content()
    except (LookupError, UnicodeError, ValueError) as exc:
        raise ApiError("EMAIL", f"The body cannot be decoded ({type(exc).__name__}): use UTF-8.") from None
    if has_lone_surrogate(body):  # UTF-7 "+2AA-" or UTF-16 can decode to text no one can encode
        raise ApiError("EMAIL", "The body decodes to invalid Unicode (a lone UTF-16 surrogate): use UTF-8.")
    return parse_body(body)


def _check(fields: dict[str, str]) -> None:
    missing = [name for name in PARAMETERS if not fields.get(name)]
    if missing:
        raise ApiError(
            "ERR002", "Missing or empty parameter line(s): " + ", ".join(f"{name}:" for name in missing) + "."
        )
    if fields["lang"] not in LANGS:
        raise ApiError("ERR002", f"lang must be 1, 2, 3 or 4, got {fields['lang'][:10]!r}.")
    if fields["lang"] == "1" and encoding_of(fields["text"]) != "GSM-7":
        raise ApiError(
            "LANG",
            "lang:1 (English) but the text has characters outside GSM-7: use lang:3 "
            "(Arabic, UTF-8) or lang:4 (Unicode).",
        )


# --- the SMTP server --------------------------------------------------------------------------


class SmtpServer(TracksOpenConnections, socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], gateway: Gateway, *, max_size: int) -> None:
        super().__init__(address, _SmtpHandler)
        self.gateway = gateway
        self.max_size = max_size


class _Closed(Exception):
    """The client went away (or was too slow): end the session."""


class _SmtpHandler(socketserver.StreamRequestHandler):
    timeout = 30  # a stalled client is dropped instead of holding a thread forever
    server: SmtpServer

    def handle(self) -> None:
        self.helo: str | None = None
        self.relay_user: str | None = None
        self._reset()
        try:
            self._reply("220 127.0.0.1 kwtSMS sandbox ESMTP")
            while True:
                line = self._line()
                verb, _, arg = line.partition(" ")
                method = getattr(self, f"_cmd_{verb.upper()}", None) if verb.isalpha() else None
                if method is None:
                    self._reply(f"500 5.5.2 Command not recognised: {verb[:20]!r}")
                elif method(arg.strip()) is False:
                    return
        except (_Closed, OSError):
            return

    # --- plumbing ---------------------------------------------------------------------------
    def _reset(self) -> None:
        self.mail_from: str | None = None
        self.rcpt_to: list[str] = []

    def _reply(self, text: str) -> None:
        # Echoed values (HELO name, address) are on one line and encodable, whatever was sent.
        lines = "\r\n".join(one_line(line) for line in text.split("\r\n"))
        self.wfile.write(lines.encode("utf-8", "backslashreplace") + b"\r\n")
        self.wfile.flush()

    def _raw_line(self) -> bytes:
        line = self.rfile.readline(MAX_LINE + 2)
        if not line:
            raise _Closed
        return line

    def _line(self) -> str:
        raw = self._raw_line()
        if not raw.endswith(b"\n"):  # over MAX_LINE: skip the rest of it
            while not self._raw_line().endswith(b"\n"):
                pass
            self._reply("500 5.5.6 Line too long")
            return "NOOP"
        return raw.rstrip(b"\r\n").decode("utf-8", "replace")

    # --- commands (each returns False to end the session) ------------------------------------
    def _cmd_HELO(self, arg: str) -> None:
        self.helo = arg or "unknown"
        self._reset()
        self._reply("250 127.0.0.1")

    def _cmd_EHLO(self, arg: str) -> None:
        self.helo = arg or "unknown"
        self._reset()
        self._reply(
            f"250-127.0.0.1 hello {self.helo[:60]}\r\n250-SIZE {self.server.max_size}\r\n"
            "250-8BITMIME\r\n250-AUTH PLAIN LOGIN\r\n250 HELP"
        )

    def _cmd_AUTH(self, arg: str) -> None:
        # A relay login: any credentials are taken; only the user name is kept (never the password).
        mechanism, _, initial = arg.partition(" ")
        try:
            if mechanism.upper() == "PLAIN":
                if not initial:
                    self._reply("334 ")
                    initial = self._line()
                parts = base64.b64decode(initial, validate=True).split(b"\0")
                user = parts[1] if len(parts) == 3 else b""
            elif mechanism.upper() == "LOGIN":
                if not initial:
                    self._reply("334 " + base64.b64encode(b"Username:").decode())
                    initial = self._line()
                user = base64.b64decode(initial, validate=True)
                self._reply("334 " + base64.b64encode(b"Password:").decode())
                self._line()
            else:
                return self._reply("504 5.5.4 Use AUTH PLAIN or AUTH LOGIN")
        except (binascii.Error, ValueError):
            return self._reply("501 5.5.2 Cannot decode the AUTH answer")
        self.relay_user = user.decode("utf-8", "replace")
        self._reply("235 2.7.0 Authentication successful")

    def _cmd_MAIL(self, arg: str) -> None:
        if self.helo is None:
            return self._reply("503 5.5.1 Say HELO or EHLO first")
        if self.mail_from is not None:
            return self._reply("503 5.5.1 Nested MAIL command")
        if not arg.upper().startswith("FROM:"):
            return self._reply("501 5.5.4 Syntax: MAIL FROM:<address>")
        match = _PATH.match(arg[5:])
        if not match:
            return self._reply("501 5.1.7 Syntax: MAIL FROM:<address>")
        for param in match.group(2).split():
            key, _, value = param.partition("=")
            if key.upper() == "SIZE":
                if not _ASCII_DIGITS.fullmatch(value):  # isdigit()/int() take "²" and "٣"
                    return self._reply("501 5.5.4 SIZE must be a number in ASCII digits (0-9)")
                if len(value) > 18 or int(value) > self.server.max_size:
                    return self._too_big()
        self.mail_from = match.group(1)
        self._reply("250 2.1.0 OK")

    def _cmd_RCPT(self, arg: str) -> None:
        if self.mail_from is None:
            return self._reply("503 5.5.1 Need MAIL before RCPT")
        if not arg.upper().startswith("TO:"):
            return self._reply("501 5.5.4 Syntax: RCPT TO:<address>")
        match = _PATH.match(arg[3:])
        if not match:
            return self._reply("501 5.1.3 Syntax: RCPT TO:<address>")
        address = match.group(1).strip()
        if address.lower() != SMS_ADDRESS:
            return self._reply(f"550 5.1.1 <{address[:100]}>: no such mailbox here; SMS go to {SMS_ADDRESS}")
        if len(self.rcpt_to) >= MAX_RECIPIENTS:
            return self._reply("452 4.5.3 Too many recipients")
        self.rcpt_to.append(address)
        self._reply("250 2.1.5 OK")

    def _cmd_DATA(self, arg: str) -> None:
        if self.mail_from is None or not self.rcpt_to:
            return self._reply("503 5.5.1 Need MAIL and RCPT before DATA")
        self._reply("354 End data with <CR><LF>.<CR><LF>")
        chunks: list[bytes] = []
        size = 0
        too_big = False
        while True:
            line = self._raw_line()
            if line in (b".\r\n", b".\n"):
                break
            if line.startswith(b"."):
                line = line[1:]  # dot-unstuffing (RFC 5321 4.5.2)
            size += len(line)
            if size > self.server.max_size:
                too_big = True  # keep reading to the end, keep nothing
                chunks = []
            elif not too_big:
                chunks.append(line)
        mail_from, rcpt_to = self.mail_from, list(self.rcpt_to)
        self._reset()
        if too_big:
            return self._too_big()
        record = judge_email(
            self.server.gateway,
            b"".join(chunks),
            mail_from=mail_from,
            rcpt_to=rcpt_to,
            relay_user=self.relay_user,
        )
        # Always 250, whatever the verdict: the real service sends no error back.
        self._reply(f"250 2.0.0 OK queued as {record['email_id']}")

    def _too_big(self) -> None:
        self._reply(f"552 5.3.4 Message size exceeds the limit of {self.server.max_size} bytes")

    def _cmd_RSET(self, arg: str) -> None:
        self._reset()
        self._reply("250 2.0.0 OK")

    def _cmd_NOOP(self, arg: str) -> None:
        self._reply("250 2.0.0 OK")

    def _cmd_VRFY(self, arg: str) -> None:
        self._reply("252 2.1.5 Cannot VRFY; send the mail and it will be tried")

    def _cmd_HELP(self, arg: str) -> None:
        self._reply(
            f"214 2.0.0 Send a plain-text e-mail to {SMS_ADDRESS} with username:, password:, "
            "sender:, mobile:, lang: and text: lines"
        )

    def _cmd_STARTTLS(self, arg: str) -> None:
        self._reply("454 4.7.0 TLS not available in the sandbox")

    def _cmd_QUIT(self, arg: str) -> bool:
        self._reply("221 2.0.0 Bye")
        return False
