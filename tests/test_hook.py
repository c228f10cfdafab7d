"""KwtSMSHook: connection parsing, test_connection against the sandbox, and `airflow connections test`."""

from __future__ import annotations

import json

import pytest
from airflow.sdk import Connection
from airflow_support import kwtsms_conn_json, kwtsms_conn_uri

from airflow_provider_kwtsms.errors import KwtSMSInputError
from airflow_provider_kwtsms.hooks.kwtsms import (
    DEFAULT_BASE_URL,
    KwtSMSHook,
    base_url_from,
    settings_from_connection,
)
from airflow_provider_kwtsms.version_compat import AIRFLOW_V_3_1_PLUS, AIRFLOW_V_3_3_PLUS

pytestmark = pytest.mark.compat

USER = "ops_api"
# Characters that need quoting in a URI, and a value easy to spot in any output.
PASSWORD = "Zq9/secret:pw@x"


def _conn(**kwargs) -> Connection:
    kwargs.setdefault("conn_id", "kwtsms_test")
    kwargs.setdefault("conn_type", "kwtsms")
    return Connection(**kwargs)


def _from_uri(uri: str, conn_id: str):
    """The connection Airflow builds from an ``AIRFLOW_CONN_...`` URI, as the hook receives it."""
    if AIRFLOW_V_3_1_PLUS:
        return Connection.from_uri(uri, conn_id=conn_id)
    from airflow.models.connection import Connection as ModelConnection  # 3.0's BaseHook returns this

    return ModelConnection(conn_id=conn_id, uri=uri)


@pytest.fixture
def sandbox(kwtsms_sandbox_factory):
    return kwtsms_sandbox_factory(
        username=USER, password=PASSWORD, balance=181, purchased=377, senders=["KWT-SMS", "MY-APP"]
    )


# --- connection -> settings ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        (None, None, DEFAULT_BASE_URL),
        ("", None, DEFAULT_BASE_URL),
        ("www.kwtsms.com", None, "https://www.kwtsms.com"),  # no scheme: https, never plain http
        ("http://127.0.0.1", 8765, "http://127.0.0.1:8765"),
        ("http://127.0.0.1:8765/", None, "http://127.0.0.1:8765"),
        ("https://gw.example/kwt", 8443, "https://gw.example:8443/kwt"),
    ],
)
def test_base_url_from_host_and_port(host, port, expected):
    assert base_url_from(host, port) == expected


def test_uri_form_carries_the_scheme_port_and_extras():
    uri = kwtsms_conn_uri(
        "http://127.0.0.1:8765",
        USER,
        PASSWORD,
        sender="MY-APP",
        test_mode="true",
        default_country="965",
        timeout="12",
        rate="1.5",
    )
    settings = settings_from_connection(_from_uri(uri, "kwtsms_default"))
    assert settings.username == USER
    assert settings.password == PASSWORD  # quoted in the URI, exact after parsing
    assert settings.base_url == "http://127.0.0.1:8765"
    assert (settings.sender, settings.test_mode, settings.default_country) == ("MY-APP", True, "965")
    assert (settings.timeout, settings.rate) == (12.0, 1.5)
    # The client gets a short connect timeout and the configured read timeout.
    assert settings.client_kwargs()["timeout"] == (5.0, 12.0)


def test_defaults_when_extras_are_empty():
    settings = settings_from_connection(_conn(login=USER, password=PASSWORD))
    assert settings.base_url == DEFAULT_BASE_URL
    assert (settings.sender, settings.test_mode, settings.default_country) == ("KWT-SMS", False, None)
    assert (settings.timeout, settings.rate) == (30.0, 2.0)


def test_prefixed_extras_are_read_and_plain_names_win():
    extra = {
        "extra__kwtsms__sender": "OLD-APP",
        "extra__kwtsms__test_mode": True,
        "extra__kwtsms__default_country": "+965",
        "sender": "MY-APP",
    }
    settings = settings_from_connection(_conn(login=USER, password=PASSWORD, extra=json.dumps(extra)))
    assert (settings.sender, settings.test_mode, settings.default_country) == ("MY-APP", True, "965")


def test_hook_arguments_override_extras():
    conn = _conn(
        login=USER,
        password=PASSWORD,
        host="https://a.example",
        extra=json.dumps({"sender": "MY-APP", "test_mode": True, "rate": 5}),
    )
    settings = settings_from_connection(
        conn, sender="OTHER", test_mode=False, rate=None, base_url="http://127.0.0.1:1"
    )
    assert (settings.sender, settings.test_mode, settings.rate) == ("OTHER", False, 5.0)
    assert settings.base_url == "http://127.0.0.1:1"


@pytest.mark.parametrize("rate", [5.5, 10, float("inf"), 0, float("nan")])
def test_a_hook_rate_override_is_checked_as_the_extra_is(rate):
    conn = _conn(login=USER, password=PASSWORD, extra=json.dumps({"rate": 2}))
    with pytest.raises(KwtSMSInputError, match=r"The argument rate is .*from 0\.1 to 5"):
        settings_from_connection(conn, rate=rate)


def test_the_connection_form_allows_at_most_the_documented_rate():
    from airflow_provider_kwtsms.constants import MAX_RATE, MIN_RATE
    from airflow_provider_kwtsms.get_provider_info import CONN_FIELDS

    schema = CONN_FIELDS["rate"]["schema"]
    assert (schema["minimum"], schema["maximum"]) == (MIN_RATE, MAX_RATE)
    assert "firewall blocks the IP above 5" in CONN_FIELDS["rate"]["description"]


@pytest.mark.parametrize(
    ("extra", "named", "advice"),
    [
        ({"timeout": "soon"}, "'timeout'", "write a number"),
        ({"rate": 0}, "'rate'", "from 0.1 to 5"),
        ({"rate": "NaN"}, "'rate'", "from 0.1 to 5"),
        ({"rate": 6}, "'rate'", "the gateway's firewall blocks the IP above 5 requests a second"),
        ({"rate": "1000"}, "'rate'", "(kwtSMS API v4.1)"),
        ({"test_mode": "maybe"}, "'test_mode'", "true or false"),
        ({"default_country": "Kuwait"}, "'default_country'", "965"),
        ({"default_country": "XX"}, "'default_country'", "'KW'"),
        ({"smart_encoding": "perhaps"}, "'smart_encoding'", "true or false"),
        ({"timezone": "Mars/Olympus"}, "'Mars/Olympus'", "IANA name"),
    ],
)
def test_bad_extras_name_the_field_and_the_fix(extra, named, advice):
    # One reading per kind (coerce): the same words mean the same thing in every setting.
    with pytest.raises(KwtSMSInputError) as caught:
        settings_from_connection(_conn(login=USER, password=PASSWORD, extra=json.dumps(extra)))
    assert named in str(caught.value) and advice in str(caught.value)
    assert "kwtsms_test" in str(caught.value)


@pytest.mark.parametrize(
    ("login", "password", "missing"), [(None, PASSWORD, "login"), (USER, "", "password")]
)
def test_missing_credentials_are_explained(login, password, missing):
    with pytest.raises(KwtSMSInputError, match=f"has no {missing}: set it to your kwtSMS API"):
        settings_from_connection(_conn(login=login, password=password))


def test_repr_never_shows_the_password(sandbox, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_KWTSMS_DEFAULT", kwtsms_conn_json(sandbox.url, USER, PASSWORD))
    hook = KwtSMSHook(sender="MY-APP")
    client = hook.get_client()
    assert hook.get_client() is client  # cached
    for text in (repr(hook), str(hook), repr(hook.settings), repr(client)):
        assert PASSWORD not in text
    assert "sender='MY-APP'" in repr(hook)
    hook.close()


# --- test_connection against the sandbox -------------------------------------------------------


def test_test_connection_reports_balance_and_sender_ids(sandbox, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_KWTSMS_DEFAULT", kwtsms_conn_uri(sandbox.url, USER, PASSWORD))
    ok, message = KwtSMSHook().test_connection()
    assert ok is True
    assert message == (
        f"Connected to kwtSMS as {USER} at {sandbox.url}: balance 181 of 377 credits; "
        "sender IDs: KWT-SMS, MY-APP"
    )


def test_test_connection_warns_about_an_unregistered_sender(sandbox, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_KWTSMS_DEFAULT",
        kwtsms_conn_json(sandbox.url, USER, PASSWORD, sender="my-app", test_mode=True),
    )
    ok, message = KwtSMSHook().test_connection()
    assert ok is True
    assert "sender 'my-app' is not among them (sender IDs are case-sensitive)" in message
    assert "Test mode is on" in message


def test_test_connection_with_a_wrong_password_says_what_to_fix(sandbox, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_KWTSMS_DEFAULT", kwtsms_conn_uri(sandbox.url, USER, "wrong-pw"))
    ok, message = KwtSMSHook().test_connection()
    assert ok is False
    assert message.startswith("ERR003: Authentication error")
    assert "Fix the connection's login (API username) and password" in message
    assert "wrong-pw" not in message


def test_a_password_holding_an_ordinary_word_does_not_mask_the_advice(sandbox, monkeypatch):
    # The browser's Test button showed "username or *** are not correct" for such a password.
    wrong = "not-the-password-42"
    monkeypatch.setenv("AIRFLOW_CONN_KWTSMS_DEFAULT", kwtsms_conn_json(sandbox.url, USER, wrong))
    ok, message = KwtSMSHook().test_connection()
    assert ok is False
    assert "username or password are not correct" in message
    assert "Fix the connection's login (API username) and password" in message
    assert wrong not in message


def test_unexpected_errors_are_scrubbed_of_every_form_of_the_password():
    from airflow_provider_kwtsms.hooks.kwtsms import explain_error

    settings = settings_from_connection(_conn(login=USER, password=PASSWORD, host="http://127.0.0.1:1"))
    quoted = "Zq9%2Fsecret%3Apw%40x"  # the form-encoded form, as a library's error might echo it
    text = explain_error(RuntimeError(f"boom {PASSWORD} and {quoted}"), settings)
    assert text.startswith("Unexpected RuntimeError: boom")
    assert PASSWORD not in text and quoted not in text and "secret" not in text


def test_test_connection_when_the_gateway_is_unreachable(kwtsms_sandbox_factory, monkeypatch):
    sandbox = kwtsms_sandbox_factory(username=USER, password=PASSWORD)
    url = sandbox.url
    sandbox.stop()  # nothing listens on that port any more
    monkeypatch.setenv("AIRFLOW_CONN_KWTSMS_DEFAULT", kwtsms_conn_json(url, USER, PASSWORD, timeout=2))
    ok, message = KwtSMSHook().test_connection()
    assert ok is False
    assert f"check the connection's API base URL ({url})" in message
    assert PASSWORD not in message


def test_test_connection_with_an_incomplete_connection(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_KWTSMS_DEFAULT", json.dumps({"conn_type": "kwtsms", "login": USER}))
    assert KwtSMSHook().test_connection() == (
        False,
        "Connection 'kwtsms_default' has no password: set it to your kwtSMS API password "
        "(not the account's phone number).",
    )


# The documented field sizes (v4.1): the Test button names the field, its length and the limit.
LONG_FIELDS = [
    ({"login": "u" * 16}, "Connection 'kwtsms_default' Login (the API username) is 16 characters long", 15),
    (
        {"password": "p" * 31},
        "Connection 'kwtsms_default' Password (the API password) is 31 characters long;",
        30,
    ),
    ({"sender": "TWELVE-CHARS"}, "Connection 'kwtsms_default' extra 'sender' is 12 characters long", 11),
]


@pytest.mark.parametrize(("field", "named", "limit"), LONG_FIELDS, ids=["login", "password", "sender"])
def test_test_connection_names_a_field_over_its_documented_size(
    kwtsms_sandbox_factory, monkeypatch, field, named, limit
):
    login, password, sender = "u" * 15, "p" * 30, "ELEVEN-CHAR"  # each at its limit
    sandbox = kwtsms_sandbox_factory(username=login, password=password, senders=["KWT-SMS", sender])
    conn = kwtsms_conn_json(sandbox.url, login, password, sender=sender)
    monkeypatch.setenv("AIRFLOW_CONN_KWTSMS_DEFAULT", conn)
    assert KwtSMSHook().test_connection()[0] is True  # at the limit: connected
    before = len(sandbox.requests())
    values = {"login": login, "password": password, "sender": sender, **field}
    conn = kwtsms_conn_json(sandbox.url, values["login"], values["password"], sender=values["sender"])
    monkeypatch.setenv("AIRFLOW_CONN_KWTSMS_DEFAULT", conn)
    ok, message = KwtSMSHook().test_connection()
    assert ok is False
    assert message.startswith(named) and f"kwtSMS accepts at most {limit} (API v4.1)" in message
    assert "p" * 31 not in message
    assert len(sandbox.requests()) == before  # refused before any request


# --- the real `airflow connections test` -------------------------------------------------------


@pytest.mark.airflow
@pytest.mark.parametrize("form", [pytest.param("uri", marks=pytest.mark.heavy), "json"])  # uri: 3.3 only
def test_airflow_connections_test_succeeds_with_both_env_forms(airflow, sandbox, form):
    make = kwtsms_conn_uri if form == "uri" else kwtsms_conn_json
    result = airflow.run(
        "connections",
        "test",
        "kwtsms_default",
        env={"AIRFLOW_CONN_KWTSMS_DEFAULT": make(sandbox.url, USER, PASSWORD)},
    )
    result.check()
    assert "Connection success!" in result.stdout
    # What the test found is printed too, not only "Connection success!" (issue 15).
    assert "balance 181 of 377 credits; sender IDs: KWT-SMS, MY-APP" in result.stdout
    assert PASSWORD not in result.output
    # One balance and one sender-ID call answered OK (a 429 retry under load may add a request).
    assert [r["endpoint"] for r in sandbox.requests() if r["code"] == "OK"] == ["balance", "senderid"], (
        sandbox.requests()
    )


@pytest.mark.airflow
@pytest.mark.heavy  # on 3.3 only: the same CLI path as the two tests above, run on every release
def test_airflow_connections_test_prints_the_unregistered_sender_warning(airflow, sandbox):
    conn = kwtsms_conn_json(sandbox.url, USER, PASSWORD, sender="NOT-MINE")
    result = airflow.run("connections", "test", "kwtsms_default", env={"AIRFLOW_CONN_KWTSMS_DEFAULT": conn})
    result.check()
    assert "Warning: the connection's sender 'NOT-MINE' is not among them" in result.stdout
    assert "sends would fail with ERR008" in result.stdout


@pytest.mark.airflow
@pytest.mark.heavy  # on 3.3 only: the older releases run the CLI's Test path above (json form)
def test_airflow_connections_test_fails_with_guidance_on_a_wrong_password(airflow, sandbox):
    result = airflow.run(
        "connections",
        "test",
        "kwtsms_default",
        env={"AIRFLOW_CONN_KWTSMS_DEFAULT": kwtsms_conn_uri(sandbox.url, USER, "Bad/pw:1")},
    )
    # Before 3.3 the command exits 0 whatever the outcome (docs/airflow-versions.md): read its output.
    assert result.returncode == (1 if AIRFLOW_V_3_3_PLUS else 0)
    assert "Connection failed!" in result.stdout
    assert "ERR003: Authentication error" in result.stdout
    assert "Fix the connection's login (API username) and password" in result.stdout
    assert "Bad/pw:1" not in result.output and "Bad%2Fpw" not in result.output


@pytest.mark.airflow
@pytest.mark.heavy  # on 3.3 only: the same CLI path as the two tests above, run on every release
def test_airflow_connections_test_names_a_password_over_30_characters(airflow, sandbox):
    long_password = "Q" * 31
    result = airflow.run(
        "connections",
        "test",
        "kwtsms_default",
        env={"AIRFLOW_CONN_KWTSMS_DEFAULT": kwtsms_conn_json(sandbox.url, USER, long_password)},
    )
    assert result.returncode == (1 if AIRFLOW_V_3_3_PLUS else 0)
    assert "Connection failed!" in result.stdout
    assert (
        "Password (the API password) is 31 characters long; kwtSMS accepts at most 30" in result.flat_output
    )
    assert long_password not in result.output
    assert sandbox.requests() == []


@pytest.mark.parametrize("country", ["KW", "kw", "965", "+965", "00965", 965])
def test_default_country_accepts_iso_and_calling_codes_as_the_form_says(country):
    conn = _conn(login=USER, password=PASSWORD, extra=json.dumps({"default_country": country}))
    assert settings_from_connection(conn).default_country == "965"


def test_smart_encoding_and_timezone_extras():
    conn = _conn(
        login=USER,
        password=PASSWORD,
        extra=json.dumps({"smart_encoding": "false", "timezone": "Asia/Riyadh"}),
    )
    settings = settings_from_connection(conn)
    assert settings.smart_encoding is False and settings.timezone == "Asia/Riyadh"
    assert settings.client_kwargs()["smart_encoding"] is False
    default = settings_from_connection(_conn(login=USER, password=PASSWORD))
    assert default.smart_encoding is True and default.timezone == "Asia/Kuwait"


def test_aget_client_never_reads_the_connection_blocking_on_the_event_loop(monkeypatch):
    """docs/connection.md: ``await hook.aget_client()`` reads the connection without blocking an
    event loop (the triggerer's): through Airflow's asynchronous read where the release has one
    (3.1+), else the blocking read in a worker thread (3.0). The blocking read is watched: it
    must never run on the loop's own thread."""
    import asyncio
    import threading

    conn = kwtsms_conn_json("http://127.0.0.1:9", "u", "Async-pa55")
    monkeypatch.setenv("AIRFLOW_CONN_KWTSMS_DEFAULT", conn)
    blocking_reads: list[threading.Thread] = []
    read = KwtSMSHook.get_connection

    def watched(conn_id):
        blocking_reads.append(threading.current_thread())
        return read(conn_id)

    monkeypatch.setattr(KwtSMSHook, "get_connection", staticmethod(watched))

    async def main() -> tuple[object, threading.Thread]:
        return await KwtSMSHook().aget_client(), threading.current_thread()

    client, loop_thread = asyncio.run(main())
    assert client.username == "u"
    assert loop_thread not in blocking_reads
    if not AIRFLOW_V_3_1_PLUS:
        assert blocking_reads, "3.0 has no asynchronous read: the blocking one, in a thread"
