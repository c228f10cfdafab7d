"""KwtSMSPlugin: what Airflow loads through the ``airflow.plugins`` entry point.

The page and its JSON are a FastAPI app mounted by the API server at ``URL_PREFIX``; on Airflow
3.1+ an external view puts the page in the UI's navigation (3.0 has no such extension point: the
page and the JSON are at the same path, docs/usage-page.md). Every Airflow process loads plugins,
so this module stays cheap: the app (FastAPI, the database reads) is built on first use, by the
API server only.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow.plugins_manager import AirflowPlugin

from airflow_provider_kwtsms.version_compat import HAS_UI_EXTERNAL_VIEWS

URL_PREFIX = "/kwtsms"
PAGE_NAME = "kwtSMS"


class KwtSMSPlugin(AirflowPlugin):
    """The kwtSMS usage page: credits per DAG per day, problems, alerts and balances."""

    name = "kwtsms"
    # An external view (3.1+): the UI shows the page in an iframe at /plugin/kwtsms.
    external_views = (
        [
            {
                "name": PAGE_NAME,
                "href": f"{URL_PREFIX}/",
                "url_route": "kwtsms",
                "destination": "nav",
                "category": "browse",
                "icon": f"{URL_PREFIX}/icon.svg",
            }
        ]
        if HAS_UI_EXTERNAL_VIEWS
        else []
    )

    @cached_property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        from airflow_provider_kwtsms.plugins.app import create_app

        return [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "kwtSMS usage"}]
