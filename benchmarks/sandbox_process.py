"""The sandbox in its own process for the benchmarks, as users run it, with no rate cap, no
firewall and room for millions of sends: the load generator then measures the code's CPU speed,
not the sandbox's limits (these benchmarks send far more than 5 requests a second on purpose)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def repo_env() -> dict[str, str]:
    """This environment with the checkout first on PYTHONPATH (the code under measure)."""
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{path}" if path else str(REPO)}


def start_sandbox(*args: str) -> tuple[subprocess.Popen, str]:
    """Start ``python -m airflow_provider_kwtsms.sandbox`` on a free port; return it and its URL.

    ``args`` are more command-line options (``--username``, ...). Stop it with ``kill()``.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_kwtsms.sandbox", "--port", "0", "--no-firewall",
         "--balance", "1000000000", "--queue-size", "1000000000", "--drain-rate", "1000000", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=repo_env(),
    )  # fmt: skip
    line = process.stdout.readline() if process.stdout else ""  # "kwtSMS sandbox listening on URL ..."
    if "listening on" not in line:
        process.kill()
        raise RuntimeError(f"the sandbox did not start: {line!r}")
    return process, line.split("listening on ")[1].split()[0]
