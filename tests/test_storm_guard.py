"""The storm guard's core (alerts/): its rule on a fake clock, its shared store across real
processes, its digest texts, the daily cap, and its courier (in-process on a fake clock against
the sandbox over HTTP, then a real detached one, killed or not)."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

import pytest
from sandbox_helpers import FakeTime

from airflow_provider_kwtsms.alerts import guard
from airflow_provider_kwtsms.alerts.courier import run as run_courier
from airflow_provider_kwtsms.alerts.digest import digest_text
from airflow_provider_kwtsms.alerts.guard import Alert, KeyState
from airflow_provider_kwtsms.alerts.store import (
    AlertStoreUnavailable,
    FileAlertStore,
    GuardedStore,
    MemoryAlertStore,
)
from airflow_provider_kwtsms.alerts.storm import StormGuard

T0 = datetime(2026, 12, 6, 11, 5, tzinfo=UTC).timestamp()  # 14:05 in Kuwait
QUIET = 600.0
ON_CALL = "96550001234"


def storm(store=None, clock=None, **options) -> StormGuard:
    return StormGuard(
        store or MemoryAlertStore(), scope="kwtsms_campaign", name="kwtsms_campaign",
        clock=clock or FakeTime(T0), **{"quiet": QUIET, **options},
    )  # fmt: skip


# -- the rule --------------------------------------------------------------------------------------
def test_a_storm_of_200_alerts_is_one_sms_then_one_digest_naming_199_more():
    clock = FakeTime(T0)
    guard_ = storm(clock=clock)
    actions = []
    for i in range(200):
        clock.now = T0 + i  # 200 failures over 200 s, inside one quiet period
        label = "send_batch" if i % 3 else "load_rows"
        actions.append(guard_.on_alert(ON_CALL, Alert(label), 1))
        if actions[-1].courier_at is not None:
            assert guard_.on_due(ON_CALL).action == "wait"  # the courier starts: it confirms its lease
    assert [d.action for d in actions].count("send") == 1 and actions[0].action == "send"
    assert [d.action for d in actions].count("count") == 199
    couriers = [d.courier_at for d in actions if d.courier_at is not None]
    assert couriers == [T0 + QUIET]  # one courier, started by the first alert counted
    clock.now = T0 + 300
    assert guard_.on_due(ON_CALL).action == "wait"  # woken early: nothing to claim yet
    clock.now = T0 + QUIET + 0.5
    digest = guard_.on_due(ON_CALL)
    assert digest.outgoing is not None
    assert (
        digest.outgoing.text
        == "kwtsms_campaign: 199 more failures since 14:05 (send_batch x133, load_rows x66)"
    )
    assert guard_.on_due(ON_CALL).action == "wait"  # claimed once: a second courier finds nothing
    clock.now = T0 + 2 * QUIET + 1
    assert guard_.on_due(ON_CALL).action == "idle"  # a quiet period passed: the key is idle
    clock.now += 5
    assert guard_.on_alert(ON_CALL, Alert("load_rows"), 1).action == "send"  # a new incident: at once


def test_a_storm_that_goes_on_costs_one_sms_a_period():
    clock = FakeTime(T0)
    guard_ = storm(clock=clock)
    sent = 0
    for second in range(0, 3600, 10):  # an alert every 10 s for an hour
        clock.now = T0 + second
        decision = guard_.on_due(ON_CALL)  # the courier looks as often as it likes
        sent += decision.outgoing is not None
        sent += guard_.on_alert(ON_CALL, Alert("load"), 1).outgoing is not None
    assert sent == 6  # the first alert and a digest at the end of each of the 5 periods after it


def test_an_alert_after_the_period_sends_the_digest_itself_when_no_courier_did():
    clock = FakeTime(T0)
    guard_ = storm(clock=clock)
    guard_.on_alert(ON_CALL, Alert("a"), 1)
    for _ in range(3):
        guard_.on_alert(ON_CALL, Alert("b"), 1)
    clock.now = T0 + 5 * QUIET  # the courier was killed: nobody looked for a long time
    late = guard_.on_alert(ON_CALL, Alert("c"), 1)
    assert late.action == "digest"
    assert late.outgoing.text == "kwtsms_campaign: 4 more failures since 14:05 (b x3, c x1)"


def test_keys_are_per_target_and_per_scope():
    store, clock = MemoryAlertStore(), FakeTime(T0)
    first = storm(store, clock)
    other_dag = StormGuard(store, scope="billing", name="billing", quiet=QUIET, clock=clock)
    assert first.on_alert(ON_CALL, Alert("x"), 1).action == "send"
    assert first.on_alert("96550001235", Alert("x"), 1).action == "send"  # a second target: its own
    assert other_dag.on_alert(ON_CALL, Alert("x"), 1).action == "send"  # another DAG: its own
    assert first.on_alert(ON_CALL, Alert("x"), 1).action == "count"


def test_the_courier_lease_passes_on_when_its_courier_never_confirmed():
    clock = FakeTime(T0)
    guard_ = storm(clock=clock)
    guard_.on_alert(ON_CALL, Alert("x"), 1)
    assert guard_.on_alert(ON_CALL, Alert("x"), 1).courier_at == T0 + QUIET
    clock.now += 1
    assert guard_.on_alert(ON_CALL, Alert("x"), 1).courier_at is None  # one is on its way
    clock.now += guard.SPAWN_GRACE + 1  # it never confirmed (killed before it started)
    assert guard_.on_alert(ON_CALL, Alert("x"), 1).courier_at == T0 + QUIET


def test_recovery_reports_the_incident_and_what_was_still_counted():
    clock = FakeTime(T0)
    guard_ = storm(clock=clock)
    assert guard_.on_success(ON_CALL).action == "idle"  # no incident: nothing to say
    for _ in range(13):
        guard_.on_alert(ON_CALL, Alert("send_batch"), 1)
    clock.now = T0 + 26 * 60
    recovered = guard_.on_success(ON_CALL)
    assert recovered.outgoing.text == "kwtsms_campaign recovered at 14:31 after 13 failures since 14:05"
    clock.now += guard.COURIER_GRACE
    assert guard_.on_due(ON_CALL).action == "idle"  # the 12 counted were reported by the recovery
    assert guard_.on_alert(ON_CALL, Alert("x"), 1).action == "send"


def test_the_daily_cap_holds_alerts_back_and_the_next_digest_says_how_many():
    clock = FakeTime(T0)
    store = MemoryAlertStore()
    campaign = storm(store, clock, daily_cap=2)
    billing = StormGuard(store, scope="billing", name="billing", quiet=QUIET, clock=clock, daily_cap=2)
    assert campaign.on_alert(ON_CALL, Alert("a"), 1).action == "send"
    assert billing.on_alert(ON_CALL, Alert("b"), 1).action == "send"
    clock.now += 60
    held = StormGuard(store, scope="etl", name="etl", quiet=QUIET, clock=clock, daily_cap=2)
    decision = held.on_alert(ON_CALL, Alert("load"), 1)
    assert decision.action == "held" and decision.outgoing is None
    assert decision.courier_at == T0 + 60 + QUIET  # its digest is due, whoever sends it
    clock.now = T0 + 86400  # the next day: the allowance is back
    digest = held.on_due(ON_CALL)
    assert digest.outgoing.text == "etl: 1 more failure since 14:06 (load x1); 1 held back by the daily cap"


def test_a_sent_sms_costs_what_the_gateway_charged():
    clock = FakeTime(T0)
    store = MemoryAlertStore()
    guard_ = storm(store, clock, daily_cap=3)
    out = guard_.on_alert(ON_CALL, Alert("a"), 1).outgoing
    guard_.sent(out, 3.0)  # an international number: three credits
    other = StormGuard(store, scope="b", name="b", quiet=QUIET, clock=clock, daily_cap=3)
    assert other.on_alert(ON_CALL, Alert("a"), 1).action == "held"


@pytest.mark.parametrize(
    "raw",
    [None, "text", [], {"v": 2}, {"v": 1, "period_end": "soon"}, {"v": 1, "counted": {"a": -1}},
     {"v": 1, "counted": {"a": True}}, {"v": 1, "period_end": float("inf")}, {"v": 1, "held": 10**12},
     {"v": 1, "counted": {str(i): 1 for i in range(500)}}],
)  # fmt: skip
def test_a_damaged_record_starts_the_key_afresh(raw):
    assert guard.load(raw) == KeyState()


def test_a_digest_names_the_most_frequent_few():
    report = guard.Report(30, T0, tuple((f"task_{i}", 10 - i) for i in range(8)), others=1)
    text = digest_text("etl", report, "Asia/Kuwait")
    assert text.startswith("etl: 30 more alerts since 14:05 (task_0 x10, task_1 x9,")
    assert text.endswith("task_5 x5, ...)")


def test_a_store_that_hangs_costs_a_bounded_time_then_the_machine_folder_guards(tmp_path):
    release = threading.Event()
    calls: list[str] = []
    finished: list[str] = []

    class Hanging:
        def update(self, key, change):
            calls.append(key)
            release.wait(60)  # hangs until the test lets it go
            finished.append(key)

    guarded = GuardedStore(Hanging(), machine=lambda: FileAlertStore(str(tmp_path / "a")), timeout=0.1)
    guard_ = StormGuard(guarded, scope="s", name="s", quiet=QUIET, clock=FakeTime(T0))
    try:
        assert guard_.on_alert(ON_CALL, Alert("x"), 1).action == "send"
        assert guard_.on_alert(ON_CALL, Alert("x"), 1).action == "count"
        # Both alerts were answered while the one store call still hangs: the guard gave up
        # on it (bounded), and the breaker did not ask the hung store a second time.
        assert len(calls) == 1 and finished == []
    finally:
        release.set()


def test_no_store_at_all_raises_so_the_alert_goes_out_unguarded(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    guarded = GuardedStore(None, machine=lambda: FileAlertStore(str(blocker)))
    with pytest.raises(AlertStoreUnavailable, match="unavailable"):
        StormGuard(guarded, scope="s", name="s", quiet=QUIET).on_alert(ON_CALL, Alert("x"), 1)


# -- the courier -----------------------------------------------------------------------------------
PASSWORD = "Courier-secret/pw"


def _spec(sandbox, folder: str, wake: float, quiet: float = QUIET) -> dict:
    return {
        "scope": "kwtsms_campaign", "name": "kwtsms_campaign", "quiet": quiet, "daily_cap": None,
        "zone": "Asia/Kuwait", "title": "[prod]", "max_pages": 1, "targets": {ON_CALL: wake},
        "store": None, "alert_dir": folder,
        "client": {"username": "u", "password": PASSWORD, "rate_store": None, "rate_store_password": None,
                   "kwargs": {"base_url": sandbox.url, "rate": 5.0, "timeout": [5.0, 10.0]}},
        "plan": {"sender": None, "test": None, "default_country": None, "smart_encoding": None},
    }  # fmt: skip


def test_the_courier_sends_the_digest_when_the_period_ends(kwtsms_sandbox_factory, tmp_path):
    """In-process, on a fake clock: the courier sleeps to the period's end, claims the digest, sends
    it over HTTP to the sandbox, watches one more period and, nothing more counted, ends."""
    sandbox = kwtsms_sandbox_factory(username="u", password=PASSWORD, duplicate_window=0)
    folder = str(tmp_path / "alerts")
    clock = FakeTime(T0)
    guard_ = StormGuard(FileAlertStore(folder), scope="kwtsms_campaign", name="kwtsms_campaign", clock=clock)
    guard_.on_alert(ON_CALL, Alert("a"), 1)
    counted = [guard_.on_alert(ON_CALL, Alert("send_batch"), 1) for _ in range(11)]
    wake = counted[0].courier_at
    sent = run_courier(_spec(sandbox, folder, wake), sleep=clock.sleep, clock=clock)
    assert sent == 1
    assert [m["message"] for m in sandbox.messages()] == [
        "[prod]: kwtsms_campaign: 11 more failures since 14:05 (send_batch x11)"
    ]
    assert T0 + clock.sleeps[0] - (T0 + QUIET) == pytest.approx(0.5)  # sent 0.5 s after the period's end
    assert guard_.on_alert(ON_CALL, Alert("a"), 1).action == "send"  # idle again


def test_a_refused_digest_is_counted_again_and_the_courier_stops_after_three_refusals(
    kwtsms_sandbox_factory, tmp_path
):
    """The gateway refuses every digest (no credits, ERR010): each refusal puts the counts back,
    the courier tries at each period's end and stops after 3 refusals in a row; nothing is lost:
    the next alert, once the account is topped up, sends the digest with all of them."""
    sandbox = kwtsms_sandbox_factory(username="u", password=PASSWORD, duplicate_window=0, balance=0)
    folder = str(tmp_path / "alerts")
    clock = FakeTime(T0)
    guard_ = StormGuard(FileAlertStore(folder), scope="kwtsms_campaign", name="kwtsms_campaign", clock=clock)
    guard_.on_alert(ON_CALL, Alert("a"), 1)
    counted = [guard_.on_alert(ON_CALL, Alert("send_batch"), 1) for _ in range(11)]
    sent = run_courier(_spec(sandbox, folder, counted[0].courier_at), sleep=clock.sleep, clock=clock)
    assert sent == 0 and sandbox.messages() == []
    sends = [r for r in sandbox.requests() if r["endpoint"] == "send"]
    assert [r["code"] for r in sends] == ["ERR010"] * 3  # three digests tried, then the courier stopped
    assert len(clock.sleeps) == 3  # one wait per period, and none after the third refusal
    sandbox.set_balance(100)
    clock.now += QUIET + 1
    decision = guard_.on_alert(ON_CALL, Alert("send_batch"), 1)
    assert decision.action == "digest" and decision.outgoing is not None
    # The 11 kept through three refusals, and this one; counted since the first period began.
    assert decision.outgoing.text == "kwtsms_campaign: 12 more failures since 14:05 (send_batch x12)"


def _counting_process(folder: str, ready_path: str) -> None:
    guard_ = StormGuard(FileAlertStore(folder), scope="kwtsms_campaign", name="kwtsms_campaign", quiet=0.4)
    guard_.on_alert(ON_CALL, Alert("load_rows"), 1)
    with open(ready_path, "w") as ready:
        ready.write("counted")
    time.sleep(60)  # killed here, after counting


def test_a_real_courier_survives_the_killed_process_that_counted(kwtsms_sandbox_factory, tmp_path):
    """Real processes: a first alert, a process that counts one more and is SIGKILLed, and the
    detached courier (python -m ...alerts.courier) that the counting started: it still sends the
    digest, with the killed process's alert in it, shortly after the (0.4 s) period ends."""
    from airflow_provider_kwtsms.alerts.courier import start_courier

    sandbox = kwtsms_sandbox_factory(username="u", password=PASSWORD, duplicate_window=0)
    folder = str(tmp_path / "alerts")
    os.makedirs(folder, mode=0o700)
    guard_ = StormGuard(FileAlertStore(folder), scope="kwtsms_campaign", name="kwtsms_campaign", quiet=0.4)
    assert guard_.on_alert(ON_CALL, Alert("send_batch"), 1).action == "send"
    wake = guard_.on_alert(ON_CALL, Alert("send_batch"), 1).courier_at
    assert start_courier(_spec(sandbox, folder, wake, quiet=0.4), log_dir=folder)
    ready = tmp_path / "ready"
    counting = multiprocessing.get_context("fork").Process(
        target=_counting_process, args=(folder, str(ready))
    )
    counting.start()
    deadline = time.monotonic() + 30  # a loaded machine: the courier starts a Python of its own
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(counting.pid, signal.SIGKILL)
    counting.join(5)
    while not sandbox.messages() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [m["message"] for m in sandbox.messages()] == [
        f"[prod]: kwtsms_campaign: 2 more failures since {_hhmm(wake - 0.4)} (load_rows x1, send_batch x1)"
    ]
    log = (tmp_path / "alerts" / "courier.log").read_text()
    assert "digest sent" in log and PASSWORD not in log


def _hhmm(at: float) -> str:
    from airflow_provider_kwtsms.alerts.digest import clock_time

    return clock_time(at, "Asia/Kuwait")


def test_the_courier_reads_its_password_from_a_pipe_never_its_arguments(tmp_path):
    """What `ps` shows of a courier: no secret (the spec goes on its standard input)."""
    spec = {"targets": {}}
    child = subprocess.run(
        [sys.executable, "-m", "airflow_provider_kwtsms.alerts.courier"],
        input=json.dumps(spec).encode(), capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert child.returncode == 1  # a spec without its parts: it stops, saying so, and sends nothing
    assert b"courier: stopped by an error" in child.stderr
