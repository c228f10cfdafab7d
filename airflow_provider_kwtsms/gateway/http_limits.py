"""Bounded HTTP: an overall deadline per call, and answers read with a size cap.

A gateway (or anything pretending to be one) controls how fast and how much it answers. The
per-read timeout of ``requests`` does not bound a call: a server trickling one byte every
second never trips a 3-second read timeout, and a small gzip body can inflate to gigabytes.
So every call made through a ``Transport`` has:

- a **deadline**: a watchdog timer shuts the call's socket down when it passes, whatever phase
  the call is in (the TLS handshake, sending, waiting for headers, reading the body). The blocked
  read then fails at once and the call is reported as having timed out. Before the socket exists
  (the TCP connect, which the watchdog cannot interrupt) the connect timeout is cut to what is
  left of the deadline, so a silent server or a full backlog costs the deadline, not the connect
  timeout. The call records whether its request was started, so a deadline passed while
  connecting is known not to have reached the server.
- a **size cap** on the answer, after decompression: ``MAX_ANSWER_BYTES`` (1 MiB). The largest
  answer the API can give (a ``validate`` or ``dlr`` of 200 numbers, the coverage list) is a few
  tens of KB; 1 MiB leaves a wide margin and keeps memory and JSON parsing bounded. We ask for
  ``Accept-Encoding: identity``; a server that compresses anyway is decompressed here, by
  ``zlib`` with ``max_length``, so the cap holds for the inflated size too.

``requests`` and ``urllib3`` are imported only when the first session is made (DAG parsing
stays cheap).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import requests

MAX_ANSWER_BYTES = 1024 * 1024
_CHUNK = 16 * 1024

_current = threading.local()  # the call in progress on this thread (one request at a time)


class DeadlineExceeded(Exception):
    """The call's overall deadline passed."""


class AnswerTooLarge(Exception):
    """The answer (after decompression) is larger than the cap."""


class UnreadableEncoding(Exception):
    """The answer is compressed in a way we do not read (we asked for none)."""


class _Call:
    """One request's watchdog state, shared between the calling thread and the timer."""

    __slots__ = ("clock", "conn", "ends_at", "expired", "lock", "sent")

    def __init__(self, ends_at: float = float("inf"), clock: Callable[[], float] = time.monotonic) -> None:
        self.lock = threading.Lock()
        self.conn: Any = None
        self.expired = False
        self.sent = False  # the request was started on a connected socket
        self.ends_at = ends_at
        self.clock = clock

    def remaining(self) -> float:
        return self.ends_at - self.clock()

    def abort(self) -> None:
        with self.lock:
            self.expired = True
            conn = self.conn
        sock = getattr(conn, "sock", None)
        if sock is not None:
            # The plain socket's shutdown, even for TLS: it wakes a blocked read at once and leaves
            # the TLS object alone (the reading thread still holds it).
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def register(self, conn: Any) -> None:
        with self.lock:
            if self.expired:
                raise DeadlineExceeded
            self.conn = conn


class Deadline:
    """``with Deadline(seconds): ...`` arms the watchdog for the requests made inside.

    ``clock`` (monotonic seconds) measures the time reported in ``elapsed``."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._started = 0.0
        self.call = _Call(clock=clock)
        self._timer = threading.Timer(seconds, self.call.abort)
        self._timer.daemon = True

    @property
    def expired(self) -> bool:
        """The watchdog fired: whatever the call was doing was cut short."""
        return self.call.expired

    @property
    def passed(self) -> bool:
        """The watchdog fired or the clock is past the deadline (a connect timeout cut to the
        deadline may end the connect a moment before the watchdog fires)."""
        return self.call.expired or self.call.remaining() <= 0

    @property
    def elapsed(self) -> float:
        """Seconds since the call began, on ``clock``."""
        return self._clock() - self._started

    @property
    def sent(self) -> bool:
        """The request was started on a connected socket: it may have reached the server."""
        return self.call.sent

    def __enter__(self) -> Deadline:
        self._started = self._clock()
        self.call.ends_at = self._started + self.seconds
        _current.call = self.call
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()
        _current.call = None


def bounded_session() -> requests.Session:
    """A ``requests.Session`` whose connections obey the watchdog of the ``Deadline`` in force."""
    import requests

    session = requests.Session()
    mount_deadline_adapter(session, "http://")
    mount_deadline_adapter(session, "https://")
    return session


def mount_deadline_adapter(session: requests.Session, prefix: str) -> None:
    """Make ``session``'s requests under ``prefix`` obey the watchdog (used for a session the
    caller gave us too, for the gateway's address only)."""
    session.mount(prefix, _deadline_adapter_class()())


_ADAPTER: type | None = None


def _deadline_adapter_class() -> type:
    global _ADAPTER
    if _ADAPTER is None:
        _ADAPTER = _build_adapter_class()
    return _ADAPTER


def _build_adapter_class() -> type:
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class _Watched:
        # Mixed into urllib3's connections: the call in progress learns which connection (and so
        # which socket) to shut down; an expired call is not let past the request or the response.
        def connect(self) -> Any:
            call = getattr(_current, "call", None)
            if call is not None:
                # Registered first: the socket exists before the TLS handshake, so the watchdog can
                # shut it down mid-handshake. The TCP connect itself is bounded by its timeout,
                # cut to what is left of the deadline.
                call.register(self)
                remaining = call.remaining()
                if remaining <= 0:
                    call.expired = True
                    raise DeadlineExceeded
                timeout = getattr(self, "timeout", None)
                if not isinstance(timeout, (int, float)) or timeout > remaining:
                    self.timeout = remaining
            return super().connect()  # type: ignore[misc]

        def request(self, *args: Any, **kwargs: Any) -> Any:
            call = getattr(_current, "call", None)
            if call is not None:
                call.register(self)
                if getattr(self, "sock", None) is None:
                    self.connect()  # plain HTTP connects lazily: connect before marking it sent
                call.sent = True
            return super().request(*args, **kwargs)  # type: ignore[misc]

        def getresponse(self, *args: Any, **kwargs: Any) -> Any:
            call = getattr(_current, "call", None)
            if call is not None and call.expired:
                raise DeadlineExceeded
            return super().getresponse(*args, **kwargs)  # type: ignore[misc]

    class WatchedHTTPConnection(_Watched, HTTPConnection):
        pass

    class WatchedHTTPSConnection(_Watched, HTTPSConnection):
        pass

    class WatchedHTTPPool(HTTPConnectionPool):
        ConnectionCls = WatchedHTTPConnection

    class WatchedHTTPSPool(HTTPSConnectionPool):
        ConnectionCls = WatchedHTTPSConnection

    class DeadlineAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": WatchedHTTPPool, "https": WatchedHTTPSPool}

    return DeadlineAdapter


def read_capped(response: Any, cap: int = MAX_ANSWER_BYTES) -> bytes:
    """The body of a streamed ``requests`` response, decompressed, at most ``cap`` bytes.

    Raises ``AnswerTooLarge`` past the cap and ``UnreadableEncoding`` for a compression other than
    gzip or deflate; network failures propagate as urllib3/OS errors."""
    encoding = str(response.headers.get("Content-Encoding", "")).strip().lower()
    inflater = _inflater(encoding)
    raw = response.raw
    parts: list[bytes] = []
    size = 0
    while True:
        chunk = raw.read(_CHUNK, decode_content=False)
        if not chunk:
            break
        if inflater is not None:
            chunk = inflater.decompress(chunk, cap + 1 - size)
            if inflater.unconsumed_tail:
                raise AnswerTooLarge
        size += len(chunk)
        if size > cap:
            raise AnswerTooLarge
        parts.append(chunk)
    if inflater is not None:
        tail = inflater.flush()
        if size + len(tail) > cap:
            raise AnswerTooLarge
        parts.append(tail)
    return b"".join(parts)


def _inflater(encoding: str) -> Any:
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj(zlib.MAX_WBITS | 32)  # zlib or gzip header, detected
    raise UnreadableEncoding(encoding)
