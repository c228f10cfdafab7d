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

from airflow_provider_kwtsms.errors import KwtSMSInputError
from airflow_provider_kwtsms.hooks.kwtsms import KwtSMSConfigurationError, KwtSMSHook
from airflow_provider_kwtsms.notifications.kwtsms import KwtSMSNotifier
from airflow_provider_kwtsms.triggers.balance import BalanceTrigger
from airflow_provider_kwtsms.version_compat import AirflowFailException

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
def test_a_connection_without_login_fails_each_task_once_without_retrying(airflow, sandbox):
    run = airflow.run(
        "dags",
        "test",
        "kwtsms_test_config_error",
        env={"AIRFLOW_CONN_KWTSMS_NOLOGIN": no_login_conn(sandbox.url)},
    )
    states = airflow.task_states("kwtsms_test_config_error")
    # retries=2 with no delay: a retried error would show try 3.
    assert states == {"send": ("failed", 1), "gate": ("failed", 1), "wait": ("failed", 1)}, run.output[-4000:]
    assert run.flat_output.count(NO_LOGIN) >= 3, run.output[-4000:]
    assert sandbox.requests() == []
