"""Helpers shared by the client tests: a clock tied to the sandbox, and its settled request log."""

from __future__ import annotations

import time

from airflow_provider_kwtsms.constants import MAX_RATE
from airflow_provider_kwtsms.pacing import TokenBucket
from airflow_provider_kwtsms.sandbox import Sandbox


class SandboxTime:
    """Client clock and sleep tied to the sandbox's clock: sleeping moves the sandbox forward.

    Without a sandbox, a virtual clock that only moves when slept.
    """

    def __init__(self, sb: Sandbox | None = None) -> None:
        self.sb = sb
        self.sleeps: list[float] = []
        self.paced: list[float] = []  # the waits of pacer(), kept apart from the client's own sleeps
        self.offset = 0.0

    def clock(self) -> float:
        return self.sb.now() if self.sb else time.monotonic() + self.offset

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.sb:
            self.sb.advance(seconds)
        else:
            self.offset += seconds

    def pace(self, seconds: float) -> None:
        """A pacing wait: moves the clock like :meth:`sleep`, recorded in ``paced``."""
        self.paced.append(seconds)
        if self.sb:
            self.sb.advance(seconds)
        else:
            self.offset += seconds

    def pacer(self, rate: float = MAX_RATE) -> TokenBucket:
        """A client ``pacer=`` at ``rate`` on this clock: requests stay within the gateway's 5 a
        second on the sandbox's clock (its firewall's), at no real time, and the pacing waits stay
        out of ``sleeps``, where tests read the client's retry and ERR028 waits."""
        return TokenBucket(rate, clock=self.clock, sleep=self.pace)


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
