"""The call's deadline bounds the TCP connect and the TLS handshake too (issue 21, defect 8).

Loopback servers that never answer: one accepts TCP and never speaks TLS, one has a full backlog
(its SYNs are dropped, so connect itself blocks). The connect timeout is 10 s; the deadline is
0.3 s. The error must be the deadline's, say the request was not sent, and report the time it
measured (only checked to be below the connect timeout: no real time is asserted closely).
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator

import pytest

from airflow_provider_kwtsms.errors import KwtSMSNetworkError
from airflow_provider_kwtsms.gateway import http_limits
from airflow_provider_kwtsms.gateway.transport import Transport

CONNECT_TIMEOUT = 10.0


@pytest.fixture
def silent_tls_port() -> Iterator[int]:
    """Accepts every TCP connection and never says a word (no ServerHello)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def _post(url: str) -> KwtSMSNetworkError:
    transport = Transport(
        url, "user", "secret-pass", timeout=(CONNECT_TIMEOUT, CONNECT_TIMEOUT), deadline=0.3
    )
    try:
        with pytest.raises(KwtSMSNetworkError) as info:
            transport.post("balance", {})
    finally:
        transport.close()
    return info.value


def _measured(error: KwtSMSNetworkError) -> float:
    found = re.search(r"ended after ([0-9.]+) s", str(error))
    assert found, str(error)
    return float(found.group(1))


def test_a_server_that_never_answers_the_tls_handshake_costs_the_deadline(silent_tls_port):
    error = _post(f"https://127.0.0.1:{silent_tls_port}")
    assert error.code == "TIMEOUT" and not error.may_have_reached_server
    assert "deadline of 0.3 s" in str(error) and "not sent" in str(error)
    assert _measured(error) < CONNECT_TIMEOUT  # the handshake was cut, not waited out


def test_a_full_backlog_costs_the_deadline_not_the_connect_timeout(full_backlog_port):
    error = _post(f"http://127.0.0.1:{full_backlog_port}")
    assert error.code == "TIMEOUT" and not error.may_have_reached_server
    assert "deadline of 0.3 s" in str(error)
    assert _measured(error) < CONNECT_TIMEOUT


def test_the_error_reports_the_time_measured_on_the_deadlines_clock():
    now = [100.0]
    deadline = http_limits.Deadline(0.3, clock=lambda: now[0])
    with deadline:
        now[0] += 3.05  # a phase that overran the deadline (the clock is injected)
        assert deadline.passed
        assert not deadline.sent
    assert deadline.elapsed == pytest.approx(3.05)
    transport = Transport("http://127.0.0.1:9", "user", "pw", timeout=(1, 1), deadline=0.3)
    error = transport._deadline_error("send", deadline)
    assert "ended after 3.05 s" in str(error) and "deadline of 0.3 s" in str(error)
