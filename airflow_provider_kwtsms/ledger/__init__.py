"""The send ledger: a bulk send that resumes across retries, never twice and never lost, owned by
one try at a time."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_kwtsms._lazy import lazy_exports

if TYPE_CHECKING:
    from airflow_provider_kwtsms.ledger.resume import (
        BatchesFailedError,
        BatchNotSentError,
        KeyValueStore,
        LedgerDamagedError,
        LedgerMismatchError,
        MemoryStore,
        SendPaused,
        SupersededError,
        UncertainBatchesError,
        delete_ledger,
        resume_send,
    )

_PUBLIC = {
    "resume_send": "resume",
    "delete_ledger": "resume",
    "KeyValueStore": "resume",
    "MemoryStore": "resume",
    "LedgerMismatchError": "resume",
    "LedgerDamagedError": "resume",
    "UncertainBatchesError": "resume",
    "BatchNotSentError": "resume",
    "BatchesFailedError": "resume",
    "SendPaused": "resume",
    "SupersededError": "resume",
}
__all__ = [
    "BatchNotSentError",
    "BatchesFailedError",
    "KeyValueStore",
    "LedgerDamagedError",
    "LedgerMismatchError",
    "MemoryStore",
    "SendPaused",
    "SupersededError",
    "UncertainBatchesError",
    "delete_ledger",
    "resume_send",
]
__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
