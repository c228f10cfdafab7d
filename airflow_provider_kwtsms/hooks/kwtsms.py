"""KwtSMSHook: an Airflow connection of type ``kwtsms`` turned into a :class:`KwtSMSClient`.

Connection fields: login = API username, password = API password, host = API base URL
(empty means https://www.kwtsms.com; a host without a scheme gets https; the URI form
``kwtsms://http://user:pass@127.0.0.1:8765`` carries the scheme, as Airflow's URI parser
allows), port = optional port of that URL. Extras (see ``get_provider_info.CONN_FIELDS``):
sender, test_mode, default_country, timeout, rate (and transport, smtp_conn_id, smtp_from,
smtp_to, balance_over_http for e-mail: README, "Sending by e-mail"); each may also be written
``extra__kwtsms__<name>``, as the Slack provider accepts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from airflow_provider_kwtsms.constants import DEFAULT_CONN_ID
from airflow_provider_kwtsms.errors import KwtSMSError, KwtSMSInputError, KwtSMSNetworkError

if TYPE_CHECKING:
    from airflow.sdk import Connection

    from airflow_provider_kwtsms.client import KwtSMSClient
    from airflow_provider_kwtsms.smtp_transport import KwtSMSSmtpSender

DEFAULT_BASE_URL = "https://www.kwtsms.com"  # same as client.DEFAULT_BASE_URL, without importing requests
DEFAULT_SENDER = "KWT-SMS"
DEFAULT_TIMEOUT = 30.0
CONNECT_TIMEOUT = 5.0
DEFAULT_RATE = 2.0
TRANSPORTS = ("http", "smtp")  # smtp: the 2009 e-mail channel through a relay (README, "Sending by e-mail")
DEFAULT_SMTP_CONN_ID = "smtp_default"
SMS_ADDRESS = "sms@kwtsms.com"  # as smtp_transport.SMS_ADDRESS, without importing smtplib
_TRUE = {"true", "1", "yes", "on", "y", "t"}
_FALSE = {"false", "0", "no", "off", "n", "f", ""}
OVERRIDABLE = ("sender", "test_mode", "default_country", "timeout", "rate", "base_url")


@dataclass(frozen=True)
class KwtSMSSettings:
    """Everything needed to build a client: the connection's values with the hook's overrides applied."""

    conn_id: str
    username: str
    password: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    sender: str = DEFAULT_SENDER
    test_mode: bool = False
    default_country: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    rate: float = DEFAULT_RATE
    transport: str = "http"
    smtp_conn_id: str = DEFAULT_SMTP_CONN_ID
    smtp_from: str | None = None
    smtp_to: str = SMS_ADDRESS
    balance_over_http: bool = False
    rate_store: str | None = field(default=None, repr=False)  # may hold a password: never shown

    def client_kwargs(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "sender": self.sender,
            "test_mode": self.test_mode,
            "default_country": self.default_country,
            "timeout": (min(CONNECT_TIMEOUT, self.timeout), self.timeout),
            "rate": self.rate,
        }


def base_url_from(host: str | None, port: int | None) -> str:
    """The API base URL from the connection's host and port; empty host means kwtsms.com."""
    host = (host or "").strip().rstrip("/")
    if not host:
        return DEFAULT_BASE_URL
    if "://" not in host:
        host = f"https://{host}"  # never fall back to plain http: the password travels in the body
    scheme, _, rest = host.partition("://")
    netloc, slash, path = rest.partition("/")
    if port and ":" not in netloc:
        netloc = f"{netloc}:{port}"
    return f"{scheme}://{netloc}{slash}{path}"


def _extra(extras: dict[str, Any], name: str) -> Any:
    for key in (name, f"extra__kwtsms__{name}"):
        value = extras.get(key)
        if value not in (None, ""):
            return value
    return None


def _as_bool(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise KwtSMSInputError(f"{what} is {value!r}: give true or false.")


def _as_number(value: Any, what: str, *, minimum: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise KwtSMSInputError(f"{what} is {value!r}: give a number, e.g. {minimum:g} or more.") from None
    if number < minimum:
        raise KwtSMSInputError(f"{what} is {value!r}: give a number of at least {minimum:g}.")
    return number


def _as_country(value: Any, what: str) -> str:
    text = str(value).strip().lstrip("+")
    if text.startswith("00"):
        text = text[2:]
    if not (text.isdigit() and 1 <= len(text) <= 3):
        raise KwtSMSInputError(f"{what} is {value!r}: give a country calling code, e.g. 965 for Kuwait.")
    return text


def settings_from_connection(conn: Connection, **overrides: Any) -> KwtSMSSettings:
    """Read a ``kwtsms`` connection; non-None ``overrides`` win over the connection's extras."""
    conn_id = conn.conn_id or "kwtsms"
    where = f"Connection {conn_id!r}"
    if not conn.login:
        raise KwtSMSInputError(f"{where} has no login: set it to your kwtSMS API username.")
    if not conn.password:
        raise KwtSMSInputError(
            f"{where} has no password: set it to your kwtSMS API password (not the account's phone number)."
        )
    extras = conn.extra_dejson or {}

    def pick(name: str) -> tuple[Any, str]:
        if overrides.get(name) is not None:
            return overrides[name], f"The argument {name}"
        return _extra(extras, name), f"{where} extra {name!r}"

    sender, _ = pick("sender")
    test_mode, test_where = pick("test_mode")
    country, country_where = pick("default_country")
    timeout, timeout_where = pick("timeout")
    rate, rate_where = pick("rate")
    base_url = overrides.get("base_url") or base_url_from(conn.host, conn.port)
    transport = str(_extra(extras, "transport") or "http").strip().lower()
    if transport not in TRANSPORTS:
        raise KwtSMSInputError(
            f"{where} extra 'transport' is {transport!r}: give 'http' (the API, the "
            "default) or 'smtp' (e-mail through a relay)."
        )
    balance_over_http = _extra(extras, "balance_over_http")
    return KwtSMSSettings(
        conn_id=conn_id,
        username=conn.login,
        password=conn.password,
        base_url=str(base_url).rstrip("/"),
        sender=str(sender).strip() if sender else DEFAULT_SENDER,
        test_mode=_as_bool(test_mode, test_where) if test_mode is not None else False,
        default_country=_as_country(country, country_where) if country is not None else None,
        timeout=_as_number(timeout, timeout_where, minimum=1) if timeout is not None else DEFAULT_TIMEOUT,
        rate=_as_number(rate, rate_where, minimum=0.1) if rate is not None else DEFAULT_RATE,
        transport=transport,
        smtp_conn_id=str(_extra(extras, "smtp_conn_id") or DEFAULT_SMTP_CONN_ID),
        smtp_from=_extra(extras, "smtp_from"),
        smtp_to=str(_extra(extras, "smtp_to") or SMS_ADDRESS),
        balance_over_http=(
            _as_bool(balance_over_http, f"{where} extra 'balance_over_http'")
            if balance_over_http is not None
            else False
        ),
        rate_store=str(_extra(extras, "rate_store")).strip() if _extra(extras, "rate_store") else None,
    )


def build_client(settings: KwtSMSSettings) -> KwtSMSClient:
    from airflow_provider_kwtsms.client import KwtSMSClient  # imports requests: only when used

    pacer = None
    if settings.rate_store:  # one account's rate shared by every worker (docs/deploying.md)
        from airflow_provider_kwtsms.shared_rate import shared_bucket

        pacer = shared_bucket(
            settings.rate_store, username=settings.username, base_url=settings.base_url, rate=settings.rate
        )
    return KwtSMSClient(settings.username, settings.password, **settings.client_kwargs(), pacer=pacer)


def build_smtp_sender(settings: KwtSMSSettings, smtp_conn: Connection) -> KwtSMSSmtpSender:
    """The sender for ``transport="smtp"``: the relay from the SMTP connection, the rest as for HTTP."""
    from airflow_provider_kwtsms.smtp_transport import KwtSMSSmtpSender, relay_settings

    return KwtSMSSmtpSender(
        settings.username,
        settings.password,
        **relay_settings(smtp_conn, from_address=settings.smtp_from),
        to_address=settings.smtp_to,
        sender=settings.sender,
        test_mode=settings.test_mode,
        default_country=settings.default_country,
        rate=settings.rate,
        balance_over_http=settings.balance_over_http,
        base_url=settings.base_url,
    )


def _credits(value: float) -> str:
    return f"{value:g}"


def explain_error(error: Exception, settings: KwtSMSSettings | None = None) -> str:
    """One line "<what went wrong>: <what to do>", never containing the password."""
    if isinstance(error, KwtSMSNetworkError):
        where = f" ({settings.base_url})" if settings else ""
        text = (
            f"{error.code}: {error.description}: check the connection's API base URL{where} "
            "and that this machine can reach it"
        )
    elif isinstance(error, KwtSMSError):
        text = f"{error.code}: {error.description.rstrip('.')}: {error.action}"
    elif isinstance(error, KwtSMSInputError):
        text = str(error)
    else:
        text = f"Unexpected {type(error).__name__}: {error}"
    if settings and settings.password and settings.password in text:
        text = text.replace(settings.password, "***")
    return text


class KwtSMSHook(BaseHook):
    """Interact with kwtSMS through the ``kwtsms`` connection type.

    :param kwtsms_conn_id: the Airflow connection to use.
    :param sender: sender ID; overrides the connection's ``sender`` extra.
    :param test_mode: send with ``test=1`` (queued, not delivered); overrides ``test_mode``.
    :param default_country: calling code for local numbers (e.g. ``"965"``).
    :param timeout: seconds to wait for an API answer.
    :param rate: most API requests per second.
    :param base_url: the API base URL; overrides the connection's host.
    """

    conn_name_attr = "kwtsms_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "kwtsms"
    hook_name = "kwtSMS"

    def __init__(
        self,
        *,
        kwtsms_conn_id: str = default_conn_name,
        sender: str | None = None,
        test_mode: bool | None = None,
        default_country: str | None = None,
        timeout: float | None = None,
        rate: float | None = None,
        base_url: str | None = None,
    ) -> None:
        super().__init__()
        self.kwtsms_conn_id = kwtsms_conn_id
        self.overrides: dict[str, Any] = {
            "sender": sender,
            "test_mode": test_mode,
            "default_country": default_country,
            "timeout": timeout,
            "rate": rate,
            "base_url": base_url,
        }
        self._settings: KwtSMSSettings | None = None
        self._client: KwtSMSClient | None = None

    def __repr__(self) -> str:
        given = ", ".join(f"{k}={v!r}" for k, v in self.overrides.items() if v is not None)
        return f"{type(self).__name__}(kwtsms_conn_id={self.kwtsms_conn_id!r}{', ' if given else ''}{given})"

    __str__ = __repr__

    @property
    def settings(self) -> KwtSMSSettings:
        """The connection's values with this hook's overrides applied (read once)."""
        if self._settings is None:
            conn = self.get_connection(self.kwtsms_conn_id)
            self._settings = settings_from_connection(conn, **self.overrides)
        return self._settings

    async def aget_settings(self) -> KwtSMSSettings:
        """As :attr:`settings`, for the triggerer's event loop (reads the connection asynchronously)."""
        if self._settings is None:
            conn = await self.aget_connection(self.kwtsms_conn_id)
            self._settings = settings_from_connection(conn, **self.overrides)
        return self._settings

    def get_client(self) -> KwtSMSClient | KwtSMSSmtpSender:
        """The client for this connection, built once per hook.

        With the extra ``transport="smtp"``, a ``KwtSMSSmtpSender`` (same sending methods) that
        e-mails sms@kwtsms.com through the relay of the SMTP connection ``smtp_conn_id``.
        """
        if self._client is None:
            settings = self.settings
            if settings.transport == "smtp":
                self._client = build_smtp_sender(settings, self.get_connection(settings.smtp_conn_id))
            else:
                self._client = build_client(settings)
        return self._client

    async def aget_client(self) -> KwtSMSClient | KwtSMSSmtpSender:
        """As :meth:`get_client`, reading the connection without blocking the event loop."""
        if self._client is None:
            settings = await self.aget_settings()
            if settings.transport == "smtp":
                smtp_conn = await self.aget_connection(settings.smtp_conn_id)
                self._client = build_smtp_sender(settings, smtp_conn)
            else:
                self._client = build_client(settings)
        return self._client

    def get_conn(self) -> KwtSMSClient:
        return self.get_client()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def test_connection(self) -> tuple[bool, str]:
        """Check the credentials with one balance and one sender-ID call; used by the UI's Test button."""
        settings: KwtSMSSettings | None = None
        try:
            settings = self.settings
            client = self.get_client()
            if settings.transport == "smtp":
                return self._test_smtp(client)
            balance = client.balance()
            senders = client.sender_ids()
        except Exception as error:
            return False, explain_error(error, settings)
        finally:
            self.close()
        message = (
            f"Connected to kwtSMS as {settings.username} at {settings.base_url}: balance "
            f"{_credits(balance.available)} of {_credits(balance.purchased)} credits; "
            f"sender IDs: {', '.join(senders) or 'none'}"
        )
        if settings.sender not in senders:
            message += (
                f". Warning: the connection's sender {settings.sender!r} is not among them "
                "(sender IDs are case-sensitive); sends would fail with ERR008"
            )
        if settings.test_mode:
            message += ". Test mode is on: messages are queued, not delivered"
        # `airflow connections test` prints only "Connection success!": the log line shows the rest.
        self.log.info("%s", message)
        return True, message

    def _test_smtp(self, sender: KwtSMSSmtpSender) -> tuple[bool, str]:
        try:
            message = sender.check_relay()
        except KwtSMSNetworkError as error:  # the relay, not the API, is what could not be reached
            return False, (
                f"{error.description}: check the SMTP connection {self.settings.smtp_conn_id!r} "
                "(host, port, SSL/TLS) and that this machine can reach the relay"
            )
        message += (
            ". kwtSMS answers nothing by e-mail, so the API username and password cannot be checked this way"
        )
        if self.settings.balance_over_http:
            balance = sender.balance()
            message += f"; over the API: balance {_credits(balance.available)} credits"
        self.log.info("%s", message)
        return True, message

    # Airflow 3.2+ reads the form from get_provider_info's conn-fields and never calls these two;
    # Airflow 3.0 and 3.1 still build the form from them.
    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        from airflow_provider_kwtsms.get_provider_info import get_provider_info

        behaviour = get_provider_info()["connection-types"][0]["ui-field-behaviour"]
        return {
            "hidden_fields": list(behaviour["hidden-fields"]),
            "relabeling": dict(behaviour["relabeling"]),
            "placeholders": dict(behaviour["placeholders"]),
        }

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
        from wtforms import BooleanField, StringField

        from airflow_provider_kwtsms.get_provider_info import CONN_FIELDS

        widgets: dict[str, Any] = {}
        for name, spec in CONN_FIELDS.items():
            types = spec["schema"]["type"]
            if "boolean" in types:
                widgets[name] = BooleanField(spec["label"], description=spec["description"])
            else:
                widgets[name] = StringField(
                    spec["label"], widget=BS3TextFieldWidget(), description=spec["description"]
                )
        return widgets
