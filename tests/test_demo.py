"""`make demo`, the README's first command: a real Airflow run against the sandbox, shown whole."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from airflow_provider_kwtsms.demo import message_rows, shown_lines

LONG_TEXT = "Your order for 2026-12-02 is ready for pick-up at the Salmiya branch. " * 3


def test_log_lines_and_message_texts_are_shown_whole():
    line = (
        "2026-12-02T10:00:00.000000Z [info     ] Plan: 5 inputs -> 3 valid, 1 invalid, 1 duplicates; "
        + "x" * 300
        + " [airflow.task.operators.airflow_provider_kwtsms.operators.sms.SendSMSOperator]"
    )
    (shown,) = shown_lines(line)
    assert shown.startswith("Plan:") and shown.endswith("x" * 300)
    message = {"msg_id": "a" * 32, "sender": "KWT-SMS", "mobile": ["96598765432"], "pages": 2, "points": 2}
    (row,) = message_rows([{**message, "test": False, "message": LONG_TEXT + "\nline two"}])
    assert row[-1] == " ".join((LONG_TEXT + " line two").split())


@pytest.mark.airflow
def test_the_demo_runs_an_example_dag_against_the_sandbox(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["KWTSMS_DEMO_HOME"] = str(tmp_path / "airflow-home")
    proc = subprocess.run(
        [sys.executable, "-m", "airflow_provider_kwtsms.demo"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "DAG run success" in proc.stdout
    assert "kwtSMS batch 1/1 (#1): sent 3 numbers" in proc.stdout
    assert "The sandbox received 1 message(s)" in proc.stdout
    assert "sandbox_pass" not in proc.stdout + proc.stderr
