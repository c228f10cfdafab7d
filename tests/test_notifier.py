"""KwtSMSNotifier: composing alerts, sending them to the sandbox, ERR028, async, and a real DAG run."""

from __future__ import annotations

import asyncio
import itertools
from types import SimpleNamespace

import pytest
from airflow.sdk import DAG
from airflow_support import kwtsms_conn_uri

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


@pytest.fixture
def sandbox(kwtsms_sandbox_factory, monkeypatch):
    sandbox = kwtsms_sandbox_factory(username="u", password=PASSWORD)
    monkeypatch.setenv("AIRFLOW_CONN_KWTSMS_DEFAULT", kwtsms_conn_uri(sandbox.url, "u", PASSWORD))
    return sandbox


def test_default_alert_names_dag_task_try_run_and_exception():
    text = default_alert(_context(RuntimeError("card processor down")))
    assert text == (
        "Airflow billing.charge failed (try 2/4, run manual__2026-01-01): RuntimeError: card processor down"
    )


def test_default_alert_without_an_exception_uses_the_state():
    assert default_alert(_context(state="success", try_number=1, max_tries=0)) == (
        "Airflow billing.charge success (try 1, run manual__2026-01-01)"
    )


def test_long_alerts_are_cut_to_one_page_by_default():
    notifier = KwtSMSNotifier(target="96550001234")
    text = notifier.compose(_context(ValueError("x " * 400)))
    assert measure_message(text).pages == 1
    assert text.startswith("Airflow billing.charge failed (try 2/4, run manual__2026-01-01): ValueError")
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
            KwtSMSNotifier(target="96550001234", message=f"run {run} failed").notify(_context())
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
def test_failure_and_success_callbacks_in_a_real_dag_run(airflow, sandbox):
    env = {"AIRFLOW_CONN_KWTSMS_DEFAULT": kwtsms_conn_uri(sandbox.url, "u", PASSWORD)}
    result = airflow.run("dags", "test", "kwtsms_test_alerts", env=env)
    states = airflow.task_states("kwtsms_test_alerts")
    assert states.get("load_orders", (None,))[0] == "failed", result.output[-4000:]
    assert states["report"][0] == "success"
    by_number = {m["mobile"][0]: m for m in sandbox.messages()}
    assert set(by_number) == {"96550001234", "96550001235"}, result.output[-4000:]

    alert = by_number["96550001234"]
    assert alert["message"].startswith("Airflow kwtsms_test_alerts.load_orders failed (try 1, run manual__")
    if AIRFLOW_V_3_3_PLUS:
        assert "ValueError: orders table is locked" in alert["message"]
        assert alert["message"].endswith("...")  # the long exception text was cut to fit
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
    assert text.startswith("Airflow billing.charge failed (try 2/4, run manual__2026-01-01): a task failed")
    assert "task_failure" not in text and "task log" in text
