"""A machine without a browser fails the browser tests, loudly and with the fix; it never skips them."""

from __future__ import annotations

import sys

import browser_support
import pytest

pytestmark = pytest.mark.browser


def test_no_chromium_fails_with_the_install_command(monkeypatch):
    monkeypatch.delenv("KWTSMS_CHROMIUM", raising=False)
    monkeypatch.setattr(browser_support.shutil, "which", lambda name: None)
    monkeypatch.setattr(browser_support.os, "access", lambda path, mode: False)
    with pytest.raises(pytest.fail.Exception, match=r"No Chromium found.*install-browser\.sh"):
        browser_support.chromium_path()


def test_a_named_chromium_that_is_missing_fails_rather_than_falling_back(monkeypatch, tmp_path):
    monkeypatch.setenv("KWTSMS_CHROMIUM", str(tmp_path / "no-such-chromium"))
    with pytest.raises(pytest.fail.Exception, match=r"KWTSMS_CHROMIUM=.*not an executable"):
        browser_support.chromium_path()


def test_missing_playwright_fails_with_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "playwright.sync_api", None)  # import now raises ImportError
    with pytest.raises(pytest.fail.Exception, match="`playwright` package is missing"):
        browser_support.sync_playwright_or_fail()


def test_this_machine_has_the_browser_the_tests_need():
    # Where this fails, the browser tests fail too: `bash .ci/install-browser.sh` fixes both.
    path = browser_support.chromium_path()
    assert browser_support.os.access(path, browser_support.os.X_OK)
    browser_support.sync_playwright_or_fail()
