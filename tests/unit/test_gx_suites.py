"""GX suites on real harmonised tables: they pass; deliberately broken copies fail row by row."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from functools import cache

import pandas as pd
import pytest

from assets.iati.harmonise import HarmoniseOptions, harmonise_paths
from assets.iati.rates import load_exchange_rates
from assets.settings import load_settings
from expectations.suites import build_suite
from tests.conftest import IATI_FIXTURES, RATES, derived_frame, validate_frame, validate_frames

TODAY = dt.date.today()


@cache
def harmonised() -> dict[str, pd.DataFrame]:
    options = HarmoniseOptions(
        rules=load_settings().cd_rules,
        rates=load_exchange_rates([RATES / "imf-monthly-subset.csv"]),
    )
    _, tables = harmonise_paths([IATI_FIXTURES / "valid", IATI_FIXTURES / "legacy"], options)
    return tables


def _copy(table: str) -> pd.DataFrame:
    return harmonised()[table].copy()


def _first(frame: pd.DataFrame, mask: pd.Series) -> int:
    return int(frame.index[mask.fillna(False).astype(bool)][0])


def test_suite_is_derived_from_the_schema_with_rule_and_severity() -> None:
    suite = build_suite("transactions")
    rules = {e.meta["rule"]: e.meta["severity"] for e in suite.expectations if e.meta}
    assert len(rules) == len(suite.expectations)
    assert rules["columns"] == "error"
    assert rules["required:transaction_id"] == "error"
    assert rules["enum:source"] == "error"
    assert rules["pattern:currency"] == "error"
    assert rules["minimum:usd_rate"] == "error"
    assert rules["primary_key:transaction_id"] == "error"
    assert rules["transaction_type_code"] == "error"
    assert rules["value_usd_where_rate"] == "error"
    assert rules["no_future_disbursement"] == "warning"
    compound = {e.meta["rule"] for e in build_suite("activity_sectors").expectations if e.meta}
    assert "primary_key:activity_id,vocabulary,code" in compound


@pytest.mark.parametrize(
    "table",
    [
        "activities",
        "activity_countries",
        "activity_sectors",
        "participating_orgs",
        "transactions",
        "budgets",
        "results",
        "sources",
        "quarantine",
        "cd_priorities",
    ],
)
def test_harmonised_fixture_tables_pass_every_error_expectation(table: str) -> None:
    frame = harmonised()[table]
    validation = validate_frame(table, frame)
    assert validation.passed_errors, (validation.summary(), validation.examples()[:5])
    assert validation.n_rows == len(frame)
    assert all(o.error is None for o in validation.outcomes)


def test_harmonised_fixture_tables_pass_every_error_expectation_together() -> None:
    """With every table at hand, foreign keys and IATI versions (1.0x to 2.03) are judged."""
    validations = validate_frames(harmonised())
    for table, validation in validations.items():
        assert validation.passed_errors, (table, validation.summary(), validation.examples()[:5])
    transactions = validations["transactions"]
    assert transactions.outcome("transaction_type_for_version").success
    assert transactions.outcome("activity_exists").success
    derived = derived_frame("transactions", harmonised())
    assert derived["_activity_exists"].notna().all()  # judged, not skipped
    assert validations["quarantine"].outcome("source_exists").success


def test_ten_thousand_rows_validate_in_seconds() -> None:
    transactions = harmonised()["transactions"]
    assert len(transactions) > 10_000
    started = time.perf_counter()
    validate_frame("transactions", transactions)
    assert time.perf_counter() - started < 10


def _duplicate_activity_id(frame: pd.DataFrame) -> int:
    frame.loc[5, "activity_id"] = frame.loc[3, "activity_id"]
    return 5


def _null_is_cd(frame: pd.DataFrame) -> int:
    frame.loc[7, "is_cd"] = pd.NA
    return 7


def _share_above_one(frame: pd.DataFrame) -> int:
    row = _first(frame, frame["share"].notna())
    frame.loc[row, "share"] = 1.5
    return row


def _unknown_transaction_type(frame: pd.DataFrame) -> int:
    frame.loc[17, "transaction_type"] = "99"
    return 17


def _end_before_start(frame: pd.DataFrame) -> int:
    row = _first(frame, frame["start_date"].notna())
    frame.at[row, "end_date"] = frame.at[row, "start_date"] - dt.timedelta(days=1)
    return row


def _future_disbursement(frame: pd.DataFrame) -> int:
    row = _first(frame, frame["transaction_type"] == "3")
    frame.at[row, "transaction_date"] = TODAY + dt.timedelta(days=30)
    return row


def _rate_without_usd_value(frame: pd.DataFrame) -> int:
    row = _first(frame, frame["usd_rate"].notna())
    frame.loc[row, "value_usd"] = pd.NA
    return row


def _budget_period_reversed(frame: pd.DataFrame) -> int:
    row = _first(frame, frame["period_start"].notna())
    frame.at[row, "period_end"] = frame.at[row, "period_start"] - dt.timedelta(days=1)
    return row


def _target_before_baseline(frame: pd.DataFrame) -> int:
    row = _first(frame, frame["baseline_year"].notna())
    frame.loc[row, "target_year"] = frame.loc[row, "baseline_year"] - 1
    return row


#: Rules a break also fails, by the rule it is meant to break.
ALSO_FAILS: dict[str, set[str]] = {
    # One country's share of 1.5 also makes its activity's countries sum above 1 (the
    # countries with the regions are judged only when both tables are validated together).
    "minimum/maximum:share": {"country_shares_at_most_1"},
}


@cache
def _baseline_failures(table: str) -> frozenset[str]:
    """Rules failing on the unbroken real table (warnings: e.g. a USD 0.01 transaction)."""
    failed = validate_frame(table, harmonised()[table]).failed()
    assert all(o.severity == "warning" for o in failed), failed
    return frozenset(o.rule for o in failed)


@pytest.mark.parametrize(
    ("table", "breaker", "rule", "severity", "unexpected"),
    [
        # GX counts every occurrence of a duplicated key: the original and the copy.
        ("activities", _duplicate_activity_id, "primary_key:activity_id", "error", 2),
        ("activities", _null_is_cd, "required:is_cd", "error", 1),
        ("activity_countries", _share_above_one, "minimum/maximum:share", "error", 1),
        ("transactions", _unknown_transaction_type, "transaction_type_code", "error", 1),
        ("activities", _end_before_start, "activity_dates_ordered", "warning", 1),
        ("transactions", _future_disbursement, "no_future_disbursement", "warning", 1),
        ("transactions", _rate_without_usd_value, "value_usd_where_rate", "error", 1),
        ("budgets", _budget_period_reversed, "budget_period_ordered", "warning", 1),
        ("results", _target_before_baseline, "result_years_ordered", "warning", 1),
    ],
)
def test_a_broken_row_fails_its_rule_with_count_and_row(
    table: str,
    breaker: Callable[[pd.DataFrame], int],
    rule: str,
    severity: str,
    unexpected: int,
) -> None:
    frame = _copy(table)
    row = breaker(frame)
    validation = validate_frame(table, frame)
    outcome = validation.outcome(rule)
    assert not outcome.success
    assert outcome.severity == severity
    assert outcome.unexpected_count == unexpected
    assert row in {example.row for example in outcome.examples}
    assert row in outcome.rows
    # What else fails: what already failed on the real data, and rules the break implies.
    expected = sorted(_baseline_failures(table) | {rule} | ALSO_FAILS.get(rule, set()))
    assert sorted(o.rule for o in validation.failed()) == expected
    assert validation.passed_errors is (severity == "warning")
    summary = validation.summary()
    assert summary["by_severity"][severity]["failed"] == sum(
        validation.outcome(r).severity == severity for r in expected
    )
    assert summary["failed_rules"] == expected
    assert {e.rule for e in validation.examples()} == set(expected)


def test_examples_carry_the_failing_value() -> None:
    frame = _copy("transactions")
    _unknown_transaction_type(frame)
    row = _future_disbursement(frame)
    validation = validate_frame("transactions", frame)
    values = {(e.rule, e.row): e.value for e in validation.examples()}
    assert values[("transaction_type_code", 17)] == "99"
    assert values[("no_future_disbursement", row)] == (TODAY + dt.timedelta(days=30)).isoformat()


def test_the_callers_frame_keeps_its_date_objects() -> None:
    frame = _copy("activities")
    validate_frame("activities", frame)
    dates = frame["start_date"].dropna()
    assert isinstance(dates.iloc[0], dt.date)
    assert not isinstance(dates.iloc[0], pd.Timestamp)


def test_a_missing_column_fails_the_column_set_without_crashing() -> None:
    frame = _copy("activities").drop(columns=["is_cd"])
    validation = validate_frame("activities", frame)
    columns = validation.outcome("columns")
    assert not columns.success
    assert [e.value for e in columns.examples] == ["missing:is_cd"]
    assert validation.outcome("required:is_cd").error is not None
    assert not validation.passed_errors
