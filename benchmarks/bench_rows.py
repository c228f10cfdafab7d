"""Per-recipient rows: planning a million rows (time, peak memory), beside the seed client.

Ours: ``send.rows.build_rows_plan`` over N rows ``{"mobile", "message"}`` (numbers in mixed
formats, as benchmarks/bench_prepare.py writes them), with a do-not-send list of 1 % of them, in
two shapes: ``--texts 20`` (a campaign of 20 texts: 200 numbers a request) and every row its own
text (``--texts 0``: one request per row). Also a row template rendered per row (``--template``,
a smaller N: Jinja costs about 10 µs a row). Peak memory is ``tracemalloc``'s peak of the
planning alone (the rows themselves are the caller's and are built before it starts).

The seed client (``kwtsms`` from PyPI) has no per-recipient send: a user loops ``send(number,
text)`` over the rows, one request per row, whatever the texts. Its planning half (its own
``validate_phone_input`` and ``clean_message`` per row, what each ``send`` call does before its
request) is timed over the same N rows; its sending half is timed on a sample of rows against the
local sandbox (rate-limited at 5 requests a second, as kwtsms.com) and extrapolated: N rows are N
requests at 5 a second. Ours sends the grouped plan: its requests at 5 a second.

    .venv/bin/python benchmarks/bench_rows.py [N] [--texts 20] [--template 100000] [--sample 20]

Nothing contacts kwtsms.com. ``run(...)`` returns the figures as a dict.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from airflow_provider_kwtsms.rate.bucket import interval

RATE = 5.0  # the gateway's cap: requests a second (kwtSMS API v4.1)
USER, PASSWORD = "bench_user", "bench_pass"


def make_rows(n: int, texts: int) -> tuple[list[dict], list[str]]:
    """N rows with numbers in mixed formats (bench_prepare's generator, Kuwaiti-weighted) and
    ``texts`` distinct texts (0: every row its own), and a do-not-send list of 1 % of them."""
    from bench_prepare import generate

    numbers = generate(n)
    rows = [
        {
            "mobile": number,
            "message": (
                f"Dear customer, your order {i % texts} ships today."
                if texts
                else f"Dear customer, order {i} ships today."
            ),
        }
        for i, number in enumerate(numbers)
    ]
    return rows, numbers[::100]


def _ours_plan(rows: list[dict], do_not_send: list[str], template: str | None = None) -> dict:
    from airflow_provider_kwtsms.send.planning import PlanOptions
    from airflow_provider_kwtsms.send.rows import build_rows_plan

    # Warm (phonenumbers compiles each country's metadata on first use, jinja2 loads), then time
    # a run, then trace one for its peak (tracemalloc slows what it traces: never the timed run).
    build_rows_plan(rows, PlanOptions(), template=template, do_not_send=do_not_send)
    gc.collect()
    started = time.perf_counter()
    plan = build_rows_plan(rows, PlanOptions(), template=template, do_not_send=do_not_send)
    seconds = time.perf_counter() - started
    del plan
    gc.collect()
    tracemalloc.start()
    plan = build_rows_plan(rows, PlanOptions(), template=template, do_not_send=do_not_send)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    r = plan.recipients
    return {
        "rows": len(rows),
        "plan_s": round(seconds, 2),
        "peak_mb": round(peak / 2**20, 1),
        "texts": plan.text_count,
        "requests": len(plan.batches),
        "send_s_at_rate_5": round(len(plan.batches) * interval(RATE), 1),  # our pacer's spacing
        "to_send": len(r.valid),
        "invalid": len(r.invalid),
        "duplicates": len(r.duplicates),
        "suppressed": len(r.suppressed),
        "estimate": plan.estimate,
    }


def _seed_plan(rows: list[dict]) -> dict:
    """What the seed client's ``send`` does before each request, once per row (its own code)."""
    from kwtsms._core import clean_message, validate_phone_input

    started = time.perf_counter()
    valid = 0
    for row in rows:
        ok, _, _ = validate_phone_input(str(row["mobile"]))
        clean_message(row["message"])
        valid += ok
    seconds = time.perf_counter() - started
    return {"rows": len(rows), "plan_s": round(seconds, 2), "valid": valid, "requests": valid}


def _seed_send_sample(rows: list[dict]) -> dict:
    """The seed client sending ``rows`` one text at a time (one ``send`` per row) to the sandbox
    at the gateway's rate; it paces nothing itself, so the loop waits our pacer's interval between
    calls (less would be refused by the firewall)."""
    import kwtsms._core as seed_core
    from kwtsms import KwtSMS

    from airflow_provider_kwtsms.sandbox import Sandbox

    sandbox = Sandbox(
        username=USER,
        password=PASSWORD,
        balance=10**9,
        queue_size=10**9,
        drain_rate=10**6,
        duplicate_window=0.0,
    ).start()
    saved = seed_core.BASE_URL
    seed_core.BASE_URL = sandbox.url + "/API/"
    try:
        client = KwtSMS(USER, PASSWORD, sender_id="KWT-SMS", test_mode=True, log_file="")
        started = time.perf_counter()
        ok = 0
        for row in rows:
            turn = time.perf_counter()
            with contextlib.suppress(OSError):  # a reset: counted as not sent, as a user would see it
                ok += client.send(row["mobile"], row["message"]).get("result") == "OK"
            # our pacer's spacing at rate 5 (rate.bucket.interval: six starts in 1.1 s at least):
            # at exactly 5 a second a late request lands a sixth in the firewall's second
            time.sleep(max(0.0, interval(RATE) - (time.perf_counter() - turn)))
        seconds = time.perf_counter() - started
    finally:
        seed_core.BASE_URL = saved
        sandbox.stop()
    return {
        "sample_rows": len(rows),
        "sample_s": round(seconds, 2),
        "ok": ok,
        "s_per_row": round(seconds / len(rows), 3),
    }


def _show(name: str, figures: dict) -> dict:
    print(name, json.dumps(figures), flush=True)  # as it comes: a long run keeps what it measured
    return figures


def run(n: int = 1_000_000, texts: int = 20, template_rows: int = 100_000, sample: int = 20) -> dict:
    rows, do_not_send = make_rows(n, texts)
    out: dict = {"n": n}
    out["ours_campaign"] = _show("ours_campaign", _ours_plan(rows, do_not_send))
    personal, _ = make_rows(n, 0)
    out["ours_personal"] = _show("ours_personal", _ours_plan(personal, do_not_send))
    del personal
    if template_rows:
        templated = [
            {"mobile": r["mobile"], "name": f"Customer {i}", "order": i}
            for i, r in enumerate(rows[:template_rows])
        ]
        out["ours_template"] = _ours_plan(
            templated, do_not_send, "Dear {{ name }}, order {{ order }} ships today."
        )
    out["seed_plan"] = _show("seed_plan", _seed_plan(rows))
    # Kuwaiti numbers as digits (the sandbox covers Kuwait only): each one request that goes through
    kuwaiti = (
        r for r in rows if r["mobile"].isdigit() and r["mobile"].startswith("965") and len(r["mobile"]) == 11
    )
    sent = _seed_send_sample([next(kuwaiti) for _ in range(sample)])
    sent["extrapolated_s_for_n"] = round(out["seed_plan"]["requests"] * sent["s_per_row"], 0)
    out["seed_send"] = sent
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("n", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--texts", type=int, default=20)
    parser.add_argument(
        "--template", type=int, default=100_000, help="rows for the template figure (0: none)"
    )
    parser.add_argument("--sample", type=int, default=20, help="rows the seed client sends to the sandbox")
    args = parser.parse_args()
    print(json.dumps(run(args.n, args.texts, args.template, args.sample), indent=2))


if __name__ == "__main__":
    main()
