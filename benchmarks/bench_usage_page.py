"""The kwtSMS page's load time with 10,000 recorded sends (issue 25): its JSON and the page in Chromium.

    .venv/bin/python benchmarks/bench_usage_page.py [--sends 10000] [--runs 5]

A fresh AIRFLOW_HOME (SQLite) is migrated; ``usage_billing`` (tests/dags/usage_page_dag.py) runs
once with ``airflow dags test`` against an in-process sandbox; its send summary (XCom) is then
copied ``--sends`` times under other task ids, spread over the last 30 days, as that many sends
would have written it. One ``airflow api-server`` (one worker) serves the page. Timed, each the
median of ``--runs`` after one untimed warm-up (the first figure is printed apart):

- ``json``: ``GET /kwtsms/api/usage`` (the default period, 30 days), read to the end;
- ``page``: Chromium opening ``/kwtsms/`` until the figures are drawn (``body[data-loaded]``):
  HTML, script, style, the JSON and the drawing.

Not a test and not in run_all.py (about 2 minutes, most of it Airflow starting).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from airflow_support import AIRFLOW_BIN, TEST_DAGS, kwtsms_conn_uri  # noqa: E402
from browser_support import CHROMIUM_FLAGS, api_server_env, chromium_path, start_api_server  # noqa: E402

from airflow_provider_kwtsms.sandbox import Sandbox  # noqa: E402

USER, PASSWORD = "bench_user", "bench_pass_1"


def _env(home: Path) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(TEST_DAGS),
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        PYTHONPATH=str(REPO),
    )
    return env


def _airflow(env: dict[str, str], *args: str) -> None:
    subprocess.run([str(AIRFLOW_BIN), *args], env=env, check=True, capture_output=True, timeout=600)


def _copy_sends(db_path: Path, count: int) -> int:
    """``count`` copies of the one send summary, timestamps spread over the last 30 days."""
    now = datetime.now(UTC)
    with sqlite3.connect(db_path) as db:
        dag_run_id, dag_id, run_id, value = db.execute(
            "SELECT dag_run_id, dag_id, run_id, value FROM xcom WHERE task_id = 'invoices'"
        ).fetchone()
        rows = [
            (
                dag_run_id,
                f"invoices_{i:05d}",
                -1,
                "return_value",
                dag_id,
                run_id,
                value,
                (now - timedelta(seconds=i * 29 * 86400 / count)).strftime("%Y-%m-%d %H:%M:%S.%f"),
            )
            for i in range(count)
        ]
        db.executemany(
            "INSERT INTO xcom (dag_run_id, task_id, map_index, key, dag_id, run_id, value, timestamp) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        return json.loads(value)["points_charged"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    import requests
    from playwright.sync_api import sync_playwright

    with (
        tempfile.TemporaryDirectory() as folder,
        Sandbox(username=USER, password=PASSWORD, balance=10**6) as sb,
    ):
        home = Path(folder)
        env = _env(home)
        _airflow(env, "db", "migrate")
        conn = {"AIRFLOW_CONN_KWTSMS_DEFAULT": kwtsms_conn_uri(sb.url, USER, PASSWORD)}
        _airflow({**env, **conn}, "dags", "test", "usage_billing")
        per_send = _copy_sends(home / "airflow.db", args.sends)
        passwords = home / "passwords.json"
        passwords.write_text(json.dumps({"admin": "admin-pass"}))
        server_env = api_server_env(env)
        server_env.update(
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="False",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(passwords),
        )
        server = start_api_server(server_env, home)
        try:
            token = requests.post(
                f"{server.url}/auth/token", json={"username": "admin", "password": "admin-pass"}, timeout=30
            ).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}

            def json_once() -> tuple[float, dict]:
                started = time.perf_counter()
                answer = requests.get(f"{server.url}/kwtsms/api/usage", headers=headers, timeout=60)
                answer.raise_for_status()
                body = answer.json()
                return time.perf_counter() - started, body

            first_json, body = json_once()
            json_times = [json_once()[0] for _ in range(args.runs)]
            assert body["totals"]["sends"] == args.sends + 1, body["totals"]
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=chromium_path(), args=list(CHROMIUM_FLAGS)
                )
                context = browser.new_context()
                context.add_cookies([{"name": "_token", "value": token, "url": server.url}])
                page = context.new_page()

                def page_once() -> float:
                    started = time.perf_counter()
                    page.goto(f"{server.url}/kwtsms/")
                    page.wait_for_selector("body[data-loaded=yes]", state="attached", timeout=60_000)
                    return time.perf_counter() - started

                first_page = page_once()
                page_times = [page_once() for _ in range(args.runs)]
                shown = page.locator("[data-total=credits] b").inner_text()
                browser.close()
        finally:
            server.stop()
    print(f"recorded sends: {args.sends + 1:,} ({per_send} credits each); page shows {shown} credits")
    print(f"JSON  /kwtsms/api/usage: median {statistics.median(json_times):.3f} s (first {first_json:.3f} s)")
    print(
        f"page  /kwtsms/ in Chromium: median {statistics.median(page_times):.3f} s (first {first_page:.3f} s)"
    )


if __name__ == "__main__":
    main()
