"""An auth manager for the usage page's browser test: Airflow's SimpleAuthManager, except that
the user ``nodags`` may read no DAG and ``finance`` only the DAG ``usage_billing`` (Simple's
roles all read every DAG, so a refusal needs a manager that says no, as a real one would)."""

from __future__ import annotations

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

FINANCE_DAGS = {"usage_billing"}


class UsagePageAuthManager(SimpleAuthManager):
    def is_authorized_dag(self, *, method, user, access_entity=None, details=None) -> bool:
        name = user.get_name()
        if name == "nodags":
            return False
        if name == "finance":
            dag_id = getattr(details, "id", None)
            return method == "GET" and (dag_id is None or dag_id in FINANCE_DAGS)
        return super().is_authorized_dag(
            method=method, user=user, access_entity=access_entity, details=details
        )

    def filter_authorized_dag_ids(self, *, dag_ids, user, method="GET", team_name=None) -> set[str]:
        name = user.get_name()
        if name == "nodags":
            return set()
        if name == "finance":
            return set(dag_ids) & FINANCE_DAGS if method == "GET" else set()
        return super().filter_authorized_dag_ids(
            dag_ids=dag_ids, user=user, method=method, team_name=team_name
        )
