"""The do-not-send list: numbers a send leaves out at planning, counted as suppressed, never sent.

kwtSMS keeps no opt-out list of its own: a customer who asked to receive nothing is the sender's
to honour. The list is read like recipients (``phone.prepare_recipients``: +965, 00965, Arabic
digits, the send's ``default_country``), so a number matches however either side wrote it. An
entry of the list that is no number cannot match anything; it is counted (``unusable``) so that a
typo in an opt-out table is seen, not silently ignored. No Airflow import here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider_kwtsms.phone.recipients import SuppressedInput, prepare_recipients


@dataclass(frozen=True)
class DoNotSend:
    """The normalised numbers of a do-not-send list, and how many of its entries are no number."""

    numbers: frozenset[str]
    unusable: int = 0
    examples: tuple[str, ...] = ()  # a few unusable entries, for the log

    def __bool__(self) -> bool:
        return bool(self.numbers)


NOBODY = DoNotSend(frozenset())


def do_not_send_list(value: Any, default_country: str | int | None = None) -> DoNotSend:
    """``value`` (a list, a comma/newline-separated string, nested lists; None: nobody) as the
    numbers it names. Never strict: a number the send itself would refuse still matches nothing."""
    if value is None or isinstance(value, DoNotSend):
        return value or NOBODY
    read = prepare_recipients(value, default_country=default_country)
    return DoNotSend(
        frozenset(read.valid),
        unusable=len(read.invalid),
        examples=tuple(repr(i.input) for i in read.invalid[:3]),
    )


def split_suppressed(
    numbers: Sequence[str], inputs: Sequence[str] | None, blocked: DoNotSend
) -> tuple[list[str], list[SuppressedInput]]:
    """``numbers`` less those on ``blocked`` (kept in order), and the suppressed ones, each with
    its input as given (``inputs``, parallel to ``numbers``; None: the number itself)."""
    if not blocked:
        return list(numbers), []
    names = blocked.numbers
    kept: list[str] = []
    suppressed: list[SuppressedInput] = []
    for i, number in enumerate(numbers):
        if number in names:
            suppressed.append(SuppressedInput(number if inputs is None else inputs[i], number))
        else:
            kept.append(number)
    return kept, suppressed
