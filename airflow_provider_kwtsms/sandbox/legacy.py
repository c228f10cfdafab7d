"""The 2009 HTTP API: GET with query parameters, plain-text answers.

The document's sample calls are typed into a browser with raw Arabic in the URL and ``+`` for
spaces; the browser sends that Arabic as UTF-8 percent-escapes even with ``lang=2`` ("Arabic,
Windows"). So each value is percent-decoded to bytes and then decoded by ``lang``: UTF-8 when
the bytes are valid UTF-8, else Windows-1256 for ``lang`` 2 (and for no ``lang``), else
Latin-1 for ``lang`` 1. ``lang`` 3 and 4 are UTF-8 (invalid bytes replaced).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_to_bytes

from airflow_provider_kwtsms.sandbox.rules import one_line

LANGS = {"1": "English", "2": "Arabic (Windows-1256)", "3": "Arabic (UTF-8)", "4": "Unicode"}


def parse_query(raw_query: bytes) -> dict[str, str]:
    """The query's fields, ``+`` read as a space, each value decoded according to ``lang``."""
    pairs: list[tuple[str, bytes]] = []
    for part in raw_query.split(b"&"):
        if not part:
            continue
        key, _, value = part.partition(b"=")
        name = unquote_to_bytes(key.replace(b"+", b" ")).decode("utf-8", "replace").strip().lower()
        pairs.append((name, unquote_to_bytes(value.replace(b"+", b" "))))
    lang = next((v.decode("ascii", "replace").strip() for k, v in pairs if k == "lang"), "")
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields.setdefault(name, decode_value(value, lang))  # the first of repeated fields wins
    return fields


def decode_value(value: bytes, lang: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        if lang in ("2", ""):
            return value.decode("cp1256", "replace")
        if lang == "1":
            return value.decode("latin-1")
        return value.decode("utf-8", "replace")


def ok_text(endpoint: str, answer: dict[str, Any]) -> str:
    """The plain-text OK answer of each endpoint, as in the 2009 document."""
    if endpoint == "balance":
        return f"{_num(answer['available'])}/{_num(answer['purchased'])}"
    if endpoint == "senderid":
        return "\n".join(answer["senderid"])
    if endpoint == "send":
        return "OK:{}:{}:{}:{}:{}".format(
            answer["msg-id"],
            answer["numbers"],
            answer["points-charged"],
            _num(answer["balance-after"]),
            answer["unix-timestamp"],
        )
    if endpoint == "coverage":
        return "\n".join(answer["prefixes"])
    if endpoint == "validate":
        groups = answer["mobile"]
        # ER numbers are echoed as sent: one_line() keeps a "number" from forging an answer line.
        return "\n".join(f"{key}:{one_line(','.join(groups[key]))}" for key in ("OK", "ER", "NR"))
    if endpoint == "status":
        return f"OK:{answer['status']}:{answer['description']}"
    if endpoint == "dlr":
        return "\n".join(f"{row['Number']}:{row['Status']}" for row in answer["report"])
    raise ValueError(endpoint)


def error_text(code: str, description: str) -> str:
    """The 2009 document shows no error sample; the sandbox answers ``ERR003:<description>``."""
    return f"{code}:{one_line(description)}"  # descriptions may quote what was sent


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
