"""Exchange rates to USD for ``value_usd``: IMF CSV and IMF SDR JSON files, looked up by month.

Every rate is stored as currency units per USD, so ``value_usd = value / rate``. A lookup
uses the month of the value date, or the nearest earlier month within a fallback window,
and returns the rate together with the month and file it came from (the provenance stored
with each converted value).

Annual rates (IMF ``Frequency`` ``A``, e.g. ``imf-annual-end-of-period.csv``) are used only
when such a file is passed to :func:`load_exchange_rates`. An annual rate applies to every
month of its year that has no monthly rate from any loaded file; the :class:`Rate` it gives
keeps the month of the annual rate itself (``YYYY-12`` for end-of-year rates), so the
figure can be found in its file.
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import io
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

#: Columns of the IMF exchange-rate CSV that the loader needs.
REQUIRED_CSV_COLUMNS = ("Date", "Rate", "Currency", "Frequency")
#: Columns of :meth:`ExchangeRates.to_frame`.
FRAME_COLUMNS = ["currency", "period", "rate", "source", "frequency"]
#: Two rows for the same currency and month within this relative difference are the same
#: rate (the IMF CSV repeats a rate per country, sometimes rounded differently:
#: ``1.715379999`` and ``1.71538`` for XCD).
SAME_RATE_TOLERANCE = 1e-6

MONTHLY = "M"
ANNUAL = "A"
IDENTITY_SOURCE = "identity"


class RatesError(Exception):
    """An exchange-rate file that cannot be used at all (missing, unreadable, wrong columns)."""


@dataclass(frozen=True)
class Rate:
    """One exchange rate and where it comes from."""

    rate: float  # currency units per USD
    period: str  # "YYYY-MM" of the rate used
    source: str  # e.g. "IMF exchange rates (imf-monthly-subset.csv)": a file name, not a path


def _month_index(period: str) -> int:
    """Months since year 0 of a ``YYYY-MM`` period, for arithmetic on months."""
    return int(period[:4]) * 12 + int(period[5:7]) - 1


def _from_month_index(index: int) -> str:
    return _period(index // 12, index % 12 + 1)


def _period(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


@dataclass
class ExchangeRates:
    """Monthly (and optionally annual) rates per currency, with the problems met loading them.

    ``monthly`` maps currency -> ``YYYY-MM`` -> rate; ``annual`` maps currency -> ``YYYY``
    -> rate. Treat both as read-only once lookups start: lookups are indexed and cached.
    USD is implicit (always 1) and is not listed by :meth:`currencies`.
    """

    monthly: dict[str, dict[str, Rate]] = field(default_factory=dict)
    annual: dict[str, dict[str, Rate]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    _index: dict[str, tuple[list[int], list[Rate]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _cache: dict[tuple[str, int, int], Rate | None] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def lookup(self, currency: str, when: dt.date, fallback_months: int = 12) -> Rate | None:
        """Rate for the month of ``when``, else the nearest earlier month within
        ``fallback_months``, else None."""
        if fallback_months < 0:
            raise ValueError(f"fallback_months must be >= 0, not {fallback_months}")
        code = currency.strip().upper()
        month = when.year * 12 + when.month - 1
        if code == "USD":
            return Rate(1.0, _period(when.year, when.month), IDENTITY_SOURCE)
        key = (code, month, fallback_months)
        if key in self._cache:
            return self._cache[key]
        found: Rate | None = None
        months, rates = self._series(code)
        position = bisect.bisect_right(months, month) - 1
        if position >= 0 and month - months[position] <= fallback_months:
            found = rates[position]
        self._cache[key] = found
        return found

    def to_usd(
        self, value: float, currency: str, when: dt.date, fallback_months: int = 12
    ) -> float | None:
        """``value`` in USD at the rate :meth:`lookup` finds, or None without a rate."""
        rate = self.lookup(currency, when, fallback_months)
        return None if rate is None else value / rate.rate

    def currencies(self) -> set[str]:
        """Currencies with at least one loaded rate (USD, always 1, is implicit)."""
        return set(self.monthly) | set(self.annual)

    def coverage(self) -> dict[str, tuple[str, str]]:
        """Currency -> (first, last) month covered, annual rates counting for their whole year."""
        result: dict[str, tuple[str, str]] = {}
        for currency in sorted(self.currencies()):
            months, _ = self._series(currency)
            result[currency] = (_from_month_index(months[0]), _from_month_index(months[-1]))
        return result

    def to_frame(self) -> pd.DataFrame:
        """All rates as rows (currency, period, rate, source, frequency) sorted by currency
        and period, for storing as reference data; :meth:`from_frame` reads it back."""
        rows = [
            (currency, rate.period, rate.rate, rate.source, frequency)
            for frequency, table in ((MONTHLY, self.monthly), (ANNUAL, self.annual))
            for currency, by_period in table.items()
            for rate in by_period.values()
        ]
        frame = pd.DataFrame(rows, columns=FRAME_COLUMNS)
        frame["rate"] = frame["rate"].astype("float64")
        return frame.sort_values(["currency", "period", "frequency"], ignore_index=True)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> ExchangeRates:
        """Rates from a frame written by :meth:`to_frame` (no ``frequency`` column: monthly)."""
        missing = [column for column in FRAME_COLUMNS[:4] if column not in frame.columns]
        if missing:
            raise RatesError(f"exchange-rate frame lacks columns {missing}")
        rates = cls()
        frequencies: Iterable[Any] = (
            frame["frequency"] if "frequency" in frame.columns else [MONTHLY] * len(frame)
        )
        for currency, period, value, source, frequency in zip(
            frame["currency"],
            frame["period"],
            frame["rate"],
            frame["source"],
            frequencies,
            strict=True,
        ):
            rate = Rate(float(value), str(period), str(source))
            if frequency == ANNUAL:
                rates.annual.setdefault(str(currency), {})[rate.period[:4]] = rate
            else:
                rates.monthly.setdefault(str(currency), {})[rate.period] = rate
        return rates

    def _series(self, currency: str) -> tuple[list[int], list[Rate]]:
        """Sorted month indexes and their rates: monthly rates, and annual rates in the
        months of their year that have no monthly rate."""
        if currency not in self._index:
            by_month = {_month_index(p): r for p, r in self.monthly.get(currency, {}).items()}
            for year, rate in self.annual.get(currency, {}).items():
                for month in range(12):
                    by_month.setdefault(int(year) * 12 + month, rate)
            months = sorted(by_month)
            self._index[currency] = (months, [by_month[m] for m in months])
        return self._index[currency]


def load_exchange_rates(paths: Sequence[Path]) -> ExchangeRates:
    """Rates from IMF CSV and IMF SDR JSON files, the format told by content, not name.

    Earlier files take precedence for a currency and month (or year) that several cover.
    Rows that cannot be read become warnings; a file that cannot be used raises RatesError.
    """
    rates = ExchangeRates()
    for path in paths:
        text = _read_text(Path(path))
        stripped = text.lstrip()
        monthly: dict[str, dict[str, Rate]]
        annual: dict[str, dict[str, Rate]] = {}
        if stripped.startswith(("[", "{")):
            monthly = _parse_sdr_json(stripped, Path(path).name, rates.warnings)
        else:
            monthly, annual = _parse_imf_csv(text, Path(path), rates.warnings)
        for table, parsed in ((rates.monthly, monthly), (rates.annual, annual)):
            for currency, by_period in parsed.items():
                existing = table.setdefault(currency, {})
                for period, rate in by_period.items():
                    existing.setdefault(period, rate)
    return rates


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as error:
        raise RatesError(f"{path}: exchange-rate file not found") from error
    except (OSError, UnicodeDecodeError) as error:
        raise RatesError(f"{path}: cannot read exchange-rate file: {error}") from error


def _rows(text: str, path: Path) -> Iterator[tuple[int, dict[str, str] | None]]:
    """(line number, row by column name) of an IMF CSV after checking its header; the row
    is None when its field count differs from the header's."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        raise RatesError(f"{path}: empty exchange-rate file")
    header = [column.strip() for column in header]
    missing = [column for column in REQUIRED_CSV_COLUMNS if column not in header]
    if missing:
        raise RatesError(
            f"{path}: not an IMF exchange-rate CSV: missing columns {', '.join(missing)} "
            f"(header: {','.join(header)})"
        )
    for values in reader:
        if not any(value.strip() for value in values):
            continue
        if len(values) != len(header):
            yield reader.line_num, None
        else:
            yield reader.line_num, dict(zip(header, values, strict=True))


def _parse_imf_csv(
    text: str, path: Path, warnings: list[str]
) -> tuple[dict[str, dict[str, Rate]], dict[str, dict[str, Rate]]]:
    """Monthly and annual rates of an IMF CSV (``Rate`` = units per USD), keyed by period
    and year; rows for the same currency and period collapse to the first."""
    source = f"IMF exchange rates ({path.name})"
    tables: dict[str, dict[str, dict[str, Rate]]] = {MONTHLY: {}, ANNUAL: {}}
    first_line: dict[tuple[str, str, str], int] = {}
    ignored_usd = 0
    for line, row in _rows(text, path):
        where = f"{path.name} line {line}"
        if row is None:
            warnings.append(f"{where}: field count differs from the header's; skipped")
            continue
        currency = row["Currency"].strip().upper()
        frequency = row["Frequency"].strip().upper()
        try:
            date = dt.date.fromisoformat(row["Date"].strip())
            value = float(row["Rate"])
        except ValueError:
            warnings.append(
                f"{where}: unreadable date or rate ({row['Date']!r}, {row['Rate']!r}); skipped"
            )
            continue
        if len(currency) != 3 or not currency.isalpha():
            warnings.append(f"{where}: unreadable currency {row['Currency']!r}; skipped")
            continue
        if frequency not in tables:
            warnings.append(f"{where}: frequency {row['Frequency']!r} is neither M nor A; skipped")
            continue
        if not math.isfinite(value) or value <= 0:
            warnings.append(f"{where}: rate {row['Rate']!r} is not a positive number; skipped")
            continue
        if currency == "USD":
            ignored_usd += value != 1
            continue
        period = _period(date.year, date.month)
        key = period if frequency == MONTHLY else period[:4]
        by_period = tables[frequency].setdefault(currency, {})
        kept = by_period.get(key)
        if kept is None:
            by_period[key] = Rate(value, period, source)
            first_line[(frequency, currency, key)] = line
        elif not math.isclose(kept.rate, value, rel_tol=SAME_RATE_TOLERANCE):
            warnings.append(
                f"{where}: {currency} {key} rate {value!r} ({row.get('Country', '').strip()}) "
                f"conflicts with {kept.rate!r} from line {first_line[(frequency, currency, key)]}"
                "; kept the first"
            )
    if ignored_usd:
        warnings.append(
            f"{path.name}: ignored {ignored_usd} USD rows with a rate other than 1 "
            "(USD is always 1 per USD)"
        )
    return tables[MONTHLY], tables[ANNUAL]


def _parse_sdr_json(text: str, name: str, warnings: list[str]) -> dict[str, dict[str, Rate]]:
    """Monthly rates from IMF SDR-per-unit records: units per USD = SDR per USD / SDR per
    unit; XDR per USD is the SDR value of one USD."""
    try:
        records = json.loads(text)
    except json.JSONDecodeError as error:
        raise RatesError(f"{name}: not valid JSON: {error}") from error
    if not isinstance(records, list):
        raise RatesError(
            f"{name}: expected a JSON list of {{year, month, currency_id, value}} records"
        )
    source = f"IMF SDR rates ({name})"
    sdr_per_unit: dict[str, dict[str, float]] = {}
    for number, record in enumerate(records, start=1):
        where = f"{name} record {number}"
        try:
            currency = str(record["currency_id"]).strip().upper()
            period = _period(int(record["year"]), int(record["month"]))
            value = float(record["value"])
        except (KeyError, TypeError, ValueError):
            warnings.append(f"{where}: unreadable record {record!r}; skipped")
            continue
        if not 1 <= int(period[5:]) <= 12 or not math.isfinite(value) or value <= 0:
            warnings.append(f"{where}: unusable month or value in {record!r}; skipped")
            continue
        by_period = sdr_per_unit.setdefault(period, {})
        kept = by_period.setdefault(currency, value)
        if not math.isclose(kept, value, rel_tol=SAME_RATE_TOLERANCE):
            warnings.append(
                f"{where}: {currency} {period} value {value!r} conflicts with {kept!r}"
                "; kept the first"
            )
    rates: dict[str, dict[str, Rate]] = {}
    without_usd = 0
    for period, by_currency in sdr_per_unit.items():
        usd = by_currency.get("USD")
        if usd is None:
            without_usd += 1
            continue
        rates.setdefault("XDR", {})[period] = Rate(usd, period, source)
        for currency, value in by_currency.items():
            if currency not in ("USD", "XDR"):
                rates.setdefault(currency, {})[period] = Rate(usd / value, period, source)
    if without_usd:
        warnings.append(
            f"{name}: {without_usd} months have no USD value, so no rates to USD; skipped"
        )
    return rates
