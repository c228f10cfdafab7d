"""The usage report (issue 25) from send summaries the sandbox charged over real HTTP: credits per
DAG per day match the sandbox's own record; values read as untrusted; the period's rules."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
from sandbox_helpers import SandboxTime, frozen_clock

from airflow_provider_kwtsms.constants import MAX_RATE
from airflow_provider_kwtsms.errors import KwtSMSInputError
from airflow_provider_kwtsms.gateway.client import KwtSMSClient
from airflow_provider_kwtsms.usage.records import MAX_TEXT, Reading, Row, as_send, decoded
from airflow_provider_kwtsms.usage.report import MAX_DAYS, MAX_TREND_POINTS, build_report, parse_period

USER, PASSWORD = "sandbox_user", "sandbox_pass"
DAY = 86_400.0
TODAY = date(2026, 1, 10)


def period(first: str = "2026-01-01", last: str = "2026-01-10", tz: str | None = None):
    return parse_period(first, last, None, tz, TODAY)


def row(value, *, dag="d", at=datetime(2026, 1, 5, 12, tzinfo=UTC), key="return_value", run="r1", task="t"):
    return Row(dag, run, task, -1, key, at, value)


def summary(**fields):
    base = {"ok": True, "points_charged": 0, "numbers_sent": 0, "counts": {"failed": 0, "uncertain": 0}}
    return {**base, **fields}


@pytest.fixture
def sb(kwtsms_sandbox_factory):
    return kwtsms_sandbox_factory(balance=10_000, clock=frozen_clock(1_767_614_400.0))  # 2026-01-05 12:00Z


def test_credits_per_dag_per_day_are_what_the_sandbox_charged(sb):
    """Sends of two DAGs over three days through the real client: the report's figure for each
    DAG and day is the sum of the points the sandbox recorded for those messages."""
    vt = SandboxTime(sb)
    client = KwtSMSClient(
        USER, PASSWORD, base_url=sb.url, clock=vt.clock, sleep=vt.sleep, pacer=vt.pacer(MAX_RATE)
    )
    plan = [  # (dag, numbers, text): one page, two pages (a long text), Unicode
        ("billing", ["96598765432", "96550001111"], "Your invoice is ready."),
        ("alerts", ["96566002222"], "x" * 200),
        ("billing", ["96598765432", "96550001111", "96566002222"], "فاتورتك جاهزة"),
        ("alerts", ["96550001111"], "Disk full"),
    ]
    rows, dag_of_msg = [], {}
    for i, (dag, numbers, text) in enumerate(plan):
        result = client.send(numbers, text)
        value = {**result.to_dict(), "connection": "kwtsms_default"}
        for msg_id in result.msg_ids:
            dag_of_msg[msg_id] = dag
        at = datetime.fromtimestamp(sb.now(), UTC)
        rows.append(row(json.dumps(value) if i % 2 else value, dag=dag, at=at, run=f"run{i}"))
        sb.advance(DAY if i != 1 else DAY / 48)  # two sends on 5 Jan, one on 6th, one on 7th
    expected = Counter()
    for message in sb.messages():
        day = datetime.fromtimestamp(message["received_at"], UTC).date().isoformat()
        expected[(day, dag_of_msg[message["msg_id"]])] += message["points"]
    report = build_report(rows, period())
    shown = Counter({(d["day"], dag): n for d in report["daily"] for dag, n in d["credits"].items()})
    assert shown == expected and sum(expected.values()) == report["totals"]["credits"] > 0
    assert len({day for day, _ in expected}) == 3
    assert [d["day"] for d in report["daily"]][:1] == ["2026-01-01"] and len(report["daily"]) == 10
    assert report["totals"]["sends"] == 4
    # The balance after each send is a point of the connection's trend; the last is the account's.
    (balances,) = report["balances"]
    assert balances["connection"] == "kwtsms_default" and len(balances["trend"]) == 4
    assert balances["now"]["available"] == sb.account()["available"]


def test_failed_uncertain_and_suppressed_sends_are_listed_with_reasons(sb):
    sb.set_balance(1)
    client = KwtSMSClient(USER, PASSWORD, base_url=sb.url)
    failed = client.send(["96598765432", "96550001111"], "hello").to_dict()
    late = datetime(2026, 1, 6, tzinfo=UTC)
    suppressed = summary(
        counts={"suppressed": 2}, suppressed=[{"number": "965...", "reason": "opted out"}] * 2
    )
    rows = [row(failed, dag="a", key="partial_summary"), row(suppressed, dag="b", at=late), row(summary())]
    problems = build_report(rows, period())["problems"]
    assert [p["dag_id"] for p in problems] == ["b", "a"]  # newest first; the clean send is not listed
    assert problems[0]["suppressed"] == 2 and problems[0]["reasons"] == ["2 suppressed: opted out"]
    assert problems[1]["failed"] == 2 and problems[1]["reasons"][0].startswith(
        "ERR011: Balance is not enough"
    )
    assert problems[1]["reasons"][1] == "2 failed with ERR011"
    assert "96598765432" not in json.dumps(problems)  # counts and reasons, never the numbers


@pytest.mark.parametrize(
    "value",
    [
        None,
        "not json",
        [1, 2],
        {"points_charged": 5},  # no counts: not a summary
        {"available": 3},  # another task's value
        summary(dry_run=True, points_charged=9),
        {**summary(), "counts": "junk"},
    ],
)
def test_other_values_under_the_same_keys_are_not_sends(value):
    report = build_report([row(value)], period())
    assert report["totals"]["sends"] == 0 and report["problems"] == [] and report["balances"] == []


def test_a_summary_is_read_defensively():
    """Missing keys are 0, junk numbers are 0, text is one bounded line (issue 24's fields or not)."""
    odd = {
        "ok": "yes",
        "points_charged": -4,
        "numbers_sent": float("nan"),
        "counts": {"failed": True, "uncertain": "3", "suppressed": 2.0},
        "error": {"code": "ERR\n99", "description": "x\u2028" * 400, "action": None},
        "failed": "not a list",
        "balance_after": float("inf"),
    }
    send = as_send(row(odd))
    assert send is not None
    assert (send.credits, send.numbers_sent, send.failed, send.uncertain, send.suppressed) == (0, 0, 0, 0, 2)
    assert send.ok is False and send.balance_after is None
    (reason,) = send.reasons
    assert "\n" not in reason and "\u2028" not in reason and len(reason) <= MAX_TEXT + 60
    assert decoded('{"a": 1}') == {"a": 1} and decoded("[" * 100_000) is None


def test_rows_outside_the_period_or_its_time_zone_day_are_left_out():
    late_evening = datetime(2026, 1, 10, 22, tzinfo=UTC)  # 11 January in Kuwait (UTC+3)
    rows = [row(summary(points_charged=7), at=late_evening)]
    assert build_report(rows, period())["totals"]["credits"] == 7
    assert build_report(rows, period(tz="Asia/Kuwait"))["totals"]["credits"] == 0
    kuwait = build_report(rows, period("2026-01-11", "2026-01-11", tz="Asia/Kuwait"))
    assert kuwait["daily"] == [{"day": "2026-01-11", "total": 7, "credits": {"d": 7}}]


def test_alerts_are_counted_per_target():
    alert = {"targets": ["96598765432"], "ok": True, "points_charged": 1}
    failed = {"targets": ["96598765432", "96550001111"], "ok": False, "error": {"code": "ERR010"}}
    rows = [
        row(alert, key="kwtsms_alert"),
        row(failed, key="kwtsms_alert"),
        row({"x": 1}, key="kwtsms_alert"),
    ]
    alerts = build_report(rows, period())["alerts"]
    assert alerts["total"] == 2 and alerts["credits"] == 1
    assert [(t["target"], t["alerts"], t["failed"]) for t in alerts["targets"]] == [
        ("96598765432", 2, 1),
        ("96550001111", 1, 1),
    ]


def test_balance_points_from_sensor_sends_and_page_are_one_trend_thinned_to_a_bound():
    start = datetime(2026, 1, 2, tzinfo=UTC)
    rows = [
        row(
            {"available": 500 - i, "purchased": None, "min_balance": 1, "connection": "c"},
            at=start + timedelta(minutes=i),
        )
        for i in range(MAX_TREND_POINTS * 3)
    ]
    page = [Reading("c", datetime(2026, 1, 9, tzinfo=UTC), 42.0, "page")]
    (balance,) = build_report(rows, period(), page_readings=page)["balances"]
    assert len(balance["trend"]) == MAX_TREND_POINTS
    assert balance["trend"][0]["available"] == 500 and balance["now"] == {
        "at": "2026-01-09T00:00:00+00:00",
        "available": 42.0,
        "source": "page",
    }


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("2026-13-01", None, None, None), "start is '2026-13-01': write a day as YYYY-MM-DD"),
        (("20260101", None, None, None), "start is '20260101'"),
        ((None, None, "0", None), f"days is '0': write a whole number of days from 1 to {MAX_DAYS}"),
        ((None, None, "many", None), "days is 'many'"),
        (("2026-01-05", "2026-01-01", None, None), "start 2026-01-05 is after end 2026-01-01"),
        (("2024-01-01", "2026-01-01", None, None), f"above the limit of {MAX_DAYS}"),
        ((None, None, None, "Mars/Base"), "timezone is 'Mars/Base': write an IANA zone name"),
    ],
)
def test_a_bad_period_is_refused_naming_the_input(args, says):
    with pytest.raises(KwtSMSInputError) as caught:
        parse_period(*args, TODAY)
    assert says in str(caught.value)


def test_the_default_period_is_the_last_30_days_in_utc():
    chosen = parse_period(None, None, None, None, TODAY)
    assert (chosen.first, chosen.last, chosen.zone.key) == (date(2025, 12, 12), TODAY, "UTC")
    assert chosen.end - chosen.start == timedelta(days=30)
