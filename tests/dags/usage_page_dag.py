"""Two DAGs for the usage page's browser test (tests/test_browser_usage.py): their sends, the
sensor's reading and a failure alert are what the page must show, to the credit."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_kwtsms.notifications.kwtsms import KwtSMSNotifier
from airflow_provider_kwtsms.operators.sms import SendSMSOperator
from airflow_provider_kwtsms.sensors.balance import BalanceSensor

START = datetime(2026, 1, 1)

with DAG("usage_billing", schedule=None, start_date=START, catchup=False):
    BalanceSensor(task_id="balance", min_balance=1) >> SendSMSOperator(
        task_id="invoices",
        mobile=["96598765432", "96550001111", "96566002222"],
        message="Your invoice for this month is ready.",
    )


def _broken() -> None:
    raise RuntimeError("the report could not be built")


with DAG("usage_alerts", schedule=None, start_date=START, catchup=False):
    from airflow.providers.standard.operators.python import PythonOperator

    SendSMSOperator(
        task_id="digest",
        mobile=["96551112222", "96552223333"],
        message="Daily digest: " + "all systems normal; " * 10,  # two pages
    ) >> PythonOperator(
        task_id="report",
        python_callable=_broken,
        on_failure_callback=KwtSMSNotifier(target="96553334444", message="The report failed"),
    )
