"""Figures for readers: counts, US dollars, shares, file sizes and dates through Babel (CLDR).

Every function takes the value as the data has it (a number, numeric text, None or
NaN) and a ``locale`` (``en`` by default); a missing or non-numeric value reads
``–``. The page templates reach these functions as filters (:mod:`publish.render`),
so a page in another language gets its separators, decimal marks and month names
from CLDR rather than from code.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache, lru_cache

from babel import Locale
from babel.dates import format_date as babel_date
from babel.dates import format_datetime as babel_datetime
from babel.numbers import NumberPattern, parse_pattern
from babel.units import format_unit

MISSING = "–"
SHORT_HASH = 12
#: Sizes in SI units (CLDR's short unit names: ``kB``, ``MB``, ``GB``).
SIZE_UNITS = (("digital-gigabyte", 1e9), ("digital-megabyte", 1e6), ("digital-kilobyte", 1e3))


def number(value: object) -> float | None:
    """A finite float, or None for missing values (None, "", NaN, text that is no number)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        parsed = float(value.strip() if isinstance(value, str) else value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return parsed if math.isfinite(parsed) else None


def _exact(value: float) -> Decimal:
    """The float's exact binary value. Babel reads a float through its shortest text, so a
    share stored as 0.3105 would be 31.05% and round to even (31.0%); the pages divide and
    multiply in floats first (0.3105 × 100 is 31.050000000000004) and pass the exact result,
    so a tie rounds as Python's own formatting does (31.1%)."""
    return Decimal(value)


@cache
def _locale(locale: str) -> Locale:
    """The parsed locale, once (Babel would parse the identifier at every call)."""
    return Locale.parse(locale)


@cache
def _pattern(locale: str, places: int, percent: bool = False) -> NumberPattern:
    """The locale's decimal (or percent) pattern with exactly ``places`` decimals: its
    grouping, and for a percentage where the sign goes and the space before it."""
    data = _locale(locale)
    standard = (data.percent_formats if percent else data.decimal_formats)[None]
    pattern = parse_pattern(standard.pattern)
    pattern.frac_prec = (places, places)
    return pattern


@lru_cache(maxsize=1 << 16)
def _apply(locale: str, places: int, percent: bool, value: float | Decimal) -> str:
    """``value`` through the locale's pattern with ``places`` decimals; a page writes the
    same figures many times (counts, shares, years), so they are remembered."""
    return _pattern(locale, places, percent).apply(value, _locale(locale))


def blank(value: object) -> bool:
    return (
        value is None
        or (isinstance(value, str) and not value.strip())
        or (isinstance(value, float) and math.isnan(value))
    )


def format_count(value: object, locale: str = "en") -> str:
    """A whole number with the locale's grouping (``12,480``)."""
    parsed = number(value)
    return MISSING if parsed is None else _apply(locale, 0, False, round(parsed))


def format_usd_amount(value: object, locale: str = "en", compact: bool = True) -> str:
    """A sum of US dollars without the currency, for humans: from a million up CLDR's long
    compact form with one decimal (``10.6 million``, French ``10,6 millions``), else whole
    dollars (``329,644``); ``compact=False``: every dollar (``1,234,567``). The currency
    is placed by the page's language (``publish.render.usd``)."""
    parsed = number(value)
    if parsed is None:
        return MISSING
    if compact and abs(parsed) >= 1e6:
        return _compact(parsed, locale)
    return _apply(locale, 0, False, round(parsed))


def _compact(value: float, locale: str) -> str:
    """CLDR's long compact form with one decimal, kept when it is 0 (``2.0 million``, French
    ``2,0 millions``), from Babel's locale data: the pattern and plural form of the value's
    magnitude, or of the next one when rounding reaches it (999.96 million is
    ``1.0 billion``). Babel's ``format_compact_decimal`` would drop the trailing zero."""
    data = _locale(locale)
    forms = data.compact_decimal_formats["long"]
    magnitudes = sorted(int(m) for m in forms["other"])

    def scaled(magnitude: int) -> tuple[int, Decimal]:
        divisor = magnitude // 10 ** (forms["other"][str(magnitude)].pattern.count("0") - 1)
        return divisor, round(_exact(value / divisor), 1)

    reached = [m for m in magnitudes if abs(value) >= m]
    if not reached:
        return _apply(locale, 1, False, _exact(value))
    magnitude = reached[-1]
    divisor, rounded = scaled(magnitude)
    bigger = [m for m in magnitudes if m > magnitude]
    if bigger and abs(rounded) * divisor >= bigger[0]:
        magnitude = bigger[0]
        divisor, rounded = scaled(magnitude)
    plurals = ("1",) * (rounded == 1) + (data.plural_form(abs(rounded)), "other")
    key = str(magnitude)
    pattern = next(forms[p][key] for p in plurals if key in forms.get(p, {}))
    fixed = parse_pattern(pattern.pattern)
    fixed.frac_prec = (1, 1)
    return fixed.apply(rounded, data)


def format_share(value: object, locale: str = "en") -> str:
    """A 0..1 share as a percentage with one decimal (``66.9%``)."""
    parsed = number(value)
    if parsed is None:
        return MISSING
    return _apply(locale, 1, True, _exact(parsed * 100) / 100)


def format_plain(value: object, locale: str = "en") -> str:
    """A whole number as such, any other with two decimals (``1,982,577.14``)."""
    parsed = number(value)
    if parsed is None:
        return MISSING
    places = 0 if parsed.is_integer() else 2
    return _apply(locale, places, False, _exact(parsed))


def format_decimal_places(value: object, places: int, locale: str = "en") -> str:
    """A number with exactly ``places`` decimals (``2.4``, ``0.42``)."""
    parsed = number(value)
    if parsed is None:
        return MISSING
    return _apply(locale, places, False, _exact(parsed))


def format_bytes(value: object, locale: str = "en") -> str:
    """A file size in SI units with one decimal (``2.2 MB``); under a kilobyte, ``512 B``."""
    parsed = number(value)
    if parsed is None:
        return MISSING
    for unit, size in SIZE_UNITS:
        if parsed >= size:
            amount = _exact(parsed / size)
            return format_unit(amount, unit, length="short", format="#,##0.0", locale=locale)
    if _locale(locale).language == "en":
        # CLDR's short English name of a byte is "byte"; the SI symbol reads as kB and MB do.
        return f"{_apply(locale, 0, False, round(parsed))} B"
    return format_unit(round(parsed), "digital-byte", length="short", locale=locale)  # 785 o


def _moment(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat("" if value is None else str(value))
    except ValueError:
        return None


def format_date(value: object, locale: str = "en", pattern: str = "yyyy-MM-dd") -> str:
    """An ISO date or timestamp as a date (CLDR ``pattern``); the raw text when unparseable."""
    moment = _moment(value)
    if moment is None:
        return "" if value is None else str(value)
    return babel_date(moment.date(), pattern, locale=locale)


def format_timestamp(value: object, locale: str = "en") -> str:
    """``2026-11-28T04:20:00Z`` → ``2026-11-28 04:20 UTC`` (the raw text when unparseable)."""
    moment = _moment(value)
    if moment is None:
        return "" if value is None else str(value)
    if moment.utcoffset() == timedelta(0):
        return babel_datetime(moment, "yyyy-MM-dd HH:mm 'UTC'", tzinfo=UTC, locale=locale)
    return moment.isoformat(sep=" ", timespec="minutes")


def short_hash(value: object) -> str:
    """The first characters of a hash, ``…`` after them when cut."""
    text = "" if value is None else str(value)
    return text[:SHORT_HASH] + "…" if len(text) > SHORT_HASH else text
