"""A real Airflow run of a send outside its window: the task defers and sends when the window opens."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from airflow_support import TEST_DAGS, kwtsms_conn_json

PASSWORD = "W1ndow-secret"
# The operator's line when it defers: "... closed (HH:MM-HH:MM): deferred until ..."
DEFERRED = re.compile(r"the send window is closed \((\d\d):(\d\d)-\d\d:\d\d\): deferred until")


@pytest.mark.airflow
def test_a_send_outside_its_window_defers_and_goes_when_it_opens(airflow, kwtsms_sandbox_factory):
    sandbox = kwtsms_sandbox_factory(password=PASSWORD)
    started = datetime.now(UTC)
    # The DAG file opens its window at the first minute boundary 15 s or more after it is parsed
    # in the process that runs the task, so a slow start never finds it open already.
    result = airflow.run(
        "dags",
        "test",
        "kwtsms_send_window",
        env={
            "AIRFLOW_CONN_KWTSMS_DEFAULT": kwtsms_conn_json(sandbox.url, "sandbox_user", PASSWORD),
            "KWTSMS_WINDOW_LEAD": "15",
        },
        dags_folder=TEST_DAGS,
        timeout=400,
    )
    result.check()
    deferred = DEFERRED.search(result.flat_output)
    assert deferred, result.output[-4000:]
    kuwait_start = started + timedelta(hours=3)
    opens = kuwait_start.replace(hour=int(deferred[1]), minute=int(deferred[2]), second=0, microsecond=0)
    if opens < kuwait_start:
        opens += timedelta(days=1)  # the window opened after midnight in Kuwait
    (message,) = sandbox.messages()
    assert message["mobile"] == ["96598765432", "96550123456"]
    received = datetime.fromtimestamp(message["received_at"], UTC)
    assert received >= opens - timedelta(hours=3)  # not before the window opened (Kuwait is UTC+3)
    assert PASSWORD not in result.output_to_check_for_secrets
