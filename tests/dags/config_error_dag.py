"""A connection without a login, met by every task kind: tests/test_config_errors.py.

Each task may retry twice, at once: a configuration error must fail it on its first try, as a wrong
password does, and its log must name the connection and say what to set. The connection
``kwtsms_nologin`` comes from the test's environment.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from airflow_provider_kwtsms.operators.sms import SendSMSOperator
from airflow_provider_kwtsms.sensors.balance import BalanceSensor

with DAG(
    "kwtsms_test_config_error",
    start_date=pendulum.datetime(2024, 1, 1),
    schedule=None,
    catchup=False,
    default_args={"kwtsms_conn_id": "kwtsms_nologin", "retries": 2, "retry_delay": timedelta(seconds=0)},
):
    SendSMSOperator(task_id="send", mobile="96598765432", message="Your code is 1234")
    BalanceSensor(task_id="gate", min_balance=10)
    BalanceSensor(task_id="wait", min_balance=10, wait_for_top_up=True, poke_interval=1, timeout=60)
