"""The engine (send/engine.py and the batch loop's ERR028 wait): one policy for every channel.

Real clients against the sandbox over loopback, on its clock (waits cost no real time).
"""

from __future__ import annotations

import math

import pytest
from sandbox_helpers import SandboxTime, frozen_clock, logged_sends

from airflow_provider_kwtsms.errors import KwtSMSInputError
from airflow_provider_kwtsms.gateway.client import KwtSMSClient
from airflow_provider_kwtsms.gateway.retry_policy import RetryPolicy
from airflow_provider_kwtsms.send.batch_loop import run_batches
from airflow_provider_kwtsms.smtp.sender import KwtSMSSmtpSender

USER, PASSWORD = "sandbox_user", "sandbox_pass"
KW = "96550001234"


def numbers(n: int, start: int = 0) -> list[str]:
    return [f"9656{i:07d}" for i in range(start, start + n)]


class GuardLog:
    """A journal with only a guard (what the ledger's fence gives the engine): it notes how many
    send requests the sandbox had seen each time it was called."""

    def __init__(self, sb) -> None:
        self.sb = sb
        self.seen: list[int] = []

    def start(self) -> None: ...

    def recorded(self, index):
        return None

    def sending(self, index) -> None: ...

    def settle(self, index, result):
        return result

    def guard(self) -> None:
        self.seen.append(len([r for r in self.sb.requests() if r["endpoint"] == "send"]))


def test_the_guard_is_called_right_before_every_request_of_a_batch_its_retries_too(kwtsms_sandbox_factory):
    # The queue holds one message and drains one every 4 s: the second batch meets ERR013 and is
    # tried again by the engine; the fence's guard comes before each of its requests.
    sb = kwtsms_sandbox_factory(rate=None, balance=100_000, queue_size=1, drain_rate=0.25)
    vt = SandboxTime(sb)
    client = KwtSMSClient(USER, PASSWORD, base_url=sb.url, clock=vt.clock, sleep=vt.sleep, pacer=vt.pacer())
    journal = GuardLog(sb)
    plan = client.plan_send(numbers(400), "hi", test=True)
    run = run_batches(client, plan, journal=journal)
    assert [b.state for b in run.batches] == ["sent", "sent"]
    sends = len(logged_sends(sb))
    assert [r["code"] for r in logged_sends(sb)].count("ERR013") >= 1
    assert journal.seen == list(range(sends))  # one guard per request, each just before it


def test_a_policy_with_a_bad_value_is_refused_naming_it():
    with pytest.raises(KwtSMSInputError, match=r"max_retries must be a whole number from 0 .* got -1"):
        RetryPolicy(max_retries=-1)
    with pytest.raises(KwtSMSInputError, match=r"same_number_wait must be seconds .* got nan"):
        RetryPolicy(same_number_wait=math.nan)
    with pytest.raises(KwtSMSInputError, match=r"same_number_retries .* got True"):
        RetryPolicy(same_number_retries=True)
    with pytest.raises(KwtSMSInputError, match="max_retries"):
        KwtSMSClient(USER, PASSWORD, max_retries=1.5)


def test_both_channels_take_their_settings_through_one_check(kwtsms_sandbox_factory):
    sb = kwtsms_sandbox_factory(smtp_port=0)
    for make in (
        lambda **kw: KwtSMSClient(USER, PASSWORD, base_url=sb.url, **kw),
        lambda **kw: KwtSMSSmtpSender(
            USER, PASSWORD, smtp_host="127.0.0.1", smtp_port=sb.smtp_port, from_address="a@example.com", **kw
        ),
    ):
        for bad, match in (
            ({"rate": 6}, "rate"),
            ({"max_pages": 8}, "max_pages"),
            ({"max_retries": -1}, "max_retries"),
        ):
            with pytest.raises(KwtSMSInputError, match=match):
                make(**bad)
        channel = make(max_retries=5)
        assert channel.policy.max_retries == 5 and channel.policy.same_number_retries == 3
        channel.close()


def test_the_e_mail_channels_same_number_rule_is_waited_out_by_the_same_policy(kwtsms_sandbox_factory):
    # A sleep that does not move the clock: the 15 s never pass. The e-mail channel refuses the
    # second e-mail to the number with ERR028 itself (kwtSMS would drop it in silence), and the
    # loop waits it out as it does the gateway's: same_number_retries times, then the batch fails.
    sb = kwtsms_sandbox_factory(clock=frozen_clock(), smtp_port=0)
    waits: list[float] = []
    vt = SandboxTime(sb)
    sender = KwtSMSSmtpSender(
        USER,
        PASSWORD,
        smtp_host="127.0.0.1",
        smtp_port=sb.smtp_port,
        from_address="alerts@example.com",
        clock=vt.clock,
        sleep=waits.append,
        pacer=vt.pacer(),
    )
    with sender:
        assert sender.send(KW, "first").ok
        result = sender.send(KW, "second")
    assert [(b.state, b.error_code) for b in result.batches] == [("failed", "ERR028")]
    assert waits == [sender.policy.same_number_wait] * sender.policy.same_number_retries
    assert [m["message"] for m in sb.messages()] == ["first"]
