"""The send ledger's stored form: typed entries in memory, one compact codec to and from the store.

A ledger is a head (version, the plan's fingerprint, batch count, chunk size, first try) under
``HEAD_KEY`` and its entries in chunks of ``CHUNK_SIZE`` batches under ``HEAD_KEY.c<n>``. Stored
entries use one-letter keys and one-letter states, so a million recipients (5,000 batches) fit
in 50 values of a few KB each, under the task state store's 64 KB per-value limit. Only this
module knows those letters: the rest of the code reads ``Entry`` and ``BatchState``.

The format is version ``LEDGER_VERSION`` (1), the one the provider has always written: ledgers
left by a running version stay readable.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_kwtsms.results import SendPlan

LEDGER_VERSION = 1
HEAD_KEY = "kwtsms_ledger"
CHUNK_SIZE = 100


class BatchState(StrEnum):
    """What the ledger knows about one batch (the value is its stored letter)."""

    PENDING = "p"  # written just before the request: it may or may not have reached kwtSMS
    DONE = "d"  # the gateway answered OK (msg-id known)
    INFERRED = "i"  # answer lost; the balance shows it was charged, so it went out (no msg-id)
    FAILED = "f"  # certainly not sent (error answer, connection refused, 5xx before processing)
    SKIPPED_UNCERTAIN = "s"  # outcome unknown; on_uncertain="skip" chose not to send it again
    UNRESOLVED = "u"  # outcome unknown; on_uncertain="fail" stopped on it; a later try decides again

    @property
    def sent(self) -> bool:
        return self in (BatchState.DONE, BatchState.INFERRED)

    @property
    def maybe_sent(self) -> bool:
        """Went out or may have: a fresh start could send it twice."""
        return self is not BatchState.FAILED


@dataclass(frozen=True)
class Entry:
    """One batch's record. ``balance_before`` and ``charge`` are the evidence for resolving a
    lost answer: the balance read before the request and what the batch should cost."""

    state: BatchState
    try_number: int | None = None
    msg_id: str | None = None
    points: int | None = None
    balance_after: float | None = None
    timestamp: int | None = None
    balance_before: float | None = None
    charge: int | None = None
    error_code: str | None = None
    owner: str | None = None  # a pending batch's writer: the fence token of its try (ledger_fence)


# Stored key of each Entry field (the format of version 1).
_KEYS = {
    "state": "s",
    "try_number": "t",
    "msg_id": "m",
    "points": "p",
    "balance_after": "b",
    "timestamp": "ts",
    "balance_before": "bb",
    "charge": "c",
    "error_code": "e",
    "owner": "o",
}
_FIELDS = {key: name for name, key in _KEYS.items()}


def encode_entry(entry: Entry) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, key in _KEYS.items():
        value = getattr(entry, name)
        if value is None:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            continue  # JSON has no NaN: an unknown balance (the e-mail channel's) is left out
        out[key] = value.value if isinstance(value, BatchState) else value
    return out


def decode_entry(raw: dict[str, Any]) -> Entry:
    values = {_FIELDS[key]: value for key, value in raw.items() if key in _FIELDS}
    values["state"] = BatchState(str(values.get("state")))
    return Entry(**values)


def encode_chunk(entries: dict[int, Entry], first: int) -> str:
    """Entries ``first``.. of one chunk, keyed by their offset in it."""
    stored = {str(i - first): encode_entry(e) for i, e in sorted(entries.items())}
    return json.dumps(stored, separators=(",", ":"))


def decode_chunk(text: str, first: int) -> dict[int, Entry]:
    return {first + int(offset): decode_entry(raw) for offset, raw in json.loads(text).items()}


@dataclass(frozen=True)
class Head:
    version: int
    digest: str  # the plan's fingerprint
    parts: dict[str, Any]  # its parts, to name what changed
    batches: int
    chunk_size: int = CHUNK_SIZE
    first_try: int | None = None


def encode_head(head: Head) -> str:
    return json.dumps(
        {
            "v": head.version,
            "fp": head.digest,
            "parts": head.parts,
            "n": head.batches,
            "k": head.chunk_size,
            "t0": head.first_try,
        },
        separators=(",", ":"),
    )


def decode_head(text: str) -> Head:
    raw = json.loads(text)
    return Head(
        version=raw.get("v"),
        digest=raw.get("fp", ""),
        parts=raw.get("parts") or {},
        batches=int(raw.get("n", 0)),
        chunk_size=int(raw.get("k", CHUNK_SIZE)),
        first_try=raw.get("t0"),
    )


def chunk_key(chunk: int) -> str:
    return f"{HEAD_KEY}.c{chunk}"


# -- fingerprint ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fingerprint:
    """What makes two sends the same send. Stored as short hashes: no numbers, no text."""

    digest: str
    sender: str
    message: str
    recipients: str
    test: bool

    def parts(self) -> dict[str, Any]:
        return {
            "sender": self.sender,
            "message": self.message,
            "recipients": self.recipients,
            "test": self.test,
        }

    def differences(self, stored: dict[str, Any]) -> list[str]:
        names = {
            "sender": "sender ID",
            "message": "message text",
            "recipients": "recipients or their order",
            "test": "test mode",
        }
        return [label for key, label in names.items() if stored.get(key) != self.parts()[key]]


def _h(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def fingerprint(plan: SendPlan) -> Fingerprint:
    """The plan's identity: sender, cleaned text, test flag and the batches' numbers in order.

    The batch layout is part of it, so a change of batch size cannot shift numbers between the
    stored batch states.
    """
    sender = _h(plan.sender)
    message = _h(plan.message)
    recipients = _h("|".join(",".join(batch) for batch in plan.batches))
    digest = _h(json.dumps([sender, message, recipients, bool(plan.test)]))
    return Fingerprint(digest, sender, message, recipients, bool(plan.test))
