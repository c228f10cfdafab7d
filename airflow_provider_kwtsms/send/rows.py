"""Per-recipient rows: every customer their own text, grouped into as few requests as possible.

The gateway takes one text per request (v4.1: at most 200 numbers, 2,500 characters of them),
so rows are grouped by their text as sent (after cleaning and smart encoding): one group is one
text to many numbers, and ``planning.assemble`` cuts each group into the fewest requests, as it
does for the one text of ``build_plan``. A row is ``{"mobile": ..., "message": ...}`` or, with a
``RowTemplate``, ``{"mobile": ..., <any keys the template names>}``.

Every row is accounted for, exactly once, in plan order of checks:

1. invalid: not a mapping, no ``mobile``, or a ``mobile`` that is no number (the phone reason);
2. suppressed: its number is on the do-not-send list (never sent, whatever its text);
3. invalid: its text cannot be sent (the template failed on it, not text, empty after cleaning,
   over the page limit: the reason says which);
4. duplicate: the same number with the same text as an earlier row;
5. otherwise it is sent. One number in two rows with two different texts gets both (the gateway
   wants 15 s between them, ERR028: the batch loop waits that out).

Linear: each distinct text is cleaned and measured once, each distinct number judged once, and
the plan keeps a few arrays per row (``RowIndex``), so a million rows stay well under a gigabyte
(benchmarks/bench_rows.py). No Airflow import here.
"""

from __future__ import annotations

import gc
from array import array
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from airflow_provider_kwtsms.errors import KwtSMSInputError
from airflow_provider_kwtsms.phone.recipients import (
    DuplicateInput,
    InvalidInput,
    Recipients,
    SuppressedInput,
    number_of_each,
)
from airflow_provider_kwtsms.send.planning import (
    PlannedText,
    PlanOptions,
    assemble,
    check_sender,
    prepare_text,
)
from airflow_provider_kwtsms.send.results import RowIndex, SendPlan
from airflow_provider_kwtsms.send.row_template import RowTemplate, RowTemplateError
from airflow_provider_kwtsms.send.suppression import DoNotSend, do_not_send_list

MOBILE, MESSAGE = "mobile", "message"
_NO_TEXT = -1  # a row's group when its text cannot be sent (its reason is in the row's entry)


def build_rows_plan(
    rows: Iterable[Any],
    options: PlanOptions | None = None,
    *,
    template: RowTemplate | str | None = None,
    do_not_send: Any = None,
    adapt: Callable[[str], str] | None = None,
) -> SendPlan:
    """The plan of per-recipient ``rows``: each row's text (its ``message``, or ``template``
    rendered with the row's keys) to its ``mobile``, identical texts grouped into requests.

    ``do_not_send``: numbers never sent (``send.suppression``). ``adapt``: the channel's own
    change of each text before planning (the e-mail channel's one line). Raises ``KwtSMSInputError``
    when nothing could be sent (no row can be: every reason is in the error) or for a bad
    sender or template; any single row's problem is that row's invalid entry, never an error."""
    options = options or PlanOptions()
    check_sender(options)
    if isinstance(template, str):
        template = RowTemplate(template)
    if isinstance(rows, Mapping | str | bytes):
        keys = repr(MESSAGE) if template is None else "the keys the template names"
        raise KwtSMSInputError(
            f"rows must be a list of rows (mappings with {MOBILE!r} and {keys}), got a {type(rows).__name__}"
        )
    rows = rows if isinstance(rows, list) else list(rows)
    blocked = do_not_send_list(do_not_send, options.default_country)
    # A million rows allocate millions of small objects and no cycles (see phone.prepare_recipients).
    pause_gc = len(rows) > 10_000 and gc.isenabled()
    if pause_gc:
        gc.disable()
    try:
        return _Rows(rows, options, template, blocked, adapt).plan()
    finally:
        if pause_gc:
            gc.enable()


class _Rows:
    """One pass over the rows: read, judge, group; then the plan."""

    def __init__(
        self,
        rows: list[Any],
        options: PlanOptions,
        template: RowTemplate | None,
        blocked: DoNotSend,
        adapt: Callable[[str], str] | None,
    ) -> None:
        self.rows, self.options, self.template, self.blocked = rows, options, template, blocked
        self.adapt = adapt
        self.texts: list[PlannedText] = []
        self.group_of_text: dict[str, int] = {}  # a row's text as given -> its group (or _NO_TEXT)
        self.group_of_sent: dict[str, int] = {}  # a text as sent -> its group: two spellings, one group
        self.text_reason: dict[str, str] = {}  # a text as given that cannot be sent -> why
        self.infos: dict[Any, Any] = {}
        self.invalid: list[InvalidInput] = []
        self.invalid_rows = array("q")

    def plan(self) -> SendPlan:
        mobiles, texts = self._read()
        numbers, phone_reasons = number_of_each(
            mobiles, default_country=self.options.default_country, strict=self.options.strict
        )
        duplicates: list[DuplicateInput] = []
        duplicate_rows = array("q")
        suppressed: list[SuppressedInput] = []
        suppressed_rows = array("q")
        blocked = self.blocked.numbers
        kept_rows = array("q")
        kept_groups = array("q")
        # (number, group) pairs already kept: the first group of each number in a dict, the rare
        # second and later ones in a set (a million one-text rows cost one dict entry each).
        first_group: dict[str, int] = {}
        other_groups: set[tuple[str, int]] = set()
        for i, number in enumerate(numbers):
            text = texts[i]
            if text is None:
                continue  # not a row at all: recorded by _read
            if not number:
                self._refuse(i, mobiles[i], f"row {i}: {phone_reasons[i]}")
                continue
            if number in blocked:
                suppressed.append(SuppressedInput(_shown(mobiles[i]), number))
                suppressed_rows.append(i)
                continue
            if isinstance(text, _NoText):
                self._refuse(i, mobiles[i], f"row {i}: {text.reason}")
                continue
            group = self._group(text)
            if group == _NO_TEXT:
                self._refuse(i, mobiles[i], f"row {i}: {self.text_reason[text]}")
                continue
            seen = first_group.get(number)
            if seen == group or (seen is not None and (number, group) in other_groups):
                duplicates.append(DuplicateInput(_shown(mobiles[i]), number))
                duplicate_rows.append(i)
                continue
            if seen is None:
                first_group[number] = group
            else:
                other_groups.add((number, group))
            kept_rows.append(i)
            kept_groups.append(group)
        valid, valid_rows, order, sizes = self._lay_out(numbers, kept_rows, kept_groups)
        recipients = Recipients(valid, self._invalid_in_row_order(), duplicates, suppressed)
        index = RowIndex(
            rows=len(self.rows),
            valid=valid_rows,
            invalid=self.invalid_rows_sorted,
            duplicates=duplicate_rows,
            suppressed=suppressed_rows,
        )
        if not valid:
            raise _no_row_to_send(recipients)
        texts_in_order = [self.texts[g] for g in order]
        return assemble(
            recipients, texts_in_order, sizes, self.options, rows=index, unusable=self.blocked.unusable
        )

    # -- reading ------------------------------------------------------------------------------
    def _read(self) -> tuple[list[Any], list[Any]]:
        """Each row's mobile and text as given: the text None when the row is no row (recorded
        here), a ``_NoText`` when it has no usable text (judged after its number)."""
        mobiles: list[Any] = []
        texts: list[Any] = []
        render = self.template.render if self.template is not None else None
        for i, row in enumerate(self.rows):
            if not isinstance(row, Mapping):
                mobiles.append(None)
                texts.append(None)
                keys = f"'{MESSAGE}': ..." if render is None else "<the keys the template names>"
                self._refuse(
                    i,
                    f"<{type(row).__name__}>",
                    f"row {i} is a {type(row).__name__}, not a mapping: give each row as "
                    f"{{'{MOBILE}': ..., {keys}}}",
                )
                continue
            mobile = row.get(MOBILE)
            mobiles.append(mobile)
            if mobile is None:
                texts.append(None)
                self._refuse(i, "", f"row {i} has no {MOBILE!r}: give each row the number to send to")
                continue
            if render is None:
                text = row.get(MESSAGE)
                if not isinstance(text, str):
                    got = "no text" if text is None else f"a {type(text).__name__}"
                    text = _NoText(f"its {MESSAGE!r} is {got}: give each row its text")
            else:
                try:
                    text = render(row)
                except RowTemplateError as exc:
                    text = _NoText(str(exc))
            texts.append(text)
        return mobiles, texts

    def _group(self, text: str) -> int:
        """The group of a row's text, preparing the text the first time it is met."""
        group = self.group_of_text.get(text)
        if group is not None:
            return group
        try:
            planned = prepare_text(text if self.adapt is None else self.adapt(text), self.options)
        except KwtSMSInputError as exc:
            self.text_reason[text] = f"its text cannot be sent: {exc}"
            group = _NO_TEXT
        else:
            group = self.group_of_sent.get(planned.text, -2)
            if group == -2:
                # one MessageInfo per distinct measure: a million texts share a few hundred
                info = self.infos.setdefault(planned.info, planned.info)
                group = self.group_of_sent[planned.text] = len(self.texts)
                self.texts.append(replace(planned, info=info))
            elif planned.removed > self.texts[group].removed:
                # the same text as sent, written with more left out: keep the count honest
                self.texts[group] = planned
        self.group_of_text[text] = group
        return group

    def _refuse(self, row: int, mobile: Any, reason: str) -> None:
        self.invalid.append(InvalidInput(_shown(mobile), reason))
        self.invalid_rows.append(row)

    def _invalid_in_row_order(self) -> list[InvalidInput]:
        """Invalid rows are met in two passes (the row, then its number or text): in row order."""
        order = sorted(range(len(self.invalid_rows)), key=self.invalid_rows.__getitem__)
        self.invalid_rows_sorted = array("q", (self.invalid_rows[k] for k in order))
        return [self.invalid[k] for k in order]

    # -- laying out ---------------------------------------------------------------------------
    @staticmethod
    def _lay_out(
        numbers: list[str], kept_rows: array[int], kept_groups: array[int]
    ) -> tuple[list[str], array[int], list[int], list[int]]:
        """The kept rows laid out group by group (groups in order of first row, rows in order
        within each): the numbers, their rows, the groups' order and sizes. A counting sort:
        linear, two arrays."""
        count: dict[int, int] = {}
        for group in kept_groups:
            count[group] = count.get(group, 0) + 1
        order = list(count)  # dicts keep insertion order: the order of each group's first row
        start: dict[int, int] = {}
        at = 0
        for group in order:
            start[group] = at
            at += count[group]
        valid: list[str] = [""] * at
        valid_rows = array("q", bytes(8 * at))
        for row, group in zip(kept_rows, kept_groups, strict=True):
            slot = start[group]
            start[group] = slot + 1
            valid[slot] = numbers[row]
            valid_rows[slot] = row
        return valid, valid_rows, order, [count[g] for g in order]


def _no_row_to_send(recipients: Recipients) -> KwtSMSInputError:
    """The error for rows of which none can be sent; it carries the sorted ``recipients``."""
    total = recipients.total_inputs
    if total == 0:
        exc = KwtSMSInputError("no rows given: pass a list of rows, each with a 'mobile' and its text")
    else:
        why = "; ".join(f"{i.reason}" for i in recipients.invalid[:5])
        more = f" (and {len(recipients.invalid) - 5} more)" if len(recipients.invalid) > 5 else ""
        held = len(recipients.suppressed) + len(recipients.duplicates)
        others = f"; {held} suppressed or duplicate" if held else ""
        exc = KwtSMSInputError(f"none of the {total} rows can be sent: {why}{more}{others}")
    exc.recipients = recipients  # type: ignore[attr-defined]  # so callers can still report each row
    return exc


class _NoText:
    """A row's text that cannot be sent, with the reason (a template that failed on the row, a
    ``message`` that is not text)."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _shown(mobile: Any) -> str:
    """A row's mobile as its entry shows it (the phone reasons quote it as given)."""
    if isinstance(mobile, str):
        return mobile
    return "" if mobile is None else str(mobile)[:100]
