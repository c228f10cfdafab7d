"""The storm guard's stores shared by real processes: the machine's folder, and a Postgres and a
Redis on loopback (tests/store_servers.py) as a deployment's ``rate_store`` gives them. Processes
alerting at the same instant send exactly once, the rest is counted for the digest, and a dropped
connection costs one failed call, not the store."""

from __future__ import annotations

import multiprocessing
import time
import uuid

import pytest
from store_servers import server_or_skip, store_url

from airflow_provider_kwtsms.alerts.guard import Alert
from airflow_provider_kwtsms.alerts.store import AlertStore, FileAlertStore, open_alert_store
from airflow_provider_kwtsms.alerts.storm import StormGuard

QUIET = 600.0
ON_CALL = "96550001234"


def open_store(where: str) -> AlertStore:
    """A folder (the machine's store) or a ``rate_store`` URL."""
    return open_alert_store(where) if "://" in where else FileAlertStore(where)


def _alert_at_once(where: str, scope: str, start: float, runs: int) -> list[str]:
    clock_offset = start - time.time()
    guard_ = StormGuard(
        open_store(where), scope=scope, name=scope, quiet=QUIET, clock=lambda: time.time() + clock_offset
    )
    while time.time() < start:  # every process starts its alerts at the same instant
        time.sleep(0.001)
    return [guard_.on_alert(ON_CALL, Alert("fails"), 1).action for _ in range(runs)]


@pytest.mark.parametrize("kind", ["folder", "postgres", "redis"])
def test_processes_alerting_at_the_same_instant_send_exactly_once(kind: str, servers, tmp_path) -> None:
    url = str(tmp_path / "alerts") if kind == "folder" else store_url(servers, kind)
    scope = f"fanout-{uuid.uuid4().hex[:8]}"
    start = time.time() + 1.0  # time for the 8 processes to be forked and connected
    with multiprocessing.get_context("fork").Pool(8) as pool:
        parts = pool.starmap(_alert_at_once, [(url, scope, start, 25)] * 8)
    actions = [action for part in parts for action in part]
    assert len(actions) == 200
    assert actions.count("send") == 1 and actions.count("count") == 199
    # The period's end, read back from the store by a process that took no part: one digest.
    later = StormGuard(open_store(url), scope=scope, name=scope, quiet=QUIET, clock=lambda: start + QUIET + 1)
    assert later.on_due(ON_CALL).outgoing.text.startswith(f"{scope}: 199 more failures since ")


def test_a_dropped_postgres_connection_fails_one_call_and_the_next_reconnects(servers) -> None:
    import psycopg

    server = server_or_skip(servers, "postgres")
    url = store_url(servers, "postgres")
    store = open_alert_store(url)
    scope = f"drop-{uuid.uuid4().hex[:8]}"
    guard_ = StormGuard(store, scope=scope, name=scope, quiet=QUIET, clock=lambda: 1_000_000.0)
    assert guard_.on_alert(ON_CALL, Alert("a"), 1).action == "send"
    with psycopg.connect(server.dsn("postgres"), autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'kwtsms-alerts'"
        )
    with pytest.raises(Exception):  # noqa: B017 (the driver's own error: GuardedStore takes any)
        guard_.on_alert(ON_CALL, Alert("b"), 1)
    # Reconnected: the record survived on the server, so the alert is counted, not sent again.
    assert guard_.on_alert(ON_CALL, Alert("c"), 1).action == "count"
