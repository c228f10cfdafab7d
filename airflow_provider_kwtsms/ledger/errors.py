"""The ledger's errors: what stops a resumable send, and what a person must decide."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_kwtsms.errors import KwtSMSError

if TYPE_CHECKING:
    from airflow_provider_kwtsms.send.results import BatchResult, SendResult

__all__ = [
    "BatchNotSentError",
    "BatchesFailedError",
    "LedgerDamagedError",
    "LedgerMismatchError",
    "SendPaused",
    "UncertainBatchesError",
]


def _batch_list(indices: list[int]) -> str:
    return ", ".join(str(i + 1) for i in indices[:20]) + (" …" if len(indices) > 20 else "")


class LedgerMismatchError(KwtSMSError):
    """An earlier try sent (part of) a different send under this task instance."""

    def __init__(self, description: str, *, action: str) -> None:
        super().__init__("LEDGER_MISMATCH", description, action=action)
        self.permanent = True
        self.retryable = False


class LedgerDamagedError(LedgerMismatchError):
    """A stored ledger value is not one this provider writes, or does not fit the send: the ledger
    cannot tell which batches went out, so nothing is sent. A ``LedgerMismatchError`` (the stored
    ledger does not fit this send), with its own code."""

    def __init__(self, key: str, problem: str, *, keys: str) -> None:
        KwtSMSError.__init__(
            self,
            "LEDGER_DAMAGED",
            f"The stored send ledger is damaged: {key!r} {problem}. It can no longer tell which "
            "batches of this send went out, so nothing was sent.",
            action="Check the messages your kwtSMS account sent for this send. Then either restore the "
            f"ledger keys ({keys}) from a backup and clear the task, or delete them and send only to the "
            "numbers not reached yet (deleting them and clearing the task sends to every number again).",
        )
        self.permanent = True
        self.retryable = False
        self.key = key


class UncertainBatchesError(KwtSMSError):
    """Some batches may or may not have gone out, and on_uncertain="fail" asked a person to decide."""

    def __init__(
        self, indices: list[int], total: int, numbers: int, result: SendResult | None = None
    ) -> None:
        super().__init__(
            "UNCERTAIN",
            f"{len(indices)} of {total} batches ({numbers} numbers; batch {_batch_list(indices)}) may or "
            "may not have been sent: the request reached kwtSMS but its answer was lost, and the account "
            "balance could not tell (no balance figure from before its request, or something else spent or "
            "topped up meanwhile).",
            action="Check the messages in your kwtSMS account, then clear this task with "
            "on_uncertain='skip' (if they went out) or on_uncertain='resend' (if they did not); "
            "the batches already sent are remembered and will not be sent again.",
        )
        self.permanent = True
        self.retryable = False
        self.indices = indices
        self.result = result


class BatchNotSentError(KwtSMSError):
    """A batch certainly did not go out for a passing reason: a retry will send it (and only it)."""

    def __init__(self, index: int, total: int, code: str, description: str | None) -> None:
        super().__init__(
            code,
            f"batch {index + 1}/{total} was not sent: {description or code}",
            action="Retry: the batches already sent are remembered and will not be sent again.",
        )
        self.permanent = False
        self.retryable = True
        self.index = index


class SendPaused(KwtSMSError):
    """The send window closed: the send stopped at a batch boundary; the ledger resumes it later."""

    def __init__(self, result: SendResult | None = None) -> None:
        waiting = [] if result is None else [b for b in result.batches if b.error_code == "PAUSED"]
        super().__init__(
            "PAUSED",
            f"The send window closed with {len(waiting)} batch(es) "
            f"({sum(len(b.numbers) for b in waiting)} numbers) not yet sent.",
            action="Nothing to do: they are sent when the window opens again (the ledger keeps the rest).",
        )
        self.retryable = True
        self.result = result


class BatchesFailedError(KwtSMSError):
    """Every batch was tried; some were refused for their numbers (ERR026 country not covered,
    ERR025/ERR006 invalid numbers) and no retry can send them. Carries the first refusal's code."""

    def __init__(self, failed: list[BatchResult], total: int, result: SendResult | None = None) -> None:
        first = failed[0]
        codes = sorted({b.error_code or "FAILED" for b in failed})
        numbers = sum(len(b.numbers) for b in failed)
        why = first.error_description or "see the summary"
        super().__init__(
            first.error_code or "FAILED",
            f"{len(failed)} of {total} batches ({numbers} numbers; batch "
            f"{_batch_list([b.index for b in failed])}) were refused ({', '.join(codes)}: {why}); "
            "every other batch was sent.",
        )
        self.action = (
            f"{self.action} Then clear the task: the batches already sent are remembered and will not be "
            "sent again."
        )
        self.permanent = True
        self.retryable = False
        self.indices = [b.index for b in failed]
        self.codes = codes
        self.result = result
