"""The kwtSMS JSON API: the client, its one HTTP round trip, the answers read as untrusted, and the
gateway's limits."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_kwtsms._lazy import lazy_exports

if TYPE_CHECKING:
    from airflow_provider_kwtsms.gateway.client import KwtSMSClient
    from airflow_provider_kwtsms.gateway.retry_policy import RetryPolicy
    from airflow_provider_kwtsms.gateway.transport import Transport

_PUBLIC = {
    "KwtSMSClient": "client",
    "Transport": "transport",
    "RetryPolicy": "retry_policy",
}
__all__ = [
    "KwtSMSClient",
    "RetryPolicy",
    "Transport",
]
__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
