"""Balance gates for tests/test_sensor.py: fail fast, then wait for a top-up poking, rescheduling
and deferred.

Connections come from the test's environment: kwtsms_default (plenty of credits),
kwtsms_poke, kwtsms_resched and kwtsms_defer (low until the test tops them up).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_kwtsms.sensors.balance import BalanceSensor

with DAG("kwtsms_test_balance", start_date=pendulum.datetime(2024, 1, 1), schedule=None, catchup=False):

    @task
    def plan() -> dict:
        return {"estimate": 40}

    # The minimum comes from an upstream dry run's estimate, rendered as a string.
    enough = BalanceSensor(task_id="enough", min_balance="{{ ti.xcom_pull(task_ids='plan')['estimate'] }}")
    plan() >> enough

    # Below the minimum: fails at once; the retries must not be spent.
    BalanceSensor(task_id="too_low", min_balance=10**6, retries=2, retry_delay=timedelta(seconds=1))

    BalanceSensor(
        task_id="wait_poke",
        kwtsms_conn_id="kwtsms_poke",
        min_balance=500,
        wait_for_top_up=True,
        poke_interval=1,
        timeout=120,
    )

    BalanceSensor(
        task_id="wait_reschedule",
        kwtsms_conn_id="kwtsms_resched",
        min_balance=500,
        wait_for_top_up=True,
        mode="reschedule",
        poke_interval=1,
        timeout=120,
    )

    BalanceSensor(
        task_id="wait_defer",
        kwtsms_conn_id="kwtsms_defer",
        min_balance=500,
        wait_for_top_up=True,
        deferrable=True,
        poke_interval=1,
        timeout=120,
    )
