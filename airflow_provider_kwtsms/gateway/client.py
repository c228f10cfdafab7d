"""KwtSMSClient: the kwtSMS JSON API with retries, pacing, cost control and typed results.

No Airflow in here. One client holds one ``requests.Session`` and one token bucket: every request
it makes (reads and sends, from any thread) shares the account's request rate.

The client delivers a batch once (``deliver``: one request); every wait and retry is the engine's
(``send.engine``, with ``retry_policy``'s numbers; docs/client.md): reads on network errors and
5xx, a send only when it certainly did not reach the server, HTTP 429, ERR013; ERR028 by the
batch loop. A lost answer makes the batch ``uncertain``, never sent again. Sends walk
``batch_loop.run_batches``.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import airflow_provider_kwtsms.gateway.answer as answer
import airflow_provider_kwtsms.send.engine as engine
from airflow_provider_kwtsms.coerce import as_text
from airflow_provider_kwtsms.constants import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_PAGES,
    DEFAULT_RATE,
    DEFAULT_SENDER,
    DEFAULT_TIMEOUT,
    MAX_BATCH,
    MAX_IN_FLIGHT,
    MAX_MOBILE_CHARS,
    SEND_ANSWER_ALLOWANCE,
)
from airflow_provider_kwtsms.errors import KwtSMSError, KwtSMSInputError, KwtSMSNetworkError
from airflow_provider_kwtsms.gateway.coverage_cache import CoverageCache, valid_prefix
from airflow_provider_kwtsms.gateway.field_limits import check_field
from airflow_provider_kwtsms.gateway.retry_policy import RetryPolicy
from airflow_provider_kwtsms.gateway.transport import Transport
from airflow_provider_kwtsms.rate.bucket import Pacer
from airflow_provider_kwtsms.rate.machine import default_pacer, gateway_target
from airflow_provider_kwtsms.send.batch_loop import BATCH_LEVEL_CODES
from airflow_provider_kwtsms.send.channel import Channel
from airflow_provider_kwtsms.send.planning import check_credits, split_batches
from airflow_provider_kwtsms.send.results import (
    Balance,
    BatchResult,
    DeliveryReport,
    MessageStatus,
    SendPlan,
    SendResult,
    ValidationResult,
)

if TYPE_CHECKING:
    import requests

__all__ = [
    "BATCH_LEVEL_CODES",
    "DEFAULT_BASE_URL",
    "DEFAULT_RATE",
    "MAX_BATCH",
    "Balance",
    "BatchResult",
    "DeliveryReport",
    "KwtSMSClient",
    "MessageStatus",
    "RetryPolicy",
    "SendPlan",
    "SendResult",
    "ValidationResult",
    "check_credits",
]

logger = logging.getLogger("airflow_provider_kwtsms.gateway.client")


class KwtSMSClient(Channel):
    """The kwtSMS JSON API.

    >>> client = KwtSMSClient("api_user", "api_pass", sender="MY-APP")  # doctest: +SKIP
    >>> result = client.send(["96598765432", "+965 5123 4567"], "Hello")  # doctest: +SKIP
    >>> result.msg_ids, result.points_charged  # doctest: +SKIP

    :param username: the API username from the account's API settings (at most 15 characters).
    :param password: the API password (at most 30 characters); never in a URL, log line or repr.
    :param base_url: where ``/API/<endpoint>/`` lives; the sandbox's ``url`` in tests.
    :param sender: the default sender ID (case-sensitive; ``KWT-SMS`` is for testing only).
    :param test_mode: send with ``test=1``: queued, never delivered.
    :param timeout: ``(connect, read)`` seconds for each socket operation (one number sets both).
    :param deadline: seconds one whole call may take, retries apart; default: connect + read.
    :param rate: the account's requests a second, 0.1 to 5 (above 5 the gateway's firewall blocks
        the IP: refused); shared by every process of this machine that uses the gateway.
    :param default_country: ``"KW"`` or ``"965"``: local numbers such as ``98765432`` get that
        country code.
    :param max_retries: extra tries on network errors.
    :param max_pages: the longest message allowed, in pages: 1 to 7 (6 is v4.1's ERR012 limit).
    :param smart_encoding: send look-alike characters as GSM-7 when every non-GSM-7 character has
        a faithful form.
    :param check_coverage: a batch whose numbers are all in countries the account does not cover
        fails with ERR026 without a request, judged on the coverage list (one request per account
        and gateway per hour on this machine, read only when it can save requests); ``False``:
        the gateway decides.
    :param session: a ``requests.Session`` of your own (proxies, certificates).
    :param retry_policy: every other retry knob (``gateway.retry_policy.RetryPolicy``).
    :param clock: the clock (real by default; tests inject one).
    :param sleep: the sleep (real by default; tests inject one).
    :param rng: the random source of the back-off's jitter (tests inject one).
    :param pacer: paces the requests; default: a ``rate.machine.MachineBucket`` that every
        process of this machine shares for this gateway, or, when ``clock`` or ``sleep`` is
        injected, a ``TokenBucket`` of this client on that clock. A ``rate.shared.SharedBucket``
        shares the rate across machines.
    """

    transport = "http"  # the SMTP sender says "smtp": summaries name the channel
    result_type = BatchResult

    def __init__(
        self,
        username: str,
        password: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        sender: str = DEFAULT_SENDER,
        test_mode: bool = False,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        deadline: float | None = None,
        rate: float = DEFAULT_RATE,
        default_country: str | None = None,
        max_retries: int = 3,
        max_pages: int = DEFAULT_MAX_PAGES,
        smart_encoding: bool = True,
        check_coverage: bool = True,
        session: requests.Session | None = None,
        retry_policy: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        as_text(username, "username", "the API username from your kwtSMS account's API settings")
        as_text(password, "password", "the API password (not the account's phone number)")
        as_text(base_url, "base_url", f"for example {DEFAULT_BASE_URL!r}")
        if not base_url.startswith(("http://", "https://")):
            raise KwtSMSInputError(f"base_url must start with http:// or https://, got {base_url!r}")
        as_text(sender, "sender", "a sender ID registered on the account (KWT-SMS for tests)")
        for name, value in (("username", username), ("password", password), ("sender", sender)):
            check_field(name, value)  # the documented sizes (v4.1): refused before any request
        if isinstance(timeout, (int, float)):
            timeout = (float(timeout), float(timeout))
        if len(timeout) != 2 or min(timeout) <= 0:
            raise KwtSMSInputError(f"timeout must be seconds > 0 or (connect, read), got {timeout!r}")
        self._take_settings(
            rate=rate, max_pages=max_pages, max_retries=max_retries, policy=retry_policy, rng=rng
        )

        self.username = username
        self.base_url = base_url.rstrip("/")
        self.sender = sender
        self.test_mode = bool(test_mode)
        self.timeout = (float(timeout[0]), float(timeout[1]))
        self.default_country = default_country
        self.smart_encoding = bool(smart_encoding)
        self.check_coverage = bool(check_coverage)
        self._coverage: frozenset[str] | None = None
        self._coverage_asked = False
        self._coverage_cache = CoverageCache(username, self.base_url)
        self.last_balance: float | None = None  # refreshed by balance() and every accepted send
        self._clock = clock
        self._sleep = sleep
        self._bucket: Pacer = pacer or default_pacer(
            gateway_target(self.base_url), self.rate, clock=clock, sleep=sleep
        )
        if deadline is not None and (not isinstance(deadline, (int, float)) or not 0 < deadline < 86400):
            raise KwtSMSInputError(f"deadline must be seconds > 0 (a whole call's limit), got {deadline!r}")
        self._transport = Transport(
            self.base_url, username, password, timeout=self.timeout, deadline=deadline, session=session
        )

    def __repr__(self) -> str:
        return (
            f"KwtSMSClient(username={self.username!r}, password='***', base_url={self.base_url!r}, "
            f"sender={self.sender!r}, test_mode={self.test_mode}, rate={self.rate:g})"
        )

    def close(self) -> None:
        self._transport.close()

    # -- read-only endpoints ----------------------------------------------------------------
    def balance(self) -> Balance:
        data = self._call("balance", {})
        available = answer.finite_number(
            data.get("available", data.get("balance")), float, -answer.MAX_NUMBER
        )
        if available is None:
            raise KwtSMSNetworkError(
                "balance: the answer holds no number under 'available' or 'balance'",
                may_have_reached_server=True,
                code="BAD_ANSWER",
            )
        purchased = answer.finite_number(data.get("purchased"), float, -answer.MAX_NUMBER)
        result = Balance(available=available, purchased=purchased)
        self.last_balance = result.available
        return result

    def sender_ids(self) -> list[str]:
        data = self._call("senderid", {})
        return answer.text_items(data.get("senderid"))

    def coverage(self) -> list[str]:
        """The active country prefixes (an empty list when the gateway says ERR033)."""
        try:
            data = self._call("coverage", {})
        except KwtSMSError as exc:
            if exc.code == "ERR033":
                return []
            raise
        prefixes = data.get("prefixes", data.get("coverage"))
        return answer.text_items(prefixes)

    def covered_prefixes(self, *, read: bool = True, fresh: bool = False) -> frozenset[str] | None:
        """The account's country prefixes for the send loop's coverage check; None: no check.

        The list this client read, else the one another process of this machine read within the
        hour (``coverage_cache``: no request), else, when ``read``, one ``coverage`` request (once
        per client; the list is then shared). ``fresh``: only a list this client read itself will
        do (the loop refuses a batch only on such a list). None (the gateway decides) when
        ``check_coverage`` is off, the account lists no coverage, or the list cannot be read (logged).
        """
        if not self.check_coverage:
            return None
        if self._coverage_asked:
            return self._coverage
        if not fresh:
            cached = self._coverage_cache.load()
            if cached is not None:
                return cached or None
            if not read:
                return None
        self._coverage_asked = True
        try:
            prefixes = frozenset(p for p in self.coverage() if valid_prefix(p))
        except KwtSMSError as exc:
            logger.warning("kwtSMS coverage not checked before sending (%s): the gateway decides", exc.code)
            return None
        self._coverage = prefixes or None
        self._coverage_cache.save(prefixes)
        return self._coverage

    def validate(self, numbers: Any) -> ValidationResult:
        """Ask the gateway which numbers are valid (OK), malformed (ER) or have no route (NR).

        Inputs that are not phone numbers at all (no digits, e-mail addresses) go to ``er``
        without being sent; the rest are normalised and asked about in requests of at most 200
        numbers and 2,500 characters (``planning.split_batches``).
        """
        from airflow_provider_kwtsms.phone.recipients import normalize_phone, split_recipients

        ok: list[str] = []
        er: list[str] = []
        nr: list[str] = []
        to_ask: list[str] = []
        for raw in split_recipients(numbers):
            try:
                number = normalize_phone(raw)
            except (ValueError, TypeError):
                number = ""
            if number and number.isdigit():
                to_ask.append(number)
            else:
                er.append(str(raw))
        for batch in split_batches(to_ask):
            data = self._call("validate", {"mobile": ",".join(batch)})
            verdict = data.get("mobile") or {}
            if not isinstance(verdict, dict):
                verdict = {}
            ok += answer.text_items(verdict.get("OK"))
            er += answer.text_items(verdict.get("ER"))
            nr += answer.text_items(verdict.get("NR"))
        return ValidationResult(ok=ok, er=er, nr=nr)

    def status(self, msg_id: str) -> MessageStatus:
        """The queue status of a sent message. ERR030 (normal for test messages) is a status here."""
        as_text(msg_id, "msg_id", "the msg-id returned by the send")
        check_field("msgid", msg_id, what="msg_id")
        try:
            data = self._call("status", {"msgid": msg_id})
        except KwtSMSError as exc:
            if exc.code == "ERR030":
                return MessageStatus(
                    msg_id=msg_id, status="error", description=exc.description, code=exc.code
                )
            raise
        line = self._transport.line
        return MessageStatus(
            msg_id=msg_id, status=line(data.get("status"), 100), description=line(data.get("description"))
        )

    def dlr(self, msg_id: str) -> list[DeliveryReport]:
        """Delivery reports per number (international numbers, ready ~5 minutes after sending)."""
        as_text(msg_id, "msg_id", "the msg-id returned by the send")
        check_field("msgid", msg_id, what="msg_id")
        data = self._call("dlr", {"msgid": msg_id})
        reports = []
        line = self._transport.line
        for item in answer.items(data.get("report")):
            if isinstance(item, dict):
                number = line(item.get("Number", item.get("number")), 40)
                status = line(item.get("Status", item.get("status")), 100)
                reports.append(DeliveryReport(number=number, status=status))
        return reports

    # -- the engine's seam (channel.Channel; plan_send, send, send_plan, send_batch there) -----
    def deliver(self, batch: engine.Batch) -> BatchResult:
        """One ``send`` request for at most 200 normalised numbers, once, right now (the engine has
        taken its turn and called the ledger's guard).

        Returns a ``BatchResult`` in state "sent". Raises ``KwtSMSError`` for an error answer and
        ``KwtSMSNetworkError`` when no answer could be read, saying whether the request may have
        reached the server (``transport``); the engine decides what follows (``send.engine``).
        """
        numbers = batch.numbers
        mobile = ",".join(numbers)
        if not numbers or len(numbers) > MAX_BATCH or len(mobile) > MAX_MOBILE_CHARS:
            raise KwtSMSInputError(
                f"a batch holds 1 to {MAX_BATCH} numbers and at most {MAX_MOBILE_CHARS} characters "
                f"once joined by commas, got {len(numbers)} numbers and {len(mobile)} characters: "
                "cut it with planning.split_batches"
            )
        check_field("sender", batch.sender)
        body = self._transport.encode(
            {
                "sender": batch.sender,
                "mobile": mobile,
                "message": batch.message,
                "test": "1" if batch.test else "0",
            }
        )
        result = answer.send_result(batch.index, numbers, self._answer("send", body))
        if result.balance_after is not None:
            self.last_balance = result.balance_after
        return result

    # -- what the send loop needs (channel.Channel) ---------------------------------------------
    @property
    def max_in_flight(self) -> int:
        """Requests a bulk send keeps in flight: what ``rate`` needs while a send is answered
        within ``SEND_ANSWER_ALLOWANCE`` s (the pacer still gates every start)."""
        return min(MAX_IN_FLIGHT, math.ceil(self.rate * SEND_ANSWER_ALLOWANCE) + 1)

    def _started(self) -> None:
        """Just before a request's bytes go: a turn that passed while this process could not run
        (a busy CPU) is given up for a new one, rather than sent late into the next turns."""
        started = getattr(self._bucket, "started", None)  # a pacer of the user's may not have it
        while started is not None and started() is False:
            self._bucket.acquire()

    @property
    def request_seconds(self) -> float:
        return self._transport.deadline

    def pace(self) -> None:
        self._transport.session  # noqa: B018  (import requests and open the session in this thread, once)
        self._bucket.acquire()

    def hold(self, seconds: float) -> None:
        self._bucket.pause(seconds)

    def now(self) -> float:
        return self._clock()

    def pause(self, seconds: float) -> None:
        self._sleep(seconds)

    # -- internals --------------------------------------------------------------------------
    def _answer(self, endpoint: str, body: bytes) -> dict[str, Any]:
        """One request whose turn is taken: the gateway's OK answer, or its error raised as
        ``KwtSMSError`` (the transport raises ``KwtSMSNetworkError`` when there is none)."""
        self._started()  # a late start (a busy CPU since the turn) pushes the next turns back
        reply = self._transport.post_body(endpoint, body)
        if reply.ok:
            return reply.data
        # The transport has checked the code and made the description one scrubbed line.
        raise KwtSMSError(reply.code, reply.data.get("description") or None, http_status=reply.http_status)

    def _call(self, endpoint: str, fields: dict[str, Any]) -> dict[str, Any]:
        """A read-only call, each try paced; its retries are the engine's (``engine.read``)."""
        body = self._transport.encode(fields)

        def once() -> dict[str, Any]:
            self.pace()
            return self._answer(endpoint, body)

        return engine.read(self, endpoint, once)
