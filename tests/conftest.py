"""Shared fixtures: a real Airflow (temporary AIRFLOW_HOME, SQLite) driven through its CLI.

Each command runs in a process of its own with only the environment the test gives it: a fork
of a warm interpreter that imported Airflow once for the same import environment
(tests/airflow_warm.py; ``KWTSMS_TESTS_COLD_AIRFLOW=1``: a new ``airflow`` process each time).
``airflow db migrate`` runs once per session.

    def test_something(airflow):
        result = airflow.run("providers", "list")
        result.check()                                   # raises with stdout/stderr if rc != 0
        assert "airflow-provider-kwtsms" in result.stdout

    airflow.run("connections", "test", "kwtsms_default",
                env={"AIRFLOW_CONN_KWTSMS_DEFAULT": "kwtsms://user:pass@..."})
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from airflow_support import AIRFLOW_BIN, REPO, TEST_DAGS, kwtsms_conn_json, kwtsms_conn_uri, stop_couriers  # noqa: F401
from airflow_warm import COLD_ENV, close_warm_servers, warm_server

# The machine's temporary folder, before any test gives itself one (_own_temporary_folder).
_SYSTEM_TMP = os.path.realpath(tempfile.gettempdir())

# DAG files for `airflow dags test` live in tests/dags/ and are not test modules.
collect_ignore = ["dags"]

# Importable in this process even when the package is not pip-installed.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


@dataclass
class AirflowRun:
    """The outcome of one ``airflow ...`` command."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        """stdout and stderr together, for "appears anywhere" / "appears nowhere" checks."""
        return self.stdout + "\n" + self.stderr

    @property
    def flat_output(self) -> str:
        """:attr:`output` with runs of whitespace as one space: Airflow 3.0 to 3.2 print a task's
        exception through rich, wrapped at 80 columns."""
        return " ".join(self.output.split())

    @property
    def output_to_check_for_secrets(self) -> str:
        """:attr:`output`, less Airflow 3.0's own debug lines that echo every secret it is asked to
        mask (``Sending request msg=MaskSecret(value=...)``, printed by ``airflow dags test`` and
        ``tasks test``; gone in 3.1; docs/airflow-versions.md). Everything else is checked."""
        from airflow_provider_kwtsms.version_compat import AIRFLOW_V_3_1_PLUS

        if AIRFLOW_V_3_1_PLUS:
            return self.output
        return "\n".join(line for line in self.output.splitlines() if "MaskSecret(value=" not in line)

    def check(self) -> AirflowRun:
        if self.returncode != 0:
            raise AssertionError(
                f"airflow {' '.join(self.args)} exited {self.returncode} after {self.seconds:.1f}s\n"
                f"--- stdout ---\n{self.stdout[-6000:]}\n--- stderr ---\n{self.stderr[-6000:]}"
            )
        return self


@dataclass
class AirflowHome:
    """A migrated AIRFLOW_HOME plus the environment that points Airflow at it."""

    path: Path
    env: dict[str, str]
    timings: dict[str, float] = field(default_factory=dict)

    def run(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        dags_folder: str | Path | None = None,
        timeout: float = 600,  # a hang's net; the compatibility lane runs at a low priority
        cwd: str | Path | None = None,
        warm: bool = True,
    ) -> AirflowRun:
        """Run ``airflow <args>`` with this home's environment plus ``env`` (which wins).

        The command runs in a fork of a warm interpreter that imported Airflow once for the same
        import environment (tests/airflow_warm.py), unless ``warm`` is False or KWTSMS_TESTS_COLD_AIRFLOW
        is set: then in a new ``airflow`` process, as before."""
        full_env = dict(self.env)
        # The test's own temporary folder (the autouse fixture below): what the provider keeps per
        # machine there (the pace file, the storm guard's records) never leaks from one test to the
        # next. A module-scoped fixture runs before that folder exists: its run gets one of its own,
        # never the machine's (there a storm guard once counted, rather than sent, an alert that an
        # earlier run on the machine had sent within the quiet period).
        folder = tempfile.gettempdir()
        if os.path.realpath(folder) == _SYSTEM_TMP:
            folder = tempfile.mkdtemp(prefix="tmp-", dir=self.path)
        full_env["TMPDIR"] = folder
        if dags_folder is not None:
            full_env["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags_folder)
        full_env.update(env or {})
        started = time.monotonic()
        if warm and not os.environ.get(COLD_ENV):
            server = warm_server(full_env, self.path)
            returncode, stdout, stderr = server.run(list(args), full_env, str(cwd or self.path), timeout)
        else:
            proc = subprocess.run(
                [str(AIRFLOW_BIN), *args],
                env=full_env,
                cwd=str(cwd or self.path),
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
            returncode, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
        return AirflowRun(tuple(args), returncode, stdout, stderr, time.monotonic() - started)

    def query(self, sql: str, *params: Any) -> list[tuple]:
        """Read the metadata database directly (cheaper than one more ``airflow`` command)."""
        with sqlite3.connect(self.path / "airflow.db") as db:
            return db.execute(sql, params).fetchall()

    def task_states(self, dag_id: str) -> dict[str, tuple[str, int]]:
        """``task_id -> (state, try_number)`` in the DAG's latest run."""
        rows = self.query(
            "SELECT task_id, state, try_number FROM task_instance WHERE dag_id = ? AND run_id = "
            "(SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1)",
            dag_id,
            dag_id,
        )
        return {task_id: (state, try_number) for task_id, state, try_number in rows}

    def xcom(self, dag_id: str, task_id: str, key: str = "return_value") -> Any:
        """The XCom value a task pushed in the DAG's latest run (None when absent)."""
        rows = self.query(
            "SELECT value FROM xcom WHERE dag_id = ? AND task_id = ? AND key = ? ORDER BY timestamp DESC",
            dag_id,
            task_id,
            key,
        )
        return json.loads(rows[0][0]) if rows and rows[0][0] is not None else None


def _base_env(home: Path) -> dict[str, str]:
    # Nothing from the caller's Airflow set-up may leak in (connections, config, home).
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(TEST_DAGS),
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            # The machine is shared and slow: parsing must not time out under load.
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
            "AIRFLOW__CORE__DAG_FILE_PROCESSOR_TIMEOUT": "180",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            # Only loopback exists here; never send test traffic through a proxy.
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@pytest.fixture(scope="session")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> AirflowHome:
    """A real Airflow with a fresh SQLite database, migrated once for the whole run.

    Under pytest-xdist every worker has its own home (SQLite takes one writer at a time), but the
    database is migrated once: the first worker migrates a template under the run's shared
    temporary folder, the others copy it."""
    home = tmp_path_factory.mktemp("airflow_home")
    af = AirflowHome(path=home, env=_base_env(home))
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        af.timings["db migrate"] = af.run("db", "migrate", timeout=600, warm=False).check().seconds
        return af
    import fcntl
    import shutil

    shared = tmp_path_factory.getbasetemp().parent / "airflow_template"
    shared.mkdir(exist_ok=True)
    template = shared / "airflow.db"
    with (shared / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the others wait while the first one migrates
        if not template.exists():
            first = AirflowHome(path=shared, env=_base_env(shared))
            af.timings["db migrate"] = first.run("db", "migrate", timeout=600, warm=False).check().seconds
        shutil.copyfile(template, home / "airflow.db")
    return af


@pytest.fixture(autouse=True)
def _own_temporary_folder(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test its own system temporary folder: what the provider shares between the processes
    of a machine there (the coverage list, coverage_cache) never leaks from one test to the next."""
    folder = str(tmp_path_factory.mktemp("systmp"))
    monkeypatch.setattr(tempfile, "tempdir", folder)
    monkeypatch.setenv("TMPDIR", folder)


@pytest.fixture
def full_backlog_port() -> Iterator[int]:
    """Listens, never accepts, its backlog filled: a new connect gets no SYN-ACK."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    probe = socket.socket()
    probe.settimeout(0.2)
    try:
        probe.connect(("127.0.0.1", port))
    except OSError:
        pass  # blocked: the backlog is full
    else:
        probe.close()
        for filler in fillers:
            filler.close()
        server.close()
        pytest.skip("this kernel completes connects past a full backlog")
    probe.close()
    yield port
    for filler in fillers:
        filler.close()
    server.close()


# The order of the tests under pytest-xdist (`make test`, --dist worksteal). Worksteal hands each
# worker one contiguous share of the list at the start and later moves tests only from the tail of
# a share. So the slow tests (real Airflow runs, the browser, the wheel) are dealt out, longest
# first, to the head of every share: each worker starts on its own long runs and the quick tests
# fill around them, rather than one worker holding the long runs while the others finish early.
# Outside xdist the slow tests simply come first. Only the order changes, never what runs.
_SLOW_MARKERS = ("airflow", "browser", "packaging")
# The longest runs, longest first (wall time seen in `make test`); a test not named keeps its place
# after them. A stale name only costs time.
_LONGEST_FIRST = (
    "test_resume_airflow.py::test_worker_killed_mid_send_and_run_again",
    "test_send_window_airflow.py::",
    "test_browser_usage.py::",
    "test_examples.py::test_password_masked_in_task_log_and_errors",
    "test_demo.py::",
    "test_config_errors.py::test_the_operator_page_in_a_real_run",
    "test_examples.py::test_failure_alerts",
    "test_browser_connection.py::",
    "test_examples.py::test_estimate_gate_send",
    "test_notifier.py::test_failure_and_success_callbacks_in_a_real_dag_run",
    "test_packaging.py::",
    "test_examples.py::test_campaign_mapped",
    "test_sensor.py::test_balance_gates_in_a_real_dag_run",
    "test_smtp_airflow.py::",
    "test_examples.py::test_quickstart",
    "test_examples.py::test_personal_rows",
)


def _rank(item: pytest.Item) -> int:
    name = item.nodeid.removeprefix("tests/")
    ranks = (i for i, prefix in enumerate(_LONGEST_FIRST) if name.startswith(prefix))
    return next(ranks, len(_LONGEST_FIRST))


def _unit(item: pytest.Item) -> str:
    # A browser module's tests share its module-scoped servers: they go to one worker together.
    return item.nodeid.split("::")[0] if item.get_closest_marker("browser") else item.nodeid


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    slow, fast = [], []
    for item in items:
        (slow if any(item.get_closest_marker(m) for m in _SLOW_MARKERS) else fast).append(item)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers <= 1:
        items[:] = slow + fast
        return
    units: dict[str, list[pytest.Item]] = {}
    for item in sorted(slow, key=_rank):  # stable: the file order within a rank
        units.setdefault(_unit(item), []).append(item)
    heads: list[list[pytest.Item]] = [[] for _ in range(workers)]
    for index, unit in enumerate(units.values()):
        heads[index % workers].extend(unit)
    # Worksteal's first split: worker k gets len(pending) // (workers - k) of what is left.
    ordered: list[pytest.Item] = []
    left = len(items)
    for k, head in enumerate(heads):
        share = left // (workers - k)
        take = max(share - len(head), 0)
        ordered += head + fast[:take]
        fast = fast[take:]
        left -= len(head) + take
    items[:] = ordered + fast


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """A Postgres and a Redis on loopback for one test module (tests/store_servers.py)."""
    from store_servers import started_servers

    with started_servers(tmp_path_factory.mktemp("stores")) as started:
        yield started


@pytest.fixture(scope="session", autouse=True)
def _no_courier_outlives_the_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The alerts of real Airflow runs start couriers that would sleep on for the default quiet
    period (10 minutes) after the run: stopped when the session ends (their tests are done)."""
    yield
    close_warm_servers()
    stop_couriers(str(tmp_path_factory.getbasetemp()))
