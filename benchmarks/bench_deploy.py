"""A running deployment's figures, per executor: one account's cap over many workers, alert latency.

    .venv/bin/python benchmarks/bench_deploy.py [--executors local,celery] [--campaign 20000]
        [--chunks 10] [--alerts 200] [--write]

Starts the same deployment as tests/deploy (Postgres, the sandbox processes, Airflow's
scheduler, DAG processor, triggerer and API server; for CeleryExecutor, Redis and two workers)
once per executor, then:

- scenario (e): a campaign of ``--campaign`` recipients mapped into ``--chunks`` tasks against a
  sandbox capped at 2 requests/s, (1) all tasks at once on the shared limiter (connection extra
  ``rate_store``: Redis under Celery, Postgres under LocalExecutor) and (2) through a one-slot
  pool, each task pacing itself. Share of the cap = (accepted requests - 1) / (span between the
  first and the last accepted request x cap); wall time = trigger to run finished.
- failure -> alert latency: ``--alerts`` runs triggered at once, each failing task sending one
  KwtSMSNotifier alert; the exception carries the moment of the failure, the sandbox records the
  arrival (same clock): median and p95.

``--write`` replaces the "Deployment" section of benchmarks/RESULTS.md with the figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "deploy"))
sys.path.insert(0, str(REPO))

from harness import CAPPED_RATE, Postgres, Site, running_site, wait_for  # noqa: E402

RESULTS = HERE / "RESULTS.md"
SECTION = "## Deployment (bench_deploy.py)"


def numbers(count: int) -> set[str]:
    return {f"9655{i:07d}" for i in range(count)}


def campaign(site: Site, dag_id: str, size: int, chunks: int) -> dict:
    d, capped = site.deployment, site.capped
    capped.reset()
    d.wait_dag(dag_id)
    started = time.monotonic()
    run = d.trigger(dag_id, {"size": size, "chunks": chunks})
    state = d.wait_run(dag_id, run, timeout=1800)
    wall = time.monotonic() - started
    requests_ = capped.requests()
    # every accepted request of the account counts (sends and balance checks): the cap is per account
    accepted = sorted(r["time"] for r in requests_ if r["http_status"] == 200)
    gaps = sorted((b - a for a, b in itertools.pairwise(accepted)), reverse=True)
    span = accepted[-1] - accepted[0] if len(accepted) > 1 else 0.0
    received: dict[str, int] = {}
    for message in capped.messages():
        for number in message["mobile"]:
            received[number] = received.get(number, 0) + 1
    want = numbers(size)
    return {
        "state": state,
        "wall_s": round(wall, 1),
        "span_s": round(span, 1),
        "ideal_s": round((len(accepted) - 1) / CAPPED_RATE, 1),
        "cap_share": round((len(accepted) - 1) / (span * CAPPED_RATE), 3) if span else 0.0,
        "requests": len(accepted),
        "sends": sum(1 for r in requests_ if r["endpoint"] == "send" and r["http_status"] == 200),
        "largest_gaps_s": [round(g, 2) for g in gaps[:5]],
        "refused_429": sum(1 for r in requests_ if r["http_status"] == 429),
        "once": sum(1 for n in want if received.get(n) == 1),
        "twice": sum(1 for n in want if received.get(n, 0) > 1),
        "missing": sum(1 for n in want if n not in received),
    }


def alert_latency(site: Site, alerts: int) -> dict:
    d, sandbox = site.deployment, site.sandbox
    sandbox.reset()
    d.wait_dag("deploy_fanout")
    stamp = int(time.time())
    started = time.monotonic()
    runs = [
        d.trigger("deploy_fanout", {"alert_to": f"9656{i:07d}"}, run_id=f"bench_{stamp}_{i:04d}")
        for i in range(alerts)
    ]
    wait_for(f"{alerts} alerts", lambda: len(sandbox.messages()) >= alerts, 1800, interval=1)
    wall = time.monotonic() - started
    latencies = sorted(
        m["received_at"] - float(m["message"].rpartition(" at ")[2]) for m in sandbox.messages()
    )
    return {
        "alerts": len(latencies),
        "runs": len(runs),
        "wall_s": round(wall, 1),
        "median_s": round(statistics.median(latencies), 3),
        "p95_s": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))], 3),
        "max_s": round(latencies[-1], 3),
    }


def run(executors: tuple[str, ...] = ("local", "celery"), size: int = 20000, chunks: int = 10,
        alerts: int = 200) -> dict:  # fmt: skip
    root = Path(tempfile.mkdtemp(prefix="kwtsms-bench-deploy-"))
    out: dict = {}
    postgres = Postgres(root / "postgres", root / "logs").start()
    try:
        for executor in executors:
            started = time.monotonic()
            with running_site(executor, postgres, root / executor) as site:
                up = time.monotonic() - started
                out[executor] = {
                    "start_s": round(up, 1),
                    "shared": campaign(site, "deploy_campaign_shared", size, chunks),
                    "pool": campaign(site, "deploy_campaign_pool", size, chunks),
                    "latency": alert_latency(site, alerts),
                }
            print(json.dumps({executor: out[executor]}, indent=1), flush=True)
    finally:
        postgres.stop()
    return out


def table(results: dict, size: int, chunks: int) -> str:
    lines = [
        "| Executor | Way | Cap used | Span (ideal) | Wall time | 429s | Once / twice / missing |",
        "|---|---|---|---|---|---|---|",
    ]
    for executor, got in results.items():
        for way in ("shared", "pool"):
            r = got[way]
            lines.append(
                f"| {executor} | {'shared limiter' if way == 'shared' else 'one-slot pool'} | "
                f"{r['cap_share']:.1%} | {r['span_s']} s ({r['ideal_s']} s) | {r['wall_s']} s | "
                f"{r['refused_429']} | {r['once']} / {r['twice']} / {r['missing']} |"
            )
    lines += [
        "",
        "| Executor | Alerts | Failure -> alert median | p95 | max | All arrived in |",
        "|---|---|---|---|---|---|",
    ]
    for executor, got in results.items():
        r = got["latency"]
        lines.append(
            f"| {executor} | {r['alerts']} | {r['median_s'] * 1000:.0f} ms | {r['p95_s'] * 1000:.0f} ms | "
            f"{r['max_s'] * 1000:.0f} ms | {r['wall_s']} s |"
        )
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    head = (
        f"{SECTION}\n\nScenario (e): {size:,} recipients in {chunks} mapped tasks, sandbox capped at "
        f"{CAPPED_RATE:g} requests/s; alerts: one failing task per run, all runs triggered at once, so "
        "the latency is under the load of that many task processes starting together on this machine. "
        f"{when}, {platform.machine()}, {sys.version.split()[0]}. One run each (a deployment per "
        "executor takes minutes to start).\n"
    )
    return head + "\n" + "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    current = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if SECTION in current:
        before, _, rest = current.partition(SECTION)
        after = rest[rest.find("\n## ") :] if "\n## " in rest else ""
        current = before.rstrip() + "\n\n" + text + after
    else:
        current = current.rstrip() + "\n\n" + text
    RESULTS.write_text(current)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executors", default="local,celery")
    parser.add_argument("--campaign", type=int, default=20000)
    parser.add_argument("--chunks", type=int, default=10)
    parser.add_argument("--alerts", type=int, default=200)
    parser.add_argument("--write", action="store_true", help="replace the Deployment section of RESULTS.md")
    args = parser.parse_args(argv)
    executors = tuple(e.strip() for e in args.executors.split(",") if e.strip())
    results = run(executors, args.campaign, args.chunks, args.alerts)
    text = table(results, args.campaign, args.chunks)
    print(text)
    if args.write:
        write_section(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
