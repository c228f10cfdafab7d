"""SendSMSOperator's promises about what a task does before and instead of sending, through the
path Airflow takes: ``execute()`` with the task's context, the real hook and client, the sandbox
over HTTP on loopback (its clock frozen, the client's waits moving it: no real waiting).

docs/operator.md promises: ``on_invalid="fail"`` sends nothing if any input is invalid; an
estimate over ``max_credits`` fails before sending; ``dry_run=True`` returns the estimate without
any request; a permanent gateway error fails the task at once (``AirflowFailException``, no retry
wasted) saying what to do; every input is accounted for in the XCom summary.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from airflow_support import kwtsms_conn_uri
from sandbox_helpers import frozen_clock, linked

from airflow_provider_kwtsms.gateway import client as client_module
from airflow_provider_kwtsms.ledger import MemoryStore
from airflow_provider_kwtsms.operators.sms import SendSMSOperator
from airflow_provider_kwtsms.version_compat import AirflowFailException

pytestmark = pytest.mark.compat

PASSWORD = "0utc0me-op/secret"
CUSTOMERS = ["96550000001", "+965 5000 0002", "0096550000003"]


@pytest.fixture
def sandbox(kwtsms_sandbox_factory, monkeypatch):
    sandbox = kwtsms_sandbox_factory(username="u", password=PASSWORD, balance=1000, clock=frozen_clock())
    monkeypatch.setenv("AIRFLOW_CONN_KWTSMS_DEFAULT", kwtsms_conn_uri(sandbox.url, "u", PASSWORD))

    class OnSandboxTime(client_module.KwtSMSClient):  # what the hook builds, on the sandbox's clock
        def __init__(self, *args, **options) -> None:
            super().__init__(*args, **{**options, **linked(sandbox)})

    monkeypatch.setattr(client_module, "KwtSMSClient", OnSandboxTime)
    return sandbox


def task_context() -> dict:
    ti = SimpleNamespace(dag_id="shop", run_id="manual__1", task_id="send", map_index=-1, try_number=1)
    ti.xcom_push = lambda **kw: None
    return {"ti": ti, "task_state_store": MemoryStore()}


def api_requests(sandbox) -> list[str]:
    return [r["endpoint"] for r in sandbox.requests()]


def test_on_invalid_fail_sends_nothing_and_names_the_invalid_input(sandbox):
    task = SendSMSOperator(task_id="send", mobile=[*CUSTOMERS, "12345"], message="Hi", on_invalid="fail")
    with pytest.raises(AirflowFailException, match=r"'12345'.*on_invalid='skip'"):
        task.execute(task_context())
    assert api_requests(sandbox) == [] and sandbox.messages() == []


def test_an_estimate_over_max_credits_fails_before_any_request(sandbox):
    task = SendSMSOperator(task_id="send", mobile=CUSTOMERS, message="Hi", max_credits=2)
    says = r"Nothing was sent: this send needs 3 credits .*max_credits=2; raise max_credits"
    with pytest.raises(AirflowFailException, match=says):
        task.execute(task_context())
    assert api_requests(sandbox) == [] and sandbox.messages() == []


def test_a_dry_run_returns_the_estimate_without_any_request(sandbox):
    summary = SendSMSOperator(task_id="send", mobile=CUSTOMERS, message="Hi", dry_run=True).execute(
        task_context()
    )
    assert summary["dry_run"] is True and summary["estimate"] == 3 and summary["counts"]["valid"] == 3
    assert api_requests(sandbox) == []


def test_a_permanent_gateway_error_fails_at_once_saying_what_to_do(sandbox):
    # A sender ID the account has not registered: ERR008, permanent. AirflowFailException is the
    # one exception Airflow does not retry.
    task = SendSMSOperator(task_id="send", mobile=CUSTOMERS, message="Hi", sender="NOT-OURS")
    with pytest.raises(AirflowFailException, match="ERR008") as raised:
        task.execute(task_context())
    assert "sender" in str(raised.value).lower() and PASSWORD not in str(raised.value)
    assert [r["code"] for r in sandbox.requests() if r["endpoint"] == "send"] == ["ERR008"]


def test_every_input_is_accounted_for_in_the_summary(sandbox):
    inputs = [*CUSTOMERS, "12345", "96550000001"]  # one invalid, one duplicate
    summary = SendSMSOperator(task_id="send", mobile=inputs, message="Hi").execute(task_context())
    counts = summary["counts"]
    assert (counts["inputs"], counts["sent"], counts["invalid"], counts["duplicates"]) == (5, 3, 1, 1)
    assert summary["invalid"][0]["input"] == "12345" and "too short" in summary["invalid"][0]["reason"]
    assert summary["duplicates"] == [{"input": "96550000001", "number": "96550000001"}]
    assert sorted(sandbox.delivery_counts().items()) == [(f"9655000000{i}", 1) for i in (1, 2, 3)]
    assert PASSWORD not in repr(summary)
