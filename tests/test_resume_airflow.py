"""Never twice, never lost: faults injected into real Airflow runs against the sandbox.

For each fault, count per recipient what the sandbox delivered. The table these tests print
(and write to test-artifacts/resume_table.md) is the one in the README.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections import Counter

import pytest
from airflow_support import AIRFLOW_BIN, REPO, TEST_DAGS

pytestmark = [pytest.mark.airflow, pytest.mark.compat]

SCENARIOS = [
    "none",
    "drop_before",
    "drop_after_accept",
    "drop_after_accept_x3",
    "http_500",
    "http_502",
    "http_503",
    "err013_storm",
]
N = 1000
ARTIFACTS = REPO / "test-artifacts"


def conn_json(sandbox, rate: float = 5) -> str:
    return json.dumps(
        {
            "conn_type": "kwtsms",
            "login": "sandbox_user",
            "password": "sandbox_pass",
            "host": sandbox.url,
            "extra": {"rate": str(rate)},
        }
    )


def tally(sandbox, numbers: list[str]) -> dict[str, int]:
    counts = Counter(n for m in sandbox.messages() for n in m["mobile"])
    return {
        "recipients": len(numbers),
        "once": sum(1 for n in numbers if counts[n] == 1),
        "twice": sum(1 for n in numbers if counts[n] >= 2),
        "missing": sum(1 for n in numbers if counts[n] == 0),
    }


def write_table(rows: list[dict], name: str) -> str:
    lines = [
        "| fault | tries | recipients | delivered once | delivered twice | missing | note |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['fault']} | {r['tries']} | {r['recipients']} | {r['once']} | {r['twice']} | "
        f"{r['missing']} | {r.get('note', '')} |"
        for r in rows
    ]
    table = "\n".join(lines)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / name).write_text(table + "\n")
    print("\n" + table)
    return table


@pytest.mark.heavy
@pytest.mark.serial  # how many refusals one try meets depends on timing: alone, not beside other tests
def test_faults_through_airflow_retries(airflow, kwtsms_sandbox_factory):
    main = kwtsms_sandbox_factory(rate=50, rate_tolerance=5, balance=100_000)
    queue = kwtsms_sandbox_factory(rate=50, rate_tolerance=5, balance=100_000, queue_size=2, drain_rate=1.0)
    env = {
        "AIRFLOW_CONN_KWTSMS_DEFAULT": conn_json(main),
        "AIRFLOW_CONN_KWTSMS_QUEUE": conn_json(queue),
        "KWTSMS_SANDBOX_URL": main.url,
        "KWTSMS_QUEUE_SANDBOX_URL": queue.url,
        "KWTSMS_RESUME_N": str(N),
    }
    run = airflow.run("dags", "test", "resume_faults", "2025-02-01", env=env, timeout=400)
    run.check()
    rows = []
    for index, name in enumerate(SCENARIOS):
        sandbox = queue if name == "err013_storm" else main
        numbers = [f"9656{index:02d}{i:05d}" for i in range(N)]
        tries = len(re.findall(rf"running task <TaskInstance: resume_faults\.send_{name} ", run.output))
        row = {"fault": name, "tries": tries, **tally(sandbox, numbers)}
        rows.append(row)
    write_table(rows, "resume_table_faults.md")
    for row in rows:
        assert (row["twice"], row["missing"]) == (0, 0), row
        assert row["tries"] >= 1
    by_name = {r["fault"]: r for r in rows}
    # 5 refused requests outlast the client's 3 retries: the first Airflow try fails, the retry resumes.
    for name in ("drop_before", "http_500", "http_502", "http_503"):
        assert by_name[name]["tries"] >= 2, by_name[name]
    queue_full = [r for r in queue.requests() if r["code"] == "ERR013"]
    assert queue_full, "the ERR013 scenario saw no full queue"


# -- the worker killed in the middle of a send ---------------------------------------------------
def _start_task(airflow, env: dict[str, str]) -> subprocess.Popen:
    full_env = {**airflow.env, "AIRFLOW__CORE__DAGS_FOLDER": str(TEST_DAGS), **env}
    return subprocess.Popen(
        [str(AIRFLOW_BIN), "tasks", "test", "resume_send", "send", "2025-03-01"],
        env=full_env,
        cwd=str(airflow.path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _kill_mid_request(airflow, sandbox, env: dict[str, str], after_batches: int) -> str:
    """Run the send, and SIGKILL it while batch ``after_batches + 1`` is inside kwtSMS."""
    proc = _start_task(airflow, env)
    deadline = time.monotonic() + 240
    injected = False
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            sends = len(sandbox.messages())
            if not injected and sends >= after_batches:
                # The next request sits 3 s inside the gateway before it is processed and charged.
                sandbox.inject_fault("latency:3", "send", times=1)
                injected = True
            if injected and not sandbox.faults.pending():
                time.sleep(0.5)  # the request has arrived and waits: kill the worker now
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.02)
        else:
            raise AssertionError(f"the task ended before it could be killed:\n{proc.stdout.read()[-4000:]}")
    finally:
        output = proc.communicate(timeout=30)[0]
    # The gateway finishes the orphaned request (3 s on, more on a loaded machine) before the next
    # try reads the balance: it is logged once processed and charged.
    deadline = time.monotonic() + 120
    while not any((r["fault"] or "").startswith("latency") for r in sandbox.requests()):
        assert time.monotonic() < deadline, "the gateway never finished the orphaned request"
        time.sleep(0.1)
    return output


def test_worker_killed_mid_send_and_run_again(airflow, kwtsms_sandbox_factory):
    sandbox = kwtsms_sandbox_factory(rate=50, rate_tolerance=5, balance=100_000)
    airflow.run("dags", "reserialize", dags_folder=TEST_DAGS).check()
    env = {"AIRFLOW_CONN_KWTSMS_DEFAULT": conn_json(sandbox, rate=5), "KWTSMS_RESUME_N": str(N)}
    numbers = [f"9656{i:07d}" for i in range(N)]
    rows = []

    _kill_mid_request(airflow, sandbox, env, after_batches=2)
    # two answered, the third processed after the kill, and the ones in flight beside it (a send
    # keeps up to ceil(rate x 1 s) + 1 requests out): their answers may not be recorded either
    assert len(sandbox.messages()) >= 3
    again = airflow.run("tasks", "test", "resume_send", "send", "2025-03-01", env=env, dags_folder=TEST_DAGS)
    again.check()
    assert "the balance shows it went out" in again.output
    assert "sandbox_pass" not in again.output_to_check_for_secrets
    rows.append(
        {
            "fault": "SIGKILL mid-request, run again",
            "tries": 2,
            **tally(sandbox, numbers),
            "note": "pending batch resolved from the balance",
        }
    )
    assert (rows[-1]["twice"], rows[-1]["missing"]) == (0, 0)
    write_table(rows, "resume_table_kill.md")
