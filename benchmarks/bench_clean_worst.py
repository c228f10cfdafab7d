"""clean_message and contains_html on the worst inputs found for them, up to 1 MB.

Each input doubles from 16 KB to 1 MB; an input stops growing once one size takes longer than
--budget seconds (a quadratic scan would otherwise run for hours), and the 1 MB figure is then
extrapolated from the growth between the last two sizes measured (marked "~").

    .venv/bin/python benchmarks/bench_clean_worst.py [--budget SECONDS] [--repeats N]

Every figure is the best of --repeats runs (default 3).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from airflow_provider_kwtsms.text.message import clean_message, contains_html

MEGABYTE = 1 << 20


def repeated(unit: str, size: int) -> str:
    """``unit`` repeated to exactly ``size`` characters."""
    return (unit * (size // len(unit) + 1))[:size]


INPUTS: dict[str, Callable[[int], str]] = {
    '"<!--" repeated': lambda n: repeated("<!--", n),
    '"<!--<-->" repeated': lambda n: repeated("<!--<-->", n),
    '"<!---->" repeated': lambda n: repeated("<!---->", n),
    '"<br>" repeated': lambda n: repeated("<br>", n),
    '"<b>x" repeated': lambda n: repeated("<b>x", n),
    '"<>" repeated': lambda n: repeated("<>", n),
    '"<a " repeated': lambda n: repeated("<a ", n),
    '"<" * k + "b>" * k (nested)': lambda n: "<" * (n // 3) + "b>" * (n // 3),
    '"<a " + "x" * n': lambda n: "<a " + "x" * n,
    "plain text, one tag per line": lambda n: repeated("Your code is <b>123456</b>.<br>\n", n),
}


def best_seconds(function: Callable[[str], object], text: str, repeats: int) -> float:
    """The fastest of ``repeats`` calls of ``function(text)``, in seconds."""
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        function(text)
        best = min(best, time.perf_counter() - start)
    return best


def measure(function: Callable[[str], object], make: Callable[[int], str], budget: float, repeats: int):
    """(seconds at 1 MB, whether extrapolated, the sizes measured as (bytes, seconds))."""
    points: list[tuple[int, float]] = []
    size = 16 * 1024
    while size <= MEGABYTE:
        seconds = best_seconds(function, make(size), repeats if not points or points[-1][1] < 1 else 1)
        points.append((size, seconds))
        if size == MEGABYTE:
            return seconds, False, points
        if seconds > budget and len(points) >= 2:  # two sizes are needed to extrapolate
            break
        size *= 2
    (n1, t1), (n2, t2) = points[-2], points[-1]
    exponent = math.log(max(t2, 1e-9) / max(t1, 1e-9)) / math.log(n2 / n1)
    return t2 * (MEGABYTE / n2) ** exponent, True, points


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--budget", type=float, default=30.0, help="stop growing an input past this (s)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure, the best is kept")
    args = parser.parse_args()
    width = max(map(len, INPUTS))
    print(f"{'input (1 MB)':<{width}}  {'clean_message':>14}  {'contains_html':>14}")
    for name, make in INPUTS.items():
        cells = []
        for function in (clean_message, contains_html):
            seconds, guessed, _ = measure(function, make, args.budget, args.repeats)
            cells.append(f"{'~' if guessed else ''}{seconds:.3f} s")
        print(f"{name:<{width}}  {cells[0]:>14}  {cells[1]:>14}")


if __name__ == "__main__":
    main()
