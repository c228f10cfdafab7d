"""The sandbox's state: accounts, messages, the send queue, delivery status, the request rate.

Everything here is guarded by one lock and reads time from one clock (``Gateway.now``), which
tests move forward with ``advance()`` instead of sleeping.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import airflow_provider_kwtsms.sandbox.rules as rules
from airflow_provider_kwtsms.constants import DEFAULT_MAX_PAGES
from airflow_provider_kwtsms.sandbox.rules import ApiError, SendDraft

KUWAIT_OFFSET = 3 * 3600  # the server's clock is Asia/Kuwait (GMT+3, no daylight saving)
YEAR = 366 * 24 * 3600
MAX_ADVANCE = 10 * YEAR  # one advance() at most; more is a typo or an attack
MAX_OFFSET = 100 * YEAR  # the clock never runs further ahead: dates stay printable


@dataclass
class Account:
    username: str
    password: str
    available: int = 1000
    purchased: int | None = None  # None: same as the starting balance
    senders: list[str] = field(default_factory=lambda: ["KWT-SMS"])
    coverage: list[str] = field(default_factory=lambda: ["965"])

    def __post_init__(self) -> None:
        if self.purchased is None:
            self.purchased = self.available
        self.senders = list(self.senders)
        self.coverage = [str(prefix) for prefix in self.coverage]

    def to_dict(self) -> dict[str, Any]:
        # The password is left out on purpose: this dict is served by /sandbox/account.
        return {
            "username": self.username,
            "available": self.available,
            "purchased": self.purchased,
            "senders": list(self.senders),
            "coverage": list(self.coverage),
        }


@dataclass
class SentMessage:
    msg_id: str
    username: str
    sender: str
    mobile: list[str]
    message: str
    encoding: str
    pages: int
    points: int
    test: bool
    received_at: float  # the sandbox clock (real epoch seconds) when the request arrived
    unix_timestamp: int  # as answered: server clock in GMT+3
    leaves_queue_at: float
    delivered_at: float
    request_id: int
    api: str  # "json" or "legacy"
    stuck: bool = False  # holds emoji or invisible characters: never leaves the queue (ERR030)
    rejected: list[dict[str, Any]] = field(default_factory=list)  # numbers of the request left out, with why
    undeliverable: frozenset[str] = frozenset()

    def number_status(self, number: str, now: float) -> str:
        if self.test or self.stuck:
            return "HELD"
        if now < self.leaves_queue_at:
            return "QUEUED"
        if now < self.delivered_at:
            return "SENT"
        return "FAILED" if number in self.undeliverable else "DELIVERED"

    def status(self, now: float) -> str:
        states = {self.number_status(number, now) for number in self.mobile}
        if len(states) == 1:
            return states.pop()
        return "DELIVERED" if "DELIVERED" in states and states <= {"DELIVERED", "FAILED"} else "SENT"

    def to_dict(self, now: float) -> dict[str, Any]:
        return {
            "msg_id": self.msg_id,
            "username": self.username,
            "sender": self.sender,
            "mobile": list(self.mobile),
            "message": self.message,
            "encoding": self.encoding,
            "pages": self.pages,
            "points": self.points,
            "test": self.test,
            "status": self.status(now),
            "delivery": {number: self.number_status(number, now) for number in self.mobile},
            "received_at": self.received_at,
            "unix_timestamp": self.unix_timestamp,
            "request_id": self.request_id,
            "api": self.api,
            "stuck": self.stuck,
            "rejected": list(self.rejected),
        }


class RateLimiter:
    """Per-account request rate: GCRA, i.e. a token bucket with ``1 + tolerance`` tokens.

    Each account has a theoretical arrival time (TAT). A request at ``t`` is allowed when
    ``t >= TAT - tolerance * interval``; then ``TAT = max(TAT, t) + interval``. Refused requests
    change nothing. So the long-run rate never exceeds ``rate``, two requests back to back are
    refused, and a client whose request starts are ``1/rate`` apart is never refused while its
    requests arrive less than ``tolerance`` intervals late or early (network jitter).
    """

    def __init__(self, rate: float | None, tolerance: float = 0.5) -> None:
        self.rate = rate if rate and rate > 0 else None
        self.tolerance = tolerance
        self._tat: dict[Hashable, float] = {}

    def check(self, key: Hashable, now: float) -> float:
        """0.0 if allowed (and counted), else the seconds to wait before the next try."""
        if self.rate is None:
            return 0.0
        interval = 1.0 / self.rate
        tat = self._tat.get(key, now)
        earliest = tat - self.tolerance * interval
        if now < earliest:
            return earliest - now
        self._tat[key] = max(tat, now) + interval
        return 0.0

    def reset(self) -> None:
        self._tat.clear()


@dataclass
class Settings:
    max_pages: int = DEFAULT_MAX_PAGES  # v4.1: ERR012 above 6 pages
    queue_size: int = 1000
    drain_rate: float = 10.0  # messages per second leaving each account's queue
    deliver_after: float = 5.0  # seconds from leaving the queue to "DELIVERED"
    duplicate_window: float = 15.0  # ERR028; 0 disables
    test_charges: bool = False  # test=1 sends charge credits (an open question; see the docs)
    partial_numbers: str = "send_valid"  # or "reject": one bad number refuses the whole send
    timestamp_offset: int = KUWAIT_OFFSET
    undeliverable: frozenset[str] = frozenset()  # numbers whose delivery ends FAILED


class Gateway:
    """Accounts, messages and the API's behaviour. The HTTP layer only translates."""

    def __init__(
        self,
        accounts: list[Account],
        settings: Settings,
        *,
        rate: float | None,
        rate_tolerance: float = 0.5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._initial = [
            (a.username, a.password, a.available, a.purchased, list(a.senders), list(a.coverage))
            for a in accounts
        ]
        self.lock = threading.RLock()
        self._clock = clock
        self._offset = 0.0
        self.limiter = RateLimiter(rate, rate_tolerance)
        self.accounts: dict[str, Account] = {}
        self.messages: list[SentMessage] = []
        self.request_log: list[dict[str, Any]] = []
        self.emails: list[dict[str, Any]] = []  # what the SMTP listener received (sandbox/smtp.py)
        self._queues: dict[str, deque[float]] = {}
        self._last_sent: dict[tuple[str, str], float] = {}
        self._request_seq = 0
        self.reset()

    # --- time ---------------------------------------------------------------------------------

    def now(self) -> float:
        return self._clock() + self._offset

    def advance(self, seconds: object) -> None:
        """Move the clock forward; ValueError (naming ``seconds``) for a value that would break it."""
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, (int, float))
            or not 0 <= seconds <= MAX_ADVANCE  # False for NaN; no float() of a huge int
        ):
            raise ValueError(
                f"seconds must be a finite number from 0 to {MAX_ADVANCE} (10 years), "
                f"got {rules.shown(seconds)}"
            )
        with self.lock:
            if self._offset + seconds > MAX_OFFSET:
                raise ValueError(
                    f"seconds: the clock is already {self._offset:g} s ahead and may not run more than "
                    f"{MAX_OFFSET} s (100 years) ahead; reset the sandbox first"
                )
            self._offset += float(seconds)

    # --- bookkeeping --------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the starting accounts and the real time, with no messages, requests or rate history."""
        with self.lock:
            self._offset = 0.0
            self.accounts = {
                name: Account(name, password, available, purchased, senders, coverage)
                for name, password, available, purchased, senders, coverage in self._initial
            }
            self.messages = []
            self.request_log = []
            self.emails = []
            self._queues = {}
            self._last_sent = {}
            self.limiter.reset()

    def next_request_id(self) -> int:
        with self.lock:
            self._request_seq += 1
            return self._request_seq

    def log_request(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.request_log.append(entry)

    def record_email(self, record: dict[str, Any]) -> None:
        with self.lock:
            self.emails.append(record)

    def rate_check(self, fields: dict[str, Any] | None) -> float:
        """Count one request against the rate; 0.0 if allowed, else the seconds to wait.

        A request is counted under its account only once its password is right, so a stranger
        cannot use up somebody else's rate. Requests that fail to authenticate are not free:
        they share a bucket per known username they claim (one more for unknown names), which
        slows password guessing without touching the owner's own bucket, and keeps the table
        bounded however many names are made up.
        """
        with self.lock:
            return self.limiter.check(self._rate_key(fields or {}), self.now())

    def _rate_key(self, fields: dict[str, Any]) -> tuple[str, str | None]:
        try:
            return ("account", self._authenticate(fields).username)
        except ApiError:
            claimed = fields.get("username")
            known = isinstance(claimed, str) and claimed in self.accounts
            return ("unauthenticated", claimed if known else None)

    # --- the API ------------------------------------------------------------------------------

    def call(
        self, endpoint: str, fields: dict[str, Any], *, request_id: int = 0, api: str = "json"
    ) -> dict[str, Any]:
        """One API call: the OK answer's fields, or raises ApiError."""
        handler = getattr(self, f"_api_{endpoint}", None)
        if handler is None:
            raise ApiError("ERR002", f"Unknown endpoint {endpoint!r}.")
        # The send's stateless rules (the text's length, HTML, pages, cleaning) run here, before
        # the lock, so a long or tricky text never holds up the other clients.
        draft = rules.read_send(fields, self.settings.max_pages) if endpoint == "send" else None
        with self.lock:
            account = self._authenticate(fields)
            answer: dict[str, Any] = handler(account, fields, request_id=request_id, api=api, draft=draft)
            return answer

    def _authenticate(self, fields: dict[str, Any]) -> Account:
        username, password = rules.credentials(fields)
        account = self.accounts.get(username)
        if account is None or account.password != password:
            raise ApiError("ERR003")
        return account

    def _api_balance(self, account: Account, fields: dict[str, Any], **_: object) -> dict[str, Any]:
        return {"available": account.available, "purchased": account.purchased}

    def _api_senderid(self, account: Account, fields: dict[str, Any], **_: object) -> dict[str, Any]:
        return {"senderid": list(account.senders)}

    def _api_coverage(self, account: Account, fields: dict[str, Any], **_: object) -> dict[str, Any]:
        if not account.coverage:
            raise ApiError("ERR033")
        return {"prefixes": list(account.coverage)}

    def _api_validate(self, account: Account, fields: dict[str, Any], **_: object) -> dict[str, Any]:
        check = rules.check_numbers(rules.mobile_list(fields), account.coverage)
        return {"mobile": {"OK": check.ok, "ER": check.er, "NR": check.nr}}

    def _api_send(
        self, account: Account, fields: dict[str, Any], *, request_id: int, api: str, draft: SendDraft
    ) -> dict[str, Any]:
        settings = self.settings
        if draft.error is not None:
            raise draft.error
        sender, entries, text, test = draft.sender, draft.entries, draft.text, draft.test
        if sender not in account.senders:
            raise ApiError("ERR008")
        if len(entries) > rules.MAX_NUMBERS:
            raise ApiError("ERR007")
        check = rules.check_numbers(entries, account.coverage)
        rejected = [{"number": n, "code": "ERR025"} for n in check.er]
        rejected += [{"number": n, "code": "ERR026"} for n in check.nr]
        if not check.ok:
            if check.nr and not check.er:
                raise ApiError("ERR026")
            raise ApiError("ERR025" if len(entries) == 1 else "ERR006")
        if rejected and settings.partial_numbers == "reject":
            raise ApiError(rejected[0]["code"], f"Invalid or uncovered number: {rejected[0]['number']}.")
        if draft.text_error is not None:
            raise draft.text_error
        info = draft.info
        assert info is not None  # set whenever the text passed
        now = self.now()
        if settings.duplicate_window > 0:
            too_soon = [
                n
                for n in check.ok
                if now - self._last_sent.get((account.username, n), -math.inf) < settings.duplicate_window
            ]
            if too_soon:
                raise ApiError("ERR028", f"{ERR028_TEXT} Too soon for: {', '.join(too_soon[:10])}.")
        points = len(check.ok) * info.pages
        charged = points if (not test or settings.test_charges) else 0
        if account.available <= 0:
            raise ApiError("ERR010")
        if points > account.available:
            raise ApiError(
                "ERR011",
                f"Balance is not enough for this send: it needs {points} credits, "
                f"{account.available} are available.",
            )
        queue = self._queue(account.username, now)
        if len(queue) >= settings.queue_size:
            raise ApiError("ERR013")
        drain = 1.0 / settings.drain_rate if settings.drain_rate and settings.drain_rate > 0 else math.inf
        leaves = max(now, queue[-1] if queue else now) + drain
        queue.append(leaves)
        account.available -= charged
        for number in check.ok:
            self._last_sent[(account.username, number)] = now
        message = SentMessage(
            msg_id=uuid.uuid4().hex,
            username=account.username,
            sender=sender,
            mobile=check.ok,
            message=text,
            encoding=info.encoding,
            pages=info.pages,
            points=charged,
            test=test,
            received_at=now,
            unix_timestamp=int(now) + settings.timestamp_offset,
            leaves_queue_at=leaves,
            delivered_at=leaves + settings.deliver_after,
            request_id=request_id,
            api=api,
            stuck=draft.stuck,
            rejected=rejected,
            undeliverable=settings.undeliverable,
        )
        self.messages.append(message)
        return {
            "msg-id": message.msg_id,
            "numbers": len(check.ok),
            "points-charged": charged,
            "balance-after": account.available,
            "unix-timestamp": message.unix_timestamp,
        }

    def _queue(self, username: str, now: float) -> deque[float]:
        """The account's queue: the times its queued messages leave it (drained ones removed)."""
        queue = self._queues.setdefault(username, deque())
        while queue and queue[0] <= now:
            queue.popleft()
        return queue

    def _find(self, account: Account, fields: dict[str, Any]) -> SentMessage:
        msg_id = rules.text_field(fields, "msgid") or ""
        if len(msg_id) != 32 or any(c not in "0123456789abcdef" for c in msg_id):
            raise ApiError("ERR029")
        for message in reversed(self.messages):
            if message.msg_id == msg_id and message.username == account.username:
                return message
        raise ApiError("ERR020")

    def _api_status(self, account: Account, fields: dict[str, Any], **_: object) -> dict[str, Any]:
        message = self._find(account, fields)
        if message.test or message.stuck:
            raise ApiError("ERR030")
        status = message.status(self.now())
        return {"status": status, "description": STATUS_TEXT[status]}

    def _api_dlr(self, account: Account, fields: dict[str, Any], **_: object) -> dict[str, Any]:
        message = self._find(account, fields)
        if message.test:
            raise ApiError("ERR019")
        if message.stuck:
            raise ApiError("ERR030")
        now = self.now()
        if now < message.leaves_queue_at:
            raise ApiError("ERR021")
        report = []
        for number in message.mobile:
            state = message.number_status(number, now)
            report.append({"Number": number, "Status": "PENDING" if state == "SENT" else state})
        return {"report": report}

    # --- inspection ---------------------------------------------------------------------------

    def message_dicts(self) -> list[dict[str, Any]]:
        with self.lock:
            now = self.now()
            return [message.to_dict(now) for message in self.messages]


ERR028_TEXT = "You must wait at least 15 seconds before sending to the same number again."
STATUS_TEXT = {
    "QUEUED": "The message is in the send queue.",
    "SENT": "The message was sent to the operator; no delivery report yet.",
    "DELIVERED": "The message was delivered.",
    "FAILED": "The message could not be delivered.",
    "HELD": "The message is held in the queue.",
}
