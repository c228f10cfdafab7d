"""The stored ledger of one send: its head and entries, loaded with every value checked against
the plan, and written entry by entry (through the try's fence, ``ledger.fence``)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from airflow_provider_kwtsms.gateway.answer import number_text
from airflow_provider_kwtsms.ledger.codec import (
    CHUNK_SIZE,
    HEAD_KEY,
    LEDGER_VERSION,
    MAX_LEDGER_BATCHES,
    BatchState,
    DamagedValue,
    Entry,
    Fingerprint,
    Head,
    OtherVersion,
    chunk_key,
    decode_chunk,
    decode_head,
    encode_chunk,
    encode_head,
)
from airflow_provider_kwtsms.ledger.errors import LedgerDamagedError, LedgerMismatchError

if TYPE_CHECKING:
    from airflow_provider_kwtsms.ledger.fence import Fence
    from airflow_provider_kwtsms.ledger.store import KeyValueStore

__all__ = ["Ledger"]


class Ledger:
    """Batch states of one send in a store: a head (fingerprint, batch count) and chunks of entries."""

    def __init__(self, store: KeyValueStore, head: Head, entries: dict[int, Entry]):
        self.store = store
        self.head = head
        self.entries = entries
        self.fence: Fence | None = None  # the try's hold on the send: writes only while it owns it

    @property
    def batches(self) -> int:
        return self.head.batches

    @classmethod
    def load(
        cls,
        store: KeyValueStore,
        *,
        expected_batches: int | None = None,
        expected_digest: str | None = None,
    ) -> Ledger | None:
        """The stored ledger, every value checked, or None when there is none.

        ``expected_batches`` and ``expected_digest`` are the plan's (``resume_send`` passes
        both): a head with the plan's fingerprint must count the plan's batches, and then only
        the plan's chunks are read. A head of another send (another fingerprint: the caller's
        "changed send"), or any head when the plan is not given, is read up to its own count,
        which must be at most ``MAX_LEDGER_BATCHES``.
        Raises ``LedgerDamagedError`` naming the key for a value this provider never writes, a
        count that does not fit the plan, an empty chunk or one without its first batch, a chunk
        missing before a stored one, or a chunk or entry past the send's last batch.
        """
        raw = store.get(HEAD_KEY)
        if raw is None:
            if store.get(chunk_key(0)) is not None:  # entries without their head: not a fresh send
                raise LedgerDamagedError(
                    HEAD_KEY,
                    f"is missing while '{chunk_key(0)}' is stored (the head is written before any entry)",
                    keys=f"every '{HEAD_KEY}.c<n>'",
                )
            return None

        def damaged(key: str, problem: str, chunks: int | None = None) -> LedgerDamagedError:
            keys = f"'{HEAD_KEY}' and every '{HEAD_KEY}.c<n>'"
            if chunks is not None:  # the stored ledger's own chunks are known
                named = [f"'{chunk_key(0)}'", f"'{chunk_key(chunks - 1)}'"][: min(chunks, 2)]
                keys = " and ".join([f"'{HEAD_KEY}'", " to ".join(named)] if named else [f"'{HEAD_KEY}'"])
            return LedgerDamagedError(key, problem, keys=keys)

        try:
            head = decode_head(raw)
        except OtherVersion as exc:
            raise LedgerMismatchError(
                f"The stored send ledger has version {exc.version}; this provider reads version "
                f"{LEDGER_VERSION}.",
                action="Finish the send with the provider version that started it, or delete the ledger.",
            ) from None
        except DamagedValue as exc:
            raise damaged(HEAD_KEY, str(exc)) from None
        same_send = expected_digest is None or head.digest == expected_digest
        if same_send and expected_batches is not None and head.batches != expected_batches:
            raise damaged(
                HEAD_KEY,
                f"counts {head.batches} batches, but this send (the same sender, text, test flag and "
                f"recipients, by its fingerprint) has {expected_batches}",
                -(-expected_batches // CHUNK_SIZE),
            )
        size, batches = head.chunk_size, head.batches
        if not (same_send and expected_batches is not None) and batches > MAX_LEDGER_BATCHES:
            raise damaged(
                HEAD_KEY,
                f"counts {number_text(batches)} batches; a send has at most {MAX_LEDGER_BATCHES:,}",
            )
        if head.completed:
            # A compact ledger (``complete``): every batch went out; their entries were let go.
            done = Entry(BatchState.DONE, head.first_try)
            return cls(store, head, dict.fromkeys(range(batches), done))
        # Now bounded: by the plan, or for another send's ledger by MAX_LEDGER_BATCHES.
        chunks = -(-batches // size)
        if head.written > chunks:
            problem = f"says {head.written} chunks were written; {batches} batches make {chunks}"
            raise damaged(HEAD_KEY, problem)
        entries: dict[int, Entry] = {}
        missing: int | None = None
        # A chunk is written when one of its batches is first recorded, and batches are recorded
        # in order: the stored chunks are c0 up to some cN, each holding its first batch. The
        # chunks after cN are missing as a rule (none of their batches recorded yet).
        for chunk in range(chunks + 1):  # one past the last: a chunk there is damage
            key = chunk_key(chunk)
            text = store.get(key)
            if text is None and chunk < head.written:
                last = chunk_key(head.written - 1)
                raise damaged(
                    key, f"is missing, but the head says chunks up to '{last}' were written", chunks
                )
            if text is None:
                missing = chunk if missing is None else missing
                continue
            if chunk == chunks:
                last = f"'{chunk_key(chunks - 1)}'" if chunks else "none"
                raise damaged(
                    key, f"is stored, but the head counts {batches} batches (last chunk {last})", chunks
                )
            if missing is not None:
                raise damaged(
                    chunk_key(missing),
                    f"is missing while a later chunk, {key!r}, is stored (a chunk is written when the "
                    "first of its batches is recorded, and batches are recorded in order)",
                    chunks,
                )
            first = chunk * size
            try:
                found = decode_chunk(text, first, size=size, end=batches)
            except DamagedValue as exc:
                raise damaged(key, str(exc), chunks) from None
            if first not in found:
                raise damaged(
                    key,
                    f"has no entry for its first batch, {first + 1} (key '0'), which was recorded "
                    "when the chunk was written",
                    chunks,
                )
            entries.update(found)
        return cls(store, head, entries)

    @classmethod
    def create(cls, store: KeyValueStore, fp: Fingerprint, batches: int, try_number: int | None) -> Ledger:
        head = Head(LEDGER_VERSION, fp.digest, fp.parts(), batches, CHUNK_SIZE, try_number)
        store.set(HEAD_KEY, encode_head(head))
        return cls(store, head, {})

    def record(self, index: int, entry: Entry) -> None:
        """Write one batch's entry (and so its chunk) through to the store; once a newer try owns
        the send, keep it for this try's yield record instead (``ledger_fence``)."""
        if self.fence is not None and not self.fence.write_allowed():
            self.fence.keep_late(index, entry)
            return
        self.entries[index] = entry
        size = self.head.chunk_size
        first = index // size * size
        chunk = {i: e for i, e in self.entries.items() if first <= i < min(first + size, self.batches)}
        self.store.set(chunk_key(index // size), encode_chunk(chunk, first))
        if index // size >= self.head.written:
            # After the chunk (a crash between leaves a chunk the head does not count, never the
            # reverse): once per chunk, so a chunk lost later reads as damage, not as a fresh start.
            self.head = replace(self.head, written=index // size + 1)
            self.store.set(HEAD_KEY, encode_head(self.head))

    def state(self, index: int) -> BatchState | None:
        entry = self.entries.get(index)
        return entry.state if entry else None

    def anything_sent(self) -> bool:
        """True when some batch went out or may have: a fresh start could send it twice."""
        return any(e.state.maybe_sent for e in self.entries.values())

    def complete(self) -> None:
        """Keep only a head saying every batch went out (the send succeeded): a retry or a clear
        of the task sends nothing again, and the store keeps one small value, not the entries."""
        self.head = replace(self.head, completed=True, written=0)
        self.store.set(HEAD_KEY, encode_head(self.head))
        for chunk in range(-(-self.batches // self.head.chunk_size)):
            self.store.delete(chunk_key(chunk))

    def delete(self) -> None:
        for chunk in range(-(-self.batches // self.head.chunk_size)):
            self.store.delete(chunk_key(chunk))
        self.store.delete(HEAD_KEY)
