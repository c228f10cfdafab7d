"""The gateway's firewall as its v4.1 documentation states it: over 5 requests a second, blocked.

One job: judge each API request by its client address on the sandbox clock, and keep the blocks
and the figures. "You can send 5 requests per second, maximum. If you exceed this limit, your IP
will be blocked automatically." So a request that makes more than ``limit`` requests begun within
any one second (a sliding window, every API path, authenticated or not, reads included) blocks
its address for ``block_seconds``; while blocked, every request from that address is refused.
The HTTP handler asks ``admit`` before it reads a request's body and refuses with a TCP reset.

The figures hold over the sandbox's life (until ``reset``), also with the firewall off: for each
address, its requests, its refused requests, its blocks and the largest number of requests begun
within any one second, refused ones included (what the client did, not what got through).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

WINDOW = 1.0  # seconds: "5 requests per second"
DEFAULT_LIMIT = 5
DEFAULT_BLOCK_SECONDS = 600.0  # the real block lasts until support lifts it; 10 minutes here
# Starts exactly 1/limit apart must never fall in one window. At today's epoch a float clock is
# exact to about 0.24 µs, so steps of 0.2 s can add up to 0.9999998 s: a microsecond absorbs that.
_ROUNDING = 1e-6


@dataclass
class _Client:
    """One address: its recent request starts, its block and its figures."""

    counted: deque[float] = field(default_factory=deque)  # starts the rule counts (not refused)
    seen: deque[float] = field(default_factory=deque)  # every start in the last window (figure)
    requests: int = 0
    refused: int = 0
    blocks: int = 0
    max_in_one_second: int = 0
    blocked_since: float | None = None
    blocked_until: float | None = None


def _trim(starts: deque[float], now: float) -> None:
    """Forget the starts that are a whole window (or more) before ``now``."""
    while starts and now - starts[0] >= WINDOW - _ROUNDING:
        starts.popleft()


class Firewall:
    """Per-address blocks on a sliding one-second window; thread-safe, driven by ``clock``."""

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        enabled: bool = True,
        limit: int = DEFAULT_LIMIT,
        block_seconds: float = DEFAULT_BLOCK_SECONDS,
    ) -> None:
        self._clock = clock
        self.enabled = enabled
        self.limit = limit
        self.block_seconds = float(block_seconds)
        self._lock = threading.Lock()
        self._clients: dict[str, _Client] = {}

    def admit(self, address: str) -> bool:
        """Count one request from ``address`` begun now: True to let it through, False if refused.

        A refused request is not counted by the rule (the firewall stops it first) and does not
        make the block longer; when the block ends, the address starts with an empty window.
        """
        with self._lock:
            now = self._clock()
            client = self._clients.setdefault(address, _Client())
            client.requests += 1
            _trim(client.seen, now)
            client.seen.append(now)
            client.max_in_one_second = max(client.max_in_one_second, len(client.seen))
            if client.blocked_until is not None:
                if now < client.blocked_until:
                    client.refused += 1
                    return False
                client.blocked_since = client.blocked_until = None
            if not self.enabled:
                return True
            _trim(client.counted, now)
            client.counted.append(now)
            if len(client.counted) <= self.limit:
                return True
            client.blocks += 1
            client.refused += 1
            client.blocked_since, client.blocked_until = now, now + self.block_seconds
            client.counted.clear()
            return False

    def unblock(self, address: str | None = None) -> list[str]:
        """Lift the block of ``address`` (every block when None); the addresses lifted."""
        with self._lock:
            now = self._clock()
            lifted = []
            for name, client in self._clients.items():
                if address is not None and name != address:
                    continue
                if client.blocked_until is not None and now < client.blocked_until:
                    lifted.append(name)
                client.blocked_since = client.blocked_until = None
                client.counted.clear()
            return lifted

    def blocked(self) -> list[dict[str, Any]]:
        """The blocks in force now: address, since, until, seconds_left (sandbox clock)."""
        with self._lock:
            now = self._clock()
            return [
                {
                    "address": name,
                    "since": client.blocked_since,
                    "until": client.blocked_until,
                    "seconds_left": client.blocked_until - now,
                }
                for name, client in self._clients.items()
                if client.blocked_until is not None and now < client.blocked_until
            ]

    def state(self) -> dict[str, Any]:
        """The settings, the blocks in force and each address's figures (JSON-ready)."""
        blocked = self.blocked()
        with self._lock:
            clients = {
                name: {
                    "requests": client.requests,
                    "refused": client.refused,
                    "blocks": client.blocks,
                    "max_in_one_second": client.max_in_one_second,
                }
                for name, client in self._clients.items()
            }
        return {
            "enabled": self.enabled,
            "limit": self.limit,
            "window_seconds": WINDOW,
            "block_seconds": self.block_seconds,
            "now": self._clock(),
            "blocked": blocked,
            "blocks": sum(c["blocks"] for c in clients.values()),
            "max_in_one_second": max((c["max_in_one_second"] for c in clients.values()), default=0),
            "clients": clients,
        }

    def reset(self) -> None:
        """No blocks and no figures: the sandbox starts over."""
        with self._lock:
            self._clients.clear()
