"""One HTTP round trip to the kwtSMS JSON API, and what each way of failing means.

``Transport.post`` answers the parsed JSON of the gateway (``result`` OK or ERROR, whatever the
HTTP status) or raises ``KwtSMSNetworkError`` saying whether the request may have reached the
server. That flag decides whether a send may be repeated, so each case is argued here:

=====================================================  =========  ===============================
what happened                                          may have   why
                                                       reached
=====================================================  =========  ===============================
connection refused, DNS failure, connect timeout,      no         no connection, no request
TLS handshake failure, proxy refused the tunnel, the
overall deadline passed while connecting
HTTP 429 (rate limited), with a length                 no         the gateway says nothing was
                                                                  processed
JSON error answer with a kwtSMS code (any status)      no         the gateway answered; it is a
                                                                  ``KwtSMSError``, not this one
3xx redirect (never followed: requests would turn the  no         the server only pointed
POST into a GET without the body)                                 elsewhere
4xx without a JSON answer (404 wrong base URL, 403),   no         the request was refused
with a length (Content-Length or chunked)
read timeout                                           yes        the request was sent; the
                                                                  answer did not come in time
connection dropped after the request was written       yes        the server may have processed
(RemoteDisconnected, reset, broken chunked body)                  it before dropping
5xx without a kwtSMS answer (500, 502, 503, 504), or   yes        a proxy or the application
5xx JSON naming no kwtSMS code (a crash report)                   failed somewhere after
                                                                  receiving the request
3xx, 4xx or 429 without a length (it may be the head   yes        it may have been cut short
of any answer, cut short)
2xx whose body is not the JSON answer (HTML, garbage,  yes        something answered "OK-ish"
truncated JSON, NaN, nesting too deep, a ``code`` that            but we cannot read what
is not a code)
answer over the size cap, or compressed other than     yes        as above: the server had the
gzip/deflate                                                      request
overall deadline passed once the request was started  yes        the request may have been sent
(see ``http_limits``)
=====================================================  =========  ===============================

The password travels only in the JSON body. It is never put in a URL, a log line or an
exception: every text coming back from the network is scrubbed of it (``redact.Redactor``, in
every form an echo can take, before anything is cut) and made one line, and ``requests``
exceptions (whose ``request`` holds the body) are not chained.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import time
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import airflow_provider_kwtsms.gateway.http_limits as http_limits
from airflow_provider_kwtsms.errors import ERRORS, RATE_LIMITED, KwtSMSNetworkError
from airflow_provider_kwtsms.gateway.answer import (
    UnreadableAnswer,
    error_code,
    finite_number,
    one_line,
    parse_json,
)
from airflow_provider_kwtsms.gateway.redact import Redactor

if TYPE_CHECKING:
    import requests

# identity: we read compressed answers only because a server may compress anyway (http_limits).
HEADERS = {"Content-Type": "application/json", "Accept": "application/json", "Accept-Encoding": "identity"}
DEFAULT_RETRY_AFTER = 1.0
MAX_RETRY_AFTER = 120.0


class RateLimitedError(KwtSMSNetworkError):
    """HTTP 429: the account's request rate was exceeded; nothing was processed."""

    def __init__(self, description: str, *, retry_after: float, http_status: int = 429) -> None:
        super().__init__(
            description, may_have_reached_server=False, http_status=http_status, code=RATE_LIMITED
        )
        self.retry_after = retry_after


@dataclass(frozen=True)
class Answer:
    """A JSON answer of the gateway: ``data`` holds ``result`` "OK" or "ERROR"."""

    data: dict[str, Any]
    http_status: int

    @property
    def ok(self) -> bool:
        return self.data.get("result") == "OK"

    @property
    def code(self) -> str:
        """The error code of an ERROR answer (checked to be a code when the answer was read)."""
        return str(self.data.get("code") or "UNKNOWN")


def parse_retry_after(value: str | None, *, now: float | None = None) -> float:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), bounded."""
    if not value:
        return DEFAULT_RETRY_AFTER
    value = value.strip()[:100]
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
    """POSTs JSON to ``{base_url}/API/<endpoint>/`` with the credentials in the body.

    ``timeout`` is (connect, read) seconds for each socket operation; ``deadline`` bounds the
    whole call (default: connect + read), see ``http_limits``."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        timeout: tuple[float, float],
        deadline: float | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self._password = password
        self._redactor = Redactor(password)
        self.timeout = timeout
        self.deadline = float(deadline) if deadline is not None else float(timeout[0] + timeout[1])
        self._session = session
        self._own_session = session is None
        if session is not None:
            http_limits.mount_deadline_adapter(session, self.base_url + "/")

    def __repr__(self) -> str:
        return f"Transport(base_url={self.base_url!r}, username={self.username!r}, password='***')"

    def __reduce__(self) -> tuple[object, ...]:  # holds the password: never pickled
        raise TypeError("a Transport holds the API password and cannot be pickled")

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            self._session = http_limits.bounded_session()  # imports requests: first request only
        return self._session

    def close(self) -> None:
        if self._session is not None and self._own_session:
            self._session.close()
            self._session = None

    def url(self, endpoint: str) -> str:
        return f"{self.base_url}/API/{endpoint}/"

    def scrub(self, text: str, limit: int | None = None) -> str:
        """``text`` without the password in any form (servers and proxies may echo it), then cut
        to ``limit``."""
        return self._redactor.scrub(text, limit)

    def line(self, value: Any, limit: int = 300) -> str:
        """Untrusted ``value`` as one scrubbed, short line for an error or a log."""
        return one_line(value, limit, self._redactor)

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
        import urllib3

        session = self.session
        response = None
        with http_limits.Deadline(self.deadline) as deadline:
            try:
                response = session.post(
                    self.url(endpoint),
                    data=body,
                    headers=HEADERS,
                    timeout=self.timeout,
                    allow_redirects=False,
                    stream=True,
                )
                content = http_limits.read_capped(response)
            except (http_limits.AnswerTooLarge, http_limits.UnreadableEncoding, zlib.error) as exc:
                raise self._unreadable(endpoint, response, exc) from None
            except (
                requests.exceptions.RequestException,
                urllib3.exceptions.HTTPError,
                http.client.HTTPException,
                http_limits.DeadlineExceeded,
                OSError,
            ) as exc:
                if deadline.passed:
                    raise self._deadline_error(endpoint, deadline) from None
                raise self._network_error(endpoint, exc) from None
            finally:
                if response is not None:
                    response.close()
            if deadline.expired:  # the watchdog's shutdown reads as an ordinary end of the answer
                raise self._deadline_error(endpoint, deadline)
        return self._read_answer(endpoint, response.status_code, response.headers, content)

    def _description(self, code: str | None, raw: Any) -> str:
        """The gateway's words, scrubbed and on one line. When they are exactly our table's text
        for the code, the table's text is used as it is: it is public, and scrubbing it would mask
        a common word that a password happens to contain ("username or *** are not correct")."""
        known = ERRORS.get(code or "")
        if (
            known is not None
            and isinstance(raw, str)
            and raw.strip().rstrip(".").casefold() == known.description.rstrip(".").casefold()
        ):
            return known.description
        return self.line(raw, 200)

    # -- failure mapping ----------------------------------------------------------------------
    def _deadline_error(self, endpoint: str, deadline: http_limits.Deadline) -> KwtSMSNetworkError:
        # The time measured, not the deadline's: the two differ when a phase overran it.
        ended = f"ended after {deadline.elapsed:.2f} s"
        if not deadline.sent:
            return KwtSMSNetworkError(
                f"{endpoint}: could not connect (TCP or TLS handshake) within the call's deadline "
                f"of {self.deadline:g} s ({ended}); the request was not sent [{self.base_url}]",
                may_have_reached_server=False,
                code="TIMEOUT",
            )
        return KwtSMSNetworkError(
            f"{endpoint}: no complete answer within the call's deadline of {self.deadline:g} s "
            f"({ended}; the server was too slow or stopped sending) [{self.base_url}]",
            may_have_reached_server=True,
            code="TIMEOUT",
        )

    def _unreadable(self, endpoint: str, response: Any, exc: Exception) -> KwtSMSNetworkError:
        status = getattr(response, "status_code", None)
        if isinstance(exc, http_limits.AnswerTooLarge):
            what = f"an answer larger than {http_limits.MAX_ANSWER_BYTES} bytes"
        elif isinstance(exc, http_limits.UnreadableEncoding):
            what = f"an answer compressed as {self.line(str(exc), 40)!r}, which we did not ask for"
        else:
            what = "a compressed answer that does not decompress"
        return KwtSMSNetworkError(
            f"{endpoint}: HTTP {status} with {what}; it cannot be read [{self.base_url}]",
            may_have_reached_server=True,
            http_status=status,
            code="BAD_ANSWER",
        )

    def _network_error(self, endpoint: str, exc: Exception) -> KwtSMSNetworkError:
        import requests

        reached = _may_have_reached(exc)
        kind = type(exc).__name__
        reason = self.line(_reason(exc))
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            what = f"could not connect within {self.timeout[0]} s"
        elif isinstance(exc, (requests.exceptions.ReadTimeout, _urllib3_read_timeout())):
            what = f"no answer within {self.timeout[1]} s after the request was sent"
        elif reached:
            what = "the connection broke after the request was sent"
        else:
            what = "could not reach the server"
        return KwtSMSNetworkError(
            f"{endpoint}: {what} ({kind}: {reason}) [{self.base_url}]", may_have_reached_server=reached
        )

    def _read_answer(self, endpoint: str, status: int, headers: Any, content: bytes) -> Answer:
        if (status == 429 or 300 <= status < 500) and not _framed(headers):
            # A refusal means "nothing processed" only when it arrived whole. Without a length an
            # answer cut after its status line ("HTTP/1.1 429", then the connection closed) looks
            # complete, and it may have been cut from any answer, an accepted send's included.
            raise KwtSMSNetworkError(
                f"{endpoint}: HTTP {status} answer without a length (Content-Length or chunked): "
                "it may have been cut short, so the request may have been processed",
                may_have_reached_server=True,
                http_status=status,
                code="BAD_ANSWER",
            )
        if status == 429:
            # The header has whole seconds; the sandbox (and perhaps the gateway) also puts the exact
            # wait in the body, which keeps a paced send from idling a whole second.
            data = _parse_or_none(content)
            retry_after = _json_retry_after(data)
            if retry_after is None:
                retry_after = parse_retry_after(headers.get("Retry-After"))
            return_text = self.line(data.get("description"), 200) if isinstance(data, dict) else ""
            raise RateLimitedError(
                f"{endpoint}: HTTP 429 rate limited{': ' + return_text if return_text else ''}; "
                f"retry after {retry_after:g} s",
                retry_after=retry_after,
            )
        data = _parse_or_none(content)
        if isinstance(data, dict) and data.get("result") in ("OK", "ERROR"):
            if data["result"] == "OK":
                return Answer(data, status)
            code = error_code(data.get("code"))
            description = self._description(code, data.get("description"))
            if code is None:
                raise KwtSMSNetworkError(
                    f"{endpoint}: HTTP {status} ERROR answer without a readable error code "
                    f"({description or 'no description'})",
                    may_have_reached_server=True,
                    http_status=status,
                    code="BAD_ANSWER",
                )
            if status >= 500 and code not in ERRORS:
                # A 5xx whose body names no kwtSMS code is a crash report, not a refusal: the
                # request may have been processed before the crash.
                raise KwtSMSNetworkError(
                    f"{endpoint}: HTTP {status} from the server ({code}: {description})",
                    may_have_reached_server=True,
                    http_status=status,
                    code=f"HTTP_{status}",
                )
            return Answer({**data, "code": code, "description": description}, status)
        snippet = _snippet(self.scrub(content[:2000].decode("utf-8", "replace"), 120))
        if 300 <= status < 400:
            location = self.line(headers.get("Location", ""), 200)
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


def _framed(headers: Any) -> bool:
    """Did the answer say how long it is, so that urllib3 could tell a cut body from a whole one?"""
    return "Content-Length" in headers or "chunked" in str(headers.get("Transfer-Encoding", "")).lower()


def _urllib3_read_timeout() -> type:
    from urllib3.exceptions import ReadTimeoutError

    return ReadTimeoutError


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
    try:
        return str(reason)
    except Exception:  # a hostile or broken object: its type is all we can say
        return type(reason).__name__


def _parse_or_none(content: bytes) -> Any:
    try:
        return parse_json(content)
    except UnreadableAnswer:
        return None


def _json_retry_after(data: Any) -> float | None:
    value = data.get("retry_after") if isinstance(data, dict) else None
    if isinstance(value, str):
        return None
    return finite_number(value, float, 0.0, MAX_RETRY_AFTER)


def _snippet(text: str) -> str:
    text = one_line(text, 120)
    return repr(text) if text else "empty body"
