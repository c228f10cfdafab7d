"""Every error type of ours survives pickling whole (Airflow moves exceptions between processes)."""

from __future__ import annotations

import pickle

import pytest

from airflow_provider_kwtsms import ledger
from airflow_provider_kwtsms.alerts.store import AlertStoreUnavailable
from airflow_provider_kwtsms.errors import KwtSMSError, KwtSMSInputError, KwtSMSNetworkError
from airflow_provider_kwtsms.gateway import transport
from airflow_provider_kwtsms.hooks.kwtsms import KwtSMSConfigurationError
from airflow_provider_kwtsms.ledger import fence as ledger_fence
from airflow_provider_kwtsms.send import batch_loop, row_template
from airflow_provider_kwtsms.send.results import BatchResult
from airflow_provider_kwtsms.smtp import body as smtp_body
from airflow_provider_kwtsms.smtp import sender as smtp_transport

EXAMPLES = {
    KwtSMSError: lambda: KwtSMSError("ERR013", "queue full", http_status=200),
    KwtSMSNetworkError: lambda: KwtSMSNetworkError(
        "send: read timeout", may_have_reached_server=True, http_status=None, code="TIMEOUT"
    ),
    transport.RateLimitedError: lambda: transport.RateLimitedError("slow down", retry_after=1.5),
    ledger.LedgerMismatchError: lambda: ledger.LedgerMismatchError("the text changed", action="start afresh"),
    ledger.LedgerDamagedError: lambda: ledger.LedgerDamagedError(
        "kwtsms_ledger.c3", "is null", keys="'kwtsms_ledger' and 'kwtsms_ledger.c0' to 'kwtsms_ledger.c3'"
    ),
    ledger.UncertainBatchesError: lambda: ledger.UncertainBatchesError([0, 3], 5, 400),
    ledger.BatchNotSentError: lambda: ledger.BatchNotSentError(2, 5, "ERR013", "queue full"),
    ledger.SendPaused: lambda: ledger.SendPaused(),
    ledger.BatchesFailedError: lambda: ledger.BatchesFailedError(
        [BatchResult(index=1, numbers=["971500000001"], state="failed", error_code="ERR026")], 3
    ),
    batch_loop.StopSending: lambda: batch_loop.StopSending("STOP", "no request more"),
    ledger_fence.FenceError: lambda: ledger_fence.FenceError("FENCE", "no longer holds the send"),
    ledger_fence.SupersededError: lambda: ledger_fence.SupersededError("a newer try took the send over"),
    ledger_fence.FenceLapsedError: lambda: ledger_fence.FenceLapsedError("the store was too slow"),
    smtp_transport.SmtpSendError: lambda: smtp_transport.SmtpSendError("SMTP_TEMPORARY", "421 busy"),
    KwtSMSInputError: lambda: KwtSMSInputError("mobile is empty: give at least one number"),
    row_template.RowTemplateError: lambda: row_template.RowTemplateError("'name' is undefined in the row"),
    smtp_body.SmtpFieldError: lambda: smtp_body.SmtpFieldError("sender", "sender must be one line"),
    KwtSMSConfigurationError: lambda: KwtSMSConfigurationError("Connection 'x' has no login: set it"),
    AlertStoreUnavailable: lambda: AlertStoreUnavailable("the storm guard's store is unavailable (OSError)"),
}


def all_subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        if sub.__module__.startswith("airflow_provider_kwtsms"):
            found |= {sub} | all_subclasses(sub)
    return found


def test_every_error_type_has_a_pickling_example():
    assert all_subclasses(KwtSMSError) | {KwtSMSError} <= set(EXAMPLES)


@pytest.mark.parametrize("cls", list(EXAMPLES), ids=lambda c: c.__name__)
def test_an_error_round_trips_with_every_field(cls):
    err = EXAMPLES[cls]()
    err.retryable = not err.retryable  # a flag changed after construction survives too
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is cls
    assert vars(copy) == vars(err)
    assert str(copy) == str(err) and copy.args == err.args


def test_the_input_error_keeps_the_recipients_it_carries():
    err = KwtSMSInputError("no valid phone number among 1 inputs")
    err.recipients = ["x"]  # type: ignore[attr-defined]
    copy = pickle.loads(pickle.dumps(err))
    assert str(copy) == str(err) and copy.recipients == ["x"]
