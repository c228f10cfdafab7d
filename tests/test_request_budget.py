"""Requests are the scarce resource (5 a second per IP at most): a send spends them on sends.

Counted where they land: the sandbox records every request it receives. Issue 20's campaign
spent a balance and a coverage read per mapped task (20 of 60 requests); here a one-batch send
or alert makes one request, and a resumable send of several batches makes its sends and nothing
else, the balance figures coming with the send answers (API v4.1: "no need to poll balance").
"""

from __future__ import annotations

import pytest
from airflow_support import kwtsms_conn_uri
from sandbox_helpers import frozen_clock, linked, logged

from airflow_provider_kwtsms.gateway.client import KwtSMSClient
from airflow_provider_kwtsms.ledger import MemoryStore, resume_send

USER, PASSWORD = "budget_user", "budget_pass"


@pytest.fixture
def sb(kwtsms_sandbox_factory):
    # A frozen sandbox clock: requests arrive at the instants the pacer chose (no real-time jitter).
    return kwtsms_sandbox_factory(username=USER, password=PASSWORD, balance=1_000_000, clock=frozen_clock())


def client(sb, **options) -> KwtSMSClient:
    # The documented maximum on the sandbox's clock (no real time), one pacer for every client of
    # the test, as the processes of one machine share one (machine_rate).
    return KwtSMSClient(USER, PASSWORD, base_url=sb.url, **linked(sb), **options)


def numbers(count: int, start: int = 0) -> list[str]:
    return [f"96550{i:06d}" for i in range(start, start + count)]


def endpoints(sb) -> list[str]:
    return [r["endpoint"] for r in logged(sb)]


def test_a_one_batch_send_makes_one_request(sb):
    result = client(sb).send(numbers(150), "One batch", test=False)
    assert result.numbers_sent == 150
    assert endpoints(sb) == ["send"]  # before: coverage, send


def test_a_resumable_send_of_several_batches_makes_only_its_sends(sb):
    c = client(sb)
    plan = c.plan_send(numbers(800), "Four batches", test=False)  # one mapped task of the campaign
    result = resume_send(c, plan, MemoryStore(), try_number=1)
    assert result.numbers_sent == 800
    assert endpoints(sb) == ["send"] * 4  # before: balance, coverage, send x 4


def test_the_campaign_spends_at_least_90_percent_of_its_requests_on_sends(sb):
    # 8,000 recipients mapped into 10 tasks (each its own process and client, one machine).
    for task in range(10):
        c = client(sb)
        plan = c.plan_send(numbers(800, task * 800), "Campaign", test=False)
        resume_send(c, plan, MemoryStore(), try_number=1)
    seen = endpoints(sb)
    assert seen.count("send") == 40
    assert seen.count("send") / len(seen) >= 0.9  # here 100 %; before: 40 of 60
    assert len({n for m in sb.messages() for n in m["mobile"]}) == 8000


def test_the_notifier_makes_one_request(sb, monkeypatch):
    from airflow_provider_kwtsms.notifications.kwtsms import send_kwtsms_notification

    monkeypatch.setenv("AIRFLOW_CONN_KWTSMS_DEFAULT", kwtsms_conn_uri(sb.url, USER, PASSWORD))
    send_kwtsms_notification(target="96598765432", message="db-1 is down")({"ti": None})
    assert endpoints(sb) == ["send"]
    [message] = sb.messages()
    assert message["mobile"] == ["96598765432"]
