"""The 2009 legacy GET API: the document's sample calls, verbatim, and its plain-text answers."""

from __future__ import annotations

import re
import socket
from urllib.parse import quote_from_bytes

import pytest
import requests

from airflow_provider_kwtsms.sandbox import Sandbox

# The sample calls exactly as printed in the 2009 document (only the host changes).
SAMPLE_BALANCE = "/API/balance/?username=myuser&password=mypass"
SAMPLE_SENDERID = "/API/senderid/?username=myuser&password=mypass"
SAMPLE_SEND = (
    "/API/send/?username=myuser&password=mypass&sender=KWT-MESSAGE&mobile=96597119440"
    "&lang=2&message=عربي+تجربة"
)


@pytest.fixture
def sb(kwtsms_sandbox_factory) -> Sandbox:
    return kwtsms_sandbox_factory(rate=None)


def get(sb: Sandbox, path: str) -> requests.Response:
    return requests.get(sb.url + path, timeout=5)


def raw_get(sb: Sandbox, target: bytes) -> tuple[int, str]:
    """A GET whose request line carries ``target`` byte for byte (as a browser or curl may)."""
    with socket.create_connection(("127.0.0.1", sb.port), timeout=5) as conn:
        conn.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode("utf-8")


def test_sample_balance_verbatim(sb):
    response = get(sb, SAMPLE_BALANCE)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain")
    assert response.text == "181/377"


def test_sample_senderid_verbatim(sb):
    assert get(sb, SAMPLE_SENDERID).text == "KWT-MESSAGE"


def test_sample_send_verbatim(sb):
    text = get(sb, SAMPLE_SEND).text
    match = re.fullmatch(r"OK:([0-9a-f]{32}):1:1:180:(\d+)", text)
    assert match, text
    message = sb.messages()[-1]
    assert message["message"] == "عربي تجربة"  # "+" read as a space, Arabic intact
    assert (message["msg_id"], message["encoding"], message["mobile"]) == (match[1], "UCS-2", ["96597119440"])
    assert int(match[2]) == message["unix_timestamp"]
    assert get(sb, SAMPLE_BALANCE).text == "180/377"


def test_sample_send_with_raw_utf8_in_the_request_line(sb):
    status, body = raw_get(sb, SAMPLE_SEND.encode("utf-8"))
    assert status == 200 and body.startswith("OK:")
    assert sb.messages()[-1]["message"] == "عربي تجربة"


def test_lang_2_windows_1256_bytes(sb):
    encoded = quote_from_bytes("مرحبا بكم".encode("cp1256"))
    status, body = raw_get(
        sb,
        (
            "/API/send/?username=myuser&password=mypass&sender=KWT-MESSAGE&mobile=96597119440"
            f"&lang=2&message={encoded}"
        ).encode(),
    )
    assert status == 200 and body.startswith("OK:")
    assert sb.messages()[-1]["message"] == "مرحبا بكم"


@pytest.mark.parametrize("lang", ["1", "3", "4"])
def test_other_langs(sb, lang):
    text = "Hello+World" if lang == "1" else quote_from_bytes("سلام عليكم".encode())
    body = get(
        sb,
        f"/API/send/?username=myuser&password=mypass&sender=KWT-MESSAGE"
        f"&mobile=96597119440&lang={lang}&message={text}",
    ).text
    assert body.startswith("OK:")
    assert sb.messages()[-1]["message"] == ("Hello World" if lang == "1" else "سلام عليكم")


def test_sender_plus_means_space(kwtsms_sandbox_factory):
    sb = kwtsms_sandbox_factory(rate=None, senders=["KWT SMS"])
    body = get(
        sb,
        "/API/send/?username=sandbox_user&password=sandbox_pass&sender=KWT+SMS"
        "&mobile=96598765432&lang=1&message=hi",
    ).text
    assert body.startswith("OK:") and sb.messages()[0]["sender"] == "KWT SMS"


def test_legacy_errors_are_plain_text_codes(sb):
    assert get(sb, "/API/balance/?username=myuser&password=wrong").text.startswith("ERR003:")
    assert get(sb, "/API/balance/?username=myuser").text.startswith("ERR002:")
    assert get(
        sb, "/API/send/?username=myuser&password=mypass&sender=nope&mobile=96597119440&lang=1&message=x"
    ).text.startswith("ERR008:")


def test_legacy_other_endpoints(sb):
    assert get(sb, "/API/coverage/?username=myuser&password=mypass").text == "965"
    text = get(sb, "/API/validate/?username=myuser&password=mypass&mobile=96597119440,abc").text
    assert text.splitlines() == ["OK:96597119440", "ER:abc", "NR:"]


def test_post_without_json_content_type_falls_back_to_legacy(sb):
    response = requests.post(
        f"{sb.url}/API/balance/", data={"username": "myuser", "password": "mypass"}, timeout=5
    )
    assert response.text == "181/377"
    assert sb.requests()[-1]["api"] == "legacy"


def test_doc_account_can_be_left_out(kwtsms_sandbox_factory):
    sb = kwtsms_sandbox_factory(rate=None, doc_account=False)
    assert get(sb, SAMPLE_BALANCE).text.startswith("ERR003:")
