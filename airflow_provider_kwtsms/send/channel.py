"""What both channels share: a send is a plan, a credit check, a dry run or the one batch loop.

``KwtSMSClient`` (the JSON API) and ``KwtSMSSmtpSender`` (e-mail) inherit ``Channel``: each
delivers one batch once (the abstract half below, the seam ``batch_loop`` and ``engine`` call)
and may adjust the text before planning, check the plan, check the account before sending and
tidy up after. The order of the steps, the credit cap, the dry run and the checks of the
settings both take (rate, pages, retries) live here once; every wait and retry is the engine's
(``send.engine``, ``send.batch_loop``). ``KwtSMSHook.get_client()`` returns a ``Channel``.
"""

from __future__ import annotations

import logging
import random
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import replace
from typing import Any, ClassVar, Self

import airflow_provider_kwtsms.send.engine as engine
from airflow_provider_kwtsms.coerce import as_rate
from airflow_provider_kwtsms.gateway.field_limits import check_max_pages
from airflow_provider_kwtsms.gateway.retry_policy import RetryPolicy
from airflow_provider_kwtsms.send.batch_loop import OnBatch, run_batches
from airflow_provider_kwtsms.send.planning import PlanOptions, build_plan, check_credits
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
    # Set by ``_take_settings``: how fast and how hard it sends.
    rate: float
    policy: RetryPolicy = RetryPolicy()
    rng: random.Random = random.Random()  # the jitter of the back-off waits (a channel may give its own)

    def _take_settings(
        self,
        *,
        rate: float,
        max_pages: int,
        max_retries: int,
        policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """The one check of the settings every channel takes (each raises ``KwtSMSInputError``
        naming the setting): the rate, the page limit and the retries (``RetryPolicy``)."""
        self.rate = float(as_rate(rate))
        self.max_pages = check_max_pages(max_pages)
        self.policy = replace(policy or RetryPolicy(), max_retries=max_retries)
        self.rng = rng or random.Random()

    def plan_options(self, options: PlanOptions | None = None, **overrides: Any) -> PlanOptions:
        """This channel's defaults (sender, test mode, country, page limit, smart encoding), or
        ``options``, with the ``overrides`` that are not None in their place."""
        base = options or PlanOptions(
            sender=self.sender,
            test=self.test_mode,
            default_country=self.default_country,
            max_pages=self.max_pages,
            smart_encoding=self.smart_encoding,
        )
        return base.override(**overrides)

    def plan_send(
        self,
        mobile: Any,
        message: str,
        options: PlanOptions | None = None,
        *,
        sender: str | None = None,
        test: bool | None = None,
        default_country: str | None = None,
        strict: bool | None = None,
        smart_encoding: bool | None = None,
        do_not_send: Any = None,
    ) -> SendPlan:
        """Sort the recipients, clean and measure the text, cut the batches: no request made
        (``planning.build_plan`` with ``options``, this channel's by default; a keyword given
        replaces its one option). ``do_not_send``: numbers left out, counted as suppressed.

        Raises ``KwtSMSInputError`` when nothing could be sent: an empty or over-long message, a
        bad sender, or no valid number.
        """
        chosen = self.plan_options(
            options,
            sender=sender,
            test=test,
            default_country=default_country,
            strict=strict,
            smart_encoding=smart_encoding,
        )
        plan = build_plan(
            mobile, self._text_to_plan(message, test=chosen.test), chosen, do_not_send=do_not_send
        )
        self._check_plan(plan)
        return plan

    def plan_rows(
        self,
        rows: Any,
        options: PlanOptions | None = None,
        *,
        template: str | None = None,
        do_not_send: Any = None,
        **overrides: Any,
    ) -> SendPlan:
        """The plan of per-recipient ``rows`` (``send.rows.build_rows_plan``): each row's text to
        its number, identical texts grouped into requests; no request made. ``overrides``: the
        keywords of ``plan_send`` (sender, test, default_country, strict, smart_encoding)."""
        from airflow_provider_kwtsms.send.rows import build_rows_plan

        chosen = self.plan_options(options, **overrides)
        self._text_to_plan("", test=chosen.test)  # a channel that refuses the settings, at once
        plan = build_rows_plan(
            rows,
            chosen,
            template=template,
            do_not_send=do_not_send,
            adapt=lambda text: self._text_to_plan(text, test=chosen.test),
        )
        self._check_plan(plan)
        return plan

    def send_rows(
        self,
        rows: Any,
        options: PlanOptions | None = None,
        *,
        template: str | None = None,
        do_not_send: Any = None,
        max_credits: int | None = None,
        dry_run: bool = False,
        on_batch: OnBatch | None = None,
        **overrides: Any,
    ) -> SendResult:
        """Send every customer their own text: ``rows`` are ``{"mobile": ..., "message": ...}``,
        or, with ``template`` (Jinja, rendered per row in a sandbox), ``{"mobile": ..., <the keys
        it names>}``. Rows with the same text share requests (200 numbers, 2,500 characters
        each); numbers on ``do_not_send`` are never sent. Then as ``send``: the credit cap, the
        dry run, the one batch loop; the result accounts for every row (``to_dict()["rows"]``)."""
        plan = self.plan_rows(rows, options, template=template, do_not_send=do_not_send, **overrides)
        return self._send_planned(plan, max_credits=max_credits, dry_run=dry_run, on_batch=on_batch)

    def send(
        self,
        mobile: Any,
        message: str,
        options: PlanOptions | None = None,
        *,
        sender: str | None = None,
        test: bool | None = None,
        default_country: str | None = None,
        strict: bool | None = None,
        max_credits: int | None = None,
        dry_run: bool = False,
        on_batch: OnBatch | None = None,
        smart_encoding: bool | None = None,
        do_not_send: Any = None,
    ) -> SendResult:
        """Send ``message`` to any number of recipients, 200 per request, paced at ``rate``.

        ``mobile``: one number, a comma/semicolon/newline-separated string, or any iterable.
        Raises ``KwtSMSInputError`` before anything is sent when the plan is impossible (see
        ``plan_send``) or its estimate (valid numbers x pages) exceeds ``max_credits``.
        ``dry_run`` stops after planning: nothing sent. Otherwise the result accounts for every
        batch; gateway errors are in it, not raised (``result.raise_for_status()``).
        ``on_batch(batch_result, done, total)`` is called as each batch ends. ``do_not_send``:
        numbers never sent (counted as suppressed).
        """
        plan = self.plan_send(
            mobile,
            message,
            options,
            sender=sender,
            test=test,
            default_country=default_country,
            strict=strict,
            smart_encoding=smart_encoding,
            do_not_send=do_not_send,
        )
        return self._send_planned(plan, max_credits=max_credits, dry_run=dry_run, on_batch=on_batch)

    def _send_planned(
        self, plan: SendPlan, *, max_credits: int | None, dry_run: bool, on_batch: OnBatch | None
    ) -> SendResult:
        """The steps after planning, one text or many: the credit cap, the dry run, the account
        check, the batch loop."""
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

    def send_batch(
        self,
        numbers: list[str],
        message: str,
        *,
        sender: str,
        test: bool,
        index: int = 0,
        guard: Callable[[], None] | None = None,
    ) -> BatchResult:
        """One batch on its own through the engine's step (``engine.send_batch``): paced, tried
        again only when the request certainly did not reach the server (network, 429, ERR013).

        Returns the result ("sent", or "uncertain" when the answer was lost: never sent again).
        Raises the ``KwtSMSError`` no retry fixed, ERR028 (same number within 15 s) at once: a
        send (``send``, ``send_plan``) waits that out, after its other batches.
        """
        batch = engine.Batch(index=index, numbers=list(numbers), message=message, sender=sender, test=test)
        return engine.send_batch(self, batch, guard=guard)

    # -- each channel's own: one batch delivered once (what the engine calls), the account -----
    @property
    def max_in_flight(self) -> int:
        """Requests a bulk send keeps in flight (``batch_loop``); 1: one after another."""
        return 1

    @property
    def request_seconds(self) -> float:
        """The longest one request can stay in the air (its deadline): how long a newer try waits
        for the requests of a try that stopped without a word (``ledger_fence``)."""
        return 60.0

    def pace(self) -> None:  # noqa: B027 (a channel without a pacer is not paced)
        """Wait for the next request's turn at the rate (the engine calls it before each try)."""

    def hold(self, seconds: float) -> None:  # noqa: B027 (a channel without a pacer is not paced)
        """Hold every request's turn back for ``seconds`` (the server said Retry-After)."""

    @abstractmethod
    def now(self) -> float: ...

    @abstractmethod
    def pause(self, seconds: float) -> None: ...

    @abstractmethod
    def deliver(self, batch: engine.Batch) -> BatchResult:
        """Write one batch's request once, right now (the engine has taken its turn and called
        the ledger's guard), and say what came back: the result, or the error as raised
        (``KwtSMSNetworkError`` says whether the request may have reached the server). Never
        retries and never waits: the engine does (``send.engine``)."""

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
