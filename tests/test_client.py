"""KwtSMSClient against the sandbox over real HTTP: the read-only endpoints, error answers, secrets.

Bulk sending is in test_client_send.py, network faults in test_client_faults.py.
"""

from __future__ import annotations

import json
import logging
import pickle
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sandbox_helpers import SandboxTime, logged

from airflow_provider_kwtsms.errors import KwtSMSError, KwtSMSInputError, KwtSMSNetworkError
from airflow_provider_kwtsms.gateway.client import KwtSMSClient, RetryPolicy
from airflow_provider_kwtsms.sandbox import Sandbox
from airflow_provider_kwtsms.send.results import Balance, DeliveryReport, MessageStatus, ValidationResult

USER = "sandbox_user"
PASSWORD = "pw-Zq8#not-in-logs"
KW1, KW2, KW3 = "96598765432", "96550001111", "96566002222"


@pytest.fixture
def sb(kwtsms_sandbox_factory) -> Sandbox:
    return kwtsms_sandbox_factory(
        password=PASSWORD, rate=None, senders=["KWT-SMS", "MY-APP"], coverage=["965", "971"]
    )


def client_for(sb: Sandbox, password: str = PASSWORD, **options) -> KwtSMSClient:
    vt = SandboxTime(sb)
    options.setdefault("clock", vt.clock)
    options.setdefault("sleep", vt.sleep)
    # 5 requests a second on the sandbox's clock, the pacing waits kept out of vt.sleeps
    options.setdefault("pacer", vt.pacer(options.get("rate", 5)))
    return KwtSMSClient(USER, password, base_url=sb.url, **options)


def test_importing_the_client_does_not_import_requests():
    code = (
        "import sys; import airflow_provider_kwtsms.gateway.client; "
        "print('requests' in sys.modules, 'phonenumbers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_balance_sender_ids_coverage(sb):
    with client_for(sb) as client:
        assert client.balance() == Balance(available=1000.0, purchased=1000.0)
        assert client.last_balance == 1000.0
        assert client.sender_ids() == ["KWT-SMS", "MY-APP"]
        assert client.coverage() == ["965", "971"]


def test_coverage_is_empty_on_err033(kwtsms_sandbox_factory):
    sb = kwtsms_sandbox_factory(password=PASSWORD, rate=None, coverage=[])
    assert client_for(sb).coverage() == []


def test_validate_sorts_ok_er_nr_and_rejects_non_numbers_locally(sb):
    client = client_for(sb)
    result = client.validate([KW1, "+971 50 123 4567", "96512345", "user@example.com", "96612345678"])
    assert isinstance(result, ValidationResult)
    assert result.ok == [KW1, "971501234567"]
    assert "user@example.com" in result.er and "96512345" in result.er
    assert result.nr == ["96612345678"]
    asked = [r for r in logged(sb) if r["endpoint"] == "validate"]
    assert len(asked) == 1  # the e-mail address never went to the gateway


def test_validate_asks_200_at_a_time(sb):
    numbers = [f"9655{i:07d}" for i in range(450)]
    result = client_for(sb).validate(numbers)
    assert len(result.ok) == 450
    assert [r["endpoint"] for r in logged(sb)] == ["validate"] * 3


def test_status_and_dlr_of_a_live_message(kwtsms_sandbox_factory):
    # A queue that drains 1 number a second: the message is still queued after the pacing waits
    # (0.2 s a request on the sandbox's clock) before the status and dlr requests.
    sb = kwtsms_sandbox_factory(password=PASSWORD, rate=None, drain_rate=1.0)
    client = client_for(sb)
    batch = client.send_batch([KW1, KW2], "Hello", sender="KWT-SMS", test=False)
    status = client.status(batch.msg_id)
    assert isinstance(status, MessageStatus)
    assert status.status == "QUEUED" and status.code is None
    with pytest.raises(KwtSMSError) as info:
        client.dlr(batch.msg_id)  # still queued: no report yet
    assert info.value.code == "ERR021" and info.value.retryable
    sb.advance(60)
    assert client.status(batch.msg_id).status == "DELIVERED"
    assert client.dlr(batch.msg_id) == [DeliveryReport(KW1, "DELIVERED"), DeliveryReport(KW2, "DELIVERED")]


def test_status_err030_for_a_test_message_is_a_status_and_dlr_err019(sb):
    client = client_for(sb)
    batch = client.send_batch([KW1], "Hello", sender="KWT-SMS", test=True)
    status = client.status(batch.msg_id)
    assert (status.status, status.code) == ("error", "ERR030")
    with pytest.raises(KwtSMSError) as info:
        client.dlr(batch.msg_id)
    assert info.value.code == "ERR019"


@pytest.mark.parametrize(("msg_id", "code"), [("not-an-id", "ERR029"), ("0" * 32, "ERR020")])
def test_status_of_unknown_or_malformed_ids(sb, msg_id, code):
    with pytest.raises(KwtSMSError) as info:
        client_for(sb).status(msg_id)
    assert info.value.code == code and not info.value.permanent


@pytest.mark.parametrize("error_status", ["200", "4xx"])
@pytest.mark.parametrize("call", ["balance", "sender_ids", "coverage", "validate", "status", "dlr"])
def test_wrong_password_is_err003_on_every_endpoint_with_200_or_4xx(
    kwtsms_sandbox_factory, call, error_status
):
    sb = kwtsms_sandbox_factory(password="the-right-one", rate=None, error_status=error_status)
    client = client_for(sb)  # holds PASSWORD, which is wrong here
    args = {"validate": ([KW1],), "status": ("a" * 32,), "dlr": ("a" * 32,)}.get(call, ())
    with pytest.raises(KwtSMSError) as info:
        getattr(client, call)(*args)
    err = info.value
    assert err.code == "ERR003" and err.permanent and not err.retryable
    assert err.http_status == (200 if error_status == "200" else 401)
    assert "password" in err.action.lower()
    assert not isinstance(err, KwtSMSNetworkError)
    assert len(logged(sb)) == 1  # an error answer is never retried


SEND_ERRORS = [
    # (sandbox options, send_batch arguments, expected code)
    ({}, {"numbers": [KW1], "sender": "NOT-MINE"}, "ERR008"),
    ({}, {"numbers": [KW1], "sender": "kwt-sms"}, "ERR008"),  # sender IDs are case-sensitive
    ({}, {"numbers": [KW1], "sender": ""}, "ERR002"),
    ({}, {"numbers": [KW1], "message": "   "}, "ERR009"),
    ({}, {"numbers": [KW1], "message": "<b>bold</b>"}, "ERR027"),
    ({}, {"numbers": ["96512"]}, "ERR025"),
    ({}, {"numbers": ["96512", "96534"]}, "ERR006"),
    ({}, {"numbers": ["96612345678"]}, "ERR026"),
    ({"balance": 0}, {"numbers": [KW1]}, "ERR010"),
    ({"balance": 1}, {"numbers": [KW1, KW2]}, "ERR011"),
    ({}, {"numbers": [KW1], "message": "x" * (153 * 6 + 1)}, "ERR012"),  # 7 pages: the sandbox allows 6
]


@pytest.mark.parametrize(
    ("options", "call", "code"),
    SEND_ERRORS,
    ids=[f"{code}-{i}" for i, (_, _, code) in enumerate(SEND_ERRORS)],
)
def test_send_batch_raises_each_error_the_gateway_answers(kwtsms_sandbox_factory, options, call, code):
    sb = kwtsms_sandbox_factory(password=PASSWORD, rate=None, **options)
    client = client_for(sb, max_pages=7)  # lets a 7-page text through to the gateway (ERR012 at 6)
    call = {"message": "Hello", "sender": "KWT-SMS", **call}
    with pytest.raises(KwtSMSError) as info:
        client.send_batch(call.pop("numbers"), call.pop("message"), test=False, **call)
    assert info.value.code == code
    assert info.value.permanent
    assert sb.messages() == []
    assert len(logged(sb)) == 1


def test_send_batch_refuses_more_than_200_numbers_locally(sb):
    with pytest.raises(KwtSMSInputError, match="1 to 200 numbers"):
        client_for(sb).send_batch([KW1] * 201, "hi", sender="KWT-SMS", test=True)
    assert logged(sb) == []


def test_send_batch_success_fields(sb):
    batch = client_for(sb).send_batch([KW1, KW2], "a" * 161, sender="MY-APP", test=False, index=4)
    (message,) = sb.messages()
    assert batch.state == "sent" and batch.index == 4
    assert batch.msg_id == message["msg_id"]
    assert (batch.points_charged, batch.numbers_accepted, batch.balance_after) == (4, 2, 996.0)
    assert batch.unix_timestamp == message["unix_timestamp"]
    assert message["sender"] == "MY-APP" and message["test"] is False


def test_credentials_travel_only_in_the_json_body(kwtsms_sandbox_factory):
    seen: list[tuple[str, dict, str]] = []

    class Recorder(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append((self.path, dict(self.headers), body.decode()))
            answer = json.dumps({"result": "OK", "available": 5, "purchased": 9}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    with _serve(Recorder) as url:
        KwtSMSClient(USER, PASSWORD, base_url=url + "/").balance()
    ((path, headers, body),) = seen
    assert path == "/API/balance/"
    assert PASSWORD not in path
    assert headers["Content-Type"] == "application/json" and headers["Accept"] == "application/json"
    assert json.loads(body) == {"username": USER, "password": PASSWORD}


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"result": "OK", "balance": 12.5}, Balance(12.5, None)),  # one client reads "balance"
        ({"result": "OK", "available": "7", "purchased": "10"}, Balance(7.0, 10.0)),
    ],
)
def test_balance_accepts_either_field_name(answer, expected):
    with _serve(_fixed(200, answer)) as url:
        assert KwtSMSClient(USER, PASSWORD, base_url=url).balance() == expected


def test_balance_without_a_number_is_a_bad_answer():
    with (
        _serve(_fixed(200, {"result": "OK", "available": "lots"})) as url,
        pytest.raises(KwtSMSNetworkError) as info,
    ):
        KwtSMSClient(USER, PASSWORD, base_url=url, max_retries=0).balance()
    assert info.value.code == "BAD_ANSWER"


def test_a_session_given_is_used_and_left_open(sb):
    import requests

    session = requests.Session()
    with client_for(sb, session=session) as client:
        client.balance()
    assert client._transport.session is session
    assert (
        session.post(
            sb.url + "/API/balance/", json={"username": USER, "password": PASSWORD}, timeout=5
        ).json()["result"]
        == "OK"
    )
    session.close()


def test_coverage_accepts_either_field_name():
    with _serve(_fixed(200, {"result": "OK", "coverage": ["965", 971]})) as url:
        assert KwtSMSClient(USER, PASSWORD, base_url=url).coverage() == ["965", "971"]


# --- the password never shows ----------------------------------------------------------------


def test_repr_masks_the_password(sb):
    client = client_for(sb)
    assert PASSWORD not in repr(client) and "***" in repr(client)
    assert PASSWORD not in repr(client._transport)
    assert PASSWORD not in str(vars(client).get("policy"))


def test_bad_constructor_arguments_name_the_argument_and_never_echo_the_password():
    with pytest.raises(KwtSMSInputError, match="username"):
        KwtSMSClient("", PASSWORD)
    with pytest.raises(KwtSMSInputError, match="password") as info:
        KwtSMSClient(USER, "   ")
    assert "   " not in str(info.value).split("got")[-1].replace("str", "")
    with pytest.raises(KwtSMSInputError, match="base_url"):
        KwtSMSClient(USER, PASSWORD, base_url="www.kwtsms.com")
    with pytest.raises(KwtSMSInputError, match="rate"):
        KwtSMSClient(USER, PASSWORD, rate=0)
    with pytest.raises(KwtSMSInputError, match="timeout"):
        KwtSMSClient(USER, PASSWORD, timeout=(1, 0))


def test_an_echoed_password_is_scrubbed_from_errors():
    # A hostile or buggy server (or proxy) that echoes the password back in its error text.
    answer = {"result": "ERROR", "code": "ERR003", "description": f"bad password {PASSWORD}"}
    with _serve(_fixed(200, answer)) as url, pytest.raises(KwtSMSError) as info:
        KwtSMSClient(USER, PASSWORD, base_url=url).balance()
    assert PASSWORD not in str(info.value) and "***" in info.value.description
    with _serve(_fixed(500, f"<html>{PASSWORD}</html>")) as url, pytest.raises(KwtSMSNetworkError) as info:
        KwtSMSClient(USER, PASSWORD, base_url=url, max_retries=0).balance()
    assert PASSWORD not in str(info.value)


def test_password_absent_from_every_error_path_and_log(kwtsms_sandbox_factory, caplog):
    """Force every failure we can and look for the password everywhere it could leak."""
    caplog.set_level(logging.DEBUG)  # urllib3 and requests log at DEBUG too
    sb = kwtsms_sandbox_factory(password=PASSWORD, rate=None, balance=1)
    wrong = kwtsms_sandbox_factory(password="other", rate=None)
    client = client_for(sb, retry_policy=RetryPolicy(queue_full_retries=0), timeout=(1.0, 0.3))
    errors: list[BaseException] = []

    def capture(fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            errors.append(exc)
            return None

    capture(client_for(wrong).balance)
    capture(client.send_batch, [KW1, KW2], "hi", sender="KWT-SMS", test=False)  # ERR011
    capture(client.send_batch, [KW1], "hi", sender="NOPE", test=False)  # ERR008
    kinds = ("drop_before", "drop_after_accept", "http_500", "html_error", "malformed_json", "latency:0.5")
    for number, kind in enumerate(kinds):
        sb.inject_fault(kind, endpoint="balance", times=4)
        sb.inject_fault(kind, endpoint="send", times=1)
        capture(client.balance)
        batch = capture(client.send_batch, [f"9655000000{number}"], "hi", sender="KWT-SMS", test=True)
        assert batch is not None and batch.state == "uncertain", kind
        errors.append(batch.error())
    dead = KwtSMSClient(USER, PASSWORD, base_url="http://127.0.0.1:9", max_retries=0)
    capture(dead.balance)
    capture(KwtSMSClient, USER, PASSWORD, rate=-1)
    assert len(errors) >= 12
    for exc in errors:
        copy = pickle.loads(pickle.dumps(exc))
        for text in (str(exc), repr(exc), repr(exc.args), str(vars(exc)), repr(copy), str(vars(copy))):
            assert PASSWORD not in text, (type(exc), text)
        assert exc.__cause__ is None or PASSWORD not in repr(exc.__cause__)
    assert caplog.records, "expected log lines from the retries"
    assert PASSWORD not in caplog.text


def test_error_objects_survive_pickling(sb):
    with pytest.raises(KwtSMSError) as info:
        client_for(sb).send_batch([KW1], "hi", sender="NOPE", test=True)
    copy = pickle.loads(pickle.dumps(info.value))
    assert (copy.code, copy.description, copy.permanent) == ("ERR008", info.value.description, True)


# --- small fixed servers for answers the sandbox does not give ------------------------------


class _serve:
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _fixed(status: int, answer: dict | str) -> type[BaseHTTPRequestHandler]:
    body = (json.dumps(answer) if isinstance(answer, dict) else answer).encode()

    class Fixed(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    return Fixed
