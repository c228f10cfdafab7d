"""Hostile input over real HTTP and SMTP: refused with a clear answer, never a 5xx, never a poisoned state.

Raw ``http.client`` or sockets wherever ``requests`` would refuse to send the malformed thing.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_kwtsms.sandbox import Sandbox, rules
from airflow_provider_kwtsms.sandbox.server import STRICT_RATE_TOLERANCE as STRICT

CREDS = {"username": "sandbox_user", "password": "sandbox_pass"}
SEND = {**CREDS, "sender": "KWT-SMS", "mobile": "96598765432", "message": "hi", "test": "0"}
REPO = Path(__file__).resolve().parents[1]
START = 1_800_000_000.0  # the fake clock's time: 2027-01-15


@pytest.fixture
def sb(kwtsms_sandbox_factory) -> Sandbox:
    return kwtsms_sandbox_factory(rate=None, duplicate_window=0, clock=lambda: START)


def raw_post(sb: Sandbox, path: str, body: bytes, headers: dict | None = None) -> tuple[int, dict]:
    """POST exactly these bytes; the answer's status and JSON body."""
    conn = http.client.HTTPConnection("127.0.0.1", sb.port, timeout=10)
    try:
        conn.request(
            "POST",
            path,
            body=body,
            headers={"Content-Type": "application/json", "Content-Length": str(len(body)), **(headers or {})},
        )
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def raw_exchange(sb: Sandbox, request: bytes) -> bytes:
    """Send raw bytes on a fresh connection; the bytes of the answer."""
    with socket.create_connection(("127.0.0.1", sb.port), timeout=10) as conn:
        conn.sendall(request)
        chunks = []
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks):
                head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.startswith(b"Content-Length")
                )
                if len(body) >= length:
                    break
        return b"".join(chunks)


def send_ok(sb: Sandbox, mobile: str = "96598765432") -> bool:
    answer = requests.post(f"{sb.url}/API/send/", json={**SEND, "mobile": mobile}, timeout=10).json()
    return answer["result"] == "OK"


def pages_answer(sb: Sandbox) -> None:
    """The message list, the request log, the e-mails and the inbox all answer 200."""
    for path in ("/sandbox/messages", "/sandbox/requests", "/sandbox/emails", "/"):
        assert requests.get(sb.url + path, timeout=10).status_code == 200, path


# --- /sandbox/advance and reset ------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        b"NaN",
        b"Infinity",
        b"-Infinity",
        b"1e308",
        b"1e400",
        b"1" + b"0" * 4000,
        b"-1",
        b'"5"',
        b"true",
        b"null",
    ],
)
def test_advance_refuses_non_finite_huge_and_wrong_seconds(sb, value):
    status, answer = raw_post(sb, "/sandbox/advance", b'{"seconds": ' + value + b"}")
    assert status == 400 and answer["code"] == "BAD_REQUEST"
    assert "seconds" in answer["description"]
    assert sb.now() == START  # the clock did not move
    assert send_ok(sb)
    pages_answer(sb)


def test_python_advance_refuses_what_http_refuses(sb):
    for value in (float("nan"), float("inf"), 1e308, -1.0, 10**4000):
        with pytest.raises(ValueError, match="seconds"):
            sb.advance(value)
    assert sb.now() == START


def test_the_clock_never_runs_more_than_a_century_ahead(sb):
    ten_years = 10 * 366 * 24 * 3600
    for _ in range(10):
        assert raw_post(sb, "/sandbox/advance", json.dumps({"seconds": ten_years}).encode())[0] == 200
    status, answer = raw_post(sb, "/sandbox/advance", b'{"seconds": 1}')
    assert status == 400 and "seconds" in answer["description"] and "reset" in answer["description"]
    assert send_ok(sb)
    pages_answer(sb)


def test_reset_restores_the_clock(sb):
    assert raw_post(sb, "/sandbox/advance", b'{"seconds": 3600}')[1]["now"] == START + 3600
    assert raw_post(sb, "/sandbox/reset", b"")[0] == 200
    assert sb.now() == START


# --- the other controls ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "latency:\u0661"}, "latency"),  # an Arabic-Indic 1: float() takes it
        ({"kind": "latency:1_0"}, "latency"),
        ({"kind": "latency:nan"}, "latency"),
        ({"kind": "latency:inf"}, "latency"),
        ({"kind": "latency:1e309"}, "latency"),
        ({"kind": "http_500", "times": 10**30}, "times"),
        ({"kind": "http_500", "times": 1.5}, "times"),
        ({"kind": "http_500", "endpoint": ["send"]}, "endpoint"),
        ({"kind": ["http_500"]}, "kind"),
    ],
)
def test_fault_controls_refuse_hostile_values(sb, body, field):
    status, answer = raw_post(sb, "/sandbox/faults", json.dumps(body).encode())
    assert status == 400 and field in answer["description"]
    assert sb.faults.pending() == []
    assert send_ok(sb)


@pytest.mark.parametrize("path", ["/sandbox/faults", "/sandbox/advance", "/sandbox/reset"])
@pytest.mark.parametrize(
    "body", [b"[" * 100_000, b'{"a":' * 100_000, b'{"seconds": NaN}', b'{"kind": "\\ud800"}', b"\xff"]
)
def test_controls_answer_malformed_json_with_400(sb, path, body):
    status, answer = raw_post(sb, path, body)
    assert status == 400 and "JSON" in answer["description"]
    assert send_ok(sb)


# --- a lone surrogate ------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["message", "username", "sender", "mobile"])
def test_a_lone_surrogate_is_refused_with_err002_and_never_charged(sb, field):
    body = json.dumps({**SEND, field: SEND[field] + "\ud800"}).encode()  # json.dumps writes "\ud800"
    assert b"\\ud800" in body
    status, answer = raw_post(sb, "/API/send/", body)
    assert status == 200 and answer["code"] == "ERR002" and field in answer["description"]
    assert sb.messages() == [] and sb.account()["available"] == 1000
    pages_answer(sb)
    assert send_ok(sb)


def test_a_lone_surrogate_in_a_list_or_a_key_is_refused(sb):
    for body in (
        json.dumps({**SEND, "mobile": ["96598765432", "\udc00"]}),
        json.dumps({**SEND, "\ud800": 1}),
    ):
        assert raw_post(sb, "/API/send/", body.encode())[1]["code"] == "ERR002"
    assert sb.messages() == []
    pages_answer(sb)


def test_inbox_and_message_list_never_500_even_on_unencodable_stored_text(sb):
    # Defence in depth: input checks keep such text out; if one ever lets it in, the pages still answer.
    assert send_ok(sb)
    sb.gateway.messages[0].message = "bad \ud800 text"
    answer = requests.get(sb.url + "/sandbox/messages", timeout=10)
    assert answer.status_code == 200 and answer.json()["messages"][0]["message"] == "bad \ud800 text"
    page = requests.get(sb.url + "/", timeout=10)
    assert page.status_code == 200 and "bad \\ud800 text" in page.text


# --- the rate limiter --------------------------------------------------------------------------------


def test_a_stranger_cannot_use_up_an_accounts_rate(kwtsms_sandbox_factory):
    sb = kwtsms_sandbox_factory(  # the subject is the 429 tool; the firewall would block the 6th
        rate=2.0, rate_tolerance=STRICT, clock=lambda: START, firewall=False
    )  # a frozen clock: no token comes back
    wrong = json.dumps({"username": "sandbox_user", "password": "guess"}).encode()
    for _ in range(5):
        assert raw_post(sb, "/API/balance/", wrong)[0] in (200, 429)
    status, answer = raw_post(sb, "/API/balance/", json.dumps(CREDS).encode())
    assert status == 200 and answer["result"] == "OK"


def test_failed_logins_are_rate_limited_too_in_one_bucket_for_made_up_names(kwtsms_sandbox_factory):
    # The subject is the 429 tool; the firewall would block the 6th request at this frozen instant.
    sb = kwtsms_sandbox_factory(rate=2.0, rate_tolerance=STRICT, clock=lambda: START, firewall=False)
    statuses = [
        raw_post(sb, "/API/balance/", json.dumps({"username": f"nobody{i}", "password": "x"}).encode())[0]
        for i in range(3)
    ]
    assert statuses == [200, 429, 429]  # made-up names share one bucket (the clock is frozen)
    owner_guess = json.dumps({"username": "sandbox_user", "password": "guess"}).encode()
    assert [raw_post(sb, "/API/balance/", owner_guess)[0] for _ in range(2)] == [200, 429]
    assert raw_post(sb, "/API/balance/", json.dumps(CREDS).encode())[0] == 200
    assert len(sb.gateway.limiter._tat) == 3  # bounded: owner, guesses at the owner, made-up names


# --- malformed JSON of any shape ------------------------------------------------------------------------


def _with(field: str, literal: str) -> bytes:
    return json.dumps(SEND).replace(json.dumps(SEND[field]), literal, 1).encode()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"[" * 100_000, id="deep-array"),
        pytest.param(b'{"a":' * 100_000, id="deep-object"),
        pytest.param(b'{"username": ' + b"[" * 40 + b"]" * 40 + b"}", id="nested-field"),
        pytest.param(_with("message", "NaN"), id="nan-message"),
        pytest.param(_with("test", "Infinity"), id="infinity-test"),
        pytest.param(_with("mobile", "-Infinity"), id="minus-infinity"),
        pytest.param(_with("message", "1e400"), id="float-overflow"),
        pytest.param(_with("message", "1" * 5000), id="int-over-digit-limit"),
        pytest.param(b'{"username": "x", ' + json.dumps(SEND)[1:].encode(), id="duplicate-key"),
        pytest.param(b"12", id="number"),
        pytest.param(b"true", id="bool"),
        pytest.param(b"\xef\xbb\xbf{}", id="bom"),
    ],
)
def test_malformed_json_of_any_shape_gets_err002_never_500(sb, body):
    status, answer = raw_post(sb, "/API/send/", body)
    assert status == 200 and answer["result"] == "ERROR" and answer["code"] == "ERR002"
    assert sb.messages() == []
    assert send_ok(sb)


def test_a_valid_surrogate_pair_is_text_not_an_error(sb):
    _, answer = raw_post(sb, "/API/send/", _with("message", '"hi \\ud83d\\ude00"'))
    assert answer["result"] == "OK"
    assert sb.messages()[0]["message"] == "hi \U0001f600"


# --- Content-Length ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [b"/API/send/", b"/sandbox/advance", b"/nothing"])
@pytest.mark.parametrize("length", [b"\xb2", b"\xb9", b"1 2", b"+5", b"0x10", b"-1"])
def test_content_length_must_be_ascii_digits(sb, path, length):
    # "\xb2" is "²" once the header is read as Latin-1: str.isdigit() says yes, int() refuses it.
    answer = raw_exchange(
        sb,
        b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + length + b"\r\n\r\n{}",
    )
    status = int(answer.split(b" ", 2)[1])
    assert status == (404 if path == b"/nothing" else 400)
    assert b"Connection: close" in answer
    assert send_ok(sb)


def test_a_content_length_of_thousands_of_digits_gets_413(sb):
    answer = raw_exchange(
        sb, b"POST /API/send/ HTTP/1.1\r\nHost: x\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 413") and b"TOO_LARGE" in answer


def test_two_different_content_lengths_get_400(sb):
    answer = raw_exchange(
        sb, b"POST /API/send/ HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}"
    )
    assert answer.startswith(b"HTTP/1.1 400")


# --- length before costly rules; costly rules outside the lock -------------------------------------------


@pytest.fixture
def costly_calls(monkeypatch, sb) -> list[tuple[str, int, bool]]:
    """Spy on the send's costly text rules: (rule, text length, was the gateway lock free?)."""
    calls: list[tuple[str, int, bool]] = []

    def lock_free() -> bool:
        found: list[bool] = []

        def probe() -> None:  # another thread: an RLock is always free to the thread holding it
            got = sb.gateway.lock.acquire(blocking=False)
            if got:
                sb.gateway.lock.release()
            found.append(got)

        thread = threading.Thread(target=probe)
        thread.start()
        thread.join()
        return found[0]

    def spy(name: str, real):  # type: ignore[no-untyped-def]
        def wrapped(text: str, *args: object):  # type: ignore[no-untyped-def]
            calls.append((name, len(text), lock_free()))
            return real(text, *args)

        return wrapped

    from airflow_provider_kwtsms.sandbox import state

    for module in (rules, state):  # wherever the send looks them up
        for name in ("contains_html", "sticks_in_queue", "measure_message"):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, spy(name, getattr(module, name)))
    return calls


def test_an_over_long_text_is_refused_before_any_costly_rule(sb, costly_calls):
    limit = rules.text_limit(6)
    answer = requests.post(f"{sb.url}/API/send/", json={**SEND, "message": "<!--" * 2000}, timeout=30).json()
    assert answer["code"] == "ERR012" and str(limit) in answer["description"]
    assert costly_calls == []
    assert sb.messages() == []


def test_the_costly_text_rules_run_outside_the_gateway_lock(sb, costly_calls):
    assert send_ok(sb)
    assert {name for name, _, _ in costly_calls} >= {"contains_html", "measure_message", "sticks_in_queue"}
    assert all(free for _, _, free in costly_calls), costly_calls


def test_the_longest_text_that_can_fit_is_still_measured(sb):
    # Exactly at the limit the pages decide (ERR012 by pages, not by the cheap length cap).
    text = "a" * (153 * 6)
    answer = requests.post(f"{sb.url}/API/send/", json={**SEND, "message": text}, timeout=10).json()
    assert answer["result"] == "OK" and sb.messages()[0]["pages"] == 6
    text = text[:-2] + "€€"  # as many characters, two more septets
    answer = requests.post(f"{sb.url}/API/send/", json={**SEND, "message": text}, timeout=10).json()
    assert answer["code"] == "ERR012" and "7 pages" in answer["description"]


# --- constructor and command-line options ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("latency", float("inf")),
        ("latency", float("nan")),
        ("drain_rate", float("nan")),
        ("deliver_after", float("inf")),
        ("duplicate_window", -1.0),
        ("rate", float("inf")),
        ("rate_tolerance", float("nan")),
    ],
)
def test_sandbox_options_must_be_finite_and_in_range(option, value):
    with pytest.raises(ValueError, match=option):
        Sandbox(**{option: value})


def test_command_line_refuses_a_non_finite_option():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "airflow_provider_kwtsms.sandbox", "--port", "0", "--latency", "inf"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2 and "latency" in result.stderr and "Traceback" not in result.stderr


# --- the legacy GET API ------------------------------------------------------------------------------------


def test_legacy_validate_echoes_numbers_on_one_line(sb):
    query = "username=sandbox_user&password=sandbox_pass&mobile=123%0AOK:96598765432%E2%80%A8x%0B,96598765432"
    response = requests.get(f"{sb.url}/API/validate/?{query}", timeout=10)
    lines = response.text.split("\n")
    assert [line.split(":", 1)[0] for line in lines] == ["OK", "ER", "NR"]
    assert lines[0] == "OK:96598765432"
    assert response.text.splitlines() == lines  # no other kind of line break either


@pytest.mark.parametrize("encoded", ["%ED%A0%80", "%C2%B2", "%D9%A3", "NaN", "1e400"])
def test_legacy_send_never_500s_on_odd_text(sb, encoded):
    query = (
        f"username=sandbox_user&password=sandbox_pass&sender=KWT-SMS&mobile=96598765432&message=a{encoded}"
    )
    response = requests.get(f"{sb.url}/API/send/?{query}", timeout=10)
    assert response.status_code == 200 and response.text.startswith("OK:")
    pages_answer(sb)
    assert requests.get(f"{sb.url}/API/send/?{query}&test={encoded}", timeout=10).text.startswith("ERR002:")


# --- the SMTP listener --------------------------------------------------------------------------------


class Smtp:
    def __init__(self, sb: Sandbox) -> None:
        self.sock = socket.create_connection(("127.0.0.1", sb.smtp_port), timeout=10)
        self.file = self.sock.makefile("rb")
        self.read()

    def read(self) -> list[bytes]:
        lines = [self.file.readline()]
        while lines[-1][3:4] == b"-":
            lines.append(self.file.readline())
        return lines

    def say(self, line: bytes) -> list[bytes]:
        self.sock.sendall(line + b"\r\n")
        return self.read()

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@pytest.fixture
def smtp_sb(kwtsms_sandbox_factory) -> Sandbox:
    return kwtsms_sandbox_factory(rate=None, duplicate_window=0, smtp_port=0, clock=lambda: START)


@pytest.mark.parametrize("size", ["\u00b2", "\u0663", "1" * 4000])  # 4000: the longest a line allows
def test_smtp_size_with_odd_digits_is_answered(smtp_sb, size):
    client = Smtp(smtp_sb)
    try:
        assert client.say(b"EHLO me")[-1].startswith(b"250 ")
        reply = client.say(b"MAIL FROM:<a@example.com> SIZE=" + size.encode("utf-8"))[0]
        assert reply[:3] in (b"501", b"552")
        assert client.say(b"NOOP")[0].startswith(b"250")  # the session goes on
    finally:
        client.close()


def test_smtp_replies_echo_names_on_one_line(smtp_sb):
    client = Smtp(smtp_sb)
    try:
        lines = client.say("EHLO a\rb\x0bc\x85d\u2028e".encode())
        assert all(
            line.endswith(b"\r\n") and line[:-2].decode().splitlines() == [line[:-2].decode()]
            for line in lines
        )
        client.say(b"MAIL FROM:<a@example.com>")
        reply = client.say("RCPT TO:<x\x1cy\u2029@example.com>".encode())
        assert len(reply) == 1 and reply[0].startswith(b"550")
        assert reply[0][:-2].decode().splitlines() == [reply[0][:-2].decode()]
    finally:
        client.close()


def test_smtp_body_that_decodes_to_a_lone_surrogate_is_dropped(smtp_sb):
    body = (
        b"Subject: =?utf-7?q?+2AA-?=\r\nContent-Type: text/plain; charset=utf-7\r\n\r\n"
        b"username:sandbox_user\r\npassword:sandbox_pass\r\nsender:KWT-SMS\r\nmobile:96598765432\r\n"
        b"lang:3\r\ntext:hi +2AA-\r\n"
    )
    client = Smtp(smtp_sb)
    try:
        client.say(b"HELO me")
        client.say(b"MAIL FROM:<a@example.com>")
        client.say(b"RCPT TO:<sms@kwtsms.com>")
        client.say(b"DATA")
        assert client.say(body + b".")[0].startswith(b"250")
    finally:
        client.close()
    [record] = smtp_sb.emails()
    assert record["outcome"] == "dropped" and "surrogate" in record["reason"]
    assert smtp_sb.messages() == [] and smtp_sb.account()["available"] == 1000
    pages_answer(smtp_sb)


# --- property: random bodies never give a 5xx nor break later sends ------------------------------

_TOKENS = st.sampled_from(
    ['{', '}', '[', ']', ',', ':', '"', '\\', '\\u', 'd800', 'NaN', 'Infinity', '-', '1e999', '0', '9' * 30,
     'true', 'null', '"username"', '"password"', '"sandbox_user"', '"sandbox_pass"', '"message"', '"mobile"',
     '"seconds"', '"kind"', '"times"', '"latency:1"', '"http_500"', ' ', '\u0663', '\u00b2', '\ud800',
     '{"seconds": NaN}', '{"seconds": 1e308}', '"\\ud800"', '"message": "\\ud800"', '[' * 2000]
)  # fmt: skip
_BODIES = st.one_of(
    st.lists(_TOKENS, min_size=1, max_size=8).map(
        lambda parts: "".join(parts).encode("utf-8", "surrogatepass")
    ),
    st.binary(max_size=200),
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=20,
    ).map(lambda value: json.dumps(value).encode()),
)


@pytest.fixture(scope="module")
def shared_sb() -> Iterator[Sandbox]:
    # Hammers the parser as fast as it can: the subject is the protocol, not the rate.
    with Sandbox(duplicate_window=0, balance=10**6, firewall=False) as sandbox:
        yield sandbox


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=_BODIES,
    path=st.sampled_from(["/API/send/", "/API/balance/", "/sandbox/advance", "/sandbox/faults"]),
)
def test_property_random_bodies_never_5xx_nor_break_later_sends(shared_sb, body, path):
    status, _ = raw_post(shared_sb, path, body)
    assert status < 500
    shared_sb.clear_faults()  # a random body may have injected a valid fault on purpose
    assert send_ok(shared_sb, mobile=f"9655{len(shared_sb.messages()) % 10**7:07d}")
    pages_answer(shared_sb)
