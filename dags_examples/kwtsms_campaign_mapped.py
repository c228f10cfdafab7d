"""(b) A large campaign: recipients split into chunks, one mapped send per chunk, through a pool.

``chunks`` returns lists of numbers (here generated; in real life a query). Each chunk becomes
one mapped SendSMSOperator task instance with its own send ledger (the task state store is
scoped by map index), so a retry of chunk 7 resumes chunk 7 only. The pool ``kwtsms`` (create
it with one slot: ``airflow pools set kwtsms 1 "kwtSMS account"``) keeps the chunks from
running at once: the account's request rate is shared, and one sender at a time keeps the
balance a sound witness when an answer is lost (see docs/operator.md, "Retries and resume").
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from airflow_provider_kwtsms.operators.sms import SendSMSOperator

CAMPAIGN_SIZE = 1000
CHUNK = 400  # two batches of 200 per mapped task, plus the remainder

with DAG(
    dag_id="kwtsms_campaign_mapped",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    default_args={"retries": 3, "retry_delay": timedelta(seconds=10)},
    tags=["kwtsms", "example"],
):

    @task
    def chunks() -> list[list[str]]:
        numbers = [f"9655{i:07d}" for i in range(CAMPAIGN_SIZE)]
        return [numbers[i : i + CHUNK] for i in range(0, len(numbers), CHUNK)]

    SendSMSOperator.partial(
        task_id="send_chunk",
        message="Ramadan Kareem! 20% off everything this week. Reply STOP to opt out.",
        pool="kwtsms",
        max_credits=CHUNK,
    ).expand(mobile=chunks())
