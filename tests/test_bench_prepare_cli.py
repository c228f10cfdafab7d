"""benchmarks/bench_prepare.py's command line: --help answers, a bad count is named, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_prepare.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def test_help_describes_the_arguments():
    done = _run("--help")
    assert done.returncode == 0, done.stderr
    assert "usage: bench_prepare.py [-h] [N] [REPEATS]" in " ".join(done.stdout.split())
    assert "inputs to generate" in done.stdout and "timed runs" in done.stdout


def test_a_count_that_is_not_a_number_is_named_without_a_traceback():
    done = _run("many")
    assert done.returncode == 2
    assert "argument N: 'many' is not a whole number" in done.stderr
    assert "Traceback" not in done.stderr
    done = _run("10", "0")
    assert done.returncode == 2
    assert "argument REPEATS: '0' must be at least 1" in done.stderr
