"""(c) Failure alerts by SMS: KwtSMSNotifier on a task and on the whole DAG.

``nightly_load`` fails on purpose (it stands for any task that breaks at night). The task's
``on_failure_callback`` texts the on-call engineer a short default alert (what failed and why,
then the try and the run's date, trimmed to one page); the DAG's callback sends one more line
when the run fails. The storm guard (on by default) would count that line into a digest, as the
second alert of this DAG to this number within 10 minutes: ``quiet_period`` 0 lets it through.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, task

from airflow_provider_kwtsms.notifications.kwtsms import KwtSMSNotifier

ON_CALL = "96599990000"

with DAG(
    dag_id="kwtsms_failure_alerts",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    on_failure_callback=KwtSMSNotifier(
        target=ON_CALL,
        message="DAG {{ dag.dag_id }} run {{ run_id }} failed. Check Airflow.",
        data={"quiet_period": 0},
    ),
    tags=["kwtsms", "example"],
):

    @task(retries=0, on_failure_callback=KwtSMSNotifier(target=ON_CALL))
    def nightly_load() -> None:
        raise RuntimeError("warehouse connection refused")

    nightly_load()
