"""(e) Every customer their own text, and a do-not-send list.

1. ``customers``: the rows of an upstream query (here a Python task; an SQL task's rows mapped
   to dicts do the same): one per customer, with the number and what the text needs.
2. ``opt_outs``: the numbers of customers who asked to receive nothing (the user's own table).
3. ``send``: one text per customer from ``message_template``, rendered per row in a sandboxed
   Jinja (not by Airflow at task start: the row's names are unknown then). Customers who share a
   text share requests; opted-out numbers are left out and counted as suppressed; a row the
   template cannot render (no name) is that row's invalid entry in the XCom summary, and the
   others are sent. Resumable across retries like any send.

Uses the ``kwtsms_default`` connection; point it at the sandbox to try it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from airflow_provider_kwtsms.operators.sms import SendSMSOperator

with DAG(
    dag_id="kwtsms_personal_rows",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=5)},
    tags=["kwtsms", "example"],
):

    @task
    def customers() -> list[dict]:
        return [
            {"mobile": "96598765432", "name": "Fatima", "order": 1042},
            {"mobile": "+965 5012 3456", "name": "Ahmad", "order": 1043},
            {"mobile": "0096560001234", "name": "Noura", "order": 1044},
            {"mobile": "96550001111", "order": 1045},  # no name: reported, not sent
        ]

    @task
    def opt_outs() -> list[str]:
        return ["٩٦٥٦٠٠٠١٢٣٤"]  # Noura, written in Arabic digits: still matched

    SendSMSOperator(
        task_id="send",
        recipients=customers(),
        message_template="Dear {{ name }}, order {{ order }} ships today.",
        do_not_send=opt_outs(),
    )
