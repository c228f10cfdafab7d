"""Helpers shared by the client tests: a clock tied to the sandbox, and its settled request log."""

from __future__ import annotations

import threading
import time

from airflow_provider_kwtsms.sandbox import Sandbox


class SandboxTime:
    """Client clock and sleep tied to the sandbox's clock: sleeping moves the sandbox forward.

    Without a sandbox, a virtual clock that only moves when slept. Thread-safe: a send with
    requests in flight sleeps from its worker threads too (retries), and every sleep moves the
    one shared clock.
    """

    def __init__(self, sb: Sandbox | None = None) -> None:
        self.sb = sb
        self.sleeps: list[float] = []
        self.offset = 0.0
        self._lock = threading.Lock()

    def clock(self) -> float:
        return self.sb.now() if self.sb else time.monotonic() + self.offset

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            if self.sb:
                self.sb.advance(seconds)
            else:
                self.offset += seconds


def logged(sb: Sandbox) -> list[dict]:
    """The sandbox's request log once it has settled (it logs just after answering)."""
    before = sb.requests()
    for _ in range(50):
        time.sleep(0.02)
        now = sb.requests()
        if now == before:
            return now
        before = now
    return before


def logged_sends(sb: Sandbox) -> list[dict]:
    """The settled log's send requests (a bulk send also reads the coverage first)."""
    return [r for r in logged(sb) if r["endpoint"] == "send"]
