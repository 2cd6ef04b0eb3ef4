"""Schema conformance checks: real harmonised tables pass, broken ones are caught row by row."""

from __future__ import annotations

from assets.harmonise.schema import table_frame
from assets.iati.harmonise import HarmoniseOptions, harmonise_paths
from assets.iati.rates import load_exchange_rates
from assets.settings import load_settings
from tests.conftest import IATI_FIXTURES, RATES, schema_reports


def test_harmonised_fixture_tables_conform_to_the_schema() -> None:
    options = HarmoniseOptions(
        rules=load_settings().cd_rules,
        rates=load_exchange_rates([RATES / "imf-monthly-subset.csv"]),
    )
    _, tables = harmonise_paths(
        [IATI_FIXTURES / "valid", IATI_FIXTURES / "legacy", IATI_FIXTURES / "invalid"], options
    )
    assert len(tables["activities"]) == 1434
    reports, foreign = schema_reports(tables)
    for table, report in reports.items():
        assert report.passed, (table, report.summary(), report.examples[:3])
        assert foreign[table].passed, (table, foreign[table].examples[:3])


def _activity(activity_id: str | None, **fields: object) -> dict[str, object]:
    return {
        "activity_id": activity_id,
        "is_cd": False,
        "source": "iati",
        "source_file": "f.xml",
        "source_sha256": "0" * 64,
        "source_ref": "/iati-activities/iati-activity[1]",
        **fields,
    }


def test_broken_rows_are_reported_with_rule_field_and_row() -> None:
    activities = table_frame(
        "activities",
        [
            _activity("A"),
            _activity("A"),  # duplicate primary key
            _activity(None),  # required
            _activity("B", modality="juggling", default_currency="usd"),  # enum, pattern
        ],
    )
    report = schema_reports({"activities": activities})[0]["activities"]
    assert not report.passed
    assert report.counts == {
        "primary_key:activity_id": 1,
        "required:activity_id": 1,
        "enum:modality": 1,
        "pattern:default_currency": 1,
    }
    rows = {(v.rule, v.field): (v.row, v.value) for v in report.examples}
    assert rows[("primary_key", "activity_id")] == (1, "A")
    assert rows[("enum", "modality")] == (3, "juggling")
    assert rows[("pattern", "default_currency")] == (3, "usd")


def test_ranges_and_foreign_keys() -> None:
    activities = table_frame("activities", [_activity("A")])
    countries = table_frame(
        "activity_countries",
        [
            {
                "activity_id": "A",
                "country_code": "GH",
                "share": 1.5,
                "share_basis": "activity",
                "source": "iati",
                "source_file": "f.xml",
                "source_sha256": "0" * 64,
                "source_ref": "x",
            },
            {
                "activity_id": "Z",
                "country_code": "KE",
                "share": 0.5,
                "share_basis": "activity",
                "source": "iati",
                "source_file": "f.xml",
                "source_sha256": "0" * 64,
                "source_ref": "y",
            },
        ],
    )
    reports, foreign = schema_reports({"activities": activities, "activity_countries": countries})
    assert reports["activity_countries"].counts == {"maximum:share": 1}
    assert foreign["activity_countries"].counts == {"foreign_key:activity_id": 1}
    assert foreign["activity_countries"].examples[0].row == 1
    assert foreign["activity_countries"].examples[0].value == "Z"


def test_a_missing_column_is_a_violation() -> None:
    frame = table_frame("sources", []).drop(columns=["status"])
    report = schema_reports({"sources": frame})[0]["sources"]
    assert report.counts == {"missing_column:status": 1}
    assert isinstance(report.summary()["violations"], int)
    assert report.examples[0].row is None
