"""Fencing: one try owns a send at a time, so two tries that overlap never send a batch twice.

Airflow can run a task's next try while the last one still runs (a worker that stopped answering
its heartbeat, a paused VM, a scheduler that lost track), and the core's users may call
``resume_send`` from anywhere. kwtSMS takes no idempotency key, and the ledger's stores (Airflow's
task state store, Variables, a dict) offer no compare-and-set. So ownership is a lease on the
clock, checked by the owner itself:

- **claim**: a try writes the owner record (``OWNER_KEY``: its random token), waits
  ``lease + FENCE_MARGIN`` and reads it back. Another token there: a newer try claimed after it,
  and it stops before sending anything (``SupersededError``). Of tries that claim together, the
  last writer wins and every other one sees it.
- **confirm**: before each batch the owner reads the record again. A read that shows it as owner
  is good for ``lease`` seconds of this process's monotonic clock, counted from the read's
  start; a request starts only inside that lease (``guard``, called right before the request is
  written). So once a newer try's claim is stored, an older try starts no request after
  ``lease`` seconds, and the claimant waits that out before it reads the ledger.
- **writes**: the owner writes the ledger only inside its lease. A superseded try never writes
  over the new owner's entries: what it learns afterwards (the answers of its last requests)
  goes to its own yield record.
- **yield**: a try that stops (done, failed or superseded) writes ``kwtsms_ledger.y.<token>``
  once its requests have ended: "nothing of mine is in the air", with the outcomes it could not
  store. Pending batches of a try that has not yielded (it was killed, or is stopped) are judged
  from the balance only once its last request must have ended: ``lease`` plus the channel's
  request deadline after the claim.

What is left: a process frozen (SIGSTOP, a VM pause) in the microseconds between the guard and
the request's first byte sends that one request late; a store write that takes longer than
``FENCE_MARGIN`` to land after its lease can overwrite a newer entry of the same chunk until the
owner writes that chunk again. Variables read through a cache (``[secrets] use_cache``) can be
stale: the fence needs it off (the default).

No Airflow import here.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from airflow_provider_kwtsms.errors import KwtSMSInputError
from airflow_provider_kwtsms.ledger.codec import (
    HEAD_KEY,
    BatchState,
    Entry,
    decode_entry,
    encode_entry,
    is_token,
    parse,
)
from airflow_provider_kwtsms.send.batch_loop import StopSending

if TYPE_CHECKING:
    from airflow_provider_kwtsms.ledger.store import KeyValueStore

log = logging.getLogger("airflow_provider_kwtsms.ledger")

OWNER_KEY = f"{HEAD_KEY}.owner"
YIELD_PREFIX = f"{HEAD_KEY}.y."
FENCE_VERSION = 1

# How long a confirmed ownership lets a try start requests. Short, because every try waits it
# out once at its claim; long enough that the pace of a batch (0.2 s at 5 a second) rarely needs
# a second read, and that a store read through Airflow's API server ends well within it.
FENCE_LEASE = 1.0
# Reads in a row that may end after their own lease (a store slower than the lease) before the
# try gives up with a retryable error.
MAX_SLOW_READS = 3
# Added to every wait for an older try's lease: clock-rate differences and thread scheduling.
FENCE_MARGIN = 0.25
# How often a claimant looks for the yield of a try whose pending batches it must judge.
YIELD_POLL = 0.1
# The most late outcomes a yield record carries (the requests in flight are far fewer).
MAX_LATE_ENTRIES = 1000
# Earlier owners an owner record remembers (their yield records are deleted with the ledger).
MAX_TOKENS = 32
SUPERSEDED = "SUPERSEDED"
FENCE_LAPSED = "FENCE_LAPSED"


class FenceError(StopSending):
    """This try no longer holds the send: it starts no request and writes no ledger entry more."""


class SupersededError(FenceError):
    """A newer try owns this send: this one stopped, sending nothing more; the newer try accounts
    for what this one sent."""

    def __init__(self, description: str) -> None:
        super().__init__(
            SUPERSEDED,
            description,
            action="Nothing to do: the newer try of this task finishes the send (no batch is sent twice).",
        )
        self.permanent = True
        self.retryable = False


class FenceLapsedError(FenceError):
    """The lease ran out between a batch's turn and its request: the request was not written."""

    def __init__(self, description: str | None = None) -> None:
        super().__init__(
            FENCE_LAPSED,
            description or "the ownership lease ran out before the request was written; it was not sent",
            action="Nothing to do: the send checks its ownership again and sends the batch.",
        )
        self.permanent = False
        self.retryable = True


def yield_key(token: str) -> str:
    return YIELD_PREFIX + token


def _owner_token(raw: str | None) -> str | None:
    """The token in a stored owner record; None when absent. Damage is anyone else's token."""
    if raw is None:
        return None
    try:
        value = parse(raw)
    except ValueError:
        return "<unreadable>"
    token = value.get("t") if isinstance(value, dict) else None
    return token if isinstance(token, str) and token else "<unreadable>"


def _owner_tokens(raw: str | None) -> list[str]:
    """Every token an owner record names: earlier owners', then its own (valid hex only)."""
    if raw is None:
        return []
    try:
        value = parse(raw)
    except ValueError:
        return []
    if not isinstance(value, dict):
        return []
    earlier = value.get("y")
    tokens = [*(earlier[-MAX_TOKENS:] if isinstance(earlier, list) else []), value.get("t")]
    return [t for t in tokens if is_token(t)]


def _read_yield(raw: str | None, token: str, plan_batches: int) -> dict[int, Entry] | None:
    """A try's yield record: its late outcomes (None: it has not yielded). A damaged record counts
    as a yield without outcomes: its pending batches are then judged from the balance."""
    if raw is None:
        return None
    try:
        value = parse(raw)
        entries = value.get("e", {}) if isinstance(value, dict) and value.get("t") == token else {}
        late: dict[int, Entry] = {}
        for offset, stored in list(entries.items())[:MAX_LATE_ENTRIES]:
            index = int(offset)
            if 0 <= index < plan_batches and isinstance(stored, dict):
                late[index] = decode_entry(stored)
        return late
    except (ValueError, TypeError, AttributeError):
        log.warning(
            "the yield record %s is unreadable: its pending batches are judged from the balance", token
        )
        return {}


class Fence:
    """One try's hold on a send's ledger (module docstring). Created per ``resume_send`` call.

    ``now``/``pause`` are the channel's clock (monotonic seconds), so tests run it on a fake one.
    ``request_seconds``: the longest one request can stay in the air (the channel's deadline).
    """

    def __init__(
        self,
        store: KeyValueStore,
        *,
        now: Callable[[], float],
        pause: Callable[[float], None],
        request_seconds: float,
        try_number: int | None = None,
        lease: float = FENCE_LEASE,
    ) -> None:
        if not 0 < lease < 60:
            raise KwtSMSInputError(f"the fence's lease must be 0 to 60 seconds, got {lease!r}")
        self.store = store
        self.now, self.pause = now, pause
        self.lease = float(lease)
        self.request_seconds = max(0.0, float(request_seconds))
        self.try_number = try_number
        self.token = secrets.token_hex(8)
        self.superseded = False
        self.lost: FenceError | None = None  # why this try no longer holds the send
        self.claimed_at: float | None = None
        self.late: dict[int, Entry] = {}  # outcomes learnt after losing the send: for the yield
        self._confirmed_at: float | None = None  # start of the last read that showed us as owner
        self._thread = threading.get_ident()
        self._yielded = False

    # -- claiming ------------------------------------------------------------------------------
    def claim(self) -> None:
        """Take the send over; wait out any older owner's lease; raise ``SupersededError`` when a
        newer try claimed meanwhile."""
        # The tokens of earlier owners, so that deleting the ledger finds their yield records.
        known = [t for t in _owner_tokens(self.store.get(OWNER_KEY)) if t != self.token]
        record = {"v": FENCE_VERSION, "t": self.token, "try": self.try_number, "y": known[-MAX_TOKENS:]}
        self.store.set(OWNER_KEY, json.dumps(record, separators=(",", ":")))
        self.claimed_at = self.now()
        self.pause(self.lease + FENCE_MARGIN)
        self.renew()

    def renew(self) -> None:
        """Confirm until the lease holds when the read ends (a slow read can outlast its lease)."""
        for _ in range(MAX_SLOW_READS):
            self.confirm()
            if self._within_lease():
                return
        self.lost = FenceLapsedError(
            f"{MAX_SLOW_READS} reads of the send ledger's store in a row took longer than the ownership "
            f"lease ({self.lease:g} s): the store is too slow to prove this try still owns the send; "
            "it stopped, and the next try resumes it"
        )
        raise self.lost

    def confirm(self) -> None:
        """Read the owner record; good for ``lease`` seconds from the read's start. Raises
        ``SupersededError``."""
        if self.lost is not None:
            raise self.lost
        began = self.now()
        owner = _owner_token(self.store.get(OWNER_KEY))
        if owner != self.token:
            self.superseded = True
            self._confirmed_at = None
            self.lost = self._superseded_error(owner)
            raise self.lost
        self._confirmed_at = began

    def _superseded_error(self, owner: str | None) -> SupersededError:
        who = (
            "the send's ownership record is gone (a newer try finished it)"
            if owner is None
            else ("a newer try of this task took the send over")
        )
        return SupersededError(
            f"{who}: this try (try {self.try_number}) stopped before its next batch and sends nothing more."
        )

    def _within_lease(self) -> bool:
        return (
            self.lost is None
            and self._confirmed_at is not None
            and self.now() - self._confirmed_at < self.lease
        )

    def guard(self) -> None:
        """Right before a request is written: only inside the lease. In the owner's own thread an
        expired lease is renewed by a read; a request thread cannot read the store (Airflow's
        store is not for threads), so it gives the batch back unsent (``FenceLapsedError``)."""
        if self._within_lease():
            return
        if threading.get_ident() == self._thread and self.lost is None:
            self.renew()  # raises SupersededError when lost
            return
        raise FenceLapsedError()

    def still_owner(self) -> bool:
        """From the owner's thread: renew the lease when needed; False once the hold is lost
        (superseded, or a store too slow to prove it)."""
        if self._within_lease():
            return True
        try:
            self.renew()
        except FenceError:
            return False
        return True

    def ensure_lease(self, needed: float) -> None:
        """Before handing a request to a thread: renew when less than ``needed`` s of lease is left."""
        if self._confirmed_at is None or self.now() - self._confirmed_at > self.lease - needed:
            self.renew()

    # -- the writers of pending batches --------------------------------------------------------
    def settle_writers(self, pending: dict[int, Entry], plan_batches: int) -> dict[int, Entry]:
        """Before this try judges batches other tries left pending: wait until each writer has
        yielded or its last request must have ended. Returns the outcomes the writers learnt late
        (``late[index]``), which settle their pending batches without a balance read."""
        writers = {e.owner for e in pending.values() if e.owner and e.owner != self.token}
        untagged = any(e.owner is None for e in pending.values())  # a ledger of an older version
        learnt: dict[int, Entry] = {}
        assert self.claimed_at is not None, "claim() first"
        until = self.claimed_at + self.lease + self.request_seconds + FENCE_MARGIN
        waiting = set(writers)
        warned = False
        while True:
            for token in sorted(waiting):
                late = _read_yield(self.store.get(yield_key(token)), token, plan_batches)
                if late is not None:
                    waiting.discard(token)
                    learnt.update({i: e for i, e in late.items() if pending.get(i, e).owner == token})
            left = until - self.now()
            if not (waiting or untagged) or left <= 0:
                return learnt
            if not warned:
                log.warning(
                    "%d batch(es) were left pending by a try that has not stopped cleanly: waiting up "
                    "to %.1f s for its last requests to end before judging them from the balance",
                    len(pending),
                    left,
                )
                warned = True
            self.pause(min(YIELD_POLL, left) if waiting else left)

    # -- stopping -----------------------------------------------------------------------------
    def write_allowed(self) -> bool:
        """May this try write the ledger now? (The owner's thread only.)"""
        return self.still_owner()

    def keep_late(self, index: int, entry: Entry) -> None:
        if len(self.late) < MAX_LATE_ENTRIES or index in self.late:
            self.late[index] = entry

    def close(self) -> None:
        """Nothing of this try's is in the air any more: say so, with what it could not store."""
        if self._yielded:
            return
        self._yielded = True
        record: dict[str, Any] = {
            "v": FENCE_VERSION,
            "t": self.token,
            "try": self.try_number,
            "e": {str(i): encode_entry(e) for i, e in sorted(self.late.items())},
        }
        try:
            self.store.set(yield_key(self.token), json.dumps(record, separators=(",", ":")))
        except Exception:  # a store failing now costs the next try a wait, no more
            log.warning("could not write this try's yield record: the next try waits for its lease to pass")


def forget_owners(store: KeyValueStore) -> None:
    """Delete the owner record and the yield records it knows (with the ledger, after success)."""
    for token in _owner_tokens(store.get(OWNER_KEY)):
        store.delete(yield_key(token))
    store.delete(OWNER_KEY)


def late_outcome_is_final(entry: Entry) -> bool:
    """A late outcome that settles a pending batch without the balance: sent, or certainly not."""
    return entry.state in (BatchState.DONE, BatchState.INFERRED, BatchState.FAILED)
