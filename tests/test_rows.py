"""Per-recipient rows against the sandbox over real HTTP on loopback, on the sandbox's clock:
every customer their own text, identical texts grouped into the fewest requests, a row template,
the do-not-send list, ERR028 between two texts to one number, and the ledger's resume."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import replace

import pytest
from sandbox_helpers import SandboxTime, frozen_clock, linked, logged_sends

from airflow_provider_kwtsms.constants import MAX_BATCH
from airflow_provider_kwtsms.errors import KwtSMSInputError
from airflow_provider_kwtsms.gateway.client import KwtSMSClient
from airflow_provider_kwtsms.ledger.codec import fingerprint
from airflow_provider_kwtsms.ledger.resume import MemoryStore, resume_send
from airflow_provider_kwtsms.send.planning import PlanOptions, build_plan
from airflow_provider_kwtsms.send.rows import build_rows_plan

USER, PASSWORD = "sandbox_user", "sandbox_pass"
ARABIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def number(i: int) -> str:
    return f"96550{i:06d}"


def texts_by_number(sb) -> dict[str, list[str]]:
    got: dict[str, list[str]] = defaultdict(list)
    for message in sb.messages():
        for n in message["mobile"]:
            got[n].append(message["message"])
    return got


@pytest.fixture
def sb(kwtsms_sandbox_factory):
    return kwtsms_sandbox_factory(
        balance=1_000_000, queue_size=100_000, drain_rate=1_000.0, clock=frozen_clock()
    )


def client_for(sb, **options) -> KwtSMSClient:
    return KwtSMSClient(USER, PASSWORD, base_url=sb.url, **{**linked(sb), **options})


# 20 texts: English of one and two pages, Arabic of one and two pages (the estimate must weigh each).
TEXTS = [
    text.strip()
    for text in (
        f"Dear customer, order batch {k} ships today."
        if k % 4 == 0
        else f"Order {k}: " + "long text " * 20
        if k % 4 == 1  # 2 pages of GSM-7
        else f"طلبك رقم {k} في الطريق"
        if k % 4 == 2
        else f"طلبك رقم {k} " + "تفاصيل " * 12  # 2 pages of UCS-2
        for k in range(20)
    )
]


def test_ten_thousand_rows_with_twenty_texts_each_number_its_own_text_once(sb):
    rows = [{"mobile": number(i), "message": TEXTS[i % 20]} for i in range(10_000)]
    # the opt-out table writes its numbers otherwise: +965, 00965, Arabic digits
    opted_out = [number(i) for i in range(0, 10_000, 97)]
    do_not_send = [
        "+965 " + n[3:] if k % 3 == 0 else "00" + n if k % 3 == 1 else n.translate(ARABIC)
        for k, n in enumerate(opted_out)
    ]
    client = client_for(sb)
    before = sb.account()["available"]
    result = client.send_rows(rows, do_not_send=do_not_send, test=False)

    assert result.ok, result.first_error
    got = texts_by_number(sb)
    expected = {r["mobile"]: r["message"] for r in rows if r["mobile"] not in set(opted_out)}
    assert len(expected) == 10_000 - len(opted_out)
    assert {n: [t] for n, t in expected.items()} == dict(got)  # exactly its own text, once
    assert not set(opted_out) & set(got)  # suppressed numbers receive nothing
    # requests: the fewest the limits allow, one text per request, 200 numbers each
    per_text = Counter(expected.values())
    fewest = sum(-(-count // MAX_BATCH) for count in per_text.values())
    assert len(logged_sends(sb)) == len(result.batches) == fewest
    # the estimate is what the gateway charged
    charged = before - sb.account()["available"]
    assert result.plan.estimate == result.points_charged == charged
    summary = json.loads(json.dumps(result.to_dict()))
    assert summary["rows"] == {
        "total": 10_000,
        "sent": len(expected),
        "invalid": 0,
        "duplicate": 0,
        "suppressed": len(opted_out),
        "failed": 0,
        "uncertain": 0,
        "pending": 0,
    }
    assert summary["texts"] == 20
    assert {e["row"] for e in summary["suppressed"]} == set(range(0, 10_000, 97))
    print(f"\n10,000 rows / 20 texts: {fewest} requests, {charged} credits (estimate {result.plan.estimate})")


def test_one_number_with_two_texts_gets_both_fifteen_seconds_apart(kwtsms_sandbox_factory):
    sb = kwtsms_sandbox_factory(balance=1000, clock=frozen_clock())
    vt = SandboxTime(sb)
    client = KwtSMSClient(USER, PASSWORD, base_url=sb.url, clock=vt.clock, sleep=vt.sleep, pacer=vt.pacer())
    rows = [
        {"mobile": "96598765432", "message": "Your order ships today"},
        {"mobile": "+965 9876 5432", "message": "Your invoice is ready"},
        {"mobile": "96550000001", "message": "Your invoice is ready"},
    ]
    result = client.send_rows(rows, test=True)
    assert result.ok
    assert sorted(texts_by_number(sb)["96598765432"]) == ["Your invoice is ready", "Your order ships today"]
    codes = [r["code"] for r in logged_sends(sb)]
    assert codes == ["OK", "ERR028", "OK"]
    assert 15.0 < max(vt.sleeps) < 16.5  # the batch loop waited the gateway's 15 s out


def test_row_template_renders_each_row_and_a_failing_row_is_its_own_invalid_entry():
    rows = [
        {"mobile": "96550000001", "name": "Fatima", "order": 1042},
        {"mobile": "96550000002", "order": 7},  # no name
        {"mobile": "96550000003", "name": "Ali", "order": {"x": 1}},  # the sandbox refuses __class__
        {"mobile": "96550000004", "name": "<b></b>", "order": 9},  # empty after cleaning? no: text stays
        "not a row",
        {"name": "no number"},
    ]
    template = (
        "Dear {{ name }}, order {{ order }} ships today"
        "{% if order is mapping %}{{ order.__class__ }}{% endif %}"
    )
    plan = build_rows_plan(rows, PlanOptions(), template=template)
    assert plan.texts() == ["Dear Fatima, order 1042 ships today", "Dear , order 9 ships today"]
    reasons = {plan.rows.invalid[k]: e.reason for k, e in enumerate(plan.recipients.invalid)}
    assert sorted(reasons) == [1, 2, 4, 5]
    assert "'name' is undefined" in reasons[1]
    assert "sandbox refused" in reasons[2]
    assert "not a mapping" in reasons[4] and "no 'mobile'" in reasons[5]
    with pytest.raises(KwtSMSInputError, match="does not compile"):
        build_rows_plan(rows, PlanOptions(), template="Dear {{ name ")


def test_every_row_is_accounted_for_once():
    rows = [
        {"mobile": "96550000001", "message": "A"},
        {"mobile": "0096550000001", "message": "A"},  # duplicate: same number, same text
        {"mobile": "96550000001", "message": "B"},  # same number, another text: sent too
        {"mobile": "96550000002", "message": "A 🎉"},  # cleans to "A": the same group as row 0
        {"mobile": "96550000003", "message": "🎉"},  # empty after cleaning
        {"mobile": "96550000004", "message": "x" * 2000},  # over the page limit
        {"mobile": "abc", "message": "A"},
        {"mobile": "96550000005", "message": 5},
        {"mobile": "96550000006, 96550000007", "message": "A"},
        {"mobile": "٩٦٥٥٠٠٠٠٠٠٨", "message": "🎉"},  # suppressed first: its text is never judged
    ]
    plan = build_rows_plan(rows, PlanOptions(), do_not_send="96550000008")
    assert plan.batches == [["96550000001", "96550000002"], ["96550000001"]]
    assert plan.texts() == ["A", "B"] and plan.estimate == 3
    r, idx = plan.recipients, plan.rows
    assert list(idx.valid) == [0, 3, 2] and list(idx.duplicates) == [1] and list(idx.suppressed) == [9]
    assert list(idx.invalid) == [4, 5, 6, 7, 8]
    assert r.total_inputs == len(rows)
    assert "several values" in r.invalid[-1].reason


def test_dry_run_and_max_credits_count_each_texts_pages(sb):
    rows = [{"mobile": number(i), "message": TEXTS[i % 4]} for i in range(8)]  # pages 1, 2, 1, 2
    client = client_for(sb)
    dry = client.send_rows(rows, dry_run=True)
    assert dry.plan.estimate == 12 and not logged_sends(sb)
    with pytest.raises(KwtSMSInputError, match=r"needs 12 credits .*4 texts"):
        client.send_rows(rows, max_credits=11)
    assert not logged_sends(sb)


def test_do_not_send_works_for_one_text_too(sb):
    result = client_for(sb).send(
        ["96550000001", "96550000002", "96550000003"], "Hello", do_not_send=["+965 5000 0002"], test=True
    )
    assert result.ok and set(texts_by_number(sb)) == {"96550000001", "96550000003"}
    summary = result.to_dict()
    assert summary["counts"]["suppressed"] == 1 and summary["suppressed"][0]["number"] == "96550000002"


def test_one_text_is_the_one_group_plan_with_the_same_fingerprint_as_before():
    plan = build_plan(["96550000001"], "Hello", PlanOptions())
    assert plan.groups is None and plan.text_of(0) == "Hello"
    rows_plan = build_rows_plan([{"mobile": "96550000001", "message": "Hello"}], PlanOptions())
    assert rows_plan.groups is None and fingerprint(rows_plan).digest == fingerprint(plan).digest


class Died(BaseException):
    """The worker died here."""


class DiesAfter(KwtSMSClient):
    max_in_flight = 1
    left = 10**9

    def deliver(self, batch):
        if self.left == 0:
            raise Died("worker died before this request left")
        self.left -= 1
        return super().deliver(batch)


def test_a_rows_send_killed_mid_send_resumes_every_row_once(kwtsms_sandbox_factory):
    sb = kwtsms_sandbox_factory(balance=100_000, clock=frozen_clock())
    rows = [{"mobile": number(i), "message": f"Text {i % 7}"} for i in range(2_000)]
    store = MemoryStore()
    first = DiesAfter(USER, PASSWORD, base_url=sb.url, **linked(sb))
    plan = first.plan_rows(rows, test=False)
    assert len(plan.batches) == 14  # 7 texts of 286 numbers: 2 requests each
    first.left = 5
    with pytest.raises(Died):
        resume_send(first, plan, store, try_number=1)
    retry = KwtSMSClient(USER, PASSWORD, base_url=sb.url, **linked(sb))
    retry.policy = replace(retry.policy, same_number_wait=1.0)
    again = retry.plan_rows(rows, test=False)
    result = resume_send(retry, again, store, try_number=2)
    assert result.ok
    got = texts_by_number(sb)
    assert {n: ts for n, ts in got.items()} == {r["mobile"]: [r["message"]] for r in rows}
    assert sum(1 for b in result.batches if b.state == "skipped") == 5
