"""``python -m airflow_provider_kwtsms.sandbox`` / ``kwtsms-sandbox``: run the local gateway."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from airflow_provider_kwtsms.constants import DEFAULT_MAX_PAGES
from airflow_provider_kwtsms.sandbox.firewall import DEFAULT_BLOCK_SECONDS, DEFAULT_LIMIT
from airflow_provider_kwtsms.sandbox.server import (
    DEFAULT_PORT,
    DEFAULT_RATE_TOLERANCE,
    STRICT_RATE_TOLERANCE,
    Sandbox,
)
from airflow_provider_kwtsms.sandbox.smtp import DEFAULT_SMTP_PORT


def _csv(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _rate(value: str) -> float | None:
    rate = float(value)
    return rate if rate > 0 else None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kwtsms-sandbox",
        description="A local kwtSMS gateway (JSON API, legacy GET API, inbox page) for offline "
        "development and tests. Nothing leaves this machine.",
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    add("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 takes a free one)")
    add("--username", default="sandbox_user", help="API username (default sandbox_user)")
    add("--password", default="sandbox_pass", help="API password (default sandbox_pass)")
    add("--balance", type=int, default=1000, help="available credits (default 1000)")
    add("--purchased", type=int, default=None, help="purchased credits (default: same as --balance)")
    add("--senders", type=_csv, default=["KWT-SMS"], help="comma-separated sender IDs (default KWT-SMS)")
    add("--coverage", type=_csv, default=["965"], help="comma-separated country prefixes (default 965)")
    add(
        "--no-firewall",
        action="store_true",
        help=f"no firewall (default: on, as the gateway's: more than {DEFAULT_LIMIT} requests begun "
        "within one second from one address blocks it, each refused with a TCP reset)",
    )
    add(
        "--firewall-limit",
        type=int,
        default=DEFAULT_LIMIT,
        help=f"requests allowed within any one second per address (default {DEFAULT_LIMIT})",
    )
    add(
        "--block-seconds",
        type=float,
        default=DEFAULT_BLOCK_SECONDS,
        help=f"how long a block lasts, in seconds (default {DEFAULT_BLOCK_SECONDS:g})",
    )
    add(
        "--rate",
        type=_rate,
        default=None,
        help="a test tool, not the gateway: HTTP 429 above this many requests per second per "
        "account (default 0: off)",
    )
    add(
        "--rate-tolerance",
        type=float,
        default=DEFAULT_RATE_TOLERANCE,
        help=f"requests let through early, in intervals: bursts of N+1 pass (default "
        f"{DEFAULT_RATE_TOLERANCE:g}; {STRICT_RATE_TOLERANCE:g} is strict: starts half an interval apart)",
    )
    add(
        "--max-pages",
        type=int,
        default=DEFAULT_MAX_PAGES,
        help=f"page limit before ERR012 (default {DEFAULT_MAX_PAGES}, as documented in API v4.1)",
    )
    add("--queue-size", type=int, default=1000, help="send queue size before ERR013 (default 1000)")
    add("--drain-rate", type=float, default=10.0, help="messages/s leaving the queue (default 10)")
    add("--deliver-after", type=float, default=5.0, help="seconds from sent to delivered (default 5)")
    add("--latency", type=float, default=0.0, help="seconds added to every API answer (default 0)")
    add("--test-charges", action="store_true", help="test=1 sends charge credits (default: they do not)")
    add(
        "--error-status",
        choices=("200", "4xx"),
        default="200",
        help="HTTP status of error bodies: 200 like the JSON API (default) or 4xx by code",
    )
    add(
        "--smtp-port",
        type=int,
        default=None,
        help=f"port of the SMTP listener for e-mails to sms@kwtsms.com (default {DEFAULT_SMTP_PORT}, "
        "or a free one when --port is 0; 0 takes a free one)",
    )
    add("--no-smtp", action="store_true", help="no SMTP listener")
    add(
        "--no-doc-account",
        action="store_true",
        help="leave out the 2009 document's sample account (myuser/mypass, 181/377, KWT-MESSAGE)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.smtp_port is None:
        args.smtp_port = 0 if args.port == 0 else DEFAULT_SMTP_PORT
    try:
        sandbox = Sandbox(
            host=args.host,
            port=args.port,
            username=args.username,
            password=args.password,
            balance=args.balance,
            purchased=args.purchased,
            senders=args.senders,
            coverage=args.coverage,
            rate=args.rate,
            rate_tolerance=args.rate_tolerance,
            max_pages=args.max_pages,
            queue_size=args.queue_size,
            drain_rate=args.drain_rate,
            deliver_after=args.deliver_after,
            latency=args.latency,
            test_charges=args.test_charges,
            error_status=args.error_status,
            doc_account=not args.no_doc_account,
            smtp_port=None if args.no_smtp else args.smtp_port,
            firewall=not args.no_firewall,
            firewall_limit=args.firewall_limit,
            block_seconds=args.block_seconds,
        )
    except ValueError as exc:  # an option out of range (NaN, infinity, negative ...): say which
        print(f"kwtsms-sandbox: {exc}", file=sys.stderr)
        return 2
    # Before the "listening" line: whoever starts the sandbox may stop it as soon as it reads that.
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        sandbox.start()
    except OSError as exc:
        print(
            f"kwtsms-sandbox: cannot listen on {args.host} (port {args.port}, SMTP port "
            f"{args.smtp_port}): {exc}. Choose another --port or --smtp-port (0 takes a free one), "
            "or --no-smtp.",
            file=sys.stderr,
        )
        return 2
    print(f"kwtSMS sandbox listening on {sandbox.url}  (inbox: {sandbox.url}/)", flush=True)
    if not args.no_smtp:
        print(f"  SMTP: e-mails to sms@kwtsms.com at {args.host}:{sandbox.smtp_port}", flush=True)
    print(
        f"  account {args.username!r}, {args.balance} credits, senders {', '.join(args.senders)}; "
        "Ctrl-C to stop",
        flush=True,
    )
    if args.no_firewall:
        print("  firewall off", flush=True)
    else:
        print(
            f"  firewall on: over {args.firewall_limit} requests a second from one address blocks it "
            f"for {args.block_seconds:g} s (inbox and {sandbox.url}/sandbox/firewall show it)",
            flush=True,
        )
    try:
        # Short waits: a signal caught by a server thread runs its handler in the main thread only
        # when that thread next runs Python; an endless wait could miss it and never stop.
        while not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
