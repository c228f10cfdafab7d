"""SendSMSOperator in one process against the local sandbox: its send window on a fake clock (no
real waiting), and what smart encoding shows in its dry run, log line and XCom summary.

The operator reads the time through ``operators.sms._now``; the tests replace it. A task outside
its window defers with a ``DateTimeTrigger`` at the next opening before any request; the method
the trigger resumes into sends once the clock is inside. A campaign that meets the window's end
defers at a batch boundary and the next opening sends the rest, no batch twice. A real Airflow
run of the same (triggerer and all) is tests/test_send_window_airflow.py.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk import DAG
from airflow_support import kwtsms_conn_uri

from airflow_provider_kwtsms.errors import KwtSMSInputError
from airflow_provider_kwtsms.ledger import MemoryStore
from airflow_provider_kwtsms.operators import sms
from airflow_provider_kwtsms.operators.sms import SendSMSOperator
from airflow_provider_kwtsms.version_compat import TaskDeferred

pytestmark = pytest.mark.compat

PASSWORD = "W1ndow-op/secret"


def kuwait(day: int, hour: int, minute: int = 0) -> datetime:
    """December 2026 in Kuwait (UTC+3, no daylight saving); 3 December 2026 is a Thursday."""
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC) - timedelta(hours=3)


def numbers(n: int) -> list[str]:
    return [f"9656{i:07d}" for i in range(n)]


@pytest.fixture
def sandbox(kwtsms_sandbox_factory, monkeypatch):
    sandbox = kwtsms_sandbox_factory(username="u", password=PASSWORD, rate=None, balance=20_000)
    monkeypatch.setenv("AIRFLOW_CONN_KWTSMS_DEFAULT", kwtsms_conn_uri(sandbox.url, "u", PASSWORD, rate=5))
    return sandbox


@pytest.fixture
def clock(monkeypatch) -> SimpleNamespace:
    """The operator's "now": ``clock.now``, a fixed instant or a function returning one."""
    clock = SimpleNamespace(now=kuwait(3, 3))

    def now() -> datetime:
        return clock.now() if callable(clock.now) else clock.now

    monkeypatch.setattr(sms, "_now", now)
    return clock


@pytest.fixture
def log_lines(monkeypatch, caplog) -> pytest.LogCaptureFixture:
    """The operator's log lines (Airflow logs through structlog, which caplog does not see)."""
    logger = logging.getLogger("kwtsms.test.operator")
    monkeypatch.setattr(SendSMSOperator, "log", property(lambda self: logger))
    caplog.set_level(logging.INFO, logger=logger.name)
    return caplog


def task_context() -> dict:
    """What execute() reads from Airflow's context: the task instance, and its state store (the ledger)."""
    ti = SimpleNamespace(
        dag_id="reminders", run_id="manual__2026-12-03", task_id="send", map_index=-1, try_number=1
    )
    ti.xcom_push = lambda **kw: pytest.fail(f"nothing should push a partial summary: {kw}")
    return {"ti": ti, "task_state_store": MemoryStore()}


def operator(mobile: list[str], message: str = "Your appointment is tomorrow.", **kwargs) -> SendSMSOperator:
    return SendSMSOperator(task_id="send", mobile=mobile, message=message, **kwargs)


def sends(sandbox) -> int:
    return sum(1 for r in sandbox.requests() if r["endpoint"] == "send")


# -- at parse time ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"send_window": "9-17"}, "send_window '9-17' is not a window"),
        ({"send_window": "09:00 to 17:00"}, "send_window '09:00 to 17:00' is not a window"),
        ({"send_window": "09:00-09:00"}, "send_window '09:00-09:00' is empty"),
        (
            {"send_window": "09:00-17:00", "timezone": "Asia/Kuwaiti"},
            "timezone 'Asia/Kuwaiti' is not a known time zone",
        ),
        ({"send_window": "09:00-17:00", "send_days": "Sun-Funday"}, "'Funday' is not a day of the week"),
    ],
)
def test_a_bad_window_fails_the_dag_files_parse_naming_the_value(kwargs, says):
    # The DAG file's own lines: the error comes from SendSMSOperator(...), before any run exists.
    with pytest.raises(KwtSMSInputError, match=re.escape(says)), DAG(dag_id="reminders", schedule=None):
        SendSMSOperator(task_id="send", mobile="96598765432", message="hi", **kwargs)


# -- outside the window -----------------------------------------------------------------------------


def test_outside_its_window_the_task_defers_to_the_opening_then_sends_each_number_once(
    sandbox, clock, log_lines
):
    clock.now = kuwait(3, 3)  # Thursday 03:00 in Kuwait: closed
    mobile = numbers(3)
    op = operator(mobile, send_window="09:00-21:00")
    context = task_context()

    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    trigger = deferred.value.trigger
    assert isinstance(trigger, DateTimeTrigger)
    assert trigger.moment == kuwait(3, 9)  # today's opening, 06:00 UTC
    assert deferred.value.method_name == "execute_in_window"
    assert sandbox.requests() == []  # not a send, not even a balance check
    assert (
        "kwtSMS: the send window is closed (09:00-21:00): deferred until 2026-12-03 09:00 Asia/Kuwait "
        "(06:00 UTC)." in log_lines.messages
    )

    clock.now = trigger.moment  # the trigger fires at the opening
    summary = op.execute_in_window(context, event=trigger.moment)
    assert summary["ok"] and summary["numbers_sent"] == 3
    assert sandbox.delivery_counts() == dict.fromkeys(mobile, 1)
    assert sends(sandbox) == 1


def test_the_log_names_the_utc_date_when_it_differs_and_the_zone_given(sandbox, clock, log_lines):
    clock.now = kuwait(3, 12)  # Thursday noon: closed for an early-morning, weekend window
    op = operator(numbers(1), send_window="02:00-04:00", send_days="fri,sat", timezone="Asia/Riyadh")
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(task_context())
    assert deferred.value.trigger.moment == kuwait(4, 2)  # Friday 02:00 = Thursday 23:00 UTC
    assert (
        "kwtSMS: the send window is closed (02:00-04:00 on fri,sat): deferred until 2026-12-04 02:00 "
        "Asia/Riyadh (2026-12-03 23:00 UTC)." in log_lines.messages
    )
    assert sandbox.requests() == []


# -- closing mid-send -------------------------------------------------------------------------------


def test_a_window_closing_mid_campaign_defers_at_a_batch_boundary_and_the_next_opening_finishes(
    sandbox, clock
):
    mobile = numbers(1000)  # 5 batches of 200
    # Each batch sent moves the clock a minute: from 20:58 the window (to 21:00) lets two go.
    started = kuwait(3, 20, 58)
    clock.now = lambda: started + timedelta(minutes=sends(sandbox))
    op = operator(mobile, send_window="09:00-21:00")
    context = task_context()

    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    assert deferred.value.trigger.moment == kuwait(4, 9)  # Friday's opening
    assert deferred.value.method_name == "execute_in_window"
    assert sends(sandbox) == 2
    assert sum(sandbox.delivery_counts().values()) == 400

    clock.now = kuwait(4, 9)
    summary = op.execute_in_window(context, event=kuwait(4, 9))
    assert summary["ok"] and summary["numbers_sent"] == 1000
    assert summary["resume"]["batches_from_earlier_tries"] == 2  # recorded by the ledger, not resent
    assert sends(sandbox) == 5
    assert sandbox.delivery_counts() == dict.fromkeys(mobile, 1)


# -- smart encoding, as the operator shows it ---------------------------------------------------------

# 95 characters with one curly apostrophe: one GSM-7 page once it is straightened, two UCS-2
# pages as written (over 70 characters).
PASTED = "We’re open late this Thursday: 20% off every coat in store and online until midnight. See you!!"


def test_a_dry_run_shows_what_smart_encoding_saves_before_a_credit_is_spent(sandbox, log_lines):
    assert len(PASTED) > 70
    summary = operator(numbers(3), PASTED, dry_run=True).execute(task_context())
    assert summary["smart_encoding"] == {"replaced_characters": 1, "credits_saved": 3}
    assert summary["estimate"] == 3  # 3 numbers x 1 GSM-7 page, not 3 x 2 UCS-2 pages
    assert any("smart encoding replaced 1 character(s), saving 3 credit(s)" in m for m in log_lines.messages)
    assert sandbox.requests() == []  # a dry run asks nothing of the gateway


def test_the_send_goes_in_gsm7_and_the_summary_says_so_unless_switched_off(sandbox):
    summary = operator(numbers(3), PASTED).execute(task_context())
    assert summary["smart_encoding"] == {"replaced_characters": 1, "credits_saved": 3}
    (message,) = sandbox.messages()
    assert message["message"] == PASTED.replace("’", "'") and message["pages"] == 1

    sandbox.reset()
    summary = operator(numbers(3), PASTED, smart_encoding=False).execute(task_context())
    assert summary["smart_encoding"] == {"replaced_characters": 0, "credits_saved": 0}
    (message,) = sandbox.messages()
    assert message["message"] == PASTED and message["pages"] == 2  # as written: UCS-2
