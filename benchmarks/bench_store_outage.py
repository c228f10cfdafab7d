"""What a stopped Postgres ``rate_store`` costs a 20-request send.

    .venv/bin/python benchmarks/bench_store_outage.py [--requests 20] [--cap 60] [--module PATH]

A real Postgres on loopback (as tests/deploy/harness.py starts it), the sandbox in this process,
one client at rate 5 whose pacer is the SharedBucket of that store. The client makes one request
with the store healthy (connected), then every process of the server is stopped with SIGSTOP (a
frozen host: the kernel still accepts and acknowledges, no process answers) and the client sends
``requests`` batches of 200 numbers. Printed: the wall time of that send, and of the same send
with the store healthy; the difference is what the outage costs.

``--module`` measures another ``shared_rate.py`` (e.g. the one before issue 21:
``git show e70e7ac:airflow_provider_kwtsms/rate/shared.py > /tmp/old_shared_rate.py``). A send
that has not finished after ``--cap`` seconds is reported as such and left behind (its thread
waits on the stopped server). Takes about 15 s at the defaults.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "deploy"))
sys.path.insert(0, str(REPO))

from harness import Postgres  # noqa: E402

USER, PASSWORD = "bench_user", "bench_pass"


def _module(path: str | None):
    if path is None:
        from airflow_provider_kwtsms.rate import shared as shared_rate

        return shared_rate
    spec = importlib.util.spec_from_file_location("measured_shared_rate", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tree(root: int) -> list[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
    found = [root]
    for pid in found:
        found += [child for child, parent in parents.items() if parent == pid]
    return found


def _signal(server: Postgres, sig: signal.Signals) -> None:
    assert server.proc is not None
    for pid in _tree(server.proc.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _send(
    module, sandbox, url: str, requests: int, cap: float, stop: Postgres | None
) -> tuple[float | None, int]:
    from airflow_provider_kwtsms.gateway.client import KwtSMSClient

    pacer = module.shared_bucket(url, username=USER, base_url=sandbox.url, rate=5)
    client = KwtSMSClient(USER, PASSWORD, base_url=sandbox.url, rate=5, pacer=pacer)
    client.balance()  # the store connected and healthy
    if stop is not None:
        _signal(stop, signal.SIGSTOP)
    before = len(sandbox.requests())
    first = 0 if stop is None else 200 * requests  # other numbers: the gateway's 15 s rule per number
    numbers = [f"96550{first + i:06d}" for i in range(200 * requests)]
    done = threading.Event()
    started = time.monotonic()

    def run() -> None:
        client.send(numbers, "store outage benchmark")
        done.set()

    threading.Thread(target=run, daemon=True).start()
    finished = done.wait(cap)
    wall = time.monotonic() - started if finished else None
    return wall, len(sandbox.requests()) - before


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--cap", type=float, default=60.0)
    parser.add_argument("--module", default=None, help="another shared_rate.py to measure")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="  log: %(message)s")
    module = _module(args.module)

    from airflow_provider_kwtsms.sandbox import Sandbox

    root = Path(tempfile.mkdtemp(prefix="kwtsms-bench-store-"))
    os.environ["KWTSMS_RATE_DIR"] = str(root / "rate")
    server = Postgres(root / "pg", root / "logs").start()
    try:
        url = server.create_database("kwtsms_rate_bench")
        with Sandbox(username=USER, password=PASSWORD, balance=10**9, rate=None, queue_size=10**9) as sandbox:
            healthy, healthy_requests = _send(module, sandbox, url, args.requests, args.cap, None)
            stopped, stopped_requests = _send(module, sandbox, url, args.requests, args.cap, server)
    finally:
        _signal(server, signal.SIGCONT)
        server.stop()
    which = args.module or "this checkout's shared_rate.py"

    def shown(wall: float | None) -> str:
        return f"{wall:.2f} s" if wall is not None else f"not finished after {args.cap:g} s"

    print(f"A {args.requests}-request send at rate 5, rate_store on Postgres ({which}):")
    print(f"  store healthy: {shown(healthy)} ({healthy_requests} requests)")
    print(f"  store stopped: {shown(stopped)} ({stopped_requests} requests)")
    if healthy is not None and stopped is not None:
        print(f"  the stopped store cost: {stopped - healthy:+.2f} s")
    return {"healthy": healthy, "stopped": stopped}


if __name__ == "__main__":
    main()
