"""A per-row message template: one text per recipient row, rendered in a sandboxed Jinja.

``"Dear {{ name }}, order {{ order }} ships today"`` is rendered once per row with the row's own
keys as its only variables. The environment is jinja2's ``SandboxedEnvironment`` (no attribute
access to Python internals, no calls outside the safe set) with ``StrictUndefined``: a row
without a key the template names is that row's error, never an empty gap in a text someone
reads. No autoescaping: an SMS is plain text (HTML tags are removed later by the text cleaning).

Airflow renders an operator's templated fields once, at task start, when no row is known; the
operator therefore leaves its ``message_template`` out of ``template_fields`` and only this module
renders it (docs/operator.md, "Per-recipient rows"). jinja2 is imported on first use.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any

from airflow_provider_kwtsms.errors import KwtSMSInputError
from airflow_provider_kwtsms.gateway.answer import one_line

MAX_REASON = 200  # characters of a renderer's own message kept in a row's reason


class RowTemplateError(KwtSMSInputError):
    """A row the template could not be rendered for; the message is the row's reason (caught per
    row in ``send.rows``: that row is invalid with it, the others are sent)."""


class RowTemplate:
    """A template compiled once, rendered per row (``render``). A template that does not compile
    raises ``KwtSMSInputError`` at once, naming the problem and its line: nothing is sent."""

    def __init__(self, source: str) -> None:
        if not isinstance(source, str):
            raise KwtSMSInputError(f"message_template must be text (str), got {type(source).__name__}")
        self.source = source
        self._compiled  # noqa: B018 (compile now: a syntax error is the whole send's, before any row)

    @cached_property
    def _compiled(self) -> Any:
        from jinja2 import StrictUndefined, TemplateSyntaxError
        from jinja2.sandbox import SandboxedEnvironment

        env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
        try:
            return env.from_string(self.source)
        except TemplateSyntaxError as exc:
            raise KwtSMSInputError(
                f"message_template does not compile (line {exc.lineno}: {one_line(str(exc.message), 120)}); "
                "write the row's keys as {{ name }}"
            ) from None

    def render(self, row: Mapping[str, Any]) -> str:
        """The row's text; ``RowTemplateError`` with the reason when it cannot be rendered (a key
        the row lacks, a value the template cannot use, an operation the sandbox refuses)."""
        from jinja2.exceptions import SecurityError, UndefinedError

        try:
            return str(self._compiled.render(**{str(k): v for k, v in row.items()}))
        except UndefinedError as exc:
            missing = one_line(str(exc.message), MAX_REASON)
            raise RowTemplateError(
                f"the template needs a value the row does not have ({missing}); "
                "add it to the row or to the template's default (e.g. {{ name | default('') }})"
            ) from None
        except SecurityError as exc:
            raise RowTemplateError(
                f"the sandbox refused the template: {one_line(str(exc), MAX_REASON).rstrip('.')}"
            ) from None
        except Exception as exc:  # any error of a row's values is that row's, never the send's
            raise RowTemplateError(
                f"the template failed on this row: {type(exc).__name__}: {one_line(str(exc), MAX_REASON)}"
            ) from None
