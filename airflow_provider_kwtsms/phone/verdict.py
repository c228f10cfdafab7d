"""One key's verdict: is this number a mobile that can receive SMS, and if not, why.

One job: judging a single input reduced to its key (see ``_phone_input``) by libphonenumber's
metadata as compiled in ``_numbering``, with or without a default country, and writing the reason
of each rejection. The bulk engine (``_phone_engine``) reaches the same verdicts faster and falls
back to ``key_verdict`` for what it cannot tell.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import airflow_provider_kwtsms.phone.numbering as nb
from airflow_provider_kwtsms.phone.country_names import country_label

# E.164: at most 15 digits; libphonenumber's shortest mobile number (country code included) has 7.
MIN_DIGITS = 7
MAX_DIGITS = 15

ACCEPTED_TYPES = frozenset((nb.MOBILE, nb.FIXED_LINE_OR_MOBILE))
_TYPE_WORDS = {
    "PREMIUM_RATE": "premium-rate",
    "TOLL_FREE": "toll-free",
    "SHARED_COST": "shared-cost",
    "VOIP": "VoIP",
    "PERSONAL_NUMBER": "personal (follow-me)",
    "PAGER": "pager",
    "UAN": "universal access (UAN)",
    "VOICEMAIL": "voicemail",
}
# Kuwait, the gateway's own country, follows the gateway rather than libphonenumber: v4.1 and its
# validate answers say a Kuwaiti mobile is 965 + 8 digits starting with 4, 5, 6 or 9 (965 2...
# is the landline block, answered ER / ERR025). A 4/5/6/9 number the metadata does not know yet
# is accepted, strict or not: the prefix is the gateway's rule.
KUWAIT = "965"
KUWAIT_NATIONAL_LENGTH = 8
KUWAIT_MOBILE_FIRST_DIGITS = "4569"
KUWAIT_LANDLINE_FIRST_DIGIT = "2"
_KUWAIT_RULE = f"{KUWAIT} + {KUWAIT_NATIONAL_LENGTH} digits starting with 4, 5, 6 or 9"

LOCAL_HINT = (
    " If it is a local number, add its country code (e.g. 96598765432 for Kuwait) or set default_country."
)


@dataclass(frozen=True)
class Home:
    cc: str
    region: str
    max_national: int  # the longest national number of the country (trunk prefix not counted)


# --- judging ------------------------------------------------------------------------------------
# A verdict is (ok, number, reason tail): a message is the input as given, quoted, followed by the
# tail, so that one verdict serves every input with the same digits.

Verdict = tuple[bool, str, str | None]


@lru_cache(maxsize=4096)
def reason_tail(what: str, cc: str = "", region: str | None = None, n: int = 0, head: str = "") -> str:
    """The reason tail for one kind of rejection; cached, as bulk lists repeat them."""
    place = country_label(region, cc) if cc else ""
    code = nb.calling_code(cc) if cc else None
    if what == "short":
        return (
            f" is too short to be a phone number ({n} digit{'s' * (n != 1)}; "
            f"a number with its country code has at least {MIN_DIGITS})."
        )
    if what == "long":
        return (
            f" is too long to be a phone number ({n} digits; at most {MAX_DIGITS} with "
            "the country code): check for two numbers run together."
        )
    if what == "code":
        return (
            f" starts with no known country calling code ({head}...): give the number "
            "with its country code, e.g. 96598765432."
        )
    if what == "length" and code is not None:
        expected = " or ".join(str(x) for x in code.possible_lengths)
        return f" has the wrong length for {place}: {n} digits after +{cc}, expected {expected}."
    if what == "mobile-length" and code is not None:
        expected = " or ".join(str(x) for x in code.mobile_lengths)
        return (
            f" has the wrong length for a mobile number in {place}: {n} digits after "
            f"+{cc}, mobile numbers there have {expected}."
        )
    if what == "kw-length":
        return (
            f" has the wrong length for {country_label('KW', KUWAIT)}: {n} digits after {KUWAIT}; a "
            f"Kuwaiti mobile number has {KUWAIT_NATIONAL_LENGTH} digits after {KUWAIT}."
        )
    if what == "kw-landline":
        return (
            f" is a Kuwaiti landline, not a mobile number: it cannot receive SMS; give a mobile "
            f"number ({_KUWAIT_RULE})."
        )
    if what == "kw-range":
        return f" is not a Kuwaiti mobile number: a Kuwaiti mobile is {_KUWAIT_RULE}; check the digits."
    if what == "range":
        return f" is not in a number range used in {place}: check the digits."
    if what == "strict":
        return (
            f" fits the numbering plan of {place} but is not a known mobile range in "
            "libphonenumber's metadata (rejected because strict=True)."
        )
    if what == nb.FIXED_LINE:
        return f" is a landline (fixed line) in {place}: landlines cannot receive SMS; give a mobile number."
    return (
        f" is a {_TYPE_WORDS.get(what, what)} number in {place}, not a mobile: it cannot "
        "receive SMS; give a mobile number."
    )


def _judge(digits: str, strict: bool) -> Verdict:
    """The verdict on an international number given as digits (no + or 00)."""
    n = len(digits)
    if n < MIN_DIGITS:
        return False, digits, reason_tail("short", n=n)
    if n > MAX_DIGITS:
        return False, digits, reason_tail("long", n=n)
    cc = (nb.prefixes or nb.prefix_table()).get(digits[:3])
    code = (nb.codes.get(cc) or nb.calling_code(cc)) if cc else None
    if code is None:
        return False, digits, reason_tail("code", head=digits[:3])
    if cc == KUWAIT:
        return kuwait_verdict(digits)
    kind, region, national = code.classify(digits[len(cc) :])  # type: ignore[arg-type]
    if kind in ACCEPTED_TYPES:
        return True, cc + national, None  # type: ignore[operator]
    return _rejected(code, cc, kind, region, national, strict)  # type: ignore[arg-type]


def kuwait_verdict(digits: str) -> Verdict:
    """The gateway's rule for a number starting with 965 (see KUWAIT above), for both engines.

    A trunk 0 kept after the country code (965 0 98765432) is dropped when that leaves a mobile."""
    national = digits[len(KUWAIT) :]
    if national[:1] == "0":
        retry = national.lstrip("0")
        if len(retry) == KUWAIT_NATIONAL_LENGTH and retry[0] in KUWAIT_MOBILE_FIRST_DIGITS:
            return True, KUWAIT + retry, None
    n = len(national)
    if n != KUWAIT_NATIONAL_LENGTH:
        return False, digits, reason_tail("kw-length", n=n)
    if national[0] in KUWAIT_MOBILE_FIRST_DIGITS:
        return True, digits, None
    if national[0] == KUWAIT_LANDLINE_FIRST_DIGIT:
        return False, digits, reason_tail("kw-landline")
    return False, digits, reason_tail("kw-range")


def _rejected(
    code: nb.CallingCode, cc: str, kind: str, region: str | None, national: str, strict: bool
) -> Verdict:
    number = cc + national
    if kind != nb.UNKNOWN:
        return False, number, reason_tail(kind, cc, region)
    if national.startswith("0") and len(national) > 1:
        # A trunk 0 kept after the country code (+965 0 98765432): retry without it.
        retry = _judge(cc + national.lstrip("0"), strict)
        if retry[0]:
            return retry
    main = code.region_codes[0]
    n = len(national)
    if code.test_length(national) != nb.IS_POSSIBLE:
        return False, number, reason_tail("length", cc, main, n)
    if n not in code.mobile_lengths:
        # Possible for some service, never for a mobile: most often a local number read as
        # international (98765432 read as +98 765432 in Iran).
        return False, number, reason_tail("mobile-length", cc, main, n)
    if not code.matches_general(national):
        return False, number, reason_tail("range", cc, main)
    if strict:
        return False, number, reason_tail("strict", cc, main)
    return True, number, None


def _judge_input(digits: str, explicit: bool, home: Home | None, strict: bool) -> Verdict:
    """Chooses between the international and (with default_country) the local reading."""
    if explicit or home is None:
        verdict = _judge(digits.lstrip("0"), strict)
        if not verdict[0] and not explicit and verdict[2] is not None and len(digits) <= 10:
            return verdict[0], verdict[1], verdict[2] + LOCAL_HINT
        return verdict
    code = nb.calling_code(home.cc)
    assert code is not None
    national = code.national_number(digits) if digits.startswith("0") else digits
    local = _judge(home.cc + national, strict)
    if local[0] or digits.startswith("0"):
        return local
    international = _judge(digits, strict)
    if international[0]:
        return international
    return local if len(digits) <= home.max_national else international


# An entry that is empty or only white space: its message cannot quote it usefully.
EMPTY_MESSAGE = "empty entry: no phone number was given here (did a template value render empty?)."
EMPTY: Verdict = (False, "", "")
EMAIL: Verdict = (False, "", " is an e-mail address, not a phone number: give the mobile number instead.")
NO_DIGITS: Verdict = (
    False,
    "",
    " has no digits: give a mobile number with its country code, e.g. 96598765432.",
)


def key_verdict(key: str, home: Home | None, strict: bool) -> Verdict:
    """The verdict for an input reduced to its key (see key_of); a key without digits gives NO_DIGITS."""
    if "@" in key:
        return EMAIL
    explicit = key.startswith("+")
    digits = key.replace("+", "") if "+" in key else key
    if digits.startswith("00"):
        explicit = True
    if not digits.strip("0"):
        return NO_DIGITS
    return _judge_input(digits, explicit, home, strict)


def message(shown: str, tail: str) -> str:
    """The reason for an input shown as ``shown`` (stripped) whose verdict has this tail."""
    return repr(shown) + tail if shown else EMPTY_MESSAGE
