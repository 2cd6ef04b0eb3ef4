"""Exchange rates from the real IMF files: lookups, fallback, SDR conversion, precedence, errors."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from lxml import etree

from assets.iati.rates import ExchangeRates, Rate, RatesError, load_exchange_rates
from tests.conftest import IATI_FIXTURES, RATES

MONTHLY_CSV = RATES / "imf-monthly-subset.csv"
ANNUAL_CSV = RATES / "imf-annual-end-of-period.csv"
SDR_JSON = RATES / "monthly-average-sdr-per-unit.json"
CSV_SOURCE = "IMF exchange rates (imf-monthly-subset.csv)"
SDR_SOURCE = "IMF SDR rates (monthly-average-sdr-per-unit.json)"
HEADER = "Date,Rate,Currency,Frequency,Source,Country code,Country\n"


@pytest.fixture(scope="module")
def monthly() -> ExchangeRates:
    return load_exchange_rates([MONTHLY_CSV])


@pytest.fixture(scope="module")
def monthly_and_sdr() -> ExchangeRates:
    return load_exchange_rates([MONTHLY_CSV, SDR_JSON])


def test_gbp_rate_is_the_figure_in_the_file(monthly: ExchangeRates) -> None:
    # imf-monthly-subset.csv line 6007: 2020-03-31,0.809028760972452,GBP,M,IMF,GB,...
    assert monthly.lookup("GBP", dt.date(2020, 3, 17)) == Rate(
        0.809028760972452, "2020-03", CSV_SOURCE
    )
    assert monthly.to_usd(1000.0, "gbp", dt.date(2020, 3, 1)) == 1000.0 / 0.809028760972452


def test_fallback_to_an_earlier_month_then_none_beyond_the_window(
    monthly: ExchangeRates,
) -> None:
    # The last AFN row is 2021-05-31,77.655 (line 798).
    twelve_later = monthly.lookup("AFN", dt.date(2022, 5, 31))
    assert twelve_later == Rate(77.655, "2021-05", CSV_SOURCE)
    assert monthly.lookup("AFN", dt.date(2022, 6, 1)) is None
    assert monthly.lookup("AFN", dt.date(2021, 8, 1), fallback_months=2) is None
    assert monthly.lookup("AFN", dt.date(2021, 5, 1), fallback_months=0) == twelve_later
    # Never a later month: AFN starts 1955-01.
    assert monthly.lookup("AFN", dt.date(1954, 12, 31)) is None


def test_usd_is_identity_and_unknown_currency_is_none(monthly: ExchangeRates) -> None:
    assert monthly.lookup("USD", dt.date(1990, 7, 4)) == Rate(1.0, "1990-07", "identity")
    assert monthly.lookup("ZZZ", dt.date(2020, 1, 1)) is None
    assert "USD" not in monthly.currencies()


def test_currencies_and_coverage_of_the_monthly_subset(monthly: ExchangeRates) -> None:
    assert monthly.currencies() == {"AFN", "ALL", "AOA", "ARS", "DZD", "EUR", "GBP", "XCD"}
    assert monthly.coverage()["AFN"] == ("1955-01", "2021-05")
    assert monthly.coverage()["EUR"] == ("2002-01", "2022-08")


def test_xdr_per_usd_is_the_sdr_value_of_one_usd(monthly_and_sdr: ExchangeRates) -> None:
    # monthly-average-sdr-per-unit.json: 2002-05 USD 0.7830189565 SDR per USD.
    assert monthly_and_sdr.lookup("XDR", dt.date(2002, 5, 21)) == Rate(
        0.7830189565, "2002-05", SDR_SOURCE
    )


def test_sdr_currency_is_converted_to_units_per_usd(monthly_and_sdr: ExchangeRates) -> None:
    # 2002-05: JPY 0.0061900181 and USD 0.7830189565 SDR per unit.
    rate = monthly_and_sdr.lookup("JPY", dt.date(2002, 5, 1))
    assert rate is not None
    assert rate.rate == pytest.approx(0.7830189565 / 0.0061900181, rel=1e-12)
    assert rate.rate == pytest.approx(126.5, abs=0.5)  # yen per dollar in May 2002


def test_afdb_xdr_values_all_convert(monthly_and_sdr: ExchangeRates) -> None:
    """The AfDB file reports in XDR; every value in it finds a rate."""
    path = IATI_FIXTURES / "valid" / "multiple_locales_descriptions.xml"
    root = etree.parse(str(path)).getroot()
    values = []
    for activity in root.iter("iati-activity"):
        for value in activity.iter("value"):
            currency = value.get("currency") or activity.get("default-currency")
            values.append((float(value.text or ""), str(currency), value.get("value-date")))
    assert values
    assert {currency for _, currency, _ in values} == {"XDR"}
    for amount, currency, date in values:
        assert monthly_and_sdr.to_usd(amount, currency, dt.date.fromisoformat(str(date)))
    first = values[0]
    assert first[1:] == ("XDR", "2002-05-21")
    assert monthly_and_sdr.to_usd(first[0], "XDR", dt.date(2002, 5, 21)) == pytest.approx(
        162964.12 / 0.7830189565
    )


def test_earlier_file_takes_precedence(monthly_and_sdr: ExchangeRates) -> None:
    sdr_first = load_exchange_rates([SDR_JSON, MONTHLY_CSV])
    in_csv = monthly_and_sdr.lookup("GBP", dt.date(2020, 3, 1))
    in_json = sdr_first.lookup("GBP", dt.date(2020, 3, 1))
    assert in_csv is not None
    assert in_json is not None
    assert in_csv.source == CSV_SOURCE
    assert in_json.source == SDR_SOURCE
    assert in_csv.rate != in_json.rate
    # The CSV's EUR stops at 2022-08; later months come from the JSON.
    later = monthly_and_sdr.lookup("EUR", dt.date(2024, 8, 1))
    assert later is not None
    assert later.source == SDR_SOURCE
    assert later.period == "2024-08"


def test_real_conflicting_duplicates_keep_the_first_and_warn(monthly: ExchangeRates) -> None:
    # XCD 1975-01: Anguilla (line 2959) says 20.1865, Antigua and Barbuda (line 3747) 2.018649999.
    assert monthly.lookup("XCD", dt.date(1975, 1, 1)) == Rate(20.1865, "1975-01", CSV_SOURCE)
    assert any(
        "line 3747" in warning and "XCD 1975-01" in warning and "line 2959" in warning
        for warning in monthly.warnings
    )
    # 1957-01: 1.71538 and 1.715379999 are the same rate, rounded differently: no warning.
    assert not any("XCD 1957-01" in warning for warning in monthly.warnings)
    assert len(monthly.warnings) == 4


def test_annual_rates_only_fill_months_without_a_monthly_rate() -> None:
    rates = load_exchange_rates([MONTHLY_CSV, ANNUAL_CSV])
    # The monthly EUR series stops at 2022-08; 2023 comes from the annual file, whose first
    # EUR row for 2023 is line 178: 2023-12-31,0.924709622987356,EUR,A,IMF,AD,"Andorra ..."
    assert rates.lookup("EUR", dt.date(2023, 6, 1)) == Rate(
        0.924709622987356, "2023-12", "IMF exchange rates (imf-annual-end-of-period.csv)"
    )
    assert rates.lookup("EUR", dt.date(2021, 6, 1)) == Rate(
        0.841467519353753, "2021-06", CSV_SOURCE
    )
    assert any("EUR 2023" in warning and "line 4204" in warning for warning in rates.warnings)
    # Ecuador's sucre rows are labelled USD in the annual file; USD stays 1.
    assert rates.lookup("USD", dt.date(1990, 1, 1)) == Rate(1.0, "1990-01", "identity")
    assert any("USD rows" in warning for warning in rates.warnings)
    # Annual rates are not used unless their file is loaded.
    assert load_exchange_rates([MONTHLY_CSV]).lookup("EUR", dt.date(2024, 6, 1)) is None


def test_frame_round_trip(monthly_and_sdr: ExchangeRates) -> None:
    frame = monthly_and_sdr.to_frame()
    assert list(frame.columns) == ["currency", "period", "rate", "source", "frequency"]
    assert frame.iloc[0].tolist()[:2] == ["AED", "1994-01"]
    assert frame.equals(frame.sort_values(["currency", "period"], ignore_index=True))
    back = ExchangeRates.from_frame(frame)
    assert back.monthly == monthly_and_sdr.monthly
    assert back.lookup("XDR", dt.date(2002, 5, 1)) == monthly_and_sdr.lookup(
        "XDR", dt.date(2002, 5, 1)
    )


def test_unparseable_lines_become_warnings_with_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "rates.csv"
    path.write_text(
        HEADER
        + "2020-01-31,0.76,GBP,M,IMF,GB,United Kingdom\n"
        + "2020-02-29,n/a,GBP,M,IMF,GB,United Kingdom\n"
        + "2020-03-31,0.8,GBP\n"
        + "2020-04-31,0.8,GBP,M,IMF,GB,United Kingdom\n"
        + "2020-05-31,0.8,GBP,Q,IMF,GB,United Kingdom\n"
        + "2020-01-31,0.77,GBP,M,IMF,GB,United Kingdom\n"
        + "2020-01-31,0.76,GBP,M,IMF,GB,United Kingdom\n"
    )
    rates = load_exchange_rates([path])
    assert [warning.split(":")[0] for warning in rates.warnings] == [
        "rates.csv line 3",
        "rates.csv line 4",
        "rates.csv line 5",
        "rates.csv line 6",
        "rates.csv line 7",
    ]
    assert "conflicts with 0.76 from line 2" in rates.warnings[-1]
    assert rates.lookup("GBP", dt.date(2020, 1, 1)) == Rate(
        0.76, "2020-01", "IMF exchange rates (rates.csv)"
    )


def test_format_is_detected_by_content_not_name(tmp_path: Path) -> None:
    path = tmp_path / "rates.csv"
    path.write_text(
        json.dumps(
            [
                {"year": 2020, "month": 1, "currency_id": "USD", "value": 0.72},
                {"year": 2020, "month": 1, "currency_id": "EUR", "value": 0.8},
            ]
        )
    )
    rates = load_exchange_rates([path])
    eur = rates.lookup("EUR", dt.date(2020, 1, 15))
    assert eur is not None
    assert eur.rate == pytest.approx(0.9)
    assert eur.source == "IMF SDR rates (rates.csv)"


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("missing.csv", None, "not found"),
        ("columns.csv", "Date,Value,Currency\n2020-01-31,1,GBP\n", "missing columns Rate"),
        ("empty.csv", "", "empty"),
        ("broken.json", '[{"year": 2020,', "not valid JSON"),
        ("object.json", '{"data": []}', "expected a JSON list"),
        ("latin1.csv", b"Date,Rate\xff", "cannot read"),
    ],
)
def test_unusable_files_raise_rates_error_naming_them(
    tmp_path: Path, name: str, content: str | bytes | None, problem: str
) -> None:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(RatesError, match=problem) as raised:
        load_exchange_rates([MONTHLY_CSV, path])
    assert name in str(raised.value)


def test_negative_fallback_is_refused(monthly: ExchangeRates) -> None:
    with pytest.raises(ValueError, match="fallback_months"):
        monthly.lookup("GBP", dt.date(2020, 1, 1), fallback_months=-1)
