"""One HTTP round trip to the kwtSMS JSON API, and what each way of failing means.

``Transport.post`` answers the parsed JSON of the gateway (``result`` OK or ERROR, whatever the
HTTP status) or raises ``KwtSMSNetworkError`` saying whether the request may have reached the
server. That flag decides whether a send may be repeated, so each case is argued here:

=====================================================  =========  ===============================
what happened                                          may have   why
                                                       reached
=====================================================  =========  ===============================
connection refused, DNS failure, connect timeout,      no         no connection, no request
TLS handshake failure, proxy refused the tunnel
HTTP 429 (rate limited)                                no         the gateway says nothing was
                                                                  processed
JSON error answer with a kwtSMS code (any status)      no         the gateway answered; it is a
                                                                  ``KwtSMSError``, not this one
3xx redirect (never followed: requests would turn the  no         the server only pointed
POST into a GET without the body)                                 elsewhere
4xx without a JSON answer (404 wrong base URL, 403)    no         the request was refused
read timeout                                           yes        the request was sent; the
                                                                  answer did not come in time
connection dropped after the request was written       yes        the server may have processed
(RemoteDisconnected, reset, broken chunked body)                  it before dropping
5xx without a kwtSMS answer (500, 502, 503, 504), or   yes        a proxy or the application
5xx JSON naming no kwtSMS code (a crash report)                   failed somewhere after
                                                                  receiving the request
2xx whose body is not the JSON answer (HTML, garbage,  yes        something answered "OK-ish"
truncated JSON)                                                   but we cannot read what
=====================================================  =========  ===============================

The password travels only in the JSON body. It is never put in a URL, a log line or an
exception: every text coming back from the network is scrubbed of it before it is used, and
``requests`` exceptions (whose ``request`` holds the body) are not chained.
"""

from __future__ import annotations

import email.utils
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_kwtsms.errors import ERRORS, RATE_LIMITED, KwtSMSNetworkError

if TYPE_CHECKING:
    import requests

HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
DEFAULT_RETRY_AFTER = 1.0
MAX_RETRY_AFTER = 120.0


class RateLimitedError(KwtSMSNetworkError):
    """HTTP 429: the account's request rate was exceeded; nothing was processed."""

    def __init__(self, description: str, *, retry_after: float, http_status: int = 429) -> None:
        super().__init__(
            description, may_have_reached_server=False, http_status=http_status, code=RATE_LIMITED
        )
        self.retry_after = retry_after

    def __reduce__(self):
        return (_rebuild_rate_limited, (self.description, self.retry_after, self.http_status))


def _rebuild_rate_limited(description, retry_after, http_status):
    return RateLimitedError(description, retry_after=retry_after, http_status=http_status)


@dataclass(frozen=True)
class Answer:
    """A JSON answer of the gateway: ``data`` holds ``result`` "OK" or "ERROR"."""

    data: dict[str, Any]
    http_status: int

    @property
    def ok(self) -> bool:
        return self.data.get("result") == "OK"


def parse_retry_after(value: str | None, *, now: float | None = None) -> float:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), bounded."""
    if not value:
        return DEFAULT_RETRY_AFTER
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return DEFAULT_RETRY_AFTER
        seconds = when - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return DEFAULT_RETRY_AFTER
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


class Transport:
    """POSTs JSON to ``{base_url}/API/<endpoint>/`` with the credentials in the body."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        timeout: tuple[float, float],
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self._password = password
        self.timeout = timeout
        self._session = session
        self._own_session = session is None

    def __repr__(self) -> str:
        return f"Transport(base_url={self.base_url!r}, username={self.username!r}, password='***')"

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            import requests  # heavy: only when the first request is made

            self._session = requests.Session()
        return self._session

    def close(self) -> None:
        if self._session is not None and self._own_session:
            self._session.close()
            self._session = None

    def url(self, endpoint: str) -> str:
        return f"{self.base_url}/API/{endpoint}/"

    def scrub(self, text: str) -> str:
        """``text`` with the password replaced by ``***`` (servers and proxies may echo it)."""
        if self._password and self._password in text:
            text = text.replace(self._password, "***")
        return text

    def encode(self, fields: dict[str, Any]) -> bytes:
        """The JSON body of a request: the credentials and ``fields`` (ASCII, so no charset doubt)."""
        return json.dumps({"username": self.username, "password": self._password, **fields}).encode("ascii")

    def post(self, endpoint: str, fields: dict[str, Any]) -> Answer:
        """One request. Returns the gateway's JSON answer or raises ``KwtSMSNetworkError``."""
        return self.post_body(endpoint, self.encode(fields))

    def post_body(self, endpoint: str, body: bytes) -> Answer:
        """``post`` with the body already encoded (the client encodes before taking a rate token,
        so that the token's time is the request's start)."""
        import requests

        session = self.session
        try:
            response = session.post(
                self.url(endpoint), data=body, headers=HEADERS, timeout=self.timeout, allow_redirects=False
            )
            content = response.content  # read the whole body inside the try: it can fail too
        except requests.exceptions.RequestException as exc:
            raise self._network_error(endpoint, exc) from None
        return self._read_answer(endpoint, response.status_code, response.headers, content)

    # -- failure mapping ----------------------------------------------------------------------
    def _network_error(self, endpoint: str, exc: Exception) -> KwtSMSNetworkError:
        import requests

        reached = _may_have_reached(exc)
        kind = type(exc).__name__
        reason = self.scrub(_reason(exc))
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            what = f"could not connect within {self.timeout[0]} s"
        elif isinstance(exc, requests.exceptions.ReadTimeout):
            what = f"no answer within {self.timeout[1]} s after the request was sent"
        elif reached:
            what = "the connection broke after the request was sent"
        else:
            what = "could not reach the server"
        return KwtSMSNetworkError(
            f"{endpoint}: {what} ({kind}: {reason}) [{self.base_url}]", may_have_reached_server=reached
        )

    def _read_answer(self, endpoint: str, status: int, headers: Any, content: bytes) -> Answer:
        if status == 429:
            # The header has whole seconds; the sandbox (and perhaps the gateway) also puts the exact
            # wait in the body, which keeps a paced send from idling a whole second.
            retry_after = _json_retry_after(content)
            if retry_after is None:
                retry_after = parse_retry_after(headers.get("Retry-After"))
            return_text = _json_description(content)
            raise RateLimitedError(
                self.scrub(
                    f"{endpoint}: HTTP 429 rate limited"
                    f"{': ' + return_text if return_text else ''}; retry after {retry_after:g} s"
                ),
                retry_after=retry_after,
            )
        data = _parse_json(content)
        if isinstance(data, dict) and data.get("result") in ("OK", "ERROR"):
            if status >= 500 and data.get("result") == "ERROR" and data.get("code") not in ERRORS:
                # A 5xx whose body names no kwtSMS code is a crash report, not a refusal: the
                # request may have been processed before the crash.
                raise KwtSMSNetworkError(
                    self.scrub(
                        f"{endpoint}: HTTP {status} from the server ({data.get('code')}: "
                        f"{str(data.get('description', ''))[:200]})"
                    ),
                    may_have_reached_server=True,
                    http_status=status,
                    code=f"HTTP_{status}",
                )
            return Answer(data, status)
        snippet = self.scrub(_snippet(content))
        if 300 <= status < 400:
            location = self.scrub(str(headers.get("Location", "")))
            raise KwtSMSNetworkError(
                f"{endpoint}: HTTP {status} redirect to {location!r} was not followed (a redirect "
                f"would drop the POST body); set base_url to the final address",
                may_have_reached_server=False,
                http_status=status,
                code=f"HTTP_{status}",
            )
        if 400 <= status < 500:
            raise KwtSMSNetworkError(
                f"{endpoint}: HTTP {status} without a kwtSMS answer ({snippet}); check base_url "
                f"({self.base_url})",
                may_have_reached_server=False,
                http_status=status,
                code=f"HTTP_{status}",
            )
        if status >= 500:
            raise KwtSMSNetworkError(
                f"{endpoint}: HTTP {status} from the server ({snippet})",
                may_have_reached_server=True,
                http_status=status,
                code=f"HTTP_{status}",
            )
        raise KwtSMSNetworkError(
            f"{endpoint}: HTTP {status} with an unreadable answer ({snippet})",
            may_have_reached_server=True,
            http_status=status,
            code="BAD_ANSWER",
        )


def _may_have_reached(exc: Exception) -> bool:
    """False only when the request certainly never left (see the table in the module doc)."""
    import requests
    from urllib3.exceptions import (
        ConnectTimeoutError,
        MaxRetryError,
        NameResolutionError,
        NewConnectionError,
    )

    if isinstance(
        exc,
        (
            requests.exceptions.ConnectTimeout,
            requests.exceptions.SSLError,
            requests.exceptions.ProxyError,
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
            requests.exceptions.InvalidHeader,
        ),
    ):
        return False
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError):
        inner = exc.args[0] if exc.args else None
        if isinstance(inner, MaxRetryError):
            inner = inner.reason
        if isinstance(inner, (NewConnectionError, NameResolutionError, ConnectTimeoutError)):
            return False  # the TCP connection was never made
        if isinstance(inner, ConnectionRefusedError):
            return False
    return True  # dropped mid-exchange, broken body, anything unknown: assume it may have


def _reason(exc: Exception) -> str:
    inner = exc.args[0] if exc.args else exc
    reason = getattr(inner, "reason", inner)
    return str(reason)[:300]


def _parse_json(content: bytes) -> Any:
    try:
        return json.loads(content.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        return None


def _json_description(content: bytes) -> str:
    data = _parse_json(content)
    if isinstance(data, dict):
        return str(data.get("description") or "")[:200]
    return ""


def _json_retry_after(content: bytes) -> float | None:
    data = _parse_json(content)
    value = data.get("retry_after") if isinstance(data, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAX_RETRY_AFTER:
        return None
    return float(value)


def _snippet(content: bytes) -> str:
    text = content[:120].decode("utf-8", "replace").replace("\n", " ").strip()
    return repr(text) if text else "empty body"
