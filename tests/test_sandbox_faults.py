"""Injected faults and the request-rate cap, over real HTTP."""

from __future__ import annotations

import pytest
import requests
from sandbox_helpers import FakeTime

from airflow_provider_kwtsms.sandbox import Sandbox
from airflow_provider_kwtsms.sandbox.server import STRICT_RATE_TOLERANCE as STRICT

CREDS = {"username": "sandbox_user", "password": "sandbox_pass"}
SEND = {**CREDS, "sender": "KWT-SMS", "mobile": "96598765432", "message": "hi", "test": "0"}


def post(sb: Sandbox, endpoint: str, body: dict, timeout: float = 5) -> requests.Response:
    return requests.post(f"{sb.url}/API/{endpoint}/", json=body, timeout=timeout)


@pytest.fixture
def sb(kwtsms_sandbox_factory) -> Sandbox:
    return kwtsms_sandbox_factory(rate=None, duplicate_window=0)


def test_latency_fault_delays_then_answers(sb):
    sb.inject_fault("latency:2")
    with pytest.raises(requests.ReadTimeout):  # the answer is held back longer than we wait
        post(sb, "send", SEND, timeout=0.3)
    assert post(sb, "send", SEND, timeout=5).json()["result"] == "OK"  # times=1: used up


def test_drop_before_closes_without_processing(sb):
    sb.inject_fault("drop_before")
    with pytest.raises(requests.ConnectionError):
        post(sb, "send", SEND)
    assert sb.messages() == [] and sb.account()["available"] == 1000
    assert post(sb, "send", SEND).json()["result"] == "OK"  # the server lives on


def test_drop_after_accept_charges_then_closes(sb):
    sb.inject_fault("drop_after_accept")
    with pytest.raises(requests.ConnectionError):
        post(sb, "send", SEND)
    assert len(sb.messages()) == 1 and sb.account()["available"] == 999
    assert sb.requests()[-1]["fault"] == "drop_after_accept"


@pytest.mark.parametrize("status", [500, 502, 503])
def test_http_5xx_faults_are_not_processed(sb, status):
    sb.inject_fault(f"http_{status}")
    response = post(sb, "send", SEND)
    assert response.status_code == status
    assert sb.messages() == [] and sb.account()["available"] == 1000


def test_html_error_page(sb):
    sb.inject_fault("html_error")
    response = post(sb, "send", SEND)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    with pytest.raises(ValueError):
        response.json()
    assert sb.messages() == []


def test_malformed_json_after_processing(sb):
    sb.inject_fault("malformed_json")
    response = post(sb, "send", SEND)
    assert response.status_code == 200 and "json" in response.headers["Content-Type"]
    with pytest.raises(ValueError):
        response.json()
    assert len(sb.messages()) == 1  # it was sent: the client cannot know from the answer


def test_faults_match_endpoint_and_times(sb):
    sb.inject_fault("http_503", endpoint="balance", times=2)
    assert post(sb, "send", SEND).status_code == 200  # other endpoint untouched
    assert [post(sb, "balance", CREDS).status_code for _ in range(3)] == [503, 503, 200]
    sb.advance(1)  # the firewall blocks a 6th request within one second
    sb.inject_fault("http_500", endpoint="*", times=-1)
    assert post(sb, "senderid", CREDS).status_code == 500
    assert post(sb, "coverage", CREDS).status_code == 500
    sb.clear_faults()
    assert post(sb, "coverage", CREDS).status_code == 200


def test_faults_over_http(sb):
    answer = requests.post(
        f"{sb.url}/sandbox/faults", json={"kind": "http_502", "endpoint": "send"}, timeout=5
    ).json()
    assert answer["result"] == "OK" and answer["faults"][0]["kind"] == "http_502"
    assert post(sb, "send", SEND).status_code == 502
    bad = requests.post(f"{sb.url}/sandbox/faults", json={"kind": "explode"}, timeout=5)
    assert bad.status_code == 400 and "unknown fault kind" in bad.json()["description"]
    bad = requests.post(f"{sb.url}/sandbox/faults", json={"kind": "latency:x"}, timeout=5)
    assert bad.status_code == 400


def test_bad_faults_in_python():
    sandbox = Sandbox()
    with pytest.raises(ValueError, match="unknown fault kind"):
        sandbox.inject_fault("boom")
    with pytest.raises(ValueError, match="endpoint"):
        sandbox.inject_fault("http_500", endpoint="report")
    with pytest.raises(ValueError, match="times"):
        sandbox.inject_fault("http_500", times=0)


def test_legacy_requests_get_faults_too(sb):
    sb.inject_fault("http_503", endpoint="balance")
    url = f"{sb.url}/API/balance/?username=myuser&password=mypass"
    assert requests.get(url, timeout=5).status_code == 503


# --- the rate cap --------------------------------------------------------------------------------


def test_over_the_rate_gets_429_retry_after_and_nothing_processed(kwtsms_sandbox_factory):
    clock = FakeTime(1_700_000_000.0)
    sb = kwtsms_sandbox_factory(rate=2.0, rate_tolerance=STRICT, clock=clock, duplicate_window=0)
    assert post(sb, "send", SEND).status_code == 200
    clock.now += 0.1  # 100 ms later: far too soon at 2 requests per second
    refused = post(sb, "send", SEND)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    body = refused.json()
    assert body["result"] == "ERROR" and body["code"] == "RATE_LIMITED"
    assert body["retry_after"] == pytest.approx(0.15)  # allowed from 0.25 s (tolerance: half a gap)
    assert len(sb.messages()) == 1 and sb.account()["available"] == 999
    assert [r["code"] for r in sb.requests()] == ["OK", "RATE_LIMITED"]


def test_a_client_paced_at_the_rate_is_never_refused_even_with_jitter(kwtsms_sandbox_factory):
    clock = FakeTime(1_700_000_000.0)
    sb = kwtsms_sandbox_factory(rate=2.0, rate_tolerance=STRICT, clock=clock, duplicate_window=0)
    start = clock.now
    # Request starts exactly 0.5 s apart; each arrives 0 to 0.24 s late (network delay varying by
    # less than half a gap), the worst case being a late arrival followed by a prompt one.
    delays = [0.0, 0.24, 0.0, 0.24, 0.0, 0.1, 0.24, 0.01, 0.2, 0.0]
    for k, delay in enumerate(delays):
        clock.now = start + k * 0.5 + delay
        assert post(sb, "balance", CREDS).status_code == 200, k


def test_delay_varying_by_more_than_half_a_gap_can_be_refused(kwtsms_sandbox_factory):
    clock = FakeTime(1_700_000_000.0)
    sb = kwtsms_sandbox_factory(rate=2.0, rate_tolerance=STRICT, clock=clock)
    start = clock.now
    clock.now = start + 0.3  # request 0 arrives 0.3 s late ...
    assert post(sb, "balance", CREDS).status_code == 200
    clock.now = start + 0.5  # ... request 1 on time: only 0.2 s after it
    assert post(sb, "balance", CREDS).status_code == 429


def test_a_client_faster_than_the_rate_is_refused_soon(kwtsms_sandbox_factory):
    clock = FakeTime(1_700_000_000.0)
    sb = kwtsms_sandbox_factory(rate=2.0, rate_tolerance=STRICT, clock=clock)
    statuses = []
    for _ in range(6):
        clock.now += 0.34  # about 3 requests per second
        statuses.append(post(sb, "balance", CREDS).status_code)
    assert statuses[:2] == [200, 200] and 429 in statuses


def test_rate_is_per_account(kwtsms_sandbox_factory):
    clock = FakeTime(1_700_000_000.0)
    sb = kwtsms_sandbox_factory(rate=2.0, rate_tolerance=STRICT, clock=clock)
    assert post(sb, "balance", CREDS).status_code == 200
    assert post(sb, "balance", {"username": "myuser", "password": "mypass"}).status_code == 200
    assert post(sb, "balance", CREDS).status_code == 429


def test_the_429_tool_lets_a_burst_of_11_through_then_holds_the_rate(kwtsms_sandbox_factory):
    clock = FakeTime(1_700_000_000.0)  # frozen: every request arrives at the same instant
    # The subject is the 429 tool's burst; the firewall would block the 6th request at once.
    sb = kwtsms_sandbox_factory(rate=2.0, clock=clock, firewall=False)
    statuses = [post(sb, "balance", CREDS).status_code for _ in range(12)]
    assert statuses == [200] * 11 + [429]  # a burst of 11, then the long-run rate holds
    clock.now += 0.5
    assert post(sb, "balance", CREDS).status_code == 200  # one interval later, one more


def test_the_official_client_verify_then_send_works_against_the_default_sandbox(kwtsms_sandbox_factory):
    import kwtsms._core as seed_core
    from kwtsms import KwtSMS

    sb = kwtsms_sandbox_factory()  # every default, the rate cap included
    saved, seed_core.BASE_URL = seed_core.BASE_URL, sb.url + "/API/"
    try:
        client = KwtSMS("sandbox_user", "sandbox_pass", test_mode=True, log_file="")
        ok, balance, _ = client.verify()
        result = client.send("96598765432", "Hello")
    finally:
        seed_core.BASE_URL = saved
    assert ok and balance == 1000
    assert result["result"] == "OK", result
    assert "RATE_LIMITED" not in [r["code"] for r in sb.requests()]


def test_the_429_tool_is_off_by_default_and_with_rate_none_or_zero(kwtsms_sandbox_factory):
    for options in ({}, {"rate": None}, {"rate": 0}):
        # The subject is the 429 tool being off; the firewall would block the 6th request.
        sb = kwtsms_sandbox_factory(firewall=False, **options)
        assert all(post(sb, "balance", CREDS).status_code == 200 for _ in range(10))


# -- a fault is used up only by a request it can apply to (issue 21, defect 9) -----------------
BAD_PASSWORD = {**SEND, "password": "wrong"}  # ERR003: refused before anything is processed


@pytest.mark.parametrize("kind", ["drop_after_accept", "malformed_json"])
def test_a_refused_request_leaves_an_accepted_answer_fault_for_the_accepted_one(sb, kind):
    sb.inject_fault(kind)
    refused = post(sb, "send", BAD_PASSWORD)
    assert refused.json()["code"] == "ERR003"  # answered whole: the fault was not spent on it
    assert sb.requests()[-1]["fault"] is None
    assert sb.faults.pending()[0]["kind"] == kind
    with pytest.raises((requests.ConnectionError, ValueError)):  # dropped, or JSON cut short
        post(sb, "send", SEND).json()
    assert sb.requests()[-1]["fault"] == kind and sb.faults.pending() == []
    assert len(sb.messages()) == 1  # the accepted send was processed


def test_latency_is_not_spent_on_a_refused_request(sb):
    sb.inject_fault("latency:2")
    assert post(sb, "send", BAD_PASSWORD, timeout=1).json()["code"] == "ERR003"  # not delayed
    with pytest.raises(requests.ReadTimeout):
        post(sb, "send", SEND, timeout=0.3)


@pytest.mark.parametrize("kind", ["drop_before", "http_503", "html_error"])
def test_arrival_faults_hit_any_request_of_the_endpoint(sb, kind):
    # They happen before the gateway reads the request, so a request it would refuse takes them.
    sb.inject_fault(kind)
    with pytest.raises((requests.ConnectionError, ValueError)):
        response = post(sb, "send", BAD_PASSWORD)
        assert response.json()["code"] == "ERR003"  # an http_503 text body: ValueError here
    assert sb.requests()[-1]["fault"] == kind and sb.faults.pending() == []
