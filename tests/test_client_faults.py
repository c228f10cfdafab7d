"""Network and server faults over real HTTP: which may have reached the server, and no double send.

A send whose request may have been processed (dropped connection, read timeout, 5xx, an
unreadable body) ends "uncertain" and is never sent again by the client; one that certainly was
not processed (no connection, connect timeout, 429) is retried. Read-only calls are retried on
every network fault and 5xx.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from sandbox_helpers import MAX_RATE, SandboxTime, frozen_clock, logged, logged_sends

from airflow_provider_kwtsms.errors import KwtSMSNetworkError
from airflow_provider_kwtsms.gateway.client import KwtSMSClient, RetryPolicy
from airflow_provider_kwtsms.sandbox import Sandbox

USER, PASSWORD = "sandbox_user", "sandbox_pass"


def numbers(count: int, start: int = 0) -> list[str]:
    return [f"96550{i:06d}" for i in range(start, start + count)]


@pytest.fixture
def sb(kwtsms_sandbox_factory) -> Sandbox:
    return kwtsms_sandbox_factory(rate=None, balance=100_000)


def client_for(sb: Sandbox, vt: SandboxTime | None = None, **options) -> KwtSMSClient:
    vt = vt or SandboxTime(sb)
    # Pacing is not under test here: at 5 a second on the sandbox's clock, its waits kept out of vt.sleeps.
    options.setdefault("pacer", vt.pacer())
    options.setdefault("timeout", (2.0, 2.0))
    return OneAtATime(USER, PASSWORD, base_url=sb.url, clock=vt.clock, sleep=vt.sleep, **options)


class OneAtATime(KwtSMSClient):
    """One request at a time: each fault lands on the batch it is meant for (the faults are taken
    by the requests in the order they arrive). Requests in flight: tests/test_in_flight.py."""

    max_in_flight = 1


# kind -> (error code, does the sandbox process it?)
SEND_FAULTS = {
    "drop_before": ("NETWORK", False),
    "drop_after_accept": ("NETWORK", True),
    "http_500": ("HTTP_500", False),
    "http_502": ("HTTP_502", False),
    "http_503": ("HTTP_503", False),
    "html_error": ("BAD_ANSWER", False),
    "malformed_json": ("BAD_ANSWER", True),
    "latency:0.8": ("NETWORK", True),  # longer than the 0.3 s read timeout below
}


@pytest.mark.parametrize("kind", list(SEND_FAULTS))
def test_a_send_fault_leaves_that_batch_uncertain_and_never_sends_it_twice(sb, kind):
    code, processed = SEND_FAULTS[kind]
    sb.inject_fault(kind, endpoint="send", times=1)
    client = client_for(sb, timeout=(2.0, 0.3))
    result = client.send(numbers(450), "Hello", test=True)
    first, *rest = result.batches
    assert first.state == "uncertain"
    assert first.may_have_reached_server is True
    assert first.error_code == code
    err = first.error()
    assert isinstance(err, KwtSMSNetworkError) and err.may_have_reached_server
    assert [b.state for b in rest] == ["sent", "sent"]  # one lost answer does not stop the send
    assert result.uncertain == numbers(200)
    assert not result.ok and result.permanent_error is None
    assert result.first_error.code == code
    if kind.startswith("latency"):
        time.sleep(0.8)  # the slow request is still being processed by the sandbox
    sends = [r for r in logged(sb) if r["endpoint"] == "send"]
    assert len(sends) == 3  # the uncertain batch was not repeated
    counts = Counter(n for m in sb.messages() for n in m["mobile"])
    assert max(counts.values()) == 1
    assert (counts[numbers(1)[0]] == 1) is processed  # processed or not: the client cannot know


def test_send_batch_with_a_short_latency_is_simply_sent(sb):
    sb.inject_fault("latency:0.2", endpoint="send")
    batch = client_for(sb, timeout=(2.0, 2.0)).send_batch(numbers(3), "hi", sender="KWT-SMS", test=True)
    assert batch.state == "sent" and batch.msg_id == sb.messages()[0]["msg_id"]


def test_three_uncertain_batches_in_a_row_stop_the_send(sb):
    sb.inject_fault("http_502", endpoint="send", times=3)
    result = client_for(sb).send(numbers(1000), "Hello", test=True)
    assert [b.state for b in result.batches] == ["uncertain"] * 3 + ["failed"] * 2
    assert [b.attempted for b in result.batches] == [True] * 3 + [False] * 2
    assert result.batches[4].error_code == "HTTP_502"
    assert "Not attempted" in result.batches[4].error_description
    assert len([r for r in logged(sb) if r["endpoint"] == "send"]) == 3
    summary = result.to_dict()
    assert summary["counts"]["uncertain"] == 600 and summary["counts"]["not_attempted"] == 400


def test_an_uncertain_batch_between_good_ones_resets_the_count(sb):
    client = client_for(sb, retry_policy=RetryPolicy(max_consecutive_uncertain=2))
    sb.inject_fault("http_500", endpoint="send", times=1)
    result = client.send(numbers(600), "Hello", test=True)
    assert [b.state for b in result.batches] == ["uncertain", "sent", "sent"]


@pytest.mark.parametrize(
    "kind",
    [
        "drop_before",
        "drop_after_accept",
        "http_500",
        "http_502",
        "http_503",
        "html_error",
        "malformed_json",
        "latency:0.6",
    ],
)
def test_read_only_calls_retry_through_faults(sb, kind):
    vt = SandboxTime(sb)
    sb.inject_fault(kind, endpoint="balance", times=2)
    client = client_for(sb, vt, timeout=(2.0, 0.3), max_retries=3)
    assert client.balance().available == 100_000
    if kind.startswith("latency"):
        time.sleep(0.6)
    assert [r["endpoint"] for r in logged(sb)] == ["balance"] * 3
    # Full jitter: each wait is somewhere in [0, base * 2**n].
    assert len(vt.sleeps) == 2
    assert 0 <= vt.sleeps[0] <= 0.5 and 0 <= vt.sleeps[1] <= 1.0


def test_read_only_calls_give_up_after_max_retries(sb):
    vt = SandboxTime(sb)
    sb.inject_fault("http_503", endpoint="status", times=-1)
    with pytest.raises(KwtSMSNetworkError) as info:
        client_for(sb, vt, max_retries=2).status("a" * 32)
    assert info.value.code == "HTTP_503" and info.value.http_status == 503
    assert info.value.may_have_reached_server is True
    assert len(logged(sb)) == 3 and len(vt.sleeps) == 2


def test_backoff_is_capped(sb):
    vt = SandboxTime(sb)
    sb.inject_fault("http_500", endpoint="coverage", times=-1)
    policy = RetryPolicy(backoff_base=1.0, backoff_cap=2.0)
    with pytest.raises(KwtSMSNetworkError):
        client_for(sb, vt, max_retries=6, retry_policy=policy).coverage()
    assert len(vt.sleeps) == 6 and max(vt.sleeps) <= 2.0


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def retries_logged(caplog) -> int:
    return sum(
        1
        for r in caplog.records
        if r.name == "airflow_provider_kwtsms.send.engine" and "retry" in r.getMessage()
    )


def test_connection_refused_is_certainly_not_processed_and_retried(caplog):
    vt = SandboxTime()
    client = KwtSMSClient(
        USER,
        PASSWORD,
        base_url=f"http://127.0.0.1:{_dead_port()}",
        clock=vt.clock,
        sleep=vt.sleep,
        max_retries=2,
    )
    with pytest.raises(KwtSMSNetworkError) as info:
        client.send_batch(numbers(2), "hi", sender="KWT-SMS", test=True)
    assert info.value.may_have_reached_server is False and info.value.code == "NETWORK"
    assert "safe to retry" in info.value.action
    assert retries_logged(caplog) == 2  # retried, since nothing could have been sent
    # Five batches, up to client.max_in_flight (3) requests at once: the batches whose turn came
    # while the first one was still retrying may have gone too; none starts after an answer said
    # the server is down.
    assert client.max_in_flight == 3
    result = client.send(numbers(1000), "hi", test=True)
    assert [b.state for b in result.batches] == ["failed"] * 5
    attempted = [b.attempted for b in result.batches]
    assert attempted[0] is True and attempted[3:] == [False, False], attempted  # the server is down: stop
    assert not any(b.may_have_reached_server for b in result.batches)
    assert result.uncertain == []


def test_connect_timeout_is_certainly_not_processed(caplog, full_backlog_port):
    # A listening socket whose accept queue is full: the kernel drops new SYNs, so connecting times out.
    port = full_backlog_port
    vt = SandboxTime()
    client = KwtSMSClient(
        USER,
        PASSWORD,
        base_url=f"http://127.0.0.1:{port}",
        timeout=(0.2, 1.0),
        clock=vt.clock,
        sleep=vt.sleep,
        max_retries=1,
    )
    with pytest.raises(KwtSMSNetworkError) as info:
        client.send_batch(numbers(1), "hi", sender="KWT-SMS", test=True)
    assert info.value.may_have_reached_server is False
    assert "could not connect within 0.2 s" in info.value.description
    assert retries_logged(caplog) == 1


def test_rate_limited_sends_wait_and_go_through_exactly_once(kwtsms_sandbox_factory):
    # The client paces at 5 req/s, the sandbox's 429 tool allows 2: it answers 429 (nothing
    # processed) and the client waits the Retry-After and goes on. Sandbox time only.
    sb = kwtsms_sandbox_factory(rate=2.0, rate_tolerance=0.5, balance=100_000, clock=frozen_clock())
    vt = SandboxTime(sb)
    client = KwtSMSClient(USER, PASSWORD, base_url=sb.url, rate=MAX_RATE, clock=vt.clock, sleep=vt.sleep)
    result = client.send(numbers(2000), "Hello", test=True)
    assert result.ok and len(result.msg_ids) == 10
    log = logged_sends(sb)
    assert sum(1 for r in log if r["code"] == "RATE_LIMITED") > 0
    assert sum(1 for r in log if r["code"] == "OK") == 10
    counts = Counter(n for m in sb.messages() for n in m["mobile"])
    assert len(counts) == 2000 and set(counts.values()) == {1}
    assert sb.firewall_state()["blocks"] == 0


def test_rate_limit_retries_are_bounded(kwtsms_sandbox_factory):
    sb = kwtsms_sandbox_factory(rate=0.5, rate_tolerance=0.5, clock=frozen_clock())
    vt = SandboxTime(sb)
    client = KwtSMSClient(
        USER,
        PASSWORD,
        base_url=sb.url,
        rate=MAX_RATE,
        clock=vt.clock,
        sleep=vt.sleep,
        retry_policy=RetryPolicy(rate_limited_retries=0),
    )
    client.balance()
    with pytest.raises(KwtSMSNetworkError) as info:
        client.balance()
    assert info.value.code == "RATE_LIMITED" and info.value.may_have_reached_server is False


def test_wrong_base_url_path_gives_the_gateway_404_without_retry(sb):
    vt = SandboxTime(sb)
    client = KwtSMSClient(USER, PASSWORD, base_url=sb.url + "/wrong", clock=vt.clock, sleep=vt.sleep)
    with pytest.raises(Exception) as info:
        client.balance()
    assert "NOT_FOUND" in str(info.value) or "HTTP_404" in str(info.value)
    assert vt.sleeps == []


class _Fixed(BaseHTTPRequestHandler):
    status = 200
    body = b""
    headers_out: ClassVar[dict] = {}
    hits = 0

    def do_POST(self):
        type(self).hits += 1
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(self.status)
        for name, value in self.headers_out.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


def _serve(status: int, body: bytes, headers: dict | None = None):
    handler = type("H", (_Fixed,), {"status": status, "body": body, "headers_out": headers or {}, "hits": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, handler


@pytest.mark.parametrize(
    ("status", "body", "headers", "reached", "code"),
    [
        (301, b"", {"Location": "https://elsewhere.example/API/send/"}, False, "HTTP_301"),
        (404, b"<html>Not Found</html>", {}, False, "HTTP_404"),
        (403, b"forbidden by WAF", {}, False, "HTTP_403"),
        (504, b"<html>Gateway Timeout</html>", {}, True, "HTTP_504"),
        (200, b"", {}, True, "BAD_ANSWER"),
        (200, json.dumps({"result": "MAYBE"}).encode(), {}, True, "BAD_ANSWER"),
        (200, json.dumps([1, 2]).encode(), {}, True, "BAD_ANSWER"),
        # A 5xx with JSON that names no kwtSMS code is a crash report: the send may have happened.
        (
            500,
            json.dumps({"result": "ERROR", "code": "INTERNAL", "description": "boom"}).encode(),
            {},
            True,
            "HTTP_500",
        ),
    ],
)
def test_answers_without_a_kwtsms_json_body(status, body, headers, reached, code):
    server, handler = _serve(status, body, headers)
    try:
        vt = SandboxTime()
        client = KwtSMSClient(
            USER,
            PASSWORD,
            base_url=f"http://127.0.0.1:{server.server_address[1]}",
            clock=vt.clock,
            sleep=vt.sleep,
        )
        if reached:
            batch = client.send_batch(numbers(1), "hi", sender="KWT-SMS", test=True)
            assert (batch.state, batch.error_code, batch.may_have_reached_server) == ("uncertain", code, True)
        else:
            with pytest.raises(KwtSMSNetworkError) as info:
                client.send_batch(numbers(1), "hi", sender="KWT-SMS", test=True)
            assert info.value.code == code and info.value.may_have_reached_server is False
        assert handler.hits == 1  # neither kind is sent again
        assert vt.sleeps == []
    finally:
        server.shutdown()
        server.server_close()


def test_a_4xx_json_error_body_is_the_gateway_error(kwtsms_sandbox_factory):
    sb = kwtsms_sandbox_factory(rate=None, balance=0, error_status="4xx")
    result = client_for(sb).send(numbers(3), "hi", test=False)
    (batch,) = result.batches
    assert (batch.state, batch.error_code, batch.may_have_reached_server) == ("failed", "ERR010", None)
    assert result.permanent_error.code == "ERR010"


def test_a_5xx_with_a_kwtsms_code_is_that_error():
    body = json.dumps({"result": "ERROR", "code": "ERR003", "description": "wrong login"}).encode()
    server, handler = _serve(503, body)
    try:
        client = KwtSMSClient(USER, PASSWORD, base_url=f"http://127.0.0.1:{server.server_address[1]}")
        result = client.send(numbers(3), "hi")
        assert [(b.state, b.error_code) for b in result.batches] == [("failed", "ERR003")]
        # One request: a one-batch send reads no coverage (it would cost what it can save).
        assert result.permanent_error.code == "ERR003" and handler.hits == 1
    finally:
        server.shutdown()
        server.server_close()
