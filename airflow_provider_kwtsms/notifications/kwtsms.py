"""KwtSMSNotifier: SMS alerts from Airflow callbacks, in Home Assistant's notify style.

    on_failure_callback=send_kwtsms_notification(target="96598765432")

With no ``message``, the alert names the DAG, task, try, run and exception, cut to
``data["max_pages"]`` pages (default 1) so one alert never costs more than one page per number.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier

from airflow_provider_kwtsms.constants import DEFAULT_CONN_ID

if TYPE_CHECKING:
    import jinja2
    from airflow.sdk import Context

    from airflow_provider_kwtsms.hooks.kwtsms import KwtSMSHook
    from airflow_provider_kwtsms.send.channel import Channel
    from airflow_provider_kwtsms.send.results import SendResult

DATA_OPTIONS = (
    "sender",
    "test",
    "default_country",
    "max_pages",
    "smart_encoding",
    "send_window",
    "send_days",
    "timezone",
)
DEFAULT_ALERT_PAGES = 1


def _get(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def default_alert(context: Context | dict[str, Any]) -> str:
    """A short alert from the callback's context; the exception goes last so trimming cuts it first."""
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    dag_id = _get(context.get("dag"), "dag_id") or _get(ti, "dag_id") or _get(dag_run, "dag_id")
    task_id = _get(ti, "task_id")
    run_id = context.get("run_id") or _get(ti, "run_id") or _get(dag_run, "run_id")
    exception = context.get("exception")
    reason = context.get("reason")  # DAG-level callbacks: e.g. "task_failure"

    what = ".".join(str(part) for part in (dag_id, task_id) if part) or "Airflow"
    state = _get(ti, "state")
    state = getattr(state, "value", state)
    if exception is not None:
        outcome = "failed"
    elif state:
        outcome = str(state)
    elif reason:
        outcome = str(reason)
    else:
        outcome = "alert"
    details = []
    try_number = _get(ti, "try_number")
    if try_number:
        max_tries = _get(ti, "max_tries")
        details.append(
            f"try {try_number}/{max_tries + 1}"
            if isinstance(max_tries, int) and max_tries
            else f"try {try_number}"
        )
    if run_id:
        details.append(f"run {run_id}")
    text = f"Airflow {what} {outcome}"
    if details:
        text += f" ({', '.join(details)})"
    if exception is not None:
        text += (
            f": {type(exception).__name__}: {exception}"
            if isinstance(exception, BaseException)
            else f": {exception}"
        )
    elif reason and outcome != str(reason):
        text += f": {_REASONS.get(str(reason), reason)}"
    return text


# DAG-level callbacks get a reason code instead of an exception: Airflow 3 hands the DAG processor
# the run and its last task instance, never the task's exception (task-level callbacks have it).
_REASONS = {
    "task_failure": "a task failed (its exception is in the task log; task-level alerts carry it)",
    "timed_out": "the run timed out (dagrun_timeout)",
    "success": "all tasks succeeded",
}


class KwtSMSNotifier(BaseNotifier):
    """Send an SMS through kwtSMS from any Airflow callback or deadline alert.

    :param target: phone number(s) to alert (templated): a list or a comma-separated string.
    :param message: the text (templated). Empty: a default alert naming the DAG, task, try,
        run and exception.
    :param title: put before the message as ``"title: message"`` (templated).
    :param data: options (templated values): ``sender`` (sender ID), ``test`` (test mode:
        queued, not delivered; true or false, anything else is an error, never a live send),
        ``default_country`` (ISO or calling code for local numbers), ``max_pages`` (the text is
        cut to this many pages; default 1), ``smart_encoding`` (look-alikes sent as GSM-7; default
        the connection's), and ``send_window`` / ``send_days`` / ``timezone``: alerts ignore send
        windows unless given one here; outside it the alert is held back (logged, not sent).
    :param kwtsms_conn_id: the ``kwtsms`` connection.
    """

    template_fields: Sequence[str] = ("message", "title", "target", "data", "kwtsms_conn_id")

    def __init__(
        self,
        *,
        target: str | Sequence[str],
        message: str | None = None,
        title: str | None = None,
        data: dict[str, Any] | None = None,
        kwtsms_conn_id: str = DEFAULT_CONN_ID,
    ) -> None:
        super().__init__()
        unknown = sorted(set(data or {}) - set(DATA_OPTIONS))
        if unknown:
            raise ValueError(
                f"KwtSMSNotifier data has unknown option(s) {', '.join(unknown)}: "
                f"use only {', '.join(DATA_OPTIONS)}."
            )
        if not target:
            raise ValueError(
                "KwtSMSNotifier target is empty: give the phone number(s) to alert, "
                "e.g. target='96598765432'."
            )
        self.target = target
        self.message = message
        self.title = title
        self.data = dict(data or {})
        self.kwtsms_conn_id = kwtsms_conn_id
        self._options()  # bad literal options fail when the DAG is parsed, not at 3 a.m.

    def _options(self) -> dict[str, Any]:
        """``data`` read through the one helper per kind; templated values are read once rendered."""
        from airflow_provider_kwtsms.coerce import as_bool, as_country

        def given(name: str) -> Any:
            value = self.data.get(name)
            if value in (None, "") or (isinstance(value, str) and "{{" in value):
                return None
            return value

        test, smart = given("test"), given("smart_encoding")
        where = "KwtSMSNotifier data"
        return {
            "sender": given("sender"),
            "test": None if test is None else as_bool(test, f"{where}['test']"),
            "default_country": as_country(given("default_country"), f"{where}['default_country']"),
            "smart_encoding": None if smart is None else as_bool(smart, f"{where}['smart_encoding']"),
            "window": self._window(given("send_window"), given("send_days"), given("timezone")),
        }

    @staticmethod
    def _window(hours: Any, days: Any, timezone: Any) -> Any:
        if hours is None:
            return None
        from airflow_provider_kwtsms.send.window import SendWindow

        return SendWindow.parse(hours, days, timezone)

    @cached_property
    def hook(self) -> KwtSMSHook:
        from airflow_provider_kwtsms.hooks.kwtsms import KwtSMSHook  # not on the DAG-parse path

        return KwtSMSHook(kwtsms_conn_id=self.kwtsms_conn_id)

    def _max_pages(self) -> int:
        raw = self.data.get("max_pages")
        if raw in (None, ""):
            return DEFAULT_ALERT_PAGES
        try:
            pages = int(raw)
        except (TypeError, ValueError):
            pages = 0
        if pages < 1 or str(raw).strip() not in (str(pages), f"{pages}.0"):
            from airflow_provider_kwtsms.errors import KwtSMSInputError

            raise KwtSMSInputError(
                f"KwtSMSNotifier data['max_pages'] is {raw!r}: give a whole number of pages, 1 or more."
            )
        return pages

    def compose(self, context: Context | dict[str, Any]) -> str:
        """The text to send: title and message (or the default alert), cut to max_pages."""
        from airflow_provider_kwtsms.text.message import clean_message, trim_to_pages

        body = str(self.message).strip() if self.message else default_alert(context)
        text = f"{str(self.title).strip()}: {body}" if self.title else body
        return trim_to_pages(clean_message(text), self._max_pages())

    def _send(self, client: Channel, text: str, context: Any = None) -> SendResult | None:
        options = self._options()
        window = options["window"]
        if window is not None and not window.is_open(datetime.now(UTC)):
            self.log.warning(
                "kwtSMS alert held back: outside its send window %s (data['send_window']); not sent", window
            )
            return None
        # client.send waits ERR028 (same number within 15 s) out, up to same_number_retries times
        # (the batch loop), so a burst of up to four alerts to one number all arrive.
        plan_options = client.plan_options(
            sender=options["sender"],
            test=options["test"],
            default_country=options["default_country"],
            smart_encoding=options["smart_encoding"],
        )
        result = client.send(self.target, text, plan_options)
        for bad in result.plan.recipients.invalid:
            self.log.warning("kwtSMS alert: skipped invalid target %r: %s", bad.input, bad.reason)
        self._record(context, result)
        result.raise_for_status()
        from airflow_provider_kwtsms.send.batch_loop import plural

        self.log.info(
            "kwtSMS alert sent to %s, %s, %s %s",
            plural(len(result.plan.recipients.valid), "number"),
            plural(result.points_charged, "credit"),
            "msg-id" if len(result.msg_ids) == 1 else "msg-ids",
            ", ".join(result.msg_ids),
        )
        return result

    def _record(self, context: Any, result: SendResult) -> None:
        """Keep the alert where the kwtSMS page reads it: an XCom of the task whose callback sent
        it. DAG-level callbacks and deadline alerts have no running task to write to: not kept."""
        push = getattr(_get(context, "ti"), "xcom_push", None)
        if push is None:
            return
        from airflow_provider_kwtsms.usage.records import ALERT_KEY, alert_record

        try:
            push(key=ALERT_KEY, value=alert_record(result.to_dict(), result.plan.recipients.valid))
        except Exception as error:  # the alert went (or not) all the same: its record is a nicety
            self.log.warning("kwtSMS alert not recorded for the kwtSMS page: %s", error)

    def render_template_fields(self, context: Context, jinja_env: jinja2.Environment | None = None) -> None:
        # `airflow dags test` (3.3) hands DAG-level callbacks a SerializedDAG, which cannot build a
        # template environment, so the alert would be lost; render with the default one instead.
        dag = context.get("dag")
        if jinja_env is None and dag is not None and not hasattr(dag, "get_template_env"):
            jinja_env = self.get_template_env(dag=None)
        super().render_template_fields(context, jinja_env)

    def __call__(self, *args: Any) -> None:
        # Airflow renders the templated fields in place, and its DAG processor runs the DAG-level
        # callbacks of many runs on one parsed DAG, i.e. one notifier: render on a copy, or every
        # later alert goes to the first run's number with its text.
        return super(KwtSMSNotifier, copy.copy(self)).__call__(*args)

    def notify(self, context: Context) -> None:
        from airflow_provider_kwtsms.hooks.kwtsms import configuration_errors_are_permanent

        # A bad connection, target or data option fails as configuration (AirflowFailException).
        with configuration_errors_are_permanent():
            self._send(self.hook.get_client(), self.compose(context), context)

    async def async_notify(self, context: Context) -> None:
        """For the triggerer (deadline alerts): the connection is read without blocking the loop."""
        from airflow_provider_kwtsms.hooks.kwtsms import configuration_errors_are_permanent

        with configuration_errors_are_permanent():
            client = await self.hook.aget_client()
            text = self.compose(context)
            try:
                await asyncio.to_thread(self._send, client, text, context)
            finally:
                await asyncio.to_thread(self.hook.close)


send_kwtsms_notification = KwtSMSNotifier
