"""A bulk send for the resume tests: N numbers, retries with no delay, options from the environment.

The fault-injection tests (tests/test_resume_airflow.py) run it under ``airflow dags test``
against a sandbox they control, and count what the sandbox delivered to each number.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_kwtsms.operators.sms import SendSMSOperator

N = int(os.environ.get("KWTSMS_RESUME_N", "1000"))

with DAG(
    dag_id="resume_send",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    default_args={
        "retries": int(os.environ.get("KWTSMS_RESUME_RETRIES", "3")),
        "retry_delay": timedelta(seconds=0),
    },
):
    SendSMSOperator(
        task_id="send",
        mobile=",".join(f"9656{i:07d}" for i in range(N)),
        message="Resume test for {{ ds }}",
        on_uncertain=os.environ.get("KWTSMS_RESUME_ON_UNCERTAIN", "fail"),
    )
