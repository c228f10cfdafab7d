"""What a send by e-mail reports: a batch "sent" means the relay took it, never that kwtSMS did."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_provider_kwtsms.errors import KwtSMSError
from airflow_provider_kwtsms.send.results import SENT, BatchResult, Outcome, SendResult
from airflow_provider_kwtsms.smtp.relay import RELAY_ACTIONS, SmtpSendError

SUBMITTED_UNCONFIRMED = Outcome.SUBMITTED_UNCONFIRMED  # the batch state shown in summaries
UNCONFIRMED_NOTE = (
    "Sent by e-mail: kwtSMS answers nothing over e-mail, so there is no msg-id and no "
    "confirmation; a wrong e-mail is dropped in silence. Check the account's message "
    "log or the balance to confirm."
)


@dataclass
class SmtpBatchResult(BatchResult):
    """A batch sent by e-mail: state "sent" means the relay took it, not that kwtSMS sent it."""

    confirmed: bool = False
    relay_reply_lost: bool = False  # the e-mail went out, the relay's reply did not come back

    def error(self) -> KwtSMSError | None:
        if self.exception is not None and self.exception.code == self.error_code:
            return self.exception
        if self.error_code in RELAY_ACTIONS and self.may_have_reached_server is None:
            return SmtpSendError(self.error_code, self.error_description)  # keeps "permanent"
        return super().error()

    def summary(self) -> dict[str, Any]:
        out = super().summary()
        if self.state == SENT:
            out["state"] = str(SUBMITTED_UNCONFIRMED)
        out.update(transport="smtp", confirmed=False, relay_reply_lost=self.relay_reply_lost)
        return out


@dataclass
class SmtpSendResult(SendResult):
    """As ``SendResult``; ``ok`` means every e-mail was handed to the relay, nothing more."""

    def to_dict(self, list_limit: int = 1000) -> dict[str, Any]:
        out = super().to_dict(list_limit)
        out.update(transport="smtp", confirmed=False, note=UNCONFIRMED_NOTE)
        return out
