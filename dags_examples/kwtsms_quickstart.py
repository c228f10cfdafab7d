"""Quickstart: the README's DAG. A balance gate, a send, and SMS alerts on failure and success.

Uses the ``kwtsms_default`` connection (point it at the sandbox for a first try). Run it once:
``airflow dags test kwtsms_quickstart``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_kwtsms.notifications.kwtsms import KwtSMSNotifier
from airflow_provider_kwtsms.operators.sms import SendSMSOperator
from airflow_provider_kwtsms.sensors.balance import BalanceSensor

CUSTOMERS = ["96598765432", "+965 5012 3456", "0096560001234"]  # any format; the country code is needed
ON_CALL = "96599990000"

with DAG(
    dag_id="kwtsms_quickstart",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    default_args={
        "kwtsms_conn_id": "kwtsms_default",  # the default; named here to show where it goes
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        # A task that fails texts the on-call number: DAG, task, try, run and error, in one page.
        "on_failure_callback": KwtSMSNotifier(target=ON_CALL),
    },
    on_success_callback=KwtSMSNotifier(target=ON_CALL, message="{{ dag.dag_id }}: welcome texts sent."),
    tags=["kwtsms", "example"],
):
    # Fails at once (no retry wasted) with what to do when the account holds fewer than 10 credits.
    enough_credits = BalanceSensor(task_id="enough_credits", min_balance=10)

    send = SendSMSOperator(
        task_id="send_welcome",
        mobile=CUSTOMERS,
        message="Welcome to our shop! Your account is ready.",
        max_credits=50,  # refuse before sending if numbers x pages would cost more
    )

    enough_credits >> send
