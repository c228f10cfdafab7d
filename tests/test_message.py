"""message.py: cleaning, encoding and exact page boundaries."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_kwtsms.errors import KwtSMSInputError
from airflow_provider_kwtsms.text.message import (
    DEFAULT_MAX_PAGES,
    GSM7_BASIC,
    GSM7_EXTENDED,
    clean_message,
    contains_html,
    measure_message,
    trim_to_pages,
)

ARABIC = "مرحبا بكم في خدمة الرسائل القصيرة، رمز التحقق هو"


# --- clean_message ---------------------------------------------------------------------------


def test_arabic_indic_and_persian_digits_become_latin():
    assert clean_message("رمزك ١٢٣٤٥٦") == "رمزك 123456"
    assert clean_message("۰۱۲۳۴۵۶۷۸۹") == "0123456789"


def test_arabic_text_survives_intact_with_diacritics():
    text = "السَّلَامُ عَلَيْكُمْ\n" + ARABIC + " ؟ ،"
    assert clean_message(text) == text


def test_emoji_and_pictographs_are_removed():
    assert clean_message("Your OTP is: 123456 🎉") == "Your OTP is: 123456"
    assert clean_message("Hi 👋🏽 there ❤️ ⭐ 🇰🇼") == "Hi there"  # no double space left behind
    assert clean_message("keycap 1️⃣ family 👨‍👩‍👧") == "keycap 1 family"
    assert clean_message("🎉🎉🎉") == ""


def test_invisible_characters_are_removed():
    text = "\ufeffOTP\u200b: 12\u00ad34\u200e\u200f\u202a\u202e\u2066\u2069\u200d\u2060"
    assert clean_message(text) == "OTP: 1234"


def test_control_characters_removed_except_newline_and_tab():
    assert clean_message("a\x00b\x07c\x1bd\x7fe\x85f") == "abcdef"
    assert clean_message("line1\nline2\tcol") == "line1\nline2\tcol"
    assert clean_message("line1\r\nline2\rline3") == "line1\nline2\nline3"


def test_html_tags_removed_but_comparisons_kept():
    assert clean_message("<b>Hello</b> <i class='x'>world</i>") == "Hello world"
    assert clean_message("line<br>next<br/>end") == "line\nnext\nend"
    assert clean_message("<!-- hidden -->shown") == "shown"
    assert clean_message("x < y and y > z") == "x < y and y > z"
    assert clean_message("a<b") == "a<b"
    assert clean_message("3 <5 and 7> 2") == "3 <5 and 7> 2"
    assert clean_message("<<b>script>alert(1)<</b>/script>") == "alert(1)"


def test_contains_html():
    assert contains_html("<b>x</b>")
    assert contains_html("click <a href='http://x'>here</a>")
    assert contains_html("<br/>")
    assert not contains_html("x < y and y > z")
    assert not contains_html("a<b")
    assert not contains_html("<3 you")
    assert not contains_html(ARABIC)


def test_clean_rejects_non_text_clearly():
    with pytest.raises(KwtSMSInputError, match="message must be a str"):
        clean_message(None)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_clean_never_fails_and_is_idempotent(text):
    cleaned = clean_message(text)
    assert clean_message(cleaned) == cleaned
    assert not contains_html(cleaned)
    cleaned.encode("utf-8")  # no lone surrogates left
    assert all(c in "\n\t" or (ord(c) >= 0x20 and not 0x7F <= ord(c) < 0xA0) for c in cleaned)
    measure_message(cleaned)


# --- tags: linear, and nothing left behind --------------------------------------------------------

# The tag pattern clean_message used before its single scan: quadratic ("<!--" * 40000 took 81 s),
# kept here as the reference for what a tag is, on short texts only.
REFERENCE_TAG = re.compile(
    r"<(?:!--.*?--|![A-Za-z][^<>]*|/?[A-Za-z][A-Za-z0-9:._-]*(?:\s[^<>]*)?/?)>",
    re.DOTALL,
)
HTML_PIECES = ["<", ">", "!", "-", "--", "/", "b", "r", "br", "a", " ", "\n", "x"]
HTML_PIECES += ["<!--", "-->", "<b>", "</b>"]
html_like = st.lists(st.sampled_from(HTML_PIECES), max_size=24).map("".join)

MEGABYTE = 1 << 20


def _repeat(unit: str, size: int = MEGABYTE) -> str:
    return (unit * (size // len(unit) + 1))[:size]


# The texts that made the old regexes (or a naive scan) rescan the rest of the text from every "<".
WORST_CASES = {
    "comment openings": lambda n: _repeat("<!--", n),
    "unclosed brackets": lambda n: _repeat("<", n),
    "empty brackets": lambda n: _repeat("<>", n),
    "unclosed elements": lambda n: _repeat("<a ", n),
    "unclosed declarations": lambda n: _repeat("<!a", n),
    "nested elements": lambda n: "<" * (n // 3) + "b>" * (n // 3),
    "line breaks": lambda n: _repeat("<br>", n),
    "empty comments": lambda n: _repeat("<!---->", n),
    "comments holding brackets": lambda n: _repeat("<!--<-->", n),
    "one long element": lambda n: "<a " + "x" * n,
    "one long comment": lambda n: "<!--" + "-" * n,
}


def test_comments_and_nested_tags_removed():
    assert clean_message("a<!-- x <b>y</b> -- z -->b") == "ab"
    assert clean_message("a<!---->b<!-->c") == "ab<!-->c"  # "<!-->" is not a comment
    assert clean_message("<<<b>b>b>text<</b>/b>") == "text"
    assert clean_message("<b<br>>x") == "x"
    assert clean_message("<!DOCTYPE html><p>hi</p>") == "hi"


@pytest.mark.timeout(20)  # a scan that rescans the rest of the text from every "<" takes hours
@pytest.mark.parametrize("name", sorted(WORST_CASES))
def test_cleaning_a_megabyte_of_the_worst_inputs_finishes(name):
    text = WORST_CASES[name](MEGABYTE)
    cleaned = clean_message(text)
    assert not contains_html(cleaned)
    assert len(cleaned) <= len(text)


class _CountingPattern:
    """A compiled pattern whose fullmatch counts the characters it is given."""

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern
        self.chars = 0

    def fullmatch(self, text: str) -> re.Match[str] | None:
        self.chars += len(text)
        return self.pattern.fullmatch(text)


@pytest.mark.parametrize("name", sorted(WORST_CASES))
def test_tag_scan_reads_each_character_a_bounded_number_of_times(name, monkeypatch):
    # Deterministic linearity: the characters handed to the tag-body patterns, for n and 2n
    # characters of input. A scan that rescans from every "<" reads about n*n/2 of them.
    from airflow_provider_kwtsms.text import message

    work = {}
    for size in (20_000, 40_000):
        body = _CountingPattern(message._TAG_BODY)
        breaks = _CountingPattern(message._BREAK_BODY)
        monkeypatch.setattr(message, "_TAG_BODY", body)
        monkeypatch.setattr(message, "_BREAK_BODY", breaks)
        text = WORST_CASES[name](size)
        message._strip_tags(text)
        work[size] = body.chars + breaks.chars
        monkeypatch.undo()
        assert work[size] <= 2 * size
    assert work[40_000] <= 2 * work[20_000] + 8


@settings(max_examples=500, deadline=None)
@given(html_like)
def test_contains_html_finds_exactly_the_tags_of_the_reference_pattern(text):
    assert contains_html(text) == (REFERENCE_TAG.search(text) is not None)


@settings(max_examples=500, deadline=None)
@given(st.one_of(html_like, st.text()))
def test_cleaned_html_holds_no_tag_is_stable_and_never_longer(text):
    from airflow_provider_kwtsms.text.message import _strip_tags

    stripped = _strip_tags(text)
    assert REFERENCE_TAG.search(stripped) is None and not contains_html(stripped)
    assert contains_html(text) == (stripped != text)  # contains_html agrees with what is stripped
    assert len(stripped) <= len(text)  # a <br> becomes one newline, shorter than the tag
    cleaned = clean_message(text)
    assert not contains_html(cleaned)
    assert clean_message(cleaned) == cleaned
    assert len(cleaned) <= len(text)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0x0621, max_codepoint=0x064A), min_size=1))
def test_arabic_letters_always_survive(text):
    assert clean_message(text) == text.strip()


# --- measure_message: exact page boundaries ----------------------------------------------------


@pytest.mark.parametrize(
    ("length", "pages"),
    [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4), (1071, 7), (1072, 8)],
)
def test_gsm7_page_boundaries(length, pages):
    info = measure_message("a" * length)
    assert (info.encoding, info.length, info.pages) == ("GSM-7", length, pages)


@pytest.mark.parametrize(
    ("length", "pages"), [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)]
)
def test_ucs2_page_boundaries(length, pages):
    info = measure_message("ب" * length)
    assert (info.encoding, info.length, info.pages) == ("UCS-2", length, pages)


def test_one_non_gsm_character_switches_everything_to_ucs2():
    assert measure_message("a" * 69 + "ب").pages == 1
    assert measure_message("a" * 70 + "é").encoding == "GSM-7"  # é is in GSM-7
    info = measure_message("a" * 70 + "…")
    assert (info.encoding, info.pages) == ("UCS-2", 2)


def test_extension_characters_count_two():
    assert measure_message("€" * 80).length == 160
    assert measure_message("€" * 80).pages == 1
    assert measure_message("€" * 80 + "a").pages == 2
    assert measure_message("a" * 159 + "{").pages == 2
    assert measure_message("a" * 158 + "{").pages == 1
    for char in "^{}\\[~]|€":
        assert char in GSM7_EXTENDED and char not in GSM7_BASIC
        assert measure_message(char).length == 2


def test_an_escape_pair_is_never_split_across_parts():
    # 152 septets then "[" (2 septets) does not fit in part one (153): it moves to part two.
    text = "a" * 152 + "[" + "a" * 152
    info = measure_message(text)
    assert info.length == 306
    assert info.pages == 3  # naive ceil(306 / 153) would say 2
    assert measure_message("a" * 151 + "[" + "a" * 153).pages == 2


def test_a_surrogate_pair_is_never_split_across_parts():
    # U+20000 (CJK extension B) is two UTF-16 units; after 66 units it moves to part two.
    text = "ب" * 66 + "\U00020000" + "ب" * 66
    info = measure_message(text)
    assert (info.encoding, info.length, info.pages) == ("UCS-2", 134, 3)
    assert measure_message("\U00020000" * 35).pages == 1


def test_chars_left_and_over_limit():
    assert measure_message("a" * 150).chars_left_in_page == 10
    assert measure_message("a" * 161).chars_left_in_page == 153 * 2 - 161
    assert measure_message("ب" * 60).chars_left_in_page == 10
    assert measure_message("").pages == 0
    assert DEFAULT_MAX_PAGES == 6  # v4.1: "up to 6 pages", ERR012
    assert measure_message("a" * 918).over_limit is False
    info = measure_message("a" * 919)
    assert info.over_limit and info.max_pages == DEFAULT_MAX_PAGES
    assert not measure_message("a" * 1071, max_pages=7).over_limit
    assert measure_message("a" * 1072, max_pages=7).over_limit


# --- trim_to_pages ------------------------------------------------------------------------------


def test_trim_leaves_short_text_alone():
    assert trim_to_pages("hello", 1) == "hello"


def test_trim_gsm_keeps_gsm_with_ascii_ellipsis():
    trimmed = trim_to_pages("word " * 100, 1)
    info = measure_message(trimmed)
    assert trimmed.endswith("...") and info.encoding == "GSM-7" and info.pages == 1
    assert info.length >= 155  # used the page, not a fraction of it


def test_trim_arabic_uses_unicode_ellipsis():
    trimmed = trim_to_pages(ARABIC * 10, 2)
    info = measure_message(trimmed)
    assert trimmed.endswith("…") and info.pages == 2 and info.length >= 130


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=0, max_size=800), st.integers(min_value=1, max_value=4))
def test_trim_always_fits(text, pages):
    assert measure_message(trim_to_pages(text, pages)).pages <= pages


def test_trim_rejects_zero_pages():
    with pytest.raises(ValueError, match="pages must be at least 1"):
        trim_to_pages("x", 0)


def test_ascii_fast_path_drops_exactly_what_the_per_character_rule_drops():
    # clean_message takes a regex short cut for ASCII text; it must agree with _keep() everywhere.
    from airflow_provider_kwtsms.text import message

    for code in range(128):
        char = chr(code)
        # A carriage return becomes a newline before anything is dropped.
        kept = "\n" if char == "\r" else char if message._keep(char) else ""
        expected = f"a{kept}b"
        assert message.clean_message(f"a{char}b") == expected.strip(), repr(char)


# --- removal is reported and leaves no double space (issue 15), U+FFFC (issue 16) -------------


def test_an_emoji_between_words_leaves_one_space_and_is_counted():
    from airflow_provider_kwtsms.text.message import clean_text

    assert clean_text("Hi 👋 there") == clean_text("Hi 👋 there")  # deterministic
    cleaned = clean_text("Hi 👋 there, rate us ⭐ today")
    assert cleaned.text == "Hi there, rate us today" and cleaned.removed == 2
    assert clean_text("two  spaces stay").text == "two  spaces stay"  # only removal gaps close


def test_the_object_replacement_character_is_stripped():
    assert clean_message("see\ufffc attached") == "see attached"


def test_a_plan_says_what_was_removed():
    from airflow_provider_kwtsms.send.planning import PlanOptions, build_plan

    plan = build_plan("96598765432", "Sale today 🎉🎉", PlanOptions(sender="KWT-SMS", test=True))
    assert plan.message == "Sale today" and plan.removed_characters == 2
    assert "2 emoji, invisible or control character(s) removed" in plan.describe()
