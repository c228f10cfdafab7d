"""Every difference between the Airflow 3 releases we support, in one place (3.0 to 3.3).

As the official providers do (``airflow/providers/*/version_compat.py``): the adapters import
Airflow's base classes and exceptions from here, and test a flag rather than catch an
ImportError. Only cheap modules are imported here (DAG files import it on every parse).
Airflow 2 has reached its end of life: it is not supported (docs/airflow-versions.md).

What moved or arrived, by release:

- 3.1: ``BaseHook`` in ``airflow.sdk`` (before: ``airflow.hooks.base``); ``BaseHook.aget_connection``
  for the triggerer; plugins' ``external_views`` (a page in the UI's navigation);
  ``BaseNotifier(context=...)``, ``async_notify`` and ``await notifier`` (deadline
  alerts run notifiers in the triggerer); a notifier's error reaches the caller (3.0 logs it only).
- 3.2: ``AirflowFailException`` in ``airflow.sdk.exceptions`` (before: ``airflow.exceptions``, which
  3.2+ still re-exports with a deprecation warning); the connection form from ``conn-fields``.
- 3.3: the task state store (``context["task_state_store"]``) that keeps the send ledger.
"""

from __future__ import annotations

import asyncio
from typing import Any

from airflow import __version__ as AIRFLOW_VERSION
from packaging.version import Version  # an Airflow dependency; as the official providers do

_version = Version(AIRFLOW_VERSION)
AIRFLOW_VERSION_TUPLE = (_version.major, _version.minor, _version.micro)  # 3.2.0rc1 -> (3, 2, 0)
AIRFLOW_V_3_1_PLUS: bool = AIRFLOW_VERSION_TUPLE >= (3, 1, 0)
AIRFLOW_V_3_2_PLUS: bool = AIRFLOW_VERSION_TUPLE >= (3, 2, 0)
AIRFLOW_V_3_3_PLUS: bool = AIRFLOW_VERSION_TUPLE >= (3, 3, 0)

# Features, named for what they give us (the tests skip with these names where one is absent).
HAS_ASYNC_CONNECTION = AIRFLOW_V_3_1_PLUS  # BaseHook.aget_connection
HAS_ASYNC_NOTIFIER = AIRFLOW_V_3_1_PLUS  # BaseNotifier.async_notify / await notifier: deadline alerts
HAS_UI_EXTERNAL_VIEWS = AIRFLOW_V_3_1_PLUS  # a plugin's page in the UI's navigation (3.0: URL only)
HAS_CONN_FIELDS = AIRFLOW_V_3_2_PLUS  # the connection form from get_provider_info()["conn-fields"]
HAS_TASK_STATE_STORE = AIRFLOW_V_3_3_PLUS  # context["task_state_store"]
NOTIFIER_ERRORS_PROPAGATE = AIRFLOW_V_3_1_PLUS  # 3.0's BaseNotifier.__call__ logs a failed send only

if AIRFLOW_V_3_1_PLUS:
    from airflow.sdk import BaseHook
else:
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef,attr-defined,unused-ignore]

if AIRFLOW_V_3_2_PLUS:
    from airflow.sdk.exceptions import AirflowException, AirflowFailException, TaskDeferred
else:
    from airflow.exceptions import (  # type: ignore[no-redef,attr-defined,unused-ignore]
        AirflowException,
        AirflowFailException,
        TaskDeferred,
    )


async def aget_connection(hook: BaseHook, conn_id: str) -> Any:
    """The connection, read without blocking the triggerer's event loop, on every release."""
    if HAS_ASYNC_CONNECTION:
        return await hook.aget_connection(conn_id)
    # 3.0 has no async read: the blocking one, in a thread (what the 3.0 providers do with sync_to_async).
    return await asyncio.to_thread(hook.get_connection, conn_id)


__all__ = [
    "AIRFLOW_VERSION",
    "AIRFLOW_VERSION_TUPLE",
    "AIRFLOW_V_3_1_PLUS",
    "AIRFLOW_V_3_2_PLUS",
    "AIRFLOW_V_3_3_PLUS",
    "HAS_ASYNC_CONNECTION",
    "HAS_ASYNC_NOTIFIER",
    "HAS_CONN_FIELDS",
    "HAS_TASK_STATE_STORE",
    "HAS_UI_EXTERNAL_VIEWS",
    "NOTIFIER_ERRORS_PROPAGATE",
    "AirflowException",
    "AirflowFailException",
    "BaseHook",
    "TaskDeferred",
    "aget_connection",
]


def mask_secret(secret: str) -> None:
    """Register ``secret`` with Airflow's secrets masker, so task logs show it as ``***``: the
    SDK's (3.1+; it also tells the task's supervisor), else 3.0's. Imported when called: the
    masker is not needed on the DAG-parse path."""
    try:
        from airflow.sdk.log import mask_secret as mask
    except ImportError:  # 3.0
        try:
            from airflow.sdk.execution_time.secrets_masker import (  # type: ignore[no-redef,unused-ignore]
                mask_secret as mask,
            )
        except ImportError:  # no masker in this installation: nothing to register with
            return
    mask(secret)
