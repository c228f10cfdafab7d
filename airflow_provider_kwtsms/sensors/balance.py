"""BalanceSensor: gate a send on the kwtSMS balance.

By default a low balance fails the task at once (no retries: topping up takes a person).
With ``wait_for_top_up=True`` it waits for the top-up instead: poking, rescheduling, or
deferred to the triggerer (``deferrable=True``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_kwtsms.constants import DEFAULT_CONN_ID
from airflow_provider_kwtsms.version_compat import AirflowException, AirflowFailException

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_kwtsms.gateway.client import Balance
    from airflow_provider_kwtsms.hooks.kwtsms import KwtSMSHook

TOP_UP_URL = "https://www.kwtsms.com"


def parse_min_balance(value: Any) -> float:
    """``min_balance`` as a number of credits; it is often a rendered template, so a string."""
    if isinstance(value, bool):
        raise AirflowFailException(f"min_balance is {value!r}: give a number of credits, e.g. 100.")
    try:
        number = float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise AirflowFailException(
            f"min_balance is {value!r}: give a number of credits, e.g. 100 or "
            "\"{{ ti.xcom_pull(task_ids='plan')['estimate'] }}\"."
        ) from None
    if number != number or number < 0:  # NaN or negative
        raise AirflowFailException(f"min_balance is {value!r}: give a number of credits of 0 or more.")
    return number


class BalanceSensor(BaseSensorOperator):
    """Check that the kwtSMS balance is at least ``min_balance`` credits.

    Returns (and so pushes to XCom) ``{"available", "purchased", "min_balance", "connection"}``. Other
    arguments (``mode``, ``poke_interval``, ``timeout``, ...) are BaseSensorOperator's.

    :param min_balance: minimum available balance in credits (templated), e.g. an upstream
        dry run's estimate: ``"{{ ti.xcom_pull(task_ids='plan')['estimate'] }}"``.
    :param kwtsms_conn_id: the ``kwtsms`` connection (templated).
    :param wait_for_top_up: False (default) fails the task at once when the balance is low;
        True waits for a top-up, checking every ``poke_interval`` seconds until ``timeout``.
    :param deferrable: when waiting, wait in the triggerer (frees the worker slot).
    """

    template_fields: Sequence[str] = ("min_balance", "kwtsms_conn_id")
    ui_color = "#e8f4ea"

    def __init__(
        self,
        *,
        min_balance: float | int | str = 1,
        kwtsms_conn_id: str = DEFAULT_CONN_ID,
        wait_for_top_up: bool = False,
        deferrable: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.min_balance = min_balance
        self.kwtsms_conn_id = kwtsms_conn_id
        self.wait_for_top_up = wait_for_top_up
        self.deferrable = deferrable

    @cached_property
    def hook(self) -> KwtSMSHook:
        from airflow_provider_kwtsms.hooks.kwtsms import KwtSMSHook  # not on the DAG-parse path

        return KwtSMSHook(kwtsms_conn_id=self.kwtsms_conn_id)

    def _xcom(self, available: float, purchased: float | None, minimum: float) -> dict[str, Any]:
        # The connection too: the kwtSMS page draws each connection's balance from these readings.
        return {
            "available": available,
            "purchased": purchased,
            "min_balance": minimum,
            "connection": self.kwtsms_conn_id,
        }

    def _low_message(self, balance: Balance, minimum: float) -> str:
        return (
            f"kwtSMS balance is {balance.available:g} credits, below the minimum of {minimum:g} "
            f"(connection {self.kwtsms_conn_id!r}). Top up the account at {TOP_UP_URL}, lower "
            "min_balance, or set wait_for_top_up=True to wait for the top-up instead of failing."
        )

    def _balance(self) -> Balance:
        """One balance call; permanent API errors fail the task at once, with the guidance."""
        from airflow_provider_kwtsms.errors import KwtSMSError
        from airflow_provider_kwtsms.hooks.kwtsms import explain_error

        try:
            return self.hook.get_client().balance()
        except KwtSMSError as error:
            if error.permanent:
                raise AirflowFailException(explain_error(error)) from None
            raise
        except AirflowException:
            raise
        except ValueError as error:  # unusable connection (no login, bad extra): waiting cannot fix it
            raise AirflowFailException(explain_error(error)) from None

    def execute(self, context: Context) -> Any:
        minimum = parse_min_balance(self.min_balance)
        self.min_balance = minimum
        if self.wait_for_top_up and not self.deferrable:
            return super().execute(context)  # poke / reschedule loop around poke()
        balance = self._balance()
        self.log.info(
            "kwtSMS balance: %g of %s credits (minimum %g)",
            balance.available,
            "?" if balance.purchased is None else f"{balance.purchased:g}",
            minimum,
        )
        if balance.available >= minimum:
            return self._xcom(balance.available, balance.purchased, minimum)
        if not self.wait_for_top_up:
            raise AirflowFailException(self._low_message(balance, minimum))
        from airflow_provider_kwtsms.triggers.balance import BalanceTrigger  # only when deferring

        self.log.info("%s Deferring until it is topped up.", self._low_message(balance, minimum))
        self.defer(
            trigger=BalanceTrigger(
                kwtsms_conn_id=self.kwtsms_conn_id, min_balance=minimum, poke_interval=self.poke_interval
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def poke(self, context: Context) -> PokeReturnValue:
        from airflow_provider_kwtsms.errors import KwtSMSError
        from airflow_provider_kwtsms.hooks.kwtsms import explain_error

        minimum = parse_min_balance(self.min_balance)
        try:
            balance = self._balance()
        except (KwtSMSError, OSError) as error:  # transient: the next poke may succeed
            self.log.warning("kwtSMS balance check failed, will check again: %s", explain_error(error))
            return PokeReturnValue(is_done=False)
        if balance.available >= minimum:
            self.log.info("kwtSMS balance %g reached the minimum %g.", balance.available, minimum)
            return PokeReturnValue(True, self._xcom(balance.available, balance.purchased, minimum))
        self.log.info("%s Waiting for a top-up.", self._low_message(balance, minimum))
        return PokeReturnValue(is_done=False)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        if event.get("status") != "ok":
            message = event.get("message") or "the balance trigger failed"
            if event.get("permanent"):
                raise AirflowFailException(message)
            raise AirflowException(message)
        self.log.info("kwtSMS balance %g reached the minimum %g.", event["available"], event["min_balance"])
        return self._xcom(event["available"], event["purchased"], event["min_balance"])
