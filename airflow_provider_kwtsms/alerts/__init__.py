"""Alerts that never storm: one SMS per incident, a digest for the rest, none lost (the storm
guard of ``KwtSMSNotifier``): its rule, its shared store, its texts and its courier."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_kwtsms._lazy import lazy_exports

if TYPE_CHECKING:
    from airflow_provider_kwtsms.alerts.guard import Alert, KeyState, Report, Verdict
    from airflow_provider_kwtsms.alerts.store import (
        AlertStoreUnavailable,
        FileAlertStore,
        GuardedStore,
        MemoryAlertStore,
        open_alert_store,
    )
    from airflow_provider_kwtsms.alerts.storm import Decision, Outgoing, StormGuard

_PUBLIC = {
    "Alert": "guard",
    "KeyState": "guard",
    "Report": "guard",
    "Verdict": "guard",
    "AlertStoreUnavailable": "store",
    "FileAlertStore": "store",
    "GuardedStore": "store",
    "MemoryAlertStore": "store",
    "open_alert_store": "store",
    "Decision": "storm",
    "Outgoing": "storm",
    "StormGuard": "storm",
}
__all__ = [
    "Alert",
    "AlertStoreUnavailable",
    "Decision",
    "FileAlertStore",
    "GuardedStore",
    "KeyState",
    "MemoryAlertStore",
    "Outgoing",
    "Report",
    "StormGuard",
    "Verdict",
    "open_alert_store",
]
__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
