"""Bad requests get proper answers; the server never crashes or hangs; inbox page; CLI."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests

from airflow_provider_kwtsms.sandbox import Sandbox

CREDS = {"username": "sandbox_user", "password": "sandbox_pass"}
SEND = {**CREDS, "sender": "KWT-SMS", "mobile": "96598765432", "message": "hi", "test": "0"}
JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def sb(kwtsms_sandbox_factory) -> Sandbox:
    return kwtsms_sandbox_factory(rate=None, duplicate_window=0)


def post_raw(sb: Sandbox, endpoint: str, data: bytes, headers: dict | None = None) -> requests.Response:
    return requests.post(f"{sb.url}/API/{endpoint}/", data=data, headers=headers or JSON_HEADERS, timeout=5)


def alive(sb: Sandbox) -> bool:
    return requests.post(f"{sb.url}/API/balance/", json=CREDS, timeout=5).json()["result"] == "OK"


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe\x00", b"[1, 2]", b'"text"', b"null"])
def test_bad_json_bodies_get_err002(sb, body):
    response = post_raw(sb, "send", body)
    assert response.status_code == 200
    answer = response.json()
    assert answer["result"] == "ERROR" and answer["code"] == "ERR002" and "JSON" in answer["description"]
    assert alive(sb)


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("mobile", {"a": 1}, "ERR002"),
        ("mobile", [None], "ERR002"),
        ("message", ["hi"], "ERR002"),
        ("sender", 5, "ERR008"),
        ("test", "maybe", "ERR002"),
        ("username", 12, "ERR003"),
        ("password", {"x": 1}, "ERR002"),
        ("message", True, "ERR002"),
    ],
)
def test_wrong_types_get_clear_errors(sb, field, value, code):
    answer = requests.post(f"{sb.url}/API/send/", json={**SEND, field: value}, timeout=5).json()
    assert answer["code"] == code
    if code == "ERR002":
        assert field in answer["description"]
    assert sb.messages() == []


def test_mobile_as_a_list_is_accepted(sb):
    answer = requests.post(
        f"{sb.url}/API/send/", json={**SEND, "mobile": ["96598765432", 96550001111]}, timeout=5
    ).json()
    assert answer["numbers"] == 2


def test_control_characters_are_answered_not_crashed(sb):
    answer = requests.post(
        f"{sb.url}/API/send/", json={**SEND, "message": "a\x00b\x1b\x7f\u202e"}, timeout=5
    ).json()
    assert answer["result"] == "OK"
    assert sb.messages()[0]["stuck"] is True  # the real queue would hold it
    answer = requests.post(
        f"{sb.url}/API/balance/", json={"username": "\x00\n", "password": "\x01"}, timeout=5
    ).json()
    assert answer["code"] == "ERR003"


def test_huge_body_gets_413(kwtsms_sandbox_factory):
    sb = kwtsms_sandbox_factory(rate=None, max_body=10_000)
    response = post_raw(sb, "send", json.dumps({**SEND, "message": "a" * 20_000}).encode())
    assert response.status_code == 413 and response.json()["code"] == "TOO_LARGE"
    assert sb.messages() == [] and alive(sb)


def test_chunked_body_gets_411(sb):
    response = requests.post(
        f"{sb.url}/API/send/", data=iter([json.dumps(SEND).encode()]), headers=JSON_HEADERS, timeout=5
    )
    assert response.status_code == 411 and alive(sb)


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/API/send/", "GET, POST"),
        ("DELETE", "/API/balance/", "GET, POST"),
        ("PATCH", "/", "GET, HEAD"),
        ("GET", "/sandbox/reset", "POST"),
        ("PUT", "/sandbox/messages", "GET"),
    ],
)
def test_wrong_methods_get_405(sb, method, path, allow):
    response = requests.request(method, sb.url + path, json={}, timeout=5)
    assert response.status_code == 405 and response.headers["Allow"] == allow
    assert response.json()["code"] == "METHOD_NOT_ALLOWED"


def test_unknown_paths_get_404(sb):
    assert requests.post(f"{sb.url}/API/report/", json=CREDS, timeout=5).status_code == 404
    assert requests.get(f"{sb.url}/nothing", timeout=5).status_code == 404
    assert requests.get(f"{sb.url}/sandbox/nothing", timeout=5).status_code == 404


def test_garbage_and_stalled_connections_do_not_stop_the_server(sb):
    with socket.create_connection(("127.0.0.1", sb.port), timeout=5) as conn:
        conn.sendall(b"\x16\x03\x01 garbage that is not HTTP\r\n\r\n")
        assert b"400" in conn.recv(1024).split(b"\r\n")[0]
    stalled = socket.create_connection(("127.0.0.1", sb.port), timeout=5)
    stalled.sendall(b"POST /API/send/ HTTP/1.1\r\nContent-Length: 500\r\n\r\n{")  # never finishes
    try:
        assert alive(sb)  # served by another thread meanwhile
    finally:
        stalled.close()


def test_concurrent_clients_are_all_served_and_charged_exactly(kwtsms_sandbox_factory):
    # 200 sends from 8 threads at once: the subject is the server under load, not the rate.
    sb = kwtsms_sandbox_factory(duplicate_window=0, firewall=False)
    errors: list[str] = []

    def client(worker: int) -> None:
        with requests.Session() as session:
            for i in range(25):
                body = {**SEND, "mobile": f"9655{worker:03d}{i:04d}"}
                answer = session.post(f"{sb.url}/API/send/", json=body, timeout=10).json()
                if answer.get("result") != "OK":
                    errors.append(str(answer))

    threads = [threading.Thread(target=client, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(sb.messages()) == 200 and sb.account()["available"] == 800
    assert len({m["msg_id"] for m in sb.messages()}) == 200


# --- the inbox page ------------------------------------------------------------------------------


def test_inbox_shows_messages_newest_first_escaped(kwtsms_sandbox_factory):
    evil_sender = '"<script>'  # a sender ID has at most 11 characters (v4.1)
    sb = kwtsms_sandbox_factory(rate=None, senders=["KWT-SMS", evil_sender], balance=500)
    requests.post(f"{sb.url}/API/send/", json={**SEND, "message": 'first & <3 "quoted"'}, timeout=5)
    requests.post(
        f"{sb.url}/API/send/",
        json={**SEND, "mobile": "96550001111", "sender": evil_sender, "message": "مرحبا بكم", "test": "1"},
        timeout=5,
    )
    response = requests.get(sb.url + "/", timeout=5)
    page = response.text
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "first &amp; &lt;3 &quot;quoted&quot;" in page
    assert page.index("مرحبا بكم") < page.index("first &amp;")  # newest first
    assert 'dir="auto"' in page and 'http-equiv="refresh"' in page
    assert "UCS-2" in page and "GSM-7" in page and "TEST (held)" in page
    assert "499 / 500" in page  # the account balance after one charged send
    assert "96550001111" in page and "96598765432" in page


def test_inbox_when_empty(sb):
    assert "No messages yet" in requests.get(sb.url + "/", timeout=5).text


# --- the command line ----------------------------------------------------------------------------


def test_command_line_serves_on_a_free_port():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_provider_kwtsms.sandbox",
            "--port",
            "0",
            "--username",
            "cli",
            "--password",
            "secret",
            "--balance",
            "42",
            "--senders",
            "A,B",
            "--rate",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = process.stdout.readline()
        assert "listening on http://127.0.0.1:" in line, process.stderr.read()
        url = line.split("listening on ")[1].split()[0]
        answer = requests.post(
            url + "/API/senderid/", json={"username": "cli", "password": "secret"}, timeout=5
        ).json()
        assert answer["senderid"] == ["A", "B"]
        assert requests.get(url + "/sandbox/account", timeout=5).json()["available"] == 42
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert process.returncode == 0


def test_command_line_stops_cleanly_on_sigterm_as_soon_as_it_says_it_listens():
    """A supervisor may stop the sandbox the moment it reads the "listening" line: the handler
    is in place before that line (CI once caught the sandbox killed by SIGTERM, exit -15)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_kwtsms.sandbox", "--port", "0", "--no-smtp"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert "listening on http://127.0.0.1:" in process.stdout.readline()
        process.send_signal(signal.SIGSTOP)  # frozen right after the line: the worst moment
        process.terminate()
        process.send_signal(signal.SIGCONT)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, process.stderr.read()


def test_command_line_reports_a_busy_port(sb):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "airflow_provider_kwtsms.sandbox", "--port", str(sb.port)],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert result.returncode == 2 and "Choose another --port" in result.stderr
