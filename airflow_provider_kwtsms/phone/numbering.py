"""libphonenumber's numbering plans, compiled once for fast bulk classification.

``phonenumbers.parse`` + ``is_valid_number`` + ``number_type`` cost tens of microseconds per number,
mostly in object building and the ``re`` module's bounded compile cache. This module keeps the same
decisions but works on digit strings: for each calling code (built lazily, on first use) it holds
the national-prefix rule of the code's main region and, per region and number length, one
combined regular expression whose first fully matching alternative gives the number type in the
same order as ``phonenumbers.phonenumberutil._number_type_helper``. ``phonenumbers`` is imported
only when the first calling code is needed.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:  # phonenumbers itself is imported only when the first calling code is needed
    from phonenumbers import PhoneMetadata, PhoneNumberDesc

# Number types, named as phonenumbers.PhoneNumberType names them.
MOBILE = "MOBILE"
FIXED_LINE = "FIXED_LINE"
FIXED_LINE_OR_MOBILE = "FIXED_LINE_OR_MOBILE"
UNKNOWN = "UNKNOWN"

# The order of phonenumbers' _number_type_helper: the special types win over fixed line and mobile.
TYPE_FIELDS = (
    ("premium_rate", "PREMIUM_RATE"),
    ("toll_free", "TOLL_FREE"),
    ("shared_cost", "SHARED_COST"),
    ("voip", "VOIP"),
    ("personal_number", "PERSONAL_NUMBER"),
    ("pager", "PAGER"),
    ("uan", "UAN"),
    ("voicemail", "VOICEMAIL"),
    ("fixed_line", FIXED_LINE),
    ("mobile", MOBILE),
)

# Outcomes of the possible-length test (phonenumbers.phonenumberutil.ValidationResult).
IS_POSSIBLE = "IS_POSSIBLE"
TOO_SHORT = "TOO_SHORT"
TOO_LONG = "TOO_LONG"
INVALID_LENGTH = "INVALID_LENGTH"
LOCAL_ONLY = "IS_POSSIBLE_LOCAL_ONLY"
_NO_STRIP = (TOO_SHORT, LOCAL_ONLY, INVALID_LENGTH)  # parse() keeps the prefix in these cases

MIN_NSN = 2  # phonenumbers' _MIN_LENGTH_FOR_NSN / _MAX_LENGTH_FOR_NSN
MAX_NSN = 17

# A compiled pattern's bound match or fullmatch.
Matcher: TypeAlias = Callable[[str], "re.Match[str] | None"]
# One region's classifier for one length: (combined fullmatch, group name -> type, mobile fullmatch
# or None).
Classifier: TypeAlias = tuple[Matcher, dict[str, str], Matcher | None]

_lock = threading.Lock()
codes: dict[str, CallingCode | None] = {}
_known: frozenset[str] | None = None
prefixes: dict[str, str] | None = None


def allowed_pattern(desc: PhoneNumberDesc | None, length: int) -> str | None:
    """The description's pattern when phonenumbers' _is_number_matching_desc would try it on a
    number of this length (present, patterned, length allowed); None when it would not."""
    if desc is None or not desc.national_number_pattern:
        return None
    lengths = desc.possible_length
    return desc.national_number_pattern if not lengths or length in lengths else None


def desc_allows(desc: PhoneNumberDesc | None, length: int) -> bool:
    """phonenumbers' _is_number_matching_desc without the pattern: present, patterned, length allowed."""
    return allowed_pattern(desc, length) is not None


def _fullmatcher(pattern: str | None) -> Matcher | None:
    return re.compile(pattern).fullmatch if pattern else None


class Region:
    """One region's metadata: per-length type classifiers, built on first use of each length."""

    def __init__(self, code: str, metadata: PhoneMetadata) -> None:
        # Every region's metadata has a general description (phonenumbers' loader always sets it).
        assert metadata.general_desc is not None
        self.code = code
        self.meta = metadata
        self.general_desc: PhoneNumberDesc = metadata.general_desc
        self.leading = re.compile(metadata.leading_digits).match if metadata.leading_digits else None
        self.general = _fullmatcher(metadata.general_desc.national_number_pattern)
        self._by_length: dict[int, Classifier | None] = {}

    def _build(self, length: int) -> Classifier | None:
        m = self.meta
        general = allowed_pattern(self.general_desc, length)
        if general is None:
            return None
        same = bool(m.same_mobile_and_fixed_line_pattern)
        parts: list[str] = []
        names: dict[str, str] = {}
        for i, (field, kind) in enumerate(TYPE_FIELDS):
            if kind == MOBILE and same:
                continue  # phonenumbers never reports MOBILE when the two patterns are the same
            pattern = allowed_pattern(getattr(m, field), length)
            if pattern is not None:
                names[f"t{i}"] = FIXED_LINE_OR_MOBILE if (kind == FIXED_LINE and same) else kind
                parts.append(f"(?P<t{i}>{pattern})")
        if not parts:
            return None
        combined = re.compile(rf"(?=(?:{general})\Z)(?:{'|'.join(parts)})").fullmatch
        mobile: Matcher | None = None
        mobile_pattern = None if same else allowed_pattern(m.mobile, length)
        if mobile_pattern is not None:
            mobile = re.compile(mobile_pattern).fullmatch
        return combined, names, mobile

    def classifier(self, length: int) -> Classifier | None:
        """(combined fullmatch, group name -> type, mobile fullmatch or None), or None: always UNKNOWN."""
        try:
            return self._by_length[length]
        except KeyError:
            entry = self._by_length[length] = self._build(length)
            return entry

    def number_type(self, nsn: str) -> str:
        """What phonenumbers' _number_type_helper(nsn, metadata) answers, as a type name."""
        entry = self.classifier(len(nsn))
        if entry is None:
            return UNKNOWN
        combined, names, mobile = entry
        found = combined(nsn)
        if found is None:
            return UNKNOWN
        # Every match goes through one named alternative, the outermost group to close: lastgroup is set.
        assert found.lastgroup is not None
        kind = names[found.lastgroup]
        if kind == FIXED_LINE and mobile is not None and mobile(nsn):
            return FIXED_LINE_OR_MOBILE
        return kind

    def general_allows(self, length: int) -> bool:
        """Whether the general pattern is there and its possible lengths include this one."""
        return self.general is not None and desc_allows(self.general_desc, length)

    def matches_general(self, nsn: str) -> bool:
        general = self.general
        return general is not None and self.general_allows(len(nsn)) and general(nsn) is not None


class CallingCode:
    """Everything about one country calling code: its regions (main one first) and parse rules."""

    def __init__(self, cc: str, regions: list[Region]) -> None:
        self.cc = cc
        self.regions = regions
        main = regions[0].meta
        self.region_codes = tuple(r.code for r in regions)
        general = regions[0].general_desc
        self._lengths = tuple(general.possible_length)
        self._local_lengths = tuple(general.possible_length_local_only or ())
        self._general = regions[0].general
        npp = main.national_prefix_for_parsing
        self._prefix = re.compile(npp) if npp else None
        self._transform = main.national_prefix_transform_rule or None
        self.single = len(regions) == 1
        mobile = {n for r in regions if r.meta.mobile is not None for n in r.meta.mobile.possible_length}
        mobile.discard(-1)  # -1: the region has no mobile numbers at all
        self.mobile_lengths = tuple(sorted(mobile)) or self._lengths
        # For the bulk engine (_phone_engine.py): the one region of a single-region code, and the lengths
        # at which a number the metadata cannot classify is still possible for a mobile.
        self.only_region = regions[0] if self.single else None
        self.prefix = self._prefix
        self.open_lengths = frozenset(
            n for n in self.mobile_lengths if self.test_length("0" * n) == IS_POSSIBLE
        )

    @property
    def possible_lengths(self) -> tuple[int, ...]:
        return self._lengths

    def test_length(self, nsn: str) -> str:
        """phonenumbers' _test_number_length(nsn, main metadata) for type UNKNOWN."""
        lengths = self._lengths
        n = len(nsn)
        if n in self._local_lengths:
            return LOCAL_ONLY
        if n == lengths[0]:
            return IS_POSSIBLE
        if n < lengths[0]:
            return TOO_SHORT
        if n > lengths[-1]:
            return TOO_LONG
        return IS_POSSIBLE if n in lengths else INVALID_LENGTH

    def national_number(self, nsn: str) -> str:
        """The national number parse() keeps: its national prefix stripped where parse() strips it."""
        found = self._prefix.match(nsn) if self._prefix is not None else None
        return nsn if found is None else self._strip(nsn, found)

    def _strip(self, nsn: str, found: re.Match[str]) -> str:
        general = self._general
        viable = general is not None and general(nsn) is not None
        groups = found.groups()
        if not self._transform or not groups or groups[-1] is None:
            candidate = nsn[found.end() :]
        else:
            candidate = found.re.sub(self._transform, nsn, count=1)
        if viable and (general is None or general(candidate) is None):
            return nsn
        if self.test_length(candidate) in _NO_STRIP:
            return nsn
        return candidate

    def classify(self, nsn: str) -> tuple[str, str | None, str]:
        """(type, region, national number) for the digits after the calling code, as parse(),
        number_type() and region_code_for_number() would give them."""
        prefix = self._prefix
        if prefix is not None:
            found = prefix.match(nsn)
            if found is not None:
                nsn = self._strip(nsn, found)
        if self.single:
            region = self.regions[0]
            return region.number_type(nsn), region.code, nsn
        kind, code = self.number_type(nsn)
        return kind, code, nsn

    def number_type(self, nsn: str) -> tuple[str, str | None]:
        """(type, region) as phonenumbers' number_type and region_code_for_number decide them."""
        regions = self.regions
        if self.single:
            region = regions[0]
            return region.number_type(nsn), region.code
        for region in regions:
            if region.leading is not None:
                if region.leading(nsn):
                    return region.number_type(nsn), region.code
            else:
                kind = region.number_type(nsn)
                if kind != UNKNOWN:
                    return kind, region.code
        return UNKNOWN, None

    def matches_general(self, nsn: str) -> bool:
        return any(region.matches_general(nsn) for region in self.regions)


def known_codes() -> frozenset[str]:
    """Every calling code libphonenumber knows, as strings ("1", "965", "800", ...)."""
    global _known
    if _known is None:
        from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

        _known = frozenset(str(cc) for cc in COUNTRY_CODE_TO_REGION_CODE)
    return _known


def calling_code(cc: str) -> CallingCode | None:
    """The compiled plan of a calling code ("965"), or None if libphonenumber does not know it."""
    try:
        return codes[cc]
    except KeyError:
        pass
    if cc not in known_codes():
        return None
    with _lock:
        if cc not in codes:
            codes[cc] = _load(cc)
    return codes[cc]


def _load(cc: str) -> CallingCode | None:
    from phonenumbers import REGION_CODE_FOR_NON_GEO_ENTITY, PhoneMetadata
    from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

    regions = []
    for code in COUNTRY_CODE_TO_REGION_CODE[int(cc)]:
        if code == REGION_CODE_FOR_NON_GEO_ENTITY:
            meta = PhoneMetadata.metadata_for_nongeo_region(int(cc))
        else:
            meta = PhoneMetadata.metadata_for_region(code)
        if meta is not None:
            regions.append(Region(code, meta))
    return CallingCode(cc, regions) if regions else None


def prefix_table() -> dict[str, str]:
    """Every three-digit start ("965", "120", "201") -> the calling code it begins with."""
    global prefixes
    if prefixes is None:
        known = known_codes()
        table = {}
        for value in range(100, 1000):
            head = str(value)
            for size in (1, 2, 3):
                if head[:size] in known:
                    table[head] = head[:size]
                    break
        prefixes = table
    return prefixes


def split_calling_code(digits: str) -> tuple[str, str] | None:
    """("965", "98765432") from "96598765432": calling codes never prefix one another."""
    if not digits or digits[0] == "0":
        return None
    known = _known if _known is not None else known_codes()
    for size in (1, 2, 3):
        head = digits[:size]
        if head in known:
            return head, digits[size:]
    return None


def region_calling_code(region: str) -> str | None:
    """The calling code of an ISO region ("KW" -> "965"), or None if libphonenumber does not know it."""
    from phonenumbers.phonenumberutil import country_code_for_valid_region

    try:
        code = country_code_for_valid_region(region)
    except Exception:  # phonenumbers raises for unknown regions
        return None
    return str(code) if code else None
