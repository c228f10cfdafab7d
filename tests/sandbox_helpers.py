"""Helpers shared by the client tests: a clock tied to the sandbox, and its settled request log."""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from airflow_provider_kwtsms.constants import MAX_RATE
from airflow_provider_kwtsms.rate.bucket import TokenBucket
from airflow_provider_kwtsms.sandbox import Sandbox

FROZEN_AT = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def frozen_clock(start: float = FROZEN_AT) -> Callable[[], float]:
    """A sandbox clock that stands still: only ``advance()`` (a linked client's sleep) moves it.

    A client paced at exactly 5 a second then reaches the sandbox at the very instants it chose.
    On the real clock, the few milliseconds between the pacer's decision and the request's
    arrival vary, so six starts 0.2 s apart can arrive within 0.994 s (16 of 100 requests were
    refused in one run): the firewall blocks them, as a precise real one would (docs/sandbox.md).
    """
    return lambda: start


class FakeTime:
    """A clock that only moves when someone sleeps (or a test moves ``now``): the tests' one fake
    clock. Pass ``time.clock`` or ``time`` itself (it is callable) where a clock is asked, and
    ``time.sleep`` where a sleep is; one for every bucket of a test, as the processes of one
    machine share CLOCK_MONOTONIC. ``sleeps`` lists every sleep asked, in order."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    __call__ = clock

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(seconds, 0.0)  # a sleep never moves time back


class SandboxTime:
    """Client clock and sleep tied to the sandbox's clock: sleeping moves the sandbox forward.

    Without a sandbox, a virtual clock that only moves when slept. Thread-safe: a send with
    requests in flight sleeps from its worker threads too (retries), and every sleep moves the
    one shared clock.
    """

    def __init__(self, sb: Sandbox | None = None) -> None:
        self.sb = sb
        self.sleeps: list[float] = []
        self.paced: list[float] = []  # the waits of pacer(), kept apart from the client's own sleeps
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

    def pace(self, seconds: float) -> None:
        """A pacing wait: moves the clock like :meth:`sleep`, recorded in ``paced``."""
        with self._lock:
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


_LINKED: weakref.WeakKeyDictionary[Sandbox, tuple[SandboxTime, TokenBucket]] = weakref.WeakKeyDictionary()


def linked(sb: Sandbox) -> dict[str, Any]:
    """``KwtSMSClient`` options for a client of ``sb``: its clock and sleep, and one pacer at the
    documented maximum shared by every client made for ``sb`` (a task's retry, a second task),
    as every process of one machine shares the account's rate."""
    if sb not in _LINKED:
        vt = SandboxTime(sb)
        _LINKED[sb] = (vt, vt.pacer())
    vt, pacer = _LINKED[sb]
    return {"rate": MAX_RATE, "clock": vt.clock, "sleep": vt.sleep, "pacer": pacer}


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


class TakingTurns:
    """One virtual clock (the sandbox's) for several threads that run at once, as the processes of
    a burst do: a thread's ``sleep`` blocks until the clock reaches its wake-up, and the clock jumps
    to the next wake-up only when every thread of the burst sleeps or has finished. So waits cost
    no real time, yet each thread sees the others' requests in the order the waits set, as on a
    real clock (tests/test_notifier.py: four alerts to one number at once)."""

    def __init__(self, sb: Sandbox, threads: int) -> None:
        self.sb = sb
        self.sleeps: list[float] = []
        self._running = threads
        self._wakes: dict[int, float] = {}  # thread ident -> its wake-up on the sandbox clock
        self._cond = threading.Condition()

    def clock(self) -> float:
        return self.sb.now()

    def sleep(self, seconds: float) -> None:
        me = threading.get_ident()
        with self._cond:
            self.sleeps.append(seconds)
            self._wakes[me] = self.sb.now() + max(seconds, 0.0)
            self._running -= 1
            self._advance()
            if not self._cond.wait_for(lambda: me not in self._wakes, timeout=60):
                raise AssertionError("TakingTurns: a thread of the burst never slept or finished")

    def pacer(self, rate: float = MAX_RATE) -> TokenBucket:
        """One pacer for every thread of the burst, on this clock (the account's shared rate)."""
        return TokenBucket(rate, clock=self.clock, sleep=self.sleep)

    def finished(self) -> None:
        """Called by each thread of the burst as its last step."""
        with self._cond:
            self._running -= 1
            self._advance()

    def _advance(self) -> None:
        if self._running > 0 or not self._wakes:
            return
        earliest = min(self._wakes.values())
        if earliest > self.sb.now():
            self.sb.advance(earliest - self.sb.now())
        for ident, wake in list(self._wakes.items()):
            if wake <= earliest:
                del self._wakes[ident]
                self._running += 1
        self._cond.notify_all()
