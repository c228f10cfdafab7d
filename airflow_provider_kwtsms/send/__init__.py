"""A send: its plan (who, what, which batches, what it costs), the one batch loop, the channel
seam, results and send windows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_kwtsms._lazy import lazy_exports

if TYPE_CHECKING:
    from airflow_provider_kwtsms.send.batch_loop import run_batches
    from airflow_provider_kwtsms.send.channel import Channel
    from airflow_provider_kwtsms.send.planning import build_plan, split_batches
    from airflow_provider_kwtsms.send.results import Balance, BatchResult, SendPlan, SendResult
    from airflow_provider_kwtsms.send.window import SendWindow

_PUBLIC = {
    "build_plan": "planning",
    "split_batches": "planning",
    "run_batches": "batch_loop",
    "Channel": "channel",
    "SendPlan": "results",
    "SendResult": "results",
    "BatchResult": "results",
    "Balance": "results",
    "SendWindow": "window",
}
__all__ = [
    "Balance",
    "BatchResult",
    "Channel",
    "SendPlan",
    "SendResult",
    "SendWindow",
    "build_plan",
    "run_batches",
    "split_batches",
]
__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
