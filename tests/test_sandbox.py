"""The sandbox's JSON API over real HTTP: every rule with its real error code, charging, status."""

from __future__ import annotations

import pytest
import requests

from airflow_provider_kwtsms.sandbox import Sandbox

USER, PASS = "sandbox_user", "sandbox_pass"
KW1, KW2, KW3 = "96598765432", "96550001111", "96566002222"


def api(sb: Sandbox, endpoint: str, *, user: str = USER, password: str = PASS, **fields) -> dict:
    body = {"username": user, "password": password, **fields}
    response = requests.post(
        f"{sb.url}/API/{endpoint}/", json=body, timeout=5, headers={"Accept": "application/json"}
    )
    data = response.json()
    data["_http"] = response.status_code
    return data


def send(
    sb: Sandbox, mobile: str = KW1, message: str = "Hello", sender: str = "KWT-SMS", test: str = "0", **extra
) -> dict:
    return api(sb, "send", sender=sender, mobile=mobile, message=message, test=test, **extra)


@pytest.fixture
def sb(kwtsms_sandbox_factory) -> Sandbox:
    return kwtsms_sandbox_factory(rate=None, senders=["KWT-SMS", "MY-APP"], coverage=["965", "971"])


def test_plugin_fixture_is_registered_through_entry_point(pytestconfig, kwtsms_sandbox):
    assert pytestconfig.pluginmanager.hasplugin("kwtsms_sandbox")
    assert kwtsms_sandbox.url.startswith("http://127.0.0.1:")
    assert api(kwtsms_sandbox, "balance")["result"] == "OK"


def test_context_manager_uses_a_free_port_and_stops():
    with Sandbox(username="u1", password="p1", balance=50, senders=["MY-APP"]) as sb:
        url = sb.url
        data = api(sb, "balance", user="u1", password="p1")
        assert (data["result"], data["available"], data["purchased"]) == ("OK", 50, 50)
    with pytest.raises(requests.ConnectionError):
        requests.post(url + "/API/balance/", json={}, timeout=2)


def test_balance_senderid_coverage(sb):
    assert api(sb, "balance")["available"] == 1000
    assert api(sb, "senderid")["senderid"] == ["KWT-SMS", "MY-APP"]
    assert api(sb, "coverage")["prefixes"] == ["965", "971"]


def test_err033_when_no_coverage(kwtsms_sandbox_factory):
    sb = kwtsms_sandbox_factory(rate=None, coverage=[])
    assert api(sb, "coverage")["code"] == "ERR033"


def test_err003_wrong_credentials_and_err002_missing(sb):
    assert api(sb, "balance", password="nope")["code"] == "ERR003"
    assert api(sb, "balance", user="nobody")["code"] == "ERR003"
    answer = requests.post(f"{sb.url}/API/balance/", json={"username": USER}, timeout=5).json()
    assert answer["code"] == "ERR002" and "password" in answer["description"]
    sb.advance(1)  # a person's pace: the firewall blocks a 6th request within one second
    for missing in ("sender", "mobile", "message"):
        fields = {"sender": "KWT-SMS", "mobile": KW1, "message": "hi"}
        del fields[missing]
        answer = api(sb, "send", **fields)
        assert answer["code"] == "ERR002" and missing in answer["description"]


def test_send_charges_numbers_times_pages_and_answers_like_the_api(sb):
    before = sb.now()
    data = send(sb, mobile=f"{KW1},{KW2}", message="a" * 161)  # 2 pages x 2 numbers
    assert data["result"] == "OK"
    assert len(data["msg-id"]) == 32
    assert (data["numbers"], data["points-charged"], data["balance-after"]) == (2, 4, 996)
    # GMT+3: the answer's unix-timestamp is the real epoch plus three hours.
    assert abs(data["unix-timestamp"] - (before + 10800)) < 5
    assert api(sb, "balance")["available"] == 996
    (message,) = sb.messages()
    assert message["msg_id"] == data["msg-id"]
    assert message["mobile"] == [KW1, KW2]
    summary = (message["encoding"], message["pages"], message["points"], message["test"])
    assert summary == ("GSM-7", 2, 4, False)
    assert message["sender"] == "KWT-SMS" and message["message"] == "a" * 161
    assert sb.account()["available"] == 996


def test_arabic_is_ucs2_and_extension_chars_count_two(sb):
    assert send(sb, mobile=KW1, message="ب" * 71)["points-charged"] == 2
    assert send(sb, mobile=KW2, message="€" * 80)["points-charged"] == 1
    assert send(sb, mobile=KW3, message="€" * 81)["points-charged"] == 2
    assert [m["encoding"] for m in sb.messages()] == ["UCS-2", "GSM-7", "GSM-7"]


def test_test_flag_queues_without_charging_or_delivering(sb):
    data = send(sb, test="1")
    assert data["result"] == "OK" and data["points-charged"] == 0 and data["balance-after"] == 1000
    assert sb.messages()[0]["test"] is True
    sb.advance(60)
    assert api(sb, "status", msgid=data["msg-id"])["code"] == "ERR030"
    assert api(sb, "dlr", msgid=data["msg-id"])["code"] == "ERR019"


def test_test_charges_option(kwtsms_sandbox_factory):
    sb = kwtsms_sandbox_factory(rate=None, test_charges=True)
    assert send(sb, test="1")["points-charged"] == 1
    assert sb.account()["available"] == 999


def test_err008_sender_is_case_sensitive(sb):
    assert send(sb, sender="my-app")["code"] == "ERR008"
    assert send(sb, sender="MY-APP")["result"] == "OK"


def test_err007_more_than_200_numbers(sb):
    numbers = [f"9659{i:07d}" for i in range(201)]
    assert send(sb, mobile=",".join(numbers))["code"] == "ERR007"
    assert send(sb, mobile=",".join(numbers[:200]))["numbers"] == 200


def test_err025_err006_err026_numbers(sb):
    assert send(sb, mobile="12345")["code"] == "ERR025"  # one invalid number
    assert send(sb, mobile="96512345678")["code"] == "ERR025"  # Kuwait mobile must start 4/5/6/9
    assert send(sb, mobile="+96598765432")["code"] == "ERR025"  # the client must normalise
    assert send(sb, mobile="abc,123")["code"] == "ERR006"  # several, none valid
    assert send(sb, mobile="447700900123")["code"] == "ERR026"  # valid UK number, no coverage
    assert sb.messages() == [] and sb.account()["available"] == 1000


def test_mixed_numbers_send_to_the_valid_ones_and_record_the_rest(sb):
    data = send(sb, mobile=f"{KW1},abc,447700900123,{KW1}")
    assert (data["result"], data["numbers"], data["points-charged"]) == ("OK", 1, 1)
    message = sb.messages()[0]
    assert message["mobile"] == [KW1]
    assert message["rejected"] == [
        {"number": "abc", "code": "ERR025"},
        {"number": "447700900123", "code": "ERR026"},
    ]


def test_partial_numbers_reject_option(kwtsms_sandbox_factory):
    sb = kwtsms_sandbox_factory(rate=None, partial_numbers="reject")
    assert send(sb, mobile=f"{KW1},abc")["code"] == "ERR025"
    assert sb.messages() == []


def test_validate_sorts_ok_er_nr(sb):
    data = api(sb, "validate", mobile=f"{KW1},abc,447700900123,971501234567")
    assert data["mobile"] == {"OK": [KW1, "971501234567"], "ER": ["abc"], "NR": ["447700900123"]}


def test_err009_empty_message(sb):
    assert send(sb, message="   ")["code"] == "ERR009"


def test_err027_html_but_not_comparisons(sb):
    assert send(sb, mobile=KW1, message="<b>hi</b>")["code"] == "ERR027"
    assert send(sb, mobile=KW1, message="x < y and y > z")["result"] == "OK"


def test_err012_page_limit_default_6_and_configurable(sb, kwtsms_sandbox_factory):
    # v4.1: "Cannot send more than 6 page messages" (ERR012); one client saw 7 pass live.
    assert send(sb, mobile=KW1, message="a" * 919)["code"] == "ERR012"  # 7 pages
    assert send(sb, mobile=KW1, message="a" * 918)["points-charged"] == 6
    seven = kwtsms_sandbox_factory(rate=None, max_pages=7)
    assert send(seven, mobile=KW1, message="a" * 1071)["points-charged"] == 7
    assert send(seven, mobile=KW1, message="a" * 1072)["code"] == "ERR012"


def test_err010_and_err011_balance(kwtsms_sandbox_factory):
    sb = kwtsms_sandbox_factory(rate=None, balance=3)
    assert send(sb, mobile=f"{KW1},{KW2}", message="a" * 200)["code"] == "ERR011"  # needs 4
    assert send(sb, mobile=KW1, message="a" * 300)["balance-after"] == 1
    assert send(sb, mobile=KW2)["balance-after"] == 0
    assert send(sb, mobile=KW3)["code"] == "ERR010"
    assert len(sb.messages()) == 2


def test_err028_same_number_within_15_seconds_refuses_whole_request(sb):
    assert send(sb, mobile=KW1)["result"] == "OK"
    sb.advance(14.5)
    refused = send(sb, mobile=f"{KW2},{KW1}")
    assert refused["code"] == "ERR028" and KW1 in refused["description"]
    assert sb.account()["available"] == 999 and len(sb.messages()) == 1  # nothing charged
    sb.advance(0.6)
    assert send(sb, mobile=f"{KW2},{KW1}")["numbers"] == 2
    assert sb.delivery_counts() == {KW1: 2, KW2: 1}


def test_err013_queue_full_then_drains(kwtsms_sandbox_factory):
    sb = kwtsms_sandbox_factory(rate=None, queue_size=3, drain_rate=1.0, duplicate_window=0)
    for _ in range(3):
        assert send(sb)["result"] == "OK"
    assert send(sb)["code"] == "ERR013"
    assert len(sb.messages()) == 3 and sb.account()["available"] == 997
    sb.advance(1.01)  # one message left the queue
    assert send(sb)["result"] == "OK"


def test_status_and_dlr_advance_over_time(kwtsms_sandbox_factory):
    sb = kwtsms_sandbox_factory(rate=None, drain_rate=1.0, deliver_after=5.0, undeliverable=[KW2])
    msg_id = send(sb, mobile=f"{KW1},{KW2}")["msg-id"]
    status = api(sb, "status", msgid=msg_id)
    assert (status["result"], status["status"]) == ("OK", "QUEUED") and status["description"]
    assert api(sb, "dlr", msgid=msg_id)["code"] == "ERR021"
    sb.advance(1.0)
    assert api(sb, "status", msgid=msg_id)["status"] == "SENT"
    assert api(sb, "dlr", msgid=msg_id)["report"] == [
        {"Number": KW1, "Status": "PENDING"},
        {"Number": KW2, "Status": "PENDING"},
    ]
    sb.advance(5.0)
    assert api(sb, "status", msgid=msg_id)["status"] == "DELIVERED"
    assert api(sb, "dlr", msgid=msg_id)["report"] == [
        {"Number": KW1, "Status": "DELIVERED"},
        {"Number": KW2, "Status": "FAILED"},
    ]
    assert sb.messages()[0]["delivery"] == {KW1: "DELIVERED", KW2: "FAILED"}


def test_err020_err029_unknown_message_ids(sb):
    assert api(sb, "status", msgid="0" * 32)["code"] == "ERR020"
    assert api(sb, "status", msgid="not-an-id")["code"] == "ERR029"
    assert api(sb, "dlr", msgid="f" * 32)["code"] == "ERR020"
    assert api(sb, "status")["code"] == "ERR002"


def test_message_ids_are_private_to_their_account(sb):
    msg_id = send(sb)["msg-id"]
    assert api(sb, "status", user="myuser", password="mypass", msgid=msg_id)["code"] == "ERR020"


def test_emoji_message_is_accepted_but_stuck_in_queue(sb):
    data = send(sb, message="Hi 🎉")
    assert data["result"] == "OK" and data["points-charged"] == 1
    sb.advance(60)
    assert api(sb, "status", msgid=data["msg-id"])["code"] == "ERR030"
    assert sb.messages()[0]["stuck"] is True


def test_error_status_modes(kwtsms_sandbox_factory, sb):
    assert api(sb, "balance", password="x")["_http"] == 200
    strict = kwtsms_sandbox_factory(rate=None, error_status="4xx")
    answer = api(strict, "balance", password="x")
    assert (answer["_http"], answer["code"]) == (401, "ERR003")
    assert send(strict, mobile="1")["_http"] == 400
    assert api(strict, "balance")["_http"] == 200


def test_messages_record_request_and_time_and_http_inspection(sb):
    send(sb, mobile=KW1)
    send(sb, mobile=KW2, test="1")
    messages = requests.get(f"{sb.url}/sandbox/messages", timeout=5).json()["messages"]
    assert [m["mobile"] for m in messages] == [[KW1], [KW2]]
    assert messages[0]["request_id"] < messages[1]["request_id"]
    assert messages[0]["received_at"] <= messages[1]["received_at"]
    seen = sb.requests()
    assert [r["endpoint"] for r in seen] == ["send", "send"]
    assert [r["code"] for r in seen] == ["OK", "OK"]
    assert sb.delivery_counts(include_test=False) == {KW1: 1}
    account = requests.get(f"{sb.url}/sandbox/account", timeout=5).json()
    assert account["available"] == 999 and "password" not in account
    assert requests.post(f"{sb.url}/sandbox/reset", timeout=5).json()["result"] == "OK"
    assert sb.messages() == [] and sb.account()["available"] == 1000 and sb.requests() == []


def test_extra_accounts(kwtsms_sandbox_factory):
    sb = kwtsms_sandbox_factory(rate=None, accounts=[{"username": "u2", "password": "p2", "balance": 5}])
    assert api(sb, "balance", user="u2", password="p2")["available"] == 5
    assert sb.account("u2")["available"] == 5
    with pytest.raises(KeyError, match="no sandbox account"):
        sb.account("ghost")


def test_bad_options_are_refused_clearly():
    with pytest.raises(ValueError, match="partial_numbers"):
        Sandbox(partial_numbers="maybe")
    with pytest.raises(ValueError, match="error_status"):
        Sandbox(error_status="500")


def test_stop_also_closes_keep_alive_connections():
    sb = Sandbox(rate=None).start()
    with requests.Session() as session:
        assert (
            session.post(
                sb.url + "/API/balance/", json={"username": USER, "password": PASS}, timeout=5
            ).status_code
            == 200
        )
        url = sb.url
        sb.stop()
        with pytest.raises(requests.ConnectionError):
            session.post(url + "/API/balance/", json={"username": USER, "password": PASS}, timeout=5)


@pytest.mark.parametrize(
    ("message", "stuck"),
    [
        ("Rate us ⭐", False),  # what the official client sends: U+2B50 is outside the named blocks
        ("طلبك ٣ جاهز", False),  # Arabic-Indic digits: our cleaner converts them, the gateway takes them
        ("line one\r\nline two", False),
        ("Hi 🎉", True),
        ("Flag 🇰🇼", True),
        ("zero\u200bwidth", True),
        ("soft\u00adhyphen", True),
        ("pasted\ufffcimage", True),
        ("bell\x07", True),
    ],
)
def test_the_queue_holds_what_the_gateway_documents_emoji_and_hidden_characters(sb, message, stuck):
    data = send(sb, message=message)
    assert data["result"] == "OK"
    sb.advance(60)
    assert sb.messages()[0]["stuck"] is stuck
    status = api(sb, "status", msgid=data["msg-id"])
    assert (status.get("code") == "ERR030") is stuck
