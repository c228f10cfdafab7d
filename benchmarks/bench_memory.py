"""Memory: peak RSS of preparing and of sending to N numbers, and the growth per number.

    .venv/bin/python benchmarks/bench_memory.py [--sizes 100000,1000000] [--repeats 5]

Every measurement runs in a fresh child interpreter, so nothing measured before (or the
sandbox) inflates it. The child imports what it needs, warms the phone metadata with one
small call, builds N distinct Kuwaiti mobiles in mixed formats ("+965 5xxx xxxx", "00965…",
Arabic-Indic digits, …), then either

- ``prepare``: ``prepare_recipients(inputs)`` (normalise, validate, deduplicate), or
- ``send``: ``KwtSMSClient.send(inputs, …)`` (prepare, plan and send every batch of 200) to a
  sandbox in its own process with the rate cap and the firewall off, the client's pacing set out
  of the way, or
- ``seed-prepare``: the official client's own preparation loop (``validate_phone_input`` per
  input, keeping valid numbers and invalid inputs with their errors, as ``KwtSMS.send`` does),

and reports its peak RSS (VmHWM). "Growth" is the peak minus the RSS once the inputs exist, so it is
what preparing/sending adds on top of the caller's own list. Bytes per number is the slope of
the growth between the smallest and the largest size, which cancels every fixed cost.

``run(...)`` returns the figures as a dict for benchmarks/run_all.py.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from sandbox_process import repo_env, start_sandbox  # benchmarks/ is the script's folder

REPO = Path(__file__).resolve().parents[1]
USER, PASSWORD = "bench_user", "bench_pass"
MODES = ("prepare", "send", "seed-prepare")
ARABIC_DIGITS = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


# --- the child ------------------------------------------------------------------------------


def _inputs(count: int) -> list[str]:
    """``count`` distinct valid Kuwaiti mobiles, written six different ways."""
    out = []
    for i in range(count):
        local = str(50_000_000 + i)  # 5xxxxxxx: a Kuwaiti mobile range
        style = i % 6
        if style == 0:
            out.append("965" + local)
        elif style == 1:
            out.append(f"+965 {local[:4]} {local[4:]}")
        elif style == 2:
            out.append("00965" + local)
        elif style == 3:
            out.append(f"+965-{local[:4]}-{local[4:]}")
        elif style == 4:
            out.append(("+965" + local).translate(ARABIC_DIGITS))
        else:
            out.append(f" (965) {local} ")
    return out


def _kib() -> tuple[int, int]:
    """(current RSS, peak RSS) of this process in KiB.

    From /proc/self/status (VmRSS, VmHWM), not ``ru_maxrss``: Linux carries the parent's peak
    across fork and exec into ``ru_maxrss``, so a child of a big parent would report the parent's.
    """
    fields = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


class _Unpaced:
    """A client ``pacer=`` that never waits: for measuring our own cost, never for a real gateway."""

    def acquire(self) -> float:
        return 0.0

    def pause(self, seconds: float) -> None:
        return None


def _child(mode: str, count: int, url: str | None) -> dict:
    if mode == "seed-prepare":
        from kwtsms._core import validate_phone_input

        validate_phone_input("96598765432")
    else:
        import phonenumbers  # noqa: F401  (loaded lazily by phone.py; load it before the baseline)
        import requests  # noqa: F401

        from airflow_provider_kwtsms.gateway.client import KwtSMSClient
        from airflow_provider_kwtsms.phone import prepare_recipients

        prepare_recipients(["96598765432", "+44 7911 123456"])  # compiles the metadata it uses
    after_imports, _ = _kib()
    inputs = _inputs(count)
    after_inputs, _ = _kib()
    started = time.perf_counter()
    if mode == "prepare":
        recipients = prepare_recipients(inputs)
        accounted = recipients.total_inputs
        sent = 0
    elif mode == "send":
        # Memory is measured here, not the pace: an explicit pacer that never waits takes the
        # client's pacing (at most 5 requests a second) out of the measurement. Loopback only, to a
        # sandbox started with its caps off.
        with KwtSMSClient(USER, PASSWORD, base_url=url, test_mode=True, pacer=_Unpaced()) as client:
            result = client.send(inputs, "Memory benchmark")
        accounted = result.plan.recipients.total_inputs
        sent = result.numbers_sent
        if not result.ok:
            raise SystemExit(f"the send did not complete: {result.first_error}")
    else:
        valid: list[str] = []
        invalid: list[dict] = []
        for raw in inputs:
            ok, error, normalized = validate_phone_input(str(raw))
            if ok:
                valid.append(normalized)
            else:
                invalid.append({"input": str(raw), "error": error})
        accounted = len(valid) + len(invalid)
        sent = 0
    seconds = time.perf_counter() - started
    _, peak = _kib()
    return {
        "mode": mode,
        "numbers": count,
        "after_imports_kib": after_imports,
        "after_inputs_kib": after_inputs,
        "peak_kib": peak,
        "growth_kib": peak - after_inputs,
        "accounted": accounted,
        "sent": sent,
        "seconds": seconds,
    }


# --- the parent -----------------------------------------------------------------------------


def measure(mode: str, count: int) -> dict:
    """One fresh child interpreter: prepare, send or seed-prepare ``count`` numbers."""
    sandbox, url = start_sandbox("--username", USER, "--password", PASSWORD) if mode == "send" else (None, "")
    try:
        done = subprocess.run(
            [sys.executable, __file__, "--child", mode, str(count), url],
            capture_output=True,
            text=True,
            env=repo_env(),
            timeout=3600,
        )
    finally:
        if sandbox is not None:
            sandbox.terminate()
            sandbox.wait(timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"memory child {mode} {count} failed: {done.stderr.strip()[-2000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    if figures["accounted"] != count or (mode == "send" and figures["sent"] != count):
        raise RuntimeError(
            f"memory child {mode} {count}: accounted {figures['accounted']}, sent {figures['sent']}"
        )
    return figures


def run(
    sizes: tuple[int, ...] = (100_000, 1_000_000), repeats: int = 5, modes: tuple[str, ...] = MODES
) -> dict:
    """Median figures per mode and size, and the growth per number between the sizes."""
    samples: dict[str, dict[int, list[dict]]] = {m: {n: [] for n in sizes} for m in modes}
    for _ in range(repeats):  # interleaved, so that load from other processes hits all alike
        for mode in modes:
            for count in sizes:
                samples[mode][count].append(measure(mode, count))
    figures: dict = {"sizes": list(sizes), "repeats": repeats, "modes": {}}
    for mode in modes:
        per_size = {}
        for count in sizes:
            runs = samples[mode][count]
            per_size[count] = {
                key: statistics.median(r[key] for r in runs)
                for key in ("after_imports_kib", "after_inputs_kib", "peak_kib", "growth_kib", "seconds")
            }
            per_size[count]["peak_kib_samples"] = [r["peak_kib"] for r in runs]
        small, big = min(sizes), max(sizes)
        slope = (
            (per_size[big]["growth_kib"] - per_size[small]["growth_kib"]) * 1024 / (big - small)
            if big > small
            else per_size[big]["growth_kib"] * 1024 / big
        )
        inputs_slope = (
            (per_size[big]["after_inputs_kib"] - per_size[small]["after_inputs_kib"]) * 1024 / (big - small)
            if big > small
            else None
        )
        figures["modes"][mode] = {
            "sizes": per_size,
            "bytes_per_number": slope,
            "input_bytes_per_number": inputs_slope,
        }
    return figures


def _table(figures: dict) -> str:
    lines = [
        f"{'mode':13} {'numbers':>10} {'imports MiB':>11} {'+inputs MiB':>11} {'peak MiB':>9} "
        f"{'growth MiB':>10} {'seconds':>8}"
    ]
    for mode, f in figures["modes"].items():
        for count, s in f["sizes"].items():
            lines.append(
                f"{mode:13} {count:>10,} {s['after_imports_kib'] / 1024:>11.1f} "
                f"{s['after_inputs_kib'] / 1024:>11.1f} {s['peak_kib'] / 1024:>9.1f} "
                f"{s['growth_kib'] / 1024:>10.1f} {s['seconds']:>8.2f}"
            )
        lines.append(
            f"{mode:13} growth per number: {f['bytes_per_number']:.0f} bytes "
            f"(the inputs themselves: {f['input_bytes_per_number'] or 0:.0f} bytes/number)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        sys.path.insert(0, str(REPO))
        mode, count, url = argv[1], int(argv[2]), (argv[3] if len(argv) > 3 else "")
        print(json.dumps(_child(mode, count, url or None)))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated numbers of numbers")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated: " + ", ".join(MODES))
    args = parser.parse_args(argv)
    sizes = tuple(int(s) for s in args.sizes.split(","))
    print(_table(run(sizes, args.repeats, tuple(args.modes.split(",")))))


if __name__ == "__main__":
    main()
