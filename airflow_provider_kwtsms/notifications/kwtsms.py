"""KwtSMSNotifier: SMS alerts from Airflow callbacks, in Home Assistant's notify style.

    on_failure_callback=send_kwtsms_notification(target="96598765432")

With no ``message``, the alert says what failed and why first, then the try and the run's date,
cut to ``data["max_pages"]`` pages (default 1) so one alert never costs more than one page per
number. The storm guard (``alerts``, on by default) lets one SMS per target and DAG out per quiet
period and reports the rest in a digest; this module only reads Airflow's context for it.
"""

from __future__ import annotations

import asyncio
import copy
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier

from airflow_provider_kwtsms.constants import DEFAULT_CONN_ID, DEFAULT_TIMEZONE
from airflow_provider_kwtsms.errors import KwtSMSInputError

if TYPE_CHECKING:
    import jinja2
    from airflow.sdk import Context

    from airflow_provider_kwtsms.hooks.kwtsms import KwtSMSHook, KwtSMSSettings
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
    "quiet_period",
    "storm_key",
    "final_try_only",
    "recovery",
    "daily_cap",
)
DEFAULT_ALERT_PAGES = 1
DEFAULT_QUIET = 600.0  # seconds: the storm guard's quiet period (alerts.storm.DEFAULT_QUIET)
MAX_QUIET = 7 * 86400  # seconds: a quiet period of a week at most


def _get(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def _dag_level(context: Any) -> bool:
    """A DAG run's callback (the DAG processor passes ``reason``, e.g. "task_failure"), not a task's."""
    return bool(_get(context, "reason"))


def _state(ti: Any) -> str | None:
    state = _get(ti, "state")
    state = getattr(state, "value", state)
    return str(state) if state else None


def _run_date(context: Context | dict[str, Any]) -> str | None:
    """The run's date (its logical date, else when it was due), minutes in UTC: 16 characters where
    a run id takes 50."""
    dag_run = context.get("dag_run")
    for when in (
        context.get("logical_date"),
        _get(dag_run, "logical_date"),
        _get(dag_run, "run_after"),
        _get(dag_run, "start_date"),
    ):
        if isinstance(when, datetime):
            moment = when.astimezone(UTC) if when.tzinfo else when
            return f"{moment:%Y-%m-%d %H:%M} UTC"
    return None


def alert_parts(context: Context | dict[str, Any]) -> tuple[str, str, str]:
    """The default alert in three parts: what (``dag.task failed``), why (the exception, or the
    DAG callback's reason in words) and the identifiers (``(try 2/4, run 2026-12-06 13:19 UTC)``).
    The cause comes before the identifiers, which are short; a cut shortens the cause only."""
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    dag_id = _get(context.get("dag"), "dag_id") or _get(ti, "dag_id") or _get(dag_run, "dag_id")
    task_id = _get(ti, "task_id")
    exception = context.get("exception")
    reason = context.get("reason")  # DAG-level callbacks: e.g. "task_failure"

    what = ".".join(str(part) for part in (dag_id, task_id) if part) or "Airflow"
    state = _state(ti)
    if exception is not None:
        outcome = "failed"
    elif reason:  # a DAG-level callback: the run's end decides, not its last task's state
        outcome = "success" if str(reason) == "success" else "failed"
    elif state:
        outcome = state
    else:
        outcome = "alert"
    cause = ""
    if exception is not None:
        cause = (
            f"{type(exception).__name__}: {exception}"
            if isinstance(exception, BaseException)
            else str(exception)
        )
    elif reason and str(reason) != "success":
        cause = str(_REASONS.get(str(reason), reason))
    details = []
    try_number = _get(ti, "try_number")
    if try_number:
        max_tries = _get(ti, "max_tries")
        details.append(
            f"try {try_number}/{max_tries + 1}"
            if isinstance(max_tries, int) and max_tries
            else f"try {try_number}"
        )
    run = _run_date(context)
    if run is None:
        run_id = context.get("run_id") or _get(ti, "run_id") or _get(dag_run, "run_id")
        run = str(run_id) if run_id else None
    if run:
        details.append(f"run {run}")
    return f"{what} {outcome}", cause, f"({', '.join(details)})" if details else ""


def default_alert(context: Context | dict[str, Any]) -> str:
    """A short alert from the callback's context: what failed, why, then the try and the run's date."""
    head, cause, tail = alert_parts(context)
    text = f"{head}: {cause}" if cause else head
    return f"{text} {tail}" if tail else text


def _is_success(context: Context | dict[str, Any]) -> bool:
    ti = context.get("ti") or context.get("task_instance")
    if context.get("exception") is not None:
        return False
    reason = context.get("reason")
    return (str(reason) == "success") if reason else _state(ti) == "success"


def _storm_alert(context: Context | dict[str, Any]) -> Any:
    """The alert as the storm guard counts it: what (the task, or the run) and whether it failed."""
    from airflow_provider_kwtsms.alerts.guard import Alert

    ti = context.get("ti") or context.get("task_instance")
    label = str(_get(ti, "task_id") or "run")
    if _is_success(context):
        return Alert(f"{label} success", failure=False)
    state = _state(ti)
    if context.get("exception") is None and state in ("running", "queued", "scheduled", "deferred"):
        return Alert(f"{label} {state}", failure=False)  # e.g. a deadline missed, not yet failed
    return Alert(label)


def _callbacks(task: Any, name: str) -> list[Any]:
    found = getattr(task, name, None)
    if found is None:
        return []
    return list(found) if isinstance(found, list | tuple) else [found]


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
    :param message: the text (templated). Empty: a default alert saying what failed and why, then
        the try and the run's date.
    :param title: put before the message as ``"title: message"`` (templated).
    :param data: options (templated values): ``sender`` (sender ID), ``test`` (test mode:
        queued, not delivered; true or false, anything else is an error, never a live send),
        ``default_country`` (ISO or calling code for local numbers), ``max_pages`` (the text is
        cut to this many pages; default 1), ``smart_encoding`` (look-alikes sent as GSM-7; default
        the connection's), ``send_window`` / ``send_days`` / ``timezone``: alerts ignore send
        windows unless given one here; outside it the alert is held back (logged, not sent).
        The storm guard: ``quiet_period`` (seconds, default 600; 0 turns the guard off): per
        target and DAG (``storm_key`` replaces the DAG id) one SMS per quiet period, the rest in
        a digest when it ends; ``final_try_only`` (a failure alert only when no retry is left);
        ``recovery`` (one "recovered" SMS when a DAG that alerted succeeds again; other successes
        stay silent); ``daily_cap`` (credits per target and day, then alerts are logged, not sent).
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
            raise KwtSMSInputError(
                f"KwtSMSNotifier data has unknown option(s) {', '.join(unknown)}: "
                f"use only {', '.join(DATA_OPTIONS)}."
            )
        if not target:
            raise KwtSMSInputError(
                "KwtSMSNotifier target is empty: give the phone number(s) to alert, "
                "e.g. target='96598765432'."
            )
        self.target = target
        self.message = message
        self.title = title
        self.data = dict(data or {})
        self.kwtsms_conn_id = kwtsms_conn_id
        self._origin: KwtSMSNotifier = self  # the DAG's notifier, when this is a call's copy
        self._options()  # bad literal options fail when the DAG is parsed, not at 3 a.m.

    def _options(self) -> dict[str, Any]:
        """``data`` read through the one helper per kind; templated values are read once rendered."""
        from airflow_provider_kwtsms.coerce import as_bool, as_country, as_number

        def given(name: str) -> Any:
            value = self.data.get(name)
            if value in (None, "") or (isinstance(value, str) and "{{" in value):
                return None
            return value

        test, smart = given("test"), given("smart_encoding")
        where = "KwtSMSNotifier data"
        quiet, cap, timezone = given("quiet_period"), given("daily_cap"), given("timezone")
        if timezone is not None:
            from airflow_provider_kwtsms.send.window import zone

            zone(timezone)
        key = given("storm_key")
        return {
            "sender": given("sender"),
            "test": None if test is None else as_bool(test, f"{where}['test']"),
            "default_country": as_country(given("default_country"), f"{where}['default_country']"),
            "smart_encoding": None if smart is None else as_bool(smart, f"{where}['smart_encoding']"),
            "window": self._window(given("send_window"), given("send_days"), timezone),
            "quiet": DEFAULT_QUIET
            if quiet is None
            else as_number(
                quiet,
                f"{where}['quiet_period'] (seconds; 0 turns the guard off)",
                minimum=0,
                maximum=MAX_QUIET,
            ),
            "storm_key": None if key is None else str(key).strip() or None,
            "final_try_only": as_bool(given("final_try_only") or False, f"{where}['final_try_only']"),
            "recovery": as_bool(given("recovery") or False, f"{where}['recovery']"),
            "daily_cap": None
            if cap is None
            else as_number(cap, f"{where}['daily_cap'] (credits a day)", minimum=1),
            "timezone": str(timezone).strip() if timezone else DEFAULT_TIMEZONE,
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
            raise KwtSMSInputError(
                f"KwtSMSNotifier data['max_pages'] is {raw!r}: give a whole number of pages, 1 or more."
            )
        return pages

    def _titled(self, body: str) -> str:
        return f"{str(self.title).strip()}: {body}" if self.title else body

    def compose(self, context: Context | dict[str, Any]) -> str:
        """The text to send: title and message (or the default alert), cut to max_pages; a default
        alert keeps its try and run, its cause is cut."""
        from airflow_provider_kwtsms.text.message import clean_message, trim_to_pages

        if self.message:
            return trim_to_pages(clean_message(self._titled(str(self.message).strip())), self._max_pages())
        head, cause, tail = alert_parts(context)
        text = clean_message(self._titled(f"{head}: {cause}" if cause else head))
        return trim_to_pages(text, self._max_pages(), keep_end=f" {tail}" if tail else "")

    def _guard_text(self, text: str) -> str:
        """A text of the guard's own (digest, recovery) as sent: titled, cut to max_pages."""
        from airflow_provider_kwtsms.text.message import clean_message, trim_to_pages

        return trim_to_pages(clean_message(self._titled(text)), self._max_pages())

    # -- who hears of it -----------------------------------------------------------------------------
    def _retry_left(self, context: Context | dict[str, Any]) -> bool:
        """A task failure alert while the task has a retry left (``final_try_only`` stays silent):
        its try is not past ``max_tries``, and this notifier was not called as the task's
        ``on_retry_callback`` (retry alerts are not affected)."""
        ti = context.get("ti") or context.get("task_instance")
        if ti is None or _dag_level(context) or _is_success(context):
            return False  # DAG-level callbacks and successes: a run's end is final
        try_number, max_tries = _get(ti, "try_number"), _get(ti, "max_tries")
        state = _state(ti)
        left = state == "up_for_retry" or (
            isinstance(try_number, int) and isinstance(max_tries, int) and try_number <= max_tries
        )
        if not left:
            return False
        task = context.get("task") or _get(ti, "task")
        as_retry = any(cb is self._origin for cb in _callbacks(task, "on_retry_callback"))
        as_failure = any(cb is self._origin for cb in _callbacks(task, "on_failure_callback"))
        if as_retry and not as_failure:
            return False
        if as_retry and as_failure:  # one notifier for both: the state says which
            return state != "up_for_retry"
        return True

    def _deliver(self, client: Channel, text: str, context: Context | dict[str, Any]) -> list[SendResult]:
        """Send ``text`` (or the storm guard's digest or recovery instead) to each target."""
        options = self._options()
        window = options["window"]
        if window is not None and not window.is_open(datetime.now(UTC)):
            self.log.warning(
                "kwtSMS alert held back: outside its send window %s (data['send_window']); not sent", window
            )
            return []
        if options["final_try_only"] and self._retry_left(context):
            self.log.info("kwtSMS alert not sent: the task has a retry left (data['final_try_only'])")
            return []
        success = _is_success(context)
        if options["quiet"] <= 0:  # the guard is off
            if options["recovery"] and success:
                self.log.info(
                    "kwtSMS: a success is sent only as a recovery, which needs the storm guard's record"
                )
                return []
            return [self._send(client, self.target, text, options, context)]
        from airflow_provider_kwtsms.alerts.store import AlertStoreUnavailable
        from airflow_provider_kwtsms.phone.recipients import prepare_recipients

        recipients = prepare_recipients(self.target, options["default_country"] or client.default_country)
        for bad in recipients.invalid:
            self.log.warning("kwtSMS alert: skipped invalid target %r: %s", bad.input, bad.reason)
        if not recipients.valid:
            return [self._send(client, self.target, text, options, context)]  # the send names what is wrong
        guard = self._guard(context, options)
        alert = _storm_alert(context)
        pages = _measure_pages(text)
        decisions: dict[str, Any] = {}
        try:
            for target in recipients.valid:
                if options["recovery"] and success:
                    decisions[target] = guard.on_success(target)
                else:
                    decisions[target] = guard.on_alert(target, alert, pages)
        except AlertStoreUnavailable as exc:  # fail-open: a broken guard never loses an alert
            self.log.warning(
                "kwtSMS storm guard unavailable (%s): this alert is sent unguarded", exc.description
            )
            left = [t for t in recipients.valid if t not in decisions]
            return [self._send(client, left, text, options, context)]
        courier = {t: d.courier_at for t, d in decisions.items() if d.courier_at is not None}
        if courier:
            self._start_courier(guard, options, courier)
        for target, decision in decisions.items():
            if decision.outgoing is None and decision.action == "count":
                self.log.info(
                    "kwtSMS alert to %s counted, not sent: the storm guard's quiet period (%g s, "
                    "data['quiet_period']) is on; the digest reports it when the period ends",
                    target,
                    options["quiet"],
                )
        groups: dict[str, list[Any]] = {}
        for decision in decisions.values():
            if decision.outgoing is not None:
                groups.setdefault(decision.outgoing.text or text, []).append(decision.outgoing)
        results = []
        for message, outs in groups.items():
            try:
                result = self._send(client, [o.target for o in outs], message, options, context)
            except BaseException:
                # counted again: the next digest reports what did not go out
                wake = {o.target: at for o in outs if (at := guard.not_sent(o)) is not None}
                if wake:
                    self._start_courier(guard, options, wake)
                raise
            for out in outs:
                guard.sent(out, result.points_charged / len(outs))
            results.append(result)
        return results

    def _guard(self, context: Context | dict[str, Any], options: dict[str, Any]) -> Any:
        from airflow_provider_kwtsms.alerts.store import FileAlertStore, GuardedStore, open_alert_store

        dag_run = context.get("dag_run")
        ti = context.get("ti") or context.get("task_instance")
        dag_id = _get(context.get("dag"), "dag_id") or _get(ti, "dag_id") or _get(dag_run, "dag_id")
        scope = options["storm_key"] or str(dag_id or "")
        settings = self._settings()
        shared, where = None, "the machine's folder"
        if settings is not None and settings.rate_store:
            from airflow_provider_kwtsms.rate.store_url import describe

            try:
                shared = open_alert_store(settings.rate_store, password=settings.rate_store_password)
                where = describe(settings.rate_store)
            except Exception as exc:  # a driver missing: the machine's folder guards alone
                self.log.warning(
                    "kwtSMS storm guard: the rate_store cannot hold its records (%s)", type(exc).__name__
                )
        from airflow_provider_kwtsms.alerts.storm import StormGuard

        return StormGuard(
            GuardedStore(shared, where=where, machine=FileAlertStore),
            scope=scope,
            name=scope or "Airflow",
            quiet=options["quiet"],
            daily_cap=options["daily_cap"],
            zone=options["timezone"],
            render=self._guard_text,
        )

    def _settings(self) -> KwtSMSSettings | None:
        try:
            return self.hook.settings
        except Exception:  # a hook without a connection (tests that give a client): no shared store
            return None

    def _start_courier(self, guard: Any, options: dict[str, Any], wake: dict[str, float]) -> None:
        """A detached courier for the digests (``alerts.courier``); the connection's values go to
        it on a pipe, never in its arguments."""
        settings = self._settings()
        if settings is None or settings.transport != "http":
            self.log.info(
                "kwtSMS storm guard: no courier for this connection; the next alert sends the digest"
            )
            return
        from airflow_provider_kwtsms.alerts.courier import start_courier
        from airflow_provider_kwtsms.alerts.store import alert_dir

        kwargs = settings.client_kwargs()
        spec = {
            "scope": guard.scope,
            "name": guard.name,
            "quiet": guard.quiet,
            "daily_cap": guard.daily_cap,
            "zone": guard.zone,
            "title": str(self.title).strip() if self.title else None,
            "max_pages": self._max_pages(),
            "targets": wake,
            "store": {"url": settings.rate_store, "password": settings.rate_store_password}
            if settings.rate_store
            else None,
            "alert_dir": alert_dir(),
            "client": {
                "username": settings.username,
                "password": settings.password,
                "kwargs": kwargs,
                "rate_store": settings.rate_store,
                "rate_store_password": settings.rate_store_password,
            },
            "plan": {
                "sender": options["sender"],
                "test": options["test"],
                "default_country": options["default_country"],
                "smart_encoding": options["smart_encoding"],
            },
        }
        if start_courier(spec, log_dir=alert_dir() if os.path.isdir(alert_dir()) else None):
            self.log.info("kwtSMS storm guard: a courier sends the digest when the quiet period ends")

    def _send(
        self, client: Channel, target: Any, text: str, options: dict[str, Any], context: Any = None
    ) -> SendResult:
        # client.send waits ERR028 (same number within 15 s) out, up to same_number_retries times
        # (the batch loop), so a burst of up to four alerts to one number all arrive.
        plan_options = client.plan_options(
            sender=options["sender"],
            test=options["test"],
            default_country=options["default_country"],
            smart_encoding=options["smart_encoding"],
        )
        result = client.send(target, text, plan_options)
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
        it. DAG-level callbacks and deadline alerts have no running task to write to: not kept.
        Their context may still hold a task instance, but a push from the DAG processor is a
        request its supervisor does not serve (the callback hung until the processor was killed,
        and the file's DAGs were deactivated): a DAG-level context (``reason``) never pushes."""
        if _dag_level(context):
            return
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
        call = copy.copy(self)
        call._origin = self._origin
        return super(KwtSMSNotifier, call).__call__(*args)

    def notify(self, context: Context) -> None:
        from airflow_provider_kwtsms.hooks.kwtsms import configuration_errors_are_permanent

        # A bad connection, target or data option fails as configuration (AirflowFailException).
        with configuration_errors_are_permanent():
            self._deliver(self.hook.get_client(), self.compose(context), context)

    async def async_notify(self, context: Context) -> None:
        """For the triggerer (deadline alerts): the connection is read without blocking the loop."""
        from airflow_provider_kwtsms.hooks.kwtsms import configuration_errors_are_permanent

        with configuration_errors_are_permanent():
            client = await self.hook.aget_client()
            text = self.compose(context)
            try:
                await asyncio.to_thread(self._deliver, client, text, context)
            finally:
                await asyncio.to_thread(self.hook.close)


def _measure_pages(text: str) -> int:
    from airflow_provider_kwtsms.text.message import measure_message

    return measure_message(text).pages


send_kwtsms_notification = KwtSMSNotifier
