"""One batch loop, one stop policy: the same plan gives the same outcome through the client, the
resume ledger (the operator's path) and the e-mail channel. Real sandbox over loopback (HTTP and
SMTP), an in-memory ledger store.

The case of issue 13: 200 numbers in a country the account does not cover (ERR026) and one
Kuwaiti number. Before, ``KwtSMSClient.send`` failed batch 1 and sent batch 2, while the ledger
raised on batch 1 and sent nothing, and the e-mail channel would have stopped at its first failure.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from sandbox_helpers import frozen_clock, linked, logged, logged_sends

from airflow_provider_kwtsms.errors import KwtSMSError
from airflow_provider_kwtsms.gateway.client import KwtSMSClient
from airflow_provider_kwtsms.ledger.resume import HEAD_KEY, MemoryStore, fingerprint, resume_send
from airflow_provider_kwtsms.smtp.sender import KwtSMSSmtpSender

USER, PASSWORD = "sandbox_user", "sandbox_pass"
KW = "96598765432"
UAE = [f"971500{i:06d}" for i in range(200)]


@pytest.fixture
def sb(kwtsms_sandbox_factory):
    return kwtsms_sandbox_factory(balance=10_000, coverage=["965"], smtp_port=0, clock=frozen_clock())


def http(sb, **options) -> KwtSMSClient:
    return KwtSMSClient(USER, PASSWORD, base_url=sb.url, **linked(sb), **options)  # 5/s, sandbox time


def smtp(sb, **options) -> KwtSMSSmtpSender:
    options.setdefault("balance_over_http", True)
    options.setdefault("base_url", sb.url)
    return KwtSMSSmtpSender(
        USER, PASSWORD, smtp_host="127.0.0.1", smtp_port=sb.smtp_port, from_address="a@example.com", **options
    )


def delivered(sb) -> Counter:
    return Counter(n for m in sb.messages() for n in m["mobile"])


def outcome(batches) -> list[tuple[str, str | None]]:
    return [("sent" if b.state == "sent" else b.state, b.error_code) for b in batches]


EXPECTED = [("failed", "ERR026"), ("sent", None)]


def test_client_sends_what_it_can_and_reports_the_uncovered_batch(sb):
    result = http(sb).send([*UAE, KW], "Hello", test=False)
    assert outcome(result.batches) == EXPECTED
    assert delivered(sb) == Counter({KW: 1})
    assert result.permanent_error.code == "ERR026" and {c for _, c in result.failed} == {"ERR026"}
    # No coverage list known yet: reading it would cost what it saves, so the gateway decides.
    assert [r["endpoint"] for r in logged(sb)] == ["send", "send"]


def test_a_coverage_list_another_process_read_saves_the_request_of_the_uncovered_batch(sb):
    http(sb).covered_prefixes()  # another process of this machine read it (one request)
    result = http(sb).send([*UAE, KW], "Hello", test=False)
    assert outcome(result.batches) == EXPECTED
    # The shared list says UAE is not covered; the client confirms it once before refusing (a list
    # up to an hour old never refuses on its own), then no request is spent on that batch.
    assert [r["endpoint"] for r in logged(sb)] == ["coverage", "coverage", "send"]
    again = http(sb)
    again.covered_prefixes(fresh=True)
    assert outcome(again.send([*UAE, "96550000001"], "Hello", test=False).batches) == EXPECTED
    assert len(logged_sends(sb)) == 2  # a client that read the list itself refuses with no request


def test_after_an_err026_answer_the_list_is_read_once_and_spares_the_other_uncovered_batches(sb):
    uae = [f"971500{i:06d}" for i in range(600)]
    result = http(sb).send([*uae, KW], "Hello", test=False)
    assert [b.error_code for b in result.batches] == ["ERR026"] * 3 + [None]
    # The first refusal came from the gateway; then one coverage read; the two other UAE batches
    # cost nothing. Before: one coverage read up front, whatever the batches.
    assert [r["endpoint"] for r in logged(sb)] == ["send", "coverage", "send"]


def test_without_the_coverage_check_the_gateway_refuses_it_and_the_outcome_is_the_same(sb):
    result = http(sb, check_coverage=False).send([*UAE, KW], "Hello", test=False)
    assert outcome(result.batches) == EXPECTED
    assert [r["code"] for r in logged_sends(sb)] == ["ERR026", "OK"]
    assert "coverage" not in {r["endpoint"] for r in logged(sb)}


def test_the_ledger_path_sends_every_other_batch_then_fails_naming_the_refused_one(sb):
    client = http(sb)
    plan = client.plan_send([*UAE, KW], "Hello", test=False)
    store = MemoryStore()
    with pytest.raises(KwtSMSError) as info:
        resume_send(client, plan, store, try_number=1)
    err = info.value
    assert err.code == "ERR026" and err.permanent and not err.retryable  # the operator fails the task
    assert "batch 1" in str(err) and "every other batch was sent" in str(err)
    assert delivered(sb) == Counter({KW: 1})  # before: raised on batch 1, sent nothing
    assert outcome(err.result.batches) == EXPECTED and err.indices == [0]

    # Cleared: only the refused batch is tried again (refused again); the sent one is remembered.
    with pytest.raises(KwtSMSError) as again:
        resume_send(http(sb), plan, store, try_number=2)
    assert [b.state for b in again.value.result.batches] == ["failed", "skipped"]
    assert delivered(sb) == Counter({KW: 1})


def test_the_email_channel_gives_the_same_outcome(sb):
    with smtp(sb) as sender:
        result = sender.send([*UAE, KW], "Hello")
    assert outcome(result.batches) == EXPECTED
    assert len(sb.emails()) == 1 and delivered(sb) == Counter({KW: 1})


def test_the_email_channel_through_the_ledger_gives_the_same_outcome(sb):
    with smtp(sb) as sender:
        plan = sender.plan_send([*UAE, KW], "Hello")
        with pytest.raises(KwtSMSError) as info:
            resume_send(sender, plan, MemoryStore(), try_number=1)
    assert info.value.code == "ERR026" and info.value.permanent
    assert outcome(info.value.result.batches) == EXPECTED
    assert len(sb.emails()) == 1 and delivered(sb) == Counter({KW: 1})


def test_an_account_level_error_still_stops_every_path_after_one_request(sb):
    numbers = [f"96550{i:06d}" for i in range(450)]
    result = http(sb).send(numbers, "Hello", sender="NOT-MINE", test=False)
    assert [(b.error_code, b.attempted) for b in result.batches] == [("ERR008", True)] + [
        ("ERR008", False)
    ] * 2
    plan = http(sb).plan_send(numbers, "Hello", sender="NOT-MINE", test=False)
    with pytest.raises(KwtSMSError) as info:
        resume_send(http(sb), plan, MemoryStore(), try_number=1)
    assert info.value.code == "ERR008" and info.value.permanent
    assert [r["code"] for r in logged_sends(sb)] == ["ERR008", "ERR008"]  # one request per path


def test_a_batch_with_some_covered_numbers_goes_and_the_gateway_leaves_the_others_out(sb):
    result = http(sb).send([KW, UAE[0]], "Hello", test=False)
    assert outcome(result.batches) == [("sent", None)]
    assert result.gateway_dropped == 1 and delivered(sb) == Counter({KW: 1})


def test_coverage_is_read_once_per_machine_for_an_hour(sb, tmp_path):
    from airflow_provider_kwtsms.gateway.coverage_cache import CoverageCache

    assert http(sb).covered_prefixes() == frozenset({"965"})
    assert http(sb).covered_prefixes() == frozenset({"965"})  # another client: the shared file
    assert [r["endpoint"] for r in logged(sb)] == ["coverage"]
    cache = CoverageCache(USER, sb.url)
    assert cache.load() == frozenset({"965"})
    assert CoverageCache(USER, sb.url, clock=lambda: __import__("time").time() + 3601).load() is None
    assert CoverageCache("other_user", sb.url).load() is None  # keyed by account and gateway
    assert "sandbox_pass" not in cache.path.name and USER not in cache.path.name


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b'{"format": 1, "read_at": 1e300, "prefixes": ["965"]}',
        b'{"format": 1, "read_at": "now", "prefixes": ["965"]}',
        b'{"format": 1, "read_at": 0, "prefixes": ["965"]}',
        b'{"format": 2, "read_at": NOW, "prefixes": ["965"]}',
        b'{"format": 1, "read_at": NOW, "prefixes": ["96a"]}',
        b'{"format": 1, "read_at": NOW, "prefixes": ["12345"]}',
        b'{"format": 1, "read_at": NOW, "prefixes": "965"}',
        b'{"format": 1, "read_at": NOW, "prefixes": ["965"], "extra": 1}',
        rb'{"format": 1, "read_at": NOW, "prefixes": ["\u0669\u0666\u0665"]}',
        b"[" * 100_000,
        b'{"format": 1, "read_at": NOW, "prefixes": ["965"]}' + b" " * 20_000,
    ],
)
def test_a_cache_file_that_is_not_exactly_what_the_provider_writes_is_ignored(sb, content):
    import time

    from airflow_provider_kwtsms.gateway.coverage_cache import CoverageCache

    cache = CoverageCache(USER, sb.url)
    cache.path.write_bytes(content.replace(b"NOW", str(time.time()).encode()))
    assert cache.load() is None
    assert http(sb).covered_prefixes() == frozenset({"965"})  # read from the gateway instead
    assert cache.load() == frozenset({"965"})  # and the file made right


def test_when_the_coverage_cannot_be_read_the_gateway_decides(sb, caplog):
    sb.inject_fault("http_503", "coverage", times=10)
    client = http(sb, max_retries=1)
    client.policy = client.policy.__class__(**{**vars(client.policy), "backoff_base": 0.001})
    uae = [f"971500{i:06d}" for i in range(400)]
    result = client.send([*uae, KW], "Hello", test=False)
    assert [b.error_code for b in result.batches] == ["ERR026", "ERR026", None]
    assert [r["code"] for r in logged_sends(sb)] == ["ERR026", "ERR026", "OK"]
    assert "coverage not checked" in caplog.text


def test_a_ledger_written_by_the_running_version_is_read_and_resumed(sb):
    """The stored format is unchanged (version 1): a ledger left mid-send by the released provider
    resumes. Written here byte for byte as that version wrote it."""
    client = http(sb)
    plan = client.plan_send([f"96550{i:06d}" for i in range(250)], "Hello", test=False)
    fp = fingerprint(plan)
    store = MemoryStore()
    store.data[HEAD_KEY] = json.dumps(
        {"v": 1, "fp": fp.digest, "parts": fp.parts(), "n": 2, "k": 100, "t0": 1}, separators=(",", ":")
    )
    store.data[f"{HEAD_KEY}.c0"] = json.dumps(
        {"0": {"s": "d", "t": 1, "m": "f00dfeed", "p": 200, "b": 9800.0, "ts": 1795317478}},
        separators=(",", ":"),
    )
    result = resume_send(client, plan, store, try_number=2)
    first = result.batches[0]
    assert (first.state, first.msg_id, first.try_number) == ("skipped", "f00dfeed", 1)
    assert result.batches[1].state == "sent" and len(delivered(sb)) == 50
