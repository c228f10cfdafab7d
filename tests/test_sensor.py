"""BalanceSensor and BalanceTrigger: unit checks, the trigger against the sandbox, and a real DAG run."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from airflow_support import kwtsms_conn_json, kwtsms_conn_uri

from airflow_provider_kwtsms.sensors.balance import parse_min_balance
from airflow_provider_kwtsms.triggers.balance import BalanceTrigger
from airflow_provider_kwtsms.version_compat import AIRFLOW_V_3_1_PLUS, AirflowFailException

pytestmark = pytest.mark.compat

PASSWORD = "Sens0r-secret/pw"
# apache/airflow#58777: under `airflow dags test`, a reschedule-mode sensor's second try reads its
# first reschedule date as a string and fails in BaseSensorOperator itself (a worker is not affected).
DAGS_TEST_RESCHEDULE_BUG = "unsupported operand type(s) for -: 'datetime.datetime' and 'str'"
DAGS_TEST_RESCHEDULE_BROKEN = not AIRFLOW_V_3_1_PLUS


@pytest.mark.parametrize(("value", "expected"), [("40", 40.0), (" 12.5 ", 12.5), (7, 7.0), (0, 0.0)])
def test_min_balance_accepts_numbers_and_rendered_strings(value, expected):
    assert parse_min_balance(value) == expected


@pytest.mark.parametrize("value", ["forty", "", None, -1, True, "nan"])
def test_bad_min_balance_fails_naming_it(value):
    with pytest.raises(AirflowFailException, match=r"min_balance is .*: give a number of credits"):
        parse_min_balance(value)


def test_trigger_serializes_the_connection_id_not_the_credentials():
    trigger = BalanceTrigger(kwtsms_conn_id="kwtsms_x", min_balance="40", poke_interval=5)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_kwtsms.triggers.balance.BalanceTrigger"
    assert kwargs == {"kwtsms_conn_id": "kwtsms_x", "min_balance": 40.0, "poke_interval": 5.0}
    assert BalanceTrigger(**kwargs).serialize() == (classpath, kwargs)


async def _first_event(trigger: BalanceTrigger):
    async for event in trigger.run():
        return event.payload
    return None


def test_trigger_waits_for_the_top_up(kwtsms_sandbox_factory, monkeypatch):
    sandbox = kwtsms_sandbox_factory(username="u", password=PASSWORD, balance=10, purchased=100)
    monkeypatch.setenv("AIRFLOW_CONN_KWTSMS_DEFAULT", kwtsms_conn_uri(sandbox.url, "u", PASSWORD))
    topper = _top_up_after_checks(sandbox, "u", checks=2, to=300)
    payload = asyncio.run(
        asyncio.wait_for(
            _first_event(BalanceTrigger(kwtsms_conn_id="kwtsms_default", min_balance=250, poke_interval=0.2)),
            30,
        )
    )
    topper.join()
    assert payload == {"status": "ok", "available": 300, "purchased": 100, "min_balance": 250.0}
    assert _balance_checks(sandbox, "u") >= 3  # two low answers, then the topped-up one


def test_trigger_stops_on_a_permanent_error(kwtsms_sandbox_factory, monkeypatch):
    sandbox = kwtsms_sandbox_factory(username="u", password=PASSWORD)
    monkeypatch.setenv("AIRFLOW_CONN_KWTSMS_DEFAULT", kwtsms_conn_uri(sandbox.url, "u", "not-it"))
    payload = asyncio.run(
        asyncio.wait_for(
            _first_event(BalanceTrigger(kwtsms_conn_id="kwtsms_default", min_balance=1, poke_interval=0.2)),
            30,
        )
    )
    assert payload["status"] == "error" and payload["permanent"] is True
    assert payload["message"].startswith("ERR003: Authentication error")
    assert "not-it" not in payload["message"]


def _balance_checks(sandbox, username: str) -> int:
    return sum(1 for r in sandbox.requests() if r["endpoint"] == "balance" and r["username"] == username)


def _top_up_after_checks(
    sandbox, username: str, *, checks: int, to: int, within: float = 240
) -> threading.Thread:
    """Top the account up once the sensor has seen it low ``checks`` times (proof that it waited)."""

    def watch() -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if _balance_checks(sandbox, username) >= checks:
                sandbox.set_balance(to, username=username)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.airflow
def test_balance_gates_in_a_real_dag_run(airflow, kwtsms_sandbox_factory):
    sandbox = kwtsms_sandbox_factory(
        username="main",
        password=PASSWORD,
        balance=1000,
        purchased=1200,
        accounts=[
            {"username": "poke_user", "password": PASSWORD, "balance": 10},
            {"username": "resched_user", "password": PASSWORD, "balance": 15},
            {"username": "defer_user", "password": PASSWORD, "balance": 20},
        ],
    )
    toppers = [
        _top_up_after_checks(sandbox, "poke_user", checks=2, to=600),
        _top_up_after_checks(sandbox, "resched_user", checks=2, to=650),
        _top_up_after_checks(sandbox, "defer_user", checks=3, to=700),
    ]
    env = {
        "AIRFLOW_CONN_KWTSMS_DEFAULT": kwtsms_conn_uri(sandbox.url, "main", PASSWORD),
        "AIRFLOW_CONN_KWTSMS_POKE": kwtsms_conn_json(sandbox.url, "poke_user", PASSWORD),
        "AIRFLOW_CONN_KWTSMS_RESCHED": kwtsms_conn_json(sandbox.url, "resched_user", PASSWORD),
        "AIRFLOW_CONN_KWTSMS_DEFER": kwtsms_conn_json(sandbox.url, "defer_user", PASSWORD),
    }
    result = airflow.run("dags", "test", "kwtsms_test_balance", env=env)
    for thread in toppers:
        thread.join(timeout=1)
    states = airflow.task_states("kwtsms_test_balance")
    assert states.get("enough") == ("success", 1), result.output[-4000:]
    assert airflow.xcom("kwtsms_test_balance", "enough") == {
        "available": 1000,
        "purchased": 1200,
        "min_balance": 40.0,
        "connection": "kwtsms_default",
    }

    # Fail fast: one try although two retries were allowed, and the log says what to do.
    assert states["too_low"] == ("failed", 1)
    assert (
        "kwtSMS balance is 1000 credits, below the minimum of 1e+06 (connection 'kwtsms_default'). "
        "Top up the account at https://www.kwtsms.com"
    ) in result.flat_output

    assert states["wait_poke"] == ("success", 1)
    assert airflow.xcom("kwtsms_test_balance", "wait_poke") == {
        "available": 600,
        "purchased": 10,
        "min_balance": 500.0,
        "connection": "kwtsms_poke",
    }
    assert _balance_checks(sandbox, "poke_user") >= 3

    # Released its worker slot between checks (up_for_reschedule), same try throughout.
    rescheduled = airflow.query(
        "SELECT COUNT(*) FROM task_reschedule WHERE ti_id IN (SELECT id FROM task_instance "
        "WHERE dag_id = 'kwtsms_test_balance' AND task_id = 'wait_reschedule')"
    )
    assert rescheduled[0][0] >= 1
    if DAGS_TEST_RESCHEDULE_BROKEN:  # Airflow's own failure, on its second try, and only that
        assert states["wait_reschedule"] == ("failed", 1)
        assert DAGS_TEST_RESCHEDULE_BUG in result.output
    else:
        assert states["wait_reschedule"] == ("success", 1)
        assert airflow.xcom("kwtsms_test_balance", "wait_reschedule") == {
            "available": 650,
            "purchased": 15,
            "min_balance": 500.0,
            "connection": "kwtsms_resched",
        }
        assert _balance_checks(sandbox, "resched_user") >= 3

    assert states["wait_defer"] == ("success", 1)
    assert "[DAG TEST] running trigger in line" in result.output
    assert airflow.xcom("kwtsms_test_balance", "wait_defer") == {
        "available": 700,
        "purchased": 20,
        "min_balance": 500.0,
        "connection": "kwtsms_defer",
    }
    assert _balance_checks(sandbox, "defer_user") >= 4  # one in the task, then the trigger's checks


def _sensor_on_sandbox_time(sandbox, monkeypatch, **kwargs):
    """A BalanceSensor whose hook builds its client on the sandbox's clock, so the client's retry
    back-off between failed balance calls costs no real time."""
    from sandbox_helpers import linked

    from airflow_provider_kwtsms.gateway import client as client_module
    from airflow_provider_kwtsms.sensors.balance import BalanceSensor

    class OnSandboxTime(client_module.KwtSMSClient):
        def __init__(self, *args, **options) -> None:
            super().__init__(*args, **{**options, **linked(sandbox)})

    monkeypatch.setattr(client_module, "KwtSMSClient", OnSandboxTime)
    monkeypatch.setenv("AIRFLOW_CONN_KWTSMS_DEFAULT", kwtsms_conn_uri(sandbox.url, "u", PASSWORD))
    return BalanceSensor(task_id="enough_credits", min_balance=40, **kwargs)


def test_a_network_error_while_waiting_is_not_yet_and_the_next_check_proceeds(
    kwtsms_sandbox_factory, monkeypatch
):
    # docs/sensor.md: in the waiting modes, network errors (after the client's retries) "count as
    # 'not yet' and the next check proceeds".
    from sandbox_helpers import frozen_clock

    sandbox = kwtsms_sandbox_factory(username="u", password=PASSWORD, balance=100, clock=frozen_clock())
    sensor = _sensor_on_sandbox_time(sandbox, monkeypatch, wait_for_top_up=True)
    sandbox.inject_fault("http_503", endpoint="balance", times=4)  # the first try and its 3 retries
    assert sensor.poke({}).is_done is False
    done = sensor.poke({})
    assert done.is_done is True
    reading = {"available": 100, "purchased": 100, "min_balance": 40.0, "connection": "kwtsms_default"}
    assert done.xcom_value == reading


def test_a_network_error_in_fail_fast_mode_is_an_ordinary_error_airflow_retries(
    kwtsms_sandbox_factory, monkeypatch
):
    # docs/sensor.md: fail-fast mode raises "an ordinary exception so Airflow's retries apply";
    # a permanent error (wrong password) is AirflowFailException instead (test_config_errors.py).
    from sandbox_helpers import frozen_clock

    from airflow_provider_kwtsms.errors import KwtSMSNetworkError

    sandbox = kwtsms_sandbox_factory(username="u", password=PASSWORD, balance=100, clock=frozen_clock())
    sensor = _sensor_on_sandbox_time(sandbox, monkeypatch)
    sandbox.inject_fault("http_503", endpoint="balance", times=-1)
    with pytest.raises(KwtSMSNetworkError) as raised:
        sensor.execute({})
    assert not isinstance(raised.value, AirflowFailException)
    sandbox.clear_faults()
    assert sensor.execute({})["available"] == 100  # Airflow's retry: the next try passes
