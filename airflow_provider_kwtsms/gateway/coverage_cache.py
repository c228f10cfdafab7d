"""The account's coverage list, kept for a while in a small file every process of the machine shares.

Requests are the scarce resource (5 a second per IP at most), and the list changes when a person
changes the account, not between two sends: one read per account and gateway per
``COVERAGE_TTL`` serves every task, alert and worker process of the machine. The file lives under
the system temporary folder, named after a hash of the username and the gateway's address (never
the password). Its content is untrusted (any local user may have written it): a file that is not
exactly what ``save`` writes, or is older than the TTL or dated in the future, is ignored.

A cached list only ever lets batches through: the batch loop refuses a batch for its countries
only on a list the client has read itself (``KwtSMSClient.covered_prefixes``), so a country added
to the account within the hour is never refused on an old list. No Airflow import here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from airflow_provider_kwtsms.constants import COVERAGE_TTL

logger = logging.getLogger("airflow_provider_kwtsms.gateway.coverage_cache")

FORMAT = 1
MAX_FILE_BYTES = 16_384  # ~2,000 prefixes of up to 4 digits; the gateway lists a few dozen
MAX_PREFIXES = 1_000
_FUTURE_SLACK = 60.0  # seconds a file may be dated ahead of this clock (another process's clock)


def valid_prefix(value: object) -> bool:
    """A country prefix as the coverage check uses it: 1 to 4 ASCII digits."""
    return isinstance(value, str) and 1 <= len(value) <= 4 and value.isascii() and value.isdigit()


class CoverageCache:
    """The shared coverage list of one account at one gateway (``load`` / ``save``)."""

    def __init__(
        self,
        username: str,
        base_url: str,
        *,
        ttl: float = COVERAGE_TTL,
        directory: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        key = hashlib.sha256(f"{username}\n{base_url.rstrip('/').lower()}".encode()).hexdigest()[:32]
        self.path = Path(directory or tempfile.gettempdir()) / f"kwtsms-coverage-{key}.json"
        self.ttl = ttl
        self._clock = clock  # wall time: the file is shared by processes with their own monotonic clocks

    def load(self) -> frozenset[str] | None:
        """The cached prefixes when the file is fresh and well formed; None otherwise (read them)."""
        try:
            with open(self.path, "rb") as handle:
                raw = handle.read(MAX_FILE_BYTES + 1)
        except OSError:
            return None
        if len(raw) > MAX_FILE_BYTES:
            return None
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return None
        if not isinstance(data, dict) or set(data) != {"format", "read_at", "prefixes"}:
            return None
        read_at, prefixes = data["read_at"], data["prefixes"]
        if data["format"] != FORMAT or isinstance(read_at, bool) or not isinstance(read_at, (int, float)):
            return None
        age = self._clock() - float(read_at)
        if not math.isfinite(age) or not -_FUTURE_SLACK <= age <= self.ttl:
            return None
        if not isinstance(prefixes, list) or len(prefixes) > MAX_PREFIXES:
            return None
        if not all(valid_prefix(p) for p in prefixes):
            return None
        return frozenset(prefixes)

    def save(self, prefixes: frozenset[str]) -> None:
        """Write the list for the other processes (atomically, readable by this user only).

        A failure (read-only folder, full disk) is logged and ignored: the cache saves requests,
        it is never needed for a send to go right.
        """
        listed = sorted(p for p in prefixes if valid_prefix(p))
        body = json.dumps({"format": FORMAT, "read_at": self._clock(), "prefixes": listed}).encode()
        temporary = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(body)
            os.replace(temporary, self.path)
        except OSError as exc:
            logger.debug("kwtSMS coverage not cached (%s): each process reads it", type(exc).__name__)
            with contextlib.suppress(OSError):
                temporary.unlink()
