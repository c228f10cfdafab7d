"""The kwtSMS page's plugin as each Airflow release loads it (marker ``compat``: also on 3.0 to
3.2): found through its entry point, a navigation entry where the release has external views,
and an app that builds with that release's FastAPI dependencies and lets no one in without a
login. What a logged-in reader sees is driven in a real API server and Chromium on the newest
release (tests/test_browser_usage.py)."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

from airflow_provider_kwtsms.version_compat import AIRFLOW_V_3_1_PLUS

pytestmark = pytest.mark.compat


def test_airflow_finds_the_plugin_through_its_entry_point() -> None:
    (entry,) = [e for e in entry_points(group="airflow.plugins") if e.name == "kwtsms"]
    plugin = entry.load()
    assert plugin.name == "kwtsms"
    views = plugin.external_views
    if AIRFLOW_V_3_1_PLUS:  # 3.0 has no external views: the page is reached at its path only
        assert [(v["href"], v["url_route"], v["destination"]) for v in views] == [
            ("/kwtsms/", "kwtsms", "nav")
        ]
    else:
        assert views == []


@pytest.mark.parametrize("path", ["/", "/static/page.js", "/api/usage", "/api/balance?x=1"])
def test_every_page_and_figure_asks_for_a_login(path: str) -> None:
    from fastapi.testclient import TestClient

    from airflow_provider_kwtsms.plugins.app import create_app

    with TestClient(create_app()) as client:
        answer = client.get(path)
    assert answer.status_code == 401, (path, answer.status_code, answer.text[:200])
    assert "credits" not in answer.text and "kwtsms_default" not in answer.text


def test_the_navigation_icon_is_public_and_only_the_icon() -> None:
    from fastapi.testclient import TestClient

    from airflow_provider_kwtsms.plugins.app import create_app

    with TestClient(create_app()) as client:
        icon = client.get("/icon.svg")
        assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"
        assert icon.text.lstrip().startswith("<svg")
        assert client.get("/page.html").status_code == 404  # the page's files only behind the login
