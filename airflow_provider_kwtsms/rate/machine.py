"""One gateway's request pace shared by every process of this machine: a GCRA step in a lock file.

The gateway's firewall counts the requests of an IP address, and the processes of one machine
share its address: LocalExecutor tasks, several tasks on one Celery worker, the DAG processor's
alerts, the triggerer's polls. A :class:`MachineBucket` keeps the GCRA's theoretical arrival time
(TAT: the earliest start of the next request) in one small file per gateway, and every process
takes its turn with ``fcntl.flock`` around a read-modify-write of that file. No configuration:
it is the default pacer of ``KwtSMSClient`` and of the SMTP sender.

- Where: ``$KWTSMS_RATE_DIR``, else ``<tempfile.gettempdir()>/kwtsms-rate-<uid>``; the folder is
  created 0700 and must belong to this user and be writable by no one else, the files are 0600.
  Per user, not shared with the sticky bit: a file other users can write lets any of them stall
  our sends or, by resetting it, unpace them into a block; processes of other OS users need
  ``rate_store`` (docs/deploying.md).
- Which file: ``sha256(host:port of the gateway)``. Not per account: the firewall counts the
  address, whatever the account, so two accounts of one machine share the 5 a second.
- What: one line, ``kwtsms-rate/1 <boot id> <TAT>``, the TAT on ``time.monotonic``
  (CLOCK_MONOTONIC: one clock for all processes of a boot). A record of another boot, or one
  that does not parse, is ignored; a TAT further ahead than any process could have written
  (``MAX_AHEAD``) is cut to it, so a bad file costs at most one wait of ``MAX_AHEAD`` seconds.
- How: under the lock a process reserves the next start only when it falls within
  ``QUEUE_AHEAD`` seconds; otherwise it sleeps and asks again. The file therefore never holds a
  TAT further ahead than ``QUEUE_AHEAD`` plus one (the slowest) interval, which is what makes
  ``MAX_AHEAD`` a safe bound. The lock is held for the read and the write only, never a sleep;
  the kernel releases it when a process dies.
- Late starts: when the request really starts (``started()``, just before its bytes are
  written), the TAT is moved to that moment plus one interval if it was earlier, so the turns
  handed out afterwards count from the real start.

A missing or unusable folder, or an OS without ``fcntl``, falls back to this process's own
:class:`~airflow_provider_kwtsms.rate.bucket.TokenBucket`, with one WARNING.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from airflow_provider_kwtsms.coerce import as_rate
from airflow_provider_kwtsms.constants import MAX_RATE, MIN_RATE
from airflow_provider_kwtsms.rate.bucket import Pacer, TokenBucket, interval, turn_missed

try:
    import fcntl
except ImportError:  # not a POSIX system: each process paces itself (one warning)
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

ENV_DIR = "KWTSMS_RATE_DIR"
MAGIC = "kwtsms-rate/1"
# Seconds: the furthest ahead a process reserves a start. Short, so that a request that starts
# late (a busy CPU between the turn and the socket: ten task processes starting at once on two
# cores) is confirmed (``started``) before the next few turns are handed out: those turns then
# count from its real start, and six arrivals never fall within one second. With a horizon of a
# second, five turns were already given when a late start was known (deploy scenario g: blocked).
QUEUE_AHEAD = 0.05
_SLACK = 1e-6  # float rounding: a sleep of exactly the horizon's difference must reserve
MAX_AHEAD = QUEUE_AHEAD + interval(MIN_RATE)  # the furthest ahead a stored TAT can be
_RECORD_BYTES = 128

_warned: set[str] = set()


def rate_dir() -> str:
    """The folder of the pace files: ``$KWTSMS_RATE_DIR``, else a per-user one in the temp folder."""
    chosen = os.environ.get(ENV_DIR, "").strip()
    if chosen:
        return chosen
    user = os.getuid() if hasattr(os, "getuid") else "user"  # no uid: not POSIX, the fallback's case
    return os.path.join(tempfile.gettempdir(), f"kwtsms-rate-{user}")


def gateway_target(base_url: str) -> str:
    """The gateway as ``host:port`` (what one firewall guards), one spelling for every way of
    writing its URL: scheme and host in any case, a trailing dot, the default port written or not,
    any path. The key of its pace file here and of its row in a shared rate store (shared_rate)."""
    parts = urlsplit(base_url.strip())
    default = 80 if parts.scheme.lower() == "http" else 443
    try:
        port: int | str = parts.port or default
    except ValueError:  # not a port: the request fails on its own; the key stays distinct
        port = parts.netloc.rpartition(":")[2]
    host = (parts.hostname or "").lower().rstrip(".")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def file_name(target: str) -> str:
    """The pace file of one target: a hash, so the name says nothing about the gateway or account."""
    return hashlib.sha256(target.encode("utf-8")).hexdigest()[:32] + ".rate"


def _boot_id() -> str:
    """This boot's id on Linux ("-" elsewhere): a TAT of an earlier boot is on another clock."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
            return handle.read(64).strip() or "-"
    except OSError:
        return "-"


BOOT_ID = _boot_id()


def parse_record(raw: bytes) -> float | None:
    """The TAT of a stored record, or None for anything else (empty, garbage, another boot's)."""
    try:
        fields = raw.decode("ascii").split()
    except UnicodeDecodeError:
        return None
    if len(fields) != 3 or fields[0] != MAGIC or fields[1] != BOOT_ID:
        return None
    try:
        tat = float(fields[2])
    except ValueError:
        return None
    return tat if math.isfinite(tat) else None


def format_record(tat: float) -> bytes:
    return f"{MAGIC} {BOOT_ID} {tat:.6f}\n".encode("ascii")


def prepare_dir(directory: str) -> None:
    """Create the folder (0700) or check it: a folder of this user that no one else can write."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(directory, 0o700)
    info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode):
        raise OSError(f"{directory} is not a folder")
    if info.st_uid != os.getuid():
        raise OSError(f"{directory} belongs to another user (uid {info.st_uid})")
    if info.st_mode & 0o022:
        raise OSError(f"{directory} is writable by other users (mode {stat.S_IMODE(info.st_mode):o})")


def _warn_once(reason: str) -> None:
    if reason in _warned:
        return
    _warned.add(reason)
    log.warning(
        "kwtSMS: the machine-wide request pace is unavailable (%s); this process paces itself alone, "
        "so several processes of this machine together may go over %g requests a second and get the "
        "IP blocked: fix the folder, or set %s to a folder of this user (docs/deploying.md)",
        reason,
        MAX_RATE,
        ENV_DIR,
    )


class MachineBucket:
    """The client's pacer (``acquire()`` / ``pause()``, like TokenBucket) shared through a lock file.

    ``target`` names what is paced (:func:`gateway_target` of the API URL, or the SMTP channel's
    address). ``directory`` (default :func:`rate_dir`), ``clock`` and ``sleep`` are for tests;
    the clock must be one every sharing process reads (``time.monotonic``).
    """

    def __init__(
        self,
        target: str,
        rate: float,
        *,
        directory: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = as_rate(rate)
        self.target = target
        self._interval = interval(self.rate)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._local_tat = float("-inf")  # this process's own spacing, and a 429's hold
        self._turn = threading.local()  # each thread's last start reserved (see started())
        self._fallback: TokenBucket | None = None
        self.directory = directory or rate_dir()
        self.path = os.path.join(self.directory, file_name(target))
        try:
            if fcntl is None:
                raise OSError("this OS has no fcntl.flock")
            prepare_dir(self.directory)
            os.close(self._open())
        except OSError as exc:
            self._fall_back(exc)

    @property
    def shared(self) -> bool:
        """True while the pace is shared through the file (False: this process's own bucket)."""
        return self._fallback is None

    def __repr__(self) -> str:
        how = self.path if self.shared else "this process only"
        return f"MachineBucket(rate={self.rate:g}, {how})"

    def acquire(self) -> float:
        """Wait for this process's turn among all of this machine; return the seconds waited."""
        waited = 0.0
        while True:
            if self._fallback is not None:
                return waited + self._fallback.acquire()
            reserved, wait = self._step()
            if wait > 0:
                self._sleep(wait)
                waited += wait
            if reserved:
                return waited

    def started(self) -> bool:
        """The request of this thread's last turn starts now: the turns not handed out yet count
        from now (a late start must not bring the next one closer than one interval). False when
        the turn passed more than ``LATE_START`` ago (this process was not run in time): the turns
        after it are handed out already, so the request must not start; it takes a new turn."""
        with self._lock:
            if self._fallback is not None:
                return self._fallback.started()
            now = self._clock()
            if turn_missed(self._turn, now):
                return False
            self._local_tat = max(self._local_tat, now + self._interval)
            assert fcntl is not None  # the constructor fell back otherwise
            try:
                fd = self._open()
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                    stored = parse_record(os.pread(fd, _RECORD_BYTES, 0))
                    if stored is None or stored < now + self._interval:
                        self._write(fd, now + self._interval)
                finally:
                    os.close(fd)
            except OSError as exc:
                self._fall_back(exc)
            return True

    def pause(self, seconds: float) -> None:
        """Hold this process's requests back for ``seconds`` (a 429's Retry-After; the documented
        gateway has none, so the hold is not written to the shared file)."""
        with self._lock:
            self._local_tat = max(self._local_tat, self._clock() + max(seconds, 0.0))
            if self._fallback is not None:
                self._fallback.pause(seconds)

    # -- the step under the lock ------------------------------------------------------------------
    def _step(self) -> tuple[bool, float]:
        """One try: ``(True, wait)`` with a start reserved ``wait`` s from now, or ``(False, wait)``:
        sleep ``wait`` and try again."""
        with self._lock:
            now = self._clock()
            if self._local_tat - now > QUEUE_AHEAD + _SLACK:
                return False, self._local_tat - now - QUEUE_AHEAD
            try:
                start = self._reserve(now)
            except OSError as exc:
                self._fall_back(exc)
                return False, 0.0
            if start - now > QUEUE_AHEAD + _SLACK:
                return False, start - now - QUEUE_AHEAD
            self._local_tat = start + self._interval
            self._turn.start = start
            return True, start - now

    def _reserve(self, now: float) -> float:
        """The next start; written to the file (as start + interval) when it is within QUEUE_AHEAD."""
        assert fcntl is not None  # the constructor fell back otherwise
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            stored = parse_record(os.pread(fd, _RECORD_BYTES, 0))
            tat = float("-inf") if stored is None else min(stored, now + MAX_AHEAD)
            start = max(now, tat, self._local_tat)
            if start - now <= QUEUE_AHEAD + _SLACK:
                self._write(fd, start + self._interval)
            elif stored is not None and stored > tat:
                self._write(fd, tat)  # cut once, in the file: the bound holds from now on, not from each read
            return start
        finally:
            os.close(fd)  # releases the lock

    @staticmethod
    def _write(fd: int, tat: float) -> None:
        record = format_record(tat)
        os.pwrite(fd, record, 0)
        os.ftruncate(fd, len(record))

    def _open(self) -> int:
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(self.path, flags, 0o600)
        except FileNotFoundError:  # a temp cleaner removed the folder: make it again
            prepare_dir(self.directory)
            fd = os.open(self.path, flags, 0o600)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise OSError(f"{self.path} is not a regular file")
        return fd

    def _fall_back(self, exc: OSError) -> None:
        _warn_once(f"{self.directory}: {exc}")
        bucket = TokenBucket(self.rate, clock=self._clock, sleep=self._sleep)
        bucket.pause(max(self._local_tat - self._clock(), 0.0))
        self._fallback = bucket


def default_pacer(
    target: str,
    rate: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Pacer:
    """A client's pacer when none is given: the MachineBucket of ``target``; with an injected clock
    or sleep (tests), a TokenBucket of this process on that clock, so fake-clock tests stay
    deterministic (a file shared with other processes cannot follow a fake clock)."""
    if clock is time.monotonic and sleep is time.sleep:
        return MachineBucket(target, rate)
    return TokenBucket(rate, clock=clock, sleep=sleep)
