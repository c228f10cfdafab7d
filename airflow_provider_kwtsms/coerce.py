"""Reading settings written by people: one helper per kind, one rule per helper.

Connection extras, operator arguments, notifier ``data`` and templated strings all arrive as
text or as Python values. Each helper accepts the forms a person writes and refuses anything
else with a ``KwtSMSInputError`` that names the setting, quotes the value and says what to write.
An unknown value is never guessed: ``"maybe"`` for ``test`` is an error, not a live send.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_kwtsms.constants import DEFAULT_RATE, MAX_RATE, MAX_RATE_REASON, MIN_RATE
from airflow_provider_kwtsms.errors import KwtSMSInputError

TRUE_WORDS = frozenset({"true", "1", "yes", "on", "y", "t"})
FALSE_WORDS = frozenset({"false", "0", "no", "off", "n", "f"})


def as_bool(value: Any, what: str) -> bool:
    """``True``/``False``, 1/0, or one of the words in ``TRUE_WORDS``/``FALSE_WORDS`` (any case)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise KwtSMSInputError(f"{what} is {_shown(value)}: write true or false.")


def as_text(value: Any, what: str, hint: str) -> str:
    """A non-empty string (surrounding spaces removed); ``hint`` says what belongs there."""
    if not isinstance(value, str) or not value.strip():
        shown = "" if what.endswith("password") else f" {_shown(value)}"
        raise KwtSMSInputError(f"{what} must be non-empty text ({hint}), got {type(value).__name__}{shown}.")
    return value.strip()


def as_number(value: Any, what: str, *, minimum: float, maximum: float = 1e9) -> float:
    """A finite number in ``[minimum, maximum]``, from a number or its text."""
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError, OverflowError):
        raise KwtSMSInputError(f"{what} is {_shown(value)}: write a number, e.g. {minimum:g}.") from None
    if isinstance(value, bool) or not minimum <= number <= maximum:
        raise KwtSMSInputError(f"{what} is {_shown(value)}: write a number from {minimum:g} to {maximum:g}.")
    return number


def as_rate(value: Any, what: str = "rate") -> float:
    """Requests per second, ``MIN_RATE`` to ``MAX_RATE``: the one check of every ``rate`` (client, SMTP
    sender, pacers, connection extra, hook and operator arguments). Above 5 the reason is the
    gateway's own: its firewall blocks the IP."""
    advice = f"write a number from {MIN_RATE:g} to {MAX_RATE:g} ({DEFAULT_RATE:g} is the recommended pace)"
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError, OverflowError):
        number = float("nan")
    if isinstance(value, bool) or not MIN_RATE <= number <= MAX_RATE:  # NaN fails both comparisons
        if number > MAX_RATE:  # inf included
            raise KwtSMSInputError(
                f"{what} is {_shown(value)} requests a second: the most is {MAX_RATE:g}, because "
                f"{MAX_RATE_REASON}; {advice}."
            )
        raise KwtSMSInputError(f"{what} is {_shown(value)}: {advice}.")
    return number


def as_country(value: Any, what: str = "default_country") -> str | None:
    """A country for local numbers, as its calling code: ``"KW"``, ``"kw"``, ``"965"``, ``"+965"``,
    ``"00965"`` or ``965`` all give ``"965"``; None or blank gives None. Checked against the phone
    metadata, so a typo is an error here rather than every number being refused later."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise KwtSMSInputError(
            f"{what} is {_shown(value)}: write an ISO country code such as 'KW' or a calling code "
            "such as '965'."
        )
    from airflow_provider_kwtsms.phone.recipients import resolve_country

    try:
        return resolve_country(value)
    except KwtSMSInputError as exc:
        raise KwtSMSInputError(str(exc).replace("default_country", what, 1)) from None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
