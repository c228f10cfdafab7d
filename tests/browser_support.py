"""Helpers for the browser tests: Debian's Chromium driven by Playwright, and a real ``airflow api-server``.

No browser is downloaded at run time: Playwright's Python wheel brings only its driver, and it
drives the system Chromium (``apt-get install chromium``, done by ``.ci/install-browser.sh``).
A missing browser FAILS the tests with the command that fixes it; it never skips them.

Screenshots go to ``test-artifacts/browser/`` (gitignored). With ``KWTSMS_UPDATE_SCREENSHOTS=1``
they are also copied to ``docs/screenshots/``, the committed copies the README shows.

The fixtures are imported by the test modules (``from browser_support import ...``) so that
only the browser tests pay for them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts" / "browser"
DOC_SCREENSHOTS = REPO / "docs" / "screenshots"
INSTALL_HINT = "run `bash .ci/install-browser.sh` (or `apt-get install -y chromium`)"

# Without the background-networking flags Chromium keeps calling home, and on a machine with
# only loopback those connections fail noisily; a fresh profile keeps runs independent.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
VIEWPORT = {"width": 1280, "height": 900}
# The UI is a React app on a shared, slow machine: generous, but far below the test timeout.
UI_TIMEOUT_MS = 30_000


def chromium_path() -> str:
    """The Chromium binary to drive: ``$KWTSMS_CHROMIUM``, else Debian's; fails the test if absent."""
    chosen = os.environ.get("KWTSMS_CHROMIUM")
    if chosen:  # asked for by name: never fall back to another browser behind the caller's back
        if os.access(chosen, os.X_OK):
            return chosen
        pytest.fail(f"KWTSMS_CHROMIUM={chosen} is not an executable file", pytrace=False)
    candidates = [
        shutil.which("chromium"),
        "/usr/bin/chromium",
        "/usr/lib/chromium/chromium",
        shutil.which("chromium-browser"),
    ]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(f"No Chromium found (looked for $KWTSMS_CHROMIUM, chromium): {INSTALL_HINT}", pytrace=False)


def sync_playwright_or_fail():
    """``playwright.sync_api.sync_playwright``; a missing package fails (never skips) the test."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "The `playwright` package is missing: install the test extra "
            "(`uv pip install -e '.[test]'`); no `playwright install` is needed.",
            pytrace=False,
        )
    return sync_playwright


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def save_screenshot(page_or_locator, name: str) -> Path:
    """Save ``test-artifacts/browser/<name>.png``; also ``docs/screenshots/`` when asked to."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page_or_locator.screenshot(path=str(path), animations="disabled")
    if os.environ.get("KWTSMS_UPDATE_SCREENSHOTS") == "1":
        DOC_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOC_SCREENSHOTS / path.name)
    return path


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    """A headless Chromium with a fresh profile; one per test module."""
    sync_playwright = sync_playwright_or_fail()
    executable = chromium_path()
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        try:
            context = playwright.chromium.launch_persistent_context(
                str(profile),
                executable_path=executable,
                headless=True,
                args=list(CHROMIUM_FLAGS),
                viewport=VIEWPORT,
                locale="en-US",
                timezone_id="UTC",
            )
        except Exception as exc:  # a broken install must fail loudly, with the way out
            pytest.fail(f"Chromium at {executable} did not start: {exc}\n{INSTALL_HINT}", pytrace=False)
        context.set_default_timeout(UI_TIMEOUT_MS)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(chromium: BrowserContext) -> Iterator[Page]:
    """A new tab; browser console errors are kept on ``page.console_errors`` for diagnostics."""
    tab = chromium.new_page()
    tab.console_errors = []  # type: ignore[attr-defined]
    tab.on("console", lambda msg: msg.type == "error" and tab.console_errors.append(msg.text))
    try:
        yield tab
    finally:
        tab.close()


@dataclass
class ApiServer:
    """A running ``airflow api-server`` on loopback."""

    url: str
    process: subprocess.Popen
    log_path: Path

    def log_tail(self, chars: int = 6000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        # The server forks workers: signal its whole process group, which only it is in.
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"


def api_server_env(base_env: dict[str, str]) -> dict[str, str]:
    """``base_env`` plus what the UI test needs: everyone is admin, and Test is enabled."""
    env = dict(base_env)
    env.update(
        {
            "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
            # Airflow 3's SimpleAuthManager: no login page, every visitor is an admin.
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__API__EXPOSE_CONFIG": "False",
        }
    )
    return env


def start_api_server(env: dict[str, str], log_dir: Path, *, timeout: float = 180) -> ApiServer:
    """Start ``airflow api-server`` (core API and UI, one worker) and wait until it answers."""
    import requests

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = log_dir / "api-server.log"
    airflow_bin = Path(sys.executable).parent / "airflow"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                str(airflow_bin),
                "api-server",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--apps",
                "core",
                "--workers",
                "1",
            ],
            env=env,
            cwd=str(log_dir),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = ApiServer(url=url, process=process, log_path=log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"airflow api-server exited {process.returncode}:\n{server.log_tail()}")
        try:
            if requests.get(f"{url}/api/v2/monitor/health", timeout=2).status_code == 200:
                return server
        except requests.RequestException:
            pass
        time.sleep(0.5)
    server.stop()
    raise AssertionError(f"airflow api-server did not answer within {timeout:.0f}s:\n{server.log_tail()}")
