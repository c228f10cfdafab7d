"""The sandbox's HTTP server and its Python face, ``Sandbox``.

Stdlib only: ``http.server.ThreadingHTTPServer`` with HTTP/1.1 keep-alive, one thread per
connection, one lock around the state.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from airflow_provider_kwtsms.errors import ERRORS, RATE_LIMITED
from airflow_provider_kwtsms.sandbox import json_body, legacy, rules
from airflow_provider_kwtsms.sandbox.connections import TracksOpenConnections
from airflow_provider_kwtsms.sandbox.faults import ENDPOINTS, Fault, FaultBook, parse_fault
from airflow_provider_kwtsms.sandbox.rules import ApiError
from airflow_provider_kwtsms.sandbox.state import MAX_ADVANCE, Account, Gateway, Settings

if TYPE_CHECKING:
    from airflow_provider_kwtsms.sandbox.smtp import SmtpServer

DEFAULT_PORT = 8765
DEFAULT_MAX_BODY = 1_000_000  # bytes; larger bodies get 413
DOC_ACCOUNT = {
    "username": "myuser",
    "password": "mypass",
    "balance": 181,
    "purchased": 377,
    "senders": ["KWT-MESSAGE"],
    "coverage": ["965"],
}

_ASCII_DIGITS = re.compile("[0-9]+")
_HUGE = 10**18  # a Content-Length of more than 18 digits: too large, whatever it says
_JSON = "application/json; charset=utf-8"
_TEXT = "text/plain; charset=utf-8"
_HTML = "text/html; charset=utf-8"
_HTML_ERROR_PAGE = (
    b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>"
    b"<h1>Bad Gateway</h1><p>The proxy server received an invalid response.</p></body></html>"
)


class Sandbox:
    """A local kwtSMS gateway on 127.0.0.1; a context manager that starts and stops it.

    >>> with Sandbox(username="u1", password="p1", balance=1000, senders=["MY-APP"]) as sb:
    ...     requests.post(sb.url + "/API/balance/", json={"username": "u1", "password": "p1"})
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        username: str = "sandbox_user",
        password: str = "sandbox_pass",
        balance: int = 1000,
        purchased: int | None = None,
        senders: Iterable[str] = ("KWT-SMS",),
        coverage: Iterable[str] = ("965",),
        rate: float | None = 2.0,
        rate_tolerance: float = 0.5,
        max_pages: int = 7,
        queue_size: int = 1000,
        drain_rate: float = 10.0,
        deliver_after: float = 5.0,
        latency: float = 0.0,
        duplicate_window: float = 15.0,
        test_charges: bool = False,
        partial_numbers: str = "send_valid",
        error_status: str = "200",
        max_body: int = DEFAULT_MAX_BODY,
        accounts: Iterable[dict] | None = None,
        doc_account: bool = True,
        undeliverable: Iterable[str] = (),
        clock: Callable[[], float] = time.time,
        smtp_port: int | None = None,
    ) -> None:
        if partial_numbers not in ("send_valid", "reject"):
            raise ValueError(f"partial_numbers must be 'send_valid' or 'reject', got {partial_numbers!r}")
        if error_status not in ("200", "4xx"):
            raise ValueError(f"error_status must be '200' or '4xx', got {error_status!r}")
        if max_pages < 1 or queue_size < 1:
            raise ValueError("max_pages and queue_size must be at least 1")
        for name, value, high in (
            ("rate", 0.0 if rate is None else rate, 1e6),
            ("rate_tolerance", rate_tolerance, 1e3),
            ("drain_rate", drain_rate, 1e6),
            ("deliver_after", deliver_after, MAX_ADVANCE),
            ("latency", latency, 300.0),
            ("duplicate_window", duplicate_window, MAX_ADVANCE),
        ):
            _check_option(name, value, high)
        main = Account(username, password, int(balance), purchased, list(senders), list(coverage))
        all_accounts = [main] + [_account_from(spec) for spec in (accounts or ())]
        if doc_account and all(a.username != DOC_ACCOUNT["username"] for a in all_accounts):
            all_accounts.append(_account_from(DOC_ACCOUNT))
        settings = Settings(
            max_pages=max_pages,
            queue_size=queue_size,
            drain_rate=drain_rate,
            deliver_after=deliver_after,
            duplicate_window=duplicate_window,
            test_charges=test_charges,
            partial_numbers=partial_numbers,
            undeliverable=frozenset(undeliverable),
        )
        self.gateway = Gateway(all_accounts, settings, rate=rate, rate_tolerance=rate_tolerance, clock=clock)
        self.faults = FaultBook()
        self.host = host
        self.requested_port = port
        self.username = username
        self.latency = latency
        self.error_status = error_status
        self.max_body = max_body
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.requested_smtp_port = smtp_port  # None: no SMTP listener; 0: a free port
        self._smtp: SmtpServer | None = None
        self._smtp_thread: threading.Thread | None = None

    # --- life cycle ---------------------------------------------------------------------------

    def start(self) -> Sandbox:
        if self._server is not None:
            return self
        server = _Server((self.host, self.requested_port), _Handler)
        server.sandbox = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="kwtsms-sandbox", daemon=True
        )
        self._thread.start()
        if self.requested_smtp_port is not None:
            self._start_smtp()
        return self

    def _start_smtp(self) -> None:
        from airflow_provider_kwtsms.sandbox.smtp import SmtpServer

        try:
            smtp = SmtpServer((self.host, self.requested_smtp_port), self.gateway, max_size=self.max_body)
        except OSError:
            self.stop()
            raise
        self._smtp = smtp
        self._smtp_thread = threading.Thread(
            target=smtp.serve_forever, kwargs={"poll_interval": 0.05}, name="kwtsms-sandbox-smtp", daemon=True
        )
        self._smtp_thread.start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            server.close_open_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.shutdown()
            smtp.server_close()
            smtp.close_open_connections()
        if self._smtp_thread is not None:
            self._smtp_thread.join(timeout=5)
            self._smtp_thread = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the sandbox is not running: call start() or use it as a context manager")
        return self._server.server_address[1]

    @property
    def smtp_port(self) -> int:
        """The SMTP listener's port (e-mails to sms@kwtsms.com); needs ``smtp_port=`` at creation."""
        if self._smtp is None:
            raise RuntimeError(
                "no SMTP listener: create the sandbox with smtp_port=0 (a free port) "
                "or a port number, and start it"
            )
        return self._smtp.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "stopped"
        return f"Sandbox({where}, username={self.username!r})"

    # --- the Python API -----------------------------------------------------------------------

    def messages(self, username: str | None = None) -> list[dict]:
        """Every accepted message, oldest first (optionally of one account)."""
        found = self.gateway.message_dicts()
        return [m for m in found if username is None or m["username"] == username]

    def emails(self) -> list[dict]:
        """Every e-mail the SMTP listener received, oldest first: outcome "accepted" (with msg_id)
        or "dropped" (with code and reason), envelope, sender, numbers, lang, text; never the password."""
        with self.gateway.lock:
            return [
                {**record, "mobile": list(record["mobile"]), "rcpt_to": list(record["rcpt_to"])}
                for record in self.gateway.emails
            ]

    def deliveries(self, include_test: bool = True) -> list[dict]:
        """One row per recipient of each accepted message: number, msg_id, request_id, time, status."""
        rows = []
        for message in self.messages():
            if message["test"] and not include_test:
                continue
            for number in message["mobile"]:
                rows.append(
                    {
                        "number": number,
                        "msg_id": message["msg_id"],
                        "test": message["test"],
                        "request_id": message["request_id"],
                        "received_at": message["received_at"],
                        "status": message["delivery"][number],
                    }
                )
        return rows

    def delivery_counts(self, include_test: bool = True) -> dict[str, int]:
        """How many accepted messages each number was in (more than 1 = sent twice)."""
        return dict(Counter(row["number"] for row in self.deliveries(include_test)))

    def account(self, username: str | None = None) -> dict:
        """The account's state: available, purchased, senders, coverage (no password)."""
        with self.gateway.lock:
            found = self.gateway.accounts.get(username or self.username)
            if found is None:
                raise KeyError(f"no sandbox account {username!r}; known: {sorted(self.gateway.accounts)}")
            return found.to_dict()

    def set_balance(self, available: int, username: str | None = None) -> None:
        with self.gateway.lock:
            self.gateway.accounts[username or self.username].available = int(available)

    def requests(self) -> list[dict]:
        """Every API request seen, oldest first: request_id, time, endpoint, api, username, code."""
        with self.gateway.lock:
            return [dict(entry) for entry in self.gateway.request_log]

    def inject_fault(self, kind: str, endpoint: str = "send", times: int = 1) -> dict:
        """Make the next ``times`` requests to ``endpoint`` ("*" for any) fail with ``kind``."""
        fault = parse_fault(kind, endpoint, times)
        self.faults.add(fault)
        return fault.to_dict()

    def clear_faults(self) -> None:
        self.faults.clear()

    def advance(self, seconds: float) -> None:
        """Move the sandbox clock forward (queue drain, delivery, the 15 s rule, the rate).

        ``seconds`` must be finite, 0 to 10 years, and the clock never runs more than 100 years
        ahead (ValueError naming ``seconds``; HTTP 400 at /sandbox/advance)."""
        self.gateway.advance(seconds)

    def now(self) -> float:
        return self.gateway.now()

    def reset(self) -> None:
        """Starting balances, the real time (every advance() undone), no messages, no requests,
        no faults, no rate history."""
        self.gateway.reset()
        self.faults.clear()


def _check_option(name: str, value: object, high: float) -> None:
    """A number option must be finite and from 0 to ``high``: NaN or infinity would break every answer."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= high:
        raise ValueError(f"{name} must be a finite number from 0 to {high:g}, got {repr(value)[:40]}")


def _account_from(spec: dict | Account) -> Account:
    if isinstance(spec, Account):
        return spec
    unknown = set(spec) - {"username", "password", "balance", "purchased", "senders", "coverage"}
    if unknown or "username" not in spec or "password" not in spec:
        raise ValueError(
            "each account needs username and password and may have balance, purchased, "
            f"senders, coverage; got {sorted(spec)}"
        )
    return Account(
        str(spec["username"]),
        str(spec["password"]),
        int(spec.get("balance", 1000)),
        spec.get("purchased"),
        list(spec.get("senders", ["KWT-SMS"])),
        list(spec.get("coverage", ["965"])),
    )


def _json_bytes(payload: object) -> bytes:
    """UTF-8 JSON; text that cannot be encoded (a lone surrogate) is written as its \\u escape."""
    try:
        return json.dumps(payload, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(payload).encode("ascii")


def _bytes(length: int) -> str:
    return "over 18 digits of bytes" if length >= _HUGE else f"{length} bytes"


def _text_bytes(text: str) -> bytes:
    """UTF-8 text or HTML; a character that cannot be encoded is shown as its escape, never a 500."""
    return text.encode("utf-8", "backslashreplace")


class _Server(TracksOpenConnections, ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    sandbox: Sandbox

    def handle_error(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # a client that went away is not a sandbox error worth a traceback
        super().handle_error(request, client_address)


class _Dropped(Exception):
    """The connection was closed on purpose (a fault): nothing more to write."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kwtSMS-sandbox/0.1"
    timeout = 30  # an idle or stalled connection is closed instead of holding a thread forever
    disable_nagle_algorithm = True  # small answers go out at once, not after the peer's delayed ACK
    server: _Server

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: object) -> None:  # quiet: the inbox shows the traffic
        pass

    @property
    def sandbox(self) -> Sandbox:
        return self.server.sandbox

    # --- methods ------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_OPTIONS(self) -> None:
        self._dispatch("OPTIONS")

    def _dispatch(self, method: str) -> None:
        try:
            self._route(method)
        except _Dropped:
            self.close_connection = True
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as exc:  # a bug must still give an answer, never a dead server
            try:
                self._json(
                    500,
                    {
                        "result": "ERROR",
                        "code": "SANDBOX",
                        "description": f"Sandbox internal error: {type(exc).__name__}: {exc}",
                    },
                )
            except OSError:
                self.close_connection = True

    def _route(self, method: str) -> None:
        split = urlsplit(self.path)
        path = split.path.rstrip("/") or "/"
        if path.startswith("/API/") or path.startswith("/api/"):
            endpoint = path[5:].strip("/").lower()
            if endpoint not in ENDPOINTS:
                self._discard_body()
                return self._json(
                    404,
                    {
                        "result": "ERROR",
                        "code": "ERR002",
                        "description": f"Unknown API endpoint {endpoint!r}; use one of "
                        f"{', '.join(ENDPOINTS)}.",
                    },
                )
            if method not in ("GET", "POST"):
                return self._not_allowed("GET, POST")
            return self._api(method, endpoint, split.query)
        if path.startswith("/sandbox/"):
            return self._control(method, path[len("/sandbox/") :], split.query)
        if path in ("/", "/inbox"):
            if method not in ("GET", "HEAD"):
                return self._not_allowed("GET, HEAD")
            from airflow_provider_kwtsms.sandbox.inbox import render_inbox

            return self._send(200, _text_bytes(render_inbox(self.sandbox)), _HTML, head_only=method == "HEAD")
        if path == "/favicon.ico":
            return self._send(204, b"", _TEXT)
        self._discard_body()
        self._json(
            404,
            {
                "result": "ERROR",
                "code": "NOT_FOUND",
                "description": f"No such page {path!r}: the API is under /API/<endpoint>/, "
                "the inbox at /, the controls under /sandbox/.",
            },
        )

    # --- the API ------------------------------------------------------------------------------

    def _api(self, method: str, endpoint: str, query: str) -> None:
        body = self._read_body()
        if body is None:
            return
        content_type = self.headers.get("Content-Type", "")
        as_json = method == "POST" and "json" in content_type.lower()
        fields: dict | None = None
        bad_body: str | None = None
        if as_json:
            try:
                fields = json_body.parse_object(body)
            except json_body.BadJson as exc:
                bad_body = f"The request body is not valid JSON: {exc}."
        elif method == "GET":
            raw_query = self.path.partition("?")[2].encode("latin-1", "replace")
            fields = legacy.parse_query(raw_query)
        else:  # POST without a JSON content type: the legacy API reads form fields
            fields = legacy.parse_query(body)
        api = "json" if as_json else "legacy"
        self._answer_api(endpoint, api, fields, bad_body)

    def _answer_api(self, endpoint: str, api: str, fields: dict | None, bad_body: str | None) -> None:
        sandbox = self.sandbox
        gateway = sandbox.gateway
        request_id = gateway.next_request_id()
        username = fields.get("username") if fields else None
        entry = {
            "request_id": request_id,
            "time": gateway.now(),
            "endpoint": endpoint,
            "api": api,
            "username": username if isinstance(username, str) else None,
            "code": None,
            "http_status": None,
            "fault": None,
        }
        # The rate is judged on arrival, before any fault: a refused request must not use up a
        # fault that a test injected for the next request that really gets through.
        wait = gateway.rate_check(fields)
        fault = None if wait > 0 else sandbox.faults.take(endpoint)
        entry["fault"] = fault.kind if fault else None
        delay = sandbox.latency + (fault.delay if fault and fault.kind == "latency" else 0.0)
        if delay > 0:
            time.sleep(delay)
        try:
            if wait > 0:
                entry["code"] = RATE_LIMITED
                return self._rate_limited(api, wait, entry)
            if fault is not None and self._early_fault(fault, entry):
                return
            try:
                if bad_body is not None:
                    raise ApiError("ERR002", bad_body)
                answer = gateway.call(endpoint, fields or {}, request_id=request_id, api=api)
            except ApiError as error:
                entry["code"] = error.code
                return self._api_error(api, error, entry)
            entry["code"] = "OK"
            if fault is not None and fault.kind == "drop_after_accept":
                self._record(entry)
                self._drop()
            if api == "legacy":
                body = _text_bytes(legacy.ok_text(endpoint, answer))
                return self._logged(entry, 200, body, _TEXT)
            body = _json_bytes({"result": "OK", **answer})
            if fault is not None and fault.kind == "malformed_json":
                body = body[: max(1, len(body) // 2)]
            self._logged(entry, 200, body, _JSON)
        finally:
            self._record(entry)  # no-op when the answer already recorded it

    def _early_fault(self, fault: Fault, entry: dict) -> bool:
        """Faults that answer before the request is processed; True when one did."""
        if fault.kind == "drop_before":
            self._record(entry)
            self._drop()
        if fault.kind.startswith("http_"):
            status = int(fault.kind[5:])
            text = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}[status]
            self._logged(entry, status, text.encode(), _TEXT)
            return True
        if fault.kind == "html_error":
            self._logged(entry, 200, _HTML_ERROR_PAGE, _HTML)
            return True
        return False

    def _rate_limited(self, api: str, wait: float, entry: dict) -> None:
        info = ERRORS[RATE_LIMITED]
        rate = self.sandbox.gateway.limiter.rate
        description = f"{info.description} The limit is {rate:g} requests per second per account."
        headers = {"Retry-After": str(max(1, math.ceil(wait)))}
        if api == "legacy":
            body = _text_bytes(legacy.error_text(RATE_LIMITED, description))
            return self._logged(entry, 429, body, _TEXT, headers)
        payload = {
            "result": "ERROR",
            "code": RATE_LIMITED,
            "description": description,
            "retry_after": round(wait, 3),
        }
        self._logged(entry, 429, _json_bytes(payload), _JSON, headers)

    def _api_error(self, api: str, error: ApiError, entry: dict) -> None:
        status = rules.error_http_status(error.code, self.sandbox.error_status)
        if api == "legacy":
            text = legacy.error_text(error.code, error.description)
            return self._logged(entry, status, _text_bytes(text), _TEXT)
        payload = {"result": "ERROR", "code": error.code, "description": error.description}
        self._logged(entry, status, _json_bytes(payload), _JSON)

    def _record(self, entry: dict) -> None:
        """Log the request once, before the client can see any answer (tests read the log next)."""
        if getattr(self, "_recorded_id", None) == entry["request_id"]:
            return
        self._recorded_id = entry["request_id"]
        self.sandbox.gateway.log_request(entry)

    def _logged(
        self, entry: dict, status: int, body: bytes, content_type: str, headers: dict | None = None
    ) -> None:
        entry["http_status"] = status
        self._record(entry)
        self._send(status, body, content_type, headers=headers)

    def _drop(self) -> None:
        """Close the connection with no answer at all."""
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
        raise _Dropped

    # --- /sandbox/ controls -------------------------------------------------------------------

    def _control(self, method: str, name: str, query: str) -> None:
        sandbox = self.sandbox
        params = {key: values[0] for key, values in parse_qs(query).items()}
        if name == "messages" and method == "GET":
            return self._json(200, {"result": "OK", "messages": sandbox.messages(params.get("username"))})
        if name == "requests" and method == "GET":
            return self._json(200, {"result": "OK", "requests": sandbox.requests()})
        if name == "emails" and method == "GET":
            return self._json(200, {"result": "OK", "emails": sandbox.emails()})
        if name == "account" and method == "GET":
            try:
                return self._json(200, {"result": "OK", **sandbox.account(params.get("username"))})
            except KeyError as exc:
                return self._json(404, {"result": "ERROR", "code": "NOT_FOUND", "description": exc.args[0]})
        if name == "faults" and method == "GET":
            return self._json(200, {"result": "OK", "faults": sandbox.faults.pending()})
        if name == "faults" and method == "DELETE":
            sandbox.clear_faults()
            return self._json(200, {"result": "OK", "faults": []})
        if name in ("faults", "reset", "advance", "balance") and method == "POST":
            body = self._read_body()
            if body is None:
                return
            try:
                data = json_body.parse_object(body)
                if name == "faults":
                    fault = sandbox.inject_fault(
                        data.get("kind"), data.get("endpoint", "send"), data.get("times", 1)
                    )
                    return self._json(
                        200, {"result": "OK", "fault": fault, "faults": sandbox.faults.pending()}
                    )
                if name == "advance":
                    sandbox.advance(data.get("seconds"))  # checks the value; ValueError names it
                    return self._json(200, {"result": "OK", "now": sandbox.now()})
                if name == "balance":  # a top-up (or a drain) from another process
                    available = data.get("available")
                    if isinstance(available, bool) or not isinstance(available, int) or available < 0:
                        raise ValueError(f"available is {available!r}: give whole credits, 0 or more.")
                    try:
                        sandbox.set_balance(available, data.get("username"))
                    except KeyError:
                        raise ValueError(f"no account {data.get('username')!r} in this sandbox") from None
                    return self._json(200, {"result": "OK", **sandbox.account(data.get("username"))})
                sandbox.reset()
                return self._json(200, {"result": "OK"})
            except json_body.BadJson as exc:
                return self._bad_request(f"The request body is not valid JSON: {exc}.")
            except ValueError as exc:
                return self._bad_request(str(exc))
        known = {
            "messages": "GET",
            "requests": "GET",
            "emails": "GET",
            "account": "GET",
            "faults": "GET, POST, DELETE",
            "reset": "POST",
            "advance": "POST",
            "balance": "POST",
        }
        if name in known:
            return self._not_allowed(known[name])
        self._discard_body()
        self._json(
            404,
            {
                "result": "ERROR",
                "code": "NOT_FOUND",
                "description": f"No sandbox control {name!r}; use one of {', '.join(known)}.",
            },
        )

    # --- plumbing -----------------------------------------------------------------------------

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
        if length > self.sandbox.max_body:
            self.close_connection = True  # the unread body would poison the connection
            self._json(
                413,
                {
                    "result": "ERROR",
                    "code": "TOO_LARGE",
                    "description": f"The request body ({_bytes(length)}) is over the "
                    f"{self.sandbox.max_body}-byte limit.",
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
        if length is not None and 0 < length <= self.sandbox.max_body:
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

    def _json(self, status: int, payload: object, headers: dict | None = None) -> None:
        self._send(status, _json_bytes(payload), _JSON, headers=headers)

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict | None = None,
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
