"""The storm guard's rule for one key (one target, one DAG): send, count, report or recover.

Pure functions on a small record and a time given by the caller, so a test drives hours of alerts
in milliseconds; ``alerts.store`` runs each one atomically for every process that shares a store.

- A key is idle until an alert comes. That alert is sent and opens a quiet period of ``quiet``
  seconds. Alerts inside the period are counted (what failed, how many), not sent.
- When the period ends with alerts counted, one digest reports them and opens the next period;
  a period that ends with nothing counted makes the key idle again. A storm costs one SMS a
  period; an alert after a quiet spell goes out at once.
- Who sends the digest: the *courier* (``alerts.courier``), a detached process started by the
  first alert counted in a period. It holds a lease (``courier_until``) that another counting
  process takes over once it runs out, so a courier that died is replaced by the next alert. An
  alert that finds its key's period over with alerts still counted (the courier is late or gone)
  sends the digest itself, counting itself in: nothing counted is dropped unreported.
- An SMS that could not go out (the daily cap, a gateway error) is given back (:func:`give_back`):
  its alerts are counted again, and an alert held back is counted as held, so the next digest says so.
- Recovery: failures open an incident; :func:`recover` closes it with one report of how many
  failures it had (and whatever was still counted).

Records come from a store other processes write: :func:`load` reads them as untrusted (a field
of the wrong type or out of range starts the key afresh).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

VERSION = 1
# Seconds a spawned courier has to confirm its lease; until then no other process starts one.
SPAWN_GRACE = 30.0
# Seconds past the period's end that a confirmed courier stays responsible for its digest.
COURIER_GRACE = 60.0
MAX_LABELS = 50  # distinct things counted per period (a digest names the first few anyway)
MAX_LABEL = 60  # characters of one label kept
MAX_COUNT = 10**9

Action = Literal["send", "count", "digest", "recover", "wait", "idle"]


@dataclass(frozen=True)
class Alert:
    """One alert as the guard counts it: what failed (a task id, "dag") and whether it is a failure
    (success and other states are alerts too, but never open an incident)."""

    label: str
    failure: bool = True


@dataclass(frozen=True)
class Report:
    """What a digest or a recovery reports: the alerts counted since ``since``, by label."""

    count: int
    since: float | None
    labels: tuple[tuple[str, int], ...]
    held: int = 0  # of them, alerts the daily cap held back
    others: int = 0  # of them, alerts that were not failures

    @property
    def empty(self) -> bool:
        return self.count == 0 and self.held == 0


NO_REPORT = Report(0, None, ())


@dataclass
class KeyState:
    """The shared record of one key."""

    period_end: float | None = None  # None: idle
    since: float | None = None  # the first alert counted in this period
    counted: dict[str, int] = field(default_factory=dict)
    others: int = 0  # counted alerts that are not failures
    held: int = 0  # alerts the daily cap held back (counted too)
    incident_since: float | None = None
    incident_failures: int = 0
    courier_until: float = 0.0

    @property
    def pending(self) -> int:
        return sum(self.counted.values())

    def dump(self) -> dict[str, Any]:
        return {
            "v": VERSION,
            "period_end": self.period_end,
            "since": self.since,
            "counted": dict(self.counted),
            "others": self.others,
            "held": self.held,
            "incident_since": self.incident_since,
            "incident_failures": self.incident_failures,
            "courier_until": self.courier_until,
        }


class DamagedRecord(ValueError):
    """A stored record this module never writes (caught in :func:`load`: a fresh state)."""


def _time(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DamagedRecord("not a time")
    return float(value)


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        raise DamagedRecord("not a count")
    return value


def load(raw: Any) -> KeyState:
    """A stored record read as untrusted: anything unexpected gives a fresh (idle) state."""
    if not isinstance(raw, dict) or raw.get("v") != VERSION:
        return KeyState()
    try:
        counted = raw.get("counted") or {}
        if not isinstance(counted, dict) or len(counted) > MAX_LABELS:
            raise DamagedRecord("not a table of counts")
        return KeyState(
            period_end=_time(raw.get("period_end")),
            since=_time(raw.get("since")),
            counted={str(k)[:MAX_LABEL]: _count(v) for k, v in counted.items()},
            others=_count(raw.get("others", 0)),
            held=_count(raw.get("held", 0)),
            incident_since=_time(raw.get("incident_since")),
            incident_failures=_count(raw.get("incident_failures", 0)),
            courier_until=_time(raw.get("courier_until", 0.0)) or 0.0,
        )
    except DamagedRecord:
        return KeyState()


@dataclass(frozen=True)
class Verdict:
    """What the caller does now. ``courier_at``: this caller took the courier's lease and starts
    a courier that wakes then (the period's end)."""

    action: Action
    report: Report = NO_REPORT
    incident: tuple[float, int] | None = None  # recover: (since, failures)
    courier_at: float | None = None


def _count_in(state: KeyState, alert: Alert, now: float) -> None:
    label = alert.label[:MAX_LABEL] or "alert"
    if label in state.counted or len(state.counted) < MAX_LABELS:
        state.counted[label] = min(state.counted.get(label, 0) + 1, MAX_COUNT)
    else:  # a table of counts stays small; the total stays right
        state.counted["other"] = min(state.counted.get("other", 0) + 1, MAX_COUNT)
    if not alert.failure:
        state.others += 1
    state.since = now if state.since is None else min(state.since, now)


def _take_report(state: KeyState) -> Report:
    ranked = tuple(sorted(state.counted.items(), key=lambda item: (-item[1], item[0])))
    report = Report(state.pending, state.since, ranked, state.held, state.others)
    state.counted, state.since, state.held, state.others = {}, None, 0, 0
    return report


def _courier(state: KeyState, now: float) -> float | None:
    """Take the courier's lease when alerts wait for a digest and no courier answers for them."""
    if state.pending and state.period_end is not None and state.courier_until < now:
        state.courier_until = now + SPAWN_GRACE
        return state.period_end
    return None


def _incident(state: KeyState, alert: Alert, now: float) -> None:
    if alert.failure:
        if state.incident_since is None:
            state.incident_since = now
        state.incident_failures = min(state.incident_failures + 1, MAX_COUNT)


def admit(state: KeyState, alert: Alert, now: float, quiet: float) -> Verdict:
    """An alert comes (``state`` is changed in place): send it, count it, or (its period over with
    alerts still counted) send the digest with it counted in."""
    _incident(state, alert, now)
    if state.period_end is not None and now < state.period_end:
        _count_in(state, alert, now)
        return Verdict("count", courier_at=_courier(state, now))
    state.period_end = now + quiet
    if state.pending:  # the courier is late or gone: this alert reports the period that ended
        _count_in(state, alert, now)
        report = _take_report(state)
        return Verdict("digest", report)
    return Verdict("send")


def due(state: KeyState, now: float, quiet: float) -> Verdict:
    """The courier looks: ``wait`` until the period's end (``courier_at``), then the ``digest``
    (which opens the next period, the courier keeping its lease), or ``idle``: nothing to do."""
    if state.period_end is None:
        return Verdict("idle")
    if now < state.period_end:
        state.courier_until = state.period_end + COURIER_GRACE  # confirmed: no other courier
        return Verdict("wait", courier_at=state.period_end)
    if not state.pending and not state.held:
        state.period_end = None
        state.courier_until = 0.0
        return Verdict("idle")
    report = _take_report(state)
    state.period_end = now + quiet
    state.courier_until = state.period_end + COURIER_GRACE
    return Verdict("digest", report, courier_at=state.period_end)


def recover(state: KeyState, now: float) -> Verdict:
    """A success after failures: close the incident and report it (and whatever was counted);
    ``idle`` when there was no incident. The key becomes idle: the next failure is sent at once."""
    if state.incident_since is None:
        return Verdict("idle")
    incident = (state.incident_since, state.incident_failures)
    report = _take_report(state)
    state.incident_since, state.incident_failures = None, 0
    state.period_end, state.courier_until = None, 0.0
    return Verdict("recover", report, incident)


def give_back(
    state: KeyState, verdict: Verdict, alert: Alert | None, now: float, *, held: bool = False
) -> float | None:
    """An SMS the verdict asked for did not go out: count its alerts again (an alert of its own
    too, as held back by the daily cap when ``held``), so the next digest reports them. Returns
    the courier's wake time when this caller must start one."""
    report = verdict.report
    for label, count in report.labels:
        state.counted[label] = min(state.counted.get(label, 0) + count, MAX_COUNT)
    state.held += report.held
    state.others += report.others
    if report.since is not None:
        state.since = report.since if state.since is None else min(state.since, report.since)
    if verdict.action == "send" and alert is not None:
        _count_in(state, alert, now)
        state.held += int(held)
    if verdict.incident is not None:
        since, failures = verdict.incident
        state.incident_since = since if state.incident_since is None else min(state.incident_since, since)
        state.incident_failures = min(state.incident_failures + failures, MAX_COUNT)
    if (state.pending or state.held) and state.period_end is None:
        state.period_end = now  # a recovery given back: due now
    return _courier(state, now)


# -- the daily cap: credits spent on alerts per target and day -----------------------------------
def spend(raw: Any, day: str, credits: float, cap: float | None) -> tuple[dict[str, Any], bool]:
    """Take ``credits`` from the day's allowance (``cap`` None: no cap, only counted); returns the
    new record and whether the SMS may go out."""
    spent = 0.0
    if isinstance(raw, dict) and raw.get("day") == day:
        value = raw.get("spent")
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            spent = max(float(value), 0.0)
    if cap is not None and spent + credits > cap:
        return {"day": day, "spent": spent}, False
    return {"day": day, "spent": spent + credits}, True
