"""A configuration error (no login, a bad extra...) fails the task at once on every path, as a wrong
password does: Airflow spends no retry on what only a person can fix.

The hook turns the ``KwtSMSInputError`` of a connection it reads into ``KwtSMSConfigurationError``
(an ``AirflowFailException`` that is still a ``KwtSMSInputError``); the notifier does the same for
its target and data; the trigger answers a permanent error event; the Test button says what to set
(tests/test_hook.py).
"""

from __future__ import annotations

import asyncio
import json

import pytest
from airflow_support import kwtsms_conn_json
from doc_samples import assert_sample_in

from airflow_provider_kwtsms.errors import KwtSMSInputError
from airflow_provider_kwtsms.hooks.kwtsms import KwtSMSConfigurationError, KwtSMSHook
from airflow_provider_kwtsms.notifications.kwtsms import KwtSMSNotifier
from airflow_provider_kwtsms.triggers.balance import BalanceTrigger
from airflow_provider_kwtsms.version_compat import AIRFLOW_V_3_3_PLUS, AirflowFailException

pytestmark = pytest.mark.compat

NO_LOGIN = "Connection 'kwtsms_nologin' has no login: set it to your kwtSMS API username."


def no_login_conn(url: str) -> str:
    return json.dumps({"conn_type": "kwtsms", "host": url, "password": "pw-of-no-login"})


@pytest.fixture
def sandbox(kwtsms_sandbox_factory, monkeypatch):
    sandbox = kwtsms_sandbox_factory()
    monkeypatch.setenv("AIRFLOW_CONN_KWTSMS_NOLOGIN", no_login_conn(sandbox.url))
    return sandbox


def test_the_hook_raises_a_configuration_error_that_airflow_does_not_retry(sandbox, monkeypatch):
    with pytest.raises(AirflowFailException, match=NO_LOGIN) as raised:
        KwtSMSHook(kwtsms_conn_id="kwtsms_nologin").get_client()
    assert isinstance(raised.value, KwtSMSInputError)  # what callers of the hook caught before
    good = {"conn_type": "kwtsms", "host": sandbox.url, "login": "sandbox_user", "password": "sandbox_pass"}
    monkeypatch.setenv("AIRFLOW_CONN_KWTSMS_BAD_EXTRA", json.dumps({**good, "extra": {"timeout": "soon"}}))
    monkeypatch.setenv("AIRFLOW_CONN_KWTSMS_DEFAULT", json.dumps(good))
    with pytest.raises(KwtSMSConfigurationError, match=r"Connection 'kwtsms_bad_extra' extra 'timeout'"):
        KwtSMSHook(kwtsms_conn_id="kwtsms_bad_extra").get_client()
    with pytest.raises(KwtSMSConfigurationError, match=r"The argument rate"):
        KwtSMSHook(rate=50).get_client()  # an argument given to the hook (and the operator)
    assert sandbox.requests() == []


def test_a_notifier_on_an_unusable_connection_or_target_fails_as_configuration(sandbox, monkeypatch):
    with pytest.raises(AirflowFailException, match=NO_LOGIN):
        KwtSMSNotifier(target="96598765432", message="x", kwtsms_conn_id="kwtsms_nologin").notify({})
    monkeypatch.setenv(
        "AIRFLOW_CONN_KWTSMS_DEFAULT",
        json.dumps(
            {"conn_type": "kwtsms", "host": sandbox.url, "login": "sandbox_user", "password": "sandbox_pass"}
        ),
    )
    # A target that renders to no valid number: nothing to retry either.
    with pytest.raises(AirflowFailException, match=r"12345"):
        KwtSMSNotifier(target="12345", message="x").notify({})
    with pytest.raises(AirflowFailException, match=r"max_pages"):
        KwtSMSNotifier(target="96598765432", message="x", data={"max_pages": "{{ 'two' }}"}).notify(
            {"dag": None}
        )
    assert [r for r in sandbox.requests() if r["endpoint"] == "send"] == []


def test_the_balance_trigger_answers_a_permanent_error_naming_the_connection(sandbox):
    async def first_event():
        trigger = BalanceTrigger(kwtsms_conn_id="kwtsms_nologin", min_balance=1, poke_interval=1)
        return await anext(trigger.run())

    event = asyncio.run(first_event())
    assert event.payload == {"status": "error", "message": NO_LOGIN, "permanent": True}


@pytest.mark.airflow
@pytest.mark.heavy  # 3.3 only: a permanent failure in a real run on every release is the masking test's
def test_the_operator_page_in_a_real_run(airflow, kwtsms_sandbox_factory):
    """A connection without login fails each task once, no retry spent; and the task log of a send
    and of its retry is the one docs/operator.md shows."""
    sandbox = kwtsms_sandbox_factory(balance=10_000)
    env = {
        # Half a request a second: each batch answered before the next leaves, so the lines come
        # in the page's order (a faster rate keeps two in flight, whose answers may cross).
        "AIRFLOW_CONN_KWTSMS_DEFAULT": kwtsms_conn_json(
            sandbox.url, "sandbox_user", "sandbox_pass", rate="0.5"
        ),
        "AIRFLOW_CONN_KWTSMS_NOLOGIN": no_login_conn(sandbox.url),
    }
    run = airflow.run("dags", "test", "kwtsms_test_operator_page", env=env)
    states = airflow.task_states("kwtsms_test_operator_page")
    # retries=2 with no delay: a configuration error retried would show try 3.
    nologin = {task: states.get(task) for task in ("send_nologin", "gate_nologin", "wait_nologin")}
    assert nologin == dict.fromkeys(nologin, ("failed", 1)), run.output[-4000:]
    assert run.flat_output.count(NO_LOGIN) >= 3, run.output[-4000:]

    assert states["campaign"] == ("success", 2), run.output[-4000:]
    # Try 1 sent everything, then failed after execute: its retry sends nothing again, on every
    # release (3.3 keeps the ledger in the task state store, 3.0 to 3.2 a compact Variable).
    assert sandbox.delivery_counts() == dict.fromkeys(sandbox.delivery_counts(), 1)
    assert len(sandbox.delivery_counts()) == 998
    if AIRFLOW_V_3_3_PLUS:  # the page shows Airflow 3.3's lines
        assert_sample_in(run.output, "docs/operator.md", "operator-send-log")
        assert_sample_in(run.output, "docs/operator.md", "operator-retry-log")
