"""The storm guard for one notifier: per target, what goes out now, through a shared store.

:class:`StormGuard` applies ``alerts.guard``'s rule atomically in an ``alerts.store`` and adds
the daily cap: an SMS the rule lets out takes its credits from the target's allowance for the
day first; none left, it is given back (counted, and held back when it was an alert of its own).
The caller sends what it is handed (an :class:`Outgoing`) and says how it went: :meth:`sent`
(the credits it really cost) or :meth:`not_sent` (given back: the next digest reports it).

Keys: ``alert|<scope>|<target>`` (scope: the DAG id, or ``data["storm_key"]``) and
``cap|<target>``, hashed by the store.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import airflow_provider_kwtsms.alerts.guard as guard
from airflow_provider_kwtsms.alerts.digest import digest_text, recovery_text
from airflow_provider_kwtsms.alerts.guard import Alert, KeyState, Verdict
from airflow_provider_kwtsms.alerts.store import AlertStore

log = logging.getLogger(__name__)

DEFAULT_QUIET = 600.0  # seconds: one SMS per target and DAG per 10 minutes


@dataclass
class Outgoing:
    """One SMS the guard lets out to one target: ``text`` None means the caller's own alert text."""

    target: str
    verdict: Verdict
    text: str | None
    alert: Alert | None = None
    credits: float = 0.0  # taken from the day's allowance


@dataclass
class Decision:
    """What to do for one target now: send ``outgoing`` (or nothing), and start a courier that
    wakes at ``courier_at`` when set (this process took its lease)."""

    outgoing: Outgoing | None
    courier_at: float | None = None
    action: str = "send"


class StormGuard:
    """``quiet``: the quiet period in seconds; ``daily_cap``: credits per target and day (None:
    no cap); ``zone``: the time zone of the digest's times and of the cap's day; ``name``: what the
    digests call the key (the DAG id); ``render``: the guard's own texts as sent (a title before,
    cut to the page limit)."""

    def __init__(
        self,
        store: AlertStore,
        *,
        scope: str,
        name: str,
        quiet: float = DEFAULT_QUIET,
        daily_cap: float | None = None,
        zone: str = "Asia/Kuwait",
        clock: Callable[[], float] = time.time,
        render: Callable[[str], str] | None = None,
    ) -> None:
        self.store = store
        self.scope = scope
        self.name = name
        self.quiet = quiet
        self.daily_cap = daily_cap
        self.zone = zone
        self.clock = clock
        self._render = render or (lambda text: text)

    def key(self, target: str) -> str:
        return f"alert|{self.scope}|{target}"

    def _day(self, now: float) -> str:
        return datetime.fromtimestamp(now, UTC).astimezone(ZoneInfo(self.zone)).strftime("%Y-%m-%d")

    def _step(self, target: str, step: Callable[[KeyState], Any]) -> Any:
        def change(raw: Any) -> tuple[Any, Any]:
            state = guard.load(raw)
            result = step(state)
            return state.dump(), result

        return self.store.update(self.key(target), change)

    # -- what comes in -------------------------------------------------------------------------------
    def on_alert(self, target: str, alert: Alert, alert_pages: int) -> Decision:
        """An alert for ``target``: send it (``text`` None), send a digest, or count it."""
        now = self.clock()
        verdict: Verdict = self._step(target, lambda s: guard.admit(s, alert, now, self.quiet))
        if verdict.action == "count":
            return Decision(None, verdict.courier_at, "count")
        text = (
            None
            if verdict.action == "send"
            else self._render(digest_text(self.name, verdict.report, self.zone))
        )
        pages = alert_pages if text is None else _pages(text)
        return self._allow(Outgoing(target, verdict, text, alert), pages, now)

    def on_success(self, target: str) -> Decision:
        """A success with ``recovery`` on: the recovery SMS when the key had an incident."""
        now = self.clock()
        verdict: Verdict = self._step(target, lambda s: guard.recover(s, now))
        if verdict.action != "recover" or verdict.incident is None:
            return Decision(None, None, "idle")
        text = self._render(recovery_text(self.name, verdict.incident, verdict.report, now, self.zone))
        return self._allow(Outgoing(target, verdict, text), _pages(text), now)

    def on_due(self, target: str) -> Decision:
        """The courier looks: the digest when the period is over (``courier_at``: when to look
        again), ``wait`` until ``courier_at``, or ``idle``: the courier is done with this key."""
        now = self.clock()
        verdict: Verdict = self._step(target, lambda s: guard.due(s, now, self.quiet))
        if verdict.action != "digest":
            return Decision(None, verdict.courier_at, verdict.action)
        text = self._render(digest_text(self.name, verdict.report, self.zone))
        decision = self._allow(Outgoing(target, verdict, text), _pages(text), now)
        return Decision(decision.outgoing, verdict.courier_at, decision.action)

    # -- the daily cap, and what went out ----------------------------------------------------------
    def _allow(self, out: Outgoing, pages: int, now: float) -> Decision:
        credits = float(max(pages, 1))  # one credit a page for a Kuwaiti number; corrected once sent
        day = self._day(now)
        allowed: bool = self.store.update(
            f"cap|{out.target}", lambda raw: guard.spend(raw, day, credits, self.daily_cap)
        )
        if allowed:
            out.credits = credits
            return Decision(out, None, out.verdict.action)
        log.warning(
            "kwtSMS alert to %s held back: the daily cap of %g credits (data['daily_cap']) is spent; "
            "logged, not sent, and the next digest says how many were held back",
            out.target,
            self.daily_cap,
        )
        courier = self.not_sent(out, held=True)
        return Decision(None, courier, "held")

    def sent(self, out: Outgoing, credits: float | None) -> None:
        """``out`` went out and cost ``credits`` (None: unknown, the estimate stands)."""
        if credits is None or credits == out.credits:
            return
        day = self._day(self.clock())
        delta = credits - out.credits
        self.store.update(f"cap|{out.target}", lambda raw: guard.spend(raw, day, delta, None))

    def not_sent(self, out: Outgoing, *, held: bool = False) -> float | None:
        """``out`` did not go out (``held``: by the daily cap; else a gateway error): its alerts are
        counted again and its credits returned; returns the courier's wake time when the caller
        must start one."""
        now = self.clock()
        if out.credits:
            day = self._day(now)
            refund = -out.credits
            self.store.update(f"cap|{out.target}", lambda raw: guard.spend(raw, day, refund, None))
            out.credits = 0.0
        courier_at: float | None = self._step(
            out.target, lambda s: guard.give_back(s, out.verdict, out.alert, now, held=held)
        )
        return courier_at


def _pages(text: str) -> int:
    from airflow_provider_kwtsms.text.message import measure_message

    return measure_message(text).pages
