"""How hard the client tries: the retry policy and which failures are worth another try."""

from __future__ import annotations

from dataclasses import dataclass

from airflow_provider_kwtsms.constants import SAME_NUMBER_WAIT
from airflow_provider_kwtsms.errors import KwtSMSNetworkError


@dataclass(frozen=True)
class RetryPolicy:
    """How hard the client tries. Every wait is bounded; the defaults suit production.

    - ``max_retries``: extra tries for read-only calls on network errors and 5xx, and for a
      send whose request certainly never reached the server. Waits: full jitter,
      ``uniform(0, min(backoff_cap, backoff_base * 2**n))``.
    - ``queue_full_retries``: extra tries of a send answered ERR013 (queue full). Waits:
      "equal jitter" (half fixed, half random) from ``queue_full_base`` doubling up to
      ``queue_full_cap``, so each wait gives the queue real time to drain.
    - ``same_number_wait``: seconds waited before resending a batch answered ERR028 (15 s rule,
      plus a margin for clock differences).
    - ``same_number_retries``: how many times one batch (an alert) waits ERR028 out. A burst of
      alerts to one on-call number from several processes goes through one per 15 s: each wait
      lets one more in, so the default carries a burst of four. A bulk send waits once per
      batch (batch_loop sends such batches last instead).
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
    same_number_wait: float = SAME_NUMBER_WAIT
    same_number_retries: int = 3
    rate_limited_retries: int = 10
    max_consecutive_uncertain: int = 3


def worth_retrying(exc: KwtSMSNetworkError) -> bool:
    """Network trouble and 5xx may pass; a 3xx/4xx without a kwtSMS answer will not."""
    return exc.http_status is None or exc.http_status >= 500 or exc.code == "BAD_ANSWER"
