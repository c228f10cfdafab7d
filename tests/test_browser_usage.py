"""The kwtSMS page of the Airflow UI (issue 25) in headless Chromium, against a real api-server.

Two DAGs run once each with ``airflow dags test`` against a sandbox (sends, a balance reading, a
failure alert); the XComs of the second are moved two days back, as if it had run then. One
``airflow api-server`` then serves the page: it must show exactly the credits the sandbox
charged, per DAG and day; a user the auth manager lets read only one DAG sees only that DAG's;
a user it lets read none, and a request with no login, are refused.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from airflow_support import REPO, kwtsms_conn_uri
from browser_support import (  # noqa: F401  (chromium and page are fixtures)
    ApiServer,
    api_server_env,
    chromium,
    page,
    save_screenshot,
    start_api_server,
)

from airflow_provider_kwtsms.sandbox import Sandbox

pytestmark = [pytest.mark.browser, pytest.mark.airflow, pytest.mark.timeout(420)]

USER, PASSWORD = "usage_user", "usage_pass_1"
SHIFT_DAYS = 2  # usage_alerts' rows are moved this many days back
PASSWORDS = {"admin": "admin-pass", "finance": "finance-pass", "nodags": "nodags-pass"}


def _shift_back(airflow, dag_id: str, days: int) -> None:
    """Move a DAG's XComs ``days`` back, in the stored form of the column (UtcDateTime on SQLite)."""
    rows = airflow.query("SELECT rowid, timestamp FROM xcom WHERE dag_id = ?", dag_id)
    import sqlite3

    with sqlite3.connect(airflow.path / "airflow.db") as db:
        for rowid, stamp in rows:
            moved = datetime.fromisoformat(stamp) - timedelta(days=days)
            db.execute("UPDATE xcom SET timestamp = ? WHERE rowid = ?", (moved.isoformat(" "), rowid))


@pytest.fixture(scope="module")
def seeded(airflow) -> Iterator[tuple[Sandbox, Counter]]:
    """The runs, and what the sandbox charged for them: {(day, dag): points}."""
    with Sandbox(username=USER, password=PASSWORD, balance=5000, purchased=6000) as sandbox:
        env = {"AIRFLOW_CONN_KWTSMS_DEFAULT": kwtsms_conn_uri(sandbox.url, USER, PASSWORD)}
        billing = airflow.run("dags", "test", "usage_billing", env=env)
        assert airflow.task_states("usage_billing") == {
            "balance": ("success", 1),
            "invoices": ("success", 1),
        }, billing.output[-4000:]
        alerts = airflow.run("dags", "test", "usage_alerts", env=env)
        states = airflow.task_states("usage_alerts")
        assert states["digest"] == ("success", 1) and states["report"][0] == "failed", alerts.output[-4000:]
        _shift_back(airflow, "usage_alerts", SHIFT_DAYS)

        points = {m["msg_id"]: m["points"] for m in sandbox.messages()}
        expected: Counter = Counter()
        for dag_id, task_id in (("usage_billing", "invoices"), ("usage_alerts", "digest")):
            (stamp,) = airflow.query(
                "SELECT timestamp FROM xcom WHERE dag_id = ? AND task_id = ? AND key = 'return_value'",
                dag_id,
                task_id,
            )[0]
            summary = airflow.xcom(dag_id, task_id)
            day = datetime.fromisoformat(stamp).date().isoformat()
            expected[(day, dag_id)] += sum(points[msg_id] for msg_id in summary["msg_ids"])
        # The alert is in the sandbox too, not counted as a send: the page lists it per target.
        assert any(m["mobile"] == ["96553334444"] for m in sandbox.messages())
        yield sandbox, expected


@pytest.fixture(scope="module")
def api_server(airflow, seeded, tmp_path_factory) -> Iterator[ApiServer]:
    sandbox, _ = seeded
    folder = tmp_path_factory.mktemp("usage-api-server")
    passwords = folder / "passwords.json"
    passwords.write_text(json.dumps(PASSWORDS))
    env = api_server_env(airflow.env)
    env.update(
        {
            "AIRFLOW__CORE__AUTH_MANAGER": "usage_auth_manager.UsagePageAuthManager",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,finance:viewer,nodags:viewer",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW_CONN_KWTSMS_DEFAULT": kwtsms_conn_uri(sandbox.url, USER, PASSWORD),
        }
    )
    env["PYTHONPATH"] = f"{REPO / 'tests'}:{env['PYTHONPATH']}"
    server = start_api_server(env, folder)
    try:
        yield server
    finally:
        server.stop()


def token(server: ApiServer, user: str) -> str:
    answer = requests.post(
        f"{server.url}/auth/token", json={"username": user, "password": PASSWORDS[user]}, timeout=30
    )
    assert answer.status_code in (200, 201), answer.text
    return answer.json()["access_token"]


def test_the_page_shows_what_the_sandbox_charged_and_only_to_dag_readers(airflow, api_server, seeded, page):  # noqa: F811
    from playwright.sync_api import expect

    sandbox, expected = seeded
    base = api_server.url
    # No login, and a user who may read no DAG: refused, page and JSON alike.
    assert requests.get(f"{base}/kwtsms/api/usage", timeout=30).status_code == 401
    nodags = {"Authorization": f"Bearer {token(api_server, 'nodags')}"}
    for path in ("/kwtsms/", "/kwtsms/api/usage", "/kwtsms/api/balance"):
        assert requests.get(base + path, headers=nodags, timeout=30).status_code == 403, path
    # A user who may read one DAG sees only that DAG's credits.
    finance = requests.get(
        f"{base}/kwtsms/api/usage",
        headers={"Authorization": f"Bearer {token(api_server, 'finance')}"},
        timeout=30,
    ).json()
    assert [d["dag_id"] for d in finance["dags"]] == ["usage_billing"]
    assert finance["alerts"]["total"] == 0  # the alert belongs to usage_alerts

    # The admin, in the browser (the UI's own cookie).
    page.context.add_cookies([{"name": "_token", "value": token(api_server, "admin"), "url": base}])
    page.goto(f"{base}/kwtsms/")
    expect(page.locator("body[data-loaded=yes]")).to_be_attached()
    shown = Counter()
    for tr in page.locator("#credits-table tbody tr[data-day]").all():
        shown[(tr.get_attribute("data-day"), tr.get_attribute("data-dag"))] += int(
            tr.locator("td").nth(2).text_content().replace(",", "")
        )
    assert shown == expected and len(expected) == 2
    assert page.locator("[data-total=credits] b").inner_text() == str(sum(expected.values()))
    bars = page.locator("#chart rect[data-dag]")
    assert bars.count() == 2
    # The alert, per target. The balance: the latest point recorded is the billing send's (the
    # other DAG's rows were moved back); asked of the gateway, it is the account's now.
    expect(page.locator("#alerts-table tbody tr").first).to_contain_text("96553334444")
    balance = page.locator("#balances [data-connection=kwtsms_default]")
    recorded = airflow.xcom("usage_billing", "invoices")["balance_after"]
    expect(balance.locator("b")).to_have_text(f"{recorded:,.0f}")
    page.get_by_role("button", name="Ask kwtSMS for the balance now").click()
    expect(balance).to_contain_text("(page)", timeout=30_000)  # the api-server asks the gateway first
    expect(balance.locator("b")).to_have_text(f"{sandbox.account()['available']:,}")
    # Pressed again within the minute: the page answers from what it read, kwtSMS is not asked.
    asked = sum(1 for r in sandbox.requests() if r["endpoint"] == "balance")
    with page.expect_response(lambda r: r.url.endswith("/kwtsms/api/balance")) as again:
        page.get_by_role("button", name="Ask kwtSMS for the balance now").click()
    fresh = {c["connection"]: c["fresh"] for c in again.value.json()["connections"]}
    assert fresh["kwtsms_default"] is False
    assert sum(1 for r in sandbox.requests() if r["endpoint"] == "balance") == asked
    assert page.console_errors == []
    save_screenshot(page, "usage-page")

    # In the Airflow UI's navigation (3.1+): the same page, framed.
    page.goto(f"{base}/plugin/kwtsms")
    frame = page.frame_locator("iframe")
    expect(frame.locator("body[data-loaded=yes]")).to_be_attached()
    expect(frame.locator("[data-total=credits] b")).to_have_text(str(sum(expected.values())))
    save_screenshot(page, "usage-page-in-airflow")
    print("\nusage page figures:", dict(shown), "sandbox:", dict(expected), "at", datetime.now(UTC))
