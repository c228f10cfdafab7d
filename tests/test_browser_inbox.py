"""The sandbox inbox page as a person sees it, in headless Chromium."""

from __future__ import annotations

import pytest
from browser_support import chromium, page, save_screenshot  # noqa: F401  (fixtures)

from airflow_provider_kwtsms.gateway.client import KwtSMSClient
from airflow_provider_kwtsms.sandbox import Sandbox

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

ENGLISH = "Your order 1042 has shipped. Track it in the app."
# 82 UCS-2 units: two pages of 67, so the footer must say 2 page(s), 2 credit(s).
ARABIC = "مرحباً! طلبك رقم ١٠٤٢ في الطريق إليك. شكراً لاختيارك متجرنا، نتمنى لك يوماً سعيداً"


def evaluate_between_refreshes(locator, script: str):
    """``locator.evaluate``, retried: the inbox reloads itself every 3 s, which can cut a call short."""
    from playwright.sync_api import Error

    for attempt in range(3):
        try:
            return locator.evaluate(script)
        except Error:
            if attempt == 2:
                raise
    return None


def test_inbox_shows_both_messages_arabic_right_to_left_with_pages_credits_and_balance(page):  # noqa: F811
    from playwright.sync_api import expect

    with Sandbox(balance=1000) as sandbox:
        with KwtSMSClient("sandbox_user", "sandbox_pass", base_url=sandbox.url) as client:
            english = client.send(["96598765432", "96550000001"], ENGLISH)
            arabic = client.send("96560000002", ARABIC)  # another number: no 15 s ERR028 wait
        assert english.ok and arabic.ok
        assert (english.points_charged, arabic.points_charged) == (2, 2)

        page.goto(sandbox.url + "/")
        expect(page.locator("h1")).to_contain_text("2 message(s)")

        cards = page.locator("article.msg")
        expect(cards).to_have_count(2)
        english_card = cards.filter(has_text="Your order 1042 has shipped")
        arabic_card = cards.filter(has_text="طلبك رقم")
        expect(english_card).to_have_count(1)
        expect(arabic_card).to_have_count(1)

        # Newest first: the Arabic message was sent last.
        expect(cards.first).to_contain_text("طلبك رقم")

        # Each text exactly as sent (after cleaning: Arabic-Indic digits become 1042), each in
        # its own reading direction.
        expect(english_card.locator(".text")).to_have_text(english.plan.message)
        expect(arabic_card.locator(".text")).to_have_text(arabic.plan.message)
        assert "1042" in arabic.plan.message
        expect(arabic_card.locator(".text")).to_have_css("direction", "rtl")
        expect(english_card.locator(".text")).to_have_css("direction", "ltr")
        # Right-to-left means the text hugs the right edge of its card.
        text_box = evaluate_between_refreshes(
            arabic_card.locator(".text"),
            "el => { const r = document.createRange(); r.selectNodeContents(el);"
            " const t = r.getBoundingClientRect(), b = el.getBoundingClientRect();"
            " return {gapLeft: t.left - b.left, gapRight: b.right - t.right}; }",
        )
        assert text_box["gapRight"] < 2 < text_box["gapLeft"], text_box

        # Recipients, encoding, pages and credits per message.
        for number in ("96598765432", "96550000001"):
            expect(english_card.locator(".numbers")).to_contain_text(number)
        expect(english_card.locator("footer")).to_contain_text("GSM-7")
        expect(english_card.locator("footer")).to_contain_text("1 page(s)")
        expect(english_card.locator("footer")).to_contain_text("2 credit(s)")
        expect(arabic_card.locator("footer")).to_contain_text("UCS-2")
        expect(arabic_card.locator("footer")).to_contain_text("2 page(s)")
        expect(arabic_card.locator("footer")).to_contain_text("2 credit(s)")
        expect(arabic_card.locator("footer")).to_contain_text(arabic.msg_ids[0])

        # The balance after 4 credits were spent.
        assert sandbox.account()["available"] == 996
        expect(page.locator(".accounts")).to_contain_text("sandbox_user: 996 / 1000 credits")

        page.wait_for_load_state("load")
        expect(cards).to_have_count(2)
        save_screenshot(page, "sandbox-inbox")
