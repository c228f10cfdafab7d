"""KwtSMSClient: the kwtSMS JSON API with retries, pacing, cost control and typed results.

No Airflow in here: the hook builds one of these from a connection, and any Python program can
use it directly. One client holds one ``requests.Session`` and one token bucket, so every
request it makes (reads and sends, from any thread) shares the account's request rate.

Retries, in short (the details are in ``RetryPolicy`` and the README):

- read-only calls (balance, senderid, coverage, validate, status, dlr) are retried on network
  errors and 5xx with exponential backoff and full jitter, at most ``max_retries`` times;
- a send is retried only when it certainly did not reach the server (no connection, HTTP 429),
  on ERR013 (queue full: bounded backoff) and on ERR028 (same number within 15 s: waited out
  once). When the answer is lost after the request was sent, the batch is reported
  ``uncertain`` and never sent again here: the resume ledger decides.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from airflow_provider_kwtsms import answer
from airflow_provider_kwtsms.errors import KwtSMSError, KwtSMSInputError, KwtSMSNetworkError
from airflow_provider_kwtsms.pacing import Pacer, TokenBucket
from airflow_provider_kwtsms.results import (
    FAILED,
    SENT,
    UNCERTAIN,
    Balance,
    BatchResult,
    DeliveryReport,
    MessageStatus,
    SendPlan,
    SendResult,
    ValidationResult,
)
from airflow_provider_kwtsms.transport import RateLimitedError, Transport

if TYPE_CHECKING:
    import requests

    from airflow_provider_kwtsms.phone import Recipients

__all__ = [
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
]

DEFAULT_BASE_URL = "https://www.kwtsms.com"
MAX_BATCH = 200  # numbers per send request (ERR007 above)
DEFAULT_RATE = 2.0  # requests per second: what the official clients keep to
DEFAULT_TIMEOUT = (5.0, 30.0)  # (connect, read) seconds

logger = logging.getLogger("airflow_provider_kwtsms.client")

# Error codes that depend on the numbers in one batch, not on the account, sender or text: a
# batch failing with one of these fails alone and the send goes on. Every other error (bad
# login, sender, balance, IP lock, text refused, queue still full, unknown codes) would fail
# every remaining batch the same way, so it stops the send.
BATCH_LEVEL_CODES = frozenset({"ERR006", "ERR025", "ERR026", "ERR028"})

OnBatch = Callable[[BatchResult, int, int], None]


@dataclass(frozen=True)
class RetryPolicy:
    """How hard the client tries. Every wait is bounded; the defaults suit production.

    - ``max_retries``: extra tries for read-only calls on network errors and 5xx, and for a
      send whose request certainly never reached the server. Waits: full jitter,
      ``uniform(0, min(backoff_cap, backoff_base * 2**n))``.
    - ``queue_full_retries``: extra tries of a send answered ERR013 (queue full). Waits:
      "equal jitter" (half fixed, half random) from ``queue_full_base`` doubling up to
      ``queue_full_cap``, so each wait gives the queue real time to drain.
    - ``same_number_wait``: seconds waited once before resending a batch answered ERR028
      (15 s rule, plus a margin for clock differences).
    - ``rate_limited_retries``: HTTP 429 answers waited out (``Retry-After``) before giving up.
    - ``max_consecutive_uncertain``: a bulk send stops after this many batches in a row whose
      answer was lost (the service is failing; going on could charge for unknown sends).
    """

    max_retries: int = 3
    backoff_base: float = 0.5
    backoff_cap: float = 10.0
    queue_full_retries: int = 5
    queue_full_base: float = 5.0
    queue_full_cap: float = 60.0
    same_number_wait: float = 15.5
    rate_limited_retries: int = 10
    max_consecutive_uncertain: int = 3


class KwtSMSClient:
    """The kwtSMS JSON API.

    >>> client = KwtSMSClient("api_user", "api_pass", sender="MY-APP")  # doctest: +SKIP
    >>> result = client.send(["96598765432", "+965 5123 4567"], "Hello")  # doctest: +SKIP
    >>> result.msg_ids, result.points_charged  # doctest: +SKIP

    ``timeout`` is ``(connect, read)`` seconds (one number sets both) for each socket operation;
    ``deadline`` bounds a whole call, retries apart (default: connect + read). ``rate`` is the account's
    request rate in requests per second. ``clock`` and ``sleep`` (real by default) and ``rng``
    can be injected for tests. ``pacer`` replaces this client's own TokenBucket, e.g. with a
    :class:`~airflow_provider_kwtsms.shared_rate.SharedBucket` that several processes share.
    """

    transport = "http"  # the SMTP sender says "smtp": summaries name the channel

    def __init__(
        self,
        username: str,
        password: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        sender: str = "KWT-SMS",
        test_mode: bool = False,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        deadline: float | None = None,
        rate: float = DEFAULT_RATE,
        default_country: str | None = None,
        max_retries: int = 3,
        max_pages: int = 7,
        session: requests.Session | None = None,
        retry_policy: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        _require_text("username", username, "the API username from your kwtSMS account's API settings")
        _require_text("password", password, "the API password (not the account's phone number)")
        _require_text("base_url", base_url, f"for example {DEFAULT_BASE_URL!r}")
        if not base_url.startswith(("http://", "https://")):
            raise KwtSMSInputError(f"base_url must start with http:// or https://, got {base_url!r}")
        _require_text("sender", sender, "a sender ID registered on the account (KWT-SMS for tests)")
        if isinstance(timeout, (int, float)):
            timeout = (float(timeout), float(timeout))
        if len(timeout) != 2 or min(timeout) <= 0:
            raise KwtSMSInputError(f"timeout must be seconds > 0 or (connect, read), got {timeout!r}")
        if not isinstance(rate, (int, float)) or rate <= 0:
            raise KwtSMSInputError(f"rate must be requests per second > 0, got {rate!r}")
        if not isinstance(max_pages, int) or max_pages < 1:
            raise KwtSMSInputError(f"max_pages must be a whole number >= 1, got {max_pages!r}")
        if not isinstance(max_retries, int) or max_retries < 0:
            raise KwtSMSInputError(f"max_retries must be a whole number >= 0, got {max_retries!r}")

        self.username = username
        self.base_url = base_url.rstrip("/")
        self.sender = sender
        self.test_mode = bool(test_mode)
        self.timeout = (float(timeout[0]), float(timeout[1]))
        self.rate = float(rate)
        self.default_country = default_country
        self.max_pages = max_pages
        self.policy = replace(retry_policy or RetryPolicy(), max_retries=max_retries)
        self.last_balance: float | None = None  # refreshed by balance() and every accepted send
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._bucket: Pacer = pacer or TokenBucket(self.rate, clock=clock, sleep=sleep)
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

    def __enter__(self) -> KwtSMSClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

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

    def validate(self, numbers: Any) -> ValidationResult:
        """Ask the gateway which numbers are valid (OK), malformed (ER) or have no route (NR).

        Inputs that are not phone numbers at all (no digits, e-mail addresses) go to ``er``
        without being sent; the rest are normalised and asked about 200 at a time.
        """
        from airflow_provider_kwtsms.phone import normalize_phone, split_recipients

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
        for start in range(0, len(to_ask), MAX_BATCH):
            data = self._call("validate", {"mobile": ",".join(to_ask[start : start + MAX_BATCH])})
            verdict = data.get("mobile") or {}
            if not isinstance(verdict, dict):
                verdict = {}
            ok += answer.text_items(verdict.get("OK"))
            er += answer.text_items(verdict.get("ER"))
            nr += answer.text_items(verdict.get("NR"))
        return ValidationResult(ok=ok, er=er, nr=nr)

    def status(self, msg_id: str) -> MessageStatus:
        """The queue status of a sent message. ERR030 (normal for test messages) is a status here."""
        _require_text("msg_id", msg_id, "the msg-id returned by the send")
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
        _require_text("msg_id", msg_id, "the msg-id returned by the send")
        data = self._call("dlr", {"msgid": msg_id})
        reports = []
        line = self._transport.line
        for item in answer.items(data.get("report")):
            if isinstance(item, dict):
                number = line(item.get("Number", item.get("number")), 40)
                status = line(item.get("Status", item.get("status")), 100)
                reports.append(DeliveryReport(number=number, status=status))
        return reports

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
        """Sort the recipients, clean and measure the text, cut the batches: no request made.

        Raises ``KwtSMSInputError`` when nothing could be sent: an empty or over-long message, a
        bad sender, or no valid number.
        """
        from airflow_provider_kwtsms.message import clean_message, measure_message
        from airflow_provider_kwtsms.phone import prepare_recipients

        if not isinstance(message, str):
            raise KwtSMSInputError(f"message must be text (str), got {type(message).__name__}")
        cleaned = clean_message(message)
        if not cleaned:
            raise KwtSMSInputError(
                "message is empty after cleaning (emoji, invisible characters and HTML tags are "
                "removed because the gateway refuses or mangles them): give it some text"
            )
        info = measure_message(cleaned, self.max_pages)
        if info.over_limit:
            unit = "characters" if info.encoding == "GSM-7" else "UTF-16 units"
            raise KwtSMSInputError(
                f"message is too long: {info.pages} pages ({info.length} {unit} as {info.encoding}), "
                f"the limit is {info.max_pages} pages; shorten it (or use message.trim_to_pages)"
            )
        sender = self.sender if sender is None else sender
        _require_text("sender", sender, "a sender ID registered on the account")
        recipients = prepare_recipients(
            mobile,
            default_country=self.default_country if default_country is None else default_country,
            strict=strict,
        )
        if not recipients.valid:
            raise _no_valid_numbers(recipients)
        batches = [recipients.valid[i : i + MAX_BATCH] for i in range(0, len(recipients.valid), MAX_BATCH)]
        return SendPlan(
            recipients=recipients,
            message=cleaned,
            info=info,
            sender=sender,
            test=self.test_mode if test is None else bool(test),
            batches=batches,
            estimate=len(recipients.valid) * info.pages,
        )

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
    ) -> SendResult:
        """Send ``message`` to any number of recipients, 200 per request, paced at ``rate``.

        ``mobile``: one number, a comma/semicolon/newline-separated string, or any iterable.
        Raises ``KwtSMSInputError`` before anything is sent when the plan is impossible (see
        ``plan_send``) or its estimate (valid numbers x pages) exceeds ``max_credits``.
        ``dry_run`` stops after planning: no request at all. Otherwise the result accounts for
        every batch; gateway errors are in it, not raised (``result.raise_for_status()``).
        ``on_batch(batch_result, done, total)`` is called as each batch ends.
        """
        plan = self.plan_send(
            mobile, message, sender=sender, test=test, default_country=default_country, strict=strict
        )
        check_credits(plan, max_credits)
        if dry_run:
            logger.info(
                "kwtSMS dry run: %d numbers, %d pages, estimate %d credits, %d batches",
                len(plan.recipients.valid),
                plan.pages,
                plan.estimate,
                len(plan.batches),
            )
            return SendResult(plan=plan, batches=[], dry_run=True)
        return self.send_plan(plan, on_batch=on_batch)

    def send_plan(self, plan: SendPlan, *, on_batch: OnBatch | None = None) -> SendResult:
        """Send every batch of ``plan`` (see ``send`` for the rules on errors and stopping)."""
        total = len(plan.batches)
        done: dict[int, BatchResult] = {}
        deferred: list[tuple[int, float]] = []  # ERR028 batches: index, when they may go again
        stop: BatchResult | None = None
        uncertain_in_a_row = 0

        def finish(batch: BatchResult) -> None:
            done[batch.index] = batch
            _log_batch(batch, len(done), total)
            if on_batch is not None:
                on_batch(batch, len(done), total)

        for index, numbers in enumerate(plan.batches):
            if stop is not None:
                finish(_not_attempted(index, numbers, stop))
                continue
            batch = self._attempt(plan, index, numbers, wait_same_number=False)
            if batch.state == FAILED and batch.error_code == "ERR028":
                deferred.append((index, self._clock() + self.policy.same_number_wait))
                continue  # sent again at the end, once its 15 s have passed
            finish(batch)
            uncertain_in_a_row = uncertain_in_a_row + 1 if batch.state == UNCERTAIN else 0
            if self._stops_send(batch, uncertain_in_a_row):
                stop = batch

        for index, ready_at in deferred:
            numbers = plan.batches[index]
            if stop is not None:
                finish(_not_attempted(index, numbers, stop))
                continue
            wait = ready_at - self._clock()
            if wait > 0:
                self._sleep(wait)
            batch = self._attempt(plan, index, numbers, wait_same_number=False)
            finish(batch)
            if self._stops_send(batch, 0):
                stop = batch

        return SendResult(plan=plan, batches=[done[i] for i in range(total)], dry_run=False)

    def send_batch(
        self,
        numbers: list[str],
        message: str,
        *,
        sender: str,
        test: bool,
        index: int = 0,
        wait_same_number: bool = True,
    ) -> BatchResult:
        """One ``send`` request for at most 200 normalised numbers, paced by the token bucket.

        Returns a ``BatchResult`` in state "sent", or "uncertain" when the request may have
        reached the server but its answer was lost (it is then NOT sent again). Retries only
        what is safe: no connection / HTTP 429 (nothing processed), ERR013 (bounded backoff),
        ERR028 (waits ``same_number_wait`` once, unless ``wait_same_number`` is False).
        Raises ``KwtSMSError`` for an error answer that retrying did not fix, and
        ``KwtSMSNetworkError`` (``may_have_reached_server=False``) when the server could not be
        reached within ``max_retries``.
        """
        if not numbers or len(numbers) > MAX_BATCH:
            raise KwtSMSInputError(f"a batch holds 1 to {MAX_BATCH} numbers, got {len(numbers)}")
        fields = {
            "sender": sender,
            "mobile": ",".join(numbers),
            "message": message,
            "test": "1" if test else "0",
        }
        policy = self.policy
        network_tries = queue_full_tries = 0
        waited_same_number = False
        while True:
            try:
                data = self._post("send", fields)
            except KwtSMSNetworkError as exc:
                if exc.may_have_reached_server:
                    return BatchResult(
                        index=index,
                        numbers=list(numbers),
                        state=UNCERTAIN,
                        error_code=exc.code,
                        error_description=exc.description,
                        may_have_reached_server=True,
                    )
                if not _worth_retrying(exc) or network_tries >= policy.max_retries:
                    raise
                self._backoff(network_tries, policy.backoff_base, policy.backoff_cap, "send", exc)
                network_tries += 1
                continue
            except KwtSMSError as exc:
                if exc.code == "ERR013" and queue_full_tries < policy.queue_full_retries:
                    delay = min(policy.queue_full_cap, policy.queue_full_base * 2**queue_full_tries)
                    delay = delay / 2 + self._rng.uniform(0, delay / 2)
                    logger.warning(
                        "kwtSMS send: queue full (ERR013), retry %d/%d in %.1f s",
                        queue_full_tries + 1,
                        policy.queue_full_retries,
                        delay,
                    )
                    self._sleep(delay)
                    queue_full_tries += 1
                    continue
                if exc.code == "ERR028" and wait_same_number and not waited_same_number:
                    logger.warning(
                        "kwtSMS send: ERR028 (same number within 15 s), waiting %.1f s",
                        policy.same_number_wait,
                    )
                    self._sleep(policy.same_number_wait)
                    waited_same_number = True
                    continue
                raise
            return self._sent(index, numbers, data)

    # -- internals --------------------------------------------------------------------------
    def _attempt(
        self, plan: SendPlan, index: int, numbers: list[str], *, wait_same_number: bool
    ) -> BatchResult:
        try:
            return self.send_batch(
                numbers,
                plan.message,
                sender=plan.sender,
                test=plan.test,
                index=index,
                wait_same_number=wait_same_number,
            )
        except KwtSMSNetworkError as exc:
            return BatchResult(
                index=index,
                numbers=list(numbers),
                state=FAILED,
                error_code=exc.code,
                error_description=exc.description,
                may_have_reached_server=exc.may_have_reached_server,
            )
        except KwtSMSError as exc:
            return BatchResult(
                index=index,
                numbers=list(numbers),
                state=FAILED,
                error_code=exc.code,
                error_description=exc.description,
            )
        except Exception as exc:
            # A defect of ours must not lose the send's account: the request may have gone out,
            # so the batch is uncertain (never sent again here) and the error is logged whole.
            logger.exception("kwtSMS batch #%d: unexpected error", index + 1)
            return BatchResult(
                index=index,
                numbers=list(numbers),
                state=UNCERTAIN,
                error_code="UNEXPECTED",
                error_description=f"unexpected {type(exc).__name__} while sending; the batch may have "
                "been sent (please report this as a bug)",
                may_have_reached_server=True,
            )

    def _stops_send(self, batch: BatchResult, uncertain_in_a_row: int) -> bool:
        if batch.state == UNCERTAIN:
            return uncertain_in_a_row >= self.policy.max_consecutive_uncertain
        if batch.state != FAILED:
            return False
        if batch.may_have_reached_server is not None:
            return True  # the server stayed unreachable through every retry
        return batch.error_code not in BATCH_LEVEL_CODES

    def _sent(self, index: int, numbers: list[str], data: dict[str, Any]) -> BatchResult:
        """The batch of an OK answer: "sent" when the answer reads, else "uncertain" (the gateway
        said OK, so it may well have sent, but a charge or msg-id we cannot read is no record)."""
        msg_id = answer.msg_id(data.get("msg-id"))
        points = answer.finite_number(data.get("points-charged"), int)
        optional = {
            name: (data.get(name), answer.finite_number(data.get(name), kind))
            for name, kind in (("balance-after", float), ("unix-timestamp", int), ("numbers", int))
        }
        unreadable = [name for name, (raw, value) in optional.items() if raw is not None and value is None]
        unreadable += [
            name for name, value in (("msg-id", msg_id), ("points-charged", points)) if value is None
        ]
        if unreadable:
            return BatchResult(
                index=index,
                numbers=list(numbers),
                state=UNCERTAIN,
                error_code="BAD_ANSWER",
                error_description=f"the gateway answered OK, but {', '.join(unreadable)} cannot be read "
                "(missing, not a number, or out of range); the batch may have been sent",
                may_have_reached_server=True,
            )
        balance_after = optional["balance-after"][1]
        if balance_after is not None:
            self.last_balance = balance_after
        return BatchResult(
            index=index,
            numbers=list(numbers),
            state=SENT,
            msg_id=msg_id,
            points_charged=points,
            balance_after=balance_after,
            unix_timestamp=optional["unix-timestamp"][1],
            numbers_accepted=optional["numbers"][1],
        )

    def _post(self, endpoint: str, fields: dict[str, Any]) -> dict[str, Any]:
        """One paced request; HTTP 429 waited out; an error answer raised as ``KwtSMSError``."""
        limited = 0
        body = self._transport.encode(fields)
        self._transport.session  # noqa: B018  (import requests and open the session before the token)
        while True:
            self._bucket.acquire()
            try:
                reply = self._transport.post_body(endpoint, body)
            except RateLimitedError as exc:
                if limited >= self.policy.rate_limited_retries:
                    raise
                limited += 1
                logger.warning(
                    "kwtSMS %s: rate limited (HTTP 429), waiting %.1f s", endpoint, exc.retry_after
                )
                self._bucket.pause(exc.retry_after)
                continue
            if reply.ok:
                return reply.data
            # The transport has checked the code and made the description one scrubbed line.
            raise KwtSMSError(
                reply.code, reply.data.get("description") or None, http_status=reply.http_status
            )

    def _call(self, endpoint: str, fields: dict[str, Any]) -> dict[str, Any]:
        """A read-only call: retried on network errors and 5xx (it changes nothing)."""
        tries = 0
        while True:
            try:
                return self._post(endpoint, fields)
            except KwtSMSNetworkError as exc:
                if not _worth_retrying(exc) or tries >= self.policy.max_retries:
                    raise
                self._backoff(tries, self.policy.backoff_base, self.policy.backoff_cap, endpoint, exc)
                tries += 1

    def _backoff(self, attempt: int, base: float, cap: float, endpoint: str, exc: KwtSMSError) -> None:
        delay = self._rng.uniform(0, min(cap, base * 2**attempt))  # full jitter
        logger.warning(
            "kwtSMS %s: %s; retry %d/%d in %.2f s",
            endpoint,
            exc.code,
            attempt + 1,
            self.policy.max_retries,
            delay,
        )
        self._sleep(delay)


def check_credits(plan: SendPlan, max_credits: int | None) -> None:
    """Refuse a plan whose estimate is above ``max_credits`` (None: no limit)."""
    if max_credits is None:
        return
    if plan.estimate > max_credits:
        raise KwtSMSInputError(
            f"this send needs {plan.estimate} credits ({len(plan.recipients.valid)} numbers x "
            f"{plan.pages} pages), above max_credits={max_credits}; raise max_credits, shorten the "
            f"message or send to fewer numbers"
        )


def _worth_retrying(exc: KwtSMSNetworkError) -> bool:
    """Network trouble and 5xx may pass; a 3xx/4xx without a kwtSMS answer will not."""
    return exc.http_status is None or exc.http_status >= 500 or exc.code == "BAD_ANSWER"


def _not_attempted(index: int, numbers: list[str], cause: BatchResult) -> BatchResult:
    return BatchResult(
        index=index,
        numbers=list(numbers),
        state=FAILED,
        error_code=cause.error_code,
        error_description=f"Not attempted: batch {cause.index + 1} ended {cause.state} with "
        f"{cause.error_code}, which would fail this batch too.",
        attempted=False,
    )


def _no_valid_numbers(recipients: Recipients) -> KwtSMSInputError:
    if recipients.total_inputs == 0:
        exc = KwtSMSInputError("no recipients given: pass one number, a comma-separated string or a list")
    else:
        reasons = "; ".join(f"{i.input!r}: {i.reason}" for i in recipients.invalid[:5])
        more = f" (and {len(recipients.invalid) - 5} more)" if len(recipients.invalid) > 5 else ""
        exc = KwtSMSInputError(
            f"no valid phone number among {recipients.total_inputs} inputs: {reasons}{more}. Give "
            f"numbers with their country code (e.g. 96598765432) or set default_country"
        )
    exc.recipients = recipients  # type: ignore[attr-defined]  # so callers can still report each input
    return exc


def _log_batch(batch: BatchResult, done: int, total: int) -> None:
    # One line per batch; never the numbers, the text or the credentials.
    if batch.state == SENT:
        logger.info(
            "kwtSMS batch %d/%d (#%d): sent %d numbers, msg-id %s, %d points, balance after %s",
            done,
            total,
            batch.index + 1,
            len(batch.numbers),
            batch.msg_id,
            batch.points_charged,
            batch.balance_after,
        )
    else:
        logger.warning(
            "kwtSMS batch %d/%d (#%d): %s, %d numbers, %s: %s",
            done,
            total,
            batch.index + 1,
            batch.state,
            len(batch.numbers),
            batch.error_code,
            batch.error_description,
        )


def _require_text(name: str, value: object, hint: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise KwtSMSInputError(
            f"{name} must be a non-empty string ({hint}), got {type(value).__name__}"
            + ("" if name == "password" else f" {value!r}")
        )
