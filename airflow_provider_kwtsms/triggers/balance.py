"""BalanceTrigger: waits in the triggerer until the kwtSMS balance reaches a minimum.

Serialized with the connection id only: the triggerer re-reads the connection, so no
credential is ever stored in the trigger table.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_kwtsms.errors import KwtSMSError
from airflow_provider_kwtsms.hooks.kwtsms import KwtSMSHook, explain_error


class BalanceTrigger(BaseTrigger):
    """Fire once the account's available balance is at least ``min_balance`` credits.

    Events: ``{"status": "ok", "available", "purchased", "min_balance"}`` when it is, or
    ``{"status": "error", "message", "permanent"}`` when the check cannot succeed without a
    person's help (wrong credentials, blocked account, IP not allowed, ...). Transient errors
    (network, rate limit) are logged and the next check proceeds as planned.

    :param kwtsms_conn_id: the connection to check, re-read in the triggerer.
    :param min_balance: the minimum available balance, in credits.
    :param poke_interval: seconds between two balance checks.
    """

    def __init__(self, *, kwtsms_conn_id: str, min_balance: float, poke_interval: float = 60.0) -> None:
        super().__init__()
        self.kwtsms_conn_id = kwtsms_conn_id
        self.min_balance = float(min_balance)
        self.poke_interval = float(poke_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "kwtsms_conn_id": self.kwtsms_conn_id,
                "min_balance": self.min_balance,
                "poke_interval": self.poke_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = KwtSMSHook(kwtsms_conn_id=self.kwtsms_conn_id)
        try:
            client = await hook.aget_client()
        except Exception as error:  # the connection is missing or unusable: nobody fixes it by waiting
            yield TriggerEvent({"status": "error", "message": explain_error(error), "permanent": True})
            return
        try:
            while True:
                try:
                    # The client is synchronous (requests): keep the triggerer's event loop free.
                    balance = await asyncio.to_thread(client.balance)
                except KwtSMSError as error:
                    if error.permanent:
                        yield TriggerEvent(
                            {"status": "error", "message": explain_error(error), "permanent": True}
                        )
                        return
                    self.log.warning("kwtSMS balance check failed, will retry: %s", explain_error(error))
                else:
                    if balance.available >= self.min_balance:
                        yield TriggerEvent(
                            {
                                "status": "ok",
                                "available": balance.available,
                                "purchased": balance.purchased,
                                "min_balance": self.min_balance,
                            }
                        )
                        return
                    self.log.info(
                        "kwtSMS balance %g is below the minimum %g; next check in %gs",
                        balance.available,
                        self.min_balance,
                        self.poke_interval,
                    )
                await asyncio.sleep(self.poke_interval)
        finally:
            await asyncio.to_thread(hook.close)
