"""SendSMSOperator with per-recipient rows, in one process against the sandbox: rows from XCom
(rendered as text), a row template beside Airflow's own rendering, the do-not-send list from the
argument and from the Variable the connection names, the per-row XCom summary, and the checks a
DAG file's parse makes. The deployment harness sends the same shape with a worker killed
mid-send (tests/deploy, scenario d)."""

from __future__ import annotations

import json
from collections import defaultdict
from types import SimpleNamespace

import pytest
from airflow_support import kwtsms_conn_uri

from airflow_provider_kwtsms.ledger import MemoryStore
from airflow_provider_kwtsms.operators.sms import SendSMSOperator
from airflow_provider_kwtsms.version_compat import AIRFLOW_V_3_1_PLUS, AirflowFailException

pytestmark = pytest.mark.compat

PASSWORD = "R0ws-op/secret"


@pytest.fixture
def sandbox(kwtsms_sandbox_factory, monkeypatch):
    sandbox = kwtsms_sandbox_factory(username="u", password=PASSWORD, balance=20_000)
    monkeypatch.setenv(
        "AIRFLOW_CONN_KWTSMS_DEFAULT",
        kwtsms_conn_uri(sandbox.url, "u", PASSWORD, rate=5, do_not_send_variable="opt_outs"),
    )
    monkeypatch.setenv("AIRFLOW_VAR_OPT_OUTS", json.dumps(["+965 5000 0003"]))
    return sandbox


def task_context() -> dict:
    ti = SimpleNamespace(dag_id="rows", run_id="manual__1", task_id="send", map_index=-1, try_number=1)
    ti.xcom_push = lambda **kw: pytest.fail(f"nothing should push a partial summary: {kw}")
    return {"ti": ti, "task_state_store": MemoryStore()}


def received(sandbox) -> dict[str, list[str]]:
    got: dict[str, list[str]] = defaultdict(list)
    for message in sandbox.messages():
        for n in message["mobile"]:
            got[n].append(message["message"])
    return dict(got)


ROWS = [
    {"mobile": "96550000001", "name": "Fatima", "order": 1042},
    {"mobile": "96550000002", "name": "Ali", "order": 7},
    {"mobile": "96550000003", "name": "Opted", "order": 8},  # in the connection's Variable
    {"mobile": "٩٦٥٥٠٠٠٠٠٠٤", "name": "Sara", "order": 9},  # in do_not_send, written otherwise
    {"mobile": "96550000005", "order": 10},  # no name: this row's invalid entry
]


def test_recipients_with_a_template_send_each_row_its_text_and_account_for_every_row(sandbox):
    op = SendSMSOperator(
        task_id="send",
        recipients=repr(ROWS),  # what {{ ti.xcom_pull(...) }} renders to without native rendering
        message_template="Dear {{ name }}, order {{ order }} ships today",
        do_not_send=["0096550000004"],
        test_mode=True,
    )
    assert "message_template" not in op.template_fields  # Airflow leaves it to the row renderer
    summary = op.execute(task_context())
    assert received(sandbox) == {
        "96550000001": ["Dear Fatima, order 1042 ships today"],
        "96550000002": ["Dear Ali, order 7 ships today"],
    }
    assert summary["rows"] == {
        "total": 5,
        "sent": 2,
        "invalid": 1,
        "duplicate": 0,
        "suppressed": 2,
        "failed": 0,
        "uncertain": 0,
        "pending": 0,
    }
    assert [(e["row"], e["number"]) for e in summary["suppressed"]] == [
        (2, "96550000003"),
        (3, "96550000004"),
    ]
    [bad] = summary["invalid"]
    assert bad["row"] == 4 and "'name' is undefined" in bad["reason"]
    assert summary["texts"] == 2 and len(summary["batches"]) == 2
    json.dumps(summary)


def test_messages_rows_group_identical_texts_into_one_request(sandbox):
    rows = [{"mobile": f"9655000{i:04d}", "message": f"Gate {i % 2} opens at 9"} for i in range(10, 30)]
    summary = SendSMSOperator(task_id="send", messages=rows, test_mode=True).execute(task_context())
    assert len(summary["batches"]) == 2 and summary["rows"]["sent"] == 20
    assert all(len(texts) == 1 for texts in received(sandbox).values())


def test_on_invalid_fail_refuses_rows_before_anything_is_sent(sandbox):
    op = SendSMSOperator(
        task_id="send",
        recipients=ROWS,
        message_template="Dear {{ name }}",
        on_invalid="fail",
        test_mode=True,
    )
    with pytest.raises(AirflowFailException, match="1 of 5 inputs are not valid"):
        op.execute(task_context())
    assert not sandbox.messages()


@pytest.mark.skipif(
    not AIRFLOW_V_3_1_PLUS,
    reason="Airflow 3.0 looks a Variable missing from the environment up through the task supervisor "
    "only, which an in-process execute() does not have (a real 3.0 task has it)",
)
def test_a_missing_do_not_send_variable_fails_the_task_before_sending(sandbox, monkeypatch):
    monkeypatch.delenv("AIRFLOW_VAR_OPT_OUTS")
    op = SendSMSOperator(task_id="send", mobile="96550000001", message="Hi", test_mode=True)
    with pytest.raises(AirflowFailException, match="'opt_outs', which does not exist"):
        op.execute(task_context())
    assert not sandbox.messages()


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"messages": [], "mobile": "96550000001"}, "cannot be combined with mobile"),
        ({"recipients": []}, "which is missing"),
        ({"recipients": [], "message_template": "x", "message": "y"}, "not message"),
        ({"mobile": "96550000001"}, "give mobile and message"),
        ({"mobile": "96550000001", "message": "x", "message_template": "y"}, "needs recipients"),
    ],
)
def test_a_dag_that_mixes_the_ways_fails_its_parse(kwargs, says):
    with pytest.raises(ValueError, match=says):
        SendSMSOperator(task_id="send", **kwargs)
