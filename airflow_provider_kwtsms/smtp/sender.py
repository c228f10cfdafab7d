"""Send SMS by e-mail: the 2009 document's SMTP channel, through any SMTP relay.

Some networks let only e-mail out, through a corporate relay. kwtSMS reads a plain-text e-mail
to ``sms@kwtsms.com`` whose body holds ``username:``, ``password:``, ``sender:``, ``mobile:``,
``lang:`` and ``text:`` lines (``smtp_email``). It sends **no answer and no error**: a wrong
e-mail (bad password, unknown sender, no balance, uncovered country, HTML) is dropped in
silence. So this sender:

- checks what it can before sending (numbers, text, pages, credits; and, when
  ``balance_over_http`` is on and the API is reachable, the balance, the sender ID and the
  account's coverage);
- reports every batch as ``submitted_unconfirmed`` (no msg-id; ``"confirmed": False``);
- delivers at most once: an e-mail whose relay reply was lost is never sent again (it is
  reported with ``relay_reply_lost``), since no answer will ever tell whether it went out;
- answers for the gateway where the gateway cannot: a batch to a number e-mailed within the
  15 s rule is refused here with ERR028 (kwtSMS would drop it in silence), and the batch loop
  waits it out as it does the gateway's ERR028;
- delivers each batch once (``deliver``) and leaves every wait and retry to the engine
  (``send.engine``, ``send.batch_loop``), under the same policy and stop policy as the HTTP client.

The API password travels in the e-mail body: that is the document's design, not a choice made
here. The body is never logged, ``repr`` masks both passwords, and the relay's replies are
scrubbed of them (``smtp_relay``). No Airflow import here.
"""

from __future__ import annotations

import logging
import math
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from airflow_provider_kwtsms.coerce import as_text
from airflow_provider_kwtsms.constants import (
    DEFAULT_MAX_PAGES,
    DEFAULT_RATE,
    DEFAULT_SENDER,
    MAX_BATCH,
    MAX_MOBILE_CHARS,
    SAME_NUMBER_WAIT,
    SMS_ADDRESS,
)
from airflow_provider_kwtsms.errors import KwtSMSError, KwtSMSInputError, KwtSMSNetworkError
from airflow_provider_kwtsms.gateway.field_limits import check_field
from airflow_provider_kwtsms.gateway.retry_policy import RetryPolicy
from airflow_provider_kwtsms.rate.bucket import Pacer
from airflow_provider_kwtsms.rate.machine import default_pacer
from airflow_provider_kwtsms.send.channel import Channel
from airflow_provider_kwtsms.send.engine import SAME_NUMBER, Batch
from airflow_provider_kwtsms.send.results import SENT, Balance, SendPlan
from airflow_provider_kwtsms.smtp.body import (
    HINTS,
    SmtpFieldError,
    check_address,
    check_fields,
    check_one_line,
    email_body,
    lang_for,
    one_line,
)
from airflow_provider_kwtsms.smtp.relay import (
    SmtpRelay,
    SmtpSendError,
    relay_redactors,
)
from airflow_provider_kwtsms.smtp.results import (
    SUBMITTED_UNCONFIRMED,
    UNCONFIRMED_NOTE,
    SmtpBatchResult,
    SmtpSendResult,
)

if TYPE_CHECKING:
    from airflow_provider_kwtsms.gateway.client import KwtSMSClient

__all__ = [
    "SMS_ADDRESS",
    "SUBMITTED_UNCONFIRMED",
    "UNCONFIRMED_NOTE",
    "KwtSMSSmtpSender",
    "SmtpBatchResult",
    "SmtpFieldError",
    "SmtpSendError",
    "SmtpSendResult",
    "email_body",
    "lang_for",
]

logger = logging.getLogger("airflow_provider_kwtsms.smtp.sender")


class KwtSMSSmtpSender(Channel):
    """Send SMS through kwtSMS's e-mail channel, with the ``KwtSMSClient`` sending interface.

    >>> sender = KwtSMSSmtpSender("api_user", "api_pass", smtp_host="relay.example.com",
    ...                           smtp_starttls=True, from_address="alerts@example.com")  # doctest: +SKIP
    >>> sender.send("96598765432", "Disk full").to_dict()["confirmed"]  # doctest: +SKIP
    False

    :param username: the kwtSMS API username (a line of each e-mail).
    :param password: the kwtSMS API password; never in a log line or repr.
    :param smtp_host: the SMTP relay.
    :param smtp_port: the relay's port; default: 465 with ``smtp_ssl``, 587 with
        ``smtp_starttls``, else 25.
    :param smtp_ssl: connect with TLS from the start (port 465).
    :param smtp_starttls: upgrade a plain connection with STARTTLS (port 587); not with
        ``smtp_ssl``.
    :param smtp_login: the relay's login, when it needs one.
    :param smtp_password: the relay's password, with ``smtp_login``.
    :param from_address: the envelope and header sender the relay lets you send from.
    :param to_address: kwtSMS's address.
    :param sender: the default sender ID, as ``KwtSMSClient``.
    :param test_mode: must stay ``False``: the e-mail channel has no test mode (every e-mail is a
        live send), so ``True`` is refused with KwtSMSInputError.
    :param default_country: calling code added to local numbers, as ``KwtSMSClient``.
    :param rate: e-mails a second, at most 5, shared by every process of this machine that
        e-mails ``to_address`` through this relay (``machine_rate``) unless ``clock``/``sleep``
        (tests) or ``pacer`` is given.
    :param max_pages: the longest message allowed, in pages, as ``KwtSMSClient``.
    :param timeout: seconds for each exchange with the relay.
    :param max_retries: retries when the relay is unreachable or answers 4xx (nothing was sent),
        by the same engine and back-off as the HTTP client.
    :param same_number_wait: seconds before e-mailing a number again (kwtSMS would drop it within
        15 s): such a batch is refused with ERR028 here and goes again after the others, up to 3
        times, as over HTTP.
    :param balance_over_http: also use the JSON API at ``base_url`` (when reachable) to check the
        balance, the sender ID and the coverage before sending, since the e-mail channel reports
        none of them.
    :param base_url: the JSON API for ``balance_over_http``; default: kwtsms.com.
    :param spaces_as_plus: write spaces as ``+`` (docs/smtp.md says why).
    :param smart_encoding: send look-alike characters as GSM-7 when every non-GSM-7 character has
        a faithful form.
    :param ssl_context: the TLS context for ``smtp_ssl``/``smtp_starttls``; default: the
        system's, verifying the relay's certificate.
    :param clock: the clock (real by default; tests inject one).
    :param sleep: the sleep (real by default; tests inject one).
    :param pacer: paces the e-mails instead of the machine-wide bucket.
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
        sender: str = DEFAULT_SENDER,
        test_mode: bool = False,
        default_country: str | None = None,
        rate: float = DEFAULT_RATE,
        max_pages: int = DEFAULT_MAX_PAGES,
        timeout: float = 30.0,
        max_retries: int = 3,
        same_number_wait: float = SAME_NUMBER_WAIT,
        balance_over_http: bool = False,
        base_url: str | None = None,
        spaces_as_plus: bool = False,
        smart_encoding: bool = True,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        pacer: Pacer | None = None,
    ) -> None:
        as_text(smtp_host, "smtp_host", "the SMTP relay's host name")
        as_text(from_address, "from_address", "the e-mail address the relay lets you send from")
        as_text(to_address, "to_address", f"kwtSMS's address, {SMS_ADDRESS}")
        if "@" not in from_address or "@" not in to_address:
            raise KwtSMSInputError(
                f"from_address and to_address must be e-mail addresses, got "
                f"{from_address!r} and {to_address!r}"
            )
        if test_mode:
            raise _no_test_mode()
        for name, value in (("username", username), ("password", password)):
            as_text(value, name, f"the API {name} of the account")
        # Everything written on a line of the e-mail, a header or an SMTP command: refused now,
        # before any connection, rather than half-written to the relay.
        check_fields(
            username=username,
            password=password,
            sender=sender,
            smtp_host=smtp_host,
            from_address=from_address,
            to_address=to_address,
            smtp_login=smtp_login,
            smtp_password=smtp_password,
        )
        for name, value in (("username", username), ("password", password), ("sender", sender)):
            check_field(name, value)  # the documented sizes (v4.1); a wrong e-mail is dropped silently
        if smtp_ssl and smtp_starttls:
            raise KwtSMSInputError(
                "give smtp_ssl (TLS from the start, port 465) or smtp_starttls (upgrade, port 587), not both"
            )
        if smtp_port is not None and not (isinstance(smtp_port, int) and 0 < smtp_port < 65536):
            raise KwtSMSInputError(f"smtp_port must be a port number 1-65535, got {smtp_port!r}")
        if timeout is None or timeout <= 0:
            raise KwtSMSInputError(f"timeout must be seconds > 0, got {timeout!r}")
        self._take_settings(
            rate=rate,
            max_pages=max_pages,
            max_retries=max_retries,
            policy=RetryPolicy(same_number_wait=same_number_wait),
        )
        # Planning is pure (``planning.build_plan``); the JSON API is used only when allowed, to
        # read the balance, the sender IDs and the coverage before sending.
        self._http: KwtSMSClient | None = None
        if balance_over_http:
            from airflow_provider_kwtsms.gateway.client import DEFAULT_BASE_URL, KwtSMSClient

            self._http = KwtSMSClient(
                username,
                password,
                base_url=base_url or DEFAULT_BASE_URL,
                sender=sender,
                rate=self.rate,
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
        self.from_address = from_address
        self.to_address = to_address
        self.sender = sender
        self.test_mode = False
        self.default_country = default_country
        self.smart_encoding = bool(smart_encoding)
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.balance_over_http = balance_over_http
        self.spaces_as_plus = spaces_as_plus
        self.last_balance: float | None = None
        self._clock = clock
        self._sleep = sleep
        # E-mails through one relay to one address are paced machine-wide, as the client paces
        # its gateway.
        target = f"smtp://{self.smtp_host.lower()}:{self.smtp_port}/{to_address.strip().lower()}"
        self._bucket: Pacer = pacer or default_pacer(target, self.rate, clock=clock, sleep=sleep)
        self._last_sent: dict[str, float] = {}  # number -> clock time of its last e-mail
        self._relay = SmtpRelay(
            self.smtp_host,
            self.smtp_port,
            use_ssl=smtp_ssl,
            starttls=smtp_starttls,
            login=self.smtp_login,
            password=smtp_password,
            timeout=self.timeout,
            ssl_context=ssl_context,
            redactors=relay_redactors(password, smtp_login, smtp_password),
        )

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
        self._relay.disconnect()
        if self._http is not None:
            self._http.close()

    # -- the account, over HTTP when allowed ------------------------------------------------
    def balance(self) -> Balance:
        """The balance over the JSON API when ``balance_over_http``; else unknown (NaN).

        NaN, not an error, so code that reads the balance as evidence (the resume ledger) finds
        it proves nothing, which is the truth for a channel whose e-mails are read later.
        """
        if self._http is None:
            return Balance(available=math.nan, purchased=None)
        result = self._http.balance()
        self.last_balance = result.available
        return result

    def sender_ids(self) -> list[str]:
        if self._http is None:
            raise KwtSMSInputError(
                "sender_ids needs the JSON API: set balance_over_http=True (and base_url) "
                "where the API is reachable; the e-mail channel has no such command"
            )
        return self._http.sender_ids()

    def covered_prefixes(self, *, read: bool = True, fresh: bool = False) -> frozenset[str] | None:
        """The account's coverage over the JSON API when ``balance_over_http``; else unknown.

        Read whenever it is not known (``read`` ignored): an e-mail gets no answer, so no ERR026
        would ever tell the send that a country is not covered."""
        return None if self._http is None else self._http.covered_prefixes(read=True, fresh=fresh)

    # -- what the send loop needs (channel.Channel, abstract there) ----------------------------------
    result_type = SmtpBatchResult

    @property
    def request_seconds(self) -> float:
        return 4 * self.timeout  # connect, TLS, login, the message: each bounded by ``timeout``

    def now(self) -> float:
        return self._clock()

    def pause(self, seconds: float) -> None:
        self._sleep(seconds)

    def pace(self) -> None:
        self._bucket.acquire()

    def hold(self, seconds: float) -> None:
        self._bucket.pause(seconds)

    def check_relay(self) -> str:
        """Open a session with the relay (TLS and login as configured), then close it.

        Says nothing about the kwtSMS credentials: the e-mail channel never answers.
        Raises ``SmtpSendError`` or ``KwtSMSNetworkError`` naming what failed.
        """
        return self._relay.check()

    # -- sending (plan_send, send, send_plan: channel.Channel; the e-mail's own steps here) --
    send_result_type = SmtpSendResult

    def _text_to_plan(self, message: str, *, test: bool) -> str:
        """The text on one line (the e-mail needs it so); ``test=True`` refused: no test mode here."""
        from airflow_provider_kwtsms.text.message import clean_message

        if test:
            raise _no_test_mode()
        if not isinstance(message, str):
            raise KwtSMSInputError(f"message must be text (str), got {type(message).__name__}")
        return one_line(clean_message(message))

    def _check_plan(self, plan: SendPlan) -> None:
        check_one_line("sender", plan.sender, HINTS["sender"])
        if any("+" in text for text in plan.texts()):
            logger.warning(
                "kwtSMS by e-mail: the text holds '+', which kwtSMS reads as a space in an "
                "e-mail; write 'plus' or leave it out if it matters"
            )

    def preflight(self, plan: SendPlan) -> None:
        """With ``balance_over_http``: refuse a send the gateway would drop for balance or sender.

        An unreachable API is only a warning: that is the very case this channel is for.
        """
        if self._http is None:
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

    def _after_send(self) -> None:
        self._relay.disconnect()  # leave the relay: the next send opens a session again

    def deliver(self, batch: Batch) -> SmtpBatchResult:
        """One e-mail for at most 200 normalised numbers, once, right now (the engine has taken its
        turn and called the ledger's guard).

        Returns state "sent" (shown as ``submitted_unconfirmed``) once the relay took it, also
        when its reply was lost after the body went out (``relay_reply_lost``: never resent).
        Raises ``KwtSMSError`` ERR028 when a number of the batch had an e-mail within
        ``same_number_wait`` (kwtSMS would drop it in silence), ``SmtpSendError`` when the relay
        refused it and ``KwtSMSNetworkError`` (``may_have_reached_server=False``) when the relay
        could not be reached: nothing was sent.
        """
        numbers = batch.numbers
        if batch.test:
            raise _no_test_mode()
        if (
            not numbers
            or len(numbers) > MAX_BATCH
            or sum(map(len, numbers)) + len(numbers) - 1 > MAX_MOBILE_CHARS
        ):
            raise KwtSMSInputError(
                f"a batch holds 1 to {MAX_BATCH} numbers and at most {MAX_MOBILE_CHARS} characters on "
                f"the mobile: line, got {len(numbers)} numbers: cut it with planning.split_batches"
            )
        check_field("sender", batch.sender)
        # The addresses are public attributes: checked again, before the connection.
        check_address("from_address", self.from_address)
        check_address("to_address", self.to_address)
        if not isinstance(batch.message, str):
            raise KwtSMSInputError(f"message must be text (str), got {type(batch.message).__name__}")
        text = one_line(batch.message)  # the lang is the joined text's, as the gateway will read it
        body = email_body(
            username=self.username,
            password=self._password,
            sender=batch.sender,
            numbers=numbers,
            text=text,
            lang=lang_for(text),
            spaces_as_plus=self.spaces_as_plus,
        )
        self._refuse_same_numbers(numbers)
        lost = self._relay.deliver(body, self.from_address, self.to_address)
        now = self._clock()
        for number in numbers:
            self._last_sent[number] = now
        return SmtpBatchResult(
            index=batch.index,
            numbers=list(numbers),
            state=SENT,
            relay_reply_lost=lost,
            error_description="The relay's reply was lost after the e-mail went out; it is not sent again."
            if lost
            else None,
        )

    # -- internals --------------------------------------------------------------------------
    def _refuse_same_numbers(self, numbers: list[str]) -> None:
        """kwtSMS drops a send to a number within 15 s of the last one, and by e-mail says nothing:
        ERR028 here, as the gateway would answer over HTTP (the engine waits it out)."""
        wait = self.policy.same_number_wait
        if not self._last_sent or wait <= 0:
            return
        latest = max((self._last_sent.get(n, -math.inf) for n in numbers), default=-math.inf)
        if latest + wait - self._clock() > 0:
            raise KwtSMSError(
                SAME_NUMBER,
                f"A number of this batch had an e-mail {wait:g} s ago or less; kwtSMS would drop "
                "this one without a word.",
            )


def _no_test_mode() -> KwtSMSInputError:
    return KwtSMSInputError(
        "the e-mail channel has no test mode: every e-mail to sms@kwtsms.com is a live send. Turn "
        "test_mode off for this connection, or use the HTTP transport (transport='http') to test"
    )
