"""Where SendSMSOperator keeps its send ledger in Airflow: one store per task instance.

On Airflow 3.3 and later the task state store (``context["task_state_store"]``) is made for
this: scoped to DAG, run, task and map index, kept across tries and across workers, written
through the API server to the metadata database before ``set`` returns. Where it is missing
(Airflow 3.0 to 3.2), Airflow Variables keyed by the same four parts do the job; the operator
deletes them after success.
"""

from __future__ import annotations

import hashlib
from typing import Any

from airflow_provider_kwtsms.ledger.store import KeyValueStore

VARIABLE_PREFIX = "kwtsms_ledger"
_MAX_VARIABLE_KEY = 250  # the variable table's key column


class TaskStateStoreKV:
    """The ledger's ``KeyValueStore`` on top of Airflow's task state store accessor."""

    kind = "task state store"

    def __init__(self, accessor: Any) -> None:
        self.accessor = accessor

    def get(self, key: str) -> str | None:
        value = self.accessor.get(key)
        return value if isinstance(value, str) else None

    def set(self, key: str, value: str) -> None:
        # Default retention ([state_store] default_retention_days, 30 days) outlasts any retry policy.
        self.accessor.set(key, value)

    def delete(self, key: str) -> None:
        self.accessor.delete(key)

    def describe(self) -> str:
        return "the task's Task State Store (keys 'kwtsms_ledger*')"


class VariableKV:
    """The ledger's ``KeyValueStore`` on Airflow Variables, one per key, named after the task instance."""

    kind = "Variable"

    def __init__(self, dag_id: str, run_id: str, task_id: str, map_index: int) -> None:
        prefix = f"{VARIABLE_PREFIX}:{dag_id}:{run_id}:{task_id}:{map_index}"
        if len(prefix) > _MAX_VARIABLE_KEY - 40:
            prefix = f"{VARIABLE_PREFIX}:{hashlib.sha256(prefix.encode()).hexdigest()[:32]}"
        self.prefix = prefix

    def _name(self, key: str) -> str:
        return f"{self.prefix}:{key}"

    def get(self, key: str) -> str | None:
        from airflow.sdk import Variable

        value = Variable.get(self._name(key), default=None)
        return value if isinstance(value, str) else None

    def set(self, key: str, value: str) -> None:
        from airflow.sdk import Variable

        Variable.set(
            self._name(key),
            value,
            description="kwtSMS send ledger (resume across retries); deleted when the send succeeds",
        )

    def delete(self, key: str) -> None:
        from airflow.sdk import Variable

        Variable.delete(self._name(key))

    def describe(self) -> str:
        return f"the Variables '{self.prefix}:kwtsms_ledger*'"


def ledger_store_for(context: Any) -> TaskStateStoreKV | VariableKV:
    """The best store this Airflow offers for the running task instance."""
    accessor = context.get("task_state_store") if hasattr(context, "get") else None
    if accessor is not None:
        return TaskStateStoreKV(accessor)
    ti = context["ti"]
    map_index = getattr(ti, "map_index", -1)
    return VariableKV(ti.dag_id, ti.run_id, ti.task_id, -1 if map_index is None else int(map_index))


__all__ = ["KeyValueStore", "TaskStateStoreKV", "VariableKV", "ledger_store_for"]
