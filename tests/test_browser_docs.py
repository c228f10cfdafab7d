"""The docs site as a reader sees it at 1280 px, in headless Chromium: the operator's reference page
shows its parameters as a table whose names never break mid-word, and no code block or table is
cut at the content column's edge (docs/stylesheets/extra.css).

The site is built as ``make docs`` builds it and served by ``python -m http.server`` on loopback;
any request that would leave the machine fails the test (the theme's web fonts are off).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest
from airflow_support import REPO
from browser_support import VIEWPORT, chromium, free_port, page, save_screenshot  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

# The pages with the widest tables and code blocks: the operator's guide and reference, the rest.
PAGES = ["operator/", "reference/operators/", "client/", "reference/gateway/", "smtp/", "sandbox/"]

_LAYOUT = """() => {
  const broken = [...document.querySelectorAll('.md-typeset table td:first-child code')]
    .filter(code => code.getClientRects().length > 1).map(code => code.textContent);
  const cutCode = [...document.querySelectorAll('.md-typeset pre > code')]
    .filter(code => code.scrollWidth > code.clientWidth + 1).map(code => code.textContent.slice(0, 60));
  const cutTables = [...document.querySelectorAll('.md-typeset table')]
    .filter(table => table.scrollWidth > table.parentElement.clientWidth + 1)
    .map(table => table.querySelector('th, td').textContent.trim());
  return {broken, cutCode, cutTables};
}"""


@pytest.fixture(scope="module")
def site_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    try:
        import mkdocstrings  # noqa: F401
    except ImportError:
        pytest.fail("the docs extra is missing: run `make docs` (it installs it)", pytrace=False)
    site = tmp_path_factory.mktemp("docs") / "site"
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(site), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(url, timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def _loopback_only(page, leaving: list[str]) -> None:  # noqa: F811
    def route(request_route):
        url = request_route.request.url
        if url.startswith("http://127.0.0.1:"):
            request_route.continue_()
        else:
            leaving.append(url)
            request_route.abort()

    page.route("**/*", route)


def test_the_operator_reference_shows_its_parameters_in_a_table_at_1280_px(page, site_url):  # noqa: F811
    from playwright.sync_api import expect

    assert VIEWPORT["width"] == 1280
    leaving: list[str] = []
    _loopback_only(page, leaving)
    page.goto(site_url + "reference/operators/")
    table = page.locator("table", has_text="kwtsms_conn_id").first
    expect(table).to_be_visible()
    names = table.locator("tbody tr td:first-child code").all_inner_texts()
    assert names[:2] == ["mobile", "message"], names
    expected = {"messages", "recipients", "message_template", "do_not_send", "sender", "send_window"}
    assert expected <= set(names), names
    assert page.evaluate(_LAYOUT) == {"broken": [], "cutCode": [], "cutTables": []}
    # The whole page at 1280 px wide (navigation, table of contents and the table), taller than a
    # screen so that the table fits: height does not change the layout checked above.
    page.set_viewport_size({"width": 1280, "height": 2300})
    save_screenshot(page, "docs-operator-reference-1280")
    assert leaving == []


@pytest.mark.parametrize("path", PAGES)
def test_no_name_breaks_and_nothing_is_cut_at_1280_px(page, site_url, path):  # noqa: F811
    leaving: list[str] = []
    _loopback_only(page, leaving)
    page.goto(site_url + path)
    assert page.evaluate(_LAYOUT) == {"broken": [], "cutCode": [], "cutTables": []}
    assert leaving == []
