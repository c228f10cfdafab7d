"""Alerts for tests/test_notifier.py: a failing task with the default alert, a succeeding one with a
templated message. The connection kwtsms_default comes from the test's environment."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_kwtsms.notifications.kwtsms import KwtSMSNotifier, send_kwtsms_notification

with DAG("kwtsms_test_alerts", start_date=pendulum.datetime(2024, 1, 1), schedule=None, catchup=False):

    @task(on_failure_callback=KwtSMSNotifier(target=["96550001234"], data={"test": True}))
    def load_orders() -> None:
        raise ValueError("orders table is locked by a long-running migration; " + "details " * 40)

    @task(
        on_success_callback=send_kwtsms_notification(
            target="+965 5000 1235", title="ops", message="{{ ti.task_id }} finished in run {{ run_id }}"
        )
    )
    def report() -> str:
        return "done"

    load_orders()
    report()
