"""A real Airflow run of a send outside its window: the task defers and sends when the window opens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from airflow_support import TEST_DAGS, kwtsms_conn_json

PASSWORD = "W1ndow-secret"


@pytest.mark.airflow
def test_a_send_outside_its_window_defers_and_goes_when_it_opens(airflow, kwtsms_sandbox_factory):
    sandbox = kwtsms_sandbox_factory(password=PASSWORD)
    kuwait = datetime.now(UTC) + timedelta(hours=3)
    opens = (kuwait + timedelta(minutes=1)).replace(second=0, microsecond=0)
    if (opens - kuwait).total_seconds() < 40:  # leave the run time to start and defer first
        opens += timedelta(minutes=1)
    window = f"{opens:%H:%M}-{opens + timedelta(hours=1):%H:%M}"
    result = airflow.run(
        "dags",
        "test",
        "kwtsms_send_window",
        env={
            "AIRFLOW_CONN_KWTSMS_DEFAULT": kwtsms_conn_json(sandbox.url, "sandbox_user", PASSWORD),
            "KWTSMS_WINDOW": window,
        },
        dags_folder=TEST_DAGS,
        timeout=400,
    )
    result.check()
    assert "the send window is closed" in result.output and "deferred until" in result.output
    (message,) = sandbox.messages()
    assert message["mobile"] == ["96598765432", "96550123456"]
    received = datetime.fromtimestamp(message["received_at"], UTC)
    assert received >= opens - timedelta(hours=3)  # not before the window opened (Kuwait is UTC+3)
    assert PASSWORD not in result.output_to_check_for_secrets
