"""The sandbox's HTTP handler: routing, the JSON and legacy API, the inbox page, the controls.

One job: turning each request into a call on the sandbox's ``Gateway`` (or its ``Sandbox``
controls under ``/sandbox/``) and its answer into the gateway's documented reply, with the rate
limit and any injected fault applied on the way. Stdlib only: ``ThreadingHTTPServer`` with
HTTP/1.1 keep-alive, one thread per connection; body reading and answer writing live in
``http_base``.
"""

from __future__ import annotations

import contextlib
import math
import socket
import struct
import threading
import time
from http.server import ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import airflow_provider_kwtsms.sandbox.json_body as json_body
import airflow_provider_kwtsms.sandbox.legacy as legacy
import airflow_provider_kwtsms.sandbox.rules as rules
from airflow_provider_kwtsms.errors import ERRORS, RATE_LIMITED
from airflow_provider_kwtsms.sandbox.connections import TracksOpenConnections
from airflow_provider_kwtsms.sandbox.faults import ACCEPTED, ARRIVAL, ENDPOINTS, Fault
from airflow_provider_kwtsms.sandbox.http_base import HTML, JSON, TEXT, AnswerHandler, json_bytes, text_bytes
from airflow_provider_kwtsms.sandbox.rules import ApiError

if TYPE_CHECKING:
    from airflow_provider_kwtsms.sandbox.view import SandboxView

BLOCKED = "BLOCKED"  # the request log's code for a request the firewall refused

_HTML_ERROR_PAGE = (
    b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>"
    b"<h1>Bad Gateway</h1><p>The proxy server received an invalid response.</p></body></html>"
)


class Server(TracksOpenConnections, ThreadingHTTPServer):
    """The listening socket; each connection gets a daemon thread and a ``Handler``."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    sandbox: SandboxView

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reset: set[socket.socket] = set()  # connections the firewall refused (sent a RST)
        self._reset_lock = threading.Lock()

    def reset_on_close(self, request: socket.socket) -> None:
        """Close ``request`` without the usual FIN first, so its SO_LINGER 0 sends a bare RST."""
        with self._reset_lock:
            self._reset.add(request)

    def shutdown_request(self, request) -> None:  # type: ignore[no-untyped-def]
        with self._reset_lock:
            reset = request in self._reset
            self._reset.discard(request)
        if reset:  # closed first, TCPServer's shutdown(SHUT_WR) fails instead of sending a FIN
            request.close()
        super().shutdown_request(request)

    def handle_error(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # a client that went away is not a sandbox error worth a traceback
        super().handle_error(request, client_address)


class _Dropped(Exception):
    """The connection was closed on purpose (a fault): nothing more to write."""


class Handler(AnswerHandler):
    """One connection's requests: /API/<endpoint>/ (JSON or legacy), the inbox, /sandbox/ controls."""

    server: Server

    @property
    def max_body(self) -> int:
        return self.sandbox.max_body

    @property
    def sandbox(self) -> SandboxView:
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
            if not self.sandbox.firewall.admit(self.client_address[0]):
                return self._refuse(method, endpoint)
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

            return self._send(200, text_bytes(render_inbox(self.sandbox)), HTML, head_only=method == "HEAD")
        if path == "/favicon.ico":
            return self._send(204, b"", TEXT)
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
        fields: dict[str, Any] | None = None
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

    def _answer_api(
        self, endpoint: str, api: str, fields: dict[str, Any] | None, bad_body: str | None
    ) -> None:
        sandbox = self.sandbox
        gateway = sandbox.gateway
        request_id = gateway.next_request_id()
        username = fields.get("username") if fields else None
        entry = {
            "request_id": request_id,
            "time": gateway.now(),
            "client": self.client_address[0],
            "endpoint": endpoint,
            "api": api,
            "username": username if isinstance(username, str) else None,
            "code": None,
            "http_status": None,
            "fault": None,
            "blocked": False,
        }
        # The rate is judged on arrival, before any fault: a refused request must not use up a
        # fault that a test injected for the next request that really gets through. Likewise a
        # fault of an accepted answer (drop_after_accept, malformed_json, latency) is taken only
        # once the gateway has accepted the request (see faults.py).
        wait = gateway.rate_check(fields)
        fault = None if wait > 0 else sandbox.faults.take(endpoint, ARRIVAL)
        entry["fault"] = fault.kind if fault else None
        if sandbox.latency > 0:
            time.sleep(sandbox.latency)
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
            fault = sandbox.faults.take(endpoint, ACCEPTED)
            entry["fault"] = fault.kind if fault else None
            if fault is not None and fault.kind == "latency":
                time.sleep(fault.delay)
            if fault is not None and fault.kind == "drop_after_accept":
                self._record(entry)
                self._drop()
            if api == "legacy":
                body = text_bytes(legacy.ok_text(endpoint, answer))
                return self._logged(entry, 200, body, TEXT)
            body = json_bytes({"result": "OK", **answer})
            if fault is not None and fault.kind == "malformed_json":
                body = body[: max(1, len(body) // 2)]
            self._logged(entry, 200, body, JSON)
        finally:
            self._record(entry)  # no-op when the answer already recorded it

    def _early_fault(self, fault: Fault, entry: dict[str, Any]) -> bool:
        """Faults that answer before the request is processed; True when one did."""
        if fault.kind == "drop_before":
            self._record(entry)
            self._drop()
        if fault.kind.startswith("http_"):
            status = int(fault.kind[5:])
            text = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}[status]
            self._logged(entry, status, text.encode(), TEXT)
            return True
        if fault.kind == "html_error":
            self._logged(entry, 200, _HTML_ERROR_PAGE, HTML)
            return True
        return False

    def _rate_limited(self, api: str, wait: float, entry: dict[str, Any]) -> None:
        info = ERRORS[RATE_LIMITED]
        rate = self.sandbox.gateway.limiter.rate
        description = f"{info.description} The limit is {rate:g} requests per second per account."
        headers = {"Retry-After": str(max(1, math.ceil(wait)))}
        if api == "legacy":
            body = text_bytes(legacy.error_text(RATE_LIMITED, description))
            return self._logged(entry, 429, body, TEXT, headers)
        payload = {
            "result": "ERROR",
            "code": RATE_LIMITED,
            "description": description,
            "retry_after": round(wait, 3),
        }
        self._logged(entry, 429, json_bytes(payload), JSON, headers)

    def _api_error(self, api: str, error: ApiError, entry: dict[str, Any]) -> None:
        status = rules.error_http_status(error.code, self.sandbox.error_status)
        if api == "legacy":
            text = legacy.error_text(error.code, error.description)
            return self._logged(entry, status, text_bytes(text), TEXT)
        payload = {"result": "ERROR", "code": error.code, "description": error.description}
        self._logged(entry, status, json_bytes(payload), JSON)

    def _record(self, entry: dict[str, Any]) -> None:
        """Log the request once, before the client can see any answer (tests read the log next)."""
        if getattr(self, "_recorded_id", None) == entry["request_id"]:
            return
        self._recorded_id = entry["request_id"]
        self.sandbox.gateway.log_request(entry)

    def _logged(
        self,
        entry: dict[str, Any],
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        entry["http_status"] = status
        self._record(entry)
        self._send(status, body, content_type, headers=headers)

    def _refuse(self, method: str, endpoint: str) -> None:
        """The firewall's answer to a blocked address: a TCP reset, before anything is read.

        Like ``iptables -j REJECT --reject-with tcp-reset``: the request is recorded (time,
        address, endpoint; never its body, so never a password) and not processed; the client
        sees its connection reset with no answer. See docs/sandbox.md for why not a drop.
        """
        gateway = self.sandbox.gateway
        as_json = method == "POST" and "json" in self.headers.get("Content-Type", "").lower()
        gateway.log_request(
            {
                "request_id": gateway.next_request_id(),
                "time": gateway.now(),
                "client": self.client_address[0],
                "endpoint": endpoint if endpoint in ENDPOINTS else endpoint[:40],
                "api": "json" if as_json else "legacy",
                "username": None,
                "code": BLOCKED,
                "http_status": None,
                "fault": None,
                "blocked": True,
            }
        )
        with contextlib.suppress(OSError):  # linger 0: close() sends RST, not FIN
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.server.reset_on_close(self.connection)
        raise _Dropped

    def _drop(self) -> None:
        """Close the connection with no answer at all."""
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
        raise _Dropped

    # --- /sandbox/ controls -------------------------------------------------------------------

    def _unblock(self) -> None:
        """Lift a block: JSON ``{"address": ...}`` (none: every block), or the inbox page's form,
        which is sent back to the inbox (303) once the block is lifted."""
        body = self._read_body()
        if body is None:
            return
        from_form = "x-www-form-urlencoded" in self.headers.get("Content-Type", "").lower()
        try:
            data: dict[str, Any] = legacy.parse_query(body) if from_form else json_body.parse_object(body)
        except json_body.BadJson as exc:
            return self._bad_request(f"The request body is not valid JSON: {exc}.")
        address = data.get("address")
        if address is not None and not isinstance(address, str):
            return self._bad_request(f"address is {rules.shown(address)}: give a client address as text.")
        lifted = self.sandbox.unblock(address or None)
        if from_form:
            return self._send(303, b"", TEXT, headers={"Location": "/"})
        self._json(200, {"result": "OK", "lifted": lifted, "firewall": self.sandbox.firewall_state()})

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
        if name == "firewall" and method == "GET":
            return self._json(200, {"result": "OK", "firewall": sandbox.firewall_state()})
        if name == "unblock" and method == "POST":
            return self._unblock()
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
            "firewall": "GET",
            "unblock": "POST",
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
