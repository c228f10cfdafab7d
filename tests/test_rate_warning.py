"""The warning a task gets when it runs under a remote executor and its connection has no rate_store.

Each machine paces its requests alone (machine_rate), so N workers can reach N x the rate and the
gateway's firewall blocks the IP above 5 a second: the task's log says so once, with the fix. The
executor is read from Airflow's real configuration (``AIRFLOW__CORE__EXECUTOR``) and the task from
the SDK's current context, set here as the task runner sets it.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
from airflow_support import kwtsms_conn_json

from airflow_provider_kwtsms.hooks import rate_warning
from airflow_provider_kwtsms.hooks.kwtsms import KwtSMSHook

pytestmark = pytest.mark.compat

try:
    from airflow.sdk.execution_time.context import set_current_context
except ImportError:  # pragma: no cover - an SDK that keeps it elsewhere
    set_current_context = None

needs_context = pytest.mark.skipif(set_current_context is None, reason="no set_current_context in this SDK")


@pytest.fixture
def connection(kwtsms_sandbox_factory, monkeypatch, tmp_path):
    sb = kwtsms_sandbox_factory(rate=None)
    monkeypatch.setenv("KWTSMS_RATE_DIR", str(tmp_path))

    def use(**extra):
        monkeypatch.setenv(
            "AIRFLOW_CONN_KWTSMS_DEFAULT", kwtsms_conn_json(sb.url, "sandbox_user", "sandbox_pass", **extra)
        )

    use()
    rate_warning._warned.clear()
    return use


@pytest.fixture
def warnings(caplog):
    """A callable: the rate warnings logged so far."""
    caplog.set_level(logging.WARNING, logger=rate_warning.log.name)
    return lambda: [r.getMessage() for r in caplog.records if r.name == rate_warning.log.name]


def task(task_id: str = "send", executor: str | None = None, try_number: int = 1) -> dict:
    ti = SimpleNamespace(
        dag_id="campaign", task_id=task_id, run_id="manual__1", map_index=-1, try_number=try_number
    )
    return {"ti": ti, "task": SimpleNamespace(executor=executor)}


def build_clients(count: int = 1) -> None:
    for _ in range(count):
        hook = KwtSMSHook()
        hook.get_client()
        hook.close()


@needs_context
def test_a_task_under_celery_without_rate_store_is_warned_once(connection, warnings, monkeypatch):
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    with set_current_context(task()):
        build_clients(3)  # the operator's hook, a sensor's, a callback's: one warning for the task
    (line,) = warnings()
    assert "no rate_store" in line and "CeleryExecutor" in line
    assert "N machines" in line and "firewall blocks the IP above 5 requests a second" in line
    assert "rate_store" in line and "Celery broker's Redis" in line and "docs/deploying.md" in line
    assert "sandbox_pass" not in line
    with set_current_context(task(task_id="send_2")):
        build_clients()
    with set_current_context(task(try_number=2)):
        build_clients()
    assert len(warnings()) == 3  # each task (and each try) is told in its own log


@needs_context
@pytest.mark.parametrize(
    ("executor", "task_executor", "warned"),
    [
        ("KubernetesExecutor", None, True),
        ("airflow.providers.edge3.executors.EdgeExecutor", None, True),
        ("LocalExecutor", None, False),
        ("LocalExecutor,CeleryExecutor", None, False),  # the default, the first, is local
        ("LocalExecutor,CeleryExecutor", "CeleryExecutor", True),  # the task chose Celery
        ("LocalExecutor,far:airflow.providers.celery.executors.celery_executor.CeleryExecutor", "far", True),
        ("CeleryExecutor,LocalExecutor", "LocalExecutor", False),
    ],
)
def test_which_executors_are_remote(connection, warnings, monkeypatch, executor, task_executor, warned):
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", executor)
    with set_current_context(task(executor=task_executor)):
        build_clients()
    assert len(warnings()) == int(warned)


@needs_context
def test_no_warning_with_a_rate_store(connection, warnings, monkeypatch):
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    # The store's driver is not what is tested (the compatibility lanes install no redis client).
    from airflow_provider_kwtsms.rate import shared as shared_rate

    monkeypatch.setattr(shared_rate, "open_store", lambda url, **options: shared_rate.MemoryRateStore())
    connection(rate_store="redis://127.0.0.1:9/0")  # built, never reached: no request is made
    with set_current_context(task()):
        build_clients()
    assert warnings() == []


def test_no_warning_outside_a_task(connection, warnings, monkeypatch):
    # The DAG processor's alerts, the API server's Test button: not a task under the executor.
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    build_clients()
    assert warnings() == []
