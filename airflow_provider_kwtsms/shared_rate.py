"""One account's request rate shared by every process that sends for it: a GCRA in Redis or Postgres.

Each client paces itself with a :class:`~airflow_provider_kwtsms.pacing.TokenBucket`, which knows
only its own process. Ten mapped sends of one account on two Celery workers are ten buckets, and
together they go ten times over the account's cap. A :class:`SharedBucket` keeps the same GCRA
state (the theoretical arrival time, TAT) in a store every worker reaches: the Celery broker
(Redis) or a Postgres database. One atomic step per request reserves the next start time; the
caller sleeps until then. Request starts of all processes together are then ``1 / rate`` apart
(plus the jitter guard of ``pacing.interval``). When the store fails, the processes of each
machine still share the rate through ``machine_rate``.

The store's own clock is used (Redis ``TIME``, Postgres ``clock_timestamp()``), so workers on
machines whose clocks disagree still share one time line. Tests pass ``clock=`` instead.

Select it with the connection extra ``rate_store`` (``redis://host:6379/0`` or
``postgresql://user@host/db``). Only the scheme, host, port and database are logged, never a
password in the URL.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from airflow_provider_kwtsms.coerce import as_rate

if TYPE_CHECKING:
    from airflow_provider_kwtsms.pacing import Pacer

log = logging.getLogger(__name__)

KEY_PREFIX = "kwtsms:rate:"
SCHEMES = ("redis", "rediss", "postgresql", "postgres")


class RateStore(Protocol):
    """Where the shared TAT lives. ``now=None``: the store's own clock."""

    def reserve(self, key: str, interval: float, now: float | None = None) -> float:
        """Take the next request slot; return the seconds to wait before starting the request."""

    def hold(self, key: str, seconds: float, now: float | None = None) -> None:
        """Start no request for ``seconds`` from now (the gateway answered 429 with Retry-After)."""


def gcra_reserve(tat: float | None, now: float, interval: float) -> tuple[float, float]:
    """The GCRA step with one token: ``(new TAT, seconds to wait)``; the same rule as TokenBucket."""
    start = now if tat is None else max(tat, now)
    return start + interval, start - now


def gcra_hold(tat: float | None, now: float, seconds: float) -> float:
    """The TAT after a Retry-After of ``seconds``."""
    until = now + max(seconds, 0.0)
    return until if tat is None else max(tat, until)


class MemoryRateStore:
    """A store in this process (tests, and the fallback's shape): the GCRA on a dict."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tat: dict[str, float] = {}
        self._lock = threading.Lock()

    def reserve(self, key: str, interval: float, now: float | None = None) -> float:
        with self._lock:
            when = self._clock() if now is None else now
            self._tat[key], wait = gcra_reserve(self._tat.get(key), when, interval)
            return wait

    def hold(self, key: str, seconds: float, now: float | None = None) -> None:
        with self._lock:
            self._tat[key] = gcra_hold(self._tat.get(key), self._clock() if now is None else now, seconds)


# ARGV: interval, now (negative: Redis's TIME), hold seconds (negative: reserve). Lua numbers are
# doubles; the answer is a string because Redis would cut a Lua number to an integer.
_REDIS_SCRIPT = """
local now = tonumber(ARGV[2])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local interval = tonumber(ARGV[1])
local hold = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]))
local new, wait
if hold >= 0 then
  new = now + hold
  if tat and tat > new then new = tat end
  wait = 0
else
  local start = now
  if tat and tat > now then start = tat end
  new = start + interval
  wait = start - now
end
redis.call('SET', KEYS[1], string.format('%.6f', new), 'PX', math.ceil((new - now) * 1000) + 60000)
return string.format('%.6f', wait)
"""


class RedisRateStore:
    """The TAT in Redis (e.g. the Celery broker); one Lua script per step, so the step is atomic."""

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        import redis  # comes with celery[redis]; only needed when this store is chosen

        self._redis = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self._script = self._redis.register_script(_REDIS_SCRIPT)

    def _run(self, key: str, interval: float, now: float | None, hold: float) -> float:
        when = -1.0 if now is None else now
        answer = self._script(keys=[key], args=[repr(interval), repr(when), repr(hold)])
        return float(answer)

    def reserve(self, key: str, interval: float, now: float | None = None) -> float:
        return self._run(key, interval, now, -1.0)

    def hold(self, key: str, seconds: float, now: float | None = None) -> None:
        self._run(key, 0.0, now, max(seconds, 0.0))

    def close(self) -> None:
        self._redis.close()


_PG_TABLE = "CREATE TABLE IF NOT EXISTS kwtsms_rate (key text PRIMARY KEY, tat double precision NOT NULL)"
# One statement: the row lock of ON CONFLICT DO UPDATE orders concurrent reservations.
_PG_RESERVE = """
WITH clock AS (SELECT COALESCE(%(now)s, extract(epoch FROM clock_timestamp())::double precision) AS now)
INSERT INTO kwtsms_rate AS r (key, tat) SELECT %(key)s, now + %(interval)s FROM clock
ON CONFLICT (key) DO UPDATE SET tat = GREATEST(r.tat, (SELECT now FROM clock)) + %(interval)s
RETURNING r.tat - %(interval)s - (SELECT now FROM clock)
"""
_PG_HOLD = """
WITH clock AS (SELECT COALESCE(%(now)s, extract(epoch FROM clock_timestamp())::double precision) AS now)
INSERT INTO kwtsms_rate AS r (key, tat) SELECT %(key)s, now + %(hold)s FROM clock
ON CONFLICT (key) DO UPDATE SET tat = GREATEST(r.tat, (SELECT now FROM clock) + %(hold)s)
"""


class PostgresRateStore:
    """The TAT in a Postgres table ``kwtsms_rate`` (created when missing); autocommit, one row per key."""

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        try:
            import psycopg
        except ImportError:  # psycopg2 comes with apache-airflow-providers-postgres
            import psycopg2 as psycopg  # type: ignore[no-redef]

        self._connect = psycopg.connect
        self._dsn = url.replace("postgresql+psycopg2://", "postgresql://").replace(
            "postgresql+psycopg://", "postgresql://"
        )
        self._timeout = max(1, int(timeout))
        self._conn: Any = None  # connected on first use: a store down at start is the fallback's case
        self._lock = threading.Lock()

    def _execute(self, sql: str, params: dict[str, Any]) -> Any:
        with self._lock:
            if self._conn is None:
                conn = self._connect(self._dsn, connect_timeout=self._timeout)
                conn.autocommit = True
                try:
                    with conn.cursor() as cur:
                        cur.execute(_PG_TABLE)
                except Exception:
                    # Workers starting together race on CREATE TABLE IF NOT EXISTS (a unique
                    # violation in pg_type); the table is there when another one won.
                    with conn.cursor() as cur:
                        cur.execute("SELECT 1 FROM kwtsms_rate LIMIT 0")
                self._conn = conn
            try:
                with self._conn.cursor() as cur:
                    cur.execute(sql, params)
                    return cur.fetchone() if cur.description else None
            except Exception:
                self._conn.close()
                self._conn = None  # reconnect next time
                raise

    def reserve(self, key: str, interval: float, now: float | None = None) -> float:
        row = self._execute(_PG_RESERVE, {"key": key, "interval": interval, "now": now})
        return float(row[0])

    def hold(self, key: str, seconds: float, now: float | None = None) -> None:
        self._execute(_PG_HOLD, {"key": key, "hold": max(seconds, 0.0), "now": now})

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


def describe(url: str) -> str:
    """The store URL without user or password, for log lines and errors."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"


def open_store(url: str) -> RateStore:
    """The store for a ``rate_store`` URL; ValueError names what is wrong with it."""
    scheme = urlsplit(url).scheme.lower().split("+")[0]
    if scheme in ("redis", "rediss"):
        return RedisRateStore(url)
    if scheme in ("postgresql", "postgres"):
        return PostgresRateStore(url)
    raise ValueError(
        f"rate_store {describe(url)!r} has an unknown scheme {scheme!r}: give redis://host:port/db "
        "(e.g. the Celery broker) or postgresql://user@host:port/database."
    )


class SharedBucket:
    """The client's pacer (``acquire()`` / ``pause()``, like TokenBucket) on a shared store.

    When the store cannot be reached the request is paced by ``fallback`` instead, with one
    warning per outage: the machine-wide pacer (``machine_rate``) from :func:`shared_bucket`, so the
    processes of this machine still share the rate; by default (and with an injected ``clock``,
    for tests) a TokenBucket of this process.
    """

    def __init__(
        self,
        store: RateStore,
        key: str,
        rate: float,
        *,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        where: str = "the rate store",
        fallback: Pacer | None = None,
    ) -> None:
        from airflow_provider_kwtsms.pacing import TokenBucket, interval

        self.rate = as_rate(rate)
        self.key = key
        self._interval = interval(self.rate)
        self._store = store
        self._clock = clock  # None: the store's clock
        self._sleep = sleep
        self._where = where
        self._local: Pacer = fallback or (
            TokenBucket(self.rate, sleep=sleep, clock=clock) if clock else TokenBucket(self.rate, sleep=sleep)
        )
        self._failing = False

    def _now(self) -> float | None:
        return None if self._clock is None else self._clock()

    def _failed(self, exc: Exception) -> None:
        if not self._failing:  # once per outage, not once per request
            self._failing = True
            log.warning(
                "kwtSMS shared rate at %s unavailable (%s); pacing with this machine's processes only",
                self._where,
                exc,
            )

    def acquire(self) -> float:
        """Wait for this process's turn among all that share the key; return the seconds waited."""
        try:
            wait = self._store.reserve(self.key, self._interval, self._now())
        except Exception as exc:  # any store failure: pace on this machine rather than stop the send
            self._failed(exc)
            return self._local.acquire()
        if self._failing:
            self._failing = False
            log.warning("kwtSMS shared rate at %s is back", self._where)
        if wait > 0:
            self._sleep(wait)
        return max(wait, 0.0)

    def started(self) -> None:
        """The request of the last turn starts now: a late start pushes the turns not handed out
        yet back, here and in the store."""
        self._local.started()
        try:
            self._store.hold(self.key, self._interval, self._now())
        except Exception as exc:
            self._failed(exc)

    def pause(self, seconds: float) -> None:
        """Hold every process's requests back for ``seconds`` (a 429's Retry-After)."""
        self._local.pause(seconds)
        try:
            self._store.hold(self.key, seconds, self._now())
        except Exception as exc:
            self._failed(exc)


def shared_bucket(url: str, *, username: str, base_url: str, rate: float) -> SharedBucket:
    """The SharedBucket for one account at one gateway, from the connection's ``rate_store``; when
    the store fails, the machine-wide pacer of that gateway takes over."""
    from airflow_provider_kwtsms.machine_rate import MachineBucket, gateway_target

    host = urlsplit(base_url).netloc.lower()
    return SharedBucket(
        open_store(url),
        f"{KEY_PREFIX}{username}@{host}",
        rate,
        where=describe(url),
        fallback=MachineBucket(gateway_target(base_url), rate),
    )
