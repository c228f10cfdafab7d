"""Phone numbers: raw input to normalised, validated, deduplicated recipients (libphonenumber's
metadata, the gateway's Kuwait rule)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_kwtsms._lazy import lazy_exports

if TYPE_CHECKING:
    from airflow_provider_kwtsms.phone.recipients import (
        DuplicateInput,
        InvalidInput,
        PhoneCheck,
        Recipients,
        SuppressedInput,
        normalize_phone,
        number_of_each,
        prepare_recipients,
        resolve_country,
        split_recipients,
        validate_phone,
    )

_PUBLIC = {
    "Recipients": "recipients",
    "SuppressedInput": "recipients",
    "number_of_each": "recipients",
    "PhoneCheck": "recipients",
    "InvalidInput": "recipients",
    "DuplicateInput": "recipients",
    "prepare_recipients": "recipients",
    "split_recipients": "recipients",
    "validate_phone": "recipients",
    "normalize_phone": "recipients",
    "resolve_country": "recipients",
}
__all__ = [
    "DuplicateInput",
    "InvalidInput",
    "PhoneCheck",
    "Recipients",
    "SuppressedInput",
    "normalize_phone",
    "number_of_each",
    "prepare_recipients",
    "resolve_country",
    "split_recipients",
    "validate_phone",
]
__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
