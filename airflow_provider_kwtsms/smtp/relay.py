"""One SMTP relay session: connect (TLS, STARTTLS, login as configured), hand over an e-mail,
and read what the relay says without the secrets it may quote. No Airflow here.

A relay's reply may quote the body or the login, so every reply is scrubbed of both passwords
(``redact.Redactor``) before it goes into an error, a log line or a result, and only then cut to
``MAX_REPLY_TEXT``.
"""

from __future__ import annotations

import base64
import smtplib
import ssl
from email import quoprimime

from airflow_provider_kwtsms.errors import KwtSMSError, KwtSMSNetworkError
from airflow_provider_kwtsms.gateway.redact import Redactor
from airflow_provider_kwtsms.smtp.body import NOT_ON_A_LINE, mime_message

MAX_REPLY_TEXT = 300  # characters of a relay's reply kept in an error, after scrubbing


class SmtpSendError(KwtSMSError):
    """The relay refused the e-mail or could not be used: nothing was sent.

    Codes: ``SMTP_AUTH`` (relay login refused), ``SMTP_CONFIG`` (e.g. STARTTLS not offered),
    ``SMTP_REFUSED`` (5xx: sender or recipient address refused, message rejected) are permanent;
    ``SMTP_TEMPORARY`` (4xx) may pass on a retry.
    """

    PERMANENT = frozenset({"SMTP_AUTH", "SMTP_CONFIG", "SMTP_REFUSED"})

    def __init__(
        self,
        code: str,
        description: str | None = None,
        *,
        action: str | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(code, description, action=action or RELAY_ACTIONS.get(code), http_status=http_status)
        self.permanent = code in self.PERMANENT
        self.retryable = not self.permanent


RELAY_ACTIONS = {
    "SMTP_AUTH": "Fix the SMTP relay connection's login and password.",
    "SMTP_CONFIG": "Fix the SMTP relay settings (host, port, SSL / STARTTLS).",
    "SMTP_REFUSED": "Ask the relay's administrator to let this from-address send to sms@kwtsms.com.",
    "SMTP_TEMPORARY": "The relay is busy or limiting; retry later.",
}


class SmtpRelay:
    """A relay's settings and its one open session (opened on first use, kept between e-mails)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        use_ssl: bool,
        starttls: bool,
        login: str | None,
        password: str | None,
        timeout: float,
        ssl_context: ssl.SSLContext | None,
        redactors: tuple[Redactor, ...],
    ) -> None:
        self.smtp_host = host
        self.smtp_port = port
        self.smtp_ssl = use_ssl
        self.smtp_starttls = starttls
        self.smtp_login = login
        self._smtp_password = password
        self.timeout = timeout
        self._ssl_context = ssl_context
        self._redactors = redactors
        self._smtp: smtplib.SMTP | None = None
        self._can_8bit = False

    def check(self) -> str:
        """Open a session with the relay (TLS and login as configured), then close it.

        Says nothing about the kwtSMS credentials: the e-mail channel never answers.
        Raises ``SmtpSendError`` or ``KwtSMSNetworkError`` naming what failed.
        """
        try:
            smtp = self.connect()
            code, _ = smtp.noop()
        finally:
            self.disconnect()
        login = f" as {self.smtp_login}" if self.smtp_login else ""
        tls = " over TLS" if self.smtp_ssl else " with STARTTLS" if self.smtp_starttls else ""
        return f"SMTP relay {self.smtp_host}:{self.smtp_port} took a session{tls}{login} (NOOP {code})"

    def connect(self) -> smtplib.SMTP:
        if self._smtp is not None:
            return self._smtp
        where = f"{self.smtp_host}:{self.smtp_port}"
        smtp: smtplib.SMTP | None = None
        error: KwtSMSError | None = None
        # Each error is raised after the except block, so it chains no smtplib exception (whose
        # text is the relay's, unscrubbed) as its __context__.
        try:
            if self.smtp_ssl:
                context = self._ssl_context or ssl.create_default_context()
                smtp = smtplib.SMTP_SSL(self.smtp_host, self.smtp_port, timeout=self.timeout, context=context)
            else:
                smtp = smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=self.timeout)
            smtp.ehlo_or_helo_if_needed()
            if self.smtp_starttls:
                smtp.starttls(context=self._ssl_context or ssl.create_default_context())
                smtp.ehlo()
            if self.smtp_login:
                smtp.login(self.smtp_login, self._smtp_password or "")
        except smtplib.SMTPAuthenticationError as exc:
            error = SmtpSendError(
                "SMTP_AUTH", f"The relay {where} refused the login {self.smtp_login!r}: {self._reply(exc)}"
            )
        except smtplib.SMTPNotSupportedError as exc:
            error = SmtpSendError(
                "SMTP_CONFIG",
                f"The relay {where} does not offer what was asked (STARTTLS or AUTH): {self._scrub(exc)}",
            )
        except ssl.SSLError as exc:
            error = SmtpSendError("SMTP_CONFIG", f"TLS with the relay {where} failed: {self._scrub(exc)}")
        except smtplib.SMTPResponseException as exc:
            error = self._refused(exc, f"The relay {where} refused the session")
        except (smtplib.SMTPException, OSError) as exc:
            error = KwtSMSNetworkError(
                f"Cannot reach the SMTP relay {where}: {type(exc).__name__}: {self._scrub(exc)}",
                may_have_reached_server=False,
                code="SMTP_NETWORK",
            )
        if error is not None:
            if smtp is not None:
                smtp.close()
            raise error
        assert smtp is not None
        self._can_8bit = smtp.has_extn("8bitmime")
        self._smtp = smtp
        return smtp

    def disconnect(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()

    def deliver(self, body: str, from_address: str, to_address: str) -> bool:
        """Hand one e-mail to the relay; True when its reply to the body was lost."""
        for fresh in (False, True):
            reused = self._smtp is not None
            smtp = self.connect()
            data = mime_message(body, from_address, to_address, can_8bit=self._can_8bit)
            options = ["BODY=8BITMIME"] if self._can_8bit and not data.isascii() else []
            lost: str | None = None
            try:
                code, reply = smtp.mail(from_address, options)
                if code != 250:
                    raise self._refused(
                        smtplib.SMTPSenderRefused(code, reply, from_address),
                        f"The relay refused the from-address {from_address!r}",
                    )
                code, reply = smtp.rcpt(to_address)
                if code not in (250, 251):
                    smtp.rset()
                    raise self._refused(
                        smtplib.SMTPRecipientsRefused({to_address: (code, reply)}),
                        f"The relay refused the recipient {to_address!r}",
                    )
            except (smtplib.SMTPServerDisconnected, OSError) as exc:
                lost = type(exc).__name__
            if lost is not None:
                self._drop()
                if reused and not fresh:
                    continue  # an idle connection the relay closed: open a new one, nothing was sent
                raise KwtSMSNetworkError(
                    f"The SMTP relay closed the connection before the e-mail: {lost}",
                    may_have_reached_server=False,
                    code="SMTP_NETWORK",
                )
            refused: SmtpSendError | None = None
            try:
                code, reply = smtp.data(data)
            except smtplib.SMTPDataError as exc:  # the reply to DATA itself: no body went out
                refused = self._refused(exc, "The relay refused the e-mail")
            except (smtplib.SMTPException, OSError):
                # Also smtplib's own 500 "Line too long.", a reply it could not read, maybe the one
                # to the body: the body may have gone out, at most once, so not sent again.
                self._drop()
                return True
            if refused is not None:
                raise refused
            if 400 <= code < 600:
                raise self._refused(smtplib.SMTPDataError(code, reply), "The relay refused the e-mail")
            if not 200 <= code < 300:
                # No SMTP reply to the body (garbage, an empty line: smtplib says -1): the relay
                # got the whole e-mail and may have taken it, so it is lost, not refused.
                self._drop()
                return True
            return False
        raise AssertionError("unreachable")

    # -- what the relay says, without the secrets it may quote ------------------------------
    def _scrub(self, text: object) -> str:
        """The relay's text (or an exception's) without either password, on one line, then cut."""
        out = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        for redactor in self._redactors:
            out = redactor.scrub(out)
        # A multi-line reply, or one holding control characters, must not forge log lines.
        out = " ".join(NOT_ON_A_LINE.sub(" ", out).split())
        return out if len(out) <= MAX_REPLY_TEXT else out[: MAX_REPLY_TEXT - 1] + "…"

    def _reply(self, exc: smtplib.SMTPResponseException) -> str:
        return f"{exc.smtp_code} {self._scrub(exc.smtp_error)}".strip()

    def _refused(self, exc: smtplib.SMTPException, what: str) -> SmtpSendError:
        reply: bytes | str
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            code, reply = next(iter(exc.recipients.values()))
        elif isinstance(exc, smtplib.SMTPResponseException):
            code, reply = exc.smtp_code, exc.smtp_error
        else:
            code, reply = 0, str(exc)
        kind = "SMTP_TEMPORARY" if 400 <= code < 500 else "SMTP_REFUSED"
        return SmtpSendError(kind, f"{what}: {code} {self._scrub(reply)}".strip())

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()


def relay_redactors(password: str, smtp_login: str | None, smtp_password: str | None) -> tuple[Redactor, ...]:
    """What scrubs a relay's reply: both passwords, and the forms this sender puts them on the wire in.

    Besides ``redact``'s forms (raw, JSON, URL, HTML): the API password quoted-printable, as a
    body that must be so encoded carries it, and the relay password in base64, as AUTH PLAIN and
    AUTH LOGIN send it (a relay may quote what it was sent).
    """
    secrets = [password, quoprimime.body_encode(password.encode("utf-8").decode("latin-1"))]
    if smtp_password:
        secrets.append(smtp_password)
        wire = [smtp_password, f"\0{smtp_login or ''}\0{smtp_password}"]
        secrets += [base64.b64encode(s.encode("utf-8")).decode("ascii") for s in wire]
    return tuple(Redactor(secret) for secret in dict.fromkeys(secrets) if secret)
