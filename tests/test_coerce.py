"""One reading per kind of setting: booleans, text, numbers, countries. Unknown values are errors."""

from __future__ import annotations

import pytest

from airflow_provider_kwtsms.coerce import as_bool, as_country, as_number, as_text
from airflow_provider_kwtsms.errors import KwtSMSInputError


@pytest.mark.parametrize("value", [True, 1, "true", "TRUE", " yes ", "on", "y", "t", "1"])
def test_true_in_every_form_people_write(value):
    assert as_bool(value, "test") is True


@pytest.mark.parametrize("value", [False, 0, "false", "No", "off", "n", "f", "0"])
def test_false_in_every_form_people_write(value):
    assert as_bool(value, "test") is False


@pytest.mark.parametrize("value", ["maybe", "", "tru", 2, None, 0.5, [], "yes please"])
def test_an_unknown_boolean_is_an_error_naming_it_never_a_guess(value):
    with pytest.raises(KwtSMSInputError, match=r"data\['test'\] is .*: write true or false"):
        as_bool(value, "data['test']")


@pytest.mark.parametrize(
    ("value", "code"),
    [("KW", "965"), ("kw", "965"), ("965", "965"), ("+965", "965"), ("00965", "965"), (965, "965")],
)
def test_a_country_as_iso_code_or_calling_code(value, code):
    assert as_country(value) == code


@pytest.mark.parametrize("value", [None, "", "  "])
def test_no_country_is_none(value):
    assert as_country(value) is None


@pytest.mark.parametrize("value", ["XX", "Kuwait", "9999", True, 3.5, [965]])
def test_a_bad_country_names_the_setting_and_the_value(value):
    with pytest.raises(KwtSMSInputError, match=r"extra 'default_country'"):
        as_country(value, "extra 'default_country'")


def test_text_and_numbers():
    assert as_text("  MY-APP ", "sender", "a sender ID") == "MY-APP"
    with pytest.raises(KwtSMSInputError, match="sender must be non-empty text"):
        as_text("  ", "sender", "a sender ID")
    with pytest.raises(KwtSMSInputError) as info:
        as_text(None, "API password", "from the account")
    assert "None" not in str(info.value).split("got")[1].replace("NoneType", "")  # no value shown
    assert as_number("1.5", "rate", minimum=0.01) == 1.5
    for bad in ("fast", "nan", "inf", True, -1, "1e400"):
        with pytest.raises(KwtSMSInputError, match="rate is"):
            as_number(bad, "rate", minimum=0.01, maximum=1000)
