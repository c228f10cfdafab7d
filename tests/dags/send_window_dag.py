"""A send that must wait for its window, which opens at the first minute boundary at least
KWTSMS_WINDOW_LEAD seconds (default 15) after this file is parsed, in the process that runs the
task: so the task defers, the trigger waits (15 to 75 s), and the send goes when the window opens,
however long the run took to start. KWTSMS_WINDOW, when set, is the window itself."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_kwtsms.operators.sms import SendSMSOperator


def window_opening_soon(lead: float) -> str:
    kuwait = datetime.now(UTC) + timedelta(hours=3)  # Asia/Kuwait: UTC+3, no daylight saving
    opens = (kuwait + timedelta(seconds=lead + 59)).replace(second=0, microsecond=0)
    return f"{opens:%H:%M}-{opens + timedelta(hours=1):%H:%M}"


with DAG(dag_id="kwtsms_send_window", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    SendSMSOperator(
        task_id="reminder",
        mobile="96598765432,96550123456",
        message="Your appointment is tomorrow at 10:00.",
        send_window=os.environ.get("KWTSMS_WINDOW")
        or window_opening_soon(float(os.environ.get("KWTSMS_WINDOW_LEAD", "15"))),
        timezone="Asia/Kuwait",
    )
