"""Shared fixtures: a real Airflow (temporary AIRFLOW_HOME, SQLite) driven through its CLI.

Airflow runs in subprocesses so each command sees a clean interpreter, the provider's entry
point and only the environment the test gives it. ``airflow db migrate`` runs once per session.

    def test_something(airflow):
        result = airflow.run("providers", "list")
        result.check()                                   # raises with stdout/stderr if rc != 0
        assert "airflow-provider-kwtsms" in result.stdout

    airflow.run("connections", "test", "kwtsms_default",
                env={"AIRFLOW_CONN_KWTSMS_DEFAULT": "kwtsms://user:pass@..."})
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TEST_DAGS = REPO / "tests" / "dags"
AIRFLOW_BIN = Path(sys.executable).parent / "airflow"

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

    def run(self, *args: str, env: dict[str, str] | None = None, dags_folder: str | Path | None = None,
            timeout: float = 300, cwd: str | Path | None = None) -> AirflowRun:
        """Run ``airflow <args>`` with this home's environment plus ``env`` (which wins)."""
        full_env = dict(self.env)
        if dags_folder is not None:
            full_env["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags_folder)
        full_env.update(env or {})
        started = time.monotonic()
        proc = subprocess.run(
            [str(AIRFLOW_BIN), *args], env=full_env, cwd=str(cwd or self.path),
            capture_output=True, text=True, timeout=timeout, check=False,
        )
        return AirflowRun(tuple(args), proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


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
    """A real Airflow with a fresh SQLite database, migrated once for the whole session."""
    home = tmp_path_factory.mktemp("airflow_home")
    af = AirflowHome(path=home, env=_base_env(home))
    result = af.run("db", "migrate", timeout=600).check()
    af.timings["db migrate"] = result.seconds
    return af
