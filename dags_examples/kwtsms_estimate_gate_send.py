"""(a) Estimate, gate on the balance, send: the safe shape for any paid bulk send.

1. ``estimate``: a dry run of the same send (no request, no credits) pushes its estimate.
2. ``balance_gate``: BalanceSensor fails the run at once if the account holds less than the
   estimate (``min_balance`` is templated from the dry run's XCom).
3. ``send``: the real send, resumable across retries, capped by ``max_credits``.

A KwtSMSNotifier texts the on-call number if any task fails. Uses the ``kwtsms_default``
connection; point it at the sandbox to try it (``make demo`` does exactly that).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_kwtsms.notifications.kwtsms import KwtSMSNotifier
from airflow_provider_kwtsms.operators.sms import SendSMSOperator
from airflow_provider_kwtsms.sensors.balance import BalanceSensor

CUSTOMERS = "96598765432, +965 5012 3456, 0096560001234, 96598765432, 12345"  # a duplicate and a bad one
# A run triggered through the REST API or the UI may have no logical date, and then no {{ ds }}:
# fall back to the day the run was made for (run_after), so such a run does not fail rendering.
ORDER_DAY = "{{ ds if ds is defined else dag_run.run_after | ds }}"
MESSAGE = f"Your order for {ORDER_DAY} is ready for pick-up. Thank you for shopping with us."
ON_CALL = "96599990000"

with DAG(
    dag_id="kwtsms_estimate_gate_send",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    default_args={
        "retries": 2,
        "retry_delay": timedelta(seconds=5),
        "on_failure_callback": KwtSMSNotifier(target=ON_CALL),
    },
    tags=["kwtsms", "example"],
):
    estimate = SendSMSOperator(task_id="estimate", mobile=CUSTOMERS, message=MESSAGE, dry_run=True)
    balance_gate = BalanceSensor(
        task_id="balance_gate",
        min_balance="{{ ti.xcom_pull(task_ids='estimate')['estimate'] }}",
    )
    send = SendSMSOperator(task_id="send", mobile=CUSTOMERS, message=MESSAGE, max_credits=100)
    estimate >> balance_gate >> send
