"""Rules across rows and tables (shares, IATI versions, outliers, foreign keys), their
serialisation and GX Data Docs, on hand-built frames with planted problems and on real data."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from assets.harmonise.schema import table_frame
from expectations.outcomes import Example, ExpectationOutcome, TableValidation
from expectations.runner import MAX_EXAMPLES
from expectations.suites import (
    OUTLIER_MIN_GROUP,
    TRANSACTION_TYPES_BY_VERSION,
    build_suite,
    derived_columns,
    version_class,
)
from tests.conftest import (
    IATI_FIXTURES,
    RATES,
    derived_frame,
    validate_frame,
    validate_frames,
)

TODAY = dt.date(2025, 6, 30)
PROVENANCE = {
    "source": "iati",
    "source_file": "f.xml",
    "source_sha256": "0" * 64,
    "source_ref": "/iati-activities/iati-activity[1]",
}


def _frame(table: str, records: list[dict[str, Any]], first_label: int = 0) -> pd.DataFrame:
    """A schema-shaped frame whose index starts at ``first_label`` (not 0: failing rows are
    reported by their position in the table, never by a frame's labels)."""
    frame = table_frame(table, [{**PROVENANCE, **record} for record in records])
    frame.index = pd.RangeIndex(first_label, first_label + len(frame))
    return frame


def _activities(versions: dict[str, str | None]) -> pd.DataFrame:
    return _frame(
        "activities",
        [
            {"activity_id": activity_id, "is_cd": True, "iati_version": version}
            for activity_id, version in versions.items()
        ],
    )


def _transactions(records: list[dict[str, Any]], first_label: int = 100) -> pd.DataFrame:
    return _frame(
        "transactions",
        [
            {"transaction_id": f"T{i}", "counts_toward_totals": True, **record}
            for i, record in enumerate(records)
        ],
        first_label,
    )


def _sectors(rows: list[tuple[str, str, str, float]]) -> pd.DataFrame:
    return _frame(
        "activity_sectors",
        [
            {"activity_id": a, "vocabulary": v, "code": c, "share": share, "share_basis": "even"}
            for a, v, c, share in rows
        ],
        first_label=10,
    )


def _countries(rows: list[tuple[str, str, float | None]]) -> pd.DataFrame:
    return _frame(
        "activity_countries",
        [
            {"activity_id": a, "country_code": c, "share": share, "share_basis": "activity"}
            for a, c, share in rows
        ],
        first_label=20,
    )


def _only_failures(validation: TableValidation) -> list[str]:
    return sorted(o.rule for o in validation.failed())


# -- shares ----------------------------------------------------------------------------------


def test_sector_shares_must_sum_to_one_per_activity_and_vocabulary() -> None:
    sectors = _sectors(
        [
            ("A", "1", "11110", 0.6),
            ("A", "1", "15110", 0.4),
            ("A", "2", "111", 1.0),  # another vocabulary: its own 100%
            ("B", "1", "11110", 0.5),
            ("B", "1", "15110", 0.2),  # B sums to 0.7
            ("C", "1", "11110", 1 / 3),
            ("C", "1", "15110", 1 / 3),
            ("C", "1", "15111", 1 / 3),  # float rounding is not a failure
        ]
    )
    validation = validate_frame("activity_sectors", sectors)
    outcome = validation.outcome("sector_shares_sum_to_1")
    assert not outcome.success
    assert outcome.severity == "error"
    # Every row of the failing activity fails, by row number (position in the table).
    assert outcome.rows == (3, 4)
    assert outcome.unexpected_count == 2
    assert [(e.row, e.value) for e in outcome.examples] == [(3, "0.7"), (4, "0.7")]
    assert _only_failures(validation) == ["sector_shares_sum_to_1"]
    assert sectors.iloc[list(outcome.rows)]["activity_id"].unique().tolist() == ["B"]

    clean = sectors[sectors["activity_id"] != "B"]
    assert validate_frame("activity_sectors", clean).passed


def test_country_shares_may_leave_room_for_regions_but_not_exceed_one() -> None:
    countries = _countries(
        [
            ("A", "AM", 0.6),
            ("A", "GE", 0.3),  # 0.9: the rest went to a region
            ("B", "AR", 0.8),
            ("B", "BR", 0.5),  # 1.3
            ("C", "KE", 1.0),
            ("D", "UG", None),  # no share: not judged
        ]
    )
    validation = validate_frame("activity_countries", countries)
    outcome = validation.outcome("country_shares_at_most_1")
    assert outcome.severity == "error"
    assert outcome.rows == (2, 3)
    assert _only_failures(validation) == ["country_shares_at_most_1"]
    assert validate_frame("activity_countries", countries.drop(index=[22, 23])).passed


def test_countries_and_regions_of_an_activity_sum_to_one_together() -> None:
    countries = _countries(
        [
            ("A", "AM", 0.6),  # 20: with its region, 1
            ("B", "AR", 0.8),  # 21: with its region, 1.3
            ("C", "KE", 0.5),  # 22: 0.5, and no region
        ]
    )
    regions = _frame(
        "activity_regions",
        [
            {
                "activity_id": a,
                "vocabulary": "1",
                "region_code": r,
                "share": share,
                "share_basis": "activity",
            }
            for a, r, share in [("A", "689", 0.4), ("B", "389", 0.5), ("D", "298", 1.0)]
        ],
        first_label=30,
    )
    validations = validate_frames(
        {"activity_countries": countries, "activity_regions": regions}, today=TODAY
    )
    outcome = validations["activity_countries"].outcome("recipient_shares_sum_to_1")
    assert outcome.severity == "error"
    assert outcome.rows == (1, 2)
    assert [e.value for e in outcome.examples] == ["1.3", "0.5"]
    assert validations["activity_regions"].outcome("recipient_shares_sum_to_1").rows == (1,)
    assert _only_failures(validations["activity_regions"]) == ["recipient_shares_sum_to_1"]
    # Alone, a table cannot tell what the other holds: the rule judges nothing.
    assert validate_frame("activity_countries", countries).passed
    assert validate_frame("activity_regions", regions).passed


# -- transaction types by IATI version -----------------------------------------------------


def test_version_classes() -> None:
    assert version_class("2.03") == "2.03"
    assert version_class(" 2.01 ") == "2.01"
    assert version_class("1.0") == version_class("1.05") == "1.0x"
    assert version_class("2.04") is None  # not known yet: not judged
    assert version_class("v2") is None
    assert version_class(None) is None
    assert TRANSACTION_TYPES_BY_VERSION["2.01"][-1] == "10"
    assert TRANSACTION_TYPES_BY_VERSION["2.02"][-1] == "11"
    assert TRANSACTION_TYPES_BY_VERSION["2.03"][-1] == "13"


def test_transaction_type_must_exist_in_the_activitys_iati_version() -> None:
    activities = _activities({"V201": "2.01", "V202": "2.02", "V203": "2.03", "V105": "1.05"})
    transactions = _transactions(
        [
            {"activity_id": "V201", "transaction_type": "12"},  # 100: pledge before 2.03
            {"activity_id": "V203", "transaction_type": "12"},  # 101: fine
            {"activity_id": "V201", "transaction_type": "11"},  # 102: 11 came with 2.02
            {"activity_id": "V202", "transaction_type": "11"},  # 103: fine
            {"activity_id": "V202", "transaction_type": "13"},  # 104: 13 came with 2.03
            {"activity_id": "V105", "transaction_type": "3"},  # 105: fine
            {"activity_id": "V201", "transaction_type": "99"},  # 106: another rule's business
            {"activity_id": "V201", "transaction_type": None},  # 107: not judged
        ]
    )
    validations = validate_frames(
        {"activities": activities, "transactions": transactions}, today=TODAY
    )
    outcome = validations["transactions"].outcome("transaction_type_for_version")
    assert outcome.severity == "warning"
    assert outcome.rows == (0, 2, 4)
    assert [e.value for e in outcome.examples] == ["12|2.01", "11|2.01", "13|2.02"]
    assert _only_failures(validations["transactions"]) == [
        "transaction_type_code",
        "transaction_type_for_version",
    ]
    assert validations["transactions"].outcome("transaction_type_code").rows == (6,)
    assert validations["activities"].passed

    # Alone, without activities, the version is unknown: the rule judges nothing.
    alone = validate_frame("transactions", transactions, TODAY)
    assert alone.outcome("transaction_type_for_version").success
    assert _only_failures(alone) == ["transaction_type_code"]


# -- plausible magnitudes ------------------------------------------------------------------


def _normal_values(n: int) -> list[float]:
    """Values between about 10**4 and 10**6, as one publisher's amounts would be."""
    return [10 ** (4 + 2 * i / (n - 1)) for i in range(n)]


@pytest.mark.parametrize("table", ["transactions", "budgets"])
def test_a_planted_huge_value_is_an_outlier_for_its_currency(table: str) -> None:
    values = _normal_values(30)
    records: list[dict[str, Any]] = [{"value": v, "currency": "USD"} for v in values]
    records += [
        {"value": 1e12, "currency": "USD"},  # 30: the planted one
        {"value": 250_000.0, "currency": "USD"},  # 31: a normal one
        {"value": 0.0, "currency": "USD"},  # 32: zero is not an outlier
        {"value": -50_000.0, "currency": "USD"},  # 33: a negative (reversal) of normal size
        {"value": 0.01, "currency": "USD"},  # 34: tiny corrections are not too large
        {"value": -1e12, "currency": "USD"},  # 35: a huge reversal is as implausible
        {"value": 1e12, "currency": "EUR"},  # 36: too few EUR values to judge
        {"value": None, "currency": "USD"},  # 37: no value
    ]
    key = "transaction_id" if table == "transactions" else "budget_id"
    frame = _frame(
        table,
        [
            {key: f"K{i}", "activity_id": "A", "counts_toward_totals": True, **record}
            if table == "transactions"
            else {key: f"K{i}", "activity_id": "A", **record}
            for i, record in enumerate(records)
        ],
        first_label=1000,
    )
    validation = validate_frame(table, frame, TODAY)
    outcome = validation.outcome("value_outlier_for_currency")
    assert outcome.severity == "warning"
    assert not outcome.success
    assert outcome.rows == (30, 35)
    # The example shows the row's own currency and value, not the derived score.
    assert [e.value for e in outcome.examples] == ["USD|1000000000000.0", "USD|-1000000000000.0"]
    assert _only_failures(validation) == ["value_outlier_for_currency"]
    assert validation.passed_errors

    normal = validate_frame(table, frame.drop(index=[1030, 1035]), TODAY)
    assert normal.outcome("value_outlier_for_currency").success


def test_a_small_currency_group_is_not_judged() -> None:
    records = [{"activity_id": "A", "value": v, "currency": "GBP"} for v in _normal_values(5)]
    records.append({"activity_id": "A", "value": 1e15, "currency": "GBP"})
    assert len(records) < OUTLIER_MIN_GROUP
    validation = validate_frame("transactions", _transactions(records), TODAY)
    assert validation.outcome("value_outlier_for_currency").success


# -- referential integrity -----------------------------------------------------------------


def test_a_transaction_of_an_unknown_activity_fails_activity_exists() -> None:
    activities = _activities({"A": "2.03", "B": "2.03"})
    transactions = _transactions(
        [
            {"activity_id": "A", "transaction_type": "3"},
            {"activity_id": "GHOST", "transaction_type": "3"},  # 101
            {"activity_id": "B", "transaction_type": "3"},
        ]
    )
    results = _frame(
        "results",
        [
            {"result_id": "R1", "activity_id": "A"},
            {"result_id": "R2", "activity_id": None},  # a country report's result: no activity
            {"result_id": "R3", "activity_id": "NOPE"},  # 502
        ],
        first_label=500,
    )
    validations = validate_frames(
        {"activities": activities, "transactions": transactions, "results": results}, TODAY
    )
    outcome = validations["transactions"].outcome("activity_exists")
    assert outcome.severity == "error"
    assert outcome.rows == (1,)
    assert [e.value for e in outcome.examples] == ["GHOST"]
    assert not validations["transactions"].passed_errors
    assert validations["results"].outcome("activity_exists").rows == (2,)
    assert _only_failures(validations["results"]) == ["activity_exists"]
    assert validations["activities"].passed

    # Without activities there is nothing to check against: not judged.
    assert validate_frame("transactions", transactions, TODAY).outcome("activity_exists").success
    # With every activity present, it passes.
    fixed = transactions.drop(index=101)
    assert validate_frames({"activities": activities, "transactions": fixed}, TODAY)[
        "transactions"
    ].passed


# -- every record accounted for --------------------------------------------------------------


def test_a_source_whose_records_do_not_add_up_fails_records_accounted_for() -> None:
    def source(name: str, counts: tuple[int | None, int | None, int | None]) -> dict[str, Any]:
        n_records, n_accepted, n_quarantined = counts
        return {
            "source_file": name,
            "source": "iati",
            "status": "partial",
            "n_records": n_records,
            "n_accepted": n_accepted,
            "n_quarantined": n_quarantined,
        }

    sources = table_frame(
        "sources",
        [
            source("ok.xml", (10, 8, 2)),
            source("lost.xml", (10, 7, 2)),  # one record neither accepted nor quarantined
            source("twice.xml", (3, 3, 1)),  # one record counted twice
            source("unknown.xml", (None, None, None)),  # not judged
        ],
    )
    sources.index = pd.RangeIndex(40, 44)
    validation = validate_frame("sources", sources, TODAY)
    outcome = validation.outcome("records_accounted_for")
    assert outcome.severity == "error"
    assert outcome.rows == (1, 2)
    # Shown as the source's own counts (n_records|n_accepted|n_quarantined).
    assert [e.value for e in outcome.examples] == ["10|7|2", "3|3|1"]
    assert _only_failures(validation) == ["records_accounted_for"]
    assert validate_frame("sources", sources.drop(index=[41, 42]), TODAY).passed


def _rules(table: str) -> dict[str, str]:
    return {e.meta["rule"]: e.meta["severity"] for e in build_suite(table).expectations if e.meta}


def test_every_foreign_key_of_the_schema_is_an_expectation() -> None:
    rules = _rules("transactions")
    assert rules["activity_exists"] == "error"
    assert rules["transaction_type_for_version"] == "warning"
    assert rules["value_outlier_for_currency"] == "warning"
    assert _rules("activity_sectors")["sector_shares_sum_to_1"] == "error"
    assert _rules("activity_countries")["country_shares_at_most_1"] == "error"
    assert {"activity_exists:activity_id_a", "activity_exists:activity_id_b"} <= set(
        _rules("duplication_pairs")
    )
    assert _rules("quarantine")["source_exists"] == "error"
    assert {"activity_exists", "cd_priority_exists"} <= set(_rules("alignment_links"))
    # Warning rules carry GX's own severity too (shown in Data Docs).
    suite = build_suite("budgets")
    warnings = [e for e in suite.expectations if e.meta and e.meta["severity"] == "warning"]
    assert warnings
    assert all(e.severity.value == "warning" for e in warnings)


def test_rows_are_complete_while_examples_are_capped() -> None:
    activities = _activities({"A": "2.03"})
    transactions = _transactions(
        [{"activity_id": f"GONE{i}", "transaction_type": "3"} for i in range(250)]
    )
    validations = validate_frames({"activities": activities, "transactions": transactions}, TODAY)
    outcome = validations["transactions"].outcome("activity_exists")
    assert outcome.unexpected_count == 250
    assert outcome.rows == tuple(range(250))
    assert len(outcome.examples) == MAX_EXAMPLES
    assert transactions.iloc[list(outcome.rows)]["source_file"].eq("f.xml").all()


# -- the column set and tables without a suite ---------------------------------------------


def test_the_column_set_judges_the_tables_own_columns() -> None:
    transactions = _transactions([{"activity_id": "A", "transaction_type": "3"}])
    assert set(derived_columns("transactions")) == {
        "_type_and_version",
        "_value_outlier_score",
        "_activity_exists",
    }
    validation = validate_frame("transactions", transactions.drop(columns=["currency"]), TODAY)
    columns = validation.outcome("columns")
    assert not columns.success
    assert [e.value for e in columns.examples] == ["missing:currency"]

    extra = transactions.assign(surprise=1)
    columns = validate_frame("transactions", extra, TODAY).outcome("columns")
    assert [e.value for e in columns.examples] == ["unexpected:surprise"]
    assert "_type_and_version" not in transactions.columns  # the caller's frame is untouched


def test_tables_without_a_suite_are_left_out() -> None:
    validations = validate_frames(
        {"activities": _activities({"A": "2.03"}), "scratch": pd.DataFrame({"x": [1]})}, TODAY
    )
    assert list(validations) == ["activities"]
    with pytest.raises(KeyError, match="scratch"):
        validate_frame("scratch", pd.DataFrame({"x": [1]}))


# -- serialisation -------------------------------------------------------------------------


def test_a_validation_round_trips_through_json_exactly() -> None:
    activities = _activities({"A": "2.01"})
    transactions = _transactions(
        [
            {"activity_id": "A", "transaction_type": "12"},
            {"activity_id": "GHOST", "transaction_type": "3", "currency": "usd"},
        ]
    )
    validation = validate_frames({"activities": activities, "transactions": transactions}, TODAY)[
        "transactions"
    ]
    assert validation.failed()
    handmade = TableValidation(
        "activities",
        3,
        [
            ExpectationOutcome(
                "columns",
                "error",
                "expect_table_columns_to_match_set",
                False,
                None,
                1,
                (Example("activities", "columns", "error", None, "missing:is_cd"),),
            ),
            ExpectationOutcome(
                "required:is_cd", "error", "expect_column_values_to_not_be_null", False, None,
                None, error="column is_cd not found",
            ),
        ],
    )  # fmt: skip
    for original in (validation, handmade):
        text = json.dumps(original.to_dict())
        restored = TableValidation.from_dict(json.loads(text))
        assert restored == original
        assert restored.summary() == original.summary()
        assert restored.to_dict() == original.to_dict()


# -- Data Docs -----------------------------------------------------------------------------


def _pages(directory: Path, kind: str) -> list[Path]:
    return sorted((directory / kind).rglob("*.html"))


def test_data_docs_show_the_suites_with_their_results(tmp_path: Path) -> None:
    activities = _activities({"A": "2.03"})
    transactions = _transactions(
        [
            {"activity_id": "A", "transaction_type": "3"},
            {"activity_id": "GHOST", "transaction_type": "3"},
        ]
    )
    first = tmp_path / "first"
    with_docs = validate_frames(
        {"activities": activities, "transactions": transactions}, TODAY, data_docs_dir=first
    )
    without = validate_frames({"activities": activities, "transactions": transactions}, TODAY)
    assert {t: v.to_dict() for t, v in with_docs.items()} == {
        t: v.to_dict() for t, v in without.items()
    }

    index = (first / "index.html").read_text(encoding="utf-8")
    assert "cdcompact.transactions" in index
    assert "cdcompact.activities" in index
    validations = _pages(first, "validations")
    assert len(validations) == 2
    (page,) = [p for p in validations if "transactions" in p.parts]
    html = page.read_text(encoding="utf-8")
    text = " ".join(re.sub(r"<[^>]+>", " ", html).split())
    assert "Expectation Suite: cdcompact.transactions" in text
    assert "Unsuccessful Expectations 1" in text
    # The failed expectation: its column's section marks it failed, with its count.
    failed = re.search(
        r"<h5[^>]*>\s*_activity_exists\s*</h5>(.*?)values must belong to this set", html, re.S
    )
    assert failed is not None
    assert "fa-times text-danger" in failed.group(1)
    assert "1 unexpected values found" in text
    assert {p.stem for p in _pages(first, "expectations")} == {"activities", "transactions"}

    # Again, elsewhere: a site of that call's results only.
    budgets = _frame("budgets", [{"budget_id": "B1", "activity_id": "A", "value": 10.0}])
    second = tmp_path / "second"
    validate_frames({"budgets": budgets}, TODAY, data_docs_dir=second)
    assert "cdcompact.budgets" in (second / "index.html").read_text(encoding="utf-8")
    assert "cdcompact.transactions" not in (second / "index.html").read_text(encoding="utf-8")
    assert len(_pages(second, "validations")) == 1
    assert len(_pages(first, "validations")) == 2
    # The process's own context still validates.
    assert validate_frame("budgets", budgets, TODAY).passed


def test_validations_and_data_docs_run_side_by_side_in_threads(tmp_path: Path) -> None:
    activities = _activities({"A": "2.03"})
    transactions = _transactions([{"activity_id": "B", "transaction_type": "3"}])
    tables = {"activities": activities, "transactions": transactions}
    outcomes: dict[int, bool] = {}
    failures: list[BaseException] = []

    def work(i: int) -> None:
        try:
            docs = tmp_path / f"docs{i}" if i % 2 else None
            result = validate_frames(tables, TODAY, data_docs_dir=docs)
            outcomes[i] = result["transactions"].outcome("activity_exists").success
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert outcomes == {0: False, 1: False, 2: False, 3: False}
    assert (tmp_path / "docs1" / "index.html").is_file()
    assert (tmp_path / "docs3" / "index.html").is_file()


# -- real harmonised data ------------------------------------------------------------------


@cache
def _real_tables() -> dict[str, pd.DataFrame]:
    from assets.iati.harmonise import HarmoniseOptions, harmonise_paths
    from assets.iati.rates import load_exchange_rates
    from assets.settings import load_settings

    options = HarmoniseOptions(
        rules=load_settings().cd_rules,
        rates=load_exchange_rates([RATES / "imf-monthly-subset.csv"]),
    )
    _, tables = harmonise_paths(
        [
            IATI_FIXTURES / "valid" / "iati-activities-am-armenia.xml",
            IATI_FIXTURES / "valid" / "who-arg.xml",
        ],
        options,
    )
    return tables


def test_real_harmonised_data_passes_every_error_expectation() -> None:
    tables = _real_tables()
    validations = validate_frames(tables)
    assert set(validations) == {t for t in tables if t in validations}
    assert {"activities", "transactions", "activity_sectors", "activity_countries"} <= set(
        validations
    )
    for table, validation in validations.items():
        assert validation.passed_errors, (table, validation.summary(), validation.examples()[:5])
        assert all(o.error is None for o in validation.outcomes), table
    # The rules across tables were judged, not skipped.
    transactions = validations["transactions"]
    assert transactions.outcome("activity_exists").success
    derived = derived_frame("transactions", tables)
    assert derived["_activity_exists"].notna().all()
    assert derived["_type_and_version"].str.endswith("|2.03").all()
    assert transactions.outcome("transaction_type_for_version").success
    assert validations["activity_sectors"].outcome("sector_shares_sum_to_1").success
    assert validations["activity_countries"].outcome("country_shares_at_most_1").success
    assert validations["sources"].outcome("records_accounted_for").success
    # Not even a warning: real valid data has plausible magnitudes, types for its version.
    for table, validation in validations.items():
        assert validation.passed, (table, validation.summary(), validation.examples()[:5])
