"""What the HTTP handler and the inbox page read of a running sandbox: a typing seam.

One job: naming, as a ``Protocol``, the part of ``server.Sandbox`` that ``http_handler`` and
``inbox`` use, so that they type-check against it without importing ``server`` (which imports
``http_handler``: that import would close a cycle). ``Sandbox`` matches it by its shape, and
mypy checks that where ``server`` hands itself to the HTTP server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from airflow_provider_kwtsms.sandbox.faults import FaultBook
    from airflow_provider_kwtsms.sandbox.firewall import Firewall
    from airflow_provider_kwtsms.sandbox.state import Gateway


class SandboxView(Protocol):
    """The state, the settings and the controls a request may reach (``server.Sandbox`` has them)."""

    gateway: Gateway
    faults: FaultBook
    firewall: Firewall
    latency: float
    error_status: str
    max_body: int

    @property
    def url(self) -> str: ...

    def messages(self, username: str | None = None) -> list[dict[str, Any]]: ...

    def emails(self) -> list[dict[str, Any]]: ...

    def requests(self) -> list[dict[str, Any]]: ...

    def account(self, username: str | None = None) -> dict[str, Any]: ...

    def set_balance(self, available: int, username: str | None = None) -> None: ...

    def inject_fault(self, kind: object, endpoint: object = "send", times: object = 1) -> dict[str, Any]: ...

    def clear_faults(self) -> None: ...

    def firewall_state(self) -> dict[str, Any]: ...

    def unblock(self, address: str | None = None) -> list[str]: ...

    def advance(self, seconds: object) -> None: ...

    def now(self) -> float: ...

    def reset(self) -> None: ...
