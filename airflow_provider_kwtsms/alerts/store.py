"""Where the storm guard keeps its records: one store every process of the deployment shares.

``update(key, change)`` is the one operation: read the key's record, let ``change`` compute the
new one, write it, atomically against every other process of the store (two alerts at the same
instant: one sends, the other is counted). Records are small JSON objects.

- ``rate_store`` set on the connection (Redis or Postgres, the account's shared rate,
  ``rate.shared``): the same server, opened and bounded the same way. Redis: WATCH/MULTI on one
  key, retried when another process wrote it in between. Postgres: a row lock (``SELECT ... FOR
  UPDATE``) in one transaction, table ``kwtsms_alerts``.
- Otherwise the machine's folder: ``$KWTSMS_ALERT_DIR``, else ``<temp>/kwtsms-alerts-<uid>``
  (0700, this user's, as ``rate.machine``'s pace files), one file per key under ``fcntl.flock``.

:class:`GuardedStore` bounds every call (``STORE_TIMEOUT``, in a short-lived thread: a server
that never answers costs that and no more) and, when the shared store fails, uses the machine's
folder for ``STORE_PAUSE`` seconds (the guard then works per machine) with one WARNING; when that
fails too it raises :class:`AlertStoreUnavailable` and the notifier sends the alert unguarded
(fail-open: a broken guard never loses an alert).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from airflow_provider_kwtsms.errors import KwtSMSError
from airflow_provider_kwtsms.rate.machine import prepare_dir
from airflow_provider_kwtsms.rate.shared import STORE_PAUSE, STORE_TIMEOUT, postgres_options, redis_client
from airflow_provider_kwtsms.rate.store_url import StoreURL, parse_store_url

try:
    import fcntl
except ImportError:  # not a POSIX system: no machine folder (the shared store, or unguarded)
    fcntl = None  # type: ignore[assignment]

T = TypeVar("T")
Change = Callable[[Any], tuple[Any, T]]

log = logging.getLogger(__name__)

ENV_DIR = "KWTSMS_ALERT_DIR"
RECORD_BYTES = 64 * 1024  # a record is a few hundred bytes; more is damage, read as nothing
KEEP_FOR = 8 * 86400  # seconds a record outlives its last change (the daily cap needs a day)
REDIS_PREFIX = "kwtsms:alerts:"
WATCH_TRIES = 50


class AlertStoreUnavailable(KwtSMSError):
    """Neither the shared store nor the machine's folder answered: the alert goes out unguarded."""

    def __init__(self, reason: str) -> None:
        super().__init__("ALERT_STORE", reason, action="the alert is sent without the storm guard")


class AlertStore(Protocol):
    def update(self, key: str, change: Change[T]) -> T:
        """Atomically: ``new, result = change(record)``; store ``new`` (None: keep the record)."""


def hashed(key: str) -> str:
    """A key as stored: a hash, so a DAG id or number never shapes a file name or a Redis key."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def decode(raw: bytes | str | None) -> Any:
    """A stored record, or None for nothing or damage (the guard reads the rest as untrusted)."""
    if not raw or len(raw) > RECORD_BYTES:
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None


def encode(record: Any) -> bytes:
    return json.dumps(record, separators=(",", ":"), allow_nan=False).encode("utf-8")


class MemoryAlertStore:
    """A store in this process (tests)."""

    def __init__(self) -> None:
        self.records: dict[str, Any] = {}
        self._lock = threading.Lock()

    def update(self, key: str, change: Change[T]) -> T:
        with self._lock:
            new, result = change(decode(encode(self.records.get(key))))
            if new is not None:
                self.records[key] = new
            return result


def alert_dir() -> str:
    chosen = os.environ.get(ENV_DIR, "").strip()
    if chosen:
        return chosen
    user = os.getuid() if hasattr(os, "getuid") else "user"
    return os.path.join(tempfile.gettempdir(), f"kwtsms-alerts-{user}")


class FileAlertStore:
    """One file per key in this machine's folder, changed under ``fcntl.flock`` (the kernel frees
    the lock when a process dies). A lock not free within ``timeout`` is a failure, never a hang."""

    def __init__(self, directory: str | None = None, *, timeout: float = STORE_TIMEOUT) -> None:
        if fcntl is None:
            raise OSError("this OS has no fcntl.flock")
        self.directory = directory or alert_dir()
        self.timeout = timeout
        prepare_dir(self.directory)

    def __repr__(self) -> str:
        return f"FileAlertStore({self.directory!r})"

    def _open(self, key: str) -> int:
        path = os.path.join(self.directory, hashed(key) + ".alert")
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(path, flags, 0o600)
        except FileNotFoundError:  # a temp cleaner removed the folder
            prepare_dir(self.directory)
            fd = os.open(path, flags, 0o600)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise OSError(f"{path} is not a regular file")
        return fd

    def update(self, key: str, change: Change[T]) -> T:
        assert fcntl is not None
        fd = self._open(key)
        try:
            deadline = time.monotonic() + self.timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        problem = f"the lock of {self.directory} was not free within {self.timeout:g} s"
                        raise OSError(problem) from None
                    time.sleep(0.002)
            new, result = change(decode(os.pread(fd, RECORD_BYTES + 1, 0)))
            if new is not None:
                data = encode(new)
                os.pwrite(fd, data, 0)
                os.ftruncate(fd, len(data))
            return result
        finally:
            os.close(fd)  # releases the lock


class RedisAlertStore:
    """Records in Redis (the account's ``rate_store``): an optimistic transaction per change."""

    def __init__(self, url: str | StoreURL, *, timeout: float = STORE_TIMEOUT) -> None:
        self._redis = redis_client(url, timeout=timeout)

    def update(self, key: str, change: Change[T]) -> T:
        from redis.exceptions import WatchError

        name = REDIS_PREFIX + hashed(key)
        with self._redis.pipeline() as pipe:
            for _ in range(WATCH_TRIES):
                try:
                    pipe.watch(name)
                    new, result = change(decode(pipe.get(name)))
                    pipe.multi()
                    if new is not None:
                        pipe.set(name, encode(new), ex=KEEP_FOR)
                    pipe.execute()
                    return result
                except WatchError:  # another process changed it first: read it again
                    continue
        raise OSError(f"Redis: the record kept changing under {WATCH_TRIES} tries")


_PG_TABLE = (
    "CREATE TABLE IF NOT EXISTS kwtsms_alerts (key text PRIMARY KEY, record text, changed double precision)"
)
_PG_LIMITS = (
    "SELECT set_config('statement_timeout', %(ms)s, false), set_config('lock_timeout', %(ms)s, false)"
)


class PostgresAlertStore:
    """Records in a Postgres table ``kwtsms_alerts`` (created when missing): a row lock per change."""

    def __init__(self, url: str | StoreURL, *, timeout: float = STORE_TIMEOUT) -> None:
        try:
            import psycopg
        except ImportError:  # psycopg2 comes with apache-airflow-providers-postgres
            import psycopg2 as psycopg  # type: ignore[no-redef]

        self._connect = psycopg.connect
        where = url if isinstance(url, StoreURL) else parse_store_url(url)
        self._options = postgres_options(where, timeout=timeout, name="kwtsms-alerts")
        self._limits = {"ms": str(max(1, int(timeout * 1000)))}
        self._conn: Any = None
        self._lock = threading.Lock()

    def _connection(self) -> Any:
        if self._conn is None:
            conn = self._connect(**self._options)
            try:
                conn.autocommit = True
                with conn.cursor() as cur:
                    cur.execute(_PG_LIMITS, self._limits)
                    try:
                        cur.execute(_PG_TABLE)
                    except Exception:  # another process created it at the same moment
                        cur.execute("SELECT 1 FROM kwtsms_alerts LIMIT 0")
                conn.autocommit = False
            except Exception:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def update(self, key: str, change: Change[T]) -> T:
        name = hashed(key)
        with self._lock:
            conn = self._connection()
            try:
                with conn.cursor() as cur:
                    cur.execute(
                        "INSERT INTO kwtsms_alerts (key, record, changed) VALUES (%s, NULL, 0) "
                        "ON CONFLICT (key) DO NOTHING",
                        (name,),
                    )
                    cur.execute("SELECT record FROM kwtsms_alerts WHERE key = %s FOR UPDATE", (name,))
                    row = cur.fetchone()
                    new, result = change(decode(row[0] if row else None))
                    if new is not None:
                        cur.execute(
                            "UPDATE kwtsms_alerts SET record = %s, changed = %s WHERE key = %s",
                            (encode(new).decode("utf-8"), time.time(), name),
                        )
                conn.commit()
                return result
            except Exception:
                with contextlib.suppress(Exception):
                    conn.close()
                self._conn = None  # reconnect next time
                raise


def open_alert_store(
    url: str | StoreURL, *, password: str | None = None, timeout: float = STORE_TIMEOUT
) -> AlertStore:
    """The alert store on a ``rate_store`` URL (Redis or Postgres)."""
    where = url if isinstance(url, StoreURL) else parse_store_url(url, password=password)
    if where.scheme in ("redis", "rediss"):
        return RedisAlertStore(where, timeout=timeout)
    return PostgresAlertStore(where, timeout=timeout)


def _bounded(action: Callable[[], T], timeout: float) -> T:
    """``action()`` in a short-lived thread given ``timeout`` seconds to answer."""
    answer: list[T] = []
    failure: list[BaseException] = []
    done = threading.Event()

    def run() -> None:
        try:
            answer.append(action())
        except BaseException as exc:  # handed to the caller
            failure.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, name="kwtsms-alert-store", daemon=True).start()
    if not done.wait(timeout):
        raise TimeoutError(f"no answer within {timeout:g} s")
    if failure:
        raise failure[0]
    return answer[0]


class GuardedStore:
    """The store the guard uses: ``shared`` (may be None) bounded and backed by the machine's
    folder; see the module doc. ``scrub`` removes the store URL's secrets from a driver's error."""

    def __init__(
        self,
        shared: AlertStore | None,
        *,
        where: str = "the machine's folder",
        machine: Callable[[], AlertStore] = FileAlertStore,
        timeout: float = STORE_TIMEOUT,
        pause_for: float = STORE_PAUSE,
        scrub: Callable[[str], str] = lambda text: text,
    ) -> None:
        self._shared = shared
        self._machine_factory = machine
        self._machine: AlertStore | None = None
        self.where = where
        self._timeout = timeout
        self._pause_for = pause_for
        self._scrub = scrub
        self._skip_until = -math.inf
        self._warned = False

    def _local(self) -> AlertStore:
        if self._machine is None:
            self._machine = self._machine_factory()
        return self._machine

    def update(self, key: str, change: Change[T]) -> T:
        if self._shared is not None and time.monotonic() >= self._skip_until:
            shared = self._shared
            try:
                return _bounded(lambda: shared.update(key, change), self._timeout)
            except Exception as exc:
                self._skip_until = time.monotonic() + self._pause_for
                if not self._warned:
                    self._warned = True
                    log.warning(
                        "kwtSMS storm guard: the shared store %s failed (%s); for %g s this process "
                        "guards with this machine's folder only, so each machine may send its own "
                        "first alert of a storm",
                        self.where,
                        self._scrub(f"{type(exc).__name__}: {exc}")[:300],
                        self._pause_for,
                    )
        try:
            return _bounded(lambda: self._local().update(key, change), self._timeout)
        except Exception as exc:
            problem = f"{type(exc).__name__}: {self._scrub(str(exc))[:200]}"
            raise AlertStoreUnavailable(f"the storm guard's store is unavailable ({problem})") from None
