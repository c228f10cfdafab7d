"""DAG-parse cost: what importing our operator, sensor and notifier modules adds.

Each measurement runs in a fresh interpreter that has already imported ``airflow.sdk`` (as a
DAG file has), then imports the module under test and reports the added wall time and the
added peak RSS. The Slack provider's operator module is measured the same way, beside ours.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

OURS = (
    "airflow_provider_kwtsms.operators.sms",
    "airflow_provider_kwtsms.sensors.balance",
    "airflow_provider_kwtsms.notifications.kwtsms",
)
SLACK = ("airflow.providers.slack.operators.slack",)

_PROBE = r"""
import json, resource, sys, time
import airflow.sdk  # what every DAG file already pays for
before_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
before_modules = set(sys.modules)
start = time.perf_counter()
for name in sys.argv[1:]:
    __import__(name)
elapsed = time.perf_counter() - start
after_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
new = set(sys.modules) - before_modules
heavy = sorted(m for m in ("requests", "phonenumbers", "slack_sdk") if m in new)
print(json.dumps({"seconds": elapsed, "rss_kib": after_rss - before_rss, "new_modules": len(new),
                  "heavy": heavy}))
"""


def measure(modules: tuple[str, ...]) -> dict:
    """One fresh interpreter: the time and memory that importing ``modules`` adds."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, *modules], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def run(repeats: int = 7) -> dict:
    figures = {}
    for label, modules in (("ours (operator+sensor+notifier)", OURS), ("slack operator", SLACK)):
        samples = [measure(modules) for _ in range(repeats)]
        figures[label] = {
            "median_ms": statistics.median(s["seconds"] for s in samples) * 1000,
            "median_rss_kib": statistics.median(s["rss_kib"] for s in samples),
            "new_modules": samples[-1]["new_modules"],
            "heavy_imports": samples[-1]["heavy"],
        }
    return figures


def main() -> None:
    figures = run()
    print(f"{'modules':34} {'import ms':>10} {'RSS KiB':>9} {'new modules':>12}  heavy imports")
    for label, f in figures.items():
        print(
            f"{label:34} {f['median_ms']:10.1f} {f['median_rss_kib']:9.0f} {f['new_modules']:12d}  "
            f"{', '.join(f['heavy_imports']) or '-'}"
        )


if __name__ == "__main__":
    main()
