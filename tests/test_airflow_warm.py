"""The tests' warm ``airflow`` command (tests/airflow_warm.py) gives each command what a new
process would: its own environment (nothing left from the command before), its exit status, its
output, and a server per import environment."""

from __future__ import annotations

import json

import pytest
from airflow_support import REPO
from airflow_warm import import_key

pytestmark = pytest.mark.airflow


def test_each_command_sees_its_own_environment_and_nothing_of_the_one_before(airflow):
    conn = json.dumps({"conn_type": "kwtsms", "host": "http://127.0.0.1:9", "login": "warm_user"})
    probe = ("connections", "get", "warm_probe", "-o", "json")
    first = airflow.run(*probe, env={"AIRFLOW_CONN_WARM_PROBE": conn})
    first.check()
    assert "warm_user" in first.stdout
    second = airflow.run(*probe)
    assert second.returncode != 0 and "warm_user" not in second.output  # gone with the first fork
    examples = airflow.run("config", "get-value", "core", "dags_folder", dags_folder=REPO / "dags_examples")
    assert examples.check().stdout.strip() == str(REPO / "dags_examples")


def test_only_what_airflow_reads_when_used_may_differ_within_one_server():
    base = {"AIRFLOW_HOME": "/h", "AIRFLOW__CORE__DAGS_FOLDER": "/d", "PATH": "/bin"}
    per_command = {"AIRFLOW_CONN_X": "x", "AIRFLOW_VAR_Y": "y", "KWTSMS_RATE_DIR": "/r", "TMPDIR": "/t"}
    assert import_key({**base, **per_command}) == import_key(base)
    assert import_key({**base, "AIRFLOW__CORE__DAGS_FOLDER": "/other"}) != import_key(base)
    assert import_key({**base, "PYTHONPATH": "/p"}) != import_key(base)
