"""A local kwtSMS gateway for development and tests: ``Sandbox``, ``python -m ...sandbox``.

Stdlib only, so importing it costs nothing and it runs anywhere the provider is installed.
"""

from __future__ import annotations

from airflow_provider_kwtsms.sandbox.server import DEFAULT_PORT, Sandbox

__all__ = ["DEFAULT_PORT", "Sandbox"]
