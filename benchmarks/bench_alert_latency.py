"""Alert latency: from an Airflow callback calling the notifier to the request reaching the gateway.

    .venv/bin/python benchmarks/bench_alert_latency.py [--alerts 50] [--cold 10]

A sandbox (rate cap and firewall off) runs in this process; the ``kwtsms_default`` connection points at it
through ``AIRFLOW_CONN_KWTSMS_DEFAULT`` (JSON form, test mode on). Each alert calls
``KwtSMSNotifier(target=...)(context)`` exactly as Airflow calls a callback: ``BaseNotifier``
renders the templated fields, then ``notify`` reads the connection through ``KwtSMSHook``,
builds the client, composes the default alert and sends it. The latency is the sandbox's
receive time of that message (``Sandbox.messages()[i]["received_at"]``, the same wall clock)
minus the time of the call. Every alert goes to a different number, so the gateway's 15-second
same-number rule (ERR028) never applies.

- ``warm``: many alerts in one process, each with a fresh notifier (after one untimed alert),
  as in a long-lived process that has already sent one.
- ``cold``: one alert per fresh interpreter that has imported ``airflow.sdk`` and the DAG's
  callback module (as a task process has), so the first alert pays the lazy imports
  (``requests``, ``phonenumbers``) that keep DAG parsing cheap.
- ``cold_preloaded`` (ours only): the same with ``requests`` and ``phonenumbers`` imported
  before the call, which shows what those lazy imports cost.

Beside it, the same for what a user would otherwise write: a callback that builds the official
``kwtsms`` client (``KwtSMS(...).send(number, text)``, pointed at the sandbox through its
module-level ``BASE_URL``).

``run(...)`` returns the figures as a dict for benchmarks/run_all.py.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

USER, PASSWORD = "bench_user", "bench_pass"
CLIENTS = ("ours", "seed")
# Distinct number blocks per (client, mode): 9655 B NNNNNN, Kuwaiti mobiles.
BLOCKS = {
    ("ours", "warm"): 1,
    ("seed", "warm"): 2,
    ("ours", "cold"): 3,
    ("seed", "cold"): 4,
    ("ours", "warmup"): 5,
    ("seed", "warmup"): 6,
    ("ours", "cold_preloaded"): 7,
}


def _number(client: str, mode: str, i: int) -> str:
    return f"9655{BLOCKS[(client, mode)]}{i:06d}"


def context() -> dict:
    """A minimal task-failure callback context: what the default alert reads."""
    ti = SimpleNamespace(
        dag_id="bench_dag",
        task_id="load_orders",
        try_number=2,
        max_tries=2,
        run_id="scheduled__2026-01-01T00:00:00+00:00",
        state="failed",
    )
    return {
        "ti": ti,
        "task_instance": ti,
        "run_id": ti.run_id,
        "exception": RuntimeError("warehouse connection refused"),
    }


def _seed_text(ctx: dict) -> str:
    ti = ctx["ti"]
    return (
        f"Airflow {ti.dag_id}.{ti.task_id} failed (try {ti.try_number}, run {ti.run_id}): {ctx['exception']}"
    )


def conn_json(url: str) -> str:
    """The ``AIRFLOW_CONN_KWTSMS_DEFAULT`` JSON form for a sandbox at ``url``."""
    return json.dumps(
        {
            "conn_type": "kwtsms",
            "host": url,
            "login": USER,
            "password": PASSWORD,
            "extra": {"test_mode": True},
        }
    )


def _point_seed_at(url: str) -> None:
    import kwtsms._core as seed_core

    seed_core.BASE_URL = url + "/API/"  # the seed builds BASE_URL + endpoint + "/"


def _alert_ours(number: str) -> tuple[float, float]:
    from airflow_provider_kwtsms.notifications.kwtsms import KwtSMSNotifier

    notifier = KwtSMSNotifier(target=number)  # built when the DAG file is parsed
    called = time.time()
    notifier(context())
    return called, time.time()


def _alert_seed(number: str) -> tuple[float, float]:
    from kwtsms import KwtSMS

    def on_failure(ctx: dict) -> None:  # the callback a user of the seed client would write
        answer = KwtSMS(USER, PASSWORD, sender_id="KWT-SMS", test_mode=True, log_file="").send(
            number, _seed_text(ctx)
        )
        if answer.get("result") != "OK":
            raise RuntimeError(f"seed alert failed: {answer}")

    called = time.time()
    on_failure(context())
    return called, time.time()


_COLD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[3])
import airflow.sdk  # a task process has it
from bench_alert_latency import context, _point_seed_at
client, number, _, url, mode = sys.argv[1:6]
if mode == "cold_preloaded":  # as a worker that imports them at start would
    import requests, phonenumbers, airflow_provider_kwtsms.gateway.client, airflow_provider_kwtsms.phone
if client == "ours":
    from airflow_provider_kwtsms.notifications.kwtsms import KwtSMSNotifier
    callback = KwtSMSNotifier(target=number)
    called = time.time()
    callback(context())
else:
    import kwtsms
    _point_seed_at(url)
    from bench_alert_latency import _alert_seed
    called, _ = _alert_seed(number)
print(json.dumps({"called": called, "returned": time.time()}))
"""


def _alert_cold(client: str, number: str, url: str, mode: str = "cold") -> tuple[float, float]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-c", _COLD, client, number, str(Path(__file__).parent), url, mode]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"cold {client} alert failed: {done.stderr.strip()[-2000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return out["called"], out["returned"]


def _ms_stats(values: list[float]) -> dict:
    ordered = sorted(values)
    p95 = statistics.quantiles(ordered, n=20, method="inclusive")[18] if len(ordered) > 1 else ordered[0]
    return {
        "median_ms": statistics.median(ordered) * 1000,
        "p95_ms": p95 * 1000,
        "min_ms": ordered[0] * 1000,
        "max_ms": ordered[-1] * 1000,
        "count": len(ordered),
    }


def run(alerts: int = 50, cold: int = 10, clients: tuple[str, ...] = CLIENTS) -> dict:
    """Median and p95 alert latency, warm and cold, per client; returns the figures."""
    from airflow_provider_kwtsms.sandbox import Sandbox

    # The firewall off: alerts go back to back to time our code's latency, not to pace them.
    sandbox = Sandbox(
        username=USER,
        password=PASSWORD,
        balance=10**9,
        queue_size=10**9,
        drain_rate=10**6,
        firewall=False,
    ).start()
    saved_conn = os.environ.get("AIRFLOW_CONN_KWTSMS_DEFAULT")
    os.environ["AIRFLOW_CONN_KWTSMS_DEFAULT"] = conn_json(sandbox.url)
    calls: dict[tuple[str, str], list[tuple[str, float, float]]] = {}
    try:
        _point_seed_at(sandbox.url)
        alert = {"ours": _alert_ours, "seed": _alert_seed}
        for client in clients:
            alert[client](_number(client, "warmup", 0))  # imports and first-use costs, untimed
        for i in range(alerts):  # interleaved, so that load from other processes hits both alike
            for client in clients:
                number = _number(client, "warm", i)
                calls.setdefault((client, "warm"), []).append((number, *alert[client](number)))
        cold_runs = [(client, "cold") for client in clients]
        if "ours" in clients:
            cold_runs.append(("ours", "cold_preloaded"))
        for i in range(cold):
            for client, mode in cold_runs:
                number = _number(client, mode, i)
                timing = _alert_cold(client, number, sandbox.url, mode)
                calls.setdefault((client, mode), []).append((number, *timing))
        time.sleep(0.1)
        received = {}
        for message in sandbox.messages():
            for number in message["mobile"]:
                received.setdefault(number, message["received_at"])
    finally:
        sandbox.stop()
        if saved_conn is None:
            os.environ.pop("AIRFLOW_CONN_KWTSMS_DEFAULT", None)
        else:
            os.environ["AIRFLOW_CONN_KWTSMS_DEFAULT"] = saved_conn
    figures: dict = {"alerts": alerts, "cold": cold, "clients": {}}
    for (client, mode), rows in calls.items():
        missing = [number for number, _, _ in rows if number not in received]
        if missing:
            raise RuntimeError(
                f"{client} {mode}: {len(missing)} alert(s) never reached the sandbox, e.g. {missing[0]}"
            )
        figures["clients"].setdefault(client, {})[mode] = {
            "to_gateway": _ms_stats([received[number] - called for number, called, _ in rows]),
            "call_returned": _ms_stats([returned - called for _, called, returned in rows]),
        }
    return figures


def _table(figures: dict) -> str:
    lines = [
        f"Alert latency, call -> request at the sandbox ({figures['alerts']} warm alerts, "
        f"{figures['cold']} cold, one number each)",
        f"{'client':8} {'mode':5} {'median ms':>10} {'p95 ms':>8} {'max ms':>8} {'call returned ms':>17}",
    ]
    for client, modes in figures["clients"].items():
        for mode, f in modes.items():
            g = f["to_gateway"]
            lines.append(
                f"{client:8} {mode:5} {g['median_ms']:>10.1f} {g['p95_ms']:>8.1f} "
                f"{g['max_ms']:>8.1f} {f['call_returned']['median_ms']:>17.1f}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=50, help="warm alerts per client")
    parser.add_argument("--cold", type=int, default=10, help="alerts per client, each in a fresh interpreter")
    parser.add_argument("--clients", default=",".join(CLIENTS), help="comma-separated: ours, seed")
    args = parser.parse_args(argv)
    print(_table(run(args.alerts, args.cold, tuple(args.clients.split(",")))))


if __name__ == "__main__":
    main()
