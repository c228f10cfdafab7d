"""The sandbox's firewall, as the v4.1 documentation states the gateway's: over real HTTP.

More than 5 requests begun within any one second from one address block it (600 s by default);
a blocked request is refused with a TCP reset, recorded, and not processed. Every test runs on a
frozen sandbox clock, so arrivals are exactly where the test puts them with ``advance()``.
"""

from __future__ import annotations

import http.client
import json

import pytest
import requests
from sandbox_helpers import FROZEN_AT, frozen_clock

from airflow_provider_kwtsms.sandbox import Sandbox
from airflow_provider_kwtsms.sandbox.__main__ import build_parser
from airflow_provider_kwtsms.sandbox.firewall import Firewall

USER, PASS = "sandbox_user", "sandbox_pass"
CREDS = {"username": USER, "password": PASS}
SEND = {**CREDS, "sender": "KWT-SMS", "mobile": "96598765432", "message": "hi", "test": "0"}


@pytest.fixture
def sb(kwtsms_sandbox_factory) -> Sandbox:
    return kwtsms_sandbox_factory(clock=frozen_clock(), duplicate_window=0)


class Client:
    """One keep-alive connection from ``source`` (a loopback address); a reset one is replaced."""

    def __init__(self, sb: Sandbox, source: str = "127.0.0.1") -> None:
        self.sb, self.source = sb, source
        self.conn = self._connect()

    def _connect(self) -> http.client.HTTPConnection:
        port, source = self.sb.port, (self.source, 0)
        return http.client.HTTPConnection("127.0.0.1", port, timeout=5, source_address=source)

    def post(self, endpoint: str, body: dict | None = None) -> int | str:
        """The HTTP status, or "reset" when the connection was reset with no answer."""
        try:
            self.conn.request(
                "POST",
                f"/API/{endpoint}/",
                body=json.dumps(CREDS if body is None else body),
                headers={"Content-Type": "application/json"},
            )
            response = self.conn.getresponse()
            response.read()
            return response.status
        except ConnectionResetError:
            self.conn.close()
            self.conn = self._connect()
            return "reset"


def block(sb: Sandbox, client: Client) -> None:
    """Six requests begun within one second: five answered, the sixth refused."""
    assert [client.post("balance") for _ in range(5)] == [200] * 5
    sb.advance(0.99)
    assert client.post("balance") == "reset"


def test_starts_exactly_0_2_s_apart_are_never_blocked(sb):
    client = Client(sb)
    statuses = []
    for i in range(300):  # a minute of sandbox time at the documented maximum
        statuses.append(client.post("send" if i % 3 else "balance", SEND if i % 3 else None))
        sb.advance(0.2)
    assert statuses == [200] * 300
    state = sb.firewall_state()
    assert state["blocks"] == 0 and state["blocked"] == []
    figures = {"requests": 300, "refused": 0, "blocks": 0, "max_in_one_second": 5}
    assert state["clients"]["127.0.0.1"] == figures


def test_steps_of_0_2_s_added_up_in_floats_are_never_blocked():
    # From 0, five float steps of 0.2 s can add up to 0.9999999999999998 s: still a whole second.
    now = [0.0]
    firewall = Firewall(lambda: now[0])
    for _ in range(300):
        assert firewall.admit("127.0.0.1")
        now[0] += 0.2
    assert firewall.state()["max_in_one_second"] == 5


def test_six_within_one_second_block_the_address_and_nothing_is_processed(sb):
    client = Client(sb)
    block(sb, client)
    # Blocked: every request is refused unread, a new connection's too, and none is processed.
    assert client.post("send", SEND) == "reset"
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{sb.url}/API/send/", json=SEND, timeout=5)
    assert sb.messages() == [] and sb.account()["available"] == 1000
    log = sb.requests()
    assert [entry["blocked"] for entry in log] == [False] * 5 + [True] * 3
    assert {entry["client"] for entry in log} == {"127.0.0.1"}
    refused = log[-1]
    assert (refused["code"], refused["endpoint"], refused["http_status"]) == ("BLOCKED", "send", None)
    assert PASS not in json.dumps(log)  # recorded, never with its password
    (blocked,) = sb.firewall_state()["blocked"]
    since = FROZEN_AT + 0.99
    assert blocked == {"address": "127.0.0.1", "since": since, "until": since + 600, "seconds_left": 600.0}
    figures = sb.firewall_state()["clients"]["127.0.0.1"]
    assert figures == {"requests": 8, "refused": 3, "blocks": 1, "max_in_one_second": 8}


def test_the_block_ends_after_block_seconds_and_the_window_starts_empty(kwtsms_sandbox_factory):
    sb = kwtsms_sandbox_factory(clock=frozen_clock(), block_seconds=30)
    client = Client(sb)
    block(sb, client)
    sb.advance(29.9)
    assert client.post("balance") == "reset"  # refused requests do not make the block longer
    sb.advance(0.1)
    assert [client.post("balance") for _ in range(5)] == [200] * 5  # the old starts do not count
    assert client.post("balance") == "reset"
    assert sb.firewall_state()["clients"]["127.0.0.1"]["blocks"] == 2


def test_every_api_request_counts_reads_failed_logins_legacy_and_unknown_paths(sb):
    client = Client(sb)
    assert client.post("balance", {"username": USER, "password": "wrong"}) == 200  # ERR003
    assert client.post("senderid") == 200
    assert client.post("nothing-here") == 404
    client.conn.request("GET", f"/API/balance/?username={USER}&password={PASS}")
    assert client.conn.getresponse().read() == b"1000/1000"  # the legacy API
    client.conn.request("PUT", "/API/coverage/")
    response = client.conn.getresponse()
    assert (response.status, response.read()[:9]) == (405, b'{"result"')
    assert client.post("coverage") == "reset"


def test_the_inbox_and_the_controls_stay_reachable_and_lift_a_block(sb):
    client = Client(sb)
    block(sb, client)
    page = requests.get(sb.url + "/", timeout=5).text  # not the gateway's API: never firewalled
    assert "127.0.0.1</b> blocked since" in page and "600 s left" in page
    assert 'action="/sandbox/unblock"' in page and 'name="address" value="127.0.0.1"' in page
    shown = requests.get(sb.url + "/sandbox/firewall", timeout=5).json()["firewall"]
    assert shown["blocked"][0]["address"] == "127.0.0.1" and shown["clients"]["127.0.0.1"]["blocks"] == 1

    # The inbox's button: a form post, sent back to the inbox.
    lifted = requests.post(sb.url + "/sandbox/unblock", data={"address": "127.0.0.1"}, allow_redirects=False)
    assert lifted.status_code == 303 and lifted.headers["Location"] == "/"
    assert sb.firewall_state()["blocked"] == [] and client.post("balance") == 200
    assert "blocked since" not in requests.get(sb.url + "/", timeout=5).text

    sb.advance(1)
    block(sb, client)
    answer = requests.post(sb.url + "/sandbox/unblock", json={}, timeout=5).json()  # every block
    assert answer["lifted"] == ["127.0.0.1"] and answer["firewall"]["blocked"] == []
    sb.advance(1)
    block(sb, client)
    assert sb.unblock("127.0.0.1") == ["127.0.0.1"] and client.post("balance") == 200
    assert sb.firewall_state()["clients"]["127.0.0.1"]["blocks"] == 3  # lifted blocks still count
    bad = requests.post(sb.url + "/sandbox/unblock", json={"address": 7}, timeout=5)
    assert bad.status_code == 400 and "address" in bad.json()["description"]


def test_another_address_is_not_blocked_by_the_first_ones_block(sb):
    first, second = Client(sb, "127.0.0.1"), Client(sb, "127.0.0.2")
    block(sb, first)
    assert second.post("send", SEND) == 200
    assert first.post("balance") == "reset"
    assert [m["mobile"] for m in sb.messages()] == [["96598765432"]]
    clients = sb.firewall_state()["clients"]
    assert clients["127.0.0.2"] == {"requests": 1, "refused": 0, "blocks": 0, "max_in_one_second": 1}
    assert clients["127.0.0.1"]["blocks"] == 1 and sb.requests()[-2]["client"] == "127.0.0.2"


def test_off_it_blocks_nothing_but_still_keeps_the_figures(kwtsms_sandbox_factory):
    sb = kwtsms_sandbox_factory(clock=frozen_clock(), firewall=False)
    client = Client(sb)
    assert [client.post("balance") for _ in range(20)] == [200] * 20
    state = sb.firewall_state()
    assert not state["enabled"] and state["blocks"] == 0 and state["max_in_one_second"] == 20
    assert "Firewall off." in requests.get(sb.url + "/", timeout=5).text


def test_the_limit_is_configurable_and_reset_forgets_blocks_and_figures(kwtsms_sandbox_factory):
    sb = kwtsms_sandbox_factory(clock=frozen_clock(), firewall_limit=2)
    client = Client(sb)
    assert [client.post("balance") for _ in range(3)] == [200, 200, "reset"]
    sb.reset()
    state = sb.firewall_state()
    assert state["blocked"] == [] and state["clients"] == {} and client.post("balance") == 200


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"firewall_limit": 0}, "firewall_limit"),
        ({"firewall_limit": True}, "firewall_limit"),
        ({"firewall_limit": 2.5}, "firewall_limit"),
        ({"block_seconds": -1}, "block_seconds"),
        ({"block_seconds": float("nan")}, "block_seconds"),
    ],
)
def test_bad_firewall_options_are_refused_by_name(options, named):
    with pytest.raises(ValueError, match=named):
        Sandbox(**options)


def test_the_cli_runs_the_firewall_and_leaves_the_429_tool_off_by_default():
    defaults = build_parser().parse_args([])
    assert (defaults.no_firewall, defaults.firewall_limit, defaults.block_seconds) == (False, 5, 600)
    assert defaults.rate is None
    chosen = build_parser().parse_args(["--no-firewall", "--block-seconds", "30", "--rate", "2"])
    assert (chosen.no_firewall, chosen.block_seconds, chosen.rate) == (True, 30.0, 2.0)
    assert Sandbox().firewall.enabled and Sandbox().gateway.limiter.rate is None
