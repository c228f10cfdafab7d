"""The FastAPI app behind the kwtSMS page: the page, its script, and the JSON it draws.

A thin adapter: it reads the XCom rows of the period through the API server's own database
session, keeps those of the DAGs the user may read, and hands them to ``usage.report``. It
writes nothing: a balance the page asks the gateway for is kept in this process's memory only.
Every route needs the auth manager's leave to read DAGs (Airflow's own dependency, as its
public API's DAG routes use).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from datetime import UTC, datetime
from importlib.resources import files
from typing import Annotated, Any

from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Text, cast, or_, select

from airflow_provider_kwtsms.errors import KwtSMSInputError
from airflow_provider_kwtsms.usage.records import (
    ALERT_KEY,
    READ_KEYS,
    READING_MARKER,
    SUMMARY_MARKER,
    Reading,
    Row,
)
from airflow_provider_kwtsms.usage.report import build_report, parse_period

# The page's own script and styles only; no other origin, and only the Airflow UI may frame it.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
        "frame-ancestors 'self'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
STATIC = {"page.js": "text/javascript", "page.css": "text/css", "icon.svg": "image/svg+xml"}
BALANCE_MAX_AGE = 60.0  # seconds a page's balance reading serves before the gateway is asked again
MAX_CONNECTIONS = 20  # connections one balance request reads
PAGE_READINGS = 2000  # readings this process keeps (memory only)

ReadDags = Depends(requires_access_dag("GET"))


class PageReadings:
    """The balances the page read from the gateway: in memory, newest last, bounded."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._readings: deque[Reading] = deque(maxlen=PAGE_READINGS)
        self._asked: dict[str, float] = {}

    def all(self) -> list[Reading]:
        with self._lock:
            return list(self._readings)

    def due(self, connection: str) -> bool:
        with self._lock:
            return time.monotonic() - self._asked.get(connection, -BALANCE_MAX_AGE) >= BALANCE_MAX_AGE

    def add(self, connection: str, available: float) -> None:
        with self._lock:
            self._asked[connection] = time.monotonic()
            self._readings.append(Reading(connection, datetime.now(UTC), available, "page"))


# The fields the report reads, extracted by the database (SQLAlchemy's JSON index: JSON_EXTRACT on
# SQLite and MySQL, -> on PostgreSQL): a summary's per-batch table and number lists can weigh
# hundreds of kilobytes, and the page needs none of them.
FIELDS = (
    *("ok", "dry_run", "test", "points_charged", "numbers_sent", "balance_after", "connection"),
    *("counts", "error", "failed", "suppressed"),  # failed/suppressed: [] unless something was
    *("available", "min_balance", "targets"),
)


def _rows(session: Any, start: datetime, end: datetime, readable: set[str] | None) -> list[Row]:
    from airflow.models.xcom import XComModel

    value = XComModel.value
    as_text = cast(value, Text)
    where = (
        XComModel.key.in_(READ_KEYS),
        XComModel.timestamp >= start,
        XComModel.timestamp < end,
        # A first cut in the database; records.py decides on the shape.
        or_(
            XComModel.key == ALERT_KEY,
            as_text.like(f"%{SUMMARY_MARKER}%"),
            as_text.like(f"%{READING_MARKER}%"),
        ),
    )
    where_from = (XComModel.dag_id, XComModel.run_id, XComModel.task_id, XComModel.map_index)
    query = select(*where_from, XComModel.key, XComModel.timestamp, *(value[name] for name in FIELDS))
    rows: list[Row] = []
    whole: list[Row] = []
    for dag_id, run_id, task_id, map_index, key, at, *fields in session.execute(query.where(*where)):
        if readable is not None and dag_id not in readable:
            continue
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        found = {name: field for name, field in zip(FIELDS, fields, strict=True) if field is not None}
        row = Row(dag_id, run_id, task_id, map_index, key, at, found)
        (rows if found else whole).append(row)
    # A value stored as a JSON string (XComModel.serialize_value's form) has no fields to extract:
    # those few are read whole.
    for row in whole:
        stored = session.execute(
            select(value).where(
                XComModel.dag_id == row.dag_id,
                XComModel.run_id == row.run_id,
                XComModel.task_id == row.task_id,
                XComModel.map_index == row.map_index,
                XComModel.key == row.key,
            )
        ).scalar()
        rows.append(Row(row.dag_id, row.run_id, row.task_id, row.map_index, row.key, row.at, stored))
    return rows


def _readable_dags(user: Any, session: Any) -> set[str]:
    from airflow.api_fastapi.app import get_auth_manager

    return set(get_auth_manager().get_authorized_dag_ids(user=user, method="GET", session=session))


def _kwtsms_connections(session: Any) -> list[str]:
    from airflow.models.connection import Connection

    query = select(Connection.conn_id).where(Connection.conn_type == "kwtsms").order_by(Connection.conn_id)
    return [conn_id for (conn_id,) in session.execute(query.limit(MAX_CONNECTIONS))]


def _read_balance(conn_id: str) -> tuple[float | None, str]:
    from airflow_provider_kwtsms.hooks.kwtsms import KwtSMSHook, explain_error

    hook = KwtSMSHook(kwtsms_conn_id=conn_id)
    try:
        client = hook.get_client()
        if not hasattr(client, "balance"):
            return None, "this connection sends by e-mail (transport smtp): no balance to read"
        return client.balance().available, ""
    except Exception as error:  # every failure is shown on the page, as one line without secrets
        return None, explain_error(error)
    finally:
        hook.close()


def create_app() -> FastAPI:
    """The app the plugin mounts at ``/kwtsms``."""
    app = FastAPI(title="kwtSMS usage", docs_url=None, redoc_url=None, openapi_url=None)
    readings = PageReadings()
    package = files("airflow_provider_kwtsms.plugins")

    @app.get("/", dependencies=[ReadDags], response_class=HTMLResponse)
    def page() -> HTMLResponse:
        return HTMLResponse(package.joinpath("page.html").read_text("utf-8"), headers=SECURITY_HEADERS)

    @app.get("/static/{name}", dependencies=[ReadDags])
    def static(name: str) -> Response:
        if name not in STATIC:
            raise HTTPException(404, f"No file {name[:40]!r} here.")
        return Response(
            package.joinpath(name).read_bytes(), media_type=STATIC[name], headers=SECURITY_HEADERS
        )

    @app.get("/icon.svg")  # the navigation's icon: drawn before any page is opened, holds no data
    def icon() -> Response:
        return Response(package.joinpath("icon.svg").read_bytes(), media_type="image/svg+xml")

    @app.get("/api/usage", dependencies=[ReadDags])
    def usage(
        user: GetUserDep,
        session: SessionDep,
        start: Annotated[str | None, Query(max_length=40)] = None,
        end: Annotated[str | None, Query(max_length=40)] = None,
        days: Annotated[str | None, Query(max_length=40)] = None,
        tz: Annotated[str | None, Query(max_length=80)] = None,
    ) -> dict[str, Any]:
        """The figures of the page, for the period asked (default: the last 30 days, UTC)."""
        try:
            period = parse_period(start, end, days, tz, datetime.now(UTC).date())
        except KwtSMSInputError as error:
            raise HTTPException(400, str(error)) from None
        rows = _rows(session, period.start, period.end, _readable_dags(user, session))
        report = build_report(rows, period, page_readings=readings.all())
        report["generated_at"] = datetime.now(UTC).isoformat()
        return report

    @app.get("/api/balance", dependencies=[ReadDags])
    def balance(user: GetUserDep, session: SessionDep) -> dict[str, Any]:
        """The balance now of each kwtsms connection (those in the database, and those the last 30
        days' sends and readings name: a connection from an environment variable or a secrets
        backend is not listed anywhere), asked of the gateway at most once a minute; the readings
        join the trend, in this process's memory."""
        period = parse_period(None, None, None, None, datetime.now(UTC).date())
        rows = _rows(session, period.start, period.end, _readable_dags(user, session))
        named = {b["connection"] for b in build_report(rows, period)["balances"] if b["connection"]}
        out: list[dict[str, Any]] = []
        for conn_id in sorted(set(_kwtsms_connections(session)) | named)[:MAX_CONNECTIONS]:
            if not readings.due(conn_id):
                out.append({"connection": conn_id, "available": None, "error": "", "fresh": False})
                continue
            available, error = _read_balance(conn_id)
            if available is not None:
                readings.add(conn_id, available)
            out.append({"connection": conn_id, "available": available, "error": error, "fresh": True})
        return {"connections": out, "at": datetime.now(UTC).isoformat()}

    return app
