"""Every Airflow process's requests go through the machine-wide pacer: the notifier (task and DAG
callbacks: the DAG processor's alerts), the sensor and its trigger (the triggerer's polls), and the
hook's test_connection (the API server's Test button).

Each path runs against the sandbox with a connection that has no ``rate_store``; afterwards the
machine's pace file for that gateway holds a TAT written by the path's request (the file is made
when a client is built, but only a request writes a TAT).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest
from airflow.sdk import DAG
from airflow_support import kwtsms_conn_json

from airflow_provider_kwtsms.rate.machine import file_name, gateway_target, parse_record

pytestmark = pytest.mark.compat


@pytest.fixture
def pace_file(kwtsms_sandbox_factory, monkeypatch, tmp_path):
    sb = kwtsms_sandbox_factory(rate=None, balance=500)
    monkeypatch.setenv("KWTSMS_RATE_DIR", str(tmp_path))
    conn = kwtsms_conn_json(sb.url, "sandbox_user", "sandbox_pass")
    monkeypatch.setenv("AIRFLOW_CONN_KWTSMS_DEFAULT", conn)
    path = tmp_path / file_name(gateway_target(sb.url))
    assert not path.exists()
    return path


def tat(path: Path) -> float | None:
    return parse_record(path.read_bytes()) if path.exists() else None


def test_the_notifier_paces_through_the_machine(pace_file):
    from airflow_provider_kwtsms.notifications.kwtsms import KwtSMSNotifier

    context = {
        "dag": DAG(dag_id="billing", schedule=None),
        "ti": SimpleNamespace(dag_id="billing", task_id="charge", run_id="r1", try_number=1, max_tries=1),
    }
    KwtSMSNotifier(target="96550001234", message="disk full")(context)
    assert tat(pace_file) is not None


def test_the_sensor_paces_through_the_machine(pace_file):
    from airflow_provider_kwtsms.sensors.balance import BalanceSensor

    sensor = BalanceSensor(task_id="enough_credit", min_balance=1)
    assert sensor.poke({}).is_done
    assert tat(pace_file) is not None


def test_the_triggerers_polls_pace_through_the_machine(pace_file):
    from airflow_provider_kwtsms.triggers.balance import BalanceTrigger

    async def first_event():
        async for event in BalanceTrigger(kwtsms_conn_id="kwtsms_default", min_balance=1).run():
            return event.payload
        return None

    assert asyncio.run(first_event())["status"] == "ok"
    assert tat(pace_file) is not None


def test_the_connection_test_button_paces_through_the_machine(pace_file):
    from airflow_provider_kwtsms.hooks.kwtsms import KwtSMSHook

    ok, _ = KwtSMSHook().test_connection()
    assert ok and tat(pace_file) is not None
