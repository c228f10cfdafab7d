"""DAGs of the deployment scenarios (tests/deploy): alerts, a deferred balance wait, big sends.

Copied with the example DAGs into the deployment's DAG folder; runs are triggered through the
REST API with a ``conf`` that sizes them. Recipients are generated: 9655 followed by 7 digits.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from airflow_provider_kwtsms.notifications.kwtsms import KwtSMSNotifier
from airflow_provider_kwtsms.operators.sms import SendSMSOperator
from airflow_provider_kwtsms.sensors.balance import BalanceSensor

# The gateway refuses a second SMS to one number within 15 s (ERR028), and the client waits that
# out only once: each kind of alert of scenario (c) goes to its own number, so all may arrive.
ALERT_TO = {
    kind: f"9659999000{i}" for i, kind in enumerate(("retry", "success", "task", "dag", "deadline"), 1)
}
START = datetime(2025, 1, 1)


def numbers(first: int, count: int) -> list[str]:
    return [f"9655{i:07d}" for i in range(first, first + count)]


# (b) a deferrable balance wait, released by a top-up; and the same without waiting: it fails.
with DAG(dag_id="deploy_balance_wait", schedule=None, start_date=START, catchup=False):
    BalanceSensor(
        task_id="wait_for_credits",
        min_balance="{{ dag_run.conf.get('min_balance', 5000) }}",
        wait_for_top_up=True,
        deferrable=True,
        poke_interval=2,
        timeout=600,
    )

with DAG(dag_id="deploy_balance_low", schedule=None, start_date=START, catchup=False):
    BalanceSensor(task_id="check_credits", min_balance="{{ dag_run.conf.get('min_balance', 5000) }}")


# (c) every kind of alert: on_retry, on_success, task on_failure, DAG on_failure, a missed deadline.
def _deadline_alert():  # Airflow 3.1+: the deadline's callback runs in the triggerer
    try:
        from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference
    except ImportError:  # Airflow 3.0: no deadlines
        return None
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(seconds=4),
        callback=AsyncCallback(
            KwtSMSNotifier,
            kwargs={"target": ALERT_TO["deadline"], "message": "deadline missed: deploy_alerts"},
        ),
    )


with DAG(
    dag_id="deploy_alerts",
    schedule=None,
    start_date=START,
    catchup=False,
    on_failure_callback=KwtSMSNotifier(
        target=ALERT_TO["dag"], message="dag failed {{ dag.dag_id }} {{ run_id }}"
    ),
    deadline=_deadline_alert(),
):

    @task(
        retries=1,
        retry_delay=timedelta(seconds=1),
        on_retry_callback=KwtSMSNotifier(
            target=ALERT_TO["retry"], message="retry {{ ti.task_id }} {{ run_id }}"
        ),
        on_success_callback=KwtSMSNotifier(
            target=ALERT_TO["success"], message="success {{ ti.task_id }} {{ run_id }}"
        ),
    )
    def flaky(ti=None) -> None:
        time.sleep(6)  # past the deadline of 4 s
        if ti.try_number < 2:
            raise RuntimeError("first try fails on purpose")

    @task(
        retries=0,
        on_failure_callback=KwtSMSNotifier(
            target=ALERT_TO["task"], message="task failed {{ ti.task_id }} {{ run_id }}"
        ),
    )
    def broken() -> None:
        raise RuntimeError("warehouse connection refused")

    flaky() >> broken()


# (d) a 2,000-recipient send whose worker dies mid-send, retried (on the other worker with Celery).
with DAG(dag_id="deploy_bulk_send", schedule=None, start_date=START, catchup=False):
    SendSMSOperator(
        task_id="send",
        kwtsms_conn_id="kwtsms_slow",
        mobile=numbers(0, 2000),
        message="Bulk notice {{ run_id }}",
        retries=3,
        retry_delay=timedelta(seconds=1),
    )


# (d) the same campaign as per-recipient rows: 2,000 customers, 10 texts of 200 (one request each,
# so as many requests as the one-text send above), each row its own text; a worker dies mid-send.
def rows_text(i: int) -> str:
    return f"Order notice {i // 200} {{{{ run_id }}}}"  # rendered by Airflow: messages is templated


with DAG(dag_id="deploy_rows_send", schedule=None, start_date=START, catchup=False):
    SendSMSOperator(
        task_id="send",
        kwtsms_conn_id="kwtsms_slow",
        messages=[{"mobile": n, "message": rows_text(i)} for i, n in enumerate(numbers(0, 2000))],
        retries=3,
        retry_delay=timedelta(seconds=1),
    )


# (e) one account, many workers: a campaign mapped into chunks, either through a one-slot pool
# (the connection paces each task on its own) or all at once on the shared limiter.
def _campaign(dag_id: str, conn_id: str, pool: str | None) -> None:
    with DAG(dag_id=dag_id, schedule=None, start_date=START, catchup=False, max_active_tasks=32):

        @task
        def chunks(dag_run=None) -> list[list[str]]:
            size = int(dag_run.conf.get("size", 20000))
            parts = int(dag_run.conf.get("chunks", 10))
            every = numbers(0, size)
            step = -(-size // parts)
            return [every[i : i + step] for i in range(0, size, step)]

        SendSMSOperator.partial(
            task_id="send_chunk",
            kwtsms_conn_id=conn_id,
            message="Campaign {{ run_id }}",
            retries=2,
            retry_delay=timedelta(seconds=1),
            **({"pool": pool} if pool else {}),
        ).expand(mobile=chunks())


_campaign("deploy_campaign_pool", "kwtsms_capped", "kwtsms_capped")
_campaign("deploy_campaign_shared", "kwtsms_capped_shared", None)
# (g) the same shape on the main account at the documented maximum, no rate_store, no pool: under
# LocalExecutor the ten tasks share the machine-wide pacer and nothing else.
_campaign("deploy_mapped_one_machine", "kwtsms_default", None)


# (f) many runs at once, each sending one failure alert. The exception carries the moment of the
# failure, and the alert carries the exception: the benchmark's failure-to-alert latency.
with DAG(dag_id="deploy_fanout", schedule=None, start_date=START, catchup=False, max_active_runs=300):

    @task(
        retries=0,
        # one number per run (conf alert_to): one number takes one SMS per 15 s (ERR028)
        on_failure_callback=KwtSMSNotifier(
            target="{{ dag_run.conf['alert_to'] }}", message="fanout failed {{ run_id }} {{ exception }}"
        ),
    )
    def fails() -> None:
        raise RuntimeError(f"at {time.time():.3f}")

    fails()


# (f) in CI: the same number of runs failing at once, each alerting from the DAG processor (a
# DAG-level failure callback) with no task process to start: the runs' only task waits in a pool
# of no slots (kwtsms_closed) until dagrun_timeout fails the run. Through the storm guard, with
# the quiet period the run's conf gives (the test's is short). Its own account (kwtsms_storm): the
# test runs it beside the other scenarios, which reset the main sandbox.
with DAG(
    dag_id="deploy_fanout_dag_alert",
    schedule=None,
    start_date=START,
    catchup=False,
    max_active_runs=300,
    dagrun_timeout=timedelta(seconds=1),
    on_failure_callback=KwtSMSNotifier(
        kwtsms_conn_id="kwtsms_storm",
        target="{{ dag_run.conf['alert_to'] }}",
        data={"quiet_period": "{{ dag_run.conf.get('quiet', 600) }}"},
    ),
):

    @task(pool="kwtsms_closed")  # a pool of no slots: it never runs (an EmptyOperator would succeed)
    def never() -> None:
        pass

    never()


# (f) final_try_only: a task that fails once, then succeeds on its retry: no alert at all (the
# storm's account, where the test looks).
with DAG(dag_id="deploy_retry_then_success", schedule=None, start_date=START, catchup=False):

    @task(
        retries=1,
        retry_delay=timedelta(seconds=1),
        on_failure_callback=KwtSMSNotifier(
            kwtsms_conn_id="kwtsms_storm", target="96599990009", data={"final_try_only": True}
        ),
    )
    def fails_once(ti=None) -> None:
        if ti.try_number < 2:
            raise RuntimeError("first try fails on purpose")

    fails_once()
