"""Run every benchmark beside the official ``kwtsms`` client; print one table and write RESULTS.md.

    make bench                                   # = .venv/bin/python benchmarks/run_all.py
    .venv/bin/python benchmarks/run_all.py --quick            # smoke run: small sizes, 2 runs
    .venv/bin/python benchmarks/run_all.py --only prepare,memory

Every figure is the median of at least five runs (``--runs``); the full run takes about 25
minutes, most of it the bulk send (100 paced requests per client per run). The full run writes
benchmarks/RESULTS.md with the machine, versions, date and per-figure details; ``--quick`` and
``--only`` write nothing unless ``--output`` is given, so a smoke run never replaces real results.

Imports are timed with cached bytecode, as after ``pip install``: when the environment forbids
writing bytecode (``PYTHONDONTWRITEBYTECODE``), this script restarts itself with a private
``PYTHONPYCACHEPREFIX`` and warms it, rather than timing the compiler.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for path in (str(REPO), str(HERE)):
    if path not in sys.path:
        sys.path.insert(0, path)

RESULTS = HERE / "RESULTS.md"
PYCACHE = Path(tempfile.gettempdir()) / "kwtsms-bench-pycache"
PACKAGES = (
    "apache-airflow",
    "apache-airflow-task-sdk",
    "requests",
    "phonenumbers",
    "kwtsms",
    "apache-airflow-providers-slack",
    "airflow-provider-kwtsms",
)
ORDER = ("bulk_send", "prepare", "smart_encoding", "import_cost", "memory", "alert_latency", "sandbox")
RUN_ORDER = (  # short first
    "smart_encoding",
    "import_cost",
    "sandbox",
    "alert_latency",
    "prepare",
    "memory",
    "bulk_send",
)


@dataclass(frozen=True)
class Settings:
    runs: int
    bulk_numbers: int
    prepare_numbers: int
    agreement_sample: int
    memory_sizes: tuple[int, int]
    alerts: int
    cold_alerts: int
    sandbox_seconds: float

    @classmethod
    def full(cls, runs: int) -> Settings:
        return cls(
            runs=runs,
            bulk_numbers=20_000,
            prepare_numbers=1_000_000,
            agreement_sample=100_000,
            memory_sizes=(100_000, 1_000_000),
            alerts=50,
            cold_alerts=10,
            sandbox_seconds=5.0,
        )

    @classmethod
    def quick(cls, runs: int) -> Settings:
        return cls(
            runs=runs,
            bulk_numbers=1_000,
            prepare_numbers=20_000,
            agreement_sample=5_000,
            memory_sizes=(10_000, 50_000),
            alerts=10,
            cold_alerts=2,
            sandbox_seconds=1.0,
        )


@dataclass
class Figure:
    """One benchmark's outcome: table rows (figure, ours, seed/comparator, goal, verdict) and details."""

    name: str
    rows: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None


def _median(values) -> float:
    return statistics.median(list(values))


def _join(values, spec: str) -> str:
    return ", ".join(format(v, spec) for v in values)


def _verdict(ok: bool) -> str:
    return "meets" if ok else "MISSES"


# --- the figures ------------------------------------------------------------------------------


def bulk_send(s: Settings) -> Figure:
    import bench_bulk_send

    rate, latency = 2.0, 0.1
    runs = [bench_bulk_send.run(numbers=s.bulk_numbers, rate=rate, latency=latency) for _ in range(s.runs)]
    first = runs[0]
    per = {c: [r["clients"][c] for r in runs] for c in first["clients"]}
    med = {
        c: {k: _median(x[k] for x in rows) for k in ("wall_s", "efficiency_pct", "server_rate")}
        for c, rows in per.items()
    }
    refused = {c: sum(x["refused_429"] for x in rows) for c, rows in per.items()}
    complete = {c: all(x["numbers_sent"] == s.bulk_numbers for x in rows) for c, rows in per.items()}
    what = (
        f"Bulk send: {s.bulk_numbers:,} numbers ({first['requests']} requests), cap {rate:g} req/s, "
        f"{latency * 1000:.0f} ms latency"
    )
    fig = Figure("bulk_send")
    fig.rows.append(
        (
            f"{what}: wall time",
            f"{med['ours']['wall_s']:.1f} s",
            f"{med['seed']['wall_s']:.1f} s",
            f"ideal {first['ideal_s']:.1f} s",
            "-",
        )
    )
    # Share of the cap = the request rate the gateway saw / the cap. (ideal / wall can pass 100 %:
    # the first request needs no wait, so n requests take (n - 1) / rate + latency.)
    share = {c: 100 * m["server_rate"] / rate for c, m in med.items()}
    ours_ok = share["ours"] >= 98 and refused["ours"] == 0 and complete["ours"]
    fig.rows.append(
        (
            "Bulk send: share of the cap used (gateway's rate / cap)",
            f"{share['ours']:.1f} %",
            f"{share['seed']:.1f} %",
            ">= 98 %",
            _verdict(ours_ok),
        )
    )
    fig.rows.append(
        (
            f"Bulk send: requests refused for rate (429), all {s.runs} runs",
            str(refused["ours"]),
            str(refused["seed"]),
            "0",
            _verdict(refused["ours"] == 0),
        )
    )
    fig.details += [
        f"Both clients send the same {s.bulk_numbers:,} numbers in test mode to a fresh sandbox capped at "
        f"{rate:g} requests/s (HTTP 429 above it) that answers each request {latency * 1000:.0f} ms late. "
        f"Ideal = requests / rate = {first['ideal_s']:.1f} s. Median of {s.runs} runs "
        "(benchmarks/bench_bulk_send.py).",
        "",
        "The share of the cap is the request rate the gateway saw (first to last accepted request) over "
        "the cap; ideal / wall can pass 100 % because the first request needs no wait.",
        "",
        "| client | wall s (each run) | median wall s | ideal / wall | rate seen by the gateway "
        "| share of cap | 429s | all numbers sent |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c, rows in per.items():
        fig.details.append(
            f"| {c} | {_join((x['wall_s'] for x in rows), '.1f')} | {med[c]['wall_s']:.1f} | "
            f"{med[c]['efficiency_pct']:.1f} % | {med[c]['server_rate']:.3f} req/s | {share[c]:.1f} % | "
            f"{refused[c]} | "
            f"{'yes' if complete[c] else 'NO'} |"
        )
    return fig


def prepare(s: Settings) -> Figure:
    # A thin wrapper over bench_prepare: its run() keeps the best of its repeats; here every
    # figure is a median, so the inputs are generated once and both loops timed s.runs times.
    import gc

    import bench_prepare
    from kwtsms._core import validate_phone_input

    from airflow_provider_kwtsms.phone import prepare_recipients

    n = s.prepare_numbers
    inputs = bench_prepare.generate(n)
    held: dict = {}

    def seed_loop() -> None:
        for raw in inputs:
            validate_phone_input(raw)

    def ours() -> None:
        held["r"] = prepare_recipients(inputs)

    def timed(fn: Callable[[], None]) -> float:
        gc.collect()
        started = time.perf_counter()
        fn()
        return time.perf_counter() - started

    seed_times, our_times = [], []
    for _ in range(s.runs):  # interleaved, so that load from other processes hits both alike
        seed_times.append(timed(seed_loop))
        our_times.append(timed(ours))
    seed_s, ours_s = _median(seed_times), _median(our_times)
    recipients = held.pop("r")
    import random

    sample = random.Random(bench_prepare.SEED + 1).sample(inputs, min(s.agreement_sample, n))
    agree = bench_prepare.agreement(sample)
    seed_agree = bench_prepare.seed_agreement(sample)
    speedup = seed_s / ours_s
    fig = Figure("prepare")
    fig.rows.append(
        (
            f"Preparation: {n:,} mixed-format numbers",
            f"{ours_s:.2f} s ({ours_s / n * 1e6:.2f} us/no.)",
            f"{seed_s:.2f} s ({seed_s / n * 1e6:.2f} us/no.)",
            ">= 2x faster",
            f"{_verdict(speedup >= 2)} ({speedup:.2f}x)",
        )
    )
    disagree = agree["disagreements"]
    seed_wrong = sum(seed_agree.values())
    fig.rows.append(
        (
            f"Preparation: verdicts against phonenumbers (sample {len(sample):,})",
            f"{disagree} disagreements ({100 * disagree / len(sample):.2f} %)",
            f"{seed_wrong} disagreements ({100 * seed_wrong / len(sample):.2f} %)",
            "reported",
            "-",
        )
    )
    fig.details += [
        f"The same {n:,} generated inputs (benchmarks/bench_prepare.py: Kuwait-weighted, +, 00, spaces, "
        "dashes, dots, brackets, Arabic-Indic and Persian digits, trunk zeros, local numbers, landlines, "
        f"garbage, duplicates) through our `prepare_recipients` and through the seed client's "
        f"`validate_phone_input` in a loop, interleaved, {s.runs} runs, median. Ours also deduplicates "
        "and sorts every input into valid, invalid (with reason) or duplicate; the seed loop only checks.",
        "",
        f"- ours, each run (s): {_join(our_times, '.2f')} (the first compiles the metadata it needs)",
        f"- seed, each run (s): {_join(seed_times, '.2f')}",
        f"- speed-up (median seed / median ours): {speedup:.2f}x",
        f"- ours: {len(recipients.valid):,} valid, {len(recipients.invalid):,} invalid, "
        f"{len(recipients.duplicates):,} duplicates; every input accounted: "
        f"{recipients.total_inputs == n}",
        "",
        f"Agreement with `phonenumbers` (parse, `is_valid_number`, `number_type`) on a sample of "
        f"{len(sample):,} inputs, judging the number each client would send:",
        "",
        "| phonenumbers says | count | ours disagrees |",
        "|---|---|---|",
        f"| valid mobile (or fixed-line-or-mobile) | {agree['pn_valid_mobile']:,} | rejected "
        f"{agree['missed_mobile']:,} |",
        f"| fixed line | {agree['pn_fixed_line']:,} | accepted {agree['accepted_fixed_line']:,} |",
        f"| impossible | {agree['pn_impossible']:,} | accepted {agree['accepted_impossible']:,} |",
        f"| unknown code / unparsable | {agree['pn_unknown_code_or_unparsable']:,} | accepted "
        f"{agree['accepted_unparsable']:,} |",
        f"| other types, unknown ranges (no verdict) | {agree['pn_other']:,} | (accepted "
        f"{agree['other_accepted']:,}) |",
        "",
        f"Inputs written with `+` parsed raw by phonenumbers: {agree['raw_parse_checked']:,}, giving a "
        f"different number: {agree['raw_parse_mismatch']:,}. The seed client on the same sample: "
        + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in seed_agree.items())
        + ".",
    ]
    if agree["examples"]:
        shown = ", ".join(repr(x) for x in agree["examples"])
        fig.details.append(f"Disagreeing inputs (first ones): {shown}")
    return fig


def import_cost(s: Settings) -> Figure:
    import bench_import_cost

    figures = bench_import_cost.run(repeats=max(s.runs, 5))
    ours, slack = list(figures.values())[:2]
    heavy = ", ".join(ours["heavy_imports"]) or "none"
    fig = Figure("import_cost")
    fig.rows.append(
        (
            "DAG-parse: import of our operator + sensor + notifier after airflow.sdk",
            f"{ours['median_ms']:.1f} ms, {ours['median_rss_kib']:.0f} KiB",
            f"Slack operator: {slack['median_ms']:.1f} ms, {slack['median_rss_kib']:.0f} KiB",
            "< 10 ms",
            _verdict(ours["median_ms"] < 10 and not ours["heavy_imports"]),
        )
    )
    fig.details += [
        "Each sample is a fresh interpreter that has imported `airflow.sdk` (as every DAG file has), then "
        f"imports the modules; median of {max(s.runs, 5)} interpreters (benchmarks/bench_import_cost.py). "
        "Bytecode cached, as after `pip install`.",
        "",
        "| modules | import ms | added peak RSS KiB | new modules | heavy imports pulled in |",
        "|---|---|---|---|---|",
    ]
    for label, f in figures.items():
        fig.details.append(
            f"| {label} | {f['median_ms']:.1f} | {f['median_rss_kib']:.0f} | "
            f"{f['new_modules']} | {', '.join(f['heavy_imports']) or 'none'} |"
        )
    fig.details.append(
        f"\nHeavy modules ours pulls in at parse time: {heavy} (`requests` and `phonenumbers` "
        "load on first use). The RSS column is the rise of the peak RSS; rises of about "
        "0.1 MiB are at the resolution of this measure (0 when the imports stay under the "
        "peak reached while importing `airflow.sdk`)."
    )
    return fig


def memory(s: Settings) -> Figure:
    import bench_memory

    small, big = s.memory_sizes
    f = bench_memory.run(sizes=(small, big), repeats=s.runs)
    modes = f["modes"]

    def peak(mode: str) -> str:
        x = modes[mode]["sizes"][big]
        return f"peak {x['peak_kib'] / 1024:.0f} MiB (+{x['growth_kib'] / 1024:.0f} over inputs)"

    fig = Figure("memory")
    fig.rows.append(
        (f"Memory: prepare {big:,} numbers", peak("prepare"), peak("seed-prepare"), "stated", "-")
    )
    fig.rows.append(
        (
            f"Memory: prepare + send {big:,} numbers (sandbox, cap off)",
            peak("send"),
            "n/a (paces 0.5 s/request: ~42 min)",
            "stated",
            "-",
        )
    )
    fig.rows.append(
        (
            f"Memory: growth per number (slope {small:,} -> {big:,})",
            f"prepare {modes['prepare']['bytes_per_number']:.0f} B, send "
            f"{modes['send']['bytes_per_number']:.0f} B",
            f"prepare {modes['seed-prepare']['bytes_per_number']:.0f} B",
            "stated",
            "-",
        )
    )
    fig.details += [
        f"Each sample is a fresh child interpreter (benchmarks/bench_memory.py): imports, then {small:,} or "
        f"{big:,} distinct Kuwaiti mobiles in six formats, then the work; its peak RSS (VmHWM) is read at "
        "the end. "
        "The send goes to a sandbox in its own process with the rate cap off and the client's pacing set out "
        f"of the way (rate 10^6/s). Growth = peak - RSS once the inputs exist. Median of {s.runs} children.",
        "",
        "| work | numbers | RSS after imports MiB | + inputs MiB | peak MiB | growth MiB | seconds "
        "| peaks (MiB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    names = {
        "prepare": "ours: prepare_recipients",
        "send": "ours: KwtSMSClient.send",
        "seed-prepare": "seed: validate_phone_input loop",
    }
    for mode, m in modes.items():
        for count, x in m["sizes"].items():
            fig.details.append(
                f"| {names[mode]} | {count:,} | {x['after_imports_kib'] / 1024:.1f} | "
                f"{x['after_inputs_kib'] / 1024:.1f} | {x['peak_kib'] / 1024:.1f} | "
                f"{x['growth_kib'] / 1024:.1f} | "
                f"{x['seconds']:.2f} | {_join((p / 1024 for p in x['peak_kib_samples']), '.0f')} |"
            )
    fig.details.append("")
    for mode, m in modes.items():
        fig.details.append(
            f"- {names[mode]}: {m['bytes_per_number']:.0f} bytes per number on top of the "
            f"inputs (the input strings themselves: {m['input_bytes_per_number']:.0f} bytes "
            "per number)"
        )
    return fig


@contextlib.contextmanager
def _output_silenced() -> Iterator[None]:
    """Hide info lines per alert and per batch (Airflow's log setup writes them to the raw stdout)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def alert_latency(s: Settings) -> Figure:
    import bench_alert_latency

    f = bench_alert_latency.run(alerts=s.alerts, cold=s.cold_alerts)
    ours, seed = f["clients"]["ours"], f["clients"]["seed"]

    def cell(x: dict, tail: str = "p95_ms") -> str:
        g = x["to_gateway"]
        return f"{g['median_ms']:.1f} / {g[tail]:.1f} ms"

    fig = Figure("alert_latency")
    fig.rows.append(
        (
            f"Alert latency, warm process: median / p95 ({s.alerts} alerts)",
            cell(ours["warm"]),
            cell(seed["warm"]),
            "reported",
            "-",
        )
    )
    fig.rows.append(
        (
            f"Alert latency, fresh task process: median / max ({s.cold_alerts} alerts)",
            cell(ours["cold"], "max_ms"),
            cell(seed["cold"], "max_ms"),
            "reported",
            "-",
        )
    )
    fig.rows.append(
        (
            "Alert latency, fresh process, requests + phonenumbers preloaded: median / max",
            cell(ours["cold_preloaded"], "max_ms"),
            "-",
            "reported",
            "-",
        )
    )
    fig.details += [
        "From the callback being called to the sandbox receiving the request (the sandbox's receive time, "
        "same wall clock), rate cap off, a different number per alert (benchmarks/bench_alert_latency.py). "
        "Ours: `KwtSMSNotifier(target=...)(context)`, Airflow's own callback path (template rendering, the "
        "`kwtsms_default` connection from `AIRFLOW_CONN_KWTSMS_DEFAULT` through `KwtSMSHook`, default alert "
        "text, send). Seed: a callback building `KwtSMS(...)` and calling `.send(number, text)`. Warm: one "
        "process, a fresh notifier per alert, after one untimed alert. Fresh task process: one alert per new "
        "interpreter that has imported `airflow.sdk` and the callback; ours then loads `requests` and "
        "`phonenumbers` on first use (they are kept out of DAG parsing), the seed client uses `urllib`. "
        "`cold_preloaded`: the same, with `requests` and `phonenumbers` imported before the call (as a "
        "worker that imports them at start), which isolates what those lazy imports cost.",
        "",
        "| client | process | median ms | p95 ms | max ms | call returned, median ms | alerts |",
        "|---|---|---|---|---|---|---|",
    ]
    for client, modes in f["clients"].items():
        for mode, x in modes.items():
            g = x["to_gateway"]
            fig.details.append(
                f"| {client} | {mode} | {g['median_ms']:.1f} | {g['p95_ms']:.1f} | "
                f"{g['max_ms']:.1f} | {x['call_returned']['median_ms']:.1f} | {g['count']} |"
            )
    return fig


def sandbox(s: Settings) -> Figure:
    import bench_sandbox

    runs = [bench_sandbox.run(seconds=s.sandbox_seconds, clients=4) for _ in range(s.runs)]
    rate = _median(r["sends_per_second"] for r in runs)
    failed = sum(r["sends_failed"] for r in runs)
    fig = Figure("sandbox")
    fig.rows.append(
        (
            "Sandbox capacity: accepted sends/s (4 keep-alive clients)",
            f"{rate:.0f} /s",
            "-",
            ">= 500 /s",
            _verdict(rate >= 500 and failed == 0),
        )
    )
    fig.details += [
        f"The sandbox in its own process (`python -m airflow_provider_kwtsms.sandbox --rate 0`), 4 client "
        f"threads each with one keep-alive connection sending to fresh numbers for {s.sandbox_seconds:g} s; "
        f"median of {s.runs} runs (benchmarks/bench_sandbox.py). Client and server share this machine's "
        "cores.",
        "",
        f"- sends/s, each run: {_join((r['sends_per_second'] for r in runs), '.0f')}; failed sends: {failed}",
        f"- process start to listening, median: {_median(r['process_start_seconds'] for r in runs):.3f} s; "
        "in-process `Sandbox().start()`: "
        f"{_median(r['in_process_start_seconds'] for r in runs) * 1000:.1f} ms",
    ]
    return fig


def smart_encoding(s: Settings) -> Figure:
    # Counted, not timed: the same every run, so one run is the figure (no median).
    import bench_smart_encoding

    recipients = 1_000
    rows = bench_smart_encoding.measure(recipients)
    total = bench_smart_encoding.totals(rows)
    fig = Figure("smart_encoding")
    fig.rows.append(
        (
            f"Smart encoding: credits for {len(rows)} realistic messages x {recipients:,} recipients",
            f"{total.smart:,} ({total.saved:.0%} fewer than as written)",
            "kwtsms not installed" if total.official is None else f"{total.official:,} (sends as written)",
            f"< {total.written:,} (as written)",
            _verdict(total.smart < total.written),
        )
    )
    fig.rows.append(
        (
            "Smart encoding: Arabic messages left exactly as written",
            f"{total.arabic_kept}/{total.arabic}",
            "-",
            "all",
            _verdict(total.arabic_kept == total.arabic),
        )
    )
    fig.details += [
        f"Each message of benchmarks/bench_smart_encoding.py's corpus (copy-pasted marketing text, OTPs, "
        f"alerts, Arabic, mixed) planned as a send plans it: cleaned, then smart-encoded (ours) or not (as "
        f"written); pages counted by the gateway's rule, credits = pages x {recipients:,} recipients. The "
        "official client has no page estimate of its own: its column is the text its `send` puts on the "
        "wire (its own `kwtsms.clean_message`), counted by the same rule. Deterministic: counted once.",
        "",
        "| kind | as written | ours (smart) | characters replaced | official client | text |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        off = "-" if r["official"] is None else f"{r['official'][0]}, {r['official'][1]} p"
        text = r["text"][:40].replace("|", "\\|")
        fig.details.append(
            f"| {r['kind']} | {r['as_written'][0]}, {r['as_written'][1]} p | {r['smart'][0]}, "
            f"{r['smart'][1]} p | {r['replaced']} | {off} | {text} |"
        )
    return fig


BENCHES: dict[str, Callable[[Settings], Figure]] = {
    "bulk_send": bulk_send,
    "prepare": prepare,
    "smart_encoding": smart_encoding,
    "import_cost": import_cost,
    "memory": memory,
    "alert_latency": alert_latency,
    "sandbox": sandbox,
}


# --- the machine and the report --------------------------------------------------------------


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def machine() -> dict[str, str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in _read("/proc/cpuinfo").splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    mem_kib = next(
        (int(line.split()[1]) for line in _read("/proc/meminfo").splitlines() if line.startswith("MemTotal")),
        0,
    )
    os_name = next(
        (
            line.split("=", 1)[1].strip().strip('"')
            for line in _read("/etc/os-release").splitlines()
            if line.startswith("PRETTY_NAME=")
        ),
        platform.system(),
    )
    return {
        "CPU": cpu,
        "cores": str(os.cpu_count()),
        "RAM": f"{mem_kib / 1024 / 1024:.1f} GiB",
        "OS": f"{os_name}, kernel {platform.release()}",
        "Python": f"{platform.python_version()} ({platform.python_implementation()})",
    }


def versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_state() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return done.stdout.rstrip("\n") if done.returncode == 0 else ""  # porcelain lines start with a space

    commit = git("rev-parse", "--short=12", "HEAD") or "unknown"
    changed = git("status", "--porcelain", "--", "airflow_provider_kwtsms", "benchmarks")
    paths = sorted({line[3:] for line in changed.splitlines() if line.strip()} - {"benchmarks/RESULTS.md"})
    if not paths:
        return commit
    shown = ", ".join(paths[:6]) + (f" and {len(paths) - 6} more" if len(paths) > 6 else "")
    return f"{commit}, with uncommitted changes in {shown}"


def _load() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def table(figures: list[Figure]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [
        ("Figure", "Ours", "Seed client (kwtsms 0.7.40) / other", "Ideal / goal", "Verdict")
    ]
    for f in figures:
        if f.error:
            rows.append((f.name, f"FAILED: {f.error.splitlines()[-1][:60]}", "", "", "MISSES"))
        rows.extend(f.rows)
    return rows


def text_table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: list[tuple[str, ...]]) -> str:
    def esc(cell: str) -> str:
        return cell.replace("|", "\\|")

    lines = ["| " + " | ".join(esc(c) for c in rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows[1:]]
    return "\n".join(lines)


def report(figures: list[Figure], s: Settings, context: dict[str, str], quick: bool, note: str | None) -> str:
    titles = {
        "bulk_send": "Bulk send",
        "prepare": "Preparation",
        "smart_encoding": "Smart encoding",
        "import_cost": "DAG-parse cost",
        "memory": "Memory",
        "alert_latency": "Alert latency",
        "sandbox": "Sandbox capacity",
    }
    out = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`.venv/bin/python benchmarks/run_all.py`); do not edit by hand. "
        f"Every figure is the median of {s.runs} runs"
        + (" (QUICK smoke run: small sizes)" if quick else "")
        + ". The comparison is the official Python client `kwtsms` (PyPI), pointed at the same local "
        "sandbox.",
        "",
        "## Summary",
        "",
        markdown_table(table(figures)),
        "",
        "## Where and when",
        "",
    ]
    out += [f"- **{k}**: {v}" for k, v in context.items()]
    if note:
        out += ["", f"> {note}"]
    for f in figures:
        out += ["", f"## {titles.get(f.name, f.name)}", ""]
        if f.error:
            out += ["```", f.error.strip(), "```"]
        out += f.details
        out.append(f"\n_Took {f.seconds:.0f} s._")
    return "\n".join(out).rstrip() + "\n"


# --- running ----------------------------------------------------------------------------------


def _ensure_bytecode_cache() -> None:
    """Restart with a private bytecode cache when this environment refuses to write one."""
    if os.environ.get("PYTHONDONTWRITEBYTECODE") and not os.environ.get("KWTSMS_BENCH_CHILD"):
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update(PYTHONPYCACHEPREFIX=str(PYCACHE), KWTSMS_BENCH_CHILD="1")
        os.execve(sys.executable, [sys.executable, *sys.argv], env)


def _warm_bytecode() -> None:
    """Import everything the benchmarks time once, untimed, so no sample pays for compiling."""
    code = (
        "import airflow.sdk, requests, phonenumbers, kwtsms, jinja2\n"
        "import airflow.providers.slack.operators.slack\n"
        "import airflow_provider_kwtsms.operators.sms, airflow_provider_kwtsms.sensors.balance\n"
        "import airflow_provider_kwtsms.notifications.kwtsms, airflow_provider_kwtsms.gateway.client\n"
        "import airflow_provider_kwtsms.sandbox.__main__\n"
        "from airflow_provider_kwtsms.phone import prepare_recipients\n"
        "prepare_recipients(['96598765432'])\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(HERE)])}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small sizes, 2 runs, no RESULTS.md")
    parser.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(ORDER)}")
    parser.add_argument("--runs", type=int, default=None, help="runs per figure (default 5; --quick 2)")
    parser.add_argument(
        "--output",
        default=None,
        help="write the report here (default: benchmarks/RESULTS.md for a full run of all)",
    )
    parser.add_argument("--note", default=None, help="a line to add to the report, e.g. about the machine")
    args = parser.parse_args(argv)
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(only) - set(ORDER))
    if unknown:
        parser.error(f"--only got {', '.join(unknown)}: choose from {', '.join(ORDER)}")
    runs = args.runs or (2 if args.quick else 5)
    if runs < 1:
        parser.error(f"--runs is {runs}: give 1 or more (5 or more for publishable medians)")
    _ensure_bytecode_cache()
    settings = Settings.quick(runs) if args.quick else Settings.full(runs)
    output = Path(args.output) if args.output else (None if args.quick or only else RESULTS)

    started = dt.datetime.now(dt.UTC)
    load_before = _load()
    _warm_bytecode()
    figures: dict[str, Figure] = {}
    for name in RUN_ORDER:
        if only and name not in only:
            continue
        print(f"[{dt.datetime.now(dt.UTC):%H:%M:%S}] {name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            with _output_silenced():  # the client's log lines, once Airflow has set logging up
                fig = BENCHES[name](settings)
        except Exception:
            fig = Figure(name, error=traceback.format_exc())
            print(fig.error, file=sys.stderr)
        fig.seconds = time.perf_counter() - t0
        figures[name] = fig
    ordered = [figures[n] for n in ORDER if n in figures]
    finished = dt.datetime.now(dt.UTC)
    context = {
        "date": f"{started:%Y-%m-%d %H:%M} UTC, {(finished - started).total_seconds() / 60:.0f} minutes",
        "command": " ".join(["benchmarks/run_all.py", *(argv if argv is not None else sys.argv[1:])]),
        **machine(),
        "load average (1, 5, 15 min) before / after": f"{load_before} / {_load()}",
        **{name: v for name, v in versions().items()},
        "git commit": git_state(),
        "bytecode": "cached (as after pip install)"
        + (f" in {PYCACHE}" if os.environ.get("PYTHONPYCACHEPREFIX") else ""),
    }
    print(text_table(table(ordered)))
    if output is not None:
        output.write_text(report(ordered, settings, context, args.quick, args.note))
        print(f"\nwritten: {output}")
    return 1 if any(f.error for f in ordered) else 0


if __name__ == "__main__":
    sys.exit(main())
