"""Fault-injection scenarios for the resume tests, all in one DAG so one ``airflow dags test`` runs them.

Each scenario is an ``inject`` task (it posts the faults to the sandbox's control endpoint, just
before its send) followed by a SendSMSOperator with retries and its own range of numbers, so the
test can count, per scenario, what the sandbox delivered to each number. Scenarios run one after
another (each waits for the previous one, whatever its outcome).
"""

from __future__ import annotations

import json
import os
import urllib.request
from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from airflow_provider_kwtsms.operators.sms import SendSMSOperator

N = int(os.environ.get("KWTSMS_RESUME_N", "1000"))
SANDBOX = os.environ.get("KWTSMS_SANDBOX_URL", "http://127.0.0.1:8765")
QUEUE_SANDBOX = os.environ.get("KWTSMS_QUEUE_SANDBOX_URL", SANDBOX)

# name -> (connection, faults as (kind, endpoint, times)). The client retries a request that
# certainly did not reach kwtSMS 3 times, so 5 faults make the first Airflow try fail.
SCENARIOS: dict[str, tuple[str, list[tuple[str, str, int]]]] = {
    "none": ("kwtsms_default", []),
    "drop_before": ("kwtsms_default", [("drop_before", "send", 5)]),
    "drop_after_accept": ("kwtsms_default", [("drop_after_accept", "send", 1)]),
    "drop_after_accept_x3": ("kwtsms_default", [("drop_after_accept", "send", 3)]),
    "http_500": ("kwtsms_default", [("http_500", "send", 5)]),
    "http_502": ("kwtsms_default", [("http_502", "send", 5)]),
    "http_503": ("kwtsms_default", [("http_503", "send", 5)]),
    "err013_storm": ("kwtsms_queue", []),  # that sandbox's queue holds 2 messages, drains 1 per second
}


def numbers_for(index: int) -> list[str]:
    return [f"9656{index:02d}{i:05d}" for i in range(N)]


with DAG(
    dag_id="resume_faults",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    default_args={"retries": 3, "retry_delay": timedelta(seconds=0)},
):
    previous = None
    for index, (name, (conn_id, faults)) in enumerate(SCENARIOS.items()):

        @task(task_id=f"inject_{name}", trigger_rule="all_done")
        def inject(faults=faults, conn_id=conn_id):
            url = QUEUE_SANDBOX if conn_id == "kwtsms_queue" else SANDBOX
            for kind, endpoint, times in faults:
                body = json.dumps({"kind": kind, "endpoint": endpoint, "times": times}).encode()
                request = urllib.request.Request(
                    f"{url}/sandbox/faults",
                    data=body,
                    method="POST",
                    headers={"Content-Type": "application/json"},
                )
                with urllib.request.urlopen(request, timeout=10) as answer:
                    answer.read()

        send = SendSMSOperator(
            task_id=f"send_{name}",
            kwtsms_conn_id=conn_id,
            mobile=numbers_for(index),
            message=f"Scenario {name} on {{{{ ds }}}}",
        )
        injected = inject()
        if previous is not None:
            previous >> injected
        injected >> send
        previous = send
