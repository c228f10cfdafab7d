"""A token bucket that paces API requests at the account's rate, in one process.

The seed client sleeps 0.5 s *after* each request, so a request that takes 100 ms makes the
real gap 0.6 s and the send runs at 83 % of the allowed rate. Here the gap is measured from
one request's start to the next one's start: the time a request takes is part of the gap,
not added on top of it.

There is no burst: request starts are at least :func:`interval` apart, so no second ever holds
more than ``rate`` starts, and ``rate`` is at most 5 (``coerce.as_rate``): above that the
gateway's firewall blocks the caller's IP. The interval carries a guard against jitter between a
start here and its arrival there: 2 % (``constants.RATE_GUARD``), and near the firewall's 5 a
second, at least ``constants.FIREWALL_SLACK`` (100 ms) over any six starts.

Processes of one machine share one pace through ``machine_rate``; machines share it through
``shared_rate`` (Redis or Postgres). This bucket is what both fall back to, and what a client
with an injected clock (tests) uses.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

from airflow_provider_kwtsms.coerce import as_rate
from airflow_provider_kwtsms.constants import FIREWALL_SLACK, LATE_START, MAX_RATE, RATE_GUARD


class Pacer(Protocol):
    """What a client needs to pace its requests: TokenBucket here, MachineBucket for the machine,
    SharedBucket across machines."""

    def acquire(self) -> float: ...

    def started(self) -> bool | None:
        """The request of this thread's last turn starts now (a late start pushes the next turns
        back). False: the turn passed more than ``LATE_START`` ago, the request must not start
        and takes a new turn (``acquire``). Optional: the client calls it when the pacer has it;
        None counts as True."""

    def pause(self, seconds: float) -> None: ...


def turn_missed(turn: threading.local, now: float) -> bool:
    """Take this thread's last turn (``turn.start``, set when it was handed out) and say whether it
    passed more than ``LATE_START`` before ``now``: then its request must not start (the turns
    after it are handed out) and takes a new turn."""
    start, turn.start = getattr(turn, "start", None), None
    return start is not None and now - start > LATE_START


def interval(rate: float) -> float:
    """Seconds from one request's start to the next one's at ``rate`` (checked), guards included:
    2 % over the rate's own spacing, and never closer than six starts in 1.1 s (the firewall's 5
    a second and 100 ms for the path's jitter)."""
    return max((1.0 + RATE_GUARD) / as_rate(rate), (1.0 + FIREWALL_SLACK) / MAX_RATE)


class TokenBucket:
    """Hands out one token per request, ``interval(rate)`` apart; no burst is ever saved up.

    ``clock`` and ``sleep`` are injectable for tests; the defaults are real
    (``time.monotonic`` and ``time.sleep``). Thread-safe: several threads sharing one client
    share its rate.
    """

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = as_rate(rate)
        self._interval = interval(self.rate)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        # The theoretical arrival time (GCRA with one token): the earliest start of the next request.
        self._tat = float("-inf")
        self._turn = threading.local()  # each thread's last start handed out (see started())

    def reserve(self) -> float:
        """Take the next token; return how many seconds to wait before using it."""
        with self._lock:
            now = self._clock()
            start = max(self._tat, now)
            self._tat = start + self._interval
            self._turn.start = start
            return start - now

    def acquire(self) -> float:
        """Wait for a token (sleeping as needed); return the seconds waited."""
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
        return max(wait, 0.0)

    def started(self) -> bool:
        """The request of this thread's last token starts now: the next token is one interval
        after it. False when the token is more than ``LATE_START`` old: take a new one."""
        with self._lock:
            now = self._clock()
            if turn_missed(self._turn, now):
                return False
            self._tat = max(self._tat, now + self._interval)
            return True

    def pause(self, seconds: float) -> None:
        """Hold every request back for ``seconds`` from now (the server said Retry-After)."""
        with self._lock:
            self._tat = max(self._tat, self._clock() + max(seconds, 0.0))
