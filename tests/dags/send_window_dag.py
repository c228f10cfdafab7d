"""A send that must wait for its window: the window (env KWTSMS_WINDOW) opens a minute or so after
the run starts, so the task defers, the trigger waits, and the send goes when the window opens."""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_kwtsms.operators.sms import SendSMSOperator

with DAG(dag_id="kwtsms_send_window", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    SendSMSOperator(
        task_id="reminder",
        mobile="96598765432,96550123456",
        message="Your appointment is tomorrow at 10:00.",
        send_window=os.environ.get("KWTSMS_WINDOW", "09:00-21:00"),
        timezone="Asia/Kuwait",
    )
