"""Names the Airflow tests share: paths and the kwtsms connection's environment forms.

A plain module, not conftest.py: tests/deploy has a conftest of its own, and ``from conftest
import ...`` would find whichever was imported first.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[1]
TEST_DAGS = REPO / "tests" / "dags"
AIRFLOW_BIN = Path(sys.executable).parent / "airflow"


def kwtsms_conn_uri(url: str, username: str, password: str, **extras: Any) -> str:
    """``AIRFLOW_CONN_...`` URI form for a kwtsms connection at ``url`` (e.g. a sandbox's).

    Airflow's URI parser keeps a second scheme in the host: ``kwtsms://http://user:pass@host:port``.
    """
    scheme, _, netloc = url.partition("://")
    query = "&".join(f"{quote(str(k))}={quote(str(v))}" for k, v in extras.items())
    return f"kwtsms://{scheme}://{quote(username, safe='')}:{quote(password, safe='')}@{netloc}" + (
        f"?{query}" if query else ""
    )


def smtp_relay_conn_json(port: int, **fields: Any) -> str:
    """``AIRFLOW_CONN_...`` JSON form for the sandbox's SMTP relay on ``port`` (plain SMTP, no TLS)."""
    plain = {"from_email": "airflow@example.com", "disable_ssl": True, "disable_tls": True}
    return json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": port, "extra": plain, **fields})


def kwtsms_conn_json(url: str, username: str, password: str, **extras: Any) -> str:
    """``AIRFLOW_CONN_...`` JSON form for a kwtsms connection at ``url``."""
    return json.dumps(
        {"conn_type": "kwtsms", "host": url, "login": username, "password": password, "extra": extras}
    )


def stop_couriers(marker: str) -> int:
    """SIGTERM every storm-guard courier (a detached process: it outlives the test that started it,
    sleeping until its quiet period ends) whose environment names ``marker`` (a temporary folder of
    this run). Returns how many were stopped. Linux only (/proc); elsewhere none."""
    stopped = 0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if b"airflow_provider_kwtsms.alerts.courier" not in (proc / "cmdline").read_bytes():
                continue
            if marker.encode() not in (proc / "environ").read_bytes():
                continue
            os.kill(int(proc.name), signal.SIGTERM)
            stopped += 1
        except (OSError, ValueError):
            continue  # gone already, or not ours to read
    return stopped
