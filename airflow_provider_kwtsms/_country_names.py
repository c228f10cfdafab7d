"""English names for error messages, for the countries kwtSMS customers send to most.

Only words for people reading an error: validation never uses this table (libphonenumber's metadata
does that). Other regions are named by their ISO code. phonenumbers' own name table is not used
because importing it takes seconds.
"""

from __future__ import annotations

_NAMES = {
    "KW": "Kuwait", "SA": "Saudi Arabia", "AE": "United Arab Emirates", "QA": "Qatar", "BH": "Bahrain",
    "OM": "Oman", "EG": "Egypt", "JO": "Jordan", "LB": "Lebanon", "PS": "Palestine", "IQ": "Iraq",
    "SY": "Syria", "YE": "Yemen", "LY": "Libya", "TN": "Tunisia", "MA": "Morocco", "DZ": "Algeria",
    "SD": "Sudan", "IR": "Iran", "TR": "Turkey", "IL": "Israel", "IN": "India", "PK": "Pakistan",
    "BD": "Bangladesh", "LK": "Sri Lanka", "NP": "Nepal", "AF": "Afghanistan", "MV": "Maldives",
    "PH": "Philippines", "ID": "Indonesia", "MY": "Malaysia", "SG": "Singapore", "TH": "Thailand",
    "VN": "Vietnam", "MM": "Myanmar", "CN": "China", "HK": "Hong Kong", "JP": "Japan",
    "KR": "South Korea", "TW": "Taiwan", "GB": "United Kingdom", "GG": "Guernsey", "JE": "Jersey",
    "IM": "Isle of Man", "IE": "Ireland", "FR": "France", "DE": "Germany", "IT": "Italy", "ES": "Spain",
    "PT": "Portugal", "NL": "Netherlands", "BE": "Belgium", "CH": "Switzerland", "AT": "Austria",
    "SE": "Sweden", "NO": "Norway", "DK": "Denmark", "FI": "Finland", "PL": "Poland", "GR": "Greece",
    "CZ": "Czechia", "RO": "Romania", "HU": "Hungary", "UA": "Ukraine", "RU": "Russia",
    "KZ": "Kazakhstan", "US": "United States", "CA": "Canada", "MX": "Mexico", "BR": "Brazil",
    "AR": "Argentina", "CO": "Colombia", "CL": "Chile", "PE": "Peru", "AU": "Australia",
    "NZ": "New Zealand", "ZA": "South Africa", "NG": "Nigeria", "KE": "Kenya", "ET": "Ethiopia",
    "ER": "Eritrea", "SO": "Somalia", "GH": "Ghana", "UG": "Uganda", "TZ": "Tanzania",
}


def country_label(region: str | None, cc: str) -> str:
    """'Kuwait (KW, +965)', 'region FJ (+679)', or 'the +800 service' for non-geographic codes."""
    if region is None or region == "001":
        return f"the +{cc} service"
    name = _NAMES.get(region)
    return f"{name} ({region}, +{cc})" if name else f"region {region} (+{cc})"
