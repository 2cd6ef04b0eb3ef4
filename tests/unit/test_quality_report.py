"""The data-quality report (docs/quality-report.md) on a small compact with hand-computed figures.

The compact: two IATI publishers (the Asian Development Bank, with a partly
accepted file, a schema error and a codelist warning, plus a rejected file that
could not be read; WHO, clean but late), one country report (Kenya) and one
partner submission (GB-GOV-1). Every figure asserted below is counted by hand
from the rows built here.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from assets.harmonise.schema import table_frame
from assets.harmonise.store import write_tables
from assets.warehouse import attach_tables, register_frames, set_up
from expectations.outcomes import Example, ExpectationOutcome, TableValidation
from expectations.quality import (
    FREQUENCIES,
    build_quality_report,
    contributor_slug,
    freshness_state,
    history_entry,
)
from tests.conftest import CODELISTS, IATI_FIXTURES, IATI_SCHEMAS, RATES

AS_OF = dt.date(2026, 6, 30)
GENERATED = dt.datetime(2026, 6, 30, 6, 40, tzinfo=dt.UTC)
FRESHNESS = {"publisher": "quarterly", "country": "annually", "partner": "semiannually"}

ADB, WHO, KE, GB = (
    "publisher:XM-DAC-46004",
    "publisher:XM-DAC-928",
    "country:KE",
    "partner:GB-GOV-1",
)
ADB_FILE, BROKEN, WHO_FILE = "adb.xml", "adb-broken.xml", "who.xml"
COUNTRY_FILE, PARTNER_FILE = "sub-aaa-country.xlsx", "sub-bbb-partner.xlsx"


def _prov(source: str, source_file: str, ref: str) -> dict[str, Any]:
    return {
        "source": source,
        "source_file": source_file,
        "source_sha256": "0" * 64,
        "source_ref": ref,
    }


def _iati(source_file: str, n: int) -> dict[str, Any]:
    return _prov("iati", source_file, f"/iati-activities/iati-activity[{n}]")


def _activity(
    activity_id: str,
    ref: str | None,
    name: str | None,
    *,
    status: str | None,
    end: str | None,
    is_cd: bool,
    updated: str | None,
    prov: dict[str, Any],
) -> dict[str, Any]:
    return {
        "activity_id": activity_id,
        "reporting_org_ref": ref,
        "reporting_org_name": name,
        "activity_status": status,
        "end_date": end,
        "is_cd": is_cd,
        "last_updated": updated,
        "iati_version": "2.03" if prov["source"] == "iati" else None,
        **prov,
    }


def _compact() -> dict[str, pd.DataFrame]:
    partner = _prov("partner_submission", PARTNER_FILE, "sheet activities, row 2")
    activities = [
        _activity(
            "XM-DAC-46004-A1",
            "XM-DAC-46004",
            "Asian Development Bank",
            status="2",
            end="2027-12-31",
            is_cd=True,
            updated="2026-04-01T08:00:00Z",
            prov=_iati(ADB_FILE, 1),
        ),
        _activity(
            "XM-DAC-46004-A2",
            "XM-DAC-46004",
            "Asian Development Bank",
            status="3",  # finalised: not current
            end="2025-06-30",
            is_cd=False,
            updated="2026-03-01T00:00:00Z",
            prov=_iati(ADB_FILE, 2),
        ),
        _activity(
            "XM-DAC-46004-A3",
            "XM-DAC-46004",
            "ADB",
            status=None,  # no status, no end: current
            end=None,
            is_cd=True,
            updated="2026-02-01T00:00:00Z",
            prov=_iati(ADB_FILE, 3),
        ),
        _activity(
            "XM-DAC-928-W1",
            "XM-DAC-928",
            "World Health Organization",
            status="2",
            end="2026-01-01",  # not before the start of the year: current
            is_cd=True,
            updated="2026-01-31T23:00:00Z",
            prov=_iati(WHO_FILE, 1),
        ),
        _activity(
            "XM-DAC-928-W2",
            "XM-DAC-928",
            "World Health Organization",
            status="1",
            end="2025-12-31",  # ended before the year: not current
            is_cd=False,
            updated="2026-01-01T00:00:00Z",
            prov=_iati(WHO_FILE, 2),
        ),
        _activity(
            "GB-GOV-1:P1",
            "GB-GOV-1",
            None,
            status=None,
            end="2027-12-31",
            is_cd=True,
            updated=None,
            prov=partner,
        ),
    ]
    sectors = [
        {"activity_id": a, "vocabulary": "1", "code": "15110", **_iati(f, 1)}
        for a, f in (
            ("XM-DAC-46004-A1", ADB_FILE),
            ("XM-DAC-46004-A2", ADB_FILE),
            ("XM-DAC-928-W1", WHO_FILE),
            ("XM-DAC-928-W2", WHO_FILE),
        )
    ]
    countries = [
        {"activity_id": a, "country_code": "KE", "share": 1.0, **prov}
        for a, prov in (
            ("XM-DAC-46004-A1", _iati(ADB_FILE, 1)),
            ("XM-DAC-928-W1", _iati(WHO_FILE, 1)),
            ("XM-DAC-928-W2", _iati(WHO_FILE, 2)),
            ("GB-GOV-1:P1", partner),
        )
    ]
    transactions = [
        {
            "transaction_id": "t1",
            "activity_id": "XM-DAC-46004-A1",
            "transaction_type": "1",
            "value_date": "2026-01-15",
            "value_usd": 1000.0,
            "provider_activity_id": "XM-DAC-41301-X",
            **_iati(ADB_FILE, 1),
        },
        {
            "transaction_id": "t2",
            "activity_id": "XM-DAC-46004-A1",
            "transaction_type": "11",
            "value_usd": 3000.0,
            **_iati(ADB_FILE, 1),
        },
        {
            "transaction_id": "t3",
            "activity_id": "XM-DAC-46004-A1",
            "transaction_type": "3",
            "value_date": "2026-02-01",
            **_iati(ADB_FILE, 1),
        },
        {
            "transaction_id": "t4",
            "activity_id": "XM-DAC-928-W1",
            "transaction_type": "3",
            "value_date": "2026-02-01",
            "value_usd": 50.0,
            **_iati(WHO_FILE, 1),
        },
        {
            "transaction_id": "t5",
            "activity_id": "GB-GOV-1:P1",
            "transaction_type": "3",
            "value_date": "2026-12-31",
            "value_usd": 100.0,
            **partner,
        },
    ]

    def budget(
        budget_id: str, activity: str, kind: str, start: str, end: str, usd: float, prov: Any
    ) -> dict[str, Any]:
        return {
            "budget_id": budget_id,
            "activity_id": activity,
            "budget_type": kind,
            "period_start": start,
            "period_end": end,
            "value_usd": usd,
            **prov,
        }

    budgets = [
        budget("b1", "XM-DAC-46004-A1", "1", "2026-01-01", "2026-12-31", 1000, _iati(ADB_FILE, 1)),
        budget("b2", "XM-DAC-46004-A1", "2", "2026-01-01", "2026-12-31", 1200, _iati(ADB_FILE, 1)),
        budget("b3", "XM-DAC-46004-A1", "1", "2027-01-01", "2027-12-31", 500, _iati(ADB_FILE, 1)),
        budget("b4", "XM-DAC-46004-A3", "1", "2026-07-01", "2027-06-30", 365, _iati(ADB_FILE, 3)),
        budget("b5", "XM-DAC-46004-A2", "1", "2026-01-01", "2026-12-31", 9999, _iati(ADB_FILE, 2)),
        budget("b6", "XM-DAC-928-W1", "1", "2027-01-01", "2027-12-31", 10, _iati(WHO_FILE, 1)),
        budget("b7", "GB-GOV-1:P1", "", "2026-01-01", "2027-12-31", 730, partner),
    ]
    results = [
        {
            "result_id": "r1",
            "activity_id": "XM-DAC-46004-A1",
            "baseline_value": 1.0,
            "target_value": 2.0,
            **_iati(ADB_FILE, 1),
        },
        {
            "result_id": "r2",
            "activity_id": "XM-DAC-46004-A3",
            "baseline_value": 1.0,
            **_iati(ADB_FILE, 3),
        },
        {
            "result_id": "r3",
            "activity_id": "GB-GOV-1:P1",
            "country_code": "KE",
            "baseline_value": 0.0,
            "target_value": 5.0,
            **_prov("partner_submission", PARTNER_FILE, "sheet results, row 2"),
        },
        {
            "result_id": "r4",
            "country_code": "KE",
            "baseline_value": 10.0,
            **_prov("country_report", COUNTRY_FILE, "sheet results, row 2"),
        },
    ]
    priorities = [
        {
            "country_code": "KE",
            "priority_id": p,
            **_prov("country_report", COUNTRY_FILE, f"sheet cd_priorities, row {n}"),
        }
        for n, p in ((2, "KE-P1"), (3, "KE-P2"))
    ]
    declarations = [
        {
            "activity_id": a,
            "partner_org_ref": "GB-GOV-1",
            "period": "2026",
            **_prov("partner_submission", PARTNER_FILE, f"sheet declarations, row {n}"),
        }
        for n, a in ((2, "GB-GOV-1:P1"), (3, "XM-DAC-46004-A1"))
    ]

    def source(
        name: str, kind: str, status: str, counts: tuple[int, int, int], fetched: str | None
    ) -> dict[str, Any]:
        reason = {
            "partial": "some records not accepted (see quarantine)",
            "rejected": "the XML is not well-formed: unexpected end of file (line 7)",
        }.get(status)
        return {
            "source_file": name,
            "source": kind,
            "uri": f"https://example.org/{name}",
            "fetched_at": fetched,
            "status": status,
            "reason": reason,
            "n_records": counts[0],
            "n_accepted": counts[1],
            "n_quarantined": counts[2],
        }

    sources = [
        source(ADB_FILE, "iati", "partial", (4, 3, 1), "2026-06-01T00:00:00Z"),
        source(BROKEN, "iati", "rejected", (0, 0, 0), "2026-06-01T00:00:00Z"),
        source(WHO_FILE, "iati", "ok", (2, 2, 0), "2026-05-01T00:00:00Z"),
        source(COUNTRY_FILE, "country_report", "ok", (3, 3, 0), "2025-06-30T12:00:00Z"),
        source(PARTNER_FILE, "partner_submission", "partial", (5, 4, 1), "2026-06-20T00:00:00Z"),
    ]

    def quarantined(
        name: str, ref: str, table: str, rule: str, message: str, severity: str
    ) -> dict[str, Any]:
        return {
            "source_file": name,
            "source_ref": ref,
            "table": table,
            "rule": rule,
            "value": None,
            "message": message,
            "severity": severity,
        }

    quarantine = [
        quarantined(
            ADB_FILE,
            "/iati-activities/iati-activity[4]",
            "activities",
            "missing_identifier",
            "the activity has no iati-identifier",
            "error",
        ),
        quarantined(
            ADB_FILE,
            "/iati-activities/iati-activity[1]/transaction[3]",
            "transactions",
            "no_exchange_rate",
            "no USD rate for XDR in 2026-02",
            "warning",
        ),
        quarantined(BROKEN, "line 7", "sources", "not_well_formed", "file rejected", "error"),
        quarantined(
            PARTNER_FILE,
            "sheet declarations, row 4",
            "partner_declarations",
            "unknown_activity",
            "activity X9 is not in the activities sheet",
            "error",
        ),
    ]

    def finding(
        name: str, check: str, line: int | None, rule: str, message: str, severity: str, **more: Any
    ) -> dict[str, Any]:
        return {
            "source_file": name,
            "check": check,
            "schema_version": "2.03",
            "line": line,
            "rule": rule,
            "message": message,
            "severity": severity,
            **more,
        }

    conformance = [
        finding(
            ADB_FILE,
            "codelist",
            40,
            "codelist:Sector",
            'sector code "99999" is not in the IATI Sector codelist (2.03)',
            "warning",
            activity_id="XM-DAC-46004-A3",
            value="99999",
        ),
        finding(
            ADB_FILE,
            "xsd",
            12,
            "xsd:SCHEMAV_ELEMENT_CONTENT",
            "Element 'budget': This element is not expected.",
            "error",
            activity_id="XM-DAC-46004-A1",
            path="/iati-activities/iati-activity[1]/budget[1]",
        ),
        finding(
            BROKEN,
            "xsd",
            None,
            "xsd:not_checked",
            "the file could not be checked: not well-formed",
            "warning",
        ),
    ]
    return {
        "activities": table_frame("activities", activities),
        "activity_countries": table_frame("activity_countries", countries),
        # A2 goes to a region: it has a recipient, though no country
        "activity_regions": table_frame(
            "activity_regions",
            [
                {
                    "activity_id": "XM-DAC-46004-A2",
                    "vocabulary": "1",
                    "region_code": "789",
                    "share": 1.0,
                    "share_basis": "activity",
                    **_iati(ADB_FILE, 2),
                }
            ],
        ),
        "activity_sectors": table_frame("activity_sectors", sectors),
        "participating_orgs": table_frame("participating_orgs", []),
        "transactions": table_frame("transactions", transactions),
        "budgets": table_frame("budgets", budgets),
        "results": table_frame("results", results),
        "cd_priorities": table_frame("cd_priorities", priorities),
        "partner_declarations": table_frame("partner_declarations", declarations),
        "sources": table_frame("sources", sources),
        "quarantine": table_frame("quarantine", quarantine),
        "conformance": table_frame("conformance", conformance),
        "alignment_metrics": table_frame(
            "alignment_metrics",
            [{"country_code": "ke", "year": 2026, "metric": "cd_share", "value": 1.5}],
        ),
    }


def _label(frame: pd.DataFrame, column: str, value: str) -> int:
    return int(frame.index[frame[column] == value][0])


def _outcome(
    table: str, rule: str, severity: str, rows: list[int], values: list[str | None]
) -> ExpectationOutcome:
    return ExpectationOutcome(
        rule=rule,
        severity=severity,
        expectation_type="expect_something",
        success=False,
        element_count=None,
        unexpected_count=len(rows),
        examples=tuple(
            Example(table, rule, severity, row, value)
            for row, value in zip(rows, values, strict=True)
        ),
        rows=tuple(rows),
    )


def _validations(tables: Mapping[str, pd.DataFrame]) -> dict[str, TableValidation]:
    transactions = tables["transactions"]
    activities = tables["activities"]
    passed = ExpectationOutcome("required:transaction_id", "error", "x", True, 5, 0)
    return {
        "transactions": TableValidation(
            "transactions",
            len(transactions),
            [
                passed,
                _outcome(
                    "transactions",
                    "value_usd_where_rate",
                    "error",
                    [_label(transactions, "transaction_id", t) for t in ("t3", "t5")],
                    [None, None],
                ),
            ],
        ),
        "activities": TableValidation(
            "activities",
            len(activities),
            [
                _outcome(
                    "activities",
                    "end_after_start",
                    "warning",
                    [_label(activities, "activity_id", "XM-DAC-928-W1")],
                    ["2026-01-01"],
                )
            ],
        ),
        "alignment_metrics": TableValidation(
            "alignment_metrics",
            1,
            [_outcome("alignment_metrics", "maximum:value", "error", [0], ["1.5"])],
        ),
    }


def _report(tables: Mapping[str, pd.DataFrame], **arguments: Any) -> dict[str, Any]:
    """The report of the frames, as views of a DuckDB connection with their row numbers."""
    with duckdb.connect() as con:
        register_frames(con, tables)
        return build_quality_report(con, list(tables), **arguments)


def _build(tables: Mapping[str, pd.DataFrame] | None = None, **options: Any) -> dict[str, Any]:
    tables = tables if tables is not None else _compact()
    arguments: dict[str, Any] = {
        "validations": _validations(tables),
        "as_of": AS_OF,
        "generated_at": GENERATED,
        "freshness": FRESHNESS,
        "release": "2026.06.30",
        "run_id": "run-1",
        **options,
    }
    return _report(tables, **arguments)


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return _build()


def _contributor(report: Mapping[str, Any], who: str) -> dict[str, Any]:
    return next(c for c in report["contributors"] if c["id"] == who)


def _figures(report: Mapping[str, Any], who: str) -> dict[str, Any]:
    return _contributor(report, who)["figures"]


# -- contributors and validity ------------------------------------------------------------------


def test_a_partner_is_named_as_the_releases_organisations_table_names_it() -> None:
    """In a release, the organisations table (issue 23) names a partner that the run's
    own report, made without it, shows by its identifier."""
    tables = dict(_compact())
    tables["organisations"] = table_frame(
        "organisations", [{"org_ref": "GB-GOV-1", "name": "UK Government", "org_type": "10"}]
    )
    assert _contributor(_build(tables), GB)["name"] == "UK Government"


def test_a_country_is_named_as_the_releases_countries_table_names_it() -> None:
    tables = dict(_compact())
    tables["countries"] = table_frame(
        "countries", [{"code": "KE", "name_en": "Kenya (IATI codelist)", "in_codelist": True}]
    )
    assert _contributor(_build(tables), KE)["name"] == "Kenya (IATI codelist)"


def test_contributors_are_attributed_named_and_sorted(report: dict[str, Any]) -> None:
    assert [c["id"] for c in report["contributors"]] == [KE, GB, ADB, WHO]
    adb = _contributor(report, ADB)
    assert adb["kind"] == "publisher"
    assert adb["ref"] == "XM-DAC-46004"
    assert adb["name"] == "Asian Development Bank"  # the most frequent name (2 of 3)
    assert adb["slug"] == "publisher-xm-dac-46004"
    assert adb["files"] == [ADB_FILE]  # the rejected file holds no row of anyone's
    assert _contributor(report, KE)["name"] == "Kenya"  # CLDR's name, as no release names it yet
    assert _contributor(report, KE)["files"] == [COUNTRY_FILE]
    assert _contributor(report, GB)["name"] == "GB-GOV-1"
    assert _contributor(report, GB)["files"] == [PARTNER_FILE]
    assert _contributor(report, WHO)["name"] == "World Health Organization"


def test_validity_and_states(report: dict[str, Any]) -> None:
    adb = _figures(report, ADB)["validity"]
    assert adb == {
        "files": 1,
        "files_ok": 0,
        "files_partial": 1,
        "files_rejected": 0,
        "files_unchanged": 0,
        "files_stale": 0,
        "records": 4,
        "records_accepted": 3,
        "records_quarantined": 1,
        "warnings": 1,
        "schema_checked_files": 1,
        "schema_valid_files": 0,
        "schema_errors": 1,
        "schema_warnings": 0,
        "codelist_errors": 0,
        "codelist_warnings": 1,
        "expectation_errors": 1,  # t3
        "expectation_warnings": 0,
        "state": "invalid",
    }
    who = _figures(report, WHO)["validity"]
    assert (who["schema_checked_files"], who["schema_valid_files"]) == (1, 1)
    assert (who["expectation_errors"], who["expectation_warnings"]) == (0, 1)
    assert who["state"] == "valid"  # a failed warning-level expectation is allowed
    assert _figures(report, KE)["validity"]["state"] == "valid"
    assert _figures(report, KE)["validity"]["schema_checked_files"] == 0  # not IATI
    partner = _figures(report, GB)["validity"]
    assert (partner["records_quarantined"], partner["expectation_errors"]) == (1, 1)
    assert partner["state"] == "invalid"
    overall = report["overall"]["validity"]
    assert (overall["files"], overall["files_ok"], overall["files_partial"]) == (5, 2, 2)
    assert overall["files_rejected"] == 1
    assert (overall["records"], overall["records_accepted"]) == (14, 12)
    assert overall["records_quarantined"] == 2
    # adb.xml and who.xml checked; adb-broken.xml could not be (xsd:not_checked)
    assert (overall["schema_checked_files"], overall["schema_valid_files"]) == (2, 1)
    assert (overall["schema_errors"], overall["codelist_warnings"]) == (1, 1)
    # t3, t5 and the metrics row (a table without source_file: overall only)
    assert (overall["expectation_errors"], overall["expectation_warnings"]) == (3, 1)
    assert overall["state"] == "invalid"


def test_a_contributor_whose_every_file_was_rejected_is_rejected() -> None:
    tables = _compact()
    sources = tables["sources"].copy()
    sources.loc[sources["source_file"] == PARTNER_FILE, "status"] = "rejected"
    tables["sources"] = sources
    report = _build(tables, validations=None)
    assert _figures(report, GB)["validity"]["state"] == "rejected"
    assert _figures(report, WHO)["validity"]["state"] == "valid"
    assert _figures(report, WHO)["validity"]["expectation_warnings"] == 0
    assert "expectations" not in report["tables"]["transactions"]


# -- completeness, freshness, forward budgets, traceability --------------------------------------


def _shares(figures: Mapping[str, Any]) -> dict[str, tuple[int, int, float | None]]:
    return {
        name: (item["numerator"], item["denominator"], item["share"])
        for name, item in figures["completeness"].items()
    }


def test_completeness(report: dict[str, Any]) -> None:
    assert _shares(_figures(report, ADB)) == {
        "activities_with_sector": (2, 3, 2 / 3),
        "activities_with_recipient": (2, 3, 2 / 3),  # A1's country, A2's region
        "cd_activities_with_declaration": (1, 2, 0.5),  # A1 (declared by GB-GOV-1)
        "cd_activities_with_results": (1, 2, 0.5),  # A1; A3's result has no target
        "results_with_baseline_and_target": (1, 2, 0.5),
        "transactions_with_value_date": (2, 3, 2 / 3),
        "transactions_with_usd": (2, 3, 2 / 3),
    }
    assert _shares(_figures(report, KE)) == {
        "activities_with_sector": (0, 0, None),  # not applicable, never 0 or 1
        "activities_with_recipient": (0, 0, None),
        "cd_activities_with_declaration": (0, 0, None),
        "cd_activities_with_results": (0, 0, None),
        "results_with_baseline_and_target": (0, 1, 0.0),
        "transactions_with_value_date": (0, 0, None),
        "transactions_with_usd": (0, 0, None),
    }
    partner = _shares(_figures(report, GB))
    assert partner["cd_activities_with_declaration"] == (1, 1, 1.0)
    assert partner["cd_activities_with_results"] == (1, 1, 1.0)
    assert partner["activities_with_recipient"] == (1, 1, 1.0)
    overall = _shares(report["overall"])
    assert overall["activities_with_sector"] == (4, 6, 4 / 6)
    assert overall["results_with_baseline_and_target"] == (2, 4, 0.5)
    assert overall["cd_activities_with_declaration"] == (2, 4, 0.5)


@pytest.mark.parametrize(
    ("frequency", "age", "state"),
    [
        ("quarterly", 0, "up_to_date"),
        ("quarterly", 89, "up_to_date"),
        ("quarterly", 90, "due"),
        ("quarterly", 119, "due"),
        ("quarterly", 120, "overdue"),
        ("quarterly", 149, "overdue"),
        ("quarterly", 150, "delinquent"),
        ("annually", 364, "up_to_date"),
        ("annually", 365, "due"),
        ("annually", 424, "due"),
        ("annually", 425, "overdue"),
        ("annually", 455, "delinquent"),
        ("daily", 1, "due"),
        ("monthly", 59, "overdue"),
        ("quarterly", None, "unknown"),
        ("quarterly", -3, "up_to_date"),  # a date in the future
    ],
)
def test_hdx_freshness_states(frequency: str, age: int | None, state: str) -> None:
    assert freshness_state(age, frequency) == state


def test_freshness_table_and_unknown_frequency() -> None:
    assert FREQUENCIES["quarterly"] == (90, 120, 150)
    assert FREQUENCIES["semiannually"] == (180, 210, 240)
    assert FREQUENCIES["annually"] == (365, 425, 455)
    with pytest.raises(ValueError, match="unknown update frequency"):
        freshness_state(3, "hourly")
    with pytest.raises(ValueError, match="unknown frequency"):
        _build(freshness={"publisher": "hourly"})


def test_timeliness(report: dict[str, Any]) -> None:
    adb = _figures(report, ADB)["timeliness"]
    assert adb == {
        "last_updated": "2026-04-01T08:00:00+00:00",
        "last_received": "2026-06-01T00:00:00+00:00",
        "age_days": 90,
        "frequency": "quarterly",
        "state": "due",
    }
    who = _figures(report, WHO)["timeliness"]
    assert (who["age_days"], who["state"]) == (150, "delinquent")
    country = _figures(report, KE)["timeliness"]  # a submission: when it was received
    assert country["last_updated"] == "2025-06-30T12:00:00+00:00"
    assert (country["age_days"], country["frequency"], country["state"]) == (365, "annually", "due")
    partner = _figures(report, GB)["timeliness"]
    assert (partner["age_days"], partner["state"]) == (10, "up_to_date")
    overall = report["overall"]["timeliness"]
    assert overall["last_updated"] == "2026-04-01T08:00:00+00:00"
    assert overall["contributors_by_state"] == {
        "up_to_date": 1,
        "due": 2,
        "overdue": 0,
        "delinquent": 1,
        "unknown": 0,
    }
    # one day earlier: 89 days (up to date) and 149 (overdue); one day later 91 and 151
    earlier = _build(as_of=AS_OF - dt.timedelta(days=1))
    assert _figures(earlier, ADB)["timeliness"]["state"] == "up_to_date"
    assert _figures(earlier, WHO)["timeliness"]["state"] == "overdue"
    assert _figures(earlier, KE)["timeliness"]["state"] == "up_to_date"  # 364 days


def test_no_date_at_all_is_unknown() -> None:
    tables = _compact()
    tables["sources"] = tables["sources"].assign(fetched_at=pd.NaT)
    report = _build(tables)
    country = _figures(report, KE)["timeliness"]
    assert (country["last_updated"], country["age_days"], country["state"]) == (
        None,
        None,
        "unknown",
    )
    adb = _figures(report, ADB)["timeliness"]
    assert (adb["last_received"], adb["age_days"]) == (None, 90)


def test_forward_budgets(report: dict[str, Any]) -> None:
    adb = _figures(report, ADB)["forward_budgets"]
    assert adb["current_activities"] == 2  # A1 and A3 (A2 is finalised)
    assert adb["years"] == [
        # A1: the revised 1200 replaces the original 1000; A3: 184 of 365 days of 365 USD
        {
            "year": 2026,
            "activities_with_budget": 2,
            "current_activities": 2,
            "share": 1.0,
            "value_usd": 1384.0,
        },
        {
            "year": 2027,
            "activities_with_budget": 2,
            "current_activities": 2,
            "share": 1.0,
            "value_usd": 681.0,
        },
        {
            "year": 2028,
            "activities_with_budget": 0,
            "current_activities": 2,
            "share": 0.0,
            "value_usd": 0.0,
        },
    ]
    who = _figures(report, WHO)["forward_budgets"]
    assert who["current_activities"] == 1  # W1; W2 ended in 2025
    assert [(y["activities_with_budget"], y["share"], y["value_usd"]) for y in who["years"]] == [
        (0, 0.0, 0.0),
        (1, 1.0, 10.0),
        (0, 0.0, 0.0),
    ]
    partner = _figures(report, GB)["forward_budgets"]  # 730 USD over 2026-2027
    assert [y["value_usd"] for y in partner["years"]] == [365.0, 365.0, 0.0]
    country = _figures(report, KE)["forward_budgets"]
    assert country["years"][0]["share"] is None
    overall = report["overall"]["forward_budgets"]
    assert overall["current_activities"] == 4
    assert [y["activities_with_budget"] for y in overall["years"]] == [3, 4, 0]
    assert [y["value_usd"] for y in overall["years"]] == [1749.0, 1056.0, 0.0]
    assert _build(forward_years=1)["overall"]["forward_budgets"]["years"][0]["year"] == 2026
    assert len(_build(forward_years=1)["overall"]["forward_budgets"]["years"]) == 1


def test_traceability(report: dict[str, Any]) -> None:
    assert _figures(report, ADB)["traceability"] == {
        "incoming_transactions": 2,
        "traced_transactions": 1,
        "share": 0.5,
        "incoming_value_usd": 4000.0,
        "traced_value_usd": 1000.0,
        "value_share": 0.25,
    }
    assert _figures(report, WHO)["traceability"] == {
        "incoming_transactions": 0,
        "traced_transactions": 0,
        "share": None,
        "incoming_value_usd": 0.0,
        "traced_value_usd": 0.0,
        "value_share": None,
    }


def test_codes_are_read_as_python_strips_them() -> None:
    """Codes and references with any kind of Python whitespace around them (the report
    compares them in SQL) count as the code; a reference of whitespace only is missing."""
    tables = _compact()
    transactions = tables["transactions"].copy()
    t2 = transactions["transaction_id"] == "t2"
    transactions.loc[t2, "transaction_type"] = "\u00a011\u3000"  # incoming commitment
    transactions.loc[t2, "provider_activity_id"] = "\t\u2028 "  # blank: not traced
    transactions.loc[transactions["transaction_id"] == "t1", "transaction_type"] = "\x1c1\n"
    tables["transactions"] = transactions
    activities = tables["activities"].copy()
    a1 = activities["activity_id"] == "XM-DAC-46004-A1"
    activities.loc[a1, "reporting_org_ref"] = "\u2003XM-DAC-46004\x85"
    tables["activities"] = activities
    report, clean = _build(tables, validations=None), _build(validations=None)
    assert _figures(report, ADB) == _figures(clean, ADB)
    assert _figures(report, ADB)["traceability"]["incoming_transactions"] == 2  # t1, t2
    assert [c["id"] for c in report["contributors"]] == [KE, GB, ADB, WHO]


def test_schema_checks_the_run_saved_are_reported_as_saved() -> None:
    """The release passes what the run's schema checks found (per table, with its rows):
    the report shows it without checking again; a summary of other rows is checked again."""
    tables = _compact()
    saved = {
        "activities": {"rows": 6, "by_rule": {"required:title": 2}},
        "alignment_metrics": {"rows": 99, "by_rule": {}},  # not these rows: checked here
    }
    report = _build(tables, schema_checks=saved)
    assert report["tables"]["activities"]["schema_conformance"] == {
        "passed": False,
        "violations": {"required:title": 2},
    }
    assert report["tables"]["alignment_metrics"]["schema_conformance"] == {
        "passed": False,
        "violations": {"pattern:country_code": 1},
    }
    checked = _build(tables)["tables"]
    assert report["tables"]["transactions"] == checked["transactions"]  # none saved: checked
    assert checked["activities"]["schema_conformance"]["passed"] is True


def test_report_of_stored_tables_leaves_the_connection_as_it_was(tmp_path: Path) -> None:
    """The release's way: the tables written as Parquet and attached as views with their
    row numbers, in a connection with a small memory limit, give the same report."""
    tables = _compact()
    names = [name for name in tables if name != "alignment_metrics"]  # breaks its schema
    frames = {name: tables[name] for name in names}
    write_tables(frames, tmp_path)
    with duckdb.connect(config={"memory_limit": "64MB", "threads": 1}) as con:
        set_up(con)
        attach_tables(con, tmp_path, names, row_numbers=True)
        before = con.execute("SELECT count(*) FROM duckdb_views() WHERE NOT internal").fetchone()
        stored = build_quality_report(
            con,
            names,
            validations=_validations(tables),
            as_of=AS_OF,
            generated_at=GENERATED,
            freshness=FRESHNESS,
        )
        after = con.execute("SELECT count(*) FROM duckdb_views() WHERE NOT internal").fetchone()
        assert con.execute("SELECT count(*) FROM duckdb_tables()").fetchone() == (0,)
    assert before == after
    assert stored == _build(frames, release=None, run_id=None)


def test_quarantine_by_rule(report: dict[str, Any]) -> None:
    adb = _figures(report, ADB)["quarantine"]["by_rule"]
    assert [(q["rule"], q["severity"], q["rows"]) for q in adb] == [
        ("missing_identifier", "error", 1),
        ("no_exchange_rate", "warning", 1),
    ]
    assert adb[0]["example"]["source_file"] == ADB_FILE
    assert adb[0]["example"]["source_ref"] == "/iati-activities/iati-activity[4]"
    assert adb[0]["example"]["message"] == "the activity has no iati-identifier"
    overall = report["overall"]["quarantine"]["by_rule"]
    assert [q["rule"] for q in overall] == [
        "missing_identifier",
        "no_exchange_rate",
        "not_well_formed",
        "unknown_activity",
    ]
    assert _figures(report, WHO)["quarantine"]["by_rule"] == []


# -- problems, files, tables ---------------------------------------------------------------------


def test_problems_worst_first(report: dict[str, Any]) -> None:
    adb = _contributor(report, ADB)["problems"]
    assert [(p["kind"], p["severity"], p["rule"]) for p in adb] == [
        ("schema", "error", "xsd:SCHEMAV_ELEMENT_CONTENT"),
        ("expectation", "error", "value_usd_where_rate"),
        ("quarantine", "error", "missing_identifier"),
        ("codelist", "warning", "codelist:Sector"),
        ("quarantine", "warning", "no_exchange_rate"),
    ]
    # located by the activity's identifier, not only its line (issue 24)
    assert adb[0]["message"] == (
        "adb.xml line 12, activity XM-DAC-46004-A1: Element 'budget': This element is not expected."
    )
    assert adb[0]["where"] == "adb.xml line 12, activity XM-DAC-46004-A1"
    assert adb[1]["count"] == 1  # only ADB's row of the two failing transactions
    assert adb[1]["where"] == "adb.xml, activity XM-DAC-46004-A1"
    assert adb[3]["message"] == (
        'adb.xml line 40, activity XM-DAC-46004-A3: sector code "99999" is not in the IATI '
        "Sector codelist (2.03)"
    )
    who = _contributor(report, WHO)["problems"]
    assert [(p["kind"], p["rule"]) for p in who] == [
        ("freshness", "delinquent"),
        ("expectation", "end_after_start"),
    ]
    overall = report["problems"]
    assert overall[0]["kind"] == "rejected_file"
    assert overall[0]["rule"] == "not_well_formed"
    assert overall[0]["message"] == (
        "adb-broken.xml line 7: file rejected: "
        "the XML is not well-formed: unexpected end of file (line 7)"
    )
    kinds = [p["kind"] for p in overall]
    assert kinds.index("schema") < kinds.index("expectation") < kinds.index("quarantine")
    assert kinds.index("quarantine") < kinds.index("freshness")
    expectation = next(p for p in overall if p["rule"] == "value_usd_where_rate")
    assert expectation["count"] == 2
    assert len(_build(max_examples=2)["problems"]) == 2


def test_files(report: dict[str, Any]) -> None:
    files = {f["source_file"]: f for f in report["files"]}
    assert [f["source_file"] for f in report["files"]] == sorted(files)
    broken = files[BROKEN]
    assert broken["status"] == "rejected"
    assert broken["reason"] == "the XML is not well-formed: unexpected end of file (line 7)"
    assert broken["contributors"] == []
    assert broken["schema"]["checked"] is False
    assert broken["quarantine"] == [{"severity": "error", "rule": "not_well_formed", "rows": 1}]
    adb = files[ADB_FILE]
    assert adb["contributors"] == [ADB]
    assert adb["iati_version"] == "2.03"
    assert adb["schema"] == {"checked": True, "schema_version": "2.03", "errors": 1, "warnings": 0}
    assert adb["codelists"] == {"checked": True, "errors": 0, "warnings": 1}
    assert [(f["severity"], f["line"]) for f in adb["findings"]] == [("error", 12), ("warning", 40)]
    assert adb["findings"][0]["path"] == "/iati-activities/iati-activity[1]/budget[1]"
    assert set(adb["findings"][0]) == {
        "check",
        "line",
        "path",
        "activity_id",
        "rule",
        "value",
        "message",
        "severity",
    }
    assert files[WHO_FILE]["schema"]["errors"] == 0
    assert files[WHO_FILE]["findings"] == []
    assert files[COUNTRY_FILE]["contributors"] == [KE]
    assert files[COUNTRY_FILE]["schema"]["checked"] is False
    assert files[PARTNER_FILE]["contributors"] == [GB]


def test_findings_left_out_count_and_unchecked_files_are_not_checked() -> None:
    tables = _compact()
    more = [
        {
            "source_file": ADB_FILE,
            "check": "xsd",
            "rule": "xsd:more",
            "value": "41",
            "message": "41 more xsd findings not listed (at most 1 are listed per check and file)",
            "severity": "error",
        },
        {
            "source_file": WHO_FILE,
            "check": "codelist",
            "rule": "codelist:not_checked",
            "message": "codelists not checked: no codelists are configured",
            "severity": "warning",
        },
    ]
    tables["conformance"] = pd.concat(
        [tables["conformance"], table_frame("conformance", more)], ignore_index=True
    )
    report = _build(tables)
    assert _figures(report, ADB)["validity"]["schema_errors"] == 42
    who = _figures(report, WHO)["validity"]
    assert (who["codelist_warnings"], who["state"]) == (0, "valid")
    files = {f["source_file"]: f for f in report["files"]}
    assert files[ADB_FILE]["schema"]["errors"] == 42
    assert files[WHO_FILE]["codelists"] == {"checked": False, "errors": 0, "warnings": 0}
    assert files[WHO_FILE]["schema"]["checked"] is True
    more_problem = next(p for p in _contributor(report, ADB)["problems"] if p["rule"] == "xsd:more")
    assert more_problem["count"] == 41
    assert more_problem["message"] == f"{ADB_FILE}: {more[0]['message']}"
    # without a conformance table nothing was checked
    del tables["conformance"]
    unchecked = _build(tables)
    assert unchecked["overall"]["validity"]["schema_checked_files"] == 0
    assert unchecked["overall"]["validity"]["schema_errors"] == 0


def test_tables(report: dict[str, Any]) -> None:
    tables = report["tables"]
    assert tables["activities"]["rows"] == 6
    assert tables["activities"]["schema_conformance"] == {"passed": True, "violations": {}}
    assert tables["alignment_metrics"]["schema_conformance"] == {
        "passed": False,
        "violations": {"pattern:country_code": 1},
    }
    transactions = tables["transactions"]["expectations"]
    assert transactions["passed_errors"] is False
    assert transactions["evaluated"] == 2
    [failed] = transactions["failed"]
    assert (failed["rule"], failed["severity"], failed["unexpected"]) == (
        "value_usd_where_rate",
        "error",
        2,
    )
    assert [(e["source_file"], e["source_ref"]) for e in failed["examples"]] == [
        (ADB_FILE, "/iati-activities/iati-activity[1]"),
        (PARTNER_FILE, "sheet activities, row 2"),
    ]
    assert tables["activities"]["expectations"]["passed_errors"] is True


def test_expectations_without_rows_count_overall_only() -> None:
    tables = _compact()
    validations = _validations(tables)
    validations["activities"] = TableValidation(
        "activities",
        6,
        [
            ExpectationOutcome(
                "columns", "error", "expect_table_columns_to_match_set", False, None, 1
            )
        ],
    )
    report = _build(tables, validations=validations)
    assert report["overall"]["validity"]["expectation_errors"] == 4
    assert _figures(report, WHO)["validity"]["expectation_errors"] == 0


# -- trend, slugs, determinism -------------------------------------------------------------------


def test_trend_keeps_the_newest_runs(report: dict[str, Any]) -> None:
    entry = history_entry(report)
    assert entry["generated_at"] == "2026-06-30T06:40:00+00:00"
    assert entry["as_of"] == "2026-06-30"
    assert entry["release"] == "2026.06.30"
    assert entry["overall"]["state_counts"] == {
        "valid": 2,
        "invalid": 2,
        "rejected": 0,
        "nothing_received": 0,
    }
    assert entry["overall"]["files"] == 5
    assert entry["overall"]["files_rejected"] == 1
    assert entry["overall"]["schema_errors"] == 1
    assert entry["overall"]["expectation_errors"] == 3
    assert entry["overall"]["traceability"] == 0.5
    assert entry["overall"]["forward_budgets"] == 0.75
    assert entry["overall"]["completeness"]["activities_with_sector"] == pytest.approx(4 / 6)
    assert entry["contributors"][WHO] == {
        "state": "valid",
        "freshness": "delinquent",
        "records": 2,
        "records_quarantined": 0,
        "schema_errors": 0,
        "codelist_errors": 0,
        "expectation_errors": 0,
    }
    assert report["trend"] == [entry]
    earlier = [
        {**copy.deepcopy(entry), "generated_at": f"2026-06-2{day}T06:40:00+00:00"} for day in (8, 9)
    ]
    with_history = _build(history=earlier)
    assert [e["generated_at"] for e in with_history["trend"]] == [
        "2026-06-28T06:40:00+00:00",
        "2026-06-29T06:40:00+00:00",
        "2026-06-30T06:40:00+00:00",
    ]
    assert with_history["trend"][-1] == entry
    capped = _build(history=earlier, history_runs=2)
    assert [e["generated_at"] for e in capped["trend"]] == [
        "2026-06-29T06:40:00+00:00",
        "2026-06-30T06:40:00+00:00",
    ]


@pytest.mark.parametrize(
    "ref",
    [
        "../../etc/passwd",
        "a/b\\c",
        "Ñandú Fundación",
        "名古屋",
        "",
        "x" * 500,
        "xm-dac-46004",
        "XM.DAC.46004",
        "XM-DAC-46004 ",
        "(unknown)",
        "-XM-",
    ],
)
def test_slugs_are_safe(ref: str) -> None:
    slug = contributor_slug("publisher", ref)
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*(--[0-9a-f]{10})?", slug), slug
    assert len(slug) <= 90
    assert slug == contributor_slug("publisher", ref)
    assert "--" in slug  # every one of these lost something in cleaning
    assert slug != contributor_slug("publisher", "XM-DAC-46004")


def test_slugs_are_unique() -> None:
    refs = ["XM-DAC-46004", "xm-dac-46004", "XM.DAC.46004", "XM DAC 46004", "x" * 500, "x" * 501]
    slugs = {contributor_slug("publisher", ref) for ref in refs}
    assert len(slugs) == len(refs)
    assert contributor_slug("country", "KE") == "country-ke"
    assert contributor_slug("publisher", "XM-DAC-46004") != contributor_slug(
        "partner", "XM-DAC-46004"
    )


def test_deterministic_and_json_safe(report: dict[str, Any]) -> None:
    again = _build()
    assert again == report
    text = json.dumps(report, allow_nan=False, sort_keys=True)
    assert json.loads(text) == report
    assert report["report_format"] == "cdcompact-quality/1"
    assert report["settings"] == {"freshness": FRESHNESS, "forward_years": 3}
    assert (report["release"], report["run_id"]) == ("2026.06.30", "run-1")

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            assert all(isinstance(k, str) for k in value)
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        else:
            assert value is None or type(value) in (str, int, float, bool), (value, type(value))

    walk(report)
    # the same tables in another row order give the same report (figures are order-free)
    shuffled = {name: frame.iloc[::-1] for name, frame in _compact().items()}
    assert _build(shuffled, validations=None)["overall"] == _build(validations=None)["overall"]


def test_empty_compact() -> None:
    report = _report(
        {},
        validations=None,
        as_of=AS_OF,
        generated_at=GENERATED,
        freshness=FRESHNESS,
    )
    assert report["contributors"] == []
    assert report["files"] == []
    assert report["overall"]["validity"]["state"] == "valid"
    assert report["overall"]["completeness"]["activities_with_sector"]["share"] is None
    json.dumps(report, allow_nan=False)


# -- real data ---------------------------------------------------------------------------------


def test_report_on_real_iati_files() -> None:
    from assets.iati.codelists import load_codelists
    from assets.iati.conformance import IatiSchemas
    from assets.iati.harmonise import HarmoniseOptions, harmonise_paths
    from assets.iati.rates import load_exchange_rates
    from assets.settings import load_settings

    options = HarmoniseOptions(
        rules=load_settings().cd_rules,
        rates=load_exchange_rates([RATES / "imf-monthly-subset.csv"]),
        codelists=load_codelists(CODELISTS),
        schemas=IatiSchemas.from_dir(IATI_SCHEMAS),
    )
    _, tables = harmonise_paths(
        [
            IATI_FIXTURES / "valid" / "iati-activities-am-armenia.xml",
            IATI_FIXTURES / "valid" / "who-arg.xml",
            IATI_FIXTURES / "invalid" / "truncated.xml",
            IATI_FIXTURES / "invalid" / "not-xml.xml",
        ],
        options,
    )
    report = _report(
        tables,
        validations=None,
        as_of=dt.date(2026, 6, 30),
        generated_at=GENERATED,
        freshness=FRESHNESS,
    )
    json.dumps(report, allow_nan=False)
    publishers = {c["ref"]: c for c in report["contributors"] if c["kind"] == "publisher"}
    assert set(publishers) == {"XM-DAC-46004", "XM-DAC-928"}
    adb, who = publishers["XM-DAC-46004"], publishers["XM-DAC-928"]
    assert adb["name"] == "Asian Development Bank"
    assert adb["files"] == ["iati-activities-am-armenia.xml"]
    assert who["files"] == ["who-arg.xml"]
    assert "World Health Organization" in who["name"] or "WHO" in who["name"]
    assert adb["figures"]["completeness"]["activities_with_sector"]["denominator"] == 43
    assert who["figures"]["completeness"]["activities_with_sector"]["denominator"] == 157
    for publisher in (adb, who):
        validity = publisher["figures"]["validity"]
        assert validity["files"] == validity["files_ok"] == 1
        assert validity["schema_checked_files"] == 1  # against the 2.03 XML Schema
        assert validity["records"] == validity["records_accepted"]
        assert publisher["figures"]["timeliness"]["frequency"] == "quarterly"
    assert adb["figures"]["validity"]["records"] == 43
    assert who["figures"]["validity"]["records"] == 157
    files = {f["source_file"]: f for f in report["files"]}
    assert files["who-arg.xml"]["schema"]["checked"] is True
    assert files["who-arg.xml"]["contributors"] == ["publisher:XM-DAC-928"]
    truncated = files["truncated.xml"]
    assert truncated["status"] == "rejected"
    assert truncated["reason"]
    assert truncated["contributors"] == []
    # the check ran up to where the file stops being well-formed, and says so there
    assert truncated["schema"]["checked"] is True
    assert truncated["schema"]["errors"] == 1
    not_xml = files["not-xml.xml"]
    assert not_xml["schema"]["checked"] is False  # its xsd:not_checked row says why
    assert not_xml["findings"][0]["rule"] == "xsd:not_checked"
    assert "not XML" in not_xml["findings"][0]["message"]
    rejected = [p for p in report["problems"] if p["kind"] == "rejected_file"]
    assert report["problems"][0]["kind"] == "rejected_file"
    assert {p["message"].split(":")[0] for p in rejected} == {"not-xml.xml", "truncated.xml line 4"}
    for publisher in (adb, who):
        print(publisher["id"], publisher["name"])
        print(json.dumps(publisher["figures"], indent=1))
        print(json.dumps(publisher["problems"][:3], indent=1))
    print(json.dumps(truncated, indent=1))
