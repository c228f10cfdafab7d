"""The gateway's documented limits (API v4.1), in the provider and in the sandbox.

The `mobile` field holds at most 2,500 characters as well as 200 numbers; username, password,
sender and msgid have sizes of 15, 30, 11 and 32 characters. The provider checks each before any
request (nothing reaches the sandbox); the sandbox answers an over-long field as the gateway's own
lookup would. Pages and Kuwaiti numbers are in test_client_send.py, test_sandbox.py and test_phone.py.
"""

from __future__ import annotations

import math

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from sandbox_helpers import frozen_clock, linked, logged, logged_sends

from airflow_provider_kwtsms.constants import FIELD_LIMITS, MAX_BATCH, MAX_MOBILE_CHARS
from airflow_provider_kwtsms.errors import ERRORS, KwtSMSInputError
from airflow_provider_kwtsms.gateway.client import KwtSMSClient
from airflow_provider_kwtsms.send.planning import split_batches
from airflow_provider_kwtsms.smtp.sender import KwtSMSSmtpSender

USER15 = "u" * 15  # the longest username and password the documentation allows
PASSWORD30 = "p@ss-" + "w" * 25
SENDER11 = "MY-COMPANY1"
ARABIC_SENDER11 = "شركة-الكويت"  # 11 characters (22 bytes in UTF-8): counted as 11
KW = "96598765432"


def uae(count: int) -> list[str]:
    """Twelve-digit UAE mobiles (9715xxxxxxxx): 200 of them take 2,599 characters."""
    return [f"9715{i:08d}" for i in range(count)]


@pytest.fixture
def sb(kwtsms_sandbox_factory):
    return kwtsms_sandbox_factory(
        username=USER15,
        password=PASSWORD30,
        balance=100_000,
        senders=["KWT-SMS", SENDER11, ARABIC_SENDER11],
        coverage=["965", "971"],
        clock=frozen_clock(),  # requests arrive at the instants the pacer chose, on its clock
    )


def client_for(sb, username: str = USER15, password: str = PASSWORD30, **options) -> KwtSMSClient:
    # 5 a second (the documented maximum) on the sandbox's clock, one pacer for its clients.
    return KwtSMSClient(username, password, base_url=sb.url, **linked(sb), **options)


# --- the mobile field: 200 numbers and 2,500 characters -------------------------------------------


def test_200_twelve_digit_numbers_are_split_by_characters_and_each_sent_once(sb):
    numbers = uae(200)
    assert len(",".join(numbers)) == 2599  # one request would be over the documented 2,500
    client = client_for(sb)
    plan = client.plan_send(numbers, "Hello", test=True)
    assert [len(b) for b in plan.batches] == [192, 8]
    assert all(len(",".join(b)) <= MAX_MOBILE_CHARS for b in plan.batches)
    assert "2 requests (2,500 characters per request)" in plan.describe()

    result = client.send(numbers, "Hello", test=True)
    assert result.ok and len(result.msg_ids) == 2
    received = [m["mobile"] for m in sb.messages()]
    assert [len(",".join(m)) for m in received] == [2495, 103]
    assert [n for m in received for n in m] == numbers  # every number once, in order
    assert [r["code"] for r in logged_sends(sb)] == ["OK", "OK"]


def test_the_plan_line_counts_requests_and_says_when_characters_set_the_count(sb):
    client = client_for(sb)
    kuwait = [f"9655{i:07d}" for i in range(401)]  # 11 digits: 200 always fit in 2,399 characters
    assert "3 requests; estimate" in client.plan_send(kuwait, "Hi", test=True).describe()
    assert "1 request; estimate" in client.plan_send(KW, "Hi", test=True).describe()
    assert "6 requests (2,500 characters per request)" in client.plan_send(uae(1000), "Hi").describe()


def test_validate_asks_in_requests_of_at_most_2500_characters(sb):
    result = client_for(sb).validate(uae(200))
    assert len(result.ok) == 200
    assert [r["endpoint"] for r in logged(sb)] == ["validate", "validate"]


def test_send_batch_refuses_a_mobile_field_over_2500_characters_locally(sb):
    with pytest.raises(KwtSMSInputError, match=r"at most 2500 characters .* got 200 numbers and 2599"):
        client_for(sb).send_batch(uae(200), "hi", sender="KWT-SMS", test=True)
    assert logged(sb) == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=7, max_value=15), max_size=700))
def test_split_batches_keeps_order_and_both_limits_and_fills_each_request(lengths):
    numbers = [str(10**n + i)[:n] for i, n in enumerate(lengths)]
    batches = split_batches(numbers)
    assert [n for b in batches for n in b] == numbers
    for i, batch in enumerate(batches):
        assert 1 <= len(batch) <= MAX_BATCH and len(",".join(batch)) <= MAX_MOBILE_CHARS
        if i + 1 < len(batches):  # cut only where the next number would not fit
            longer = [*batch, batches[i + 1][0]]
            assert len(longer) > MAX_BATCH or len(",".join(longer)) > MAX_MOBILE_CHARS
    assert len(batches) >= math.ceil(len(numbers) / MAX_BATCH)


def test_the_smtp_channel_cuts_its_mobile_line_at_2500_characters(kwtsms_sandbox_factory):
    sb = kwtsms_sandbox_factory(smtp_port=0, rate=None, coverage=["965", "971"])
    sender = KwtSMSSmtpSender(
        "sandbox_user", "sandbox_pass", smtp_host="127.0.0.1", smtp_port=sb.smtp_port,
        from_address="alerts@example.com", rate=5,
    )  # fmt: skip
    with sender:
        result = sender.send(uae(200), "Hello")
    assert len(result.batches) == 2
    emails = sb.emails()
    assert [e["outcome"] for e in emails] == ["accepted", "accepted"]
    assert [n for m in sb.messages() for n in m["mobile"]] == uae(200)
    assert all(len(",".join(m["mobile"])) <= MAX_MOBILE_CHARS for m in sb.messages())


# --- field sizes: at the limit passes, one over fails, nothing reaches the sandbox ---------------


def test_username_15_passes_16_fails_before_any_request(sb):
    assert client_for(sb).balance().available == 100_000
    with pytest.raises(
        KwtSMSInputError, match=r"^username is 16 characters long \('u{16}'\); kwtSMS accepts at most 15"
    ):
        client_for(sb, username="u" * 16)
    assert [r["endpoint"] for r in logged(sb)] == ["balance"]


def test_password_30_passes_31_fails_and_only_its_length_is_shown(sb):
    assert client_for(sb).balance().available == 100_000
    secret = PASSWORD30 + "Z"
    with pytest.raises(KwtSMSInputError) as info:
        client_for(sb, password=secret)
    assert str(info.value).startswith("password is 31 characters long; kwtSMS accepts at most 30")
    assert secret not in str(info.value) and "w" * 10 not in str(info.value)
    assert [r["endpoint"] for r in logged(sb)] == ["balance"]


@pytest.mark.parametrize("good", [SENDER11, ARABIC_SENDER11])
def test_sender_11_passes_12_fails_in_the_constructor_and_as_an_override(sb, good):
    assert client_for(sb, sender=good).send(KW, "Hi", test=True).ok
    too_long = good + "X"
    with pytest.raises(KwtSMSInputError, match=r"^sender is 12 characters long .*at most 11"):
        client_for(sb, sender=too_long)
    with pytest.raises(KwtSMSInputError, match=r"^sender is 12 characters long .*at most 11"):
        client_for(sb).send(KW, "Hi", sender=too_long, test=True)
    with pytest.raises(KwtSMSInputError, match=r"^sender is 12 characters long .*at most 11"):
        client_for(sb).send_batch([KW], "Hi", sender=too_long, test=True)
    assert [r["endpoint"] for r in logged_sends(sb)] == ["send"]  # the one at the limit


@pytest.mark.parametrize("call", ["status", "dlr"])
def test_msgid_32_passes_33_fails_before_any_request(sb, call):
    client = client_for(sb)
    msg_id = client.send(KW, "Hi", test=False).msg_ids[0]
    assert len(msg_id) == FIELD_LIMITS["msgid"]
    sb.advance(60)  # out of the queue and delivered: both calls answer OK
    assert getattr(client, call)(msg_id)
    before = len(logged(sb))
    with pytest.raises(KwtSMSInputError, match=r"^msg_id is 33 characters long .*at most 32"):
        getattr(client, call)(msg_id + "0")
    assert len(logged(sb)) == before


def test_smtp_sender_checks_the_same_sizes():
    def make(username="u", password="p", sender="KWT-SMS"):
        return KwtSMSSmtpSender(username, password, smtp_host="h", from_address="a@b.c", sender=sender)

    make("u" * 15, "p" * 30, SENDER11)
    for kwargs, field, length in (
        ({"username": "u" * 16}, "username", 16),
        ({"password": "p" * 31}, "password", 31),
        ({"sender": SENDER11 + "X"}, "sender", 12),
    ):
        with pytest.raises(KwtSMSInputError, match=rf"^{field} is {length} characters long"):
            make(**kwargs)


# --- the sandbox answers over-long fields as the gateway would --------------------------------------


def api(sb, endpoint: str, **fields) -> dict:
    body = {"username": USER15, "password": PASSWORD30, **fields}
    return requests.post(f"{sb.url}/API/{endpoint}/", json=body, timeout=10).json()


def test_sandbox_refuses_a_mobile_field_over_2500_characters_with_err007(sb):
    fits, over = ",".join(uae(192)), ",".join(uae(193))
    assert api(sb, "send", sender="KWT-SMS", mobile=fits, message="hi", test="1")["result"] == "OK"
    answer = api(sb, "send", sender="KWT-SMS", mobile=over, message="hi", test="1")
    assert answer["code"] == "ERR007" and "2508 characters" in answer["description"]
    assert api(sb, "validate", mobile=over)["code"] == "ERR007"
    assert api(sb, "send", sender="KWT-SMS", mobile=uae(193), message="hi")["code"] == "ERR007"  # a list
    assert ERRORS["ERR007"].permanent and "2,500 characters" in ERRORS["ERR007"].description


def test_sandbox_answers_over_long_credentials_err003_and_sender_err008(kwtsms_sandbox_factory):
    # Even an account configured with longer names is out of reach: the gateway has none.
    sb = kwtsms_sandbox_factory(username="u" * 16, password="p" * 31, senders=["KWT-SMS", "TWELVE-CHARS"])
    assert api(sb, "balance", username="u" * 16, password="p" * 31)["code"] == "ERR003"
    sb2 = kwtsms_sandbox_factory(rate=None, senders=["KWT-SMS", "TWELVE-CHARS"])
    send = {"username": "sandbox_user", "password": "sandbox_pass", "mobile": KW, "message": "hi"}
    answer = requests.post(f"{sb2.url}/API/send/", json={**send, "sender": "TWELVE-CHARS"}, timeout=10).json()
    assert answer["code"] == "ERR008" and "12 characters" in answer["description"]


def test_sandbox_answers_err029_for_a_msgid_that_is_not_32_characters(sb):
    msg_id = api(sb, "send", sender="KWT-SMS", mobile=KW, message="hi")["msg-id"]
    assert api(sb, "status", msgid=msg_id)["result"] == "OK"
    assert api(sb, "status", msgid=msg_id + "0")["code"] == "ERR029"
    assert api(sb, "dlr", msgid=msg_id + "0")["code"] == "ERR029"


def test_sandbox_answers_err025_for_a_kuwaiti_landline(sb):
    # v4.1's validate sample: 96524817066 (a landline) is ER; a send to it alone is ERR025.
    assert api(sb, "send", sender="KWT-SMS", mobile="96524817066", message="hi")["code"] == "ERR025"
    assert api(sb, "validate", mobile="96524817066,96598765432")["mobile"] == {
        "OK": ["96598765432"],
        "ER": ["96524817066"],
        "NR": [],
    }
