"""Injected faults: the network and server failures a client must survive.

| kind                | processed? | what the client sees                                        |
|---------------------|------------|-------------------------------------------------------------|
| ``latency:<s>``     | yes        | the normal answer, ``s`` seconds late                       |
| ``drop_before``     | no         | the connection closed before any answer                     |
| ``drop_after_accept``| yes (charged) | the connection closed with no answer                   |
| ``http_500/502/503``| no         | that status with a short text body                          |
| ``html_error``      | no         | HTTP 200 with an HTML error page (a proxy or portal page)   |
| ``malformed_json``  | yes        | HTTP 200, ``application/json``, a truncated JSON body       |
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

    def take(self, endpoint: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.endpoint in (endpoint, ANY_ENDPOINT):
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
