"""The sandbox's Python face, ``Sandbox``: start and stop a local gateway, read and steer it.

One job: the context manager and the test-facing API (``start``, ``stop``, ``url``, ``messages``,
``requests``, ``advance``, ``reset``, ``inject_fault``, ``account``, ``firewall_state``...). The
HTTP side lives in ``http_handler`` (routing and endpoints) on ``http_base`` (bodies and answers);
the rules and the state behind both in ``rules`` and ``state``, the firewall in ``firewall``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from airflow_provider_kwtsms.constants import DEFAULT_MAX_PAGES
from airflow_provider_kwtsms.sandbox.faults import FaultBook, parse_fault
from airflow_provider_kwtsms.sandbox.firewall import DEFAULT_BLOCK_SECONDS, DEFAULT_LIMIT, Firewall
from airflow_provider_kwtsms.sandbox.http_handler import Handler, Server
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


# The HTTP 429 limiter (``rate``, off by default) is a test tool, not the gateway: the gateway's
# answer to too many requests is its firewall (sandbox/firewall.py). GCRA tolerance, in request
# intervals: 10 lets a burst of 11 requests through back to back while the long-run rate stays at
# ``rate``. 0.5 is strict (starts at least half an interval apart): the pacing tests turn it on to
# prove the client never exceeds the cap and waits out a 429.
DEFAULT_RATE_TOLERANCE = 10.0
STRICT_RATE_TOLERANCE = 0.5


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
        rate: float | None = None,
        rate_tolerance: float = DEFAULT_RATE_TOLERANCE,
        max_pages: int = DEFAULT_MAX_PAGES,
        queue_size: int = 1000,
        drain_rate: float = 10.0,
        deliver_after: float = 5.0,
        latency: float = 0.0,
        duplicate_window: float = 15.0,
        test_charges: bool = False,
        partial_numbers: str = "send_valid",
        error_status: str = "200",
        max_body: int = DEFAULT_MAX_BODY,
        accounts: Iterable[dict[str, Any]] | None = None,
        doc_account: bool = True,
        undeliverable: Iterable[str] = (),
        clock: Callable[[], float] = time.time,
        smtp_port: int | None = None,
        firewall: bool = True,
        firewall_limit: int = DEFAULT_LIMIT,
        block_seconds: float = DEFAULT_BLOCK_SECONDS,
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
            ("block_seconds", block_seconds, MAX_ADVANCE),
        ):
            _check_option(name, value, high)
        if isinstance(firewall_limit, bool) or not isinstance(firewall_limit, int) or firewall_limit < 1:
            raise ValueError(
                f"firewall_limit must be a whole number of requests a second, 1 or more "
                f"(the gateway's is {DEFAULT_LIMIT}), got {repr(firewall_limit)[:40]}"
            )
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
        self.firewall = Firewall(
            self.gateway.now, enabled=bool(firewall), limit=firewall_limit, block_seconds=block_seconds
        )
        self.host = host
        self.requested_port = port
        self.username = username
        self.latency = latency
        self.error_status = error_status
        self.max_body = max_body
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self.requested_smtp_port = smtp_port  # None: no SMTP listener; 0: a free port
        self._smtp: SmtpServer | None = None
        self._smtp_thread: threading.Thread | None = None

    # --- life cycle ---------------------------------------------------------------------------

    def start(self) -> Sandbox:
        if self._server is not None:
            return self
        server = Server((self.host, self.requested_port), Handler)
        server.sandbox = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="kwtsms-sandbox", daemon=True
        )
        self._thread.start()
        if self.requested_smtp_port is not None:
            self._start_smtp(self.requested_smtp_port)
        return self

    def _start_smtp(self, port: int) -> None:
        from airflow_provider_kwtsms.sandbox.smtp import SmtpServer

        try:
            smtp = SmtpServer((self.host, port), self.gateway, max_size=self.max_body)
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

    def messages(self, username: str | None = None) -> list[dict[str, Any]]:
        """Every accepted message, oldest first (optionally of one account)."""
        found = self.gateway.message_dicts()
        return [m for m in found if username is None or m["username"] == username]

    def emails(self) -> list[dict[str, Any]]:
        """Every e-mail the SMTP listener received, oldest first: outcome "accepted" (with msg_id)
        or "dropped" (with code and reason), envelope, sender, numbers, lang, text; never the password."""
        with self.gateway.lock:
            return [
                {**record, "mobile": list(record["mobile"]), "rcpt_to": list(record["rcpt_to"])}
                for record in self.gateway.emails
            ]

    def deliveries(self, include_test: bool = True) -> list[dict[str, Any]]:
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

    def account(self, username: str | None = None) -> dict[str, Any]:
        """The account's state: available, purchased, senders, coverage (no password)."""
        with self.gateway.lock:
            found = self.gateway.accounts.get(username or self.username)
            if found is None:
                raise KeyError(f"no sandbox account {username!r}; known: {sorted(self.gateway.accounts)}")
            return found.to_dict()

    def set_balance(self, available: int, username: str | None = None) -> None:
        with self.gateway.lock:
            self.gateway.accounts[username or self.username].available = int(available)

    def requests(self) -> list[dict[str, Any]]:
        """Every API request seen, oldest first: request_id, time, client (address), endpoint, api,
        username, code, http_status, fault, blocked (True: the firewall refused it unread)."""
        with self.gateway.lock:
            return [dict(entry) for entry in self.gateway.request_log]

    def inject_fault(self, kind: object, endpoint: object = "send", times: object = 1) -> dict[str, Any]:
        """Make the next ``times`` requests to ``endpoint`` ("*" for any) that ``kind`` can apply
        to fail with it (an accepted-answer fault waits for an accepted request; see faults.py).

        Any values are accepted and checked (they may come from /sandbox/faults' JSON body):
        ValueError says what is wrong and what is accepted."""
        fault = parse_fault(kind, endpoint, times)
        self.faults.add(fault)
        return fault.to_dict()

    def clear_faults(self) -> None:
        self.faults.clear()

    def firewall_state(self) -> dict[str, Any]:
        """The firewall's settings, the blocks in force (address, since, until, seconds_left) and,
        for each client address since the last reset, its requests, refused requests, blocks and
        largest number of requests begun within any one second (``max_in_one_second``); also the
        totals ``blocks`` and ``max_in_one_second``. Times are on the sandbox clock."""
        return self.firewall.state()

    def unblock(self, address: str | None = None) -> list[str]:
        """Lift the firewall's block of ``address`` (every block when None); the addresses lifted."""
        return self.firewall.unblock(address)

    def advance(self, seconds: object) -> None:
        """Move the sandbox clock forward (queue drain, delivery, the 15 s rule, blocks, the rate).

        ``seconds`` must be finite, 0 to 10 years, and the clock never runs more than 100 years
        ahead (ValueError naming ``seconds``; HTTP 400 at /sandbox/advance)."""
        self.gateway.advance(seconds)

    def now(self) -> float:
        return self.gateway.now()

    def reset(self) -> None:
        """Starting balances, the real time (every advance() undone), no messages, no requests,
        no faults, no rate history, no blocks and no firewall figures."""
        self.gateway.reset()
        self.faults.clear()
        self.firewall.reset()


def _check_option(name: str, value: object, high: float) -> None:
    """A number option must be finite and from 0 to ``high``: NaN or infinity would break every answer."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= high:
        raise ValueError(f"{name} must be a finite number from 0 to {high:g}, got {repr(value)[:40]}")


def _account_from(spec: dict[str, Any] | Account) -> Account:
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
