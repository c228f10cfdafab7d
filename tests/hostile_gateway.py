"""A hostile stand-in for the gateway: answers each request with whatever bytes a test scripts.

Unlike the sandbox, which is faithful, this server says anything: broken status lines, lying
Content-Length, gzip bombs, bodies trickled a byte at a time, connections closed mid-answer. It
listens on 127.0.0.1 only, serves each connection in its own thread, and closes every connection
after one answer.

Every request is recorded with the reply it got and whether that reply means the gateway may
have processed it (``Reply.processed``): False only for a clean refusal (429, an ERROR answer,
a 3xx or a 4xx without an answer), which is what lets a test check "never sent twice".
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field


@dataclass
class Reply:
    raw: bytes  # the whole answer: status line, headers, body
    processed: bool = True  # may a real gateway have acted on the request before this answer?
    trickle: float = 0.0  # seconds between bytes (a slow gateway)
    cut: int | None = None  # close after this many bytes

    def describe(self) -> str:
        return (
            f"Reply({self.raw[:80]!r}..., processed={self.processed}, trickle={self.trickle}, cut={self.cut})"
        )


def http(status: int, body: bytes | str, *headers: tuple[str, str], length: int | str | None = None) -> bytes:
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogatepass")
    lines = [f"HTTP/1.1 {status} X", "Connection: close"]
    lines.append(f"Content-Length: {len(body) if length is None else length}")
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace") + body


def ok_send(numbers: int = 1, **override: object) -> str:
    fields: dict[str, object] = {
        "result": "OK",
        "msg-id": "abc123",
        "numbers": numbers,
        "points-charged": numbers,
        "balance-after": 1000,
        "unix-timestamp": 1700000000,
    }
    fields.update(override)
    return json.dumps(fields)


@dataclass
class Request:
    endpoint: str
    fields: dict
    reply: Reply


@dataclass
class HostileGateway:
    replies: deque = field(default_factory=deque)
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self.replies.clear()
            self.replies.extend(replies)
            self.requests.clear()

    def close(self) -> None:
        """Stop, once every connection taken is served: its requests are all in ``requests``."""
        self._stop.set()
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)  # wakes the accepter now, not in 0.2 s
        self._accepter.join(5)
        for thread in self._threads:
            thread.join(5)
        self._server.close()

    def __enter__(self) -> HostileGateway:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except (TimeoutError, OSError):
                continue
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _default(self, endpoint: str, fields: dict) -> Reply:
        if endpoint == "send":
            count = len(str(fields.get("mobile", "")).split(","))
            return Reply(http(200, ok_send(count)))
        if endpoint == "balance":
            return Reply(http(200, '{"result": "OK", "available": 1000, "purchased": 1000}'))
        return Reply(http(200, '{"result": "OK"}'))

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                endpoint, fields = _read_request(conn)
            except (OSError, ValueError):
                return
            with self._lock:
                reply = self.replies.popleft() if self.replies else self._default(endpoint, fields)
                self.requests.append(Request(endpoint, fields, reply))
            data = reply.raw if reply.cut is None else reply.raw[: reply.cut]
            with contextlib.suppress(OSError):
                if reply.trickle:
                    for i in range(len(data)):
                        if self._stop.is_set():
                            return
                        conn.sendall(data[i : i + 1])
                        time.sleep(reply.trickle)
                else:
                    conn.sendall(data)
                conn.shutdown(socket.SHUT_WR)
                # Let the client read everything before the socket closes (an RST could drop it).
                conn.settimeout(1)
                while conn.recv(4096):
                    pass


def _read_request(conn: socket.socket) -> tuple[str, dict]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            raise ValueError("closed before the headers")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    path = lines[0].split(" ")[1]
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    endpoint = path.strip("/").split("/")[-1]
    try:
        fields = json.loads(body.decode("utf-8"))
    except ValueError:
        fields = {}
    return endpoint, fields if isinstance(fields, dict) else {}
