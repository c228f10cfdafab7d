"""A Postgres and a Redis of this machine on loopback, for the tests of the shared stores (the
rate limiter's and the storm guard's): the deploy prerequisites (``.ci/install-deploy.sh``),
started as tests/deploy/harness.py starts them; a test is skipped where they are not installed.

    from store_servers import store_url

    def test_something(servers):  # the fixture (tests/conftest.py): one pair per test module
        url = store_url(servers, "postgres")
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "deploy"))
from harness import Postgres, Redis, SetupError


@contextlib.contextmanager
def started_servers(root: Path) -> Iterator[dict[str, object]]:
    """``{"postgres": server or why not, "redis": ...}``, stopped (and thawed) at the end."""
    started: dict[str, object] = {}
    try:
        try:
            import psycopg  # noqa: F401

            started["postgres"] = Postgres(root / "pg", root / "logs").start()
        except (SetupError, ImportError) as exc:
            started["postgres"] = exc
        try:
            import redis  # noqa: F401

            started["redis"] = Redis(root / "redis", root / "logs").start()
        except (SetupError, ImportError) as exc:
            started["redis"] = exc
        yield started
    finally:
        for server in started.values():
            if not isinstance(server, BaseException):
                signal_server(server, signal.SIGCONT)
                server.stop()  # type: ignore[attr-defined]


def server_or_skip(servers: dict[str, object], kind: str):
    server = servers[kind]
    if isinstance(server, BaseException):
        pytest.skip(f"{kind}: {server}")
    return server


def store_url(servers: dict[str, object], kind: str) -> str:
    server = server_or_skip(servers, kind)
    return server.dsn("postgres") if kind == "postgres" else server.url.replace("/0", "/3")


def process_tree(root: int) -> list[int]:
    """``root`` and every process under it (Postgres's backends run in sessions of their own, so
    a signal to the server's process group does not reach them)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found = [root]
    for pid in found:  # grows while it is walked: breadth first
        found += [child for child, parent in parents.items() if parent == pid]
    return found


def signal_server(server, sig: signal.Signals) -> None:
    for pid in process_tree(server.proc.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
