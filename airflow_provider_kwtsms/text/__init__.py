"""Message text: cleaning, encoding, pages as kwtSMS counts them, and smart encoding (GSM-7 look-
alikes)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_kwtsms._lazy import lazy_exports

if TYPE_CHECKING:
    from airflow_provider_kwtsms.text.message import MessageInfo, clean_message, measure_message
    from airflow_provider_kwtsms.text.smart_encoding import smart_encode

_PUBLIC = {
    "clean_message": "message",
    "measure_message": "message",
    "MessageInfo": "message",
    "smart_encode": "smart_encoding",
}
__all__ = [
    "MessageInfo",
    "clean_message",
    "measure_message",
    "smart_encode",
]
__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
