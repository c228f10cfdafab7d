"""The engine's step for one request: every wait and every retry, from one ``RetryPolicy``.

A channel (the HTTP client, the e-mail sender) delivers a batch once (``deliver``) and says what
came back; a read of the client is one request too. What to do next is decided here, the same
for every channel and every path (``send``, the operator's ledger, the notifier):

==================================  ==================================  =========================
what came back                      why it may be tried again           what the engine does
==================================  ==================================  =========================
HTTP 429 (``RATE_LIMITED``)         the gateway processed nothing       holds every turn back
                                                                        for its ``Retry-After``,
                                                                        then tries again
                                                                        (``rate_limited_retries``)
ERR013 queue full                   nothing was queued                  equal-jitter back-off
                                                                        (``queue_full_retries``)
no connection, 5xx before the       the request certainly never         full-jitter back-off
request left, a relay's 4xx         reached the server                  (``max_retries``)
a read's network trouble or 5xx     a read changes nothing              the same back-off
the answer lost (the request may    never tried again: the batch is     returns it ``uncertain``
have reached the server)            ``uncertain``
ERR028 same number within 15 s      the batch, not the request, waits   raised: the batch loop
                                                                        sends it again after the
                                                                        others (``batch_loop``)
anything else                       it will not pass by itself          raised
==================================  ==================================  =========================

Each try takes its turn at the rate first (``pace``: the pacer gates every start) and calls the
ledger's ``guard`` right before the request (``ledger.fence``). No Airflow import here.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from airflow_provider_kwtsms.errors import ERRORS, RATE_LIMITED, KwtSMSError, KwtSMSNetworkError
from airflow_provider_kwtsms.gateway.retry_policy import RetryPolicy, worth_retrying
from airflow_provider_kwtsms.send.results import UNCERTAIN

if TYPE_CHECKING:
    from airflow_provider_kwtsms.send.results import BatchResult

logger = logging.getLogger("airflow_provider_kwtsms.send.engine")

QUEUE_FULL = "ERR013"
SAME_NUMBER = "ERR028"
DEFAULT_RETRY_AFTER = 1.0  # a 429 whose wait the channel could not read

T = TypeVar("T")


@dataclass(frozen=True)
class Batch:
    """One batch as the engine hands it to a channel: at most 200 normalised numbers."""

    index: int
    numbers: list[str]
    message: str
    sender: str  # the sender ID
    test: bool


class Waits(Protocol):
    """What the engine needs of a channel to wait: its policy, its pace and its clock."""

    @property
    def policy(self) -> RetryPolicy: ...

    @property
    def rng(self) -> random.Random: ...

    def pace(self) -> None:
        """Wait for the next request's turn at the rate."""

    def hold(self, seconds: float) -> None:
        """Hold every request's turn back for ``seconds`` (the server said Retry-After)."""

    def pause(self, seconds: float) -> None: ...


class Delivers(Waits, Protocol):
    """A channel's half of a batch: deliver it once (``send.batch_loop.BatchChannel`` adds the rest)."""

    @property
    def result_type(self) -> type[BatchResult]: ...

    def deliver(self, batch: Batch) -> BatchResult:
        """Write the batch's one request and say what came back: a result (sent, or ``uncertain``
        when the request may have reached the server) or the error (``KwtSMSError``; a
        ``KwtSMSNetworkError`` says whether the request may have reached the server)."""


@dataclass
class _Tries:
    """The retries spent so far on one request, by kind."""

    trouble: int = 0  # network, 5xx, a relay's 4xx
    queue_full: int = 0
    rate_limited: int = 0


def send_batch(
    channel: Delivers, batch: Batch, *, paced: bool = False, guard: Callable[[], None] | None = None
) -> BatchResult:
    """One batch until it is answered: each try paced, guarded, and retried only when it certainly
    did not reach the server (module table). ``paced``: the caller took the first try's turn.

    Returns the result (sent, or ``uncertain``: never tried again); raises the ``KwtSMSError``
    that no retry fixed (ERR028 among them: the batch loop waits those out)."""
    tries = _Tries()
    while True:
        if not paced:
            channel.pace()
        paced = False  # a retry waits for its own turn
        if guard is not None:
            guard()  # the ledger's fence: raises when this try may no longer send
        try:
            return channel.deliver(batch)
        except KwtSMSNetworkError as exc:
            if exc.may_have_reached_server:
                return _lost(channel, batch, exc)
            _wait_or_raise(channel, exc, tries, "send", changes_state=True)
        except KwtSMSError as exc:
            _wait_or_raise(channel, exc, tries, "send", changes_state=True)


def read(channel: Waits, endpoint: str, call: Callable[[], T]) -> T:
    """A read-only request (``call`` takes its own turn at the rate): tried again on network
    trouble and 5xx (it changes nothing) and after a 429's wait, within the policy."""
    tries = _Tries()
    while True:
        try:
            return call()
        except KwtSMSError as exc:
            _wait_or_raise(channel, exc, tries, endpoint, changes_state=False)


def _wait_or_raise(
    channel: Waits, exc: KwtSMSError, tries: _Tries, what: str, *, changes_state: bool
) -> None:
    """Wait as the policy says for ``exc`` and return (try again), or raise ``exc``."""
    policy = channel.policy
    if exc.code == RATE_LIMITED and tries.rate_limited < policy.rate_limited_retries:
        tries.rate_limited += 1
        seconds = float(getattr(exc, "retry_after", DEFAULT_RETRY_AFTER))
        logger.warning("kwtSMS %s: rate limited (HTTP 429), waiting %.1f s", what, seconds)
        channel.hold(seconds)  # every request of the channel waits, not only this one
        return
    if exc.code == QUEUE_FULL and changes_state and tries.queue_full < policy.queue_full_retries:
        seconds = policy.queue_full_backoff(tries.queue_full, channel.rng)
        tries.queue_full += 1
        logger.warning(
            "kwtSMS %s: queue full (ERR013), retry %d/%d in %.1f s",
            what,
            tries.queue_full,
            policy.queue_full_retries,
            seconds,
        )
        channel.pause(seconds)
        return
    if _passing(exc, changes_state) and tries.trouble < policy.max_retries:
        seconds = policy.backoff(tries.trouble, channel.rng)
        tries.trouble += 1
        logger.warning(
            "kwtSMS %s: %s; retry %d/%d in %.2f s", what, exc.code, tries.trouble, policy.max_retries, seconds
        )
        channel.pause(seconds)
        return
    raise exc


def _passing(exc: KwtSMSError, changes_state: bool) -> bool:
    """Trouble on the way that may pass: the network, a 5xx, a relay's 4xx (a send's only when
    it certainly never reached the server; the caller has made sure)."""
    if isinstance(exc, KwtSMSNetworkError):
        return exc.code != RATE_LIMITED and worth_retrying(exc)
    # A channel's own passing trouble (a relay's 4xx): retryable, and not a gateway answer, whose
    # retryable codes (ERR013, ERR028, ...) each have their own rule.
    return changes_state and exc.retryable and exc.code not in ERRORS


def _lost(channel: Delivers, batch: Batch, exc: KwtSMSNetworkError) -> BatchResult:
    return channel.result_type(
        index=batch.index,
        numbers=list(batch.numbers),
        state=UNCERTAIN,
        error_code=exc.code,
        error_description=exc.description,
        may_have_reached_server=True,
        exception=exc,
    )
