"""Where a send's ledger lives: the store seam (string keys to string values) and a dict store."""

from __future__ import annotations

from typing import Protocol

__all__ = ["KeyValueStore", "MemoryStore"]


class KeyValueStore(Protocol):
    """Where the ledger lives: string keys to string values, surviving the process."""

    def get(self, key: str) -> str | None: ...

    def set(self, key: str, value: str) -> None: ...

    def delete(self, key: str) -> None: ...


class MemoryStore:
    """A dict-backed store: for plain Python programs within one process, and for tests."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        return self.data.get(key)

    def set(self, key: str, value: str) -> None:
        self.data[key] = value

    def delete(self, key: str) -> None:
        self.data.pop(key, None)
