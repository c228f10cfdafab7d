"""A token bucket that paces API requests at the account's rate.

The seed client sleeps 0.5 s *after* each request, so a request that takes 100 ms makes the
real gap 0.6 s and the send runs at 83 % of the allowed rate. Here the gap is measured from
one request's start to the next one's start: the time a request takes is part of the gap,
not added on top of it. With ``burst=1`` (the default) request starts are at least
``1 / rate`` seconds apart, so no window of any length ever holds more than the rate allows.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol


class Pacer(Protocol):
    """What a client needs to pace its requests: TokenBucket here, SharedBucket across processes."""

    def acquire(self) -> float: ...

    def pause(self, seconds: float) -> None: ...


class TokenBucket:
    """Hands out one token per request, refilled at ``rate`` per second, holding at most ``burst``.

    ``clock`` and ``sleep`` are injectable for tests; the defaults are real
    (``time.monotonic`` and ``time.sleep``). Thread-safe: several threads sharing one client
    share its rate.
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not rate or rate <= 0:
            raise ValueError(f"rate must be a positive number of requests per second, got {rate!r}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst!r}")
        self.rate = float(rate)
        self.burst = int(burst)
        self._interval = 1.0 / self.rate
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        # The theoretical arrival time (GCRA): the bucket is full when it is <= now - burst interval.
        self._tat = float("-inf")

    def reserve(self) -> float:
        """Take the next token; return how many seconds to wait before using it."""
        with self._lock:
            now = self._clock()
            earliest = max(self._tat, now)
            start = max(now, earliest - (self.burst - 1) * self._interval)
            self._tat = earliest + self._interval
            return start - now

    def acquire(self) -> float:
        """Wait for a token (sleeping as needed); return the seconds waited."""
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
        return max(wait, 0.0)

    def pause(self, seconds: float) -> None:
        """Hold every request back for ``seconds`` from now (the server said Retry-After)."""
        with self._lock:
            until = self._clock() + max(seconds, 0.0) + (self.burst - 1) * self._interval
            self._tat = max(self._tat, until)
