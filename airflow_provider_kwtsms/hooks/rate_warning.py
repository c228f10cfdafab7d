"""The warning a task gets when its requests are paced on its own machine only, under an executor
that spreads tasks over machines.

Without the connection extra ``rate_store``, the processes of one machine share the gateway's
rate (``machine_rate``) but machines do not: N Celery, Kubernetes or Edge workers sending for one
account can reach N x rate, and the gateway's firewall blocks the IP above 5 requests a second.
The fix is one extra; this says so once per task, at WARNING, in the task's own log.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow_provider_kwtsms.constants import MAX_RATE

log = logging.getLogger(__name__)

# Executors that run every task on the scheduler's machine: its processes share the machine pacer.
LOCAL_EXECUTORS = frozenset({"LocalExecutor", "SequentialExecutor", "DebugExecutor"})

_warned: set[tuple[Any, ...]] = set()


def configured_executors() -> list[str]:
    """``[core] executor`` as a list of entries (``Name``, ``module.Class`` or ``alias:module.Class``)."""
    try:
        from airflow.configuration import conf  # 3.0 to 3.3: the process's configuration
    except ImportError:  # a task-SDK-only worker
        from airflow.sdk.configuration import conf  # type: ignore[no-redef,unused-ignore]

    raw = conf.get("core", "executor", fallback="") or ""
    return [entry.strip() for entry in str(raw).split(",") if entry.strip()]


def _class_name(entry: str) -> str:
    return entry.rsplit(":", 1)[-1].rsplit(".", 1)[-1]


def task_executor(task_choice: str | None, entries: list[str]) -> str | None:
    """The executor class a task runs under: the task's own ``executor`` (a name or an alias of a
    configured one) if it chose one, else the first configured (Airflow's default)."""
    if task_choice:
        for entry in entries:
            alias = entry.split(":", 1)[0] if ":" in entry else None
            if task_choice in (alias, entry, _class_name(entry)):
                return _class_name(entry)
        return _class_name(task_choice)
    return _class_name(entries[0]) if entries else None


def is_remote(executor: str | None) -> bool:
    """Celery, Kubernetes, Edge, ECS, ...: anything but the executors that stay on one machine."""
    return bool(executor) and executor not in LOCAL_EXECUTORS


def _current_task() -> tuple[tuple[Any, ...], str | None] | None:
    """The running task's identity and chosen executor, or None outside a task (DAG processor,
    triggerer, API server)."""
    try:
        from airflow.sdk import get_current_context

        context = get_current_context()
    except Exception:  # no task is running in this process
        return None
    ti = context.get("ti")
    task = context.get("task") or getattr(ti, "task", None)
    ident = tuple(
        getattr(ti, name, None) for name in ("dag_id", "task_id", "run_id", "map_index", "try_number")
    )
    return ident, getattr(task, "executor", None)


def warn_if_paced_alone(conn_id: str) -> bool:
    """Log the risk and the fix once per task when the task runs under a remote executor and the
    connection has no ``rate_store``; True when it logged."""
    running = _current_task()
    if running is None:
        return False
    ident, choice = running
    key = (*ident, conn_id)
    if key in _warned:
        return False
    try:
        executor = task_executor(choice, configured_executors())
    except Exception:  # an unreadable configuration is no reason to stop a send
        return False
    if not is_remote(executor):
        return False
    _warned.add(key)
    log.warning(
        "kwtSMS connection %r has no rate_store and this task runs under %s: each machine paces its "
        "requests alone, so N machines sending for this account can reach N x the rate, and the "
        "gateway's firewall blocks the IP above %g requests a second until kwtSMS support lifts it. "
        "Fix: set the connection extra rate_store to the Celery broker's Redis (redis://host:6379/0) "
        "or a Postgres URL (postgresql://user@host/db) that every worker reaches (docs/deploying.md).",
        conn_id,
        executor,
        MAX_RATE,
    )
    return True
