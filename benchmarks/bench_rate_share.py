"""One task's share of the account's cap: requests one after another, then in flight.

    .venv/bin/python benchmarks/bench_rate_share.py [--batches 60] [--rate 5] [--latency 0.4] [--write-ms 25]

One send of ``batches`` x 200 numbers through the resume ledger (the operator's path: each batch
recorded before its request and after it, in a store that takes ``write-ms`` per write, as the
task state store does under ``airflow dags test``), against a local sandbox that answers every
send ``latency`` seconds late (its ``latency:<s>`` fault). The real pacer, real time.

"before": one request at a time (``max_in_flight = 1``, the loop as it was): each batch costs
latency + two writes, so the rate is capped by them. "after": the loop keeps up to
``max_in_flight`` requests out (ceil(rate x 1 s) + 1) and the pacer gates each start.

The rate is measured where the cap is enforced: the sandbox's arrival times of the sends,
(requests - 1) / (last arrival - first arrival); the share is that rate over ``rate``. Wall time
(the whole ``resume_send``) is printed too. Takes about 30 s + 13 s at the defaults.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

USER, PASSWORD = "bench_user", "bench_pass"


def _store(write_seconds: float):
    from airflow_provider_kwtsms.ledger import MemoryStore

    class SlowStore(MemoryStore):
        """A store whose writes take as long as the task state store's do through the API server."""

        def set(self, key: str, value: str) -> None:
            time.sleep(write_seconds)
            super().set(key, value)

    return SlowStore()


def _run(
    sandbox, *, batches: int, rate: float, latency: float, write_seconds: float, sequential: bool
) -> dict:
    from airflow_provider_kwtsms.gateway.client import KwtSMSClient
    from airflow_provider_kwtsms.ledger import resume_send

    class OneAtATime(KwtSMSClient):
        max_in_flight = 1  # type: ignore[assignment]  (the loop as it was: one request at a time)

    cls = OneAtATime if sequential else KwtSMSClient
    sandbox.reset()
    sandbox.inject_fault(f"latency:{latency:g}", "send", times=-1)
    numbers = [f"96550{i:06d}" for i in range(batches * 200)]
    with cls(USER, PASSWORD, base_url=sandbox.url, rate=rate) as client:
        import requests  # noqa: F401  (a per-process cost, not a per-send one)

        plan = client.plan_send(numbers, "Rate share benchmark", test=False)
        started = time.monotonic()
        result = resume_send(client, plan, _store(write_seconds), try_number=1)
        wall = time.monotonic() - started
        width = client.max_in_flight
    sends = sorted(r["time"] for r in sandbox.requests() if r["endpoint"] == "send")
    others = [r["endpoint"] for r in sandbox.requests() if r["endpoint"] != "send"]
    per_second = (len(sends) - 1) / (sends[-1] - sends[0])
    # The most requests begun within any one second (the documented limit is 5).
    densest = max(sum(1 for t in sends[i:] if t < start + 1.0) for i, start in enumerate(sends))
    return {
        "in_flight": width,
        "requests": len(sends),
        "other_requests": len(others),
        "per_second": per_second,
        "share": per_second / rate,
        "wall": wall,
        "densest_second": densest,
        "sent": result.numbers_sent,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--rate", type=float, default=5.0)
    parser.add_argument("--latency", type=float, default=0.4)
    parser.add_argument("--write-ms", type=float, default=25.0)
    args = parser.parse_args(argv)

    from airflow_provider_kwtsms.sandbox import Sandbox

    with Sandbox(
        username=USER, password=PASSWORD, balance=10**9, rate=None, queue_size=10**9, drain_rate=10**6
    ) as sandbox:
        options = {
            "batches": args.batches,
            "rate": args.rate,
            "latency": args.latency,
            "write_seconds": args.write_ms / 1000,
        }
        before = _run(sandbox, sequential=True, **options)
        after = _run(sandbox, sequential=False, **options)

    print(
        f"One task, {args.batches} batches of 200 at rate={args.rate:g}, {args.latency * 1000:.0f} ms "
        f"per answer, {args.write_ms:g} ms per ledger write (real pacer, real time):"
    )
    print(f"{'':34}{'before (one at a time)':>24}{'after (in flight)':>20}")
    rows = [
        ("requests in flight at most", "in_flight", "{:d}"),
        ("send requests", "requests", "{:d}"),
        ("other requests (reads)", "other_requests", "{:d}"),
        ("requests per second", "per_second", "{:.2f}"),
        ("share of the cap", "share", "{:.1%}"),
        ("most requests begun in 1 s", "densest_second", "{:d}"),
        ("wall time, s", "wall", "{:.1f}"),
    ]
    for label, key, fmt in rows:
        print(f"{label:34}{fmt.format(before[key]):>24}{fmt.format(after[key]):>20}")
    return {"before": before, "after": after}


if __name__ == "__main__":
    main()
