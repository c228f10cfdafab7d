"""A send that must wait for its window, which opens at the first minute boundary at least
KWTSMS_WINDOW_LEAD seconds (default 15) after the task starts: so the task defers, the trigger
waits (15 to 75 s), and the send goes when the window opens, however long the run took to start
(a parse-time window could already be open on a loaded machine). KWTSMS_WINDOW, when set, is the
window itself."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import DAG

from airflow_provider_kwtsms.operators.sms import SendSMSOperator


def window_opening_soon(lead: float) -> str:
    kuwait = datetime.now(UTC) + timedelta(hours=3)  # Asia/Kuwait: UTC+3, no daylight saving
    opens = (kuwait + timedelta(seconds=lead + 59)).replace(second=0, microsecond=0)
    return f"{opens:%H:%M}-{opens + timedelta(hours=1):%H:%M}"


class SendSoon(SendSMSOperator):
    """The operator, its window set when the task starts. Resumed by the trigger at the opening, it
    sends in an all-day window (the one it waited for is open then; this instance is a new one)."""

    resumed = False

    def execute(self, context: Any) -> Any:
        if not self.resumed:
            lead = float(os.environ.get("KWTSMS_WINDOW_LEAD", "15"))
            self.send_window = os.environ.get("KWTSMS_WINDOW") or window_opening_soon(lead)
        return super().execute(context)

    def execute_in_window(self, context: Any, event: Any = None) -> Any:
        self.resumed, self.send_window = True, "00:00-24:00"
        return super().execute_in_window(context, event)


with DAG(dag_id="kwtsms_send_window", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    SendSoon(
        task_id="reminder",
        mobile="96598765432,96550123456",
        message="Your appointment is tomorrow at 10:00.",
        send_window="09:00-21:00",  # replaced at the task's start
        timezone="Asia/Kuwait",
    )
