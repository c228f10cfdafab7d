"""HTTP plumbing for the sandbox's handler: bodies read within bounds, answers written in one go.

One job: the request-handler base that knows HTTP but no kwtSMS. It reads a request body only when
its Content-Length is one value of ASCII digits within ``max_body`` (else 400/411/413), discards
what it will not read, and writes JSON, text or HTML answers with their headers in one write.
``http_handler`` builds the routes and endpoints on it.
"""

from __future__ import annotations

import json
import re
from http.server import BaseHTTPRequestHandler

JSON = "application/json; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
HTML = "text/html; charset=utf-8"

_ASCII_DIGITS = re.compile("[0-9]+")
_HUGE = 10**18  # a Content-Length of more than 18 digits: too large, whatever it says


def json_bytes(payload: object) -> bytes:
    """UTF-8 JSON; text that cannot be encoded (a lone surrogate) is written as its \\u escape."""
    try:
        return json.dumps(payload, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(payload).encode("ascii")


def text_bytes(text: str) -> bytes:
    """UTF-8 text or HTML; a character that cannot be encoded is shown as its escape, never a 500."""
    return text.encode("utf-8", "backslashreplace")


def _bytes(length: int) -> str:
    return "over 18 digits of bytes" if length >= _HUGE else f"{length} bytes"


class AnswerHandler(BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1 with bounded bodies; subclasses say how large a body may be."""

    protocol_version = "HTTP/1.1"
    server_version = "kwtSMS-sandbox/0.1"
    timeout = 30  # an idle or stalled connection is closed instead of holding a thread forever
    disable_nagle_algorithm = True  # small answers go out at once, not after the peer's delayed ACK
    # BaseHTTPRequestHandler's buffer of header lines (made by send_header, sent by flush_headers);
    # typeshed leaves it out. An annotation only: the base class still creates it.
    _headers_buffer: list[bytes]

    @property
    def max_body(self) -> int:
        """The largest request body read, in bytes; larger ones get 413."""
        raise NotImplementedError

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: object) -> None:  # quiet: the inbox shows the traffic
        pass

    def _read_body(self) -> bytes | None:
        """The request body, or None after answering 411/413/400 for a body we will not read."""
        if self.headers.get("Transfer-Encoding", "").lower() not in ("", "identity"):
            self.close_connection = True
            self._json(
                411,
                {
                    "result": "ERROR",
                    "code": "LENGTH_REQUIRED",
                    "description": "Send the body with a Content-Length (no chunked encoding).",
                },
            )
            return None
        length = self._content_length()
        if length is None:
            self.close_connection = True  # where this body ends is unknown
            shown = ascii(", ".join(self.headers.get_all("Content-Length") or [])[:20])
            self._bad_request(f"Invalid Content-Length {shown}: send one value of ASCII digits (0-9).")
            return None
        if length > self.max_body:
            self.close_connection = True  # the unread body would poison the connection
            self._json(
                413,
                {
                    "result": "ERROR",
                    "code": "TOO_LARGE",
                    "description": f"The request body ({_bytes(length)}) is over the "
                    f"{self.max_body}-byte limit.",
                },
            )
            return None
        return self.rfile.read(length) if length else b""

    def _content_length(self) -> int | None:
        """The Content-Length (0 when absent), or None when it is not one value of ASCII digits.

        ``str.isdigit`` and ``int`` take other digits ("²", "٣") and ``int`` refuses over 4300
        digits, so only [0-9] is read, and a value too long to matter counts as too large.
        """
        values = {value.strip() for value in self.headers.get_all("Content-Length") or []}
        if not values:
            return 0
        if len(values) > 1:  # two different lengths: which body is meant is unknowable
            return None
        raw = values.pop()
        if not _ASCII_DIGITS.fullmatch(raw):
            return None
        return int(raw) if len(raw) <= 18 else _HUGE

    def _discard_body(self) -> None:
        length = self._content_length()
        if length is not None and 0 < length <= self.max_body:
            self.rfile.read(length)
        elif length != 0:
            self.close_connection = True

    def _bad_request(self, description: str) -> None:
        self._json(400, {"result": "ERROR", "code": "BAD_REQUEST", "description": description})

    def _not_allowed(self, allow: str) -> None:
        self._discard_body()
        self._json(
            405,
            {
                "result": "ERROR",
                "code": "METHOD_NOT_ALLOWED",
                "description": f"{self.command} is not allowed here; use {allow}.",
            },
            headers={"Allow": allow},
        )

    def _json(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        self._send(status, json_bytes(payload), JSON, headers=headers)

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
        head_only: bool = False,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        # Headers and body in one write: one TCP segment per small answer.
        self._headers_buffer.append(b"\r\n")
        if not head_only:
            self._headers_buffer.append(body)
        self.flush_headers()
