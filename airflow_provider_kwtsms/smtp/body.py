"""The e-mail of the 2009 document's SMTP channel: its body, its ``lang``, and the rule that every
value stays on its one line. No sending here (``smtp_relay``), no Airflow.

Every value written on a line (the body's ``name:value`` lines, the From/To headers, the MAIL
FROM/RCPT TO commands) is checked before connecting: one holding a line break of any kind (all
that ``str.splitlines()`` splits on) or a control character is refused with ``SmtpFieldError``,
which names the field. The message text alone is joined onto one line instead (its line breaks
become spaces; the document says "the parameter value should be in the same line"), so nothing in
it can begin a ``username:``/``password:``/... line: the body always has exactly six lines, the
text last.
"""

from __future__ import annotations

import email.policy
import re
import smtplib
import unicodedata
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from airflow_provider_kwtsms.constants import SMS_ADDRESS
from airflow_provider_kwtsms.errors import KwtSMSInputError

LANG_ENGLISH = "1"  # GSM-7 text
LANG_UTF8 = "3"  # "Arabic (UTF-8)": any text outside GSM-7, since the body is UTF-8
MAX_8BIT_LINE = 990  # RFC 5321 allows 998 octets a line; longer bodies go quoted-printable

# What may not sit inside a value written on one line: every control character (U+0000-U+001F,
# U+007F-U+009F; they hold all of str.splitlines()'s breaks but two) and those two, U+2028 and
# U+2029. One character class: one linear scan.
NOT_ON_A_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NOT_IN_TEXT = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")  # the text may hold a tab


class SmtpFieldError(KwtSMSInputError):
    """A value cannot be written on its one line of the e-mail, its header or its SMTP command.

    ``field`` names the value (``sender``, ``from_address``, ...). Raised before connecting, so
    nothing was sent. The message never shows a password's value.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def check_one_line(field: str, value: str, hint: str, *, secret: bool = False, text: bool = False) -> str:
    """``value`` when it can be written on one line; else ``SmtpFieldError`` naming ``field``.

    ``hint`` says what to give instead. ``secret``: the value is never shown. ``text``: a tab
    is allowed (the message text may hold one).
    """
    if not isinstance(value, str):
        raise SmtpFieldError(field, f"{field} must be text (str), got {type(value).__name__}: {hint}")
    found = (_NOT_IN_TEXT if text else NOT_ON_A_LINE).search(value)
    if found is None:
        return value
    char = found.group()
    kind = "a line break" if char.splitlines() != [char] else "a control character"
    shown = "" if secret else f" {value!r}"
    name = unicodedata.name(char, f"U+{ord(char):04X}")
    raise SmtpFieldError(
        field,
        f"{field}{shown} holds {kind} ({name}, U+{ord(char):04X}) at position {found.start()}, "
        f"which cannot go on the one line it is written on in the e-mail: {hint}",
    )


def lang_for(text: str) -> str:
    """The body's ``lang``: 1 (English) for GSM-7 text, else 3 (UTF-8, the body's charset)."""
    from airflow_provider_kwtsms.text.message import encoding_of

    return LANG_ENGLISH if encoding_of(text) == "GSM-7" else LANG_UTF8


def one_line(text: str) -> str:
    """Line breaks of every kind become one space, with the blanks around them: the text stays on one line.

    ``str.splitlines()`` is the definition of a line break here, and it is linear.
    """
    return " ".join(part for line in text.splitlines() if (part := line.strip()))


def email_body(
    *,
    username: str,
    password: str,
    sender: str,
    numbers: list[str],
    text: str,
    lang: str,
    spaces_as_plus: bool = False,
) -> str:
    """The e-mail body of the 2009 document: one ``name:value`` line per parameter.

    Spaces are kept as spaces by default, as in the document's sample body ("text:Meet me at
    starbuck!"); ``spaces_as_plus`` writes them as ``+`` as its parameter list says. The gateway
    reads ``+`` as a space either way, so both arrive the same.

    Every value is checked (``SmtpFieldError``): none may break its line. The text alone has its
    line breaks joined into spaces, so the body is always these six lines, the text last.
    """

    def value(v: str) -> str:
        return v.replace(" ", "+") if spaces_as_plus else v

    for number in numbers:
        if not (isinstance(number, str) and number.isascii() and number.isdigit()):
            raise SmtpFieldError(
                "mobile",
                f"mobile number {number!r} is not digits only: give numbers with their country code, "
                "digits only (e.g. 96598765432), or use send(), which normalises them",
            )
    text = one_line(text) if isinstance(text, str) else text
    lines = [
        f"username:{check_one_line('username', username, HINTS['username'])}",
        f"password:{check_one_line('password', password, HINTS['password'], secret=True)}",
        f"sender:{value(check_one_line('sender', sender, HINTS['sender']))}",
        f"mobile:{','.join(numbers)}",
        f"lang:{check_one_line('lang', lang, 'give 1 (English) or 3 (UTF-8)')}",
        f"text:{value(check_one_line('text', text, HINTS['text'], text=True))}",
    ]
    return "\r\n".join(lines) + "\r\n"


HINTS = {
    "username": "give the API username as it is, on one line",
    "password": "give the API password as it is, on one line (no line break or control character)",
    "sender": "give the sender ID exactly as registered on the account, on one line",
    "text": "remove control characters from the text, or send it through send(), which cleans it",
    "smtp_host": "give the relay's host name",
    "from_address": "give one e-mail address on one line, e.g. alerts@example.com",
    "to_address": f"give one e-mail address on one line: kwtSMS's is {SMS_ADDRESS}",
    "smtp_login": "give the relay login on one line, in ASCII",
    "smtp_password": "give the relay password on one line, in ASCII (SMTP AUTH sends ASCII only)",
}


def check_address(field: str, address: str) -> None:
    """An address goes into a header and into MAIL FROM / RCPT TO, which smtplib sends in ASCII."""
    check_one_line(field, address, HINTS[field])
    if not smtplib.quoteaddr(address).isascii():
        raise SmtpFieldError(
            field,
            f"{field} {address!r} has an address outside ASCII, which SMTP sends only with SMTPUTF8 "
            f"(not used here): {HINTS[field]}",
        )


def mime_message(body: str, from_address: str, to_address: str, *, can_8bit: bool) -> bytes:
    """The e-mail around ``body``: plain text, UTF-8, CRLF line ends, the transfer encoding that
    keeps every line readable (7bit, 8bit when the relay takes it, else quoted-printable)."""
    msg = EmailMessage()
    msg["From"] = from_address
    msg["To"] = to_address
    msg["Subject"] = "SMS"  # kwtSMS ignores the subject
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid(domain=from_address.rpartition("@")[2] or None)
    longest = max(len(line.encode("utf-8")) for line in body.splitlines())
    if body.isascii() and longest <= MAX_8BIT_LINE:
        cte = "7bit"
    elif can_8bit and longest <= MAX_8BIT_LINE:
        cte = "8bit"  # the value stays byte for byte on its line: the simplest for any reader
    else:
        cte = "quoted-printable"
    msg.set_content(body, subtype="plain", charset="utf-8", cte=cte)
    # CRLF line ends, as SMTP requires: smtplib sends bytes as given, and bare LFs are what
    # strict relays refuse (and what SMTP smuggling plays on).
    return msg.as_bytes(policy=email.policy.SMTP)


def check_fields(
    *,
    username: str,
    password: str,
    sender: str,
    smtp_host: str,
    from_address: str,
    to_address: str,
    smtp_login: str | None,
    smtp_password: str | None,
) -> None:
    """Every setting written on a line of the e-mail, a header or an SMTP command, checked before
    any connection (``SmtpFieldError`` naming the first that cannot be written)."""
    check_one_line("username", username, HINTS["username"])
    check_one_line("password", password, HINTS["password"], secret=True)
    check_one_line("sender", sender, HINTS["sender"])
    check_one_line("smtp_host", smtp_host, HINTS["smtp_host"])
    check_address("from_address", from_address)
    check_address("to_address", to_address)
    for name, secret, value in (("smtp_login", False, smtp_login), ("smtp_password", True, smtp_password)):
        if value:
            check_one_line(name, value, HINTS[name], secret=secret)
            if not value.isascii():
                raise SmtpFieldError(name, f"{name} holds a character outside ASCII: {HINTS[name]}")
