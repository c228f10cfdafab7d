"""Every kwtSMS error code: what it means, what to do, and whether retrying can help.

This module is the single table of error knowledge. The client raises from it, the Airflow
adapters decide "fail now" or "retry" from it, and the sandbox answers with its descriptions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ErrorInfo:
    """What one kwtSMS error code means.

    ``retryable``: the same request may succeed later without anyone changing anything
    (queue full, too soon for that number, reports not ready yet).
    ``permanent``: a person must change the account, the connection or the input first;
    Airflow should fail the task at once instead of spending retries.
    """

    code: str
    description: str
    action: str
    retryable: bool = False
    permanent: bool = False


def _e(
    code: str, description: str, action: str, *, retryable: bool = False, permanent: bool = False
) -> tuple[str, ErrorInfo]:
    return code, ErrorInfo(code, description, action, retryable=retryable, permanent=permanent)


ERRORS: dict[str, ErrorInfo] = dict(
    [
        _e(
            "ERR001",
            "API is disabled on this account.",
            "Enable the API in your kwtSMS account's API settings.",
            permanent=True,
        ),
        _e(
            "ERR002",
            "A required parameter is missing.",
            "Send every required field (username, password, sender, mobile, message).",
            permanent=True,
        ),
        _e(
            "ERR003",
            "Authentication error, username or password are not correct.",
            "Fix the connection's login (API username) and password (API password, not the "
            "account's phone number).",
            permanent=True,
        ),
        _e(
            "ERR004",
            "This account has no API access.",
            "Ask kwtSMS support to enable API access.",
            permanent=True,
        ),
        _e("ERR005", "This account is blocked.", "Contact kwtSMS support.", permanent=True),
        _e(
            "ERR006",
            "No valid phone numbers.",
            "Give numbers with their country code (e.g. 96598765432) or set default_country.",
            permanent=True,
        ),
        _e(
            "ERR007",
            "Too many numbers in one request (more than 200, or a mobile field over 2,500 characters).",
            "Send in batches of at most 200 numbers and 2,500 characters (the client cuts them so).",
            permanent=True,
        ),
        _e(
            "ERR008",
            "This sender ID is banned or not registered on the account.",
            "Use a sender ID registered on your account; sender IDs are case-sensitive.",
            permanent=True,
        ),
        _e("ERR009", "The message is empty.", "Give the message some text.", permanent=True),
        _e("ERR010", "Account balance is zero.", "Top up your kwtSMS account at kwtsms.com.", permanent=True),
        _e(
            "ERR011",
            "Balance is not enough for this send.",
            "Top up your kwtSMS account, or send to fewer numbers or a shorter message.",
            permanent=True,
        ),
        _e(
            "ERR012",
            "Cannot send more than 6 pages: the message is too long.",
            "Shorten the message to 6 pages (a GSM-7 page holds 153 characters once split, a UCS-2 "
            "(Arabic) page 67); with max_pages=7 the gateway may refuse the seventh page.",
            permanent=True,
        ),
        _e(
            "ERR013",
            "The send queue is full.",
            "Wait a little and retry; the queue drains by itself.",
            retryable=True,
        ),
        _e(
            "ERR019",
            "No delivery reports found.",
            "Check the message ID; reports exist only for sent messages.",
        ),
        _e("ERR020", "The message ID does not exist.", "Check the message ID returned by the send."),
        _e("ERR021", "No delivery report for this message yet.", "Retry later.", retryable=True),
        _e(
            "ERR022",
            "Delivery reports are not ready yet; try after 24 hours.",
            "Retry after 24 hours.",
            retryable=True,
        ),
        _e("ERR023", "Unknown delivery report error.", "Contact kwtSMS support."),
        _e(
            "ERR024",
            "Your IP address is not on the account's API allow-list.",
            "Add this machine's IP in the kwtSMS API settings, or turn the IP lock-down off.",
            permanent=True,
        ),
        _e(
            "ERR025",
            "Invalid phone number.",
            "Give the number with its country code, digits only (e.g. 96598765432).",
            permanent=True,
        ),
        _e(
            "ERR026",
            "Sending to this country is not activated on the account.",
            "Ask kwtSMS support to activate the destination country.",
            permanent=True,
        ),
        _e(
            "ERR027",
            "HTML tags are not allowed in the message.",
            "Remove the HTML tags from the message.",
            permanent=True,
        ),
        _e(
            "ERR028",
            "You must wait at least 15 seconds before sending to the same number again.",
            "Wait 15 seconds before sending to these numbers again; nothing was charged.",
            retryable=True,
        ),
        _e("ERR029", "The message ID does not exist or is wrong.", "Check the message ID."),
        _e(
            "ERR030",
            "The message is stuck in the send queue with an error.",
            "Delete it from the queue in your kwtSMS account to recover the credits "
            "(normal for test messages).",
        ),
        _e(
            "ERR031",
            "Bad language detected: the send was rejected.",
            "Remove the offending words and send again: the gateway refuses this text every time.",
            permanent=True,
        ),
        _e(
            "ERR032",
            "Spam message detected: the send was rejected.",
            "Reword the message so it does not read as spam, or ask kwtSMS support why it was "
            "flagged: the gateway refuses this text every time.",
            permanent=True,
        ),
        _e(
            "ERR033",
            "No active coverage on this account.",
            "Ask kwtSMS support to activate coverage.",
            permanent=True,
        ),
    ]
)

# Not a kwtSMS code: what the sandbox (and, we expect, the real front end) answers with HTTP 429
# when an account goes over its request rate. Nothing was processed, so retrying is safe.
RATE_LIMITED = "RATE_LIMITED"
ERRORS[RATE_LIMITED] = ErrorInfo(
    RATE_LIMITED,
    "Too many requests: the account's request rate was exceeded.",
    "Slow down (the default pace is 2 requests per second) and retry.",
    retryable=True,
)


def error_info(code: str, description: str | None = None) -> ErrorInfo:
    """The table's entry for ``code``; an unknown code still gets a useful entry."""
    known = ERRORS.get(code)
    if known is not None:
        return known
    return ErrorInfo(
        code,
        description or "Unknown kwtSMS error.",
        "Check the kwtSMS documentation for this code, or contact kwtSMS support.",
    )


# The code of an input error caught before any request (not a gateway code).
INPUT_ERROR = "INPUT"


class KwtSMSError(Exception):
    """The root of every error of ours; itself, an error answered by the kwtSMS API
    (``{"result": "ERROR", "code": ...}``).

    Carries ``code``, ``description`` (the server's words), ``action`` (what to do),
    ``retryable`` and ``permanent``. Never carries credentials.
    """

    def __init__(
        self,
        code: str,
        description: str | None = None,
        *,
        action: str | None = None,
        http_status: int | None = None,
    ) -> None:
        info = error_info(code, description)
        self.code = code
        self.description = description or info.description
        self.action = action or info.action
        self.retryable = info.retryable
        self.permanent = info.permanent
        self.http_status = http_status
        super().__init__(f"{code}: {self.description} What to do: {self.action}")

    def __reduce__(self) -> tuple[Any, ...]:
        # One pickling rule for every error of ours (Airflow moves exceptions between processes):
        # rebuild without calling __init__, whose signature each subclass changes, then restore
        # every attribute, so no field is lost and no flag flips on the way.
        return (_rebuild_error, (type(self), self.args), self.__dict__.copy())


def _rebuild_error(cls: type[KwtSMSError], args: tuple[Any, ...]) -> KwtSMSError:
    err = cls.__new__(cls)
    err.args = args
    return err


class KwtSMSNetworkError(KwtSMSError):
    """The request got no usable answer: connection refused, timeout, 5xx, garbage body.

    ``may_have_reached_server`` is False only when the request certainly was not processed
    (the connection could not be made, or the server said so); for a send, True means the
    message may have gone out and must not simply be sent again.
    """

    def __init__(
        self,
        description: str,
        *,
        may_have_reached_server: bool,
        http_status: int | None = None,
        code: str = "NETWORK",
    ) -> None:
        self.may_have_reached_server = may_have_reached_server
        action = (
            "The request may have been processed: check the account before sending again."
            if may_have_reached_server
            else "Nothing was processed; it is safe to retry."
        )
        KwtSMSError.__init__(self, code, description, action=action, http_status=http_status)
        self.retryable = True
        self.permanent = False


class KwtSMSInputError(KwtSMSError, ValueError):
    """Bad input caught before anything is sent: names the input and says what to do.

    In the :class:`KwtSMSError` tree like every error of ours (code ``INPUT``; ``permanent``: no
    retry fixes it), and still a ``ValueError`` for code that catches those. ``str(error)`` is the
    message itself, which already says what to do.
    """

    def __init__(self, message: str) -> None:
        ValueError.__init__(self, message)
        self.code = INPUT_ERROR
        self.description = message
        self.action = "Correct the input the message names, then run again."
        self.retryable = False
        self.permanent = True
        self.http_status = None
