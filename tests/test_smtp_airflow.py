"""transport="smtp" through Airflow: connections -> hook -> SMTP relay (the sandbox) -> inbox."""

from __future__ import annotations

import json

import pytest
from airflow_support import smtp_relay_conn_json

from airflow_provider_kwtsms.hooks.kwtsms import KwtSMSHook
from airflow_provider_kwtsms.smtp.sender import SUBMITTED_UNCONFIRMED, KwtSMSSmtpSender

USER, PASSWORD = "smtp_user", "Body-Pa55word"


@pytest.fixture
def sb(kwtsms_sandbox_factory):
    return kwtsms_sandbox_factory(smtp_port=0, username=USER, password=PASSWORD, balance=1000)


def connections(sb, **kwtsms_extra) -> dict[str, str]:
    kwtsms = {
        "conn_type": "kwtsms",
        "host": sb.url,
        "login": USER,
        "password": PASSWORD,
        "extra": {"transport": "smtp", "smtp_conn_id": "smtp_relay", "rate": 5, **kwtsms_extra},
    }
    relay = smtp_relay_conn_json(sb.smtp_port, login="relay-user", password="relay-pw")
    return {"AIRFLOW_CONN_SMTP_RELAY": relay, "AIRFLOW_CONN_KWTSMS_DEFAULT": json.dumps(kwtsms)}


def test_hook_with_transport_smtp_sends_by_email(sb, monkeypatch):
    for name, value in connections(sb).items():
        monkeypatch.setenv(name, value)
    hook = KwtSMSHook()
    client = hook.get_client()
    assert isinstance(client, KwtSMSSmtpSender) and (client.smtp_ssl, client.smtp_starttls) == (False, False)
    result = client.send("96598765432", "Hello from Airflow")
    hook.close()
    [message] = sb.messages()
    assert message["api"] == "smtp" and message["message"] == "Hello from Airflow"
    assert sb.emails()[0]["relay_user"] == "relay-user" and result.to_dict()["confirmed"] is False
    ok, text = KwtSMSHook().test_connection()
    assert ok and "took a session" in text and "cannot be checked" in text
    assert PASSWORD not in repr(hook) + text


def test_transport_extra_is_checked(sb, monkeypatch):
    for name, value in connections(sb, transport="pigeon").items():
        monkeypatch.setenv(name, value)
    ok, text = KwtSMSHook().test_connection()
    assert not ok and "transport" in text and "'smtp'" in text


@pytest.mark.airflow
def test_send_operator_dag_over_smtp(airflow, sb):
    """SendSMSOperator under `airflow dags test`: 250 numbers -> 2 e-mails -> 250 SMS in the inbox."""
    env = {**connections(sb), "KWTSMS_RESUME_N": "250", "KWTSMS_RESUME_RETRIES": "0"}
    run = airflow.run("dags", "test", "resume_send", "2025-04-01", env=env, timeout=400)
    run.check()
    assert [len(m["mobile"]) for m in sb.messages()] == [200, 50]
    assert all(m["api"] == "smtp" and m["message"] == "Resume test for 2025-04-01" for m in sb.messages())
    assert [e["outcome"] for e in sb.emails()] == ["accepted", "accepted"]
    summary = airflow.xcom("resume_send", "send")
    assert summary["msg_ids"] == [] and summary["numbers_sent"] == 250
    assert [b["state"] for b in summary["batches"]] == [SUBMITTED_UNCONFIRMED] * 2
    assert all(b["confirmed"] is False and b["transport"] == "smtp" for b in summary["batches"])
    assert summary["transport"] == "smtp" and summary["confirmed"] is False  # said once, at the top
    assert PASSWORD not in run.output and "relay-pw" not in run.output


def test_notifier_alerts_by_email(sb, monkeypatch):
    from airflow_provider_kwtsms.notifications.kwtsms import KwtSMSNotifier

    for name, value in connections(sb).items():
        monkeypatch.setenv(name, value)
    KwtSMSNotifier(target="96598765432", message="db1 down\nsee runbook").notify({})
    [message] = sb.messages()
    assert message["api"] == "smtp" and message["message"] == "db1 down see runbook"
