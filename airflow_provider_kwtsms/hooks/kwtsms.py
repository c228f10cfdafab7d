"""KwtSMSHook: an Airflow connection of type ``kwtsms`` turned into a :class:`KwtSMSClient`.

Connection fields: login = API username, password = API password, host = API base URL
(empty means https://www.kwtsms.com; a host without a scheme gets https; the URI form
``kwtsms://http://user:pass@127.0.0.1:8765`` carries the scheme, as Airflow's URI parser
allows), port = optional port of that URL. Extras (see ``get_provider_info.CONN_FIELDS``):
sender, test_mode, default_country, timeout, rate, smart_encoding, timezone (and transport,
smtp_conn_id, smtp_from, smtp_to, balance_over_http for e-mail: docs/smtp.md; do_not_send_variable,
the Airflow Variable holding the account's do-not-send list: docs/operator.md); each may also be
written ``extra__kwtsms__<name>``, as the Slack provider accepts. Each is read by the one helper
of ``coerce`` for its kind, so the same value means the same thing here, in the operator and in
the notifier.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from airflow_provider_kwtsms.coerce import as_bool, as_country, as_number, as_rate, as_text
from airflow_provider_kwtsms.constants import (
    DEFAULT_BASE_URL,
    DEFAULT_CONN_ID,
    DEFAULT_RATE,
    DEFAULT_SENDER,
    DEFAULT_TIMEOUT,
    DEFAULT_TIMEZONE,
    SMS_ADDRESS,
)
from airflow_provider_kwtsms.errors import KwtSMSError, KwtSMSInputError, KwtSMSNetworkError
from airflow_provider_kwtsms.gateway.field_limits import check_field
from airflow_provider_kwtsms.version_compat import AirflowFailException, BaseHook, aget_connection

if TYPE_CHECKING:
    from airflow.sdk import Connection

    from airflow_provider_kwtsms.gateway.client import KwtSMSClient
    from airflow_provider_kwtsms.send.channel import Channel
    from airflow_provider_kwtsms.smtp.sender import KwtSMSSmtpSender

CONNECT_TIMEOUT, READ_TIMEOUT = DEFAULT_TIMEOUT
TRANSPORTS = ("http", "smtp")  # smtp: the 2009 e-mail channel through a relay (docs/smtp.md)
DEFAULT_SMTP_CONN_ID = "smtp_default"
OVERRIDABLE = ("sender", "test_mode", "default_country", "timeout", "rate", "base_url", "smart_encoding")


class KwtSMSConfigurationError(KwtSMSInputError, AirflowFailException):
    """A connection or an argument that no retry can fix (no login, a bad extra, an unknown time
    zone...): Airflow fails the task at once, as for a wrong password, instead of spending its
    retries. Still a :class:`KwtSMSInputError` (a ``ValueError``) for code that catches those."""


@contextmanager
def configuration_errors_are_permanent() -> Iterator[None]:
    """Turn a :class:`KwtSMSInputError` raised inside into :class:`KwtSMSConfigurationError`, same
    message. Every adapter reads the connection and its own arguments inside it, so a
    configuration error fails the task once on every path (operator, sensor, notifier, a task of
    your own that calls the hook)."""
    try:
        yield
    except KwtSMSConfigurationError:
        raise
    except KwtSMSInputError as error:
        raise KwtSMSConfigurationError(str(error)) from None


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
    timeout: float = READ_TIMEOUT
    rate: float = DEFAULT_RATE
    smart_encoding: bool = True
    timezone: str = DEFAULT_TIMEZONE
    transport: str = "http"
    smtp_conn_id: str = DEFAULT_SMTP_CONN_ID
    smtp_from: str | None = None
    smtp_to: str = SMS_ADDRESS
    balance_over_http: bool = False
    rate_store: str | None = field(default=None, repr=False)  # may hold a password: never shown
    rate_store_password: str | None = field(default=None, repr=False)  # masked by Airflow (its name)
    do_not_send_variable: str | None = None  # the Variable holding the do-not-send list

    def client_kwargs(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "sender": self.sender,
            "test_mode": self.test_mode,
            "default_country": self.default_country,
            "timeout": (min(CONNECT_TIMEOUT, self.timeout), self.timeout),
            "rate": self.rate,
            "smart_encoding": self.smart_encoding,
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
    # The documented sizes (v4.1), named as the form names them: the Test button says which is too long.
    check_field("username", conn.login, what=f"{where} Login (the API username)")
    check_field("password", conn.password, what=f"{where} Password (the API password)")
    extras = conn.extra_dejson or {}

    def pick(name: str) -> tuple[Any, str]:
        if overrides.get(name) is not None:
            return overrides[name], f"The argument {name}"
        return _extra(extras, name), f"{where} extra {name!r}"

    sender, sender_where = pick("sender")
    if isinstance(sender, str):
        check_field("sender", sender, what=sender_where)
    test_mode, test_where = pick("test_mode")
    country, country_where = pick("default_country")
    timeout, timeout_where = pick("timeout")
    rate, rate_where = pick("rate")
    smart, smart_where = pick("smart_encoding")
    timezone = _extra(extras, "timezone")
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
        sender=as_text(sender, f"{where} extra 'sender'", "a registered sender ID")
        if sender
        else DEFAULT_SENDER,
        test_mode=as_bool(test_mode, test_where) if test_mode is not None else False,
        default_country=as_country(country, country_where),
        timeout=as_number(timeout, timeout_where, minimum=1, maximum=600)
        if timeout is not None
        else READ_TIMEOUT,
        rate=as_rate(rate, rate_where) if rate is not None else DEFAULT_RATE,
        smart_encoding=as_bool(smart, smart_where) if smart is not None else True,
        timezone=check_timezone(timezone, f"{where} extra 'timezone'") if timezone else DEFAULT_TIMEZONE,
        transport=transport,
        smtp_conn_id=str(_extra(extras, "smtp_conn_id") or DEFAULT_SMTP_CONN_ID),
        smtp_from=_extra(extras, "smtp_from"),
        smtp_to=str(_extra(extras, "smtp_to") or SMS_ADDRESS),
        balance_over_http=(
            as_bool(balance_over_http, f"{where} extra 'balance_over_http'")
            if balance_over_http is not None
            else False
        ),
        rate_store=str(_extra(extras, "rate_store")).strip() if _extra(extras, "rate_store") else None,
        rate_store_password=(
            str(_extra(extras, "rate_store_password")) if _extra(extras, "rate_store_password") else None
        ),
        do_not_send_variable=(
            as_text(dns, f"{where} extra 'do_not_send_variable'", "the name of an Airflow Variable").strip()
            if (dns := _extra(extras, "do_not_send_variable"))
            else None
        ),
    )


def build_client(settings: KwtSMSSettings) -> KwtSMSClient:
    from airflow_provider_kwtsms.gateway.client import KwtSMSClient  # imports requests: only when used

    pacer = None
    if settings.rate_store:  # one account's rate shared by every worker (docs/deploying.md)
        from airflow_provider_kwtsms.rate.shared import shared_bucket
        from airflow_provider_kwtsms.rate.store_url import parse_store_url
        from airflow_provider_kwtsms.version_compat import mask_secret

        what = f"Connection {settings.conn_id!r} extra 'rate_store'"
        where = parse_store_url(settings.rate_store, password=settings.rate_store_password, what=what)
        for secret in (settings.rate_store, where.password):  # task logs never show them
            if secret:
                mask_secret(secret)
        pacer = shared_bucket(
            settings.rate_store,
            username=settings.username,
            base_url=settings.base_url,
            rate=settings.rate,
            password=settings.rate_store_password,
        )
    return KwtSMSClient(settings.username, settings.password, **settings.client_kwargs(), pacer=pacer)


def build_smtp_sender(settings: KwtSMSSettings, smtp_conn: Connection) -> KwtSMSSmtpSender:
    """The sender for ``transport="smtp"``: the relay from the SMTP connection, the rest as for HTTP."""
    from airflow_provider_kwtsms.smtp.sender import KwtSMSSmtpSender

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
        smart_encoding=settings.smart_encoding,
    )


def relay_settings(conn: Any, *, from_address: str | None = None) -> dict[str, Any]:
    """``KwtSMSSmtpSender`` relay arguments from an Airflow SMTP connection, read as Airflow's SMTP
    provider reads it: SSL unless the extra ``disable_ssl`` is true, then STARTTLS unless
    ``disable_tls`` is true; ``from_email`` and ``timeout`` from the extras; ``from_address``
    (the kwtSMS connection's ``smtp_from``) wins over ``from_email``."""
    where = f"SMTP connection {getattr(conn, 'conn_id', None) or 'smtp'!r}"
    extras = getattr(conn, "extra_dejson", None) or {}
    if not getattr(conn, "host", None):
        raise KwtSMSInputError(f"{where} has no host: set it to the SMTP relay's host name.")
    ssl_on = not as_bool(extras.get("disable_ssl", False), f"{where} extra 'disable_ssl'")
    starttls = not ssl_on and not as_bool(extras.get("disable_tls", False), f"{where} extra 'disable_tls'")
    sender_address = from_address or extras.get("from_email")
    if not sender_address:
        raise KwtSMSInputError(
            f"{where} has no extra 'from_email', and no smtp_from is set on the kwtSMS "
            "connection: give the address the relay lets you send from."
        )
    return {
        "smtp_host": conn.host,
        "smtp_port": int(conn.port) if getattr(conn, "port", None) else None,
        "smtp_ssl": ssl_on,
        "smtp_starttls": starttls,
        "smtp_login": getattr(conn, "login", None) or None,
        "smtp_password": getattr(conn, "password", None) or None,
        "from_address": str(sender_address),
        "timeout": as_number(extras.get("timeout", 30), f"{where} extra 'timeout'", minimum=1, maximum=600),
    }


def check_timezone(name: Any, what: str) -> str:
    """An IANA time zone name, checked (``KwtSMSInputError`` naming ``what`` otherwise)."""
    from airflow_provider_kwtsms.send.window import zone

    text = as_text(name, what, "an IANA time zone such as 'Asia/Kuwait'")
    try:
        zone(text)
    except KwtSMSInputError as exc:
        raise KwtSMSInputError(f"{what}: {exc}") from None
    return text


def _credits(value: float | None) -> str:
    return "?" if value is None else f"{value:g}"


def explain_error(error: Exception, settings: KwtSMSSettings | None = None) -> str:
    """One line "<what went wrong>: <what to do>", never containing the password.

    Only the foreign part (the error's own text) goes through the one scrub (redact); our advice
    does not, or a password holding an ordinary word ("password") would mask it in the advice.
    """

    def scrubbed(text: str) -> str:
        if settings is None:
            return text
        from airflow_provider_kwtsms.gateway.redact import Redactor

        return Redactor(settings.password).scrub(text)

    if isinstance(error, KwtSMSNetworkError):
        where = f" ({settings.base_url})" if settings else ""
        return (
            f"{error.code}: {scrubbed(error.description)}: check the connection's API base URL{where} "
            "and that this machine can reach it"
        )
    if isinstance(error, KwtSMSInputError):  # our own message: it already says what to do
        return scrubbed(str(error))
    if isinstance(error, KwtSMSError):
        # The description was scrubbed where it was raised (transport), except a known code's
        # table text, which is the gateway's documented wording and holds no secret.
        return f"{error.code}: {error.description.rstrip('.')}: {error.action}"
    return scrubbed(f"Unexpected {type(error).__name__}: {error}")


class KwtSMSHook(BaseHook):
    """Interact with kwtSMS through the ``kwtsms`` connection type.

    :param kwtsms_conn_id: the Airflow connection to use.
    :param sender: sender ID; overrides the connection's ``sender`` extra.
    :param test_mode: send with ``test=1`` (queued, not delivered); overrides ``test_mode``.
    :param default_country: calling code for local numbers (e.g. ``"965"``).
    :param timeout: seconds to wait for an API answer.
    :param rate: most API requests per second, 0.1 to 5 (the gateway's firewall blocks the IP above 5);
        shared by every process of this machine, and across machines with the extra ``rate_store``.
    :param base_url: the API base URL; overrides the connection's host.
    :param smart_encoding: send look-alike characters as GSM-7 (default: the connection's, on).
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
        smart_encoding: bool | None = None,
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
            "smart_encoding": smart_encoding,
        }
        self._settings: KwtSMSSettings | None = None
        self._client: Channel | None = None

    def __repr__(self) -> str:
        given = ", ".join(f"{k}={v!r}" for k, v in self.overrides.items() if v is not None)
        return f"{type(self).__name__}(kwtsms_conn_id={self.kwtsms_conn_id!r}{', ' if given else ''}{given})"

    __str__ = __repr__

    @property
    def settings(self) -> KwtSMSSettings:
        """The connection's values with this hook's overrides applied (read once)."""
        if self._settings is None:
            conn = self.get_connection(self.kwtsms_conn_id)
            with configuration_errors_are_permanent():
                self._settings = settings_from_connection(conn, **self.overrides)
        return self._settings

    async def aget_settings(self) -> KwtSMSSettings:
        """As :attr:`settings`, for the triggerer's event loop (reads the connection asynchronously)."""
        if self._settings is None:
            conn = await aget_connection(self, self.kwtsms_conn_id)
            with configuration_errors_are_permanent():
                self._settings = settings_from_connection(conn, **self.overrides)
        return self._settings

    def do_not_send(self) -> str | None:
        """The do-not-send list the connection names (extra ``do_not_send_variable``): the
        Variable's value as stored (a JSON list or numbers separated by commas or lines), None
        when the connection names none. A Variable named but missing is a configuration error
        (permanent): a send must not go out as if nobody had opted out."""
        name = self.settings.do_not_send_variable
        if not name:
            return None
        from airflow.sdk import Variable

        value = Variable.get(name, default=None)
        if value is None:
            raise KwtSMSConfigurationError(
                f"Connection {self.kwtsms_conn_id!r} extra 'do_not_send_variable' names the Variable "
                f"{name!r}, which does not exist: create it (a JSON list of numbers, or one number a "
                "line; '[]' for none) or remove the extra."
            )
        return value if isinstance(value, str) else str(value)

    def get_client(self) -> Channel:
        """The client for this connection, built once per hook.

        With the extra ``transport="smtp"``, a ``KwtSMSSmtpSender`` (same sending methods) that
        e-mails sms@kwtsms.com through the relay of the SMTP connection ``smtp_conn_id``.
        """
        if self._client is None:
            settings = self.settings
            if settings.transport == "smtp":
                smtp_conn = self.get_connection(settings.smtp_conn_id)
                with configuration_errors_are_permanent():
                    self._client = build_smtp_sender(settings, smtp_conn)
            else:
                with configuration_errors_are_permanent():
                    self._client = build_client(settings)
                if not settings.rate_store:
                    from airflow_provider_kwtsms.hooks.rate_warning import warn_if_paced_alone

                    warn_if_paced_alone(settings.conn_id)
        return self._client

    async def aget_client(self) -> Channel:
        """As :meth:`get_client`, reading the connection without blocking the event loop."""
        if self._client is None:
            settings = await self.aget_settings()
            with configuration_errors_are_permanent():
                if settings.transport == "smtp":
                    smtp_conn = await aget_connection(self, settings.smtp_conn_id)
                    self._client = build_smtp_sender(settings, smtp_conn)
                else:
                    self._client = build_client(settings)
        return self._client

    def get_conn(self) -> Channel:
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
                return self._test_smtp(cast("KwtSMSSmtpSender", client))
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
        self._say(message)
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
        self._say(message)
        return True, message

    def _say(self, message: str) -> None:
        # `airflow connections test` prints only "Connection success!" and drops the message (the
        # balance, the sender IDs, the unregistered-sender warning), and its log level hides INFO:
        # so the message is printed as well. It holds no secret. The UI shows the returned message.
        self.log.info("%s", message)
        print(f"kwtSMS: {message}", flush=True)

    # Airflow 3.2+ reads the form from get_provider_info's conn-fields and never calls these two;
    # Airflow 3.0 and 3.1 still build the form from them (3.1 with wtforms mocked when it is
    # missing; 3.0 only where wtforms is installed, e.g. by the FAB provider: docs/airflow-versions.md).
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
        # wtforms only: flask_appbuilder's widget styled Airflow 2's form, and an ImportError here
        # costs the whole form (labels and hidden fields too) where wtforms is present without it.
        from wtforms import BooleanField, StringField

        from airflow_provider_kwtsms.get_provider_info import CONN_FIELDS

        widgets: dict[str, Any] = {}
        for name, spec in CONN_FIELDS.items():
            types = spec["schema"]["type"]
            if "boolean" in types:
                widgets[name] = BooleanField(spec["label"], description=spec["description"])
            else:
                widgets[name] = StringField(spec["label"], description=spec["description"])
        return widgets
