"""How fast the sandbox starts and how many sends per second it sustains (rate cap, firewall off).

    .venv/bin/python benchmarks/bench_sandbox.py [--seconds 5] [--clients 4]

The sandbox runs in its own process (``python -m airflow_provider_kwtsms.sandbox``), as users
run it, so the load-generating threads here do not share its interpreter lock. Each client
thread keeps one HTTP/1.1 connection (``http.client``) and sends to fresh numbers, so
every request is a full, accepted, charged send. Goal: at least 500 sends per second.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from pathlib import Path

from sandbox_process import start_sandbox  # benchmarks/ is the script's folder

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _start_server() -> tuple[subprocess.Popen, str, float]:
    started = time.perf_counter()
    process, url = start_sandbox()
    return process, url, time.perf_counter() - started


def _in_process_start_seconds() -> float:
    from airflow_provider_kwtsms.sandbox import Sandbox

    started = time.perf_counter()
    sandbox = Sandbox().start()
    seconds = time.perf_counter() - started
    sandbox.stop()
    return seconds


def run(seconds: float = 5.0, clients: int = 4) -> dict:
    """Sustained send rate against a fresh sandbox process; returns the figures.

    The load comes from the standard library's ``http.client`` on keep-alive connections: on a
    2-core machine a heavier client (``requests`` costs about 1.5 ms of CPU per call) would
    measure itself rather than the sandbox.
    """
    import http.client
    import json
    from urllib.parse import urlsplit

    process, url, process_start = _start_server()
    address = urlsplit(url)
    counts = [0] * clients
    failures = [0] * clients
    stop = threading.Event()
    headers = {"Content-Type": "application/json", "Accept": "application/json"}

    def client(worker: int) -> None:
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
        i = 0
        try:
            while not stop.is_set():
                body = {
                    "username": "sandbox_user",
                    "password": "sandbox_pass",
                    "sender": "KWT-SMS",
                    "mobile": f"9655{worker:01d}{i:06d}",
                    "message": "benchmark",
                    "test": "0",
                }
                connection.request("POST", "/API/send/", body=json.dumps(body), headers=headers)
                answer = json.loads(connection.getresponse().read())
                if answer.get("result") == "OK":
                    counts[worker] += 1
                else:
                    failures[worker] += 1
                i += 1
        finally:
            connection.close()

    try:
        threads = [threading.Thread(target=client, args=(w,)) for w in range(clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        time.sleep(seconds)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        elapsed = time.perf_counter() - started
    finally:
        process.terminate()
        process.wait(timeout=10)
    sent = sum(counts)
    return {
        "clients": clients,
        "seconds": round(elapsed, 2),
        "sends_ok": sent,
        "sends_failed": sum(failures),
        "sends_per_second": round(sent / elapsed, 1),
        "process_start_seconds": round(process_start, 3),
        "in_process_start_seconds": round(_in_process_start_seconds(), 4),
        "goal_sends_per_second": 500,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args(argv)
    figures = run(args.seconds, args.clients)
    print("kwtSMS sandbox benchmark")
    for key, value in figures.items():
        print(f"  {key:26} {value}")
    verdict = "meets" if figures["sends_per_second"] >= 500 else "is BELOW"
    print(f"  -> {figures['sends_per_second']} sends/s {verdict} the 500/s goal")
    return 0


if __name__ == "__main__":
    sys.exit(main())
