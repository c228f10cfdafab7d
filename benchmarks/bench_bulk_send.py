"""Pacing efficiency of a bulk send: our client against the official ``kwtsms`` 0.7.40 client.

    .venv/bin/python benchmarks/bench_bulk_send.py [--numbers 20000] [--rate 2] [--latency 0.1]

Both clients send the same 20,000 numbers (100 requests of 200) in test mode to a local
sandbox that caps the account at ``rate`` requests per second (HTTP 429 above it) and answers
every request ``latency`` seconds late. The ideal wall time is requests / rate. The seed client
sleeps 0.5 s *after* each request, so each request costs latency + 0.5 s; ours starts requests
1/rate apart, the request's own time included. Takes about 50 s + 60 s at the defaults.
Wall time is the whole ``send`` call (planning included) after one warm-up import of each
client's modules.

The seed client builds its URLs as ``BASE_URL + endpoint + "/"`` from the module-level
``kwtsms._core.BASE_URL`` ("https://www.kwtsms.com/API/"), so pointing it at the sandbox is a
matter of setting that to ``<sandbox url>/API/``.
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
MESSAGE = "Bulk send benchmark"


def _numbers(count: int) -> list[str]:
    return [f"96550{i:06d}" for i in range(count)]


def _sandbox(rate: float, latency: float):
    from airflow_provider_kwtsms.sandbox import Sandbox
    from airflow_provider_kwtsms.sandbox.server import STRICT_RATE_TOLERANCE

    return Sandbox(
        username=USER,
        password=PASSWORD,
        balance=10**9,
        rate=rate,
        rate_tolerance=STRICT_RATE_TOLERANCE,  # refuse anything faster than the cap: the figure is honest
        latency=latency,
        queue_size=10**9,
        drain_rate=10**6,
    ).start()


def _ours(url: str, numbers: list[str], rate: float) -> dict:
    from airflow_provider_kwtsms.gateway.client import KwtSMSClient

    with KwtSMSClient(USER, PASSWORD, base_url=url, rate=rate, test_mode=True) as client:
        # Warm-up, as the seed client gets by importing its module: our client imports requests and
        # phonenumbers' metadata on first use (~0.6 s here), which is a per-process cost, not a
        # per-send one. Planning the 20,000 numbers stays inside the timing.
        import requests  # noqa: F401

        client.plan_send(numbers[:1], MESSAGE)
        started = time.perf_counter()
        result = client.send(numbers, MESSAGE)
        wall = time.perf_counter() - started
    return {
        "wall_s": wall,
        "numbers_sent": result.numbers_sent,
        "batches_ok": len(result.msg_ids),
        "batches": len(result.batches),
    }


def _seed(url: str, numbers: list[str], rate: float) -> dict:
    import kwtsms._core as seed_core
    from kwtsms import KwtSMS

    saved = seed_core.BASE_URL
    seed_core.BASE_URL = url + "/API/"
    try:
        client = KwtSMS(USER, PASSWORD, sender_id="KWT-SMS", test_mode=True, log_file="")
        started = time.perf_counter()
        result = client.send(numbers, MESSAGE)
        wall = time.perf_counter() - started
    finally:
        seed_core.BASE_URL = saved
    return {
        "wall_s": wall,
        "numbers_sent": int(result.get("numbers", 0)),
        "batches_ok": len(result.get("msg-ids", [])),
        "batches": int(result.get("batches", 1)),
    }


def _measure(name: str, numbers: list[str], rate: float, latency: float) -> dict:
    sandbox = _sandbox(rate, latency)
    try:
        figures = (_ours if name == "ours" else _seed)(sandbox.url, numbers, rate)
        time.sleep(0.2)  # the sandbox logs a request just after answering it
        log = [r for r in sandbox.requests() if r["endpoint"] == "send"]
        firewall = sandbox.firewall_state()  # on, as the gateway's: a block is a failure
    finally:
        sandbox.stop()
    accepted = [r["time"] for r in log if r["code"] == "OK"]
    requests = figures["batches"]
    ideal = requests / rate
    figures.update(
        client=name,
        requests_sent=len(log),
        refused_429=sum(1 for r in log if r["code"] == "RATE_LIMITED"),
        firewall_blocks=firewall["blocks"],
        max_in_one_second=firewall["max_in_one_second"],
        ideal_s=ideal,
        efficiency_pct=100.0 * ideal / figures["wall_s"],
        # Rate seen by the gateway between the first and the last accepted request.
        server_rate=(len(accepted) - 1) / (accepted[-1] - accepted[0]) if len(accepted) > 1 else 0.0,
    )
    return figures


def run(
    numbers: int = 20_000,
    rate: float = 2.0,
    latency: float = 0.1,
    clients: tuple[str, ...] = ("ours", "seed"),
) -> dict:
    """Send ``numbers`` numbers with each client; return the figures per client."""
    targets = _numbers(numbers)
    results = {name: _measure(name, targets, rate, latency) for name in clients}
    return {
        "numbers": numbers,
        "rate": rate,
        "latency_s": latency,
        "requests": -(-numbers // 200),
        "ideal_s": -(-numbers // 200) / rate,
        "clients": results,
    }


def _table(figures: dict) -> str:
    lines = [
        f"Bulk send: {figures['numbers']} numbers = {figures['requests']} requests at a cap of "
        f"{figures['rate']:g} req/s, {figures['latency_s'] * 1000:.0f} ms sandbox latency; "
        f"ideal {figures['ideal_s']:.1f} s",
        f"{'client':<8} {'wall s':>8} {'ideal s':>8} {'eff. %':>7} {'srv req/s':>9} {'429s':>5} "
        f"{'batches ok':>10} {'numbers sent':>12} {'blocks':>6} {'max/s':>5}",
    ]
    for name, f in figures["clients"].items():
        lines.append(
            f"{name:<8} {f['wall_s']:>8.1f} {f['ideal_s']:>8.1f} {f['efficiency_pct']:>7.1f} "
            f"{f['server_rate']:>9.3f} {f['refused_429']:>5} {f['batches_ok']:>5}/{f['batches']:<4} "
            f"{f['numbers_sent']:>12} {f['firewall_blocks']:>6} {f['max_in_one_second']:>5}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numbers", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=2.0)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--clients", default="ours,seed", help="comma-separated: ours, seed")
    args = parser.parse_args(argv)
    figures = run(args.numbers, args.rate, args.latency, tuple(args.clients.split(",")))
    print(_table(figures))


if __name__ == "__main__":
    main()
