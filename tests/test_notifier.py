"""KwtSMSNotifier: composing alerts, sending them to the sandbox, ERR028, async, and a real DAG run."""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from airflow.sdk import DAG
from airflow_support import kwtsms_conn_json, kwtsms_conn_uri, smtp_relay_conn_json

from airflow_provider_kwtsms.notifications.kwtsms import (
    KwtSMSNotifier,
    default_alert,
    send_kwtsms_notification,
)
from airflow_provider_kwtsms.text.message import measure_message
from airflow_provider_kwtsms.version_compat import (
    AIRFLOW_V_3_3_PLUS,
    HAS_ASYNC_NOTIFIER,
    NOTIFIER_ERRORS_PROPAGATE,
    AirflowFailException,
)

pytestmark = pytest.mark.compat

PASSWORD = "N0tify-secret/pw"


def _context(exception: BaseException | None = None, **ti: object) -> dict:
    # The fields Airflow's task callbacks give (a RuntimeTaskInstance has these attributes).
    ti_fields = {
        "dag_id": "billing",
        "task_id": "charge",
        "run_id": "manual__2026-01-01",
        "try_number": 2,
        "max_tries": 3,
        **ti,
    }
    return {
        "dag": DAG(dag_id=str(ti_fields["dag_id"]), schedule=None),  # every callback context has it
        "ti": SimpleNamespace(**ti_fields),
        "run_id": ti_fields["run_id"],
        "exception": exception,
    }


@pytest.fixture(autouse=True)
def couriers(monkeypatch) -> list[dict]:
    """The couriers the notifier starts, recorded instead of spawned (a real one sleeps for the
    whole quiet period; tests/test_storm_guard.py runs real ones)."""
    from airflow_provider_kwtsms.alerts import courier

    started: list[dict] = []
    monkeypatch.setattr(courier, "start_courier", lambda spec, log_dir=None: started.append(spec) or True)
    return started


@pytest.fixture
def sandbox(kwtsms_sandbox_factory, monkeypatch):
    sandbox = kwtsms_sandbox_factory(username="u", password=PASSWORD)
    monkeypatch.setenv("AIRFLOW_CONN_KWTSMS_DEFAULT", kwtsms_conn_uri(sandbox.url, "u", PASSWORD))
    return sandbox


def test_default_alert_names_dag_task_try_run_and_exception():
    text = default_alert(_context(RuntimeError("card processor down")))
    assert (
        text == "billing.charge failed: RuntimeError: card processor down (try 2/4, run manual__2026-01-01)"
    )


def test_default_alert_without_an_exception_uses_the_state():
    assert default_alert(_context(state="success", try_number=1, max_tries=0)) == (
        "billing.charge success (try 1, run manual__2026-01-01)"
    )


def test_the_cause_comes_first_and_the_run_is_named_by_its_date():
    """Issue 23, item 7: the alert of issue 23's example, which cut its cause after 50 characters of
    run id, now says the cause first, the run by its logical date, within its one page."""
    context = _context(
        AirflowFailException("kwtSMS balance is 1000 credits, below the 5000 this send needs: top up"),
        dag_id="newcomer_trial", task_id="gate", try_number=1, max_tries=0,
        run_id="manual__2026-12-06T13:19:28.866574+00:00",
    )  # fmt: skip
    context["logical_date"] = datetime(2026, 12, 6, 13, 19, 28, 866574, tzinfo=UTC)
    text = KwtSMSNotifier(target="96550001234", title="[trial]").compose(context)
    assert text == (  # 160 characters: the cause cut by its last words, never the try and run
        "[trial]: newcomer_trial.gate failed: AirflowFailException: kwtSMS balance is 1000 credits, "
        "below the 5000 this send needs... (try 1, run 2026-12-06 13:19 UTC)"
    )
    assert measure_message(text).pages == 1


def test_long_alerts_are_cut_to_one_page_by_default():
    notifier = KwtSMSNotifier(target="96550001234")
    text = notifier.compose(_context(ValueError("x " * 400)))
    assert measure_message(text).pages == 1
    assert text.startswith("billing.charge failed: ValueError: x x")
    assert text.endswith("x... (try 2/4, run manual__2026-01-01)")  # the cause is cut, not the try and run
    two = KwtSMSNotifier(target="96550001234", data={"max_pages": 2})
    two = two.compose(_context(ValueError("x " * 400)))
    assert measure_message(two).pages == 2


def test_title_prefixes_the_message():
    notifier = KwtSMSNotifier(target="96550001234", title="[prod]", message="disk full")
    assert notifier.compose({}) == "[prod]: disk full"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"target": "96550001234", "data": {"priority": "high"}}, "unknown option(s) priority: use only"),
        ({"target": ""}, "target is empty: give the phone number(s)"),
    ],
)
def test_bad_arguments_are_named(kwargs, error):
    with pytest.raises(ValueError, match=error.replace("(", r"\(").replace(")", r"\)")):
        KwtSMSNotifier(**kwargs)


def test_bad_max_pages_is_named():
    with pytest.raises(ValueError, match=r"data\['max_pages'\] is 0: give a whole number of pages"):
        KwtSMSNotifier(target="96550001234", data={"max_pages": 0}).compose({})


def test_notify_sends_with_the_data_options(sandbox):
    notifier = send_kwtsms_notification(
        target="50001234, 96550001234",
        message="db-1 is down",
        data={"test": "true", "default_country": "965", "sender": "KWT-SMS"},
    )
    notifier(_context())  # as Airflow calls a callback: render templates, then notify
    [message] = sandbox.messages()
    assert message["mobile"] == ["96550001234"]  # the local form and the full form are one number
    assert message["message"] == "db-1 is down"
    assert message["test"] is True and message["sender"] == "KWT-SMS"


def test_an_invalid_target_is_skipped_with_a_warning_naming_it_and_the_others_get_the_alert(
    sandbox, caplog, monkeypatch
):
    # docs/notifier.md: "invalid ones are skipped with a warning naming them".
    import logging

    logger = logging.getLogger("kwtsms.test.notifier")  # Airflow's own logs go to structlog, not caplog
    monkeypatch.setattr(KwtSMSNotifier, "log", property(lambda self: logger))
    notifier = send_kwtsms_notification(target="96550001234, 12345, 96550001235", message="db-1 is down")
    with caplog.at_level(logging.WARNING, logger=logger.name):
        notifier(_context())
    [message] = sandbox.messages()
    assert message["mobile"] == ["96550001234", "96550001235"]
    assert "skipped invalid target '12345'" in caplog.text and "too short" in caplog.text


def test_templates_are_rendered_from_the_context(sandbox):
    notifier = KwtSMSNotifier(
        target="{{ params.on_call }}", title="{{ params.env }}", message="{{ ti.task_id }} failed"
    )
    notifier({**_context(), "params": {"on_call": "96550001234", "env": "prod"}})
    assert [m["message"] for m in sandbox.messages()] == ["prod: charge failed"]


def test_four_alerts_to_one_number_at_once_all_arrive(kwtsms_sandbox_factory, monkeypatch):
    """A burst: four runs fail at once and alert one on-call number, each through its own
    KwtSMSNotifier (real hook, real client, the sandbox's 15 s rule). The gateway takes one per
    15 s and refuses the rest with ERR028; each refused alert waits its turn (up to
    ``same_number_retries``, 3) and all four arrive, as docs/notifier.md promises. The four run in
    threads on one virtual clock (the sandbox's), so the 46 s of waits cost no real time."""
    import threading

    from sandbox_helpers import TakingTurns, frozen_clock

    from airflow_provider_kwtsms.gateway import client as client_module

    sandbox = kwtsms_sandbox_factory(username="u", password=PASSWORD, clock=frozen_clock())
    monkeypatch.setenv("AIRFLOW_CONN_KWTSMS_DEFAULT", kwtsms_conn_uri(sandbox.url, "u", PASSWORD))
    burst = TakingTurns(sandbox, threads=4)
    pacer = burst.pacer()  # the account's one rate, shared by the four

    class OnSandboxTime(client_module.KwtSMSClient):  # what the hook builds, on the burst's clock
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **{**kwargs, "clock": burst.clock, "sleep": burst.sleep, "pacer": pacer})

    monkeypatch.setattr(client_module, "KwtSMSClient", OnSandboxTime)
    errors: list[BaseException] = []

    def alert(run: int) -> None:
        try:
            KwtSMSNotifier(
                target="96550001234", message=f"run {run} failed", data={"quiet_period": 0}
            ).notify(_context())  # the storm guard off: every alert goes out
        except BaseException as exc:
            errors.append(exc)
        finally:
            burst.finished()

    threads = [threading.Thread(target=alert, args=(run,)) for run in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert sorted(m["message"] for m in sandbox.messages()) == [f"run {run} failed" for run in range(4)]
    codes = [r["code"] for r in sandbox.requests() if r["endpoint"] == "send"]
    assert codes.count("OK") == 4 and codes.count("ERR028") == 3 + 2 + 1  # the last one waited 3 times
    sent = sorted(r["time"] for r in sandbox.requests() if r["endpoint"] == "send" and r["code"] == "OK")
    assert all(later - earlier >= 15 for earlier, later in itertools.pairwise(sent))


@pytest.mark.skipif(
    not HAS_ASYNC_NOTIFIER,
    reason="Airflow before 3.1 has no async notifiers (BaseNotifier.async_notify) and no deadline alerts",
)
def test_async_notify_for_the_triggerer(sandbox):
    notifier = KwtSMSNotifier(target="96550001234", message="deadline missed for {{ dag_run.run_id }}")
    notifier.context = {"dag_run": SimpleNamespace(run_id="scheduled__x", dag_id="billing")}

    async def fire() -> None:
        await notifier  # how the triggerer runs a deadline alert's notifier

    asyncio.run(fire())
    assert [m["message"] for m in sandbox.messages()] == ["deadline missed for scheduled__x"]


def test_a_failed_send_raises_with_the_reason(kwtsms_sandbox_factory, monkeypatch):
    sandbox = kwtsms_sandbox_factory(username="u", password=PASSWORD, balance=0)
    monkeypatch.setenv("AIRFLOW_CONN_KWTSMS_DEFAULT", kwtsms_conn_uri(sandbox.url, "u", PASSWORD))
    with pytest.raises(Exception, match="ERR010") as caught:
        KwtSMSNotifier(target="96550001234", message="x").notify(_context())
    assert PASSWORD not in str(caught.value)


def test_a_failed_alert_through_airflows_call_raises_or_is_logged(
    kwtsms_sandbox_factory, monkeypatch, caplog
):
    sandbox = kwtsms_sandbox_factory(username="u", password=PASSWORD, balance=0)
    monkeypatch.setenv("AIRFLOW_CONN_KWTSMS_DEFAULT", kwtsms_conn_uri(sandbox.url, "u", PASSWORD))
    notifier = KwtSMSNotifier(target="96550001234", message="x")
    if NOTIFIER_ERRORS_PROPAGATE:
        with pytest.raises(Exception, match="ERR010"):
            notifier(_context())
    else:  # Airflow 3.0's BaseNotifier.__call__ logs the error and returns
        notifier(_context())
        assert "Failed to send notification" in caplog.text and "ERR010" in caplog.text
    assert PASSWORD not in caplog.text


@pytest.mark.airflow
@pytest.mark.heavy  # 3.3 only: on every release, test_quickstart (success) and test_failure_alerts (failure)
def test_failure_and_success_callbacks_in_a_real_dag_run(airflow, sandbox):
    env = {"AIRFLOW_CONN_KWTSMS_DEFAULT": kwtsms_conn_uri(sandbox.url, "u", PASSWORD)}
    result = airflow.run("dags", "test", "kwtsms_test_alerts", env=env)
    states = airflow.task_states("kwtsms_test_alerts")
    assert states.get("load_orders", (None,))[0] == "failed", result.output[-4000:]
    assert states["report"][0] == "success"
    by_number = {m["mobile"][0]: m for m in sandbox.messages()}
    assert set(by_number) == {"96550001234", "96550001235"}, result.output[-4000:]

    alert = by_number["96550001234"]
    assert alert["message"].startswith("kwtsms_test_alerts.load_orders failed")
    assert re.search(r"\(try 1, run \d{4}-\d\d-\d\d \d\d:\d\d UTC\)$", alert["message"]), alert["message"]
    if AIRFLOW_V_3_3_PLUS:
        assert "ValueError: orders table is locked" in alert["message"]
        assert "... (try 1" in alert["message"]  # the long exception text was cut to fit
    else:  # `airflow dags test` before 3.3 gives callbacks no exception (apache/airflow#64568)
        assert "ValueError" not in alert["message"]
    assert alert["pages"] == 1 and alert["test"] is True  # cut to one page, test flag from data

    run_id = airflow.query("SELECT run_id FROM dag_run WHERE dag_id = 'kwtsms_test_alerts'")[-1][0]
    assert by_number["96550001235"]["message"] == f"ops: report finished in run {run_id}"
    assert PASSWORD not in result.output_to_check_for_secrets


def test_one_notifier_called_for_two_runs_renders_each_runs_templates(sandbox):
    """The DAG processor runs the DAG-level callbacks of many runs on one parsed DAG, so one notifier.

    Rendering in place made every later alert go to the first run's number with its text (found by
    tests/deploy scenario f: 200 runs, every alert "run 0" to run 0's number, 15 s apart by ERR028).
    """
    notifier = KwtSMSNotifier(target="{{ params.to }}", message="run {{ run_id }} done")
    for run_id, to in (("r1", "96550000001"), ("r2", "96550000002")):
        notifier({**_context(run_id=run_id), "run_id": run_id, "params": {"to": to}})
    sent = [(m["mobile"], m["message"]) for m in sandbox.messages()]
    assert sent == [(["96550000001"], "run r1 done"), (["96550000002"], "run r2 done")]
    assert notifier.target == "{{ params.to }}"  # the DAG's notifier keeps its templates


@pytest.mark.parametrize("test", ["maybe", "ture", 2])
def test_an_unknown_test_value_is_an_error_at_parse_time_never_a_live_send(test):
    with pytest.raises(ValueError, match=r"data\['test'\] is .*: write true or false"):
        KwtSMSNotifier(target="96550001234", data={"test": test})


def test_a_templated_test_value_is_read_once_rendered(sandbox):
    notifier = KwtSMSNotifier(target="96550001234", message="x", data={"test": "{{ params.t }}"})
    context = {**_context(), "params": {"t": "perhaps"}}
    if NOTIFIER_ERRORS_PROPAGATE:
        with pytest.raises(ValueError, match=r"data\['test'\] is 'perhaps'"):
            notifier(context)
    else:  # Airflow 3.0's BaseNotifier logs a failed notify instead of raising
        notifier(context)
    assert sandbox.messages() == []  # nothing sent on a value nobody meant


def test_default_country_takes_an_iso_code(sandbox):
    KwtSMSNotifier(target="98765432", message="x", data={"default_country": "KW"})(_context())
    assert sandbox.messages()[0]["mobile"] == ["96598765432"]


def test_alerts_ignore_send_windows_unless_asked(sandbox):
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC) + timedelta(hours=3)  # Kuwait's wall clock
    closed = f"{(now + timedelta(hours=2)):%H}:00-{(now + timedelta(hours=3)):%H}:00"
    KwtSMSNotifier(target="96550001234", message="always")(_context())
    KwtSMSNotifier(target="96550001235", message="windowed", data={"send_window": closed})(_context())
    assert [m["message"] for m in sandbox.messages()] == ["always"]


def test_a_bad_send_window_fails_at_parse_time():
    with pytest.raises(ValueError, match="send_window '9-5' is not a window"):
        KwtSMSNotifier(target="96550001234", data={"send_window": "9-5"})


def test_smart_encoding_applies_to_alerts_and_can_be_turned_off(sandbox):
    KwtSMSNotifier(target="96550001234", message="It’s down – check db1")(_context())
    KwtSMSNotifier(target="96550001235", message="It’s down", data={"smart_encoding": False})(_context())
    first, second = sandbox.messages()
    assert first["message"] == "It's down - check db1" and first["encoding"] == "GSM-7"
    assert second["message"] == "It’s down" and second["encoding"] == "UCS-2"


def test_a_dag_level_failure_alert_says_what_failed_in_words():
    context = _context(state="failed")
    context.pop("exception")
    context["reason"] = "task_failure"  # what the DAG processor passes instead of an exception
    text = default_alert(context)
    assert text.startswith("billing.charge failed: a task failed (its exception is in the task log")
    assert "task_failure" not in text and "task log" in text


def test_a_task_alert_is_kept_in_its_xcom_and_a_dag_level_one_never_pushes(sandbox):
    """The kwtSMS page reads a task's alerts from its XCom. A DAG-level callback runs in the DAG
    processor, whose supervisor serves no XCom push: a push there hung the callback until the
    processor was killed (and the file's DAGs were deactivated), so it must not be tried."""
    pushed: list[tuple[str, dict]] = []
    task_level = _context(xcom_push=lambda key, value: pushed.append((key, value)))
    KwtSMSNotifier(target="96550001234", message="disk full", data={"quiet_period": 0})(task_level)
    assert [key for key, _ in pushed] == ["kwtsms_alert"] and pushed[0][1]["targets"] == ["96550001234"]

    tried: list[str] = []
    dag_level = _context(xcom_push=lambda key, value: tried.append(key))
    dag_level["reason"] = "task_failure"
    KwtSMSNotifier(target="96550001235", message="run failed", data={"quiet_period": 0})(dag_level)
    assert tried == []  # not even tried
    assert len(sandbox.messages()) == 2  # both alerts went out


# -- the storm guard (issue 23) ---------------------------------------------------------------------
@pytest.fixture
def quick_sandbox(kwtsms_sandbox_factory, monkeypatch):
    """The sandbox without its 15 s rule per number (ERR028): a digest right after its alert
    arrives at once, where the real gateway's wait would cost these tests 15 s each."""
    sandbox = kwtsms_sandbox_factory(username="u", password=PASSWORD, duplicate_window=0)
    monkeypatch.setenv("AIRFLOW_CONN_KWTSMS_DEFAULT", kwtsms_conn_uri(sandbox.url, "u", PASSWORD))
    return sandbox


def test_a_storm_through_the_notifier_is_one_alert_then_one_digest(quick_sandbox, couriers):
    """Twelve runs of one DAG fail at once: the first alert goes out, eleven are counted, one courier
    is started (recorded here) and, run on a fake clock past the quiet period, sends the digest over
    HTTP to the sandbox. Another target and another DAG each get their own first alert."""
    from airflow_provider_kwtsms.alerts.courier import run as run_courier

    for i in range(12):
        task = "send_batch" if i % 2 else "load_rows"
        KwtSMSNotifier(target="96550001234")(_context(RuntimeError("down"), task_id=task, dag_id="campaign"))
    KwtSMSNotifier(target="96550001235")(_context(RuntimeError("down"), dag_id="campaign"))
    KwtSMSNotifier(target="96550001234")(_context(RuntimeError("down"), dag_id="billing"))
    sent = [(m["mobile"][0], m["message"].split(":")[0]) for m in quick_sandbox.messages()]
    assert sent == [
        ("96550001234", "campaign.load_rows failed"),
        ("96550001235", "campaign.charge failed"),
        ("96550001234", "billing.charge failed"),
    ]
    [spec] = couriers  # one courier for the eleven counted, started by the first counted
    assert spec["targets"] == {"96550001234": pytest.approx(spec["targets"]["96550001234"])}
    wake = spec["targets"]["96550001234"]
    now = [wake - 599.0]
    run_courier(spec, sleep=lambda s: now.__setitem__(0, now[0] + s), clock=lambda: now[0])
    digest = quick_sandbox.messages()[-1]
    assert digest["mobile"] == ["96550001234"]
    assert re.fullmatch(
        r"campaign: 11 more failures since \d\d:\d\d \(send_batch x6, load_rows x5\)", digest["message"]
    )
    assert len(quick_sandbox.messages()) == 4  # nothing else


def test_a_storm_over_smtp_starts_no_courier_and_the_next_alert_carries_the_digest(
    kwtsms_sandbox_factory, monkeypatch, couriers
):
    """docs/notifier.md: connections with transport="smtp" start no courier; their digest goes with
    the next alert after the quiet period (5 s here, waited out on the real clock as the guard
    does: the period begins when the first alert is admitted, before its send returns)."""
    quiet = 5.0
    sandbox = kwtsms_sandbox_factory(smtp_port=0, username="u", password=PASSWORD, duplicate_window=0)
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_RELAY", smtp_relay_conn_json(sandbox.smtp_port))
    monkeypatch.setenv(
        "AIRFLOW_CONN_KWTSMS_DEFAULT",
        kwtsms_conn_json(sandbox.url, "u", PASSWORD, transport="smtp", smtp_conn_id="smtp_relay"),
    )

    def alert(task: str) -> None:  # one notifier per callback, as in Airflow (each its own process)
        KwtSMSNotifier(target="96550001234", data={"quiet_period": quiet})(
            _context(RuntimeError("down"), task_id=task, dag_id="campaign")
        )

    def arrived(count: int) -> list[dict]:  # the relay hands an e-mail on after its session ends
        for _ in range(200):
            if len(sandbox.messages()) >= count:
                break
            time.sleep(0.05)
        return sandbox.messages()

    alert("load")
    first_returned = time.monotonic()  # the period began before this
    for task in ("load", "send", "send"):
        alert(task)
    assert [m["message"].split(":")[0] for m in arrived(1)] == ["campaign.load failed"]
    assert couriers == []  # the three counted start no courier over SMTP
    time.sleep(max(0.0, first_returned + quiet + 0.5 - time.monotonic()))  # the period is over
    alert("send")
    messages = arrived(2)
    texts = [m["message"] for m in messages]
    assert len(texts) == 2 and all(m["api"] == "smtp" for m in messages), texts
    assert re.fullmatch(r"campaign: 4 more failures since \d\d:\d\d \(send x3, load x1\)", texts[1]), texts
    assert couriers == []


def test_final_try_only_is_silent_while_a_retry_is_left(quick_sandbox):
    """A failure callback on a try that still has retries (how apache/airflow#56942's false alerts
    look) sends nothing; the final try's does; the same option on a retry callback changes nothing."""
    notifier = KwtSMSNotifier(target="96550001234", data={"final_try_only": True, "quiet_period": 0})
    task = SimpleNamespace(on_failure_callback=[notifier], on_retry_callback=[])
    notifier({**_context(RuntimeError("x"), try_number=1, max_tries=2, state="failed"), "task": task})
    assert quick_sandbox.messages() == []
    notifier({**_context(RuntimeError("x"), try_number=3, max_tries=2, state="failed"), "task": task})
    assert len(quick_sandbox.messages()) == 1
    retry = KwtSMSNotifier(target="96550001235", data={"final_try_only": True, "quiet_period": 0})
    on_retry = SimpleNamespace(on_failure_callback=[], on_retry_callback=[retry])
    retry({**_context(RuntimeError("x"), try_number=1, max_tries=2, state="up_for_retry"), "task": on_retry})
    assert [m["mobile"] for m in quick_sandbox.messages()][-1] == ["96550001235"]


def test_recovery_is_one_sms_naming_the_failures_and_other_successes_are_silent(quick_sandbox):
    notifier = KwtSMSNotifier(target="96550001234", data={"recovery": True})
    success = _context(state="success")
    notifier(success)
    assert quick_sandbox.messages() == []  # nothing failed: nothing to recover from
    for _ in range(3):
        notifier(_context(RuntimeError("down"), state="failed"))
    notifier(success)
    texts = [m["message"] for m in quick_sandbox.messages()]
    assert len(texts) == 2 and texts[0].startswith("billing.charge failed")
    assert re.fullmatch(r"billing recovered at \d\d:\d\d after 3 failures since \d\d:\d\d", texts[1])
    notifier(success)
    assert len(quick_sandbox.messages()) == 2  # once


def test_the_daily_cap_holds_alerts_back_logged_not_sent(quick_sandbox, caplog):
    for dag_id in ("a", "b", "c"):
        KwtSMSNotifier(target="96550001234", data={"daily_cap": 2})(
            _context(RuntimeError("x"), dag_id=dag_id)
        )
    assert len(quick_sandbox.messages()) == 2
    assert "held back: the daily cap of 2 credits" in caplog.text


def test_a_broken_store_never_loses_an_alert(quick_sandbox, monkeypatch, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("KWTSMS_ALERT_DIR", str(blocker))  # no folder can be made there
    for _ in range(2):
        KwtSMSNotifier(target="96550001234")(_context(RuntimeError("x")))
    assert len(quick_sandbox.messages()) == 2  # fail-open: sent unguarded
    assert "storm guard unavailable" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"quiet_period": -1}, r"data\['quiet_period'\] \(seconds; 0 turns the guard off\) is -1"),
        ({"daily_cap": 0}, r"data\['daily_cap'\] \(credits a day\) is 0"),
        ({"final_try_only": "maybe"}, r"data\['final_try_only'\] is 'maybe'"),
        ({"timezone": "Mars/Base"}, "Mars/Base"),
    ],
)
def test_bad_guard_options_fail_at_parse_time(data, error):
    with pytest.raises(ValueError, match=error):
        KwtSMSNotifier(target="96550001234", data=data)


def test_a_timed_out_run_alert_says_so_whatever_its_last_task_was():
    context = _context(state="scheduled")  # the task that never ran when dagrun_timeout fired
    context.pop("exception")
    context["reason"] = "timed_out"
    assert default_alert(context).startswith("billing.charge failed: the run timed out (dagrun_timeout)")
