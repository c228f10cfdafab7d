"""The ``rate_store`` URL read defensively: its pieces, what may be shown, and a scrub of its secrets.

The URL is written by hand and holds a password, often unquoted: ``redis://:pass/Word#42@host``
or ``postgresql://u:Sup3r?x@db/rates``. ``urllib`` stops the authority at the first ``/``, ``?``
or ``#`` and then reads a piece of the password as the port ("Port could not be cast to integer
value as 'Sup3r'"). So the URL is split here, by rules that never look inside the user part:

- the scheme ends at the first ``://``;
- the user part ends at the LAST ``@`` (a password may hold ``@``, ``/``, ``?``, ``#``; an ``@``
  elsewhere, e.g. in the query, must be written ``%40``);
- after it: ``host[:port][/database][?query][#ignored]``.

Only the scheme, host, port and database are ever shown (``StoreURL.shown``), and each only when
it has the plain form of its kind (a name, a number); anything else is described by its length.
Errors a driver raises go through :meth:`StoreURL.scrub`, which removes the user name, the
password and any ``*pass*`` query value in every form an echo can take (``redact.Redactor``).
The drivers get the pieces as keywords, never the URL, so they never parse (and quote back) it.
Every rule here is one pass over the text: linear.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote

from airflow_provider_kwtsms.errors import KwtSMSInputError
from airflow_provider_kwtsms.gateway.redact import Redactor

SCHEMES = {"redis": "redis", "rediss": "rediss", "postgresql": "postgresql", "postgres": "postgresql"}
EXAMPLES = "redis://host:6379/0 (e.g. the Celery broker) or postgresql://user@host:5432/database"
# The plain forms a piece must have to be shown or used: sets of characters and a length (no
# regular expression: a check of each character once).
_LOWER = frozenset("abcdefghijklmnopqrstuvwxyz")
_NAME = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") | _LOWER


def _plain(text: str, allowed: frozenset[str], most: int) -> bool:
    return 0 < len(text) <= most and all(char in allowed for char in text)


def _is_scheme(text: str) -> bool:
    return _plain(text, _LOWER | frozenset("0123456789+.-"), 31) and text[0] in _LOWER


def _is_host(text: str) -> bool:  # a name or address, or a socket folder
    return _plain(text, _NAME, 253) or (text[:1] == "/" and _plain(text, _NAME | {"/"}, 251))


def _is_ipv6(text: str) -> bool:
    return _plain(text, frozenset("0123456789abcdefABCDEF:."), 45)


def _is_database(text: str) -> bool:
    return _plain(text, _NAME | {"$"}, 63)


def _is_query_key(text: str) -> bool:
    return _plain(text, _LOWER | {"_"}, 40)


# Python-level arguments of the drivers' connect(): a query key may never reach them.
_NOT_LIBPQ = frozenset({"dsn", "conninfo", "connection_factory", "cursor_factory", "autocommit", "context"})


@dataclass(frozen=True)
class StoreURL:
    """A parsed ``rate_store``; its repr is :attr:`shown`, never a secret."""

    scheme: str  # redis, rediss or postgresql
    host: str | None
    port: int | None
    database: str | None
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    query: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    _redactors: tuple[Redactor, ...] = field(default=(), repr=False, compare=False)

    @property
    def shown(self) -> str:
        """Scheme, host, port and database: what a log line or error may say about the store."""
        host = self.host or ""
        if ":" in host:
            host = f"[{host}]"
        elif host and not _is_host(host):
            host = "(host)"
        port = f":{self.port}" if self.port else ""
        database = self.database or ""
        if database and not _is_database(database):
            database = f"({len(database)}-character database name)"
        return f"{self.scheme}://{host}{port}/{database}" if database else f"{self.scheme}://{host}{port}"

    def __repr__(self) -> str:
        return f"StoreURL({self.shown!r})"

    __str__ = __repr__

    def scrub(self, text: str, limit: int = 300) -> str:
        """``text`` (a driver's error) without the URL's user name, password or password-like query
        values, cut to ``limit`` characters."""
        for redactor in self._redactors:
            text = redactor.scrub(text)
        return text if len(text) <= limit else text[: limit - 3] + "..."


def _refuse(what: str, problem: str) -> KwtSMSInputError:
    return KwtSMSInputError(
        f"{what} {problem}: give {EXAMPLES}; a password with @ / ? # in it may stay unquoted."
    )


def parse_store_url(url: object, *, password: str | None = None, what: str = "rate_store") -> StoreURL:
    """The pieces of a ``rate_store`` URL; ``password``: one given apart from the URL (the extra
    ``rate_store_password``). A KwtSMSInputError names what is wrong and shows no secret."""
    if not isinstance(url, str) or not url.strip():
        raise _refuse(what, f"is {type(url).__name__ if not isinstance(url, str) else 'empty'}")
    text = url.strip()
    head, sep, rest = text.partition("://")
    if not sep:
        raise _refuse(what, f"is not a URL ({len(text)} characters, not shown: it may hold a password)")
    scheme = head.lower()
    if not _is_scheme(scheme):
        raise _refuse(what, f"has no readable scheme ({len(head)} characters before ://)")
    base = SCHEMES.get(scheme.split("+", 1)[0])
    if base is None:
        raise _refuse(what, f"has an unknown scheme {scheme!r}")
    userinfo, _, located = rest.rpartition("@")
    located = located.split("#", 1)[0]
    located, _, query_text = located.partition("?")
    authority, _, path = located.partition("/")
    host, port_text = _split_authority(authority, what, base)
    port = _port(port_text, what, base)
    database = unquote(path) or None
    numbered = database is None or (database.isascii() and database.isdigit() and len(database) <= 5)
    if base != "postgresql" and not numbered:
        problem = f"the database after the host is not a number ({len(database or '')} characters)"
        raise _refuse(what, f"{base}://...: {problem}")
    user_raw, colon, password_raw = userinfo.partition(":")
    username = unquote(user_raw) or None
    url_password = unquote(password_raw) if colon else None
    if url_password and password:
        raise KwtSMSInputError(
            f"{what} {base}://{host or ''}... has a password in the URL and the extra rate_store_password "
            "is set too: keep one (rate_store_password is hidden by Airflow, the URL is not)."
        )
    query = _query(query_text, what, base)
    secrets = [userinfo, password_raw, url_password, password, user_raw, username]
    secrets += [value for key, value in query if "pass" in key or "secret" in key]
    unique = sorted({s for s in secrets if s}, key=len, reverse=True)
    return StoreURL(
        scheme=base,
        host=host,
        port=port,
        database=database,
        username=username,
        password=url_password or password or None,
        query=query,
        _redactors=tuple(Redactor(secret) for secret in unique),
    )


def _split_authority(authority: str, what: str, scheme: str) -> tuple[str | None, str]:
    if authority.startswith("["):  # [IPv6]:port
        end = authority.find("]")
        host, after = authority[1:end], authority[end + 1 :]
        if end < 0 or not _is_ipv6(host) or (after and not after.startswith(":")):
            raise _refuse(what, f"{scheme}://...: the host in [ ] is not an IPv6 address")
        return host, after[1:]
    host_text, _, port_text = authority.partition(":")
    host = unquote(host_text)
    if host and not _is_host(host):
        problem = f"the host is not a host name ({len(host)} characters, not shown)"
        raise _refuse(what, f"{scheme}://...: {problem}")
    return host or None, port_text


def _port(text: str, what: str, scheme: str) -> int | None:
    if not text:
        return None
    if not (text.isascii() and text.isdigit() and len(text) <= 5 and 1 <= int(text) <= 65535):
        # The value is not shown: with no @ in the URL, a password would stand where the port is.
        problem = f"the port is not a number from 1 to 65535 ({len(text)} characters)"
        raise _refuse(what, f"{scheme}://...: {problem}")
    return int(text)


def _query(text: str, what: str, scheme: str) -> tuple[tuple[str, str], ...]:
    if not text:
        return ()
    pairs = tuple(parse_qsl(text, keep_blank_values=True))
    for key, _value in pairs:
        if not _is_query_key(key) or key in _NOT_LIBPQ:
            shown = repr(key) if _is_query_key(key) else f"of {len(key)} characters"
            raise _refuse(what, f"{scheme}://...: the query has a key {shown} that is not a driver option")
    return pairs


def describe(url: str) -> str:
    """The store URL without user or password, for log lines and errors; never raises."""
    try:
        return parse_store_url(url).shown
    except KwtSMSInputError:
        scheme = url.partition("://")[0].lower() if isinstance(url, str) else ""
        return f"{scheme}://(unreadable)" if _is_scheme(scheme) else "(an unreadable rate_store URL)"
