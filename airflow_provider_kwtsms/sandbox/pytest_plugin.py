"""pytest plugin (registered through the ``pytest11`` entry point): the ``kwtsms_sandbox`` fixture.

Any test suite with the provider installed can write::

    def test_my_dag_sends(kwtsms_sandbox):
        ...  # point the connection at kwtsms_sandbox.url, then inspect kwtsms_sandbox.messages()

Each test gets a fresh sandbox on a free port with the default account
(``sandbox_user`` / ``sandbox_pass``, 1000 credits, sender ``KWT-SMS``, coverage ``965``) and the
same defaults as ``Sandbox()``, including the gateway's firewall (more than 5 requests begun
within one second from one address blocks it for 10 minutes), so code that passes here paces
itself as the real gateway needs; ``kwtsms_sandbox.firewall_state()`` says whether it was ever
blocked. Use ``kwtsms_sandbox_factory(**options)`` for other options (``firewall=False``,
``block_seconds=...``, ``rate=2`` for the HTTP 429 test tool); it stops every sandbox it made at
the end of the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from airflow_provider_kwtsms.sandbox import Sandbox


@pytest.fixture
def kwtsms_sandbox_factory() -> Iterator[Callable[..., Sandbox]]:
    from airflow_provider_kwtsms.sandbox import Sandbox

    started: list[Sandbox] = []

    def make(**options: object) -> Sandbox:
        sandbox = Sandbox(**options).start()  # type: ignore[arg-type]
        started.append(sandbox)
        return sandbox

    yield make
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def kwtsms_sandbox(kwtsms_sandbox_factory: Callable[..., Sandbox]) -> Sandbox:
    return kwtsms_sandbox_factory()
