"""The gateway's five requests a second: pacing in one process, across the processes of a machine,
and across machines (a shared store)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_kwtsms._lazy import lazy_exports

if TYPE_CHECKING:
    from airflow_provider_kwtsms.rate.bucket import Pacer, TokenBucket
    from airflow_provider_kwtsms.rate.machine import MachineBucket, default_pacer
    from airflow_provider_kwtsms.rate.shared import SharedBucket, open_store

_PUBLIC = {
    "TokenBucket": "bucket",
    "Pacer": "bucket",
    "MachineBucket": "machine",
    "default_pacer": "machine",
    "SharedBucket": "shared",
    "open_store": "shared",
}
__all__ = [
    "MachineBucket",
    "Pacer",
    "SharedBucket",
    "TokenBucket",
    "default_pacer",
    "open_store",
]
__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
