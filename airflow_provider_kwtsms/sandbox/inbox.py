"""The inbox page at ``/``: what the sandbox received, newest first, readable by a person.

Also the firewall's blocks in force, each with a button that lifts it (``POST /sandbox/unblock``).
"""

from __future__ import annotations

import html
from datetime import datetime, timedelta, timezone
from importlib import resources
from string import Template
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_kwtsms.sandbox.view import SandboxView

MAX_ROWS = 300
KUWAIT = timezone(timedelta(hours=3), "Asia/Kuwait")


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _when(timestamp: float) -> str:
    try:
        return datetime.fromtimestamp(timestamp, KUWAIT).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, ValueError, OSError):  # a clock moved out of the calendar: show the number
        return f"t={timestamp!r}"


def _row(message: dict[str, Any]) -> str:
    when = _when(message["received_at"])
    status = message["status"]
    if message["test"]:
        status = "TEST (held)"
    elif message["stuck"]:
        status = "STUCK (emoji / invisible characters)"
    numbers = "".join(
        f"<li>{_e(n)} <small>{_e(message['delivery'][n])}</small></li>" for n in message["mobile"]
    )
    flag = '<span class="badge test">test</span>' if message["test"] else ""
    if message.get("api") == "smtp":
        flag += '<span class="badge test">e-mail</span>'
    return (
        f'<article class="msg status-{_e(message["status"].lower())}">'
        f'<header><span class="sender">{_e(message["sender"])}</span>{flag}'
        f'<span class="when">{_e(when)} (GMT+3)</span></header>'
        f'<p class="text" dir="auto">{_e(message["message"])}</p>'
        f'<ul class="numbers">{numbers}</ul>'
        f"<footer><span>{_e(message['encoding'])}</span><span>{_e(message['pages'])} page(s)</span>"
        f'<span>{_e(message["points"])} credit(s)</span><span class="status">{_e(status)}</span>'
        f'<span class="msgid">{_e(message["msg_id"])}</span><span>account {_e(message["username"])}</span>'
        "</footer></article>"
    )


def _block(block: dict[str, Any]) -> str:
    left = f"{block['seconds_left']:.0f}"
    return (
        f'<li class="blocked"><b>{_e(block["address"])}</b> blocked since {_e(_when(block["since"]))}'
        f" until {_e(_when(block['until']))} (GMT+3), {_e(left)} s left"
        '<form method="post" action="/sandbox/unblock">'
        f'<input type="hidden" name="address" value="{_e(block["address"])}">'
        "<button>Lift the block</button></form></li>"
    )


def _firewall(sandbox: SandboxView) -> str:
    """The firewall's line: its rule, and each block in force with a button that lifts it."""
    state = sandbox.firewall_state()
    if not state["enabled"]:
        return '<p class="firewall">Firewall off.</p>'
    seconds = f"{state['block_seconds']:g}"
    rule = (
        f"Firewall on: more than {_e(state['limit'])} requests begun within one second from one "
        f"address blocks it for {_e(seconds)} s (a TCP reset, nothing processed)."
    )
    blocks = "".join(_block(block) for block in state["blocked"])
    return f'<p class="firewall">{rule}</p>' + (f'<ul class="blocks">{blocks}</ul>' if blocks else "")


def render_inbox(sandbox: SandboxView) -> str:
    messages = sandbox.messages()
    rows = "".join(_row(m) for m in reversed(messages[-MAX_ROWS:]))
    if not rows:
        rows = f'<p class="empty">No messages yet. Send one to <code>{_e(sandbox.url)}/API/send/</code>.</p>'
    with sandbox.gateway.lock:
        accounts = [a.to_dict() for a in sandbox.gateway.accounts.values()]
    balances = "".join(
        f"<li><b>{_e(a['username'])}</b>: {_e(a['available'])} / {_e(a['purchased'])} credits"
        f" <small>senders: {_e(', '.join(a['senders']))}</small></li>"
        for a in accounts
    )
    template = Template(resources.files(__package__).joinpath("inbox.html").read_text("utf-8"))
    return template.substitute(
        url=_e(sandbox.url),
        count=len(messages),
        rows=rows,
        balances=balances,
        firewall=_firewall(sandbox),
    )
