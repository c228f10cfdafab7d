"""What both channels share: a send is a plan, a credit check, a dry run or the one batch loop.

``KwtSMSClient`` (the JSON API) and ``KwtSMSSmtpSender`` (e-mail) inherit ``Channel``: each says
how one batch goes (the abstract half below, what ``batch_loop`` calls) and may adjust the text
before planning, check the plan, check the account before sending and tidy up after. The order of
the steps, the credit cap and the dry run live here once. ``KwtSMSHook.get_client()`` returns a
``Channel``.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar, Self

from airflow_provider_kwtsms.send.batch_loop import OnBatch, run_batches
from airflow_provider_kwtsms.send.planning import build_plan, check_credits
from airflow_provider_kwtsms.send.results import Balance, BatchResult, SendPlan, SendResult

logger = logging.getLogger("airflow_provider_kwtsms.send.channel")


class Channel(ABC):
    """A way to send: the defaults a send starts from, the steps of a send, and (abstract) how
    one batch goes, which is what ``batch_loop.run_batches`` calls."""

    transport: str  # "http" or "smtp" (a class attribute): summaries name the channel
    result_type: ClassVar[type[BatchResult]] = BatchResult
    send_result_type: ClassVar[type[SendResult]] = SendResult

    # Set by each channel's constructor: what a send uses when the call does not say.
    sender: str
    test_mode: bool
    default_country: str | None
    max_pages: int
    smart_encoding: bool

    def plan_send(
        self,
        mobile: Any,
        message: str,
        *,
        sender: str | None = None,
        test: bool | None = None,
        default_country: str | None = None,
        strict: bool = False,
        smart_encoding: bool | None = None,
    ) -> SendPlan:
        """Sort the recipients, clean and measure the text, cut the batches: no request made
        (``planning.build_plan`` with this channel's defaults).

        Raises ``KwtSMSInputError`` when nothing could be sent: an empty or over-long message, a
        bad sender, or no valid number.
        """
        test = self.test_mode if test is None else bool(test)
        plan = build_plan(
            mobile,
            self._text_to_plan(message, test=test),
            sender=self.sender if sender is None else sender,
            test=test,
            default_country=self.default_country if default_country is None else default_country,
            strict=strict,
            max_pages=self.max_pages,
            smart_encoding=self.smart_encoding if smart_encoding is None else smart_encoding,
        )
        self._check_plan(plan)
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
        smart_encoding: bool | None = None,
    ) -> SendResult:
        """Send ``message`` to any number of recipients, 200 per request, paced at ``rate``.

        ``mobile``: one number, a comma/semicolon/newline-separated string, or any iterable.
        Raises ``KwtSMSInputError`` before anything is sent when the plan is impossible (see
        ``plan_send``) or its estimate (valid numbers x pages) exceeds ``max_credits``.
        ``dry_run`` stops after planning: nothing sent. Otherwise the result accounts for every
        batch; gateway errors are in it, not raised (``result.raise_for_status()``).
        ``on_batch(batch_result, done, total)`` is called as each batch ends.
        """
        plan = self.plan_send(
            mobile,
            message,
            sender=sender,
            test=test,
            default_country=default_country,
            strict=strict,
            smart_encoding=smart_encoding,
        )
        check_credits(plan, max_credits)
        if dry_run:
            logger.info("kwtSMS dry run (%s), nothing sent. %s", self.transport, plan.describe())
            return self.send_result_type(plan=plan, batches=[], dry_run=True)
        self.preflight(plan)
        return self.send_plan(plan, on_batch=on_batch)

    def send_plan(self, plan: SendPlan, *, on_batch: OnBatch | None = None) -> SendResult:
        """Send every batch of ``plan`` under the one stop policy (``batch_loop``; docs/client.md)."""
        try:
            run = run_batches(self, plan, on_batch=on_batch)
        finally:
            self._after_send()
        return self.send_result_type(plan=plan, batches=run.batches, dry_run=False)

    # -- what a channel may add to the steps ------------------------------------------------
    def _text_to_plan(self, message: str, *, test: bool) -> str:
        """The text as this channel sends it (the e-mail channel puts it on one line)."""
        return message

    def _check_plan(self, plan: SendPlan) -> None:  # noqa: B027 (an optional step: nothing by default)
        """Refuse a plan this channel cannot carry; raise ``KwtSMSInputError``."""

    def preflight(self, plan: SendPlan) -> None:  # noqa: B027 (an optional step: nothing by default)
        """Just before the first batch: refuse a send the account would drop."""

    def _after_send(self) -> None:  # noqa: B027 (an optional step: nothing by default)
        """After the last batch, sent or not."""

    # -- each channel's own: one batch (what batch_loop calls), the account -----------------
    @property
    @abstractmethod
    def same_number_wait(self) -> float:
        """Seconds to wait before sending again to a number the gateway saw within 15 s."""

    @property
    @abstractmethod
    def max_consecutive_uncertain(self) -> int:
        """Batches in a row whose answer was lost before the send stops (the service is failing)."""

    @property
    def max_in_flight(self) -> int:
        """Requests a bulk send keeps in flight (``batch_loop``); 1: one after another."""
        return 1

    @property
    def request_seconds(self) -> float:
        """The longest one request can stay in the air (its deadline): how long a newer try waits
        for the requests of a try that stopped without a word (``ledger_fence``)."""
        return 60.0

    def pace(self) -> None:  # noqa: B027 (only channels with max_in_flight > 1 are paced by the loop)
        """Wait for the next request's turn at the rate; the loop then calls ``send_batch(paced=True)``."""

    @abstractmethod
    def now(self) -> float: ...

    @abstractmethod
    def pause(self, seconds: float) -> None: ...

    @abstractmethod
    def send_batch(
        self,
        numbers: list[str],
        message: str,
        *,
        sender: str,
        test: bool,
        index: int = 0,
        wait_same_number: bool = True,
        paced: bool = False,
        guard: Callable[[], None] | None = None,
    ) -> BatchResult:
        """One request for one batch. ``guard`` is called right before each request written for
        it (a retry's too): the ledger's fence raises there when this try may no longer send."""

    @abstractmethod
    def balance(self) -> Balance: ...

    @abstractmethod
    def covered_prefixes(self, *, read: bool = True, fresh: bool = False) -> frozenset[str] | None:
        """The account's country prefixes for the coverage check (None: no check, the gateway decides).

        ``read=False``: only what is known without a request; ``fresh``: a list read by this channel."""

    @abstractmethod
    def sender_ids(self) -> list[str]: ...

    @abstractmethod
    def close(self) -> None:
        """Release connections; the channel can still be used (it opens them again)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
