"""How hard a send tries: the one retry policy, its waits, and which failures are worth another try.

The numbers live here; the engine (``send.engine`` for one request, ``send.batch_loop`` for a
batch answered ERR028) applies them, for every channel and every path.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, fields

from airflow_provider_kwtsms.constants import SAME_NUMBER_WAIT
from airflow_provider_kwtsms.errors import KwtSMSInputError, KwtSMSNetworkError

_COUNTS = ("max_retries", "queue_full_retries", "same_number_retries", "rate_limited_retries")
_MOST_TRIES = 1000  # a bound far above any sensible setting: a typo must not mean "for ever"
_LONGEST_WAIT = 3600.0


@dataclass(frozen=True)
class RetryPolicy:
    """How hard a send tries. Every wait is bounded; the defaults suit production.

    - ``max_retries``: extra tries for read-only calls on network errors and 5xx, and for a
      send whose request certainly never reached the server (no connection, a relay's 4xx).
      Waits: full jitter, ``uniform(0, min(backoff_cap, backoff_base * 2**n))``.
    - ``queue_full_retries``: extra tries of a send answered ERR013 (queue full). Waits:
      "equal jitter" (half fixed, half random) from ``queue_full_base`` doubling up to
      ``queue_full_cap``, so each wait gives the queue real time to drain.
    - ``same_number_wait``: seconds a batch answered ERR028 waits before it goes again (the 15 s
      rule, plus a margin for clock differences).
    - ``same_number_retries``: how many times one batch waits ERR028 out (the other batches go
      meanwhile). A burst of alerts to one on-call number from several processes goes through
      one per 15 s: each wait lets one more in, so the default carries a burst of four.
    - ``rate_limited_retries``: HTTP 429 answers waited out (``Retry-After``) before giving up.
    - ``max_consecutive_uncertain``: a bulk send stops after this many batches in a row whose
      answer was lost (the service is failing; going on could charge for unknown sends).

    A bad value (a negative count, a wait that is not a number) raises ``KwtSMSInputError``.
    """

    max_retries: int = 3
    backoff_base: float = 0.5
    backoff_cap: float = 10.0
    queue_full_retries: int = 5
    queue_full_base: float = 5.0
    queue_full_cap: float = 60.0
    same_number_wait: float = SAME_NUMBER_WAIT
    same_number_retries: int = 3
    rate_limited_retries: int = 10
    max_consecutive_uncertain: int = 3

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name in _COUNTS or field.name == "max_consecutive_uncertain":
                low = 1 if field.name == "max_consecutive_uncertain" else 0
                if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= _MOST_TRIES:
                    raise KwtSMSInputError(
                        f"{field.name} must be a whole number from {low} to {_MOST_TRIES}, got {value!r}"
                    )
            elif (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not (math.isfinite(value) and 0 <= value <= _LONGEST_WAIT)
            ):
                raise KwtSMSInputError(
                    f"{field.name} must be seconds from 0 to {_LONGEST_WAIT:g}, got {value!r}"
                )

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """The wait before retry ``attempt + 1`` after trouble on the way (full jitter)."""
        return rng.uniform(0.0, min(self.backoff_cap, self.backoff_base * 2.0**attempt))

    def queue_full_backoff(self, attempt: int, rng: random.Random) -> float:
        """The wait before retry ``attempt + 1`` of a send answered ERR013 (equal jitter)."""
        delay = min(self.queue_full_cap, self.queue_full_base * 2.0**attempt)
        return delay / 2 + rng.uniform(0, delay / 2)


def worth_retrying(exc: KwtSMSNetworkError) -> bool:
    """Network trouble and 5xx may pass; a 3xx/4xx without a kwtSMS answer will not."""
    return exc.http_status is None or exc.http_status >= 500 or exc.code == "BAD_ANSWER"
