"""One account's request rate shared by every process that sends for it: a GCRA in Redis or Postgres.

Each client paces itself with a :class:`~airflow_provider_kwtsms.rate.bucket.TokenBucket`, which knows
only its own process. Ten mapped sends of one account on two Celery workers are ten buckets, and
together they go ten times over the account's cap. A :class:`SharedBucket` keeps the same GCRA
state (the theoretical arrival time, TAT) in a store every worker reaches: the Celery broker
(Redis) or a Postgres database. One atomic step per request reserves the next start time; the
caller sleeps until then. Request starts of all processes together are then ``1 / rate`` apart,
plus the jitter guards of :func:`~airflow_provider_kwtsms.rate.bucket.interval`.

The store's own clock is used (Redis ``TIME``, Postgres ``clock_timestamp()``), so workers on
machines whose clocks disagree still share one time line. Tests pass ``clock=`` instead.

The store is never a reason to wait without limit:

- every call to it is given ``STORE_TIMEOUT`` seconds (run in a short-lived thread, so even a
  server that accepts and never answers, or a stopped one, costs that and no more); the drivers
  carry their own limits too (connect, statement and lock timeouts, TCP keep-alives);
- a call that fails, does not answer in time, or answers a wait longer than :func:`max_wait`
  (a store clock that stepped back, a damaged row) opens a circuit breaker: for
  ``STORE_PAUSE`` seconds the process skips the store and paces with the machine-wide pacer
  (``machine_rate``), then one probe asks the store again. One WARNING per outage says what
  happened and what it costs; the URL's secrets never appear in it (``store_url``).

Select it with the connection extra ``rate_store`` (``redis://host:6379/0`` or
``postgresql://user@host/db``). The key is a hash of the account and the gateway
(``machine_rate.gateway_target``), so any user name works and every spelling of one gateway's
URL is one key.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_kwtsms.coerce import as_rate
from airflow_provider_kwtsms.constants import MIN_RATE
from airflow_provider_kwtsms.rate.bucket import interval as pacing_interval
from airflow_provider_kwtsms.rate.store_url import StoreURL, describe, parse_store_url

if TYPE_CHECKING:
    from airflow_provider_kwtsms.rate.bucket import Pacer

__all__ = [
    "SharedBucket",
    "describe",
    "max_wait",
    "open_store",
    "postgres_options",
    "redis_client",
    "shared_bucket",
    "shared_key",
]

log = logging.getLogger(__name__)

KEY_PREFIX = "kwtsms:rate:"
SCHEMES = ("redis", "rediss", "postgresql", "postgres")
# Seconds one store call may take before the store counts as down: a LAN round trip is below a
# millisecond, a new TLS connection a few tens.
STORE_TIMEOUT = 1.0
STORE_PAUSE = 30.0  # seconds a store that failed is left alone before one probe
# A healthy wait is at most one hold (a 429's Retry-After, cut to the slowest interval when it is
# written to the store) plus QUEUE_TURNS turns of processes queued before this one. Longer is a
# damaged store (a store clock that stepped back an hour asked for a 3,600 s sleep).
QUEUE_TURNS = 64
MAX_HOLD = pacing_interval(MIN_RATE)  # 10.2 s


def max_wait(rate: float) -> float:
    """The longest wait a healthy store can answer at ``rate``: one hold and QUEUE_TURNS turns."""
    return MAX_HOLD + QUEUE_TURNS * pacing_interval(rate)


def shared_key(username: str, base_url: str) -> str:
    """The store key of one account at one gateway: a hash, so any user name (NUL, 10 KB of text)
    is a valid key, and the gateway as ``machine_rate.gateway_target`` spells it (one key for
    ``https://host``, ``https://HOST.:443/``...)."""
    from airflow_provider_kwtsms.rate.machine import gateway_target

    account = username.encode("utf-8", "surrogatepass")
    digest = hashlib.sha256(b"%d:%s@%s" % (len(account), account, gateway_target(base_url).encode()))
    return KEY_PREFIX + digest.hexdigest()


class RateStore(Protocol):
    """Where the shared TAT lives. ``now=None``: the store's own clock."""

    def reserve(self, key: str, interval: float, now: float | None = None) -> float:
        """Take the next request slot; return the seconds to wait before starting the request."""

    def hold(self, key: str, seconds: float, now: float | None = None) -> None:
        """Start no request for ``seconds`` from now (the gateway answered 429 with Retry-After)."""

    def repair(self, key: str, limit: float, now: float | None = None) -> None:
        """Forget a TAT more than ``limit`` seconds ahead (damage: no healthy process writes it)."""


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

    def repair(self, key: str, limit: float, now: float | None = None) -> None:
        with self._lock:
            when = self._clock() if now is None else now
            if self._tat.get(key, when) > when + limit:
                self._tat[key] = when


# ARGV: interval, now (negative: Redis's TIME), hold seconds (negative: reserve), repair limit
# (negative: none). Lua numbers are doubles; the answer is a string because Redis would cut a Lua
# number to an integer.
_REDIS_SCRIPT = """
local now = tonumber(ARGV[2])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local interval = tonumber(ARGV[1])
local hold = tonumber(ARGV[3])
local limit = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1]))
local new, wait
if limit >= 0 then
  if tat and tat > now + limit then redis.call('SET', KEYS[1], string.format('%.6f', now), 'PX', 60000) end
  return '0'
elseif hold >= 0 then
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


def redis_client(url: str | StoreURL, *, timeout: float = STORE_TIMEOUT) -> Any:
    """A redis-py client for a ``rate_store`` URL, bounded as the module doc says (the storm
    guard's alert store opens its Redis the same way)."""
    import redis  # comes with celery[redis]; only needed when this store is chosen
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    where = url if isinstance(url, StoreURL) else parse_store_url(url)
    options: dict[str, Any] = {
        "username": where.username,
        "password": where.password,
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "socket_keepalive": True,
        "health_check_interval": 30,
        "retry": Retry(NoBackoff(), 0),
    }
    host = where.host or "localhost"
    query = "&".join(f"{key}={value}" for key, value in where.query if "pass" not in key)
    # A URL without its user part, for the query options redis-py reads from a URL.
    clean = f"{where.scheme}://{f'[{host}]' if ':' in host else host}:{where.port or 6379}"
    clean += f"/{where.database or 0}" + (f"?{query}" if query else "")
    return redis.Redis.from_url(clean, **options)


class RedisRateStore:
    """The TAT in Redis (e.g. the Celery broker); one Lua script per step, so the step is atomic.

    Every socket operation has ``timeout`` (connect and read), TCP keep-alives are on, an idle
    connection is checked before use after 30 s, and redis-py's own retries are off: one failure
    is the breaker's to judge."""

    def __init__(self, url: str | StoreURL, *, timeout: float = STORE_TIMEOUT) -> None:
        self._redis = redis_client(url, timeout=timeout)
        self._script = self._redis.register_script(_REDIS_SCRIPT)

    def _run(self, key: str, interval: float, now: float | None, hold: float, limit: float = -1.0) -> float:
        when = -1.0 if now is None else now
        answer = self._script(keys=[key], args=[repr(interval), repr(when), repr(hold), repr(limit)])
        return float(answer)

    def reserve(self, key: str, interval: float, now: float | None = None) -> float:
        return self._run(key, interval, now, -1.0)

    def hold(self, key: str, seconds: float, now: float | None = None) -> None:
        self._run(key, 0.0, now, max(seconds, 0.0))

    def repair(self, key: str, limit: float, now: float | None = None) -> None:
        self._run(key, 0.0, now, -1.0, max(limit, 0.0))

    def close(self) -> None:
        self._redis.close()


_PG_TABLE = "CREATE TABLE IF NOT EXISTS kwtsms_rate (key text PRIMARY KEY, tat double precision NOT NULL)"
_PG_CLOCK = (
    "WITH clock AS (SELECT COALESCE(%(now)s, extract(epoch FROM clock_timestamp())::double precision) AS now)"
)
# One statement: the row lock of ON CONFLICT DO UPDATE orders concurrent reservations.
_PG_RESERVE = f"""{_PG_CLOCK}
INSERT INTO kwtsms_rate AS r (key, tat) SELECT %(key)s, now + %(interval)s FROM clock
ON CONFLICT (key) DO UPDATE SET tat = GREATEST(r.tat, (SELECT now FROM clock)) + %(interval)s
RETURNING r.tat - %(interval)s - (SELECT now FROM clock)
"""
_PG_HOLD = f"""{_PG_CLOCK}
INSERT INTO kwtsms_rate AS r (key, tat) SELECT %(key)s, now + %(hold)s FROM clock
ON CONFLICT (key) DO UPDATE SET tat = GREATEST(r.tat, (SELECT now FROM clock) + %(hold)s)
"""
_PG_REPAIR = f"""{_PG_CLOCK}
UPDATE kwtsms_rate SET tat = (SELECT now FROM clock)
WHERE key = %(key)s AND tat > (SELECT now FROM clock) + %(limit)s
"""
# Server-side limits of every statement (session settings: a pgbouncer in transaction mode drops
# them silently, where a startup ``options`` would refuse the connection).
_PG_LIMITS = (
    "SELECT set_config('statement_timeout', %(ms)s, false), set_config('lock_timeout', %(ms)s, false)"
)


def postgres_options(
    where: StoreURL, *, timeout: float = STORE_TIMEOUT, name: str = "kwtsms-rate"
) -> dict[str, Any]:
    """libpq's connect keywords for a ``rate_store`` URL, bounded as the class doc of
    :class:`PostgresRateStore` says (the storm guard's alert store connects the same way)."""
    millis = max(1, int(timeout * 1000))
    options: dict[str, Any] = {
        "connect_timeout": max(2, math.ceil(timeout)),  # libpq's least
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 3,
        "tcp_user_timeout": max(millis, 10_000),
        "application_name": name,
        **dict(where.query),
    }
    for key, value in (("host", where.host), ("port", where.port), ("dbname", where.database)):
        if value is not None:
            options[key] = value
    for key, value in (("user", where.username), ("password", where.password)):
        if value is not None:
            options[key] = value
    return options


class PostgresRateStore:
    """The TAT in a Postgres table ``kwtsms_rate`` (created when missing); autocommit, one row per key.

    Bounded everywhere libpq can bound it: ``connect_timeout``, TCP keep-alives (idle 5 s, then
    every 2 s, 3 probes) and ``tcp_user_timeout`` for a peer that vanished, and the server's
    ``statement_timeout`` and ``lock_timeout`` (``timeout``) for a row lock held or a slow server.
    A stopped server answers none of these: the SharedBucket's call timeout covers that case."""

    def __init__(self, url: str | StoreURL, *, timeout: float = STORE_TIMEOUT) -> None:
        try:
            import psycopg
        except ImportError:  # psycopg2 comes with apache-airflow-providers-postgres
            import psycopg2 as psycopg  # type: ignore[no-redef]

        self._connect = psycopg.connect
        self.where = where = url if isinstance(url, StoreURL) else parse_store_url(url)
        self._options = postgres_options(where, timeout=timeout)
        self._limits = {"ms": str(max(1, int(timeout * 1000)))}
        self._conn: Any = None  # connected on first use: a store down at start is the fallback's case
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"PostgresRateStore({self.where.shown!r})"

    def _execute(self, sql: str, params: dict[str, Any]) -> Any:
        with self._lock:
            if self._conn is None:
                conn = self._connect(**self._options)
                conn.autocommit = True
                try:
                    with conn.cursor() as cur:
                        cur.execute(_PG_LIMITS, self._limits)
                        try:
                            cur.execute(_PG_TABLE)
                        except Exception:
                            # Workers starting together race on CREATE TABLE IF NOT EXISTS (a unique
                            # violation in pg_type); the table is there when another one won.
                            cur.execute("SELECT 1 FROM kwtsms_rate LIMIT 0")
                except Exception:
                    conn.close()
                    raise
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

    def repair(self, key: str, limit: float, now: float | None = None) -> None:
        self._execute(_PG_REPAIR, {"key": key, "limit": max(limit, 0.0), "now": now})

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


def open_store(url: str | StoreURL, *, timeout: float = STORE_TIMEOUT) -> RateStore:
    """The store for a ``rate_store`` URL; a KwtSMSInputError (a ValueError) names what is wrong
    with it and shows no secret."""
    where = url if isinstance(url, StoreURL) else parse_store_url(url)
    if where.scheme in ("redis", "rediss"):
        return RedisRateStore(where, timeout=timeout)
    return PostgresRateStore(where, timeout=timeout)


class StoreTimeout(Exception):
    """A store call that did not answer within its time."""


class SharedBucket:
    """The client's pacer (``acquire()`` / ``pause()``, like TokenBucket) on a shared store.

    When the store fails (see the module doc) the request is paced by ``fallback`` instead, with
    one warning per outage: the machine-wide pacer (``machine_rate``) from :func:`shared_bucket`,
    so the processes of this machine still share the rate; by default (and with an injected
    ``clock``, for tests) a TokenBucket of this process. ``timeout`` bounds each store call,
    ``pause_for`` is how long the breaker stays open; ``monotonic`` (tests) is the breaker's clock.
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
        timeout: float = STORE_TIMEOUT,
        pause_for: float = STORE_PAUSE,
        monotonic: Callable[[], float] | None = None,
        scrub: Callable[[str], str] = lambda text: text,
    ) -> None:
        from airflow_provider_kwtsms.rate.bucket import TokenBucket

        self.rate = as_rate(rate)
        self.key = key
        self._interval = pacing_interval(self.rate)
        self._max_wait = max_wait(self.rate)
        self._store = store
        self._clock = clock  # None: the store's clock
        self._sleep = sleep
        self._where = where
        self._local: Pacer = fallback or (
            TokenBucket(self.rate, sleep=sleep, clock=clock) if clock else TokenBucket(self.rate, sleep=sleep)
        )
        self._timeout = timeout
        self._pause_for = pause_for
        self._monotonic = monotonic or clock or time.monotonic
        self._scrub = scrub
        self._lock = threading.Lock()
        self._down = False  # an outage is on (warned once)
        self._skip_until = -math.inf  # the breaker is open until then
        self._stuck: threading.Thread | None = None  # a call that did not answer in time
        self._held_until = -math.inf  # a Retry-After longer than the store keeps (MAX_HOLD)

    def __repr__(self) -> str:
        return f"SharedBucket(rate={self.rate:g}, {self._where})"

    def _now(self) -> float | None:
        return None if self._clock is None else self._clock()

    # -- the breaker -------------------------------------------------------------------------------
    def _may_ask(self) -> bool:
        """True when the store may be asked: the breaker is closed, or this caller is its one probe."""
        with self._lock:
            if self._stuck is not None and self._stuck.is_alive():
                return False  # the last call still has no answer: the store is still down
            self._stuck = None
            now = self._monotonic()
            if now < self._skip_until:
                return False
            if self._down:
                self._skip_until = now + self._pause_for  # the probe: the others keep skipping
            return True

    def _failed(self, problem: str) -> None:
        with self._lock:
            self._skip_until = self._monotonic() + self._pause_for
            if self._down:
                return  # once per outage, not once per request
            self._down = True
        log.warning(
            "kwtSMS shared rate at %s unavailable (%s); for the next %g s this process skips it and "
            "paces with this machine's processes only, then asks it once again. Meanwhile each "
            "machine paces alone: machines sending for this account together may go over the rate",
            self._where,
            problem,
            self._pause_for,
        )

    def _answered(self) -> None:
        with self._lock:
            if not self._down:
                return
            self._down = False
            self._skip_until = -math.inf
        log.info("kwtSMS shared rate at %s answers again: the machines share the rate again", self._where)

    def _call(self, action: Callable[..., Any], *args: Any) -> Any:
        """``action(*args)`` in a short-lived thread, given ``timeout`` seconds to answer."""
        answer: list[Any] = []
        failure: list[BaseException] = []
        done = threading.Event()

        def run() -> None:
            try:
                answer.append(action(*args))
            except BaseException as exc:  # handed to the caller
                failure.append(exc)
            finally:
                done.set()

        worker = threading.Thread(target=run, name="kwtsms-rate-store", daemon=True)
        worker.start()
        if not done.wait(self._timeout):
            with self._lock:
                self._stuck = worker
            raise StoreTimeout(f"no answer within {self._timeout:g} s")
        if failure:
            raise failure[0]
        return answer[0] if answer else None

    def _fault(self, exc: BaseException) -> None:
        if isinstance(exc, StoreTimeout):
            self._failed(str(exc))
        else:
            self._failed(f"{type(exc).__name__}: {self._scrub(str(exc))}")

    # -- the pacer ---------------------------------------------------------------------------------
    def acquire(self) -> float:
        """Wait for this process's turn among all that share the key; return the seconds waited."""
        held = self._held_until - self._monotonic()
        if held > 0:
            self._sleep(held)
        return max(held, 0.0) + self._turn()

    def _turn(self) -> float:
        if not self._may_ask():
            return self._local.acquire()
        try:
            wait = float(self._call(self._store.reserve, self.key, self._interval, self._now()))
        except Exception as exc:  # any store failure: pace on this machine rather than stop the send
            self._fault(exc)
            return self._local.acquire()
        if not -0.01 <= wait <= self._max_wait:  # NaN fails too: an answer is untrusted
            self._failed(
                f"it answered a wait of {wait:.6g} s, outside 0 to {self._max_wait:.3g} s: a store "
                "clock that stepped back, or a damaged row; the row is reset"
            )
            try:
                self._call(self._store.repair, self.key, self._max_wait, self._now())
            except Exception:  # the breaker is open already; the next probe sees it again
                log.debug("kwtSMS shared rate: repair of %s failed", self._where, exc_info=True)
            return self._local.acquire()
        self._answered()
        if wait > 0:
            self._sleep(wait)
        return max(wait, 0.0)

    def _hold(self, seconds: float) -> None:
        if not self._may_ask():
            return
        try:
            self._call(self._store.hold, self.key, min(seconds, MAX_HOLD), self._now())
        except Exception as exc:
            self._fault(exc)

    def started(self) -> None:
        """The request of the last turn starts now: a late start pushes the turns not handed out
        yet back, here and in the store."""
        self._local.started()
        self._hold(self._interval)

    def pause(self, seconds: float) -> None:
        """Hold every process's requests back for ``seconds`` (a 429's Retry-After; at most
        ``MAX_HOLD`` in the store, whose waits are bounded)."""
        self._local.pause(seconds)
        if seconds > MAX_HOLD:
            with self._lock:
                self._held_until = max(self._held_until, self._monotonic() + seconds)
        self._hold(seconds)


def shared_bucket(
    url: str,
    *,
    username: str,
    base_url: str,
    rate: float,
    password: str | None = None,
    timeout: float = STORE_TIMEOUT,
) -> SharedBucket:
    """The SharedBucket for one account at one gateway, from the connection's ``rate_store``
    (``password``: the extra ``rate_store_password``); when the store fails, the machine-wide
    pacer of that gateway takes over."""
    from airflow_provider_kwtsms.rate.machine import MachineBucket, gateway_target

    where = parse_store_url(url, password=password)
    return SharedBucket(
        open_store(where, timeout=timeout),
        shared_key(username, base_url),
        rate,
        where=where.shown,
        fallback=MachineBucket(gateway_target(base_url), rate),
        timeout=timeout,
        scrub=where.scrub,
    )
