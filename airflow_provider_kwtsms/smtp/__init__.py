"""Send SMS by e-mail: the 2009 document's SMTP channel, through any SMTP relay."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_kwtsms._lazy import lazy_exports

if TYPE_CHECKING:
    from airflow_provider_kwtsms.smtp.sender import KwtSMSSmtpSender, SmtpSendError

_PUBLIC = {
    "KwtSMSSmtpSender": "sender",
    "SmtpSendError": "sender",
}
__all__ = [
    "KwtSMSSmtpSender",
    "SmtpSendError",
]
__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
