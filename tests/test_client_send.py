"""Bulk send against the sandbox over real HTTP: accounting, pages, cost control, stopping rules,
ERR013 and ERR028 handling, pacing, the summary, and property-based inputs."""

from __future__ import annotations

import itertools
import json
import logging
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sandbox_helpers import FakeTime, SandboxTime, frozen_clock, logged, logged_sends

from airflow_provider_kwtsms.constants import MAX_RATE
from airflow_provider_kwtsms.errors import KwtSMSError, KwtSMSInputError
from airflow_provider_kwtsms.gateway.client import KwtSMSClient, RetryPolicy
from airflow_provider_kwtsms.rate.bucket import TokenBucket, interval
from airflow_provider_kwtsms.sandbox import Sandbox

USER, PASSWORD = "sandbox_user", "sandbox_pass"
KW1, KW2, KW3 = "96598765432", "96550001111", "96566002222"


def numbers(count: int, start: int = 0, prefix: str = "96550") -> list[str]:
    return [f"{prefix}{i:06d}" for i in range(start, start + count)]


@pytest.fixture
def sb(kwtsms_sandbox_factory) -> Sandbox:
    return kwtsms_sandbox_factory(balance=100_000, senders=["KWT-SMS", "MY-APP"], clock=frozen_clock())


def client_for(sb: Sandbox, vt: SandboxTime | None = None, **options) -> KwtSMSClient:
    vt = vt or SandboxTime(sb)
    # Pacing at the gateway's 5 a second on the sandbox's clock (no real time); its waits are kept
    # out of vt.sleeps, where these tests read the client's own waits.
    options.setdefault("pacer", vt.pacer(options.get("rate", MAX_RATE)))
    return KwtSMSClient(USER, PASSWORD, base_url=sb.url, clock=vt.clock, sleep=vt.sleep, **options)


def delivered(sb: Sandbox) -> Counter:
    return Counter(n for m in sb.messages() for n in m["mobile"])


# --- accounting ----------------------------------------------------------------------------


def test_every_input_is_sent_invalid_or_duplicate(sb):
    inputs = [
        KW1,
        "+965 9876 5432",
        "0096598765432",
        "user@example.com",
        "96522345678",
        "abc",
        f"{KW2}, {KW3}",
        "٩٦٥٩٨٧٦٥٤٣٢",
        "",
    ]
    result = client_for(sb).send(inputs, "Hello", test=False)
    plan = result.plan
    assert plan.recipients.valid == [KW1, KW2, KW3]
    assert {d.input for d in plan.recipients.duplicates} == {"+965 9876 5432", "0096598765432", "٩٦٥٩٨٧٦٥٤٣٢"}
    assert {i.input for i in plan.recipients.invalid} == {"user@example.com", "96522345678", "abc", ""}
    assert all(i.reason for i in plan.recipients.invalid)
    assert result.ok and result.numbers_sent == 3 and result.points_charged == 3
    assert result.sent == [(KW1, result.msg_ids[0]), (KW2, result.msg_ids[0]), (KW3, result.msg_ids[0])]
    assert delivered(sb) == Counter({KW1: 1, KW2: 1, KW3: 1})
    summary = result.to_dict()
    counts = summary["counts"]
    assert counts["inputs"] == 10  # the comma-separated entry is two recipients
    assert counts["sent"] + counts["invalid"] + counts["duplicates"] + counts["failed"] == counts["inputs"]
    assert summary["balance_after"] == 100_000 - 3 == sb.account()["available"]


def test_one_number_as_a_string_and_comma_separated_strings(sb):
    client = client_for(sb)
    assert client.send(KW1, "hi", test=True).numbers_sent == 1
    assert client.send(f"{KW2};{KW3}\n", "hi", test=True).numbers_sent == 2


def test_batches_of_200_with_progress_callback(sb):
    seen = []
    result = client_for(sb).send(
        numbers(450),
        "Hello",
        test=True,
        on_batch=lambda batch, done, total: seen.append((batch.index, done, total)),
    )
    assert [len(b) for b in result.plan.batches] == [200, 200, 50]
    assert seen == [(0, 1, 3), (1, 2, 3), (2, 3, 3)]
    assert [len(m["mobile"]) for m in sb.messages()] == [200, 200, 50]
    assert result.msg_ids == [m["msg_id"] for m in sb.messages()]
    assert dict(result.sent)[numbers(1, 449)[0]] == result.msg_ids[2]
    assert set(delivered(sb).values()) == {1} and len(delivered(sb)) == 450


def test_an_on_batch_error_stops_the_send_there_and_the_batches_sent_stay_sent(sb):
    # docs/client.md: "An exception raised by on_batch stops the send there and propagates: no
    # request starts after it; the ones already in flight finish (the batches sent stay sent)."
    # The user's callback fails after batch 2 of 10; up to 3 requests are in flight (rate 2).
    class Stop(Exception):
        pass

    vt = SandboxTime(sb)
    turns: list[int] = []  # one per request start: the pacer hands each its turn

    class CountingPacer(TokenBucket):
        def acquire(self) -> float:
            turns.append(1)
            return super().acquire()

    at_the_error: list[int] = []

    def on_batch(batch, done: int, total: int) -> None:
        if done == 2:
            at_the_error.append(len(turns))
            raise Stop("the CRM is down")

    client = client_for(sb, vt, pacer=CountingPacer(MAX_RATE, clock=vt.clock, sleep=vt.pace))
    with pytest.raises(Stop, match="the CRM is down"):
        client.send(numbers(2000), "Hello", test=True, on_batch=on_batch)
    assert len(turns) == at_the_error[0] < 10  # no request started after the error
    sizes = [len(m["mobile"]) for m in sb.messages()]
    assert sizes[:2] == [200, 200] and len(sizes) <= len(turns)  # turns: the balance read too
    assert set(delivered(sb).values()) == {1}  # nothing undone, nothing sent twice


def test_sender_and_test_flag_per_call_and_from_the_client(sb):
    client = client_for(sb, sender="MY-APP", test_mode=True)
    client.send(KW1, "a", test=None)
    client.send(KW2, "b", sender="KWT-SMS", test=False)
    first, second = sb.messages()
    assert (first["sender"], first["test"]) == ("MY-APP", True)
    assert (second["sender"], second["test"]) == ("KWT-SMS", False)


def test_default_country_turns_local_numbers_into_full_ones(sb):
    result = client_for(sb, default_country="KW").send(["98765432", "5000 1111"], "hi", test=True)
    assert result.plan.recipients.valid == [KW1, KW2]
    result = client_for(sb).send(["66002222"], "hi", test=True, default_country="965")
    assert result.plan.recipients.valid == [KW3]


# --- pages, estimate and cost control --------------------------------------------------------

PAGE_CASES = [
    ("a" * 160, "GSM-7", 1),
    ("a" * 161, "GSM-7", 2),
    ("a" * 306, "GSM-7", 2),
    ("a" * 307, "GSM-7", 3),
    ("€" * 80, "GSM-7", 1),
    ("€" * 81, "GSM-7", 2),
    ("a" * 153 * 6, "GSM-7", 6),
    ("س" * 70, "UCS-2", 1),
    ("س" * 71, "UCS-2", 2),
    ("س" * 134, "UCS-2", 2),
    ("س" * 135, "UCS-2", 3),
    ("س" * 67 * 6, "UCS-2", 6),
    ("مرحبا " * 11 + "abc", "UCS-2", 1),
]


@pytest.mark.parametrize(
    ("text", "encoding", "pages"), PAGE_CASES, ids=[f"{e}-{len(t)}-{p}p" for t, e, p in PAGE_CASES]
)
def test_gsm_and_arabic_pages_at_the_boundaries_match_the_charge(sb, text, encoding, pages):
    result = client_for(sb).send([KW1, KW2], text, test=False)
    assert (result.plan.info.encoding, result.plan.pages) == (encoding, pages)
    assert result.plan.estimate == 2 * pages == result.points_charged
    (message,) = sb.messages()
    assert (message["encoding"], message["pages"], message["points"]) == (encoding, pages, 2 * pages)


@pytest.mark.parametrize("text", ["a" * (153 * 6 + 1), "س" * (67 * 6 + 1), "€" * (153 * 6 // 2 + 1)])
def test_over_the_page_limit_is_refused_before_sending(sb, text):
    with pytest.raises(KwtSMSInputError, match=r"7 pages .* the limit is 6 pages"):
        client_for(sb).send(KW1, text)
    assert logged(sb) == []


def test_seven_pages_are_allowed_with_max_pages_7_and_eight_never(sb):
    # v4.1 documents 6 (the default); one client's changelog reports a live 7-page send (and 8
    # failing): max_pages=7 lets it be planned, and the documented gateway may still refuse it.
    plan = client_for(sb, max_pages=7).plan_send(KW1, "a" * (153 * 7))
    assert plan.pages == 7
    with pytest.raises(KwtSMSInputError, match=r"8 pages .* the limit is 7 pages"):
        client_for(sb, max_pages=7).send(KW1, "a" * (153 * 7 + 1))
    for bad in (8, 0, True, "7"):
        with pytest.raises(KwtSMSInputError, match=r"max_pages is .*from 1 to 7.*6 pages \(API v4.1, ERR012"):
            client_for(sb, max_pages=bad)
    assert logged(sb) == []


def test_max_pages_is_configurable(sb):
    with pytest.raises(KwtSMSInputError, match="the limit is 2 pages"):
        client_for(sb, max_pages=2).send(KW1, "a" * 307)


def test_estimate_and_max_credits(sb):
    client = client_for(sb)
    text = "a" * 200  # 2 pages
    expected = r"needs 6 credits \(3 numbers x 2 pages\), above max_credits=5"
    with pytest.raises(KwtSMSInputError, match=expected):
        client.send([KW1, KW2, KW3, KW1], text, max_credits=5)
    assert logged(sb) == []
    result = client.send([KW1, KW2, KW3], text, max_credits=6, test=False)
    assert result.plan.estimate == 6 == result.points_charged


def test_dry_run_validates_and_estimates_without_any_request(sb):
    result = client_for(sb).send([*numbers(450), "junk"], "س" * 71, dry_run=True)
    assert result.dry_run and result.batches == [] and not result.ok
    summary = result.to_dict()
    assert (summary["estimate"], summary["pages"], summary["encoding"]) == (900, 2, "UCS-2")
    assert summary["counts"]["invalid"] == 1 and summary["numbers_sent"] == 0
    assert logged(sb) == []
    with pytest.raises(KwtSMSInputError, match="max_credits"):
        client_for(sb).send(numbers(450), "hi", dry_run=True, max_credits=100)


@pytest.mark.parametrize(
    ("mobile", "message", "match"),
    [
        (["abc", "user@example.com"], "hi", r"no valid phone number among 2 inputs: 'abc'"),
        ([], "hi", "no recipients given"),
        (KW1, "😀 \u200b ", "message is empty after cleaning"),
        (KW1, None, "message must be text"),
        (KW1, "<p></p>", "message is empty after cleaning"),
    ],
)
def test_plans_that_cannot_be_sent_raise_before_any_request(sb, mobile, message, match):
    with pytest.raises(KwtSMSInputError, match=match):
        client_for(sb).send(mobile, message)
    assert logged(sb) == []


def test_the_no_valid_number_error_keeps_the_recipients(sb):
    with pytest.raises(KwtSMSInputError) as info:
        client_for(sb).send(["12", "34"], "hi")
    assert [i.input for i in info.value.recipients.invalid] == ["12", "34"]


def test_message_is_cleaned_before_measuring_and_sending(sb):
    result = client_for(sb).send(KW1, "Code: ١٢٣ <b>now</b> 😀", test=True)
    assert result.plan.message == "Code: 123 now"
    assert sb.messages()[0]["message"] == "Code: 123 now" and result.plan.info.encoding == "GSM-7"


# --- gateway errors in a bulk send -------------------------------------------------------------


def test_an_account_level_error_stops_the_send_after_one_request(sb):
    result = client_for(sb).send(numbers(450), "hi", sender="NOT-MINE")
    assert [(b.state, b.error_code, b.attempted) for b in result.batches] == [
        ("failed", "ERR008", True),
        ("failed", "ERR008", False),
        ("failed", "ERR008", False),
    ]
    assert len(logged_sends(sb)) == 1
    assert result.permanent_error.code == "ERR008" and result.permanent_error.permanent
    with pytest.raises(KwtSMSError) as info:
        result.raise_for_status()
    assert info.value.code == "ERR008"
    assert len(result.failed) == 450 and result.to_dict()["counts"]["not_attempted"] == 250
    assert result.to_dict()["error"]["code"] == "ERR008"


def test_balance_running_out_midway_stops_the_rest(kwtsms_sandbox_factory):
    sb = kwtsms_sandbox_factory(rate=None, balance=250)
    result = client_for(sb).send(numbers(450), "hi", test=False)
    assert [(b.state, b.error_code) for b in result.batches] == [
        ("sent", None),
        ("failed", "ERR011"),
        ("failed", "ERR011"),
    ]
    assert result.batches[2].attempted is False  # 50 would fit, but the order is kept: stop
    assert result.numbers_sent == 200 and result.balance_after == 50.0
    assert len([r for r in logged(sb) if r["endpoint"] == "send"]) == 2


def test_a_batch_level_error_fails_only_that_batch(sb):
    # The account covers Kuwait only: the Qatari batch fails with ERR026, the others go out.
    qatar = numbers(200, prefix="97433")
    result = client_for(sb).send(numbers(200) + qatar + numbers(10, 500), "hi", test=True)
    assert [(b.state, b.error_code) for b in result.batches] == [
        ("sent", None),
        ("failed", "ERR026"),
        ("sent", None),
    ]
    assert result.permanent_error.code == "ERR026"
    assert {n for n, code in result.failed} == set(qatar) and {c for _, c in result.failed} == {"ERR026"}
    assert len(delivered(sb)) == 210


def test_queue_full_storm_then_success(kwtsms_sandbox_factory):
    # The queue holds one message and drains one every 4 s (sandbox time): batches 2 and 3 meet
    # ERR013 and are retried after backoff until the queue has room.
    sb = kwtsms_sandbox_factory(rate=None, balance=100_000, queue_size=1, drain_rate=0.25)
    vt = SandboxTime(sb)
    result = client_for(sb, vt).send(numbers(600), "hi", test=True)
    assert result.ok and len(result.msg_ids) == 3
    codes = [r["code"] for r in logged_sends(sb)]
    assert codes.count("ERR013") >= 2 and codes.count("OK") == 3
    assert set(delivered(sb).values()) == {1}
    waits = [s for s in vt.sleeps if s >= 2.5]  # equal jitter: at least half of 5 s
    assert len(waits) == codes.count("ERR013")


def test_queue_that_never_drains_gives_up_after_the_bounded_retries(kwtsms_sandbox_factory):
    sb = kwtsms_sandbox_factory(rate=None, balance=100_000, queue_size=1, drain_rate=0)
    vt = SandboxTime(sb)
    policy = RetryPolicy(queue_full_retries=4, queue_full_base=1.0, queue_full_cap=4.0)
    result = client_for(sb, vt, retry_policy=policy).send(numbers(600), "hi", test=True)
    assert [(b.state, b.error_code, b.attempted) for b in result.batches] == [
        ("sent", None, True),
        ("failed", "ERR013", True),
        ("failed", "ERR013", False),
    ]
    assert [r["code"] for r in logged_sends(sb)] == ["OK"] + ["ERR013"] * 5
    assert max(vt.sleeps) <= 4.0
    assert result.permanent_error is None and result.first_error.retryable


def test_err028_is_waited_out_once_for_a_single_batch(sb):
    vt = SandboxTime(sb)
    client = client_for(sb, vt)
    client.send(KW1, "one", test=True)
    result = client.send(KW1, "two", test=True)
    assert result.ok
    assert [r["code"] for r in logged(sb)] == ["OK", "ERR028", "OK"]
    assert 15.0 < max(vt.sleeps) < 16.5


def test_an_alert_that_loses_the_race_to_other_alerts_waits_again(sb):
    # A burst to one on-call number from several processes: while this alert waits out ERR028,
    # another process's alert takes the number's next slot, then another's. It waits its turn
    # (client.send: the path the notifier takes; tests/test_notifier.py sends four at once).
    vt = SandboxTime(sb)
    rival = client_for(sb, vt)
    client = client_for(sb, vt)
    client.send(KW1, "first", test=True)
    rivals = iter(["second", "third"])

    def sleep(seconds: float) -> None:
        vt.sleep(seconds)
        if (text := next(rivals, None)) is not None:
            rival.send_batch([KW1], text, sender="KWT-SMS", test=True)

    client._sleep = sleep
    result = client.send(KW1, "fourth", test=True)
    assert result.ok
    assert [m["message"] for m in sb.messages()] == ["first", "second", "third", "fourth"]
    assert [r["code"] for r in logged(sb)] == ["OK", "ERR028", "OK", "ERR028", "OK", "ERR028", "OK"]


def test_err028_waits_are_bounded(sb):
    # A sleep that does not move the sandbox clock: the 15 s never pass; after its waits the
    # alert fails with ERR028, a retryable error that says what happened.
    waits: list[float] = []
    vt = SandboxTime(sb)  # only the pacing moves the sandbox clock: 0.2 s a request
    client = KwtSMSClient(
        USER, PASSWORD, base_url=sb.url, clock=vt.clock, sleep=waits.append, pacer=vt.pacer()
    )
    client.send(KW1, "first", test=True)
    result = client.send(KW1, "second", test=True)
    assert [(b.state, b.error_code) for b in result.batches] == [("failed", "ERR028")]
    assert result.first_error.code == "ERR028" and result.first_error.retryable
    assert len(waits) == client.policy.same_number_retries == 3
    assert [r["code"] for r in logged(sb)] == ["OK"] + ["ERR028"] * 4


def test_send_batch_alone_does_not_wait_err028_out(sb):
    # send_batch is one batch through the engine's step; the wait of ERR028 is the send's.
    vt = SandboxTime(sb)
    client = client_for(sb, vt)
    client.send_batch([KW1], "first", sender="KWT-SMS", test=True)
    with pytest.raises(KwtSMSError) as info:
        client.send_batch([KW1], "second", sender="KWT-SMS", test=True)
    assert info.value.code == "ERR028" and vt.sleeps == []


def test_err028_batches_go_last_so_the_others_do_not_wait(sb):
    vt = SandboxTime(sb)
    client = client_for(sb, vt)
    client.send(numbers(200), "first", test=True)
    order = []
    result = client.send(
        numbers(450), "second", test=True, on_batch=lambda b, done, total: order.append(b.index)
    )
    assert order == [1, 2, 0] and result.ok
    second = [m for m in sb.messages() if m["message"] == "second"]
    assert [m["mobile"][0] for m in second] == [numbers(1, 200)[0], numbers(1, 400)[0], numbers(1)[0]]
    assert delivered(sb)[numbers(1)[0]] == 2  # once per send: never twice for one send
    assert [r["code"] for r in logged(sb)].count("ERR028") == 1


def test_err028_twice_fails_that_batch_only(sb):
    # A sleep that does not move the sandbox clock: the 15 s never pass, the batch fails with
    # ERR028 (batch-level) and the send goes on.
    waits: list[float] = []
    vt = SandboxTime(sb)  # only the pacing moves the sandbox clock: 0.2 s a request
    client = KwtSMSClient(
        USER, PASSWORD, base_url=sb.url, clock=vt.clock, sleep=waits.append, pacer=vt.pacer()
    )
    client.send(numbers(200), "first", test=True)
    result = client.send(numbers(250), "second", test=True)
    assert [(b.state, b.error_code) for b in result.batches] == [("failed", "ERR028"), ("sent", None)]
    assert any(w >= 15 for w in waits)
    assert result.first_error.code == "ERR028" and result.first_error.retryable


# --- pacing --------------------------------------------------------------------------------


def test_pacing_uses_the_cap_fully_and_never_exceeds_it(kwtsms_sandbox_factory):
    """100 batches at the documented 5 req/s, against the firewall and a strict 429 limiter."""
    # One clock for the client and the sandbox: only the client's sleeps move it, so the gateway
    # judges arrivals exactly as paced, whatever the machine's load.
    clock = FakeTime(1_700_000_000.0)
    sb = kwtsms_sandbox_factory(rate=MAX_RATE, rate_tolerance=0.5, balance=100_000, clock=clock)
    client = KwtSMSClient(USER, PASSWORD, base_url=sb.url, rate=MAX_RATE, clock=clock, sleep=clock.sleep)
    result = client.send(numbers(20_000), "Hello", test=True)
    assert result.ok and len(result.batches) == 100
    log = logged_sends(sb)
    assert [r["code"] for r in log] == ["OK"] * 100  # not one 429, not one block
    firewall = sb.firewall_state()
    assert firewall["blocks"] == 0 and firewall["max_in_one_second"] == 5
    times = [r["time"] for r in log]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert min(gaps) >= 1 / MAX_RATE - 1e-6  # never above the cap, over any window
    assert max(sum(1 for t in times if start <= t < start + 1) for start in times) == 5
    # and the cap used fully, less the firewall's jitter slack (six starts in 1.1 s: 4.55 a second)
    assert (len(times) - 1) / (times[-1] - times[0]) >= 0.999 / interval(MAX_RATE)


def test_reads_and_sends_share_one_bucket(kwtsms_sandbox_factory):
    clock = FakeTime(1_700_000_000.0)
    sb = kwtsms_sandbox_factory(rate=MAX_RATE, rate_tolerance=0.5, balance=100_000, clock=clock)
    client = KwtSMSClient(USER, PASSWORD, base_url=sb.url, rate=MAX_RATE, clock=clock, sleep=clock.sleep)
    for i in range(5):
        client.balance()
        client.send_batch(numbers(1, i), "hi", sender="KWT-SMS", test=True)
    assert "RATE_LIMITED" not in [r["code"] for r in logged(sb)]
    assert sb.firewall_state()["blocks"] == 0


# --- summary and logging ----------------------------------------------------------------------


def test_to_dict_is_json_and_caps_per_number_lists(sb):
    inputs = numbers(300) + [f"bad-{i}" for i in range(30)] + numbers(20)
    result = client_for(sb).send(inputs, "hi", test=True)
    full = json.loads(json.dumps(result.to_dict()))
    assert full["counts"] == {
        "inputs": 350,
        "valid": 300,
        "invalid": 30,
        "duplicates": 20,
        "suppressed": 0,
        "sent": 300,
        "failed": 0,
        "not_attempted": 0,
        "uncertain": 0,
        "gateway_dropped": 0,
    }
    assert full["truncated"] is False and len(full["invalid"]) == 30
    assert full["batches"][0] == {
        "index": 0,
        "state": "sent",
        "msg_id": result.msg_ids[0],
        "numbers": 200,
        "points": 0,
        "error_code": None,
        "attempted": True,
    }
    assert full["test"] is True and full["points_charged"] == 0  # test sends are not charged here
    small = result.to_dict(list_limit=5)
    assert small["truncated"] is True and len(small["invalid"]) == 5 and len(small["duplicates"]) == 5
    assert small["counts"] == full["counts"]
    assert "numbers_sent" in small and not any("sent_numbers" in k for k in small)


def test_one_info_line_per_batch_without_numbers_or_text(sb, caplog):
    caplog.set_level(logging.INFO, logger="airflow_provider_kwtsms")
    targets = numbers(450)
    client_for(sb).send(targets, "secret text", test=True)
    records = [r for r in caplog.records if r.name.startswith("airflow_provider_kwtsms")]
    lines = [r.getMessage() for r in records]
    assert len(lines) == 3 and all(r.levelno == logging.INFO for r in records)
    assert "batch 3/3" in lines[-1]
    for line in lines:
        assert "secret text" not in line and not any(number in line for number in targets)


# --- property-based: every input accounted for -------------------------------------------------

_POOL = [
    KW1,
    KW2,
    KW3,
    "+965 9876 5432",
    "00965 5000 1111",
    "٩٦٥٦٦٠٠٢٢٢٢",
    "971501234567",
    "+1 650 253 0000",
    "96522345678",
    "user@example.com",
    "",
    "abc",
    "123",
    "+965",
    "96612345678",
]
_inputs = st.lists(
    st.one_of(st.sampled_from(_POOL), st.text(max_size=20), st.integers(min_value=0, max_value=10**15)),
    max_size=30,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raws=_inputs)
def test_property_every_input_accounted_for_exactly_once(kwtsms_sandbox_factory, raws):
    sb = _shared_sandbox(kwtsms_sandbox_factory)
    sb.reset()
    client = client_for(sb)
    try:
        result = client.send(raws, "hello", test=True)
    except KwtSMSInputError as exc:
        recipients = exc.recipients
        assert not recipients.valid
        assert len(recipients.invalid) == recipients.total_inputs
        assert logged(sb) == []
        return
    counts = result.to_dict()["counts"]
    assert counts["sent"] + counts["failed"] + counts["uncertain"] == counts["valid"]
    assert counts["valid"] + counts["invalid"] + counts["duplicates"] == counts["inputs"]
    sent_to = delivered(sb)
    dropped = {r["number"] for m in sb.messages() for r in m["rejected"]}
    # Each valid number reached the gateway at most once; every one is accounted for as taken,
    # failed (with the batch's code) or dropped by the gateway inside an accepted batch (counted).
    assert set(sent_to.values()) <= {1}
    assert set(sent_to) | {n for n, _ in result.failed} | dropped == set(result.plan.recipients.valid)
    assert result.numbers_sent == len(sent_to) and counts["gateway_dropped"] == len(dropped)


_SHARED: dict[str, Sandbox] = {}


def _shared_sandbox(factory) -> Sandbox:
    # One sandbox per hypothesis run (the fixture is per test function, examples share it).
    sb = _SHARED.get("sb")
    if sb is None or sb._server is None:
        sb = _SHARED["sb"] = factory(rate=None, balance=10**9, coverage=["965", "971", "1"])
    return sb
