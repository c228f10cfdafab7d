"""phone.py: formats, every rejection reason, countries, default_country, accounting, agreement."""

from __future__ import annotations

import pickle
import random
import subprocess
import sys

import phonenumbers as pn
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_kwtsms.errors import KwtSMSInputError
from airflow_provider_kwtsms.phone.pattern_depth import deciding_depth
from airflow_provider_kwtsms.phone.recipients import (
    DuplicateInput,
    InvalidInput,
    PhoneCheck,
    normalize_phone,
    prepare_recipients,
    split_recipients,
    validate_phone,
)

KW = "96598765432"


def ok(raw, **kw) -> str:
    check = validate_phone(raw, **kw)
    assert check.valid, check.error
    assert check.error is None
    return check.number


def bad(raw, *words, **kw) -> str:
    check = validate_phone(raw, **kw)
    assert not check.valid, f"{raw!r} was accepted as {check.number}"
    for word in words:
        assert word in check.error, check.error
    return check.error


# --- formats ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "96598765432",
        "+96598765432",
        "0096598765432",
        "+965 9876 5432",
        "+965-9876-5432",
        "965.9876.5432",
        "(965) 98765432",
        "(+965) 9876 5432",
        "  +965 98765432\t",
        "\n96598765432 ",
        "٩٦٥٩٨٧٦٥٤٣٢",
        "+٩٦٥ ٩٨٧٦ ٥٤٣٢",
        "۹۶۵۹۸۷۶۵۴۳۲",
        "００９６５９８７６５４３２",
        "+965 0 9876 5432",
        96598765432,
        96598765432.0,
        "tel:+965-98765432",
    ],
)
def test_accepted_formats_give_digits_only_with_country_code(raw):
    assert ok(raw) == KW
    assert normalize_phone(raw) == KW


def test_trunk_zero_after_country_code_is_removed():
    assert ok("9660559123456") == "966559123456"
    assert ok("+20 010 1234 5678") == "201012345678"
    assert ok("+971 050 123 4567") == "971501234567"


def test_phonecheck_is_a_frozen_dataclass():
    check = validate_phone("+96598765432")
    assert check == PhoneCheck(True, KW, None)
    with pytest.raises(AttributeError):
        check.valid = False  # type: ignore[misc]


# --- rejection reasons --------------------------------------------------------------------------


def test_email_address():
    assert bad("ahmad@example.com", "'ahmad@example.com'", "e-mail")


@pytest.mark.parametrize("raw", ["abc", "---", "+", "()", "n/a"])
def test_no_digits(raw):
    bad(raw, repr(raw.strip()), "no digits")


@pytest.mark.parametrize("raw", ["", "   ", None])
def test_empty(raw):
    bad(raw, "empty entry")


def test_too_short_and_too_long():
    bad("12345", "'12345'", "too short", "5 digits")
    bad("+96598765432123456", "too long", "17 digits")


def test_wrong_length_names_the_country():
    bad("+965 9876 543", "wrong length", "Kuwait", "KW", "+965")
    bad("+966 55 123 45", "wrong length", "Saudi Arabia")


def test_impossible_range_names_the_country():
    bad("+974 1234 5678", "not in a number range", "Qatar (QA, +974)")


def test_landlines_are_rejected():
    bad("+965 2234 5678", "landline", "Kuwait", "cannot receive SMS")
    bad("+44 20 7946 0958", "landline", "United Kingdom")
    bad("+966 11 234 5678", "landline", "Saudi Arabia")


def test_other_non_mobile_types_are_rejected_by_name():
    bad("+800 1234 5678", "toll-free")
    free = pn.national_significant_number(pn.example_number_for_type("GB", pn.PhoneNumberType.TOLL_FREE))
    bad("+44" + free, "toll-free", "United Kingdom")


def test_unknown_country_code():
    bad("+999 1234 5678", "no known country calling code", "country code")


def test_local_number_without_default_country_gets_a_hint():
    bad("98765432", "'98765432'", "default_country")


def test_messages_name_the_input_as_given():
    error = bad("  +965 2234-5678 ", "'+965 2234-5678'")
    assert "  " not in error.split(":")[0]


# --- countries ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "number"),
    [
        ("+965 5000 1234", "96550001234"),
        ("+965 6600 1234", "96566001234"),
        ("+966 55 912 3456", "966559123456"),
        ("+971 50 123 4567", "971501234567"),
        ("+974 3312 3456", "97433123456"),
        ("+973 3600 1234", "97336001234"),
        ("+968 9212 3456", "96892123456"),
        ("+20 100 123 4567", "201001234567"),
        ("+91 98765 43210", "919876543210"),
        ("+44 7700 900123", "447700900123"),
        ("+1 (201) 555-0123", "12015550123"),
        ("+1 416 555 0123", "14165550123"),
    ],
)
def test_mobiles_of_many_countries(raw, number):
    assert ok(raw) == number


@pytest.mark.parametrize("region", ["KW", "SA", "AE", "QA", "BH", "OM", "EG", "IN", "GB"])
def test_example_mobile_and_landline_of_each_country(region):
    mobile = pn.example_number_for_type(region, pn.PhoneNumberType.MOBILE)
    fixed = pn.example_number_for_type(region, pn.PhoneNumberType.FIXED_LINE)
    assert (
        ok(pn.format_number(mobile, pn.PhoneNumberFormat.INTERNATIONAL))
        == pn.format_number(mobile, pn.PhoneNumberFormat.E164)[1:]
    )
    if pn.number_type(fixed) == pn.PhoneNumberType.FIXED_LINE:  # India's example is fixed-or-mobile
        bad(pn.format_number(fixed, pn.PhoneNumberFormat.INTERNATIONAL), "landline")


def test_us_numbers_are_fixed_line_or_mobile_and_accepted():
    number = pn.example_number_for_type("US", pn.PhoneNumberType.FIXED_LINE)
    assert pn.number_type(number) == pn.PhoneNumberType.FIXED_LINE_OR_MOBILE
    assert ok("+" + str(number.country_code) + str(number.national_number))


# --- strict -------------------------------------------------------------------------------------


def _unclassified_number(cc: str, region: str) -> str:
    """A number of the right length in the country's plan that the metadata cannot classify."""
    mobile = pn.national_significant_number(pn.example_number_for_type(region, pn.PhoneNumberType.MOBILE))
    for head in range(10, 100):
        raw = f"+{cc}{mobile[0]}{head}{'0' * (len(mobile) - 3)}"
        num = pn.parse(raw)
        if pn.is_possible_number(num) and not pn.is_valid_number(num) and ok(raw):
            return raw
    raise AssertionError("no unclassified number")


def test_strict_rejects_ranges_the_metadata_does_not_know():
    raw = _unclassified_number("966", "SA")
    assert ok(raw) == raw[1:]
    bad(raw, "strict=True", "Saudi Arabia", strict=True)
    assert ok("+96598765432", strict=True) == KW
    bad("+96522345678", "landline", strict=True)


# --- Kuwait: the gateway's rule (v4.1: 965 + 8 digits starting with 4, 5, 6 or 9) --------------


def _kuwait_numbers_the_metadata_does_not_know() -> list[str]:
    """One 965 + 8-digit number for each two-digit start 40-69 and 90-99 that libphonenumber does
    not classify as a mobile."""
    out = []
    for head in [*range(40, 70), *range(90, 100)]:
        raw = f"+965{head}123456"
        if pn.number_type(pn.parse(raw)) not in ACCEPT:
            out.append(raw)
    return out


@pytest.mark.parametrize("strict", [False, True])
def test_kuwait_4_5_6_9_numbers_are_mobiles_even_where_the_metadata_does_not_know_them(strict):
    unknown = _kuwait_numbers_the_metadata_does_not_know()
    assert len(unknown) > 5  # 40xx, 42xx ... : libphonenumber knows 41xx only
    for raw in unknown:
        assert ok(raw, strict=strict) == raw[1:]
    r = prepare_recipients(unknown * 2, strict=strict)  # the bulk engine, hot tables included
    assert r.valid == [raw[1:] for raw in unknown] and r.invalid == []


# The landline block: 965 2xxxxxxx. libphonenumber classifies some as fixed lines and leaves others
# (20012345 to 211xxxxx among them) unclassified, which the non-strict path used to accept.
KUWAIT_LANDLINES = ["+96520012345", "+96521112345", "+96522345678", "+96524817066", "+96529999999"]


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("raw", KUWAIT_LANDLINES)
def test_kuwait_landlines_are_invalid_with_the_gateway_reason(raw, strict):
    bad(raw, "a Kuwaiti landline, not a mobile number", strict=strict)
    bad(raw[4:], "a Kuwaiti landline, not a mobile number", default_country="KW", strict=strict)
    for home in (None, "KW"):
        r = prepare_recipients([raw, raw[1:], "00" + raw[1:]], default_country=home, strict=strict)
        assert r.valid == [] and len(r.invalid) == 3
        assert all("a Kuwaiti landline, not a mobile number" in i.reason for i in r.invalid)


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("raw", ["+965 9876 543", "+965 9876 54321", "+965 1800 555", "9659876543210"])
def test_kuwait_wrong_length_says_8_digits_after_965(raw, strict):
    error = bad(raw, "8 digits after 965", strict=strict)
    assert "7 or 8" not in error
    r = prepare_recipients([raw], strict=strict)
    assert r.invalid[0].reason == error


@pytest.mark.parametrize("raw", ["+965 1234 5678", "+965 3123 4567", "+965 7123 4567", "+965 8123 4567"])
def test_kuwait_other_first_digits_are_not_mobiles(raw):
    bad(raw, "not a Kuwaiti mobile number", "4, 5, 6 or 9")


def test_kuwait_trunk_zero_after_the_country_code_is_dropped():
    assert ok("+965 0 9876 5432") == KW
    assert prepare_recipients(["965098765432", "96598765432"]).valid == [KW]
    bad("+965 0 2234 5678", "8 digits after 965")


# --- default_country ----------------------------------------------------------------------------


@pytest.mark.parametrize("home", ["KW", "kw", "965", "+965", "00965", 965])
def test_default_country_makes_local_numbers_international(home):
    assert ok("98765432", default_country=home) == KW
    assert ok("9876 5432", default_country=home) == KW
    assert ok("+96598765432", default_country=home) == KW
    assert ok("966559123456", default_country=home) == "966559123456"  # already international
    assert normalize_phone("98765432", default_country=home) == KW


def test_default_country_with_trunk_prefix():
    assert ok("0559123456", default_country="SA") == "966559123456"
    assert ok("07700 900123", default_country="GB") == "447700900123"
    assert ok("(201) 555-0123", default_country="US") == "12015550123"


def test_default_country_local_errors_name_the_country():
    bad("2234 5678", "landline", "Kuwait", default_country="KW")
    bad("9876543", "Kuwait", default_country="KW")


@pytest.mark.parametrize("home", ["XX", "Kuwait", "999", "+800", "K1"])
def test_unknown_default_country_is_a_clear_error(home):
    with pytest.raises(KwtSMSInputError, match="default_country"):
        validate_phone("98765432", default_country=home)
    with pytest.raises(KwtSMSInputError, match="default_country"):
        prepare_recipients([], default_country=home)


# --- split_recipients and prepare_recipients -----------------------------------------------------


def test_split_recipients():
    assert split_recipients("a, b;c\nd\r\ne,") == ["a", "b", "c", "d", "e"]
    assert split_recipients(" a,,b ") == ["a", "", "b"]
    assert split_recipients(["a", "b, c", 96598765432, None, ""]) == ["a", "b", "c", "96598765432", "", ""]
    assert split_recipients(x for x in ["a", "b"]) == ["a", "b"]
    assert split_recipients(None) == []
    assert split_recipients("") == []
    assert split_recipients(96598765432) == ["96598765432"]


def test_prepare_recipients_accounts_for_every_input():
    raws = [
        "+965 9876 5432",
        "96598765432",
        "٩٦٥٩٨٧٦٥٤٣٢",
        "+966 55 912 3456",
        "ahmad@x.com",
        "+965 2234 5678",
        "",
        "12",
        "+999 1234 5678",
        "+966559123456",
        97433123456,
    ]
    r = prepare_recipients(raws)
    assert r.valid == [KW, "966559123456", "97433123456"]
    assert r.duplicates == [
        DuplicateInput("96598765432", KW),
        DuplicateInput("٩٦٥٩٨٧٦٥٤٣٢", KW),
        DuplicateInput("+966559123456", "966559123456"),
    ]
    assert [i.input for i in r.invalid] == ["ahmad@x.com", "+965 2234 5678", "", "12", "+999 1234 5678"]
    assert "landline" in r.invalid[1].reason and "empty" in r.invalid[2].reason
    assert r.total_inputs == len(raws)


def test_prepare_recipients_from_a_string_and_with_default_country():
    r = prepare_recipients("98765432, 9876 5433;\n+966559123456\n98765432\n", default_country="KW")
    assert r.valid == [KW, "96598765433", "966559123456"]
    assert [d.input for d in r.duplicates] == ["98765432"]
    assert r.invalid == []


def test_prepare_recipients_big_list_is_exact():
    rng = random.Random(7)
    raws = [f"+965 {rng.choice('569')}{rng.randint(0, 9_999_999):07d}" for _ in range(12_000)]
    raws += raws[:500] + ["x"] * 3
    r = prepare_recipients(raws)
    assert r.total_inputs == len(raws) and len(r.invalid) >= 3
    for raw in rng.sample(raws, 300):
        check = validate_phone(raw)
        assert (check.number in r.valid) == check.valid


def test_importing_phone_does_not_import_phonenumbers():
    code = (
        "import sys, airflow_provider_kwtsms.phone as p; assert 'phonenumbers' not in sys.modules;"
        "p.validate_phone('+96598765432'); assert 'phonenumbers' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- properties ---------------------------------------------------------------------------------

PHONE_CHARS = st.sampled_from(list("0123456789+-. ()٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹@,;\nabc\t"))
phone_like = st.text(PHONE_CHARS, max_size=30)
any_input = st.one_of(phone_like, st.text(max_size=40), st.integers(min_value=0, max_value=10**16))


@settings(max_examples=300, deadline=None)
@given(any_input, st.sampled_from([None, "KW", "SA", "US", "GB"]), st.booleans())
def test_validate_never_raises_and_is_consistent(raw, home, strict):
    check = validate_phone(raw, default_country=home, strict=strict)
    assert check.valid == (check.error is None)
    assert check.number.isdigit() or check.number == ""
    if check.valid:
        assert 7 <= len(check.number) <= 15
        assert validate_phone("+" + check.number, strict=strict).valid  # stable once normalised


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.lists(any_input, max_size=30), phone_like), st.sampled_from([None, "KW"]))
def test_every_input_accounted_for_exactly_once(raws, home):
    items = split_recipients(raws)
    r = prepare_recipients(raws, default_country=home)
    assert r.total_inputs == len(items)
    assert len(set(r.valid)) == len(r.valid)
    assert [i.input for i in r.invalid] == [x for x in items if not validate_phone(x, home).valid]
    for dup in r.duplicates:
        assert dup.number in r.valid


# --- agreement with phonenumbers ----------------------------------------------------------------

ACCEPT = {pn.PhoneNumberType.MOBILE, pn.PhoneNumberType.FIXED_LINE_OR_MOBILE}


def _agreement_inputs() -> list[str]:
    out = []
    for region in sorted(pn.SUPPORTED_REGIONS):
        for kind in (
            pn.PhoneNumberType.MOBILE,
            pn.PhoneNumberType.FIXED_LINE,
            pn.PhoneNumberType.TOLL_FREE,
            pn.PhoneNumberType.VOIP,
            pn.PhoneNumberType.PAGER,
            pn.PhoneNumberType.PREMIUM_RATE,
        ):
            example = pn.example_number_for_type(region, kind)
            if example is not None:
                out.append(pn.format_number(example, pn.PhoneNumberFormat.E164))
    rng = random.Random(3)
    codes = sorted(pn.COUNTRY_CODE_TO_REGION_CODE)
    for _ in range(3000):
        cc = rng.choice(codes)
        out.append(f"+{cc}" + "".join(rng.choice("0123456789") for _ in range(rng.randint(3, 12))))
    for base in list(out[:1500]):  # near misses of real numbers: the last digits changed
        out.append(base[:-3] + f"{rng.randint(0, 999):03d}")
    return out


def test_agreement_with_phonenumbers():
    disagreements = []
    inputs = _agreement_inputs()
    assert len(inputs) > 5000
    for raw in inputs:
        check = validate_phone(raw)
        digits = check.number or raw[1:]
        if digits.startswith("965"):  # Kuwait follows the gateway's rule: the tests above
            national = digits[3:]
            assert check.valid == (len(national) == 8 and national[0] in "4569"), (raw, check)
            continue
        try:
            num = pn.parse("+" + digits)
        except pn.NumberParseException:
            if check.valid:
                disagreements.append((raw, "unparsable"))
            continue
        valid = pn.is_valid_number(num)
        kind = pn.number_type(num) if valid else None
        if valid and kind in ACCEPT and not check.valid:
            disagreements.append((raw, "mobile rejected", check.error))
        if check.valid and (kind == pn.PhoneNumberType.FIXED_LINE or not pn.is_possible_number(num)):
            disagreements.append((raw, "accepted", kind))
        if check.valid and valid and kind not in ACCEPT:
            disagreements.append((raw, "accepted non-mobile", kind))
        if check.valid and validate_phone(raw, strict=True).valid != (valid and kind in ACCEPT):
            disagreements.append((raw, "strict differs"))
    assert disagreements == []


# --- bulk path: the same verdicts as one by one ---------------------------------------------------


def _bulk_inputs() -> list:
    """Mixed inputs for every calling code, many sharing their first digits (as real lists do: the
    bulk path keeps verdict tables by leading digits), in every format, with trunk zeros,
    non-Latin digits, garbage and repeats."""
    rng = random.Random(11)
    codes = sorted(pn.COUNTRY_CODE_TO_REGION_CODE)
    out: list = []
    for region in sorted(pn.SUPPORTED_REGIONS):
        for kind in (pn.PhoneNumberType.MOBILE, pn.PhoneNumberType.FIXED_LINE):
            example = pn.example_number_for_type(region, kind)
            if example is None:
                continue
            cc, nsn = str(example.country_code), pn.national_significant_number(example)
            for _ in range(4):  # the example's first digits, the rest random: shared heads
                keep = rng.randint(1, len(nsn))
                tail = "".join(rng.choice("0123456789") for _ in range(len(nsn) - keep))
                out.append(rng.choice(["+", "00", "", "+"]) + cc + nsn[:keep] + tail)
    for _ in range(2500):
        cc = str(rng.choice(codes))
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(2, 13)))
        out.append(rng.choice(["+", "00", "", "0"]) + cc + rng.choice(["", "", "0", "00", "1", "8"]) + digits)
    arabic, persian, bengali = (
        str.maketrans("0123456789", digits) for digits in ("٠١٢٣٤٥٦٧٨٩", "۰۱۲۳۴۵۶۷۸۹", "০১২৩৪৫৬৭৮৯")
    )
    for i, raw in enumerate(list(out[::7])):
        out.append(
            [
                raw.translate(arabic),
                raw.translate(persian),
                f" {raw[:4]} {raw[4:]}-",
                raw.translate(bengali),
                f"({raw[:3]}) {raw[3:]}",
            ][i % 5]
        )
    out += ["", "  ", "abc", "+", "x@y.z", "12", "98765432", "9876 5432", "0559123456", 96598765432, None]
    out += rng.sample(out, 400)  # repeats, the same text
    return out


def _one_by_one(raws, home, strict):
    valid, seen, duplicates, invalid = [], set(), [], []
    for raw in split_recipients(raws):
        check = validate_phone(raw, home, strict)
        if not check.valid:
            invalid.append(InvalidInput(raw, check.error))
        elif check.number in seen:
            duplicates.append(DuplicateInput(raw, check.number))
        else:
            seen.add(check.number)
            valid.append(check.number)
    return valid, invalid, duplicates


@pytest.mark.parametrize(("home", "strict"), [(None, False), (None, True), ("KW", False), ("SA", True)])
def test_bulk_verdicts_equal_one_by_one(home, strict):
    raws = _bulk_inputs()
    assert len(raws) > 5000
    r = prepare_recipients(raws, default_country=home, strict=strict)
    valid, invalid, duplicates = _one_by_one(raws, home, strict)
    assert r.valid == valid
    assert r.invalid == invalid
    assert r.duplicates == duplicates
    r_again = prepare_recipients(raws, default_country=home, strict=strict)  # with the tables filled
    assert (r_again.valid, r_again.invalid, r_again.duplicates) == (valid, invalid, duplicates)


def test_bulk_results_are_frozen_dataclasses_like_constructed_ones():
    r = prepare_recipients(["+96598765432", "96598765432", "abc"])
    dup, bad = r.duplicates[0], r.invalid[0]
    assert dup == DuplicateInput("96598765432", KW) and hash(dup) == hash(DuplicateInput("96598765432", KW))
    assert bad == InvalidInput("abc", bad.reason) and "no digits" in bad.reason
    assert repr(dup) == "DuplicateInput(input='96598765432', number='96598765432')"
    with pytest.raises(AttributeError):
        bad.reason = "x"  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(r)) == r


def test_leading_digits_depth_analysis():
    # Kuwait's general pattern: 7 digits starting 18, or 8 digits whose first two decide.
    assert deciding_depth([r"18\d{5}|(?:[2569]\d|41)\d{6}"], 8) == 2
    assert deciding_depth([r"18\d{5}|(?:[2569]\d|41)\d{6}"], 7) == 2
    assert deciding_depth([r"800\d{2,9}"], 9) == 3  # a variable tail is fixed once the length is
    assert deciding_depth([r"5[02-68]\d{7}", r"(?:[2-4679][2-8]\d|600[25])\d{5}"], 9) == 4
    assert deciding_depth([r"(?=9)\d{8}"], 8) == 8  # a look-ahead: every digit may decide
    assert deciding_depth([r"(?=\d{3}9)\d{8}"], 8) == 8
    assert deciding_depth([r"9\d{3}[2-9]\d{3}"], 8) == 5


def test_full_verdict_tables_keep_judging_exactly(monkeypatch):
    from airflow_provider_kwtsms.phone import engine as _phone_engine

    monkeypatch.setattr(_phone_engine, "_TABLE_CAP", 0)  # nothing more is kept: every miss judged afresh
    raws = _bulk_inputs()[::3]
    r = prepare_recipients(raws)
    assert (r.valid, r.invalid, r.duplicates) == _one_by_one(raws, None, False)
