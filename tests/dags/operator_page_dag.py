"""What docs/operator.md shows, in one real run (tests/test_config_errors.py).

``campaign``: the task log of a send (1,000 inputs, one invalid, one duplicate) and of its retry,
which sends nothing again. Its first try fails after the send, in ``post_execute`` (a later step
of the task), so the retry meets a ledger whose batches are all done.

``*_nologin``: a connection without a login, met by the operator and the sensor, poking and not.
Each may retry twice, at once: a configuration error must fail it on its first try, as a wrong
password does, and its log must name the connection and say what to set.

The connections ``kwtsms_default`` (a sandbox) and ``kwtsms_nologin`` come from the test's environment.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from airflow_provider_kwtsms.operators.sms import SendSMSOperator
from airflow_provider_kwtsms.sensors.balance import BalanceSensor

CUSTOMERS = [f"9656{i:07d}" for i in range(998)] + ["12345", "+965 6000 0000"]  # invalid; duplicate


def _a_later_step_fails_on_the_first_try(context, result):
    if context["ti"].try_number == 1:
        raise RuntimeError("the CRM update after the send failed")


with DAG(
    "kwtsms_test_operator_page",
    start_date=pendulum.datetime(2024, 1, 1),
    schedule=None,
    catchup=False,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=0)},
):
    SendSMSOperator(
        task_id="campaign",
        mobile=CUSTOMERS,
        message="Your order is ready for pick-up.",
        post_execute=_a_later_step_fails_on_the_first_try,
    )
    SendSMSOperator(
        task_id="send_nologin",
        kwtsms_conn_id="kwtsms_nologin",
        mobile="96598765432",
        message="Your code is 1234",
    )
    BalanceSensor(task_id="gate_nologin", kwtsms_conn_id="kwtsms_nologin", min_balance=10)
    BalanceSensor(
        task_id="wait_nologin",
        kwtsms_conn_id="kwtsms_nologin",
        min_balance=10,
        wait_for_top_up=True,
        poke_interval=1,
        timeout=60,
    )
