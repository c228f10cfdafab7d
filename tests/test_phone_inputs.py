"""phone.py: inputs of every type and shape, each accounted for exactly once; splitting is linear."""

from __future__ import annotations

import pickle
import re
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_kwtsms.errors import KwtSMSInputError
from airflow_provider_kwtsms.phone import prepare_recipients, split_recipients, validate_phone

KW = "96598765432"
KW2 = "96598765433"


def _reasons(raws) -> dict[str, str]:
    return {bad.input: bad.reason for bad in prepare_recipients(raws).invalid}


# --- nested lists and tuples are flattened ----------------------------------------------------------


def test_a_tuple_inside_the_list_gives_its_numbers_and_no_phantom_entry():
    # It used to be read as the text "('96598765432',)", split on its comma: a phantom ")" entry.
    r = prepare_recipients([("96598765432",)])
    assert (r.valid, r.invalid, r.duplicates) == ([KW], [], [])
    assert split_recipients([("96598765432",)]) == [KW]


def test_nested_lists_and_tuples_are_flattened_at_any_depth_in_order():
    raws = [KW, [KW2, ("+965 9876 5434", [["96598765432"]])], (), [[]], {"96598765435"}]
    assert split_recipients(raws) == [KW, KW2, "+965 9876 5434", KW, "96598765435"]
    r = prepare_recipients(raws)
    assert r.valid == [KW, KW2, "96598765434", "96598765435"]
    assert [d.input for d in r.duplicates] == [KW]
    deep: object = KW
    for _ in range(50_000):  # deeper than the recursion limit
        deep = [deep]
    assert prepare_recipients(deep).valid == [KW]


def test_strings_inside_nested_lists_are_split_like_top_level_ones():
    assert split_recipients([[f"{KW}, {KW2}"], (b"96598765434;96598765435",)]) == [
        KW,
        KW2,
        "96598765434",
        "96598765435",
    ]


def test_a_list_that_holds_itself_is_one_invalid_entry():
    loop: list = [KW]
    loop.append(loop)
    r = prepare_recipients(loop)
    assert r.valid == [KW] and len(r.invalid) == 1
    assert "holds itself" in r.invalid[0].reason and r.total_inputs == 2


# --- numbers of any size and kind -----------------------------------------------------------------


def test_an_int_too_big_to_write_out_is_invalid_not_a_crash():
    # It raised a bare ValueError (int -> str conversion limit), from prepare and validate alike.
    for raws in ([10**5000], 10**5000, [KW, -(10**5000)]):
        r = prepare_recipients(raws)
        assert len(r.invalid) == 1
        assert "too long to be a phone number" in r.invalid[0].reason
        assert "5001 digits" in r.invalid[0].input
    check = validate_phone(10**5000)
    assert not check.valid and "too long" in check.error
    with pytest.raises(KwtSMSInputError, match="default_country"):
        validate_phone(KW, default_country=10**5000)


def test_big_ints_that_can_be_written_out_are_judged_by_their_digits():
    r = prepare_recipients([10**40])
    assert r.invalid[0].input == "1" + "0" * 40 and "41 digits" in r.invalid[0].reason


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (float("nan"), "is not a number"),
        (float("inf"), "too big"),
        (float("-inf"), "too big"),
        (96598765432.5, "not a whole number"),
        (Decimal("96598765432.5"), "not a whole number"),
        (Decimal("NaN"), "is not a number"),
        (Decimal("1E+999999999"), "too big"),
        (Fraction(1, 3), "not a whole number"),
        (complex(96598765432, 1), "not a whole number"),
    ],
)
def test_numbers_that_are_not_whole_are_invalid_whatever_their_digits(raw, words):
    # 96598765432.5 used to be read as the digits 965987654325.
    r = prepare_recipients([raw])
    assert r.valid == [] and len(r.invalid) == 1
    assert words in r.invalid[0].reason and "give the phone number as digits" in r.invalid[0].reason
    check = validate_phone(raw)
    assert not check.valid and words in check.error


@pytest.mark.parametrize(
    "raw", [96598765432.0, Decimal("96598765432.00"), Fraction(96598765432), 96598765432]
)
def test_whole_numbers_of_any_type_give_their_digits(raw):
    assert prepare_recipients([raw]).valid == [KW]
    assert validate_phone(raw).number == KW


# --- other objects ------------------------------------------------------------------------------


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text")


class _Phone:
    def __str__(self) -> str:
        return "+965 9876, 5432\n"  # its own text, with a comma and a newline: still one entry


def test_objects_are_one_entry_each_with_a_reason_naming_them():
    raws = [object(), _Unprintable(), {"mobile": KW}, _Phone(), True]
    r = prepare_recipients(raws)
    assert r.valid == [KW]
    reasons = [bad.reason for bad in r.invalid]
    assert "object of type object is not a phone number" in reasons[0]
    assert "could not be read as text" in reasons[1] and "RuntimeError" in reasons[1]
    assert "dict (a mapping) is not a phone number" in reasons[2]
    assert "has no digits" in reasons[3]
    assert r.total_inputs == len(raws) == len(split_recipients(raws))


def test_validate_phone_refuses_a_list_as_one_number():
    check = validate_phone([KW])
    assert not check.valid and "use prepare_recipients" in check.error
    assert validate_phone(b"+965 98765432").number == KW


def test_a_refused_entry_survives_pickling():
    entry = split_recipients([float("nan")])[0]
    again = pickle.loads(pickle.dumps(entry))
    assert again == "nan" and not validate_phone(again).valid


# --- every input accounted for exactly once ----------------------------------------------------

leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(4400, 5000).map(lambda n: 10**n),  # beyond int -> str's limit
    st.floats(),
    st.decimals(),
    st.fractions(),
    st.text(st.sampled_from(list("0123456789+ -,;\n\r@a٩")), max_size=20),
    st.text(max_size=10),
    st.binary(max_size=12),
    st.just(object()),
    st.just(_Unprintable()),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.sampled_from([KW, KW2, "+966559123456", 96598765432]),
)
nested = st.recursive(
    leaves, lambda inner: st.lists(inner, max_size=5) | st.tuples(inner, inner), max_leaves=30
)


def _expected_entries(value, top: bool = True) -> int:
    """How many entries a value gives: a text its split parts (an empty nested text still one)."""
    if isinstance(value, (list, tuple)):
        return sum(_expected_entries(item, False) for item in value)
    if value is None:
        return 0 if top else 1
    if isinstance(value, (str, bytes)):
        parts = len(split_recipients(value))
        return parts if top else max(parts, 1)
    return 1


@settings(max_examples=400, deadline=None)
@given(st.one_of(nested, st.lists(nested, max_size=8)), st.sampled_from([None, "KW"]))
def test_every_input_of_any_type_and_depth_is_accounted_for_exactly_once(raws, home):
    r = prepare_recipients(raws, default_country=home)
    items = split_recipients(raws)
    assert r.total_inputs == len(items) == _expected_entries(raws)
    assert len(set(r.valid)) == len(r.valid)
    for bad in r.invalid:
        assert type(bad.input) is str and bad.reason
    assert [bad.input for bad in r.invalid] == [x for x in items if not validate_phone(x, home).valid]
    for dup in r.duplicates:
        assert dup.number in r.valid


# --- splitting a string is linear -----------------------------------------------------------------

# The separator pattern before the fix: the same splits, but quadratic on long runs of white space.
REFERENCE_SPLIT = re.compile(r"\s*[,;]\s*|\s*[\r\n]\s*")


@settings(max_examples=1000, deadline=None)
@given(st.text(st.sampled_from(list(" \t\n\r,;a1\x85\xa0\u2028\x0b")), max_size=25))
def test_splitting_gives_the_same_entries_as_the_reference_pattern(text):
    from airflow_provider_kwtsms.phone.entries import SPLIT

    assert SPLIT.split(text) == REFERENCE_SPLIT.split(text)


MEGABYTE = 1 << 20


@pytest.mark.timeout(20)  # the old pattern took 9 s on 20 KB of this: hours on a megabyte
@pytest.mark.parametrize(
    "text",
    [
        "1,a" + " " * MEGABYTE + "b",
        "1,a" + " \t" * (MEGABYTE // 2) + "b\n",
        ("1 " * (MEGABYTE // 2)) + ",",
        "a\n" + ("\u2028 " * (MEGABYTE // 2)) + "b",
    ],
    ids=["spaces", "tabs", "spaced-digits", "line-separators"],
)
def test_splitting_a_megabyte_of_white_space_finishes(text):
    entries = split_recipients(text)
    assert 1 <= len(entries) <= 3
    assert prepare_recipients(text).total_inputs == len(entries)
