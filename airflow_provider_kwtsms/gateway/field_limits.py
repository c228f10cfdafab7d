"""The gateway's field sizes (API v4.1), checked before any request: one check for every caller.

The v4.1 documentation gives each field of a request a maximum number of characters:
``username`` 15, ``password`` 30, ``sender`` 11, ``msgid`` 32 (``constants.FIELD_LIMITS``), and a
message at most 6 pages (7 allowed: ``constants.MAX_PAGES_ALLOWED``). What the gateway does with a
longer value is not documented (a refusal, or a value cut short and then not found): the provider
never sends one. Each check raises ``KwtSMSInputError`` naming the field, its length and the limit;
a password is never shown, only its length.

Lengths are counted in characters (Unicode code points), as the documentation's "#Chrs" column
counts them: an Arabic sender ID of 11 letters is 11 characters, though 22 bytes in UTF-8.
"""

from __future__ import annotations

from airflow_provider_kwtsms.constants import DEFAULT_MAX_PAGES, FIELD_LIMITS, MAX_PAGES_ALLOWED
from airflow_provider_kwtsms.errors import KwtSMSInputError

_HINTS = {
    "username": "use the API username shown on your kwtSMS account's API page (not the account's "
    "phone number or e-mail)",
    "password": "use the API password of your kwtSMS account's API page; if yours is longer, set a "
    "shorter one there",
    "sender": "use a sender ID registered on the account, written exactly as it is there",
    "msgid": "give the msg-id the send returned (32 characters)",
}


def check_field(name: str, value: str, *, what: str | None = None) -> str:
    """``value`` when it fits field ``name``'s documented size, else ``KwtSMSInputError`` naming
    the field (``what``, e.g. the connection's Login, when the caller knows it better), the
    value's length and the limit. Only its length is ever shown for the password."""
    limit = FIELD_LIMITS[name]
    length = len(value)
    if length > limit:
        shown = "" if name == "password" else f" ({value[: limit + 10]!r}{'...' * (length > limit + 10)})"
        raise KwtSMSInputError(
            f"{what or name} is {length} characters long{shown}; kwtSMS accepts at most {limit} "
            f"(API v4.1): {_HINTS[name]}."
        )
    return value


def check_max_pages(value: object, what: str = "max_pages") -> int:
    """A page limit from 1 to ``MAX_PAGES_ALLOWED`` (7); the reason for anything else."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PAGES_ALLOWED:
        raise KwtSMSInputError(
            f"{what} is {value!r}: give a whole number of pages from 1 to {MAX_PAGES_ALLOWED}. kwtSMS "
            f"documents {DEFAULT_MAX_PAGES} pages (API v4.1, ERR012: the default); one official "
            f"client's changelog reports a live {MAX_PAGES_ALLOWED}-page send passing and "
            f"{MAX_PAGES_ALLOWED + 1} failing, so {MAX_PAGES_ALLOWED} is the most allowed."
        )
    return value
