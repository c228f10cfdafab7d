"""Send SMS by e-mail: the 2009 document's SMTP channel, through any SMTP relay.

Some networks let only e-mail out, through a corporate relay. kwtSMS reads a plain-text e-mail
to ``sms@kwtsms.com`` whose body holds ``username:``, ``password:``, ``sender:``, ``mobile:``,
``lang:`` and ``text:`` lines. It sends **no answer and no error**: a wrong e-mail (bad
password, unknown sender, no balance, HTML) is dropped in silence. So this sender:

- checks what it can before sending (numbers, text, pages, credits; and, when
  ``balance_over_http`` is on and the API is reachable, the balance and the sender ID);
- reports every batch as ``submitted_unconfirmed``: the relay took the e-mail, nothing more is
  known; there is no msg-id, and the result's ``to_dict()`` says ``"confirmed": False``;
- delivers at most once: an e-mail whose relay reply was lost is never sent again (it is
  reported with ``relay_reply_lost``), since no answer will ever tell whether it went out;
- keeps the 15-second rule itself (a second e-mail to the same number within 15 s would be
  dropped without a word), by waiting.

The API password travels in the e-mail body: that is the document's design, not a choice made
here. The body is never logged, and ``repr`` masks both passwords. A relay's reply may quote the
body or the login, so every reply is scrubbed of both passwords (``redact.Redactor``) before it
goes into an error, a log line or a result, and only then cut to ``MAX_REPLY_TEXT``.

Every value written on a line (the body's ``name:value`` lines, the From/To headers, the MAIL
FROM/RCPT TO commands) is checked before connecting: one holding a line break of any kind (all
that ``str.splitlines()`` splits on) or a control character is refused with ``SmtpFieldError``,
which names the field. The message text alone is joined onto one line instead (its line breaks
become spaces; the document says "the parameter value should be in the same line"), so nothing in
it can begin a ``username:``/``password:``/... line: the body always has exactly six lines, the
text last. No Airflow import here.
"""

from __future__ import annotations

import base64
import email.policy
import logging
import math
import random
import re
import smtplib
import ssl
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from email import quoprimime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING, Any

from airflow_provider_kwtsms import planning
from airflow_provider_kwtsms.constants import DEFAULT_RATE, MAX_BATCH, SAME_NUMBER_WAIT
from airflow_provider_kwtsms.errors import KwtSMSError, KwtSMSInputError, KwtSMSNetworkError
from airflow_provider_kwtsms.pacing import TokenBucket
from airflow_provider_kwtsms.redact import Redactor
from airflow_provider_kwtsms.results import FAILED, SENT, Balance, BatchResult, SendPlan, SendResult

if TYPE_CHECKING:
    from airflow_provider_kwtsms.client import KwtSMSClient

__all__ = [
    "SMS_ADDRESS",
    "SUBMITTED_UNCONFIRMED",
    "KwtSMSSmtpSender",
    "SmtpBatchResult",
    "SmtpFieldError",
    "SmtpSendError",
    "SmtpSendResult",
    "email_body",
    "lang_for",
    "relay_settings",
]

SMS_ADDRESS = "sms@kwtsms.com"
SUBMITTED_UNCONFIRMED = "submitted_unconfirmed"  # the batch state shown in summaries
LANG_ENGLISH = "1"  # GSM-7 text
LANG_UTF8 = "3"  # "Arabic (UTF-8)": any text outside GSM-7, since the body is UTF-8
MAX_8BIT_LINE = 990  # RFC 5321 allows 998 octets a line; longer bodies go quoted-printable
MAX_REPLY_TEXT = 300  # characters of a relay's reply kept in an error, after scrubbing
UNCONFIRMED_NOTE = (
    "Sent by e-mail: kwtSMS answers nothing over e-mail, so there is no msg-id and no "
    "confirmation; a wrong e-mail is dropped in silence. Check the account's message "
    "log or the balance to confirm."
)

logger = logging.getLogger("airflow_provider_kwtsms.smtp_transport")

OnBatch = Callable[[BatchResult, int, int], None]
# What may not sit inside a value written on one line: every control character (U+0000-U+001F,
# U+007F-U+009F; they hold all of str.splitlines()'s breaks but two) and those two, U+2028 and
# U+2029. One character class: one linear scan.
_NOT_ON_A_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NOT_IN_TEXT = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")  # the text may hold a tab


class SmtpFieldError(KwtSMSInputError):
    """A value cannot be written on its one line of the e-mail, its header or its SMTP command.

    ``field`` names the value (``sender``, ``from_address``, ...). Raised before connecting, so
    nothing was sent. The message never shows a password's value.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field

    def __reduce__(self):  # keeps ``field`` through pickling (Airflow may pickle)
        return (type(self), (self.field, str(self)))


def check_one_line(field: str, value: str, hint: str, *, secret: bool = False, text: bool = False) -> str:
    """``value`` when it can be written on one line; else ``SmtpFieldError`` naming ``field``.

    ``hint`` says what to give instead. ``secret``: the value is never shown. ``text``: a tab
    is allowed (the message text may hold one).
    """
    if not isinstance(value, str):
        raise SmtpFieldError(field, f"{field} must be text (str), got {type(value).__name__}: {hint}")
    found = (_NOT_IN_TEXT if text else _NOT_ON_A_LINE).search(value)
    if found is None:
        return value
    char = found.group()
    kind = "a line break" if char.splitlines() != [char] else "a control character"
    shown = "" if secret else f" {value!r}"
    name = unicodedata.name(char, f"U+{ord(char):04X}")
    raise SmtpFieldError(
        field,
        f"{field}{shown} holds {kind} ({name}, U+{ord(char):04X}) at position {found.start()}, "
        f"which cannot go on the one line it is written on in the e-mail: {hint}",
    )


class SmtpSendError(KwtSMSError):
    """The relay refused the e-mail or could not be used: nothing was sent.

    Codes: ``SMTP_AUTH`` (relay login refused), ``SMTP_CONFIG`` (e.g. STARTTLS not offered),
    ``SMTP_REFUSED`` (5xx: sender or recipient address refused, message rejected) are permanent;
    ``SMTP_TEMPORARY`` (4xx) may pass on a retry.
    """

    PERMANENT = frozenset({"SMTP_AUTH", "SMTP_CONFIG", "SMTP_REFUSED"})

    def __init__(
        self,
        code: str,
        description: str | None = None,
        *,
        action: str | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(code, description, action=action or _ACTIONS.get(code), http_status=http_status)
        self.permanent = code in self.PERMANENT
        self.retryable = not self.permanent


_ACTIONS = {
    "SMTP_AUTH": "Fix the SMTP relay connection's login and password.",
    "SMTP_CONFIG": "Fix the SMTP relay settings (host, port, SSL / STARTTLS).",
    "SMTP_REFUSED": "Ask the relay's administrator to let this from-address send to sms@kwtsms.com.",
    "SMTP_TEMPORARY": "The relay is busy or limiting; retry later.",
}


@dataclass
class SmtpBatchResult(BatchResult):
    """A batch sent by e-mail: state "sent" means the relay took it, not that kwtSMS sent it."""

    confirmed: bool = False
    relay_reply_lost: bool = False  # the e-mail went out, the relay's reply did not come back

    def error(self) -> KwtSMSError | None:
        if self.error_code in _ACTIONS and self.may_have_reached_server is None:
            return SmtpSendError(self.error_code, self.error_description)  # keeps "permanent"
        return super().error()

    def summary(self) -> dict[str, Any]:
        out = super().summary()
        if self.state == SENT:
            out["state"] = SUBMITTED_UNCONFIRMED
        out.update(transport="smtp", confirmed=False, relay_reply_lost=self.relay_reply_lost)
        return out


@dataclass
class SmtpSendResult(SendResult):
    """As ``SendResult``; ``ok`` means every e-mail was handed to the relay, nothing more."""

    def to_dict(self, list_limit: int = 1000) -> dict[str, Any]:
        out = super().to_dict(list_limit)
        out.update(transport="smtp", confirmed=False, note=UNCONFIRMED_NOTE)
        return out


def lang_for(text: str) -> str:
    """The body's ``lang``: 1 (English) for GSM-7 text, else 3 (UTF-8, the body's charset)."""
    from airflow_provider_kwtsms.message import encoding_of

    return LANG_ENGLISH if encoding_of(text) == "GSM-7" else LANG_UTF8


def one_line(text: str) -> str:
    """Line breaks of every kind become one space, with the blanks around them: the text stays on one line.

    ``str.splitlines()`` is the definition of a line break here, and it is linear.
    """
    return " ".join(part for line in text.splitlines() if (part := line.strip()))


def email_body(
    *,
    username: str,
    password: str,
    sender: str,
    numbers: list[str],
    text: str,
    lang: str,
    spaces_as_plus: bool = False,
) -> str:
    """The e-mail body of the 2009 document: one ``name:value`` line per parameter.

    Spaces are kept as spaces by default, as in the document's sample body ("text:Meet me at
    starbuck!"); ``spaces_as_plus`` writes them as ``+`` as its parameter list says. The gateway
    reads ``+`` as a space either way, so both arrive the same.

    Every value is checked (``SmtpFieldError``): none may break its line. The text alone has its
    line breaks joined into spaces, so the body is always these six lines, the text last.
    """

    def value(v: str) -> str:
        return v.replace(" ", "+") if spaces_as_plus else v

    for number in numbers:
        if not (isinstance(number, str) and number.isascii() and number.isdigit()):
            raise SmtpFieldError(
                "mobile",
                f"mobile number {number!r} is not digits only: give numbers with their country code, "
                "digits only (e.g. 96598765432), or use send(), which normalises them",
            )
    text = one_line(text) if isinstance(text, str) else text
    lines = [
        f"username:{check_one_line('username', username, _HINTS['username'])}",
        f"password:{check_one_line('password', password, _HINTS['password'], secret=True)}",
        f"sender:{value(check_one_line('sender', sender, _HINTS['sender']))}",
        f"mobile:{','.join(numbers)}",
        f"lang:{check_one_line('lang', lang, 'give 1 (English) or 3 (UTF-8)')}",
        f"text:{value(check_one_line('text', text, _HINTS['text'], text=True))}",
    ]
    return "\r\n".join(lines) + "\r\n"


_HINTS = {
    "username": "give the API username as it is, on one line",
    "password": "give the API password as it is, on one line (no line break or control character)",
    "sender": "give the sender ID exactly as registered on the account, on one line",
    "text": "remove control characters from the text, or send it through send(), which cleans it",
    "smtp_host": "give the relay's host name",
    "from_address": "give one e-mail address on one line, e.g. alerts@example.com",
    "to_address": f"give one e-mail address on one line: kwtSMS's is {SMS_ADDRESS}",
    "smtp_login": "give the relay login on one line, in ASCII",
    "smtp_password": "give the relay password on one line, in ASCII (SMTP AUTH sends ASCII only)",
}


class KwtSMSSmtpSender:
    """Send SMS through kwtSMS's e-mail channel, with the ``KwtSMSClient`` sending interface.

    >>> sender = KwtSMSSmtpSender("api_user", "api_pass", smtp_host="relay.example.com",
    ...                           smtp_starttls=True, from_address="alerts@example.com")  # doctest: +SKIP
    >>> sender.send("96598765432", "Disk full").to_dict()["confirmed"]  # doctest: +SKIP
    False

    ``smtp_ssl`` connects with TLS from the start (port 465); ``smtp_starttls`` upgrades a plain
    connection (port 587). ``smtp_login``/``smtp_password`` log in to the relay when given.
    ``balance_over_http``: also use the JSON API at ``base_url`` (when reachable) to check the
    balance and the sender ID before sending, since the e-mail channel reports neither.
    """

    transport = "smtp"

    def __init__(
        self,
        username: str,
        password: str,
        *,
        smtp_host: str,
        smtp_port: int | None = None,
        smtp_ssl: bool = False,
        smtp_starttls: bool = False,
        smtp_login: str | None = None,
        smtp_password: str | None = None,
        from_address: str,
        to_address: str = SMS_ADDRESS,
        sender: str = "KWT-SMS",
        test_mode: bool = False,
        default_country: str | None = None,
        rate: float = DEFAULT_RATE,
        max_pages: int = 7,
        timeout: float = 30.0,
        max_retries: int = 3,
        same_number_wait: float = SAME_NUMBER_WAIT,
        balance_over_http: bool = False,
        base_url: str | None = None,
        spaces_as_plus: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        from airflow_provider_kwtsms.client import DEFAULT_BASE_URL, KwtSMSClient

        _require("smtp_host", smtp_host, "the SMTP relay's host name")
        _require("from_address", from_address, "the e-mail address the relay lets you send from")
        _require("to_address", to_address, f"kwtSMS's address, {SMS_ADDRESS}")
        if "@" not in from_address or "@" not in to_address:
            raise KwtSMSInputError(
                f"from_address and to_address must be e-mail addresses, got "
                f"{from_address!r} and {to_address!r}"
            )
        if test_mode:
            raise _no_test_mode()
        # Everything written on a line of the e-mail, a header or an SMTP command: refused now,
        # before any connection, rather than half-written to the relay.
        check_one_line("username", username, _HINTS["username"])
        check_one_line("password", password, _HINTS["password"], secret=True)
        check_one_line("sender", sender, _HINTS["sender"])
        check_one_line("smtp_host", smtp_host, _HINTS["smtp_host"])
        _check_address("from_address", from_address)
        _check_address("to_address", to_address)
        for name, secret, value in (
            ("smtp_login", False, smtp_login),
            ("smtp_password", True, smtp_password),
        ):
            if value:
                check_one_line(name, value, _HINTS[name], secret=secret)
                if not value.isascii():
                    raise SmtpFieldError(name, f"{name} holds a character outside ASCII: {_HINTS[name]}")
        if smtp_ssl and smtp_starttls:
            raise KwtSMSInputError(
                "give smtp_ssl (TLS from the start, port 465) or smtp_starttls (upgrade, port 587), not both"
            )
        if smtp_port is not None and not (isinstance(smtp_port, int) and 0 < smtp_port < 65536):
            raise KwtSMSInputError(f"smtp_port must be a port number 1-65535, got {smtp_port!r}")
        if timeout is None or timeout <= 0:
            raise KwtSMSInputError(f"timeout must be seconds > 0, got {timeout!r}")
        # The HTTP client plans the send (numbers, text, pages: no request) and, when allowed,
        # reads the balance and the sender IDs. Its constructor checks the shared arguments.
        self._http: KwtSMSClient = KwtSMSClient(
            username,
            password,
            base_url=base_url or DEFAULT_BASE_URL,
            sender=sender,
            default_country=default_country,
            rate=rate,
            max_pages=max_pages,
            timeout=(min(5.0, timeout), timeout),
            max_retries=max_retries,
            clock=clock,
            sleep=sleep,
        )
        self.username = username
        self._password = password
        self.smtp_host = smtp_host
        self.smtp_port = smtp_port or (465 if smtp_ssl else 587 if smtp_starttls else 25)
        self.smtp_ssl = smtp_ssl
        self.smtp_starttls = smtp_starttls
        self.smtp_login = smtp_login or None
        self._smtp_password = smtp_password
        self.from_address = from_address
        self.to_address = to_address
        self.sender = sender
        self.test_mode = False
        self.default_country = default_country
        self.rate = float(rate)
        self.max_pages = max_pages
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.same_number_wait = same_number_wait
        self.balance_over_http = balance_over_http
        self.spaces_as_plus = spaces_as_plus
        self.last_balance: float | None = None
        self._ssl_context = ssl_context
        self._clock = clock
        self._sleep = sleep
        self._rng = random.Random()
        self._bucket = TokenBucket(self.rate, clock=clock, sleep=sleep)
        self._last_sent: dict[str, float] = {}  # number -> clock time of its last e-mail
        self._smtp: smtplib.SMTP | None = None
        self._can_8bit = False
        self._redactors = _redactors(password, smtp_login, smtp_password)

    def __repr__(self) -> str:
        login = f", smtp_login={self.smtp_login!r}, smtp_password='***'" if self.smtp_login else ""
        return (
            f"KwtSMSSmtpSender(username={self.username!r}, password='***', relay="
            f"{self.smtp_host}:{self.smtp_port}{login}, from_address={self.from_address!r}, "
            f"to_address={self.to_address!r}, sender={self.sender!r}, rate={self.rate:g})"
        )

    __str__ = __repr__

    # -- life cycle -------------------------------------------------------------------------
    def close(self) -> None:
        self._disconnect()
        self._http.close()

    def __enter__(self) -> KwtSMSSmtpSender:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the account, over HTTP when allowed ------------------------------------------------
    def balance(self) -> Balance:
        """The balance over the JSON API when ``balance_over_http``; else unknown (NaN).

        NaN, not an error, so code that reads the balance as evidence (the resume ledger) finds
        it proves nothing, which is the truth for a channel whose e-mails are read later.
        """
        if not self.balance_over_http:
            return Balance(available=math.nan, purchased=None)
        result = self._http.balance()
        self.last_balance = result.available
        return result

    def sender_ids(self) -> list[str]:
        self._need_http("sender_ids")
        return self._http.sender_ids()

    def _need_http(self, what: str) -> None:
        if not self.balance_over_http:
            raise KwtSMSInputError(
                f"{what} needs the JSON API: set balance_over_http=True (and base_url) "
                "where the API is reachable; the e-mail channel has no such command"
            )

    def check_relay(self) -> str:
        """Open a session with the relay (TLS and login as configured), then close it.

        Says nothing about the kwtSMS credentials: the e-mail channel never answers.
        Raises ``SmtpSendError`` or ``KwtSMSNetworkError`` naming what failed.
        """
        try:
            smtp = self._connect()
            code, _ = smtp.noop()
        finally:
            self._disconnect()
        login = f" as {self.smtp_login}" if self.smtp_login else ""
        tls = " over TLS" if self.smtp_ssl else " with STARTTLS" if self.smtp_starttls else ""
        return f"SMTP relay {self.smtp_host}:{self.smtp_port} took a session{tls}{login} (NOOP {code})"

    # -- sending ----------------------------------------------------------------------------
    def plan_send(
        self,
        mobile: Any,
        message: str,
        *,
        sender: str | None = None,
        test: bool | None = None,
        default_country: str | None = None,
        strict: bool = False,
    ) -> SendPlan:
        """As ``KwtSMSClient.plan_send``, with the text on one line (the e-mail needs it so).

        Raises ``KwtSMSInputError`` for ``test=True``: the e-mail channel has no test mode.
        """
        from airflow_provider_kwtsms.message import clean_message

        if test:
            raise _no_test_mode()
        if not isinstance(message, str):
            raise KwtSMSInputError(f"message must be text (str), got {type(message).__name__}")
        text = one_line(clean_message(message))
        plan = self._http.plan_send(
            mobile, text, sender=sender, test=False, default_country=default_country, strict=strict
        )
        check_one_line("sender", plan.sender, _HINTS["sender"])
        if "+" in plan.message:
            logger.warning(
                "kwtSMS by e-mail: the text holds '+', which kwtSMS reads as a space in an "
                "e-mail; write 'plus' or leave it out if it matters"
            )
        return plan

    def send(
        self,
        mobile: Any,
        message: str,
        *,
        sender: str | None = None,
        test: bool | None = None,
        default_country: str | None = None,
        strict: bool = False,
        max_credits: int | None = None,
        dry_run: bool = False,
        on_batch: OnBatch | None = None,
    ) -> SmtpSendResult:
        """Send ``message`` by e-mail, 200 numbers an e-mail, paced at ``rate``.

        Raises before any e-mail when the plan is impossible, above ``max_credits``, or (with
        ``balance_over_http``) the API says the balance is too low or the sender is unknown.
        Relay failures are in the result (``raise_for_status()``), as with ``KwtSMSClient.send``.
        """
        plan = self.plan_send(
            mobile, message, sender=sender, test=test, default_country=default_country, strict=strict
        )
        planning.check_credits(plan, max_credits)
        if dry_run:
            return SmtpSendResult(plan=plan, batches=[], dry_run=True)
        self.preflight(plan)
        return self.send_plan(plan, on_batch=on_batch)

    def preflight(self, plan: SendPlan) -> None:
        """With ``balance_over_http``: refuse a send the gateway would drop for balance or sender.

        An unreachable API is only a warning: that is the very case this channel is for.
        """
        if not self.balance_over_http:
            return
        try:
            balance = self._http.balance()
            senders = self._http.sender_ids()
        except KwtSMSNetworkError as exc:
            logger.warning(
                "kwtSMS by e-mail: the JSON API is not reachable (%s), so the balance and the "
                "sender ID are not checked before sending",
                exc.code,
            )
            return
        self.last_balance = balance.available
        if plan.sender not in senders:
            raise KwtSMSError(
                "ERR008",
                f"Sender ID {plan.sender!r} is not registered on the account "
                f"(registered: {', '.join(senders) or 'none'}); kwtSMS would drop "
                "the e-mail without a word.",
            )
        if balance.available < plan.estimate:
            code = "ERR010" if balance.available <= 0 else "ERR011"
            raise KwtSMSError(
                code,
                f"The send needs {plan.estimate} credits and the balance is "
                f"{balance.available:g}; kwtSMS would drop the e-mail without a word.",
            )

    def send_plan(self, plan: SendPlan, *, on_batch: OnBatch | None = None) -> SmtpSendResult:
        """Send every batch of ``plan``; the first failure stops the rest (``attempted=False``)."""
        total = len(plan.batches)
        results: list[BatchResult] = []
        stop: BatchResult | None = None
        try:
            for index, numbers in enumerate(plan.batches):
                if stop is not None:
                    batch: BatchResult = SmtpBatchResult(
                        index=index,
                        numbers=list(numbers),
                        state=FAILED,
                        error_code=stop.error_code,
                        error_description=f"Not attempted: e-mail {stop.index + 1} failed with "
                        f"{stop.error_code}.",
                        attempted=False,
                    )
                else:
                    batch = self._attempt(plan, index, numbers)
                    if batch.state == FAILED:
                        stop = batch
                results.append(batch)
                _log_batch(batch, len(results), total)
                if on_batch is not None:
                    on_batch(batch, len(results), total)
        finally:
            self._disconnect()
        return SmtpSendResult(plan=plan, batches=results, dry_run=False)

    def _attempt(self, plan: SendPlan, index: int, numbers: list[str]) -> BatchResult:
        try:
            return self.send_batch(numbers, plan.message, sender=plan.sender, test=plan.test, index=index)
        except KwtSMSError as exc:
            return SmtpBatchResult(
                index=index,
                numbers=list(numbers),
                state=FAILED,
                error_code=exc.code,
                error_description=exc.description,
                may_have_reached_server=getattr(exc, "may_have_reached_server", None),
            )

    def send_batch(
        self,
        numbers: list[str],
        message: str,
        *,
        sender: str,
        test: bool,
        index: int = 0,
        wait_same_number: bool = True,
    ) -> SmtpBatchResult:
        """One e-mail for at most 200 normalised numbers, paced by the token bucket.

        Returns state "sent" (shown as ``submitted_unconfirmed``) once the relay took it, also
        when its reply was lost after the body went out (``relay_reply_lost``: never resent).
        Raises ``SmtpSendError`` when the relay refused it and ``KwtSMSNetworkError``
        (``may_have_reached_server=False``) when the relay stayed unreachable: nothing was sent.
        """
        if test:
            raise _no_test_mode()
        if not numbers or len(numbers) > MAX_BATCH:
            raise KwtSMSInputError(f"a batch holds 1 to {MAX_BATCH} numbers, got {len(numbers)}")
        # The addresses are public attributes: checked again, before the wait and the connection.
        _check_address("from_address", self.from_address)
        _check_address("to_address", self.to_address)
        if not isinstance(message, str):
            raise KwtSMSInputError(f"message must be text (str), got {type(message).__name__}")
        text = one_line(message)  # the lang is the joined text's, as the gateway will read it
        lang = lang_for(text)
        body = email_body(
            username=self.username,
            password=self._password,
            sender=sender,
            numbers=numbers,
            text=text,
            lang=lang,
            spaces_as_plus=self.spaces_as_plus,
        )
        self._wait_same_numbers(numbers, wait_same_number)
        tries = 0
        while True:
            self._bucket.acquire()
            try:
                lost = self._deliver(body)
                break
            except KwtSMSError as exc:
                certain = not getattr(exc, "may_have_reached_server", False)
                if not (certain and exc.retryable) or tries >= self.max_retries:
                    raise
                delay = self._rng.uniform(0, min(10.0, 0.5 * 2**tries))
                logger.warning(
                    "kwtSMS by e-mail: %s; retry %d/%d in %.2f s",
                    exc.code,
                    tries + 1,
                    self.max_retries,
                    delay,
                )
                self._sleep(delay)
                tries += 1
        now = self._clock()
        for number in numbers:
            self._last_sent[number] = now
        return SmtpBatchResult(
            index=index,
            numbers=list(numbers),
            state=SENT,
            relay_reply_lost=lost,
            error_description="The relay's reply was lost after the e-mail went out; it is not sent again."
            if lost
            else None,
        )

    # -- internals --------------------------------------------------------------------------
    def _wait_same_numbers(self, numbers: list[str], wait: bool) -> None:
        """kwtSMS drops a send to a number within 15 s of the last one, and by e-mail says nothing."""
        if not self._last_sent or self.same_number_wait <= 0:
            return
        latest = max((self._last_sent.get(n, -math.inf) for n in numbers), default=-math.inf)
        remaining = latest + self.same_number_wait - self._clock()
        if remaining <= 0:
            return
        if not wait:
            raise KwtSMSError(
                "ERR028",
                f"A number of this batch had an e-mail {self.same_number_wait:g} s "
                "ago or less; kwtSMS would drop this one without a word.",
            )
        logger.info("kwtSMS by e-mail: waiting %.1f s (same number within 15 s)", remaining)
        self._sleep(remaining)

    def _message(self, body: str) -> bytes:
        msg = EmailMessage()
        msg["From"] = self.from_address
        msg["To"] = self.to_address
        msg["Subject"] = "SMS"  # kwtSMS ignores the subject
        msg["Date"] = formatdate(localtime=True)
        msg["Message-ID"] = make_msgid(domain=self.from_address.rpartition("@")[2] or None)
        longest = max(len(line.encode("utf-8")) for line in body.splitlines())
        if body.isascii() and longest <= MAX_8BIT_LINE:
            cte = "7bit"
        elif self._can_8bit and longest <= MAX_8BIT_LINE:
            cte = "8bit"  # the value stays byte for byte on its line: the simplest for any reader
        else:
            cte = "quoted-printable"
        msg.set_content(body, subtype="plain", charset="utf-8", cte=cte)
        # CRLF line ends, as SMTP requires: smtplib sends bytes as given, and bare LFs are what
        # strict relays refuse (and what SMTP smuggling plays on).
        return msg.as_bytes(policy=email.policy.SMTP)

    def _connect(self) -> smtplib.SMTP:
        if self._smtp is not None:
            return self._smtp
        where = f"{self.smtp_host}:{self.smtp_port}"
        smtp: smtplib.SMTP | None = None
        error: KwtSMSError | None = None
        # Each error is raised after the except block, so it chains no smtplib exception (whose
        # text is the relay's, unscrubbed) as its __context__.
        try:
            if self.smtp_ssl:
                context = self._ssl_context or ssl.create_default_context()
                smtp = smtplib.SMTP_SSL(self.smtp_host, self.smtp_port, timeout=self.timeout, context=context)
            else:
                smtp = smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=self.timeout)
            smtp.ehlo_or_helo_if_needed()
            if self.smtp_starttls:
                smtp.starttls(context=self._ssl_context or ssl.create_default_context())
                smtp.ehlo()
            if self.smtp_login:
                smtp.login(self.smtp_login, self._smtp_password or "")
        except smtplib.SMTPAuthenticationError as exc:
            error = SmtpSendError(
                "SMTP_AUTH", f"The relay {where} refused the login {self.smtp_login!r}: {self._reply(exc)}"
            )
        except smtplib.SMTPNotSupportedError as exc:
            error = SmtpSendError(
                "SMTP_CONFIG",
                f"The relay {where} does not offer what was asked (STARTTLS or AUTH): {self._scrub(exc)}",
            )
        except ssl.SSLError as exc:
            error = SmtpSendError("SMTP_CONFIG", f"TLS with the relay {where} failed: {self._scrub(exc)}")
        except smtplib.SMTPResponseException as exc:
            error = self._refused(exc, f"The relay {where} refused the session")
        except (smtplib.SMTPException, OSError) as exc:
            error = KwtSMSNetworkError(
                f"Cannot reach the SMTP relay {where}: {type(exc).__name__}: {self._scrub(exc)}",
                may_have_reached_server=False,
                code="SMTP_NETWORK",
            )
        if error is not None:
            if smtp is not None:
                smtp.close()
            raise error
        assert smtp is not None
        self._can_8bit = smtp.has_extn("8bitmime")
        self._smtp = smtp
        return smtp

    def _disconnect(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()

    def _deliver(self, body: str) -> bool:
        """Hand one e-mail to the relay; True when its reply to the body was lost."""
        for fresh in (False, True):
            reused = self._smtp is not None
            smtp = self._connect()
            data = self._message(body)
            options = ["BODY=8BITMIME"] if self._can_8bit and not data.isascii() else []
            lost: str | None = None
            try:
                code, reply = smtp.mail(self.from_address, options)
                if code != 250:
                    raise self._refused(
                        smtplib.SMTPSenderRefused(code, reply, self.from_address),
                        f"The relay refused the from-address {self.from_address!r}",
                    )
                code, reply = smtp.rcpt(self.to_address)
                if code not in (250, 251):
                    smtp.rset()
                    raise self._refused(
                        smtplib.SMTPRecipientsRefused({self.to_address: (code, reply)}),
                        f"The relay refused the recipient {self.to_address!r}",
                    )
            except (smtplib.SMTPServerDisconnected, OSError) as exc:
                lost = type(exc).__name__
            if lost is not None:
                self._drop()
                if reused and not fresh:
                    continue  # an idle connection the relay closed: open a new one, nothing was sent
                raise KwtSMSNetworkError(
                    f"The SMTP relay closed the connection before the e-mail: {lost}",
                    may_have_reached_server=False,
                    code="SMTP_NETWORK",
                )
            refused: SmtpSendError | None = None
            try:
                code, reply = smtp.data(data)
            except smtplib.SMTPResponseException as exc:
                refused = self._refused(exc, "The relay refused the e-mail")
            except (smtplib.SMTPException, OSError):
                self._drop()
                return True  # the body may have gone out: at most once, so not sent again
            if refused is not None:
                raise refused
            if code != 250:
                raise self._refused(smtplib.SMTPDataError(code, reply), "The relay refused the e-mail")
            return False
        raise AssertionError("unreachable")

    # -- what the relay says, without the secrets it may quote ------------------------------
    def _scrub(self, text: object) -> str:
        """The relay's text (or an exception's) without either password, on one line, then cut."""
        out = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        for redactor in self._redactors:
            out = redactor.scrub(out)
        # A multi-line reply, or one holding control characters, must not forge log lines.
        out = " ".join(_NOT_ON_A_LINE.sub(" ", out).split())
        return out if len(out) <= MAX_REPLY_TEXT else out[: MAX_REPLY_TEXT - 1] + "…"

    def _reply(self, exc: smtplib.SMTPResponseException) -> str:
        return f"{exc.smtp_code} {self._scrub(exc.smtp_error)}".strip()

    def _refused(self, exc: smtplib.SMTPException, what: str) -> SmtpSendError:
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            code, reply = next(iter(exc.recipients.values()))
        elif isinstance(exc, smtplib.SMTPResponseException):
            code, reply = exc.smtp_code, exc.smtp_error
        else:
            code, reply = 0, str(exc)
        kind = "SMTP_TEMPORARY" if 400 <= code < 500 else "SMTP_REFUSED"
        return SmtpSendError(kind, f"{what}: {code} {self._scrub(reply)}".strip())

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()


def relay_settings(conn: Any, *, from_address: str | None = None) -> dict[str, Any]:
    """``KwtSMSSmtpSender`` relay arguments from an SMTP connection, read as Airflow's SMTP provider does.

    ``conn`` is anything with ``conn_id``, ``host``, ``port``, ``login``, ``password`` and
    ``extra_dejson`` (an Airflow ``Connection``; no Airflow import here). As in the SMTP provider,
    SSL is on unless the extra ``disable_ssl`` is true, then STARTTLS unless ``disable_tls`` is
    true; ``from_email`` and ``timeout`` come from the extras. ``from_address`` wins over
    ``from_email``.
    """
    where = f"SMTP connection {getattr(conn, 'conn_id', None) or 'smtp'!r}"
    extras = getattr(conn, "extra_dejson", None) or {}
    if not getattr(conn, "host", None):
        raise KwtSMSInputError(f"{where} has no host: set it to the SMTP relay's host name.")
    ssl_on = not _flag(extras.get("disable_ssl", False), f"{where} extra 'disable_ssl'")
    starttls = not ssl_on and not _flag(extras.get("disable_tls", False), f"{where} extra 'disable_tls'")
    sender_address = from_address or extras.get("from_email")
    if not sender_address:
        raise KwtSMSInputError(
            f"{where} has no extra 'from_email', and no smtp_from is set on the kwtSMS "
            "connection: give the address the relay lets you send from."
        )
    timeout = extras.get("timeout", 30)
    try:
        timeout = float(timeout)
    except (TypeError, ValueError):
        raise KwtSMSInputError(f"{where} extra 'timeout' is {timeout!r}: give seconds, e.g. 30.") from None
    return {
        "smtp_host": conn.host,
        "smtp_port": int(conn.port) if getattr(conn, "port", None) else None,
        "smtp_ssl": ssl_on,
        "smtp_starttls": starttls,
        "smtp_login": getattr(conn, "login", None) or None,
        "smtp_password": getattr(conn, "password", None) or None,
        "from_address": str(sender_address),
        "timeout": timeout,
    }


def _flag(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", ""):
        return False
    raise KwtSMSInputError(f"{what} is {value!r}: give true or false.")


def _no_test_mode() -> KwtSMSInputError:
    return KwtSMSInputError(
        "the e-mail channel has no test mode: every e-mail to sms@kwtsms.com is a live send. Turn "
        "test_mode off for this connection, or use the HTTP transport (transport='http') to test"
    )


def _check_address(field: str, address: str) -> None:
    """An address goes into a header and into MAIL FROM / RCPT TO, which smtplib sends in ASCII."""
    check_one_line(field, address, _HINTS[field])
    if not smtplib.quoteaddr(address).isascii():
        raise SmtpFieldError(
            field,
            f"{field} {address!r} has an address outside ASCII, which SMTP sends only with SMTPUTF8 "
            f"(not used here): {_HINTS[field]}",
        )


def _redactors(password: str, smtp_login: str | None, smtp_password: str | None) -> tuple[Redactor, ...]:
    """What scrubs a relay's reply: both passwords, and the forms this sender puts them on the wire in.

    Besides ``redact``'s forms (raw, JSON, URL, HTML): the API password quoted-printable, as a
    body that must be so encoded carries it, and the relay password in base64, as AUTH PLAIN and
    AUTH LOGIN send it (a relay may quote what it was sent).
    """
    secrets = [password, quoprimime.body_encode(password.encode("utf-8").decode("latin-1"))]
    if smtp_password:
        secrets.append(smtp_password)
        wire = [smtp_password, f"\0{smtp_login or ''}\0{smtp_password}"]
        secrets += [base64.b64encode(s.encode("utf-8")).decode("ascii") for s in wire]
    return tuple(Redactor(secret) for secret in dict.fromkeys(secrets) if secret)


def _require(name: str, value: object, hint: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise KwtSMSInputError(f"{name} must be a non-empty string ({hint}), got {value!r}")


def _log_batch(batch: BatchResult, done: int, total: int) -> None:
    # One line per e-mail; never the body (it holds the API password), the numbers or the text.
    if batch.state == SENT:
        lost = " (the relay's reply was lost)" if getattr(batch, "relay_reply_lost", False) else ""
        logger.info(
            "kwtSMS e-mail %d/%d (#%d): %d numbers handed to the relay%s; unconfirmed: kwtSMS "
            "answers nothing by e-mail",
            done,
            total,
            batch.index + 1,
            len(batch.numbers),
            lost,
        )
    else:
        logger.warning(
            "kwtSMS e-mail %d/%d (#%d): NOT sent, %d numbers, %s: %s",
            done,
            total,
            batch.index + 1,
            len(batch.numbers),
            batch.error_code,
            batch.error_description,
        )
