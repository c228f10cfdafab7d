"""The courier: a detached process that sends a key's digest when its quiet period ends.

The first alert counted in a period takes the courier's lease (``alerts.guard``) and starts one
(:func:`start_courier`): ``python -m airflow_provider_kwtsms.alerts.courier`` in a session of its
own, so it outlives the callback's process (a task process, a DAG processor's child, a Celery
worker's fork). It reads what it needs as JSON on its standard input (never in its arguments or
environment: the API password is in it), sleeps until the period's end, claims the digest
atomically (``StormGuard.on_due``: if an alert already sent it, there is nothing to claim), sends
it through the account's client and pacer, and keeps watching while the storm goes on (each
digest opens the next period); a period that ends quiet ends the courier. It imports no Airflow:
it starts in a fraction of a second and holds little memory while it sleeps.

Its log (no secret in it) goes to ``courier.log`` in the machine's alert folder.

What if it dies: the counts stay in the store. Its lease lapses (``COURIER_GRACE`` after the
period's end) and the next alert counted for the key starts another; an alert that comes after
the period's end sends the digest itself. Until one of these, the digest waits: see
docs/notifier.md.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from airflow_provider_kwtsms.alerts.storm import StormGuard

log = logging.getLogger(__name__)

LATE = 0.5  # seconds after the period's end the courier looks (clocks of two machines may differ)
MAX_STORE_FAILURES = 20  # consecutive failures of every store before the courier gives up
MAX_SEND_FAILURES = 3  # digests in a row the gateway refused: the counts wait for the next alert


def start_courier(spec: dict[str, Any], log_dir: str | None = None) -> bool:
    """Start a detached courier for ``spec`` (see :func:`run`); False (and a warning) when no
    process could be started: the digest is then sent by the next alert that looks."""
    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    try:
        target = open(os.path.join(log_dir, "courier.log"), "ab") if log_dir else subprocess.DEVNULL  # noqa: SIM115
        try:
            child = subprocess.Popen(
                [sys.executable, "-m", "airflow_provider_kwtsms.alerts.courier"],
                stdin=subprocess.PIPE,
                stdout=target,
                stderr=target,
                env=env,
                start_new_session=True,
                close_fds=True,
            )
        finally:
            if not isinstance(target, int):
                target.close()
        assert child.stdin is not None
        with child.stdin:
            child.stdin.write(json.dumps(spec).encode("utf-8"))
    except (OSError, ValueError) as exc:
        log.warning(
            "kwtSMS storm guard: could not start the digest's courier (%s); the next alert of this "
            "DAG and target sends the digest instead",
            exc,
        )
        return False
    return True


def _client(spec: dict[str, Any]) -> Any:
    from airflow_provider_kwtsms.gateway.client import KwtSMSClient
    from airflow_provider_kwtsms.rate.shared import shared_bucket

    account = spec["client"]
    kwargs = dict(account["kwargs"])
    if isinstance(kwargs.get("timeout"), list):
        kwargs["timeout"] = tuple(kwargs["timeout"])
    pacer = None
    if account.get("rate_store"):  # the account's shared rate, as the hook builds it
        pacer = shared_bucket(
            account["rate_store"],
            username=account["username"],
            base_url=kwargs["base_url"],
            rate=kwargs["rate"],
            password=account.get("rate_store_password"),
        )
    return KwtSMSClient(account["username"], account["password"], **kwargs, pacer=pacer)


def _as_is(text: str) -> str:
    return text


def guard_from(spec: dict[str, Any]) -> StormGuard:
    """The StormGuard the spawning notifier used, from its spec."""
    from airflow_provider_kwtsms.alerts.store import (
        AlertStore,
        FileAlertStore,
        GuardedStore,
        open_alert_store,
    )
    from airflow_provider_kwtsms.rate.store_url import describe, parse_store_url
    from airflow_provider_kwtsms.text.message import clean_message, trim_to_pages

    shared: AlertStore | None = None
    where, scrub = "the machine's folder", _as_is
    store = spec.get("store")
    if store:
        parsed = parse_store_url(store["url"], password=store.get("password"))
        shared = open_alert_store(parsed)
        where, scrub = describe(store["url"]), parsed.scrub
    folder = spec.get("alert_dir")
    guarded = GuardedStore(shared, where=where, machine=lambda: FileAlertStore(folder), scrub=scrub)
    title, pages = spec.get("title"), int(spec.get("max_pages") or 1)

    def render(text: str) -> str:
        return trim_to_pages(clean_message(f"{title}: {text}" if title else text), pages)

    return StormGuard(
        guarded,
        scope=spec["scope"],
        name=spec["name"],
        quiet=float(spec["quiet"]),
        daily_cap=spec.get("daily_cap"),
        zone=spec.get("zone") or "Asia/Kuwait",
        render=render,
    )


def run(
    spec: dict[str, Any],
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] | None = None,
    client: Any = None,
) -> int:
    """Watch the spec's targets until each is idle; returns the number of digests sent.

    ``spec``: ``scope``, ``name``, ``quiet``, ``daily_cap``, ``zone``, ``title``, ``max_pages``,
    ``targets`` ({number: first wake time}), ``store`` (``url``, ``password``; or None),
    ``alert_dir``, ``client`` (``username``, ``password``, ``kwargs``, ``rate_store``,
    ``rate_store_password``) and ``plan`` (the send's sender, test, default_country, smart_encoding).
    """
    guard = guard_from(spec)
    if clock is not None:
        guard.clock = clock
    wake: dict[str, float] = {str(k): float(v) for k, v in spec["targets"].items()}
    sent = failures = refused = 0
    channel = client
    while wake:
        target = min(wake, key=wake.__getitem__)
        delay = wake[target] + LATE - guard.clock()
        if delay > 0:
            sleep(delay)
        try:
            decision = guard.on_due(target)
        except Exception as exc:  # the store: try again shortly, then give up (the backstop sends)
            failures += 1
            log.warning("courier: the store failed (%s); trying again", type(exc).__name__)
            if failures >= MAX_STORE_FAILURES:
                log.error("courier: the store keeps failing; the next alert of the key sends the digest")
                return sent
            wake[target] = guard.clock() + 3.0
            continue
        failures = 0
        out = decision.outgoing
        if out is not None and out.text is not None:
            try:
                channel = channel or _client(spec)
                plan = spec.get("plan") or {}
                result = channel.send(out.target, out.text, channel.plan_options(**plan))
                result.raise_for_status()
            except Exception as exc:
                log.warning("courier: the digest to %s was not sent (%s); counted again", out.target, exc)
                with contextlib.suppress(Exception):
                    guard.not_sent(out)
                refused += 1
                if refused >= MAX_SEND_FAILURES:
                    log.error("courier: the gateway keeps refusing; the next alert of the key sends it")
                    return sent
            else:
                sent += 1
                refused = 0
                log.info("courier: digest sent to %s: %s", out.target, out.text)
                with contextlib.suppress(Exception):
                    guard.sent(out, float(result.points_charged))
        if decision.courier_at is None or decision.action == "idle":
            del wake[target]
        else:
            wake[target] = decision.courier_at
    return sent


def main() -> int:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s courier[%(process)d] %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    spec = json.loads(sys.stdin.buffer.read(1 << 20) or b"{}")
    sys.stdin.close()
    try:
        count = run(spec)
    except Exception:
        log.exception("courier: stopped by an error")
        return 1
    log.info("courier: done, %d digest(s) sent", count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
