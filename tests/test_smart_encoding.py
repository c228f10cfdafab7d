"""Smart encoding: look-alikes sent as GSM-7 when that is faithful, and the saving reported."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sandbox_helpers import frozen_clock, linked

from airflow_provider_kwtsms.gateway.client import KwtSMSClient
from airflow_provider_kwtsms.text.message import GSM7, UCS2, contains_html, encoding_of, measure_message
from airflow_provider_kwtsms.text.smart_encoding import LOOKALIKES, smart_encode

USER, PASSWORD = "sandbox_user", "sandbox_pass"
NUMBERS = ["96598765432", "96550001111", "96566002222"]
# 118 characters with one curly apostrophe: 2 UCS-2 pages as written, 1 GSM-7 page converted.
PASTED = (
    "We’re open until 10 pm tonight for the end-of-season sale. "
    "Bring this message to the counter for 20% off every item."
)


@pytest.fixture
def sb(kwtsms_sandbox_factory):
    return kwtsms_sandbox_factory(balance=1000, clock=frozen_clock())


def client(sb, **options) -> KwtSMSClient:
    return KwtSMSClient(USER, PASSWORD, base_url=sb.url, **linked(sb), **options)  # 5/s, sandbox time


def test_a_pasted_apostrophe_no_longer_doubles_the_bill(sb):
    assert measure_message(PASTED).pages == 2 and encoding_of(PASTED) == UCS2
    result = client(sb).send(NUMBERS, PASTED)
    (message,) = sb.messages()
    assert message["message"] == PASTED.replace("’", "'")
    assert message["encoding"] == GSM7 and result.points_charged == 3  # 1 page x 3 numbers
    summary = result.to_dict()
    assert summary["smart_encoding"] == {"replaced_characters": 1, "credits_saved": 3}
    assert "smart encoding replaced 1 character(s), saving 3 credit(s)" in result.plan.describe()


def test_the_switch_sends_the_text_as_written(sb):
    result = client(sb, smart_encoding=False).send(NUMBERS, PASTED)
    assert sb.messages()[0]["message"] == PASTED and result.points_charged == 6
    assert result.to_dict()["smart_encoding"] == {"replaced_characters": 0, "credits_saved": 0}
    # ... and per send, overriding the client's setting either way
    on = client(sb, smart_encoding=False).plan_send(NUMBERS, PASTED, smart_encoding=True)
    assert on.credits_saved == 3


@pytest.mark.parametrize(
    "text",
    [
        "طلبك رقم 1042 جاهز – شكراً لك",  # Arabic: no GSM-7 form, the dash stays too
        "Leçon spéciale – 20 % sur tout",  # ç has no GSM-7 lower-case form: nothing changes
        "价格 – 20%",
    ],
)
def test_text_with_a_character_that_has_no_gsm7_form_is_sent_exactly_as_written(sb, text):
    result = client(sb).send(NUMBERS[:1], text)
    assert sb.messages()[0]["message"] == text
    assert result.plan.replaced_characters == 0 and result.plan.info.encoding == UCS2


def test_a_conversion_that_would_cost_pages_is_not_made():
    text = "Wait…" * 14  # 70 UCS-2 units = 1 page; with "..." it would be 112 GSM-7 = 1 page
    assert smart_encode(text).text == "Wait..." * 14
    longer = "…" * 70  # 1 UCS-2 page; 210 GSM-7 characters would be 2 pages
    assert smart_encode(longer).text == longer and smart_encode(longer).replaced == 0


def test_every_table_entry_counts_and_fullwidth_letters_become_ascii():
    assert smart_encode("ＯＴＰ：１２３４").text == "OTP:1234"
    assert smart_encode("a\u00a0b\u2009c\u3000d").text == "a b c d"
    assert smart_encode("“Hi” — ‘you’ • x″").replaced == 7
    assert all(len(form) >= 1 for form in LOOKALIKES.values())


@given(st.text(alphabet=st.sampled_from([*LOOKALIKES, "a", " ", "é", "ب", "€", "\n", "…"]), max_size=400))
def test_smart_encoding_is_either_faithful_gsm7_or_the_text_untouched(text):
    smart = smart_encode(text)
    if smart.replaced:
        assert encoding_of(smart.text) == GSM7
        assert measure_message(smart.text).pages <= measure_message(text).pages
        assert smart.pages_saved == measure_message(text).pages - measure_message(smart.text).pages
    else:
        assert smart.text == text and smart.pages_saved == 0


def test_fullwidth_angle_brackets_are_sent_as_written_not_as_a_tag(sb):
    """``＜b＞`` is no tag; ``<b>`` is one, and the gateway refuses it (ERR027)."""
    assert smart_encode("Sale ＜b＞ today").text == "Sale ＜b＞ today"
    assert "＜" not in LOOKALIKES and "＞" not in LOOKALIKES
    result = client(sb).send(NUMBERS[:1], "Ｓａｌｅ ＜b＞ ｔｏｄａｙ")
    assert result.ok and sb.messages()[0]["message"] == "Ｓａｌｅ ＜b＞ ｔｏｄａｙ"


def test_a_conversion_that_would_close_a_tag_around_the_texts_own_brackets_is_not_made():
    assert smart_encode("<ｂ>").text == "<ｂ>"  # "<b>" would be a tag
    assert smart_encode("a <ｂ x").text == "a <b x"  # no tag either way: converted


_ANGLES_AND_LOOKALIKES = [
    *LOOKALIKES,
    *(chr(c) for c in range(0xFF01, 0xFF5F)),
    "<",
    ">",
    "a",
    "b",
    "/",
    "!",
    "-",
    " ",
]


@given(st.text(alphabet=st.sampled_from(_ANGLES_AND_LOOKALIKES), max_size=60))
def test_smart_encoding_never_makes_an_angle_bracket_or_a_tag(text):
    smart = smart_encode(text)
    assert smart.text.count("<") <= text.count("<") and smart.text.count(">") <= text.count(">")
    assert contains_html(text) or not contains_html(smart.text)
