"""Injected faults: the network and server failures a client must survive.

| kind                 | processed?    | taken by       | what the client sees                         |
|----------------------|---------------|----------------|----------------------------------------------|
| ``latency:<s>``      | yes           | accepted only  | the normal answer, ``s`` seconds late        |
| ``drop_before``      | no            | any, on arrival| the connection closed before any answer      |
| ``drop_after_accept``| yes (charged) | accepted only  | the connection closed with no answer         |
| ``http_500/502/503`` | no            | any, on arrival| that status with a short text body           |
| ``html_error``       | no            | any, on arrival| HTTP 200 with an HTML error page (a proxy)   |
| ``malformed_json``   | yes           | accepted only  | HTTP 200, ``application/json``, cut JSON     |

A fault is used up only by a request it can apply to. The arrival kinds happen before the gateway
looks at the request (a proxy or the network fails), so any request of the endpoint that gets past
the rate limit takes them. The accepted kinds need an answer to drop, cut or delay, so only a
request the gateway processes and accepts (``result`` OK) takes them: a send refused with ERR003
or ERR028 leaves a scripted ``drop_after_accept`` for the send that is accepted. Among the faults
of one stage, the order they were added is kept.
"""

from __future__ import annotations

import re
import threading
from dataclasses import asdict, dataclass
from typing import Any

from airflow_provider_kwtsms.sandbox.rules import shown

SIMPLE_KINDS = (
    "drop_before",
    "drop_after_accept",
    "http_500",
    "http_502",
    "http_503",
    "html_error",
    "malformed_json",
)
ARRIVAL_KINDS = frozenset({"drop_before", "http_500", "http_502", "http_503", "html_error"})
ACCEPTED_KINDS = frozenset({"drop_after_accept", "malformed_json", "latency"})
ARRIVAL = "arrival"
ACCEPTED = "accepted"
ANY_ENDPOINT = "*"
ENDPOINTS = ("balance", "senderid", "coverage", "validate", "send", "status", "dlr")
MAX_TIMES = 1_000_000
MAX_LATENCY = 300.0
# ASCII digits only: float() would also take "١", "1_0", "nan" and "inf".
_SECONDS = re.compile(r"[0-9]{1,6}(?:\.[0-9]{1,6})?")


@dataclass
class Fault:
    kind: str  # one of SIMPLE_KINDS or "latency"
    endpoint: str  # an API endpoint name or "*"
    times: int  # how many more requests it hits; -1 = every request until cleared
    delay: float = 0.0  # for latency

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_fault(kind: object, endpoint: object = "send", times: object = 1) -> Fault:
    """Checks a fault request; raises ValueError saying what is wrong and what is accepted."""
    if not isinstance(kind, str):
        raise ValueError(f"fault kind must be a string such as 'http_500' or 'latency:2', got {shown(kind)}")
    if not isinstance(endpoint, str) or endpoint not in (*ENDPOINTS, ANY_ENDPOINT):
        raise ValueError(
            f"fault endpoint must be one of {', '.join(ENDPOINTS)} or '*', got {shown(endpoint)}"
        )
    if isinstance(times, bool) or not isinstance(times, int) or not (times == -1 or 1 <= times <= MAX_TIMES):
        raise ValueError(
            f"fault times must be an integer from 1 to {MAX_TIMES} (or -1 for always), got {shown(times)}"
        )
    if kind.startswith("latency:"):
        seconds = kind.split(":", 1)[1]
        delay = float(seconds) if _SECONDS.fullmatch(seconds) else -1.0
        if not 0 <= delay <= MAX_LATENCY:
            raise ValueError(
                "fault kind: latency must be 'latency:<seconds>' with 0 to 300 seconds in ASCII digits, "
                f"got {shown(kind)}"
            )
        return Fault("latency", endpoint, times, delay)
    if kind not in SIMPLE_KINDS:
        raise ValueError(
            f"unknown fault kind {shown(kind)}; use one of latency:<seconds>, {', '.join(SIMPLE_KINDS)}"
        )
    return Fault(kind, endpoint, times)


class FaultBook:
    """Pending faults, taken first-in first-out by the requests they match."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def take(self, endpoint: str, stage: str) -> Fault | None:
        """The first pending fault of ``endpoint`` that applies at ``stage`` (``ARRIVAL``: before
        processing; ``ACCEPTED``: the gateway accepted the request), used up by one."""
        kinds = ARRIVAL_KINDS if stage == ARRIVAL else ACCEPTED_KINDS
        with self._lock:
            for fault in self._faults:
                if fault.endpoint in (endpoint, ANY_ENDPOINT) and fault.kind in kinds:
                    if fault.times > 0:
                        fault.times -= 1
                        if fault.times == 0:
                            self._faults.remove(fault)
                    return Fault(fault.kind, fault.endpoint, 1, fault.delay)
        return None

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [fault.to_dict() for fault in self._faults]

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
