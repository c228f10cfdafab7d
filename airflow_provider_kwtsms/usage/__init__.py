"""What SMS cost: the usage report behind the kwtSMS page of the Airflow UI (credits per DAG
per day, problems, alerts, balances), built from the XComs the provider's tasks write."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_kwtsms._lazy import lazy_exports

if TYPE_CHECKING:
    from airflow_provider_kwtsms.usage.records import Reading, Row
    from airflow_provider_kwtsms.usage.report import Period, build_report, parse_period

_PUBLIC = {
    "Row": "records",
    "Reading": "records",
    "Period": "report",
    "build_report": "report",
    "parse_period": "report",
}
__all__ = ["Period", "Reading", "Row", "build_report", "parse_period"]
__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
