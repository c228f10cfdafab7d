"""The example DAGs run end to end under ``airflow dags test`` against the sandbox.

Each test asserts what the sandbox received: numbers, text, charges. The first one also proves
the API password never shows in the output, the XComs or the rendered template fields.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections import Counter

import pytest
from airflow_support import REPO
from doc_samples import assert_sample_in

from airflow_provider_kwtsms.version_compat import AIRFLOW_V_3_3_PLUS, HAS_TASK_STATE_STORE

pytestmark = [pytest.mark.airflow, pytest.mark.compat]

EXAMPLES = REPO / "dags_examples"
PASSWORD = "Pw-9f3c-never-shown"
ON_CALL = "96599990000"


@pytest.fixture
def sandbox(kwtsms_sandbox_factory):
    return kwtsms_sandbox_factory(password=PASSWORD, balance=5000, rate=10)


def env_for(sandbox) -> dict[str, str]:
    conn = {
        "conn_type": "kwtsms",
        "login": "sandbox_user",
        "password": PASSWORD,
        "host": sandbox.url,
        "extra": {"rate": "5"},
    }
    return {"AIRFLOW_CONN_KWTSMS_DEFAULT": json.dumps(conn)}


def db_rows(airflow, sql: str) -> list[tuple]:
    with sqlite3.connect(airflow.path / "airflow.db") as db:
        return db.execute(sql).fetchall()


@pytest.mark.heavy  # on 3.3 only: the sensor's wait on 3.0 to 3.2 is test_sensor's real run
def test_estimate_gate_send(airflow, sandbox):
    run = airflow.run(
        "dags", "test", "kwtsms_estimate_gate_send", "2025-04-01", env=env_for(sandbox), dags_folder=EXAMPLES
    )
    run.check()
    messages = sandbox.messages()
    assert len(messages) == 1, messages  # the dry run sent nothing; no failure alert
    sent = messages[0]
    assert sorted(sent["mobile"]) == ["96550123456", "96560001234", "96598765432"]
    assert sent["message"] == (
        "Your order for 2025-04-01 is ready for pick-up. Thank you for shopping with us."
    )
    assert sent["points"] == 3 and sent["sender"] == "KWT-SMS"
    assert sandbox.account()["available"] == 5000 - 3

    xcoms = dict(
        db_rows(
            airflow,
            "SELECT task_id, value FROM xcom WHERE dag_id='kwtsms_estimate_gate_send' AND key='return_value'",
        )
    )
    estimate = json.loads(xcoms["estimate"])
    assert estimate["dry_run"] is True and estimate["estimate"] == 3
    expected = {
        "inputs": 5,
        "valid": 3,
        "invalid": 1,
        "duplicates": 1,
        "sent": 0,
        "failed": 0,
        "uncertain": 0,
    }
    assert {k: estimate["counts"][k] for k in expected} == expected
    summary = json.loads(xcoms["send"])
    assert summary["ok"] and summary["numbers_sent"] == 3 and summary["points_charged"] == 3
    assert summary["msg_ids"] == [sent["msg_id"]] and summary["balance_after"] == 4997
    assert summary["invalid"][0]["input"] == "12345"
    # The ledger: the task state store where Airflow has one (3.3+), else Variables, of which one
    # small value is kept after success: the head marked complete (a retry then sends nothing).
    assert summary["resume"]["store"] == ("task state store" if HAS_TASK_STATE_STORE else "Variable")
    # (The keys of this run, the DAG's only one: they hold its run id, today's date.)
    like = "kwtsms_ledger:kwtsms_estimate_gate_send:%"
    rows = db_rows(airflow, f"SELECT key, val FROM variable WHERE key LIKE '{like}'")
    if HAS_TASK_STATE_STORE:
        assert rows == []
    else:
        assert [key.rsplit(":", 1)[1] for key, _ in rows] == ["kwtsms_ledger"], rows
        assert '"c":true' in rows[0][1] or rows[0][1].startswith("gAAAA"), rows  # marked complete

    # The password appears nowhere: output, XCom, rendered fields.
    assert PASSWORD not in run.output_to_check_for_secrets
    for table in ("xcom", "rendered_task_instance_fields"):
        dump = json.dumps(db_rows(airflow, f"SELECT * FROM {table}"), default=str)
        assert PASSWORD not in dump, table


def test_password_masked_in_task_log_and_errors(airflow, sandbox):
    """Through ``airflow tasks test`` (secrets masking active), a failing send and a good one."""
    airflow.run("dags", "reserialize", dags_folder=EXAMPLES).check()
    sandbox.set_balance(0)  # ERR010: a permanent error, its message in the log
    failed = airflow.run(
        "tasks",
        "test",
        "kwtsms_estimate_gate_send",
        "send",
        "2025-04-02",
        env=env_for(sandbox),
        dags_folder=EXAMPLES,
    )
    assert failed.returncode != 0 or "ERR010" in failed.output
    assert "ERR010" in failed.output and "Top up" in failed.output
    assert PASSWORD not in failed.output_to_check_for_secrets
    sandbox.set_balance(100)
    ok = airflow.run(
        "tasks",
        "test",
        "kwtsms_estimate_gate_send",
        "send",
        "2025-04-03",
        env=env_for(sandbox),
        dags_folder=EXAMPLES,
    )
    ok.check()
    assert "kwtSMS batch 1/1 (#1): sent 3 numbers" in ok.output  # the one per-batch line (batch_loop)
    assert PASSWORD not in ok.output_to_check_for_secrets


@pytest.mark.heavy  # 3.3 only: mapping crosses no version difference of ours (version_compat.py)
def test_campaign_mapped(airflow, sandbox):
    airflow.run("pools", "set", "kwtsms", "1", "kwtSMS account").check()
    run = airflow.run(
        "dags", "test", "kwtsms_campaign_mapped", "2025-04-01", env=env_for(sandbox), dags_folder=EXAMPLES
    )
    run.check()
    counts = Counter(n for m in sandbox.messages() for n in m["mobile"])
    assert len(counts) == 1000 and set(counts.values()) == {1}
    assert len(sandbox.messages()) == 5  # chunks of 400, 400, 200: 2 + 2 + 1 batches of 200
    assert sandbox.account()["available"] == 5000 - 1000
    mapped = db_rows(
        airflow,
        "SELECT map_index, state FROM task_instance "
        "WHERE dag_id='kwtsms_campaign_mapped' AND task_id='send_chunk' "
        "ORDER BY map_index",
    )
    assert mapped == [(0, "success"), (1, "success"), (2, "success")]


@pytest.mark.heavy  # 3.3 only: rows from XCom cross no version difference of ours (version_compat.py)
def test_personal_rows(airflow, sandbox):
    """Rows from a task, a per-row template, a do-not-send list from another task."""
    run = airflow.run(
        "dags", "test", "kwtsms_personal_rows", "2025-04-01", env=env_for(sandbox), dags_folder=EXAMPLES
    )
    run.check()
    texts = {tuple(m["mobile"]): m["message"] for m in sandbox.messages()}
    assert texts == {
        ("96598765432",): "Dear Fatima, order 1042 ships today.",
        ("96550123456",): "Dear Ahmad, order 1043 ships today.",
    }
    [(value,)] = db_rows(
        airflow,
        "SELECT value FROM xcom WHERE dag_id='kwtsms_personal_rows' AND task_id='send' "
        "AND key='return_value'",
    )
    summary = json.loads(value)
    assert summary["rows"]["sent"] == 2 and summary["rows"]["suppressed"] == 1
    [bad] = summary["invalid"]
    assert bad["row"] == 3 and "'name' is undefined" in bad["reason"]


def test_failure_alerts(airflow, sandbox):
    run = airflow.run(
        "dags", "test", "kwtsms_failure_alerts", "2025-04-01", env=env_for(sandbox), dags_folder=EXAMPLES
    )
    texts = [m["message"] for m in sandbox.messages() if m["mobile"] == [ON_CALL]]
    if len(texts) != 2:  # keep the whole log for whoever reads the failure
        (REPO / "test-artifacts").mkdir(exist_ok=True)
        (REPO / "test-artifacts" / "failure_alerts.log").write_text(run.output)
    assert len(texts) == 2, (texts, run.output[-3000:])
    task_alert = next(t for t in texts if "nightly_load" in t)
    # `airflow dags test` before 3.3 gives callbacks no exception (apache/airflow#64568).
    if AIRFLOW_V_3_3_PLUS:
        assert "warehouse connection refused" in task_alert or "RuntimeError" in task_alert
    assert any(t.startswith("DAG kwtsms_failure_alerts run ") for t in texts)
    assert all(m["pages"] == 1 for m in sandbox.messages())


def readme_connection(sandbox) -> str:
    """The README's first-try connection (``kwtsms://http://sandbox_user:...@127.0.0.1:8765?...``),
    pointed at this sandbox's port."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    (uri,) = re.findall(
        r"^export AIRFLOW_CONN_KWTSMS_DEFAULT='(kwtsms://http://[^']*127\.0\.0\.1:8765[^']*)'", readme, re.M
    )
    return uri.replace("127.0.0.1:8765", sandbox.url.removeprefix("http://"))


def test_quickstart(airflow, kwtsms_sandbox_factory):
    """The README's DAG, run as the README says (the sandbox as ``kwtsms-sandbox`` starts it, the
    README's connection): the gate passes, the send arrives, the run's success alert arrives, and
    the log lines the README shows are the ones printed."""
    sandbox = kwtsms_sandbox_factory()  # kwtsms-sandbox's defaults: sandbox_user, 1000 credits
    run = airflow.run(
        "dags",
        "test",
        "kwtsms_quickstart",
        "2025-04-01",
        env={"AIRFLOW_CONN_KWTSMS_DEFAULT": readme_connection(sandbox)},
        dags_folder=EXAMPLES,
    )
    run.check()
    by_number = {tuple(m["mobile"]): m for m in sandbox.messages()}
    assert set(by_number) == {("96598765432", "96550123456", "96560001234"), (ON_CALL,)}, by_number
    welcome = by_number["96598765432", "96550123456", "96560001234"]
    assert welcome["message"] == "Welcome to our shop! Your account is ready."
    assert welcome["pages"] == 1 and welcome["test"]  # the README's connection is in test mode
    assert by_number[(ON_CALL,)]["message"] == "kwtsms_quickstart: welcome texts sent."
    assert sandbox.account()["available"] == 1000  # test sends are not charged
    # The README shows Airflow 3.3's lines; 3.0 to 3.2 print the same messages in another form.
    assert_sample_in(run.output, "README.md", "quickstart-log", whole_lines=AIRFLOW_V_3_3_PLUS)
    assert "sandbox_pass" not in run.output_to_check_for_secrets  # Airflow 3.0 prints it in one debug line
