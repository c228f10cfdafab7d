"""The bulk phone engine: a list of keys -> valid numbers, invalid inputs, duplicates, fast.

One job: judging a million keys at C-like speed, each distinct key once, and sorting every input
into one of three lists. It decides exactly as ``_phone_verdict.key_verdict`` does, through plans
built once per (calling code, length) and verdict tables keyed by the leading digits that decide
(see ``_pattern_depth``); anything unusual goes to ``key_verdict`` itself. ``phone.py`` turns the
lists into the public ``Recipients``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import airflow_provider_kwtsms.phone.numbering as nb
from airflow_provider_kwtsms.phone.pattern_depth import deciding_depth, is_plain, parse_pattern
from airflow_provider_kwtsms.phone.verdict import (
    ACCEPTED_TYPES,
    EMAIL,
    KUWAIT,
    LOCAL_HINT,
    MAX_DIGITS,
    MIN_DIGITS,
    NO_DIGITS,
    Home,
    key_verdict,
    kuwait_verdict,
    reason_tail,
)

# The lists sort_inputs gives: valid numbers, invalid inputs and their reason tails, duplicate
# inputs and the numbers they repeat.
Sorted = tuple[list[str], list[str], list[str], list[str], list[str]]

# --- bulk judging -------------------------------------------------------------------------------
# Each distinct key is judged once. Most take the hot path (_hot); the others a lean path (_lean)
# through a "plan" built once per (calling code, length): the regions' combined type patterns of
# that length and every outcome's reason already made. Anything else goes to key_verdict, which
# decides the same way, only slower.

# A plan: (calling-code length, national-prefix digit or None, national-prefix matcher or None,
# the regions in phonenumbers' order as (leading-digits matcher or None, combined type matcher or
# None, group name -> outcome), then for a number no region classifies: the tail whatever its
# digits or None, the general-pattern matchers that allow its length, the tail outside them and
# the tail inside them (None: accepted). An outcome is None (accepted), a reason tail, or (mobile
# matcher, landline tail) where the fixed-line and mobile patterns may overlap.
_Plan = tuple[int, Any, Any, tuple[tuple[Any, Any, dict[str, Any]], ...], Any, tuple[Any, ...], str, Any]
_plans: dict[bool, list[dict[str, _Plan | None]]] = {}
# The hot path, inlined in _sort_international, for calling codes whose national prefix is none,
# one digit or literal alternatives: strict -> first three digits -> per length (calling-code
# length, depth, verdict table, shared by the heads of one calling code). Every pattern that can
# decide such a number (types, general, leading digits) ends in "any digit" repeated at least
# (length - depth) times, so the verdict depends only on the first ``depth`` digits of the
# national number: the table maps those digits to the verdict (None: valid, the number being the
# digits; a reason tail; or _UNBUILT for the national-prefix and trunk-0 cases, which need
# _judge_key). Filled lazily, one _lean call per distinct head of digits, up to _TABLE_CAP entries
# (then misses are judged without being kept, so that memory stays bounded).
_Shape = tuple[int, int, dict[str, Any]]
_hot: dict[bool, dict[str, list[_Shape | None]]] = {False: {}, True: {}}
_MAX_DEPTH = 7  # tables fill lazily: at most one entry per distinct number seen
_TABLE_CAP = 200_000
_UNBUILT: Any = object()


def _plan(head: str, n: int, strict: bool) -> _Plan | None:
    """The plan for numbers of n digits (country code included) starting with ``head``, or None
    when no calling code starts them; registers the hot-path shape of the head too."""
    cc = (nb.prefixes or nb.prefix_table()).get(head)
    if cc is None or nb.calling_code(cc) is None:
        return None
    plan, shape = _code_plan(cc, n, strict)
    if shape is not None:
        _hot[strict].setdefault(head, [None] * (MAX_DIGITS + 1))[n] = shape
    return plan


@cache
def _code_plan(cc: str, n: int, strict: bool) -> tuple[_Plan, _Shape | None]:
    """The plan (and hot-path shape, whose table is shared by all heads) of calling code cc for
    numbers of n digits."""
    code = nb.calling_code(cc)
    assert code is not None
    size = n - len(cc)
    regions = []
    for region in code.regions:
        entry = region.classifier(size)
        combined, outcomes = None, {}
        if entry is not None:
            combined, names, mobile = entry
            for group, kind in names.items():
                tail = None if kind in ACCEPTED_TYPES else reason_tail(kind, cc, region.code)
                outcomes[group] = (mobile, tail) if kind == nb.FIXED_LINE and mobile is not None else tail
        regions.append((None if code.single else region.leading, combined, outcomes))
    # What _phone_verdict._rejected says of an unclassified number (not starting with 0) of this
    # length.
    main = code.region_codes[0]
    fixed_tail = None
    if code.test_length("1" * size) != nb.IS_POSSIBLE:
        fixed_tail = reason_tail("length", cc, main, size)
    elif size not in code.mobile_lengths:
        fixed_tail = reason_tail("mobile-length", cc, main, size)
    generals = tuple(r.general for r in code.regions if r.general_allows(size))
    trunk_digit, trunk_match = None, None
    literals: list[str] = []
    shape: _Shape | None = None
    prefix = code.prefix
    if prefix is not None:
        if len(prefix.pattern) == 1 and prefix.pattern.isdigit():
            trunk_digit = prefix.pattern
        else:
            trunk_match = prefix.match
            literals = prefix.pattern.split("|")
    # A national prefix made of literal alternatives ("0|180020" for +44) is matched by the first
    # digits only: as many as its longest alternative.
    prefix_width = max(map(len, literals)) if literals and all(x.isdigit() for x in literals) else None
    if trunk_match is None or prefix_width is not None:
        patterns = [
            desc.national_number_pattern
            for region in code.regions
            for desc in [region.meta.general_desc]
            + [getattr(region.meta, field) for field, _ in nb.TYPE_FIELDS]
            if nb.desc_allows(desc, size)
        ]  # the others decide nothing at this length
        depth = deciding_depth(patterns, size)
        if not code.single:  # region_code_for_number also reads the regions' leading digits
            for region in code.regions:
                if region.meta.leading_digits:
                    # Matched at the start: its width decides.
                    parsed = parse_pattern(region.meta.leading_digits)
                    plain = parsed is not None and is_plain(parsed)
                    depth = max(depth, parsed.getwidth()[1] if plain else size)
        depth = max(depth, prefix_width or 0)
        if cc == KUWAIT:
            depth = 1  # the gateway's rule (kuwait_verdict): the first digit and the length decide
        if depth <= _MAX_DEPTH:
            shape = (len(cc), depth, {})
    plan = (
        len(cc),
        trunk_digit,
        trunk_match,
        tuple(regions),
        fixed_tail,
        generals,
        reason_tail("range", cc, main),
        reason_tail("strict", cc, main) if strict else None,
    )
    return plan, shape


def _lean(digits: str, plans: list[dict[str, _Plan | None]], strict: bool) -> tuple[bool, str] | None:
    """_phone_verdict._judge(digits) for the common shapes: (True, number) or (False, reason
    tail); None when only _judge can tell. ``digits`` are 7 to 15 digits not starting with 0."""
    head = digits[:3]
    plan = plans[len(digits)].get(head, _UNBUILT)
    if plan is _UNBUILT:
        plan = plans[len(digits)][head] = _plan(head, len(digits), strict)
    if plan is None:
        return False, reason_tail("code", head=head)
    if head == KUWAIT:
        _, number, tail = kuwait_verdict(digits)
        return (True, number) if tail is None else (False, tail)
    cut, trunk_digit, trunk_match, regions, fixed_tail, generals, out_tail, in_tail = plan
    nsn = digits[cut:]
    if trunk_digit is not None and nsn[0] == trunk_digit:
        return _lean_trunk(digits, cut, plans, strict)
    if trunk_match is not None and trunk_match(nsn) is not None:
        return None
    for leading, combined, outcomes in regions:  # the region as region_code_for_number picks it
        if leading is not None:
            if leading(nsn) is None:
                continue
            found = combined(nsn) if combined is not None else None
        else:
            found = combined(nsn) if combined is not None else None
            if found is None:
                continue
        if found is None:
            break
        tail = outcomes[found.lastgroup]
        if tail is not None and tail.__class__ is tuple:
            tail = None if tail[0](nsn) is not None else tail[1]
        return (True, digits) if tail is None else (False, tail)
    # Classified by no region.
    if nsn[0] == "0":
        # A trunk 0 left after the country code (+965 0 98765432): _phone_verdict._rejected
        # retries without it.
        retry = digits[:cut] + nsn.lstrip("0")
        if len(retry) >= MIN_DIGITS:
            verdict = _lean(retry, plans, strict)
            if verdict is not None and verdict[0]:
                return verdict
        return None
    if fixed_tail is not None:
        return False, fixed_tail
    for general in generals:
        if general(nsn) is not None:
            return (True, digits) if in_tail is None else (False, in_tail)
    return False, out_tail


def _lean_trunk(
    digits: str, cut: int, plans: list[dict[str, _Plan | None]], strict: bool
) -> tuple[bool, str] | None:
    """_lean for a number whose national part starts with its country's one-digit national prefix
    (966 0 559123456): parse() strips the prefix when CallingCode.national_number would."""
    cc = digits[:cut]
    code = nb.codes[cc]
    assert code is not None  # _lean built a plan for cc, so its calling code is known and loaded
    nsn = digits[cut:]
    national = code.national_number(nsn)
    if national is nsn or national[:1] in ("0", nsn[0]) or len(cc) + len(national) < MIN_DIGITS:
        return None
    return _lean(cc + national, plans, strict)


def _judge_key(key: str, home: Home | None, strict: bool, tail_of: dict[str, str]) -> str | None:
    """key_verdict(key, home, strict) in bulk form: the number, or None with tail_of[key] set."""
    digits = key.lstrip("+0")  # "+" and "00" mean the same here
    # The lean path: digits only and (with default_country) given with + or 00.
    if digits.isdigit() and (home is None or key[0] == "+" or key[:2] == "00"):
        n = len(digits)
        if n < MIN_DIGITS:
            verdict: tuple[bool, str] | None = (False, reason_tail("short", n=n))
        elif n > MAX_DIGITS:
            verdict = (False, reason_tail("long", n=n))
        else:
            verdict = _lean(digits, _plans[strict], strict)
        if verdict is not None:
            if verdict[0]:
                return verdict[1]
            tail_of[key] = verdict[1] if home is not None else _with_hint(key, verdict[1])
            return None
    ok, number, tail = key_verdict(key, home, strict)
    if ok:
        return number
    tail_of[key] = tail  # type: ignore[assignment]
    return None


def _table_entry(digits: str, cut: int, plans: list[dict[str, _Plan | None]], strict: bool) -> Any:
    """The verdict that every number sharing this one's head gets (see _hot)."""
    _, trunk_digit, trunk_match = plans[len(digits)][digits[:3]][:3]  # type: ignore[index]
    first = digits[cut]
    if first == "0" or first == trunk_digit or (trunk_match is not None and trunk_match(digits[cut:])):
        return _UNBUILT  # a national prefix or trunk 0: the number sent may differ, see _lean
    verdict = _lean(digits, plans, strict)
    if verdict is None:
        return _UNBUILT
    return None if verdict[0] else verdict[1]


def _with_hint(key: str, tail: str) -> str:
    """The tail of a rejection without default_country, with _phone_verdict._judge_input's
    local-number hint."""
    digits = key.replace("+", "") if "+" in key else key
    if key[:1] != "+" and digits[:2] != "00" and len(digits) <= 10:
        return tail + LOCAL_HINT
    return tail


# --- sorting the inputs -------------------------------------------------------------------------


def sort_inputs(items: list[str], keys: list[str], home: Home | None, strict: bool) -> Sorted:
    """Every input into one of the three lists; each distinct key is judged once, when first met.
    With default_country a key's reading depends on how it is written ("+" or not): one memo entry
    per key. Without, _sort_international shares entries and takes the hot path."""
    if strict not in _plans:
        _plans[strict] = [{} for _ in range(MAX_DIGITS + 1)]
    if home is None:
        return _sort_international(items, keys, strict)
    number_of: dict[str, str] = {}  # key -> its number, or "" when invalid
    tail_of: dict[str, str] = {}  # key -> reason tail, for the invalid keys
    valid: list[str] = []
    seen: set[str] = set()
    dup_inputs: list[str] = []
    dup_numbers: list[str] = []
    bad_inputs: list[str] = []
    bad_keys: list[str] = []
    add, keep, repeat_input, repeat_number, refuse, refused_key = (
        seen.add,
        valid.append,
        dup_inputs.append,
        dup_numbers.append,
        bad_inputs.append,
        bad_keys.append,
    )
    number = number_of.get
    for raw, key in zip(items, keys, strict=True):
        found = number(key)
        if found is None:
            found = number_of[key] = _judge_key(key, home, strict, tail_of) or ""
            if not found:
                refuse(raw)
                refused_key(key)
            elif found in seen:  # given before by another key (another format)
                repeat_input(raw)
                repeat_number(found)
            else:
                add(found)
                keep(found)
        elif not found:
            refuse(raw)
            refused_key(key)
        else:  # a key met before: its number is in valid already
            repeat_input(raw)
            repeat_number(found)
    tails = list(map(tail_of.__getitem__, bad_keys))
    return valid, bad_inputs, tails, dup_inputs, dup_numbers


def _sort_international(items: list[str], keys: list[str], strict: bool) -> Sorted:
    """sort_inputs without default_country. Then a key's verdict depends on its digits only, whether
    written with "+", "00" or neither, except for the local-number hint of a rejection: so one
    memo entry serves all three, keyed by the digits, and the hint is added per input."""
    plans = _plans[strict]
    hot = _hot[strict].get
    memo: dict[str, str] = {}  # key without its leading "+" and zeros -> number, or "" when invalid
    memo_get = memo.get
    tail_of: dict[str, str] = {}  # the same -> reason tail, without the hint
    spare: dict[str, str] = {}  # _judge_key's reason tail comes through here
    # Valid numbers reached from another memo entry ("9650..." -> "965...", "+" inside): the
    # others are in `valid` exactly when memo[number] == number.
    moved: set[str] = set()
    valid: list[str] = []
    dup_inputs: list[str] = []
    dup_numbers: list[str] = []
    bad_inputs: list[str] = []
    bad_keys: list[str] = []
    bad_tails: list[str] = []
    keep, repeat_input, repeat_number, refuse, refused_key, refused_tail = (
        valid.append,
        dup_inputs.append,
        dup_numbers.append,
        bad_inputs.append,
        bad_keys.append,
        bad_tails.append,
    )
    for raw, key in zip(items, keys, strict=True):
        digits = key.lstrip("+0")
        found = memo_get(digits)
        if found is None:
            # The hot path (see _hot): the verdict table of the number's calling code and length,
            # looked up by the leading digits that decide.
            tail = _UNBUILT
            by_length = hot(digits[:3])
            n = len(digits)
            if by_length is not None and n <= MAX_DIGITS and digits.isdigit():
                shape = by_length[n]
                if shape is not None:
                    cut, depth, table = shape
                    head = digits[cut : cut + depth]
                    tail = table.get(head, table)  # the table itself: not looked up yet
                    if tail is table:
                        tail = _table_entry(digits, cut, plans, strict)
                        if len(table) < _TABLE_CAP:
                            table[head] = tail
            if tail is None:
                found = digits
            elif tail is _UNBUILT:  # judged as "+digits": explicit, so no hint yet
                found = _judge_key("+" + digits, None, strict, spare) or ""
                if not found:
                    tail = spare.popitem()[1]
            else:
                found = ""
            memo[digits] = found
            if not found:
                tail_of[digits] = tail
                refuse(raw)
                refused_key(key)
                refused_tail(tail)
            elif found in moved or (found != digits and memo_get(found) == found):
                repeat_input(raw)  # given before, written otherwise
                repeat_number(found)
            else:
                if found != digits:
                    moved.add(found)
                keep(found)
        elif found:  # an entry met before: its number is in valid already
            repeat_input(raw)
            repeat_number(found)
        else:
            refuse(raw)
            refused_key(key)
            refused_tail(tail_of[digits])
    return valid, bad_inputs, list(map(_hinted, bad_keys, bad_tails)), dup_inputs, dup_numbers


def _hinted(key: str, tail: str) -> str:
    """The tail of a rejection of ``key`` judged as "+digits", with _phone_verdict._judge_input's hint."""
    if tail is EMAIL[2] or tail is NO_DIGITS[2]:
        return tail  # key_verdict answers these before _phone_verdict._judge_input
    return _with_hint(key, tail)
