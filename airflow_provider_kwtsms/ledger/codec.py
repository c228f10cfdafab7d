"""The send ledger's stored form: typed entries in memory, one compact codec to and from the store.

A ledger is a head (version, the plan's fingerprint, batch count, chunk size, first try) under
``HEAD_KEY`` and its entries in chunks of ``CHUNK_SIZE`` batches under ``HEAD_KEY.c<n>``. Stored
entries use one-letter keys and one-letter states, so a million recipients (5,000 batches) fit
in 50 values of a few KB each, under the task state store's 64 KB per-value limit. Only this
module knows those letters: the rest of the code reads ``Entry`` and ``BatchState``.

The format is version ``LEDGER_VERSION`` (1), the one the provider has always written: ledgers
left by a running version stay readable.

Every stored value is untrusted: the decoders accept exactly what this format writes (types,
ranges, offsets inside their chunk) and raise ``DamagedValue`` saying what is wrong for anything
else; ``Ledger.load`` names the key. Keys they do not know are ignored, not refused: a later
release may add an optional field to version 1 (an owner in the head, say), and an older worker
resuming that ledger must not call it damaged. An unknown key cannot change what a known one
means; a field that would must come with a new version, which is refused as another version.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from airflow_provider_kwtsms.gateway.answer import MAX_NUMBER, error_code, msg_id, number_text, one_line

if TYPE_CHECKING:
    from airflow_provider_kwtsms.send.results import SendPlan

LEDGER_VERSION = 1
HEAD_KEY = "kwtsms_ledger"
CHUNK_SIZE = 100
# The most batches the head of an earlier, different send may count: 20 million numbers, 4 times a
# send to every mobile in Kuwait. The current send's own ledger must count its plan's batches; this
# bounds reading any other, so a damaged count cannot make a load or a delete endless.
MAX_LEDGER_BATCHES = 100_000
# The most points one batch may be recorded to cost (200 numbers x 7 pages is 1,400 at 1 point).
MAX_BATCH_POINTS = 1_000_000


class DamagedValue(ValueError):
    """A stored value this format never writes; the message says what is wrong with it."""


class OtherVersion(ValueError):
    """A head of another format version (a whole number other than ``LEDGER_VERSION``)."""

    def __init__(self, version: int) -> None:
        super().__init__(f"ledger version {version}")
        self.version = version


class BatchState(StrEnum):
    """What the ledger knows about one batch (stored as one letter: ``_LETTERS``, this module's)."""

    PENDING = "pending"  # written just before the request: it may or may not have reached kwtSMS
    DONE = "done"  # the gateway answered OK (msg-id known)
    INFERRED = "inferred"  # answer lost; the balance shows it was charged, so it went out (no msg-id)
    FAILED = "failed"  # certainly not sent (error answer, connection refused, 5xx before processing)
    SKIPPED_UNCERTAIN = "skipped_uncertain"  # outcome unknown; on_uncertain="skip" did not resend it
    UNRESOLVED = "unresolved"  # outcome unknown; on_uncertain="fail" stopped on it; a later try decides

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
        out[key] = _LETTERS[value] if isinstance(value, BatchState) else value
    return out


def decode_entry(raw: Any) -> Entry:
    """One stored entry, checked field by field (``DamagedValue`` names the field)."""
    if not isinstance(raw, dict):
        raise DamagedValue(f"is {show(raw)}, not an entry (an object with a state 's')")
    if "s" not in raw:
        raise DamagedValue("has no state 's'")
    state = raw["s"]
    if not isinstance(state, str) or state not in _STATES:
        raise DamagedValue(f"has the state 's' {show(state)}: not one of {', '.join(sorted(_STATES))}")
    values: dict[str, Any] = {"state": _STATE_OF[state]}
    for key, check in _CHECKS.items():
        if key in raw and raw[key] is not None:
            value = raw[key]
            wrong = check(value)
            if wrong:
                raise DamagedValue(f"has {_FIELDS[key]} {key!r} {show(value)}: {wrong}")
            values[_FIELDS[key]] = float(value) if key in ("b", "bb") else value
    return Entry(**values)


def is_token(value: Any) -> bool:
    """A try's fence token (``ledger_fence``): 16 lower-case hex digits."""
    return isinstance(value, str) and len(value) == 16 and all(c in "0123456789abcdef" for c in value)


def _whole(low: int, high: float) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
            return None
        return f"not a whole number from {low} to {number_text(int(high))}"

    return check


def _balance(value: Any) -> str | None:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if number and math.isfinite(value) and abs(value) <= MAX_NUMBER:
        return None
    return f"not a finite number within {number_text(int(MAX_NUMBER))} either side of 0"


def _msg_id(value: Any) -> str | None:
    if isinstance(value, str) and msg_id(value) == value:
        return None
    return "not a message ID (1 to 100 letters, digits and _.:-)"


def _error_code(value: Any) -> str | None:
    if isinstance(value, str) and error_code(value) == value:
        return None
    return "not an error code (1 to 40 letters, digits and _)"


# The stored letter of each state (the format of version 1): only this module knows them.
_LETTERS = {
    BatchState.PENDING: "p",
    BatchState.DONE: "d",
    BatchState.INFERRED: "i",
    BatchState.FAILED: "f",
    BatchState.SKIPPED_UNCERTAIN: "s",
    BatchState.UNRESOLVED: "u",
}
_STATE_OF = {letter: state for state, letter in _LETTERS.items()}
_STATES = frozenset(_STATE_OF)
_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "t": _whole(0, MAX_NUMBER),
    "m": _msg_id,
    "p": _whole(0, MAX_BATCH_POINTS),
    "b": _balance,
    "ts": _whole(0, MAX_NUMBER),
    "bb": _balance,
    "c": _whole(0, MAX_BATCH_POINTS),
    "e": _error_code,
    "o": lambda value: None if is_token(value) else "not a try's token (16 hex digits)",
}


def encode_chunk(entries: dict[int, Entry], first: int) -> str:
    """Entries ``first``.. of one chunk, keyed by their offset in it."""
    stored = {str(i - first): encode_entry(e) for i, e in sorted(entries.items())}
    return json.dumps(stored, separators=(",", ":"))


def decode_chunk(
    text: str, first: int, *, size: int = CHUNK_SIZE, end: int | None = None
) -> dict[int, Entry]:
    """The entries of the chunk that starts at batch ``first``: offsets below ``size`` and, when
    ``end`` (the send's batch count) is given, batches below it."""
    raw = parse(text)
    if not isinstance(raw, dict):
        raise DamagedValue(f"is {show(raw)}, not a chunk of entries (an object)")
    entries: dict[int, Entry] = {}
    for offset, value in raw.items():
        if not _is_offset(offset, size):
            raise DamagedValue(f"has the key {show(offset)}: an entry's key is its offset, 0 to {size - 1}")
        index = first + int(offset)
        if end is not None and index >= end:
            raise DamagedValue(f"has an entry for batch {index + 1} (key {offset!r}); the send has {end}")
        try:
            entries[index] = decode_entry(value)
        except DamagedValue as exc:
            raise DamagedValue(f"has an entry for batch {index + 1} (key {offset!r}) that {exc}") from None
    return entries


def _is_offset(key: str, size: int) -> bool:
    """An entry's key as ``str(int)`` writes it ("0", "17"; not "01", "-1", "١"), below ``size``."""
    return key.isascii() and key.isdigit() and len(key) <= 6 and str(int(key)) == key and int(key) < size


def _is_hash(value: Any) -> bool:
    """A fingerprint part as ``_h`` writes it: 16 lower-case hex digits."""
    return isinstance(value, str) and len(value) == 16 and all(c in "0123456789abcdef" for c in value)


def parse(text: Any) -> Any:
    """The JSON value of one stored value; ``DamagedValue`` for anything that is not JSON text
    (NaN and Infinity literals included: this format never writes them)."""
    if not isinstance(text, str):
        raise DamagedValue(f"is a {type(text).__name__}, not text")
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        where = f"at character {exc.pos} of {len(text)} ({exc.msg.removesuffix(' at')})"
        raise DamagedValue(f"is not valid JSON {where}: cut short or overwritten") from None
    except (ValueError, RecursionError) as exc:  # NaN, a 5,000-digit number, nesting too deep
        raise DamagedValue(f"is not valid JSON: {one_line(str(exc), 80)}") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def show(value: Any) -> str:
    """A stored value as a short, printable JSON-ish phrase for an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return number_text(value)
    if isinstance(value, str):
        return repr(one_line(value, 40)) + (f" ({len(value)} characters)" if len(value) > 40 else "")
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object" if value else "an empty object"
    return f"a {type(value).__name__}"


@dataclass(frozen=True)
class Head:
    version: int
    digest: str  # the plan's fingerprint
    parts: dict[str, Any]  # its parts, to name what changed
    batches: int
    chunk_size: int = CHUNK_SIZE
    first_try: int | None = None
    written: int = 0  # chunks c0.. known written: one missing or emptied below it is damage
    completed: bool = False  # every batch sent; the entries were let go (a compact ledger)


def encode_head(head: Head) -> str:
    return json.dumps(
        {
            "v": head.version,
            "fp": head.digest,
            "parts": head.parts,
            "n": head.batches,
            "k": head.chunk_size,
            "t0": head.first_try,
            "w": head.written,
            **({"c": True} if head.completed else {}),
        },
        separators=(",", ":"),
    )


def decode_head(text: str) -> Head:
    """The stored head, checked: ``OtherVersion`` for another format version, ``DamagedValue``
    for anything version 1 never writes, a fingerprint that does not match its parts included."""
    raw = parse(text)
    if not isinstance(raw, dict):
        raise DamagedValue(f"is {show(raw)}, not a ledger head (an object)")
    version = raw.get("v")
    if not isinstance(version, int) or isinstance(version, bool):
        raise DamagedValue(f"has the version 'v' {show(version)}, not a whole number")
    if version != LEDGER_VERSION:
        raise OtherVersion(version)
    batches, size, first_try = raw.get("n"), raw.get("k"), raw.get("t0")
    if not isinstance(batches, int) or _whole(0, MAX_NUMBER)(batches):
        raise DamagedValue(f"has the batch count 'n' {show(batches)}, not a whole number")
    if type(size) is not int or size != CHUNK_SIZE:
        raise DamagedValue(f"has the chunk size 'k' {show(size)}: version 1 always writes {CHUNK_SIZE}")
    if first_try is not None and _whole(0, MAX_NUMBER)(first_try):
        raise DamagedValue(f"has the first try 't0' {show(first_try)}: not a whole number or null")
    written = raw.get("w", 0)  # absent in heads written before it was added: nothing known
    if type(written) is not int or not 0 <= written <= -(-MAX_LEDGER_BATCHES // CHUNK_SIZE):
        raise DamagedValue(f"has the chunks written 'w' {show(written)}, not a whole number of chunks")
    completed = raw.get("c", False)
    if type(completed) is not bool:
        raise DamagedValue(f"has the completed mark 'c' {show(completed)}, not true or false")
    digest, parts = raw.get("fp"), raw.get("parts")
    if not isinstance(parts, dict):
        raise DamagedValue(f"has the fingerprint's parts 'parts' {show(parts)}, not an object")
    for name in ("sender", "message", "recipients"):
        if not _is_hash(parts.get(name)):
            raise DamagedValue(
                f"has the fingerprint part {name!r} {show(parts.get(name))}, not 16 hex digits"
            )
    if not isinstance(parts.get("test"), bool):
        raise DamagedValue(f"has the fingerprint part 'test' {show(parts.get('test'))}, not true or false")
    if digest != _digest(parts["sender"], parts["message"], parts["recipients"], parts["test"]):
        raise DamagedValue(f"has the fingerprint 'fp' {show(digest)}, which does not match its parts")
    return Head(
        version=version,
        digest=digest,
        parts=parts,
        batches=batches,
        chunk_size=size,
        first_try=first_try,
        written=written,
        completed=completed,
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
    """The plan's identity: sender, cleaned text(s), test flag and the batches' numbers in order.

    The batch layout is part of it, so a change of batch size cannot shift numbers between the
    stored batch states. A plan of several texts (per-recipient rows) hashes every text with the
    first batch that carries it, so each batch's text is part of it too; a plan of one text
    hashes it as every version did (a ledger left by an earlier release still matches).
    """
    sender = _h(plan.sender)
    message = _h(plan.message) if plan.groups is None else _texts_hash(plan)
    recipients = _h("|".join(",".join(batch) for batch in plan.batches))
    digest = _digest(sender, message, recipients, bool(plan.test))
    return Fingerprint(digest, sender, message, recipients, bool(plan.test))


def _texts_hash(plan: SendPlan) -> str:
    """Every (first batch, text) pair of a plan of several texts, hashed as one stream (a million
    texts are never joined into one string)."""
    assert plan.groups is not None
    digest = hashlib.sha256(b"texts")
    for start, text in zip(plan.groups.starts, plan.groups.texts, strict=False):
        data = text.encode("utf-8", "surrogatepass")
        digest.update(b"%d:%d:" % (start, len(data)))  # length-prefixed: no two lists hash alike
        digest.update(data)
    return digest.hexdigest()[:16]


def _digest(sender: str, message: str, recipients: str, test: bool) -> str:
    """The fingerprint of its parts: a stored head's own digest is checked with it too."""
    return _h(json.dumps([sender, message, recipients, test]))
