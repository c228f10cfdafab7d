"""SendSMSOperator: send one SMS text to many numbers, or every recipient their own text, through
kwtSMS, resumable across retries."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator

from airflow_provider_kwtsms.constants import DEFAULT_CONN_ID, DEFAULT_ON_UNCERTAIN, ON_UNCERTAIN
from airflow_provider_kwtsms.errors import KwtSMSInputError

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_kwtsms.send.results import SendPlan, SendResult
    from airflow_provider_kwtsms.send.window import SendWindow

ON_INVALID = ("skip", "fail")
_SHOWN_INVALID = 20  # invalid inputs quoted in an on_invalid="fail" error


def recipients_from(value: Any) -> list[str]:
    """Whatever a user puts in ``mobile``, as a flat list of raw entries (not yet validated).

    A string holding a JSON or Python list (what ``{{ ti.xcom_pull(...) }}`` renders to without
    ``render_template_as_native_obj``) is read as that list; any other string is split on commas,
    semicolons and new lines; numbers, lists, tuples, sets and generators, nested at any depth,
    go to ``phone.split_recipients``, which accounts for every entry (an unusable one becomes an
    invalid input with its reason, never a bare error).
    """
    from airflow_provider_kwtsms.phone.recipients import split_recipients

    if value is None:
        return []
    if isinstance(value, bool):
        raise KwtSMSInputError(f"mobile must be phone numbers, got the boolean {value!r}")
    if isinstance(value, dict):
        raise KwtSMSInputError(
            "mobile must be phone numbers (a string, or a list of them), got a dict; "
            "pull the list out of it in the template, e.g. {{ ti.xcom_pull('t')['numbers'] }}"
        )
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("[", "("):
            parsed = _parse_list_literal(text)
            if parsed is not None:
                value = parsed
    return split_recipients(value)  # refused entries keep their marker (a str subclass) and reason


def rows_from(value: Any, what: str) -> list[Any]:
    """Whatever a user puts in ``messages`` or ``recipients``, as a list of rows (each row is judged
    later, one by one: a row that is not a mapping is that row's invalid entry). A string holding
    a JSON or Python list (``{{ ti.xcom_pull(...) }}`` without native rendering) is read as it."""
    if value is None:
        return []
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        text = value.strip()
        parsed = _parse_list_literal(text) if text[:1] in ("[", "(") else None
        if parsed is None:
            raise KwtSMSInputError(
                f"{what} must be a list of rows (each a dict with 'mobile'), got text that is not a "
                f"list ({len(text)} characters): pull the list itself, e.g. {{{{ ti.xcom_pull('rows') }}}}"
            )
        return list(parsed)
    if isinstance(value, Mapping):
        raise KwtSMSInputError(f"{what} must be a list of rows, got one mapping: put it in a list, [{{...}}]")
    if not isinstance(value, Iterable):
        raise KwtSMSInputError(f"{what} must be a list of rows, got {type(value).__name__}")
    return list(value)


def _parse_list_literal(text: str) -> Any:
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError, RecursionError, MemoryError):
            return None
    return parsed if isinstance(parsed, list | tuple) else None


def _check_mode(mobile: Any, message: Any, messages: Any, recipients: Any, template: Any) -> None:
    """Exactly one way to say who gets what (a DAG that mixes them fails its parse, naming them)."""
    if messages is not None:
        extra = [
            n
            for n, v in (
                ("mobile", mobile),
                ("message", message),
                ("recipients", recipients),
                ("message_template", template),
            )
            if v is not None
        ]
        if extra:
            raise KwtSMSInputError(
                f"messages (a text per row) cannot be combined with {', '.join(extra)}: each row "
                "carries its own 'mobile' and 'message'"
            )
    elif recipients is not None:
        extra = [n for n, v in (("mobile", mobile), ("message", message)) if v is not None]
        if extra or template is None:
            raise KwtSMSInputError(
                "recipients (a row per recipient) takes message_template (the text of each row, "
                "e.g. 'Dear {{ name }}'), " + (f"not {', '.join(extra)}" if extra else "which is missing")
            )
    elif mobile is None or message is None or template is not None:
        raise KwtSMSInputError(
            "give mobile and message (one text to many numbers), messages (a text per row) or "
            "recipients with message_template (a text rendered per row)"
            + (": message_template needs recipients" if template is not None else "")
        )


def _now() -> datetime:
    return datetime.now(UTC)


class SendSMSOperator(BaseOperator):
    """Send one text to many numbers, or every recipient their own text, through kwtSMS, in
    batches of 200, resuming across retries.

    Give exactly one of: ``mobile`` with ``message`` (one text); ``messages`` (a row per
    recipient with its own text); ``recipients`` with ``message_template`` (a row per recipient,
    its text rendered from the row). Rows with the same text share requests.

    The task returns a JSON-serialisable summary (pushed to XCom): msg-ids, counts, credits,
    balance, invalid inputs with reasons, duplicates, suppressed numbers, per-batch states, the
    estimate and the tries; a send from rows adds ``rows``, every row counted by what became of it.

    :param mobile: the numbers (templated): a comma/semicolon/newline separated string, one
        number, a list, nested lists (from mapped tasks), or a string holding a JSON or Python list
        (what ``{{ ti.xcom_pull(...) }}`` renders to without ``render_template_as_native_obj``).
        Numbers need their country code unless ``default_country`` is set.
    :param message: the text (templated); emoji, invisible characters and HTML are removed
        before sending.
    :param messages: per-recipient rows (templated, so from XCom too): ``[{"mobile": "...",
        "message": "..."}, ...]``; each row's text to its number.
    :param recipients: per-recipient rows for ``message_template`` (templated): ``[{"mobile":
        "...", "name": "...", ...}, ...]``.
    :param message_template: the text of each row of ``recipients``, e.g. ``"Dear {{ name }},
        order {{ order }} ships today"``: Jinja rendered per row in a sandbox, with the row's keys
        as its only variables, strictly (a key the row lacks makes that row invalid, with the
        reason). Not an Airflow templated field: Airflow renders those at task start, before any
        row is known, so it leaves this one alone (docs/operator.md).
    :param do_not_send: numbers never to send to (templated: a list, or from XCom), matched after
        normalisation (+965, 00965, Arabic digits); counted as suppressed. The connection's extra
        ``do_not_send_variable`` names a Variable holding more.
    :param sender: the sender ID (templated, case-sensitive); default: the connection's, else
        ``KWT-SMS``.
    :param kwtsms_conn_id: the kwtSMS connection (templated).
    :param test_mode: ``True`` queues the messages without delivering them; default: the
        connection's.
    :param default_country: calling code added to local numbers (e.g. ``"965"``); default: the
        connection's.
    :param max_credits: fail before anything is sent when the estimate (numbers x pages) is
        above this (templated).
    :param dry_run: plan and estimate only: no request to kwtSMS, no credentials used.
    :param on_invalid: ``"skip"`` sends to the valid numbers and reports the others with their
        reasons; ``"fail"`` fails before anything is sent when any input is invalid.
    :param on_uncertain: what to do with a batch whose answer was lost and whose outcome the
        account balance cannot tell: ``"fail"``, ``"skip"`` (at most once) or ``"resend"`` (at
        least once).
    :param smart_encoding: send look-alike characters (curly quotes, dashes...) as GSM-7 when
        every non-GSM-7 character has a faithful form; default: the connection's (on).
    :param send_window: ``"HH:MM-HH:MM"`` (24-hour; ``"22:00-06:00"`` crosses midnight): outside
        it the task defers until it opens, and a send still running when it closes stops at a
        batch boundary and resumes at the next opening.
    :param send_days: the days the window opens (``"Sun-Thu"``, ``"fri,sat"``, a list); default:
        every day.
    :param timezone: the window's zone (e.g. ``"Asia/Riyadh"``); default: the connection's
        ``timezone``, else ``Asia/Kuwait``.
    """

    # Not message_template: Airflow renders these at task start, when no row is known yet.
    template_fields: Sequence[str] = (
        "mobile",
        "message",
        "messages",
        "recipients",
        "do_not_send",
        "sender",
        "max_credits",
        "kwtsms_conn_id",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {
        "message": "txt",
        "mobile": "py",
        "messages": "py",
        "recipients": "py",
        "do_not_send": "py",
    }
    ui_color = "#c9e4f5"

    def __init__(
        self,
        *,
        mobile: str | int | Iterable[str | int] | None = None,
        message: str | None = None,
        messages: Any = None,
        recipients: Any = None,
        message_template: str | None = None,
        do_not_send: Any = None,
        sender: str | None = None,
        kwtsms_conn_id: str = DEFAULT_CONN_ID,
        test_mode: bool | None = None,
        default_country: str | None = None,
        max_credits: int | str | None = None,
        dry_run: bool = False,
        on_invalid: str = "skip",
        on_uncertain: str = DEFAULT_ON_UNCERTAIN,
        smart_encoding: bool | None = None,
        send_window: str | None = None,
        send_days: str | Sequence[str] | None = None,
        timezone: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if on_invalid not in ON_INVALID:
            raise KwtSMSInputError(f"on_invalid must be one of {', '.join(ON_INVALID)}, got {on_invalid!r}")
        if on_uncertain not in ON_UNCERTAIN:
            raise KwtSMSInputError(
                f"on_uncertain must be one of {', '.join(ON_UNCERTAIN)}, got {on_uncertain!r}"
            )
        _check_mode(mobile, message, messages, recipients, message_template)
        self.mobile = mobile
        self.message = message
        self.messages, self.recipients, self.message_template = messages, recipients, message_template
        self.do_not_send = do_not_send
        self.sender = sender
        self.kwtsms_conn_id = kwtsms_conn_id
        self.test_mode = test_mode
        self.default_country = default_country
        self.max_credits = max_credits
        # Not ``self.dry_run``: that name is BaseOperator's dry_run() method.
        self.plan_only = dry_run
        self.on_invalid = on_invalid
        self.on_uncertain = on_uncertain
        self.smart_encoding = smart_encoding
        self.send_window, self.send_days, self.timezone = send_window, send_days, timezone
        if send_window is not None:
            from airflow_provider_kwtsms.send.window import SendWindow  # stdlib only: cheap at parse

            SendWindow.parse(send_window, send_days, timezone)  # a bad window fails the DAG's parse

    # -- execute ------------------------------------------------------------------------------
    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_kwtsms.errors import KwtSMSError, KwtSMSInputError
        from airflow_provider_kwtsms.hooks.kwtsms import KwtSMSHook
        from airflow_provider_kwtsms.ledger.resume import (
            BatchesFailedError,
            LedgerMismatchError,
            SendPaused,
            UncertainBatchesError,
            resume_send,
        )
        from airflow_provider_kwtsms.send.batch_loop import credits_text, plural
        from airflow_provider_kwtsms.send.planning import check_credits
        from airflow_provider_kwtsms.send.results import SendResult
        from airflow_provider_kwtsms.version_compat import AirflowFailException

        rows_field = (
            "messages" if self.messages is not None else "recipients" if self.recipients is not None else None
        )
        try:
            if rows_field is None:
                raws = recipients_from(self.mobile)
            else:
                raws = rows_from(getattr(self, rows_field), rows_field)
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from None
        if not raws:
            raise AirflowFailException(
                "mobile rendered to no phone numbers: give numbers with their country code, e.g. "
                "'96598765432,96550123456', or a list (check the upstream task that provides them)."
                if rows_field is None
                else f"{rows_field} rendered to no rows: give a list of rows, each with its 'mobile' "
                "(check the upstream task that provides them)."
            )
        max_credits = self._max_credits()

        hook = KwtSMSHook(kwtsms_conn_id=self.kwtsms_conn_id, smart_encoding=self.smart_encoding)
        do_not_send = self._do_not_send(hook)
        window = self._window(hook) if not self.plan_only else None
        if window is not None and not window.is_open(_now()):
            self._defer_until(window, "the send window is closed")
        client = hook.get_client()
        try:
            try:
                options = client.plan_options(
                    sender=self.sender, test=self.test_mode, default_country=self.default_country
                )
                if rows_field is None:
                    assert self.message is not None  # _check_mode: mobile comes with message
                    plan = client.plan_send(raws, self.message, options, do_not_send=do_not_send)
                else:
                    plan = client.plan_rows(
                        raws, options, template=self.message_template, do_not_send=do_not_send
                    )
                check_credits(plan, max_credits)  # the one credit cap (planning)
            except (KwtSMSInputError, ValueError) as exc:
                text = str(exc)
                raise AirflowFailException(
                    text if text.startswith("Nothing") else f"Nothing was sent: {text}"
                ) from None
            self._log_plan(plan)
            self._check_before_sending(plan)
            if self.plan_only:
                self.log.info("dry_run=True: nothing sent. Estimate: %d credits.", plan.estimate)
                return SendResult(plan=plan, batches=[], dry_run=True).to_dict()
            if not plan.batches:
                self.log.warning("No valid numbers to send to: every input was invalid or a duplicate.")
                return SendResult(plan=plan, batches=[], dry_run=False).to_dict()

            store = self._ledger_store(context)
            ti = context["ti"]
            try:
                result = resume_send(
                    client,
                    plan,
                    store,
                    on_uncertain=self.on_uncertain,
                    try_number=getattr(ti, "try_number", None),
                    keep_going=None if window is None else (lambda: window.is_open(_now())),
                )
            except SendPaused as exc:
                self.log.info("%s", exc.description)
                assert window is not None  # only a window pauses a send
                self._defer_until(window, "the send window closed at a batch boundary")
            except (UncertainBatchesError, BatchesFailedError) as exc:
                if exc.result is not None:
                    ti.xcom_push(key="partial_summary", value=self._summary(exc.result, store, client))
                raise AirflowFailException(str(exc)) from None
            except LedgerMismatchError as exc:
                raise AirflowFailException(f"{exc} (ledger: {store.describe()})") from None
            except KwtSMSError as exc:
                if exc.permanent:
                    # A person must change something first: no retry is wasted on it.
                    raise AirflowFailException(str(exc)) from None
                self.log.warning("The send stopped on a passing error; the next try resumes from there.")
                raise
        finally:
            client.close()

        summary = self._summary(result, store, client)
        earlier = summary["resume"]["batches_from_earlier_tries"]
        self.log.info(
            "Sent %s in %s%s, %s, balance after %s%s.",
            plural(result.numbers_sent, "number"),
            plural(len(result.batches), "batch", "batches"),
            f" ({earlier} by earlier tries)" if earlier else "",
            plural(result.points_charged, "credit"),
            credits_text(result.balance_after),
            " (test mode: queued, not delivered)" if plan.test else "",
        )
        if store.kind == "Variable":
            # The fallback store is visible to everyone in the Variables list: keep only one small
            # value saying the send is done. Not deleted: the task can still fail after execute
            # (post_execute, the XCom push), and its retry must not send everything again.
            from airflow_provider_kwtsms.ledger.resume import complete_ledger

            complete_ledger(store)
        return summary

    def execute_in_window(self, context: Context, event: Any = None) -> dict[str, Any]:
        """Where a deferred send comes back when its window opens: the ledger resumes it."""
        return self.execute(context)

    # -- send windows -------------------------------------------------------------------------
    def _window(self, hook: Any) -> SendWindow | None:
        if self.send_window is None:
            return None
        from airflow_provider_kwtsms.send.window import SendWindow

        return SendWindow.parse(self.send_window, self.send_days, self.timezone or hook.settings.timezone)

    def _defer_until(self, window: SendWindow, why: str) -> None:
        """Give the worker slot back until the window opens (a trigger in the triggerer waits)."""
        # The standard provider ships with every Airflow 3; its trigger waits in the triggerer.
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger

        opening = window.next_opening(_now())
        # The account's zone first (what its people read), then UTC (what Airflow's UI shows).
        self.log.info("kwtSMS: %s (%s): deferred until %s.", why, window.hours, window.wall_clock(opening))
        self.defer(trigger=DateTimeTrigger(moment=opening), method_name="execute_in_window")

    # -- steps --------------------------------------------------------------------------------
    def _do_not_send(self, hook: Any) -> list[str]:
        """The do-not-send list: the argument's numbers and those of the Variable the connection
        names (extra ``do_not_send_variable``), read like recipients."""
        from airflow_provider_kwtsms.version_compat import AirflowFailException

        try:
            listed = recipients_from(self.do_not_send)
            stored = hook.do_not_send()
            if stored is not None:
                listed += recipients_from(stored)
        except ValueError as exc:  # a configuration error of the connection is one too
            raise AirflowFailException(f"do_not_send: {exc}") from None
        if listed:
            self.log.info("Do-not-send list: %d entries (matched after normalisation).", len(listed))
        return listed

    def _max_credits(self) -> int | None:
        from airflow_provider_kwtsms.version_compat import AirflowFailException

        if self.max_credits in (None, ""):
            return None
        try:
            value = int(str(self.max_credits).strip())
        except ValueError:
            raise AirflowFailException(
                f"max_credits must be a whole number of credits, got {self.max_credits!r}"
            ) from None
        if value < 0:
            raise AirflowFailException(f"max_credits must be 0 or more, got {value}")
        return value

    def _check_before_sending(self, plan: SendPlan) -> None:
        from airflow_provider_kwtsms.version_compat import AirflowFailException

        invalid = plan.recipients.invalid
        if invalid and self.on_invalid == "fail":
            shown = "; ".join(f"{i.input!r}: {i.reason}" for i in invalid[:_SHOWN_INVALID])
            more = f" (and {len(invalid) - _SHOWN_INVALID} more)" if len(invalid) > _SHOWN_INVALID else ""
            raise AirflowFailException(
                f"Nothing was sent: {len(invalid)} of {plan.recipients.total_inputs} inputs are not valid "
                f"numbers{more}: {shown}. Fix them, or set on_invalid='skip' to send to the valid ones."
            )

    def _ledger_store(self, context: Context) -> Any:
        from airflow_provider_kwtsms.operators._ledger_store import ledger_store_for

        store = ledger_store_for(context)
        if store.kind == "Variable":
            self.log.info(
                "No task state store in this Airflow: keeping the send ledger in %s.", store.describe()
            )
        return store

    def _summary(self, result: SendResult, store: Any, client: Any) -> dict[str, Any]:
        from airflow_provider_kwtsms.send.results import SKIPPED

        summary = result.to_dict()
        summary["transport"] = client.transport
        summary["connection"] = self.kwtsms_conn_id  # the kwtSMS page draws each connection's balance
        if summary["transport"] == "smtp":
            from airflow_provider_kwtsms.smtp.sender import UNCONFIRMED_NOTE

            # E-mail gets no answer: say so where people read the outcome, not only per batch.
            summary.update(confirmed=False, note=UNCONFIRMED_NOTE)
        tries = sorted({b.try_number for b in result.batches if b.try_number is not None})
        summary["resume"] = {
            "store": store.kind,
            "tries": tries,
            "batches_from_earlier_tries": sum(1 for b in result.batches if b.state == SKIPPED),
            "on_uncertain": self.on_uncertain,
        }
        return summary

    def _log_plan(self, plan: SendPlan) -> None:
        r = plan.recipients
        self.log.info("%s", plan.describe())
        for item in r.invalid[:_SHOWN_INVALID]:
            self.log.warning("Invalid input %r: %s", item.input, item.reason)
        if len(r.invalid) > _SHOWN_INVALID:
            self.log.warning(
                "... and %d more invalid inputs (all listed in the XCom summary)",
                len(r.invalid) - _SHOWN_INVALID,
            )
