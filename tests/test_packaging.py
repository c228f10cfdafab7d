"""The package as users get it: built, checked as PyPI would, installed into a clean environment.

One test, in steps, because each step needs the one before: ``python -m build`` makes the sdist
and the wheel; ``twine check`` reads their metadata; a new virtual environment (uv, which takes
Airflow from its cache) gets the wheel and Airflow, and there ``airflow providers list`` shows the
provider, ``kwtsms-sandbox`` starts, and one send through the installed client reaches it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import airflow_provider_kwtsms

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
AIRFLOW = "apache-airflow==3.3.2"

SEND = """
import json, sys
from airflow_provider_kwtsms.gateway.client import KwtSMSClient
with KwtSMSClient("sandbox_user", "sandbox_pass", base_url=sys.argv[1]) as client:
    print(json.dumps(client.send("96598765432", "Installed from the wheel").to_dict()))
"""


def run(*args: str | Path, env: dict | None = None, timeout: float = 300) -> str:
    proc = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    assert proc.returncode == 0, f"{args} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.mark.packaging
def test_the_built_wheel_installs_registers_and_sends(tmp_path):
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", dist, REPO, timeout=600)
    version = airflow_provider_kwtsms.__version__
    wheel = dist / f"airflow_provider_kwtsms-{version}-py3-none-any.whl"
    sdist = dist / f"airflow_provider_kwtsms-{version}.tar.gz"
    assert wheel.exists() and sdist.exists(), sorted(p.name for p in dist.iterdir())
    run(BIN / "twine", "check", "--strict", wheel, sdist)
    names = zipfile.ZipFile(wheel).namelist()
    assert "airflow_provider_kwtsms/sandbox/inbox.html" in names  # package data is shipped
    assert not [n for n in names if n.startswith(("tests/", "dags_examples/", "benchmarks/"))]

    env_dir = tmp_path / "env"
    run(BIN / "uv", "venv", "--quiet", "--python", sys.executable, env_dir)
    python = env_dir / "bin" / "python"
    run(BIN / "uv", "pip", "install", "--quiet", "--python", python, wheel, AIRFLOW, timeout=900)

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHON"))}
    env |= {"AIRFLOW_HOME": str(tmp_path / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    listed = run(env_dir / "bin" / "airflow", "providers", "list", "--output", "json", env=env)
    providers = {p["package_name"]: p for p in json.loads(listed[listed.index("[") :])}
    assert providers["airflow-provider-kwtsms"]["version"] == version

    sandbox = subprocess.Popen(
        [env_dir / "bin" / "kwtsms-sandbox", "--port", "0", "--no-smtp"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        first_line = sandbox.stdout.readline()  # "kwtSMS sandbox listening on http://127.0.0.1:PORT ..."
        url = next(word for word in first_line.split() if word.startswith("http://127.0.0.1:"))
        summary = json.loads(run(python, "-c", SEND, url, env=env))
    finally:
        sandbox.terminate()
        sandbox.wait(10)
    assert summary["counts"]["sent"] == 1 and summary["points_charged"] == 1
