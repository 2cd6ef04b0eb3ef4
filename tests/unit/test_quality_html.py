"""The data-quality website, rendered from a hand-built report (docs/quality-report.md)."""

from __future__ import annotations

import copy
import itertools
import re
from typing import Any

import lxml.html
import pytest

from publish.quality_html import (
    CSP,
    DATA_DOCS,
    SCRIPT_HASH,
    SORT_SCRIPT,
    render_quality_site,
    safe_slug,
)

AS_OF = "2026-11-28"
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'

ADB = "publisher:XM-DAC-46004"
KE = "country:KE"
GIZ = "partner:DE-1-GIZ"
BROKEN = "publisher:XI-IATI-BROKEN"


def item(numerator: int, denominator: int) -> dict[str, Any]:
    return {
        "numerator": numerator,
        "denominator": denominator,
        "share": numerator / denominator if denominator else None,
    }


def figures(
    *,
    state: str,
    files: int,
    files_rejected: int = 0,
    records: int = 0,
    quarantined: int = 0,
    schema_errors: int = 0,
    codelist_errors: int = 0,
    expectation_errors: int = 0,
    activities: tuple[int, int] = (0, 0),
    freshness: tuple[str | None, int | None, str | None] = ("2026-11-01T00:00:00+00:00", 27, None),
    frequency: str = "quarterly",
    current: int = 0,
    budgets: tuple[int, int, int] = (0, 0, 0),
    by_rule: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    with_sector, total = activities
    last_updated, age, fresh = freshness
    return {
        "validity": {
            "files": files,
            "files_ok": files - files_rejected - (1 if quarantined else 0),
            "files_partial": 1 if quarantined else 0,
            "files_rejected": files_rejected,
            "files_unchanged": 0,
            "files_stale": 0,
            "records": records,
            "records_accepted": records - quarantined,
            "records_quarantined": quarantined,
            "warnings": 1,
            "schema_checked_files": files,
            "schema_valid_files": files if not schema_errors else files - 1,
            "schema_errors": schema_errors,
            "codelist_errors": codelist_errors,
            "codelist_warnings": 0,
            "expectation_errors": expectation_errors,
            "expectation_warnings": 0,
            "state": state,
        },
        "completeness": {
            "activities_with_sector": item(with_sector, total),
            "activities_with_recipient": item(total, total),
            "cd_activities_with_declaration": item(min(5, total), min(8, total)),
            "cd_activities_with_results": item(min(2, total), min(8, total)),
            "results_with_baseline_and_target": item(3, 4) if total else item(0, 0),
            "transactions_with_value_date": item(57, 59) if total else item(0, 0),
            "transactions_with_usd": item(59, 59) if total else item(0, 0),
        },
        "timeliness": {
            "last_updated": last_updated,
            "last_received": "2026-11-28T02:00:00+00:00",
            "age_days": age,
            "frequency": frequency,
            "state": fresh,
        },
        "forward_budgets": {
            "current_activities": current,
            "years": [
                {
                    "year": 2026 + offset,
                    "activities_with_budget": budgets[offset],
                    "current_activities": current,
                    "share": budgets[offset] / current if current else None,
                    "value_usd": 1_250_000.0 * budgets[offset],
                }
                for offset in range(3)
            ],
        },
        "traceability": {
            "incoming_transactions": 4 if total else 0,
            "traced_transactions": 3 if total else 0,
            "share": 0.75 if total else None,
            "incoming_value_usd": 400_000.0 if total else 0.0,
            "traced_value_usd": 250_000.0 if total else 0.0,
            "value_share": 0.625 if total else None,
        },
        "quarantine": {"by_rule": by_rule or []},
    }


SECTOR_RULE = {
    "rule": "codelist:Sector",
    "severity": "error",
    "rows": 2,
    "example": {
        "source_file": "iati-activities-am-armenia.xml",
        "source_ref": "/iati-activities/iati-activity[3]/sector[1]",
        "table": "activity_sectors",
        "field": "sector_code",
        "value": "99999",
        "message": "Sector code 99999 is not in the DAC 5-digit codelist",
    },
}


def sample_report() -> dict[str, Any]:
    """A realistic report: four contributors of all three kinds, one rejected, one invalid."""
    adb_findings = [
        {
            "check": "xsd",
            "line": 42,
            "path": "/iati-activities/iati-activity[3]/transaction[2]/value",
            "activity_id": "XM-DAC-46004-AM-51234",
            "rule": "xsd:SCHEMAV_CVC_DATATYPE_VALID_1_2_1",
            "value": "12,5",
            "message": "Element 'value': '12,5' is not a valid value of the atomic type "
            "'xs:decimal'.",
            "severity": "error",
        },
        {
            "check": "codelist",
            "line": 118,
            "path": "/iati-activities/iati-activity[3]/sector[1]/@code",
            "activity_id": "XM-DAC-46004-AM-51234",
            "rule": "codelist:Sector",
            "value": "99999",
            "message": "Sector code 99999 is not in the DAC 5-digit codelist",
            "severity": "error",
        },
    ]
    contributors: list[dict[str, Any]] = [
        {
            "id": ADB,
            "kind": "publisher",
            "ref": "XM-DAC-46004",
            "name": "Asian Development Bank",
            "slug": "publisher-xm-dac-46004",
            "files": ["iati-activities-am-armenia.xml"],
            "figures": figures(
                state="invalid",
                files=1,
                records=43,
                quarantined=2,
                schema_errors=1,
                codelist_errors=1,
                expectation_errors=3,
                activities=(31, 43),
                freshness=("2026-08-01T09:00:00+00:00", 119, "due"),
                current=20,
                budgets=(14, 9, 2),
                by_rule=[SECTOR_RULE],
            ),
            "problems": [
                {
                    "severity": "error",
                    "kind": "schema",
                    "rule": "xsd:SCHEMAV_CVC_DATATYPE_VALID_1_2_1",
                    "count": 1,
                    "message": "iati-activities-am-armenia.xml line 42: Element 'value': '12,5' "
                    "is not a valid value of the atomic type 'xs:decimal'.",
                    "where": "iati-activities-am-armenia.xml line 42",
                },
                {
                    "severity": "error",
                    "kind": "codelist",
                    "rule": "codelist:Sector",
                    "count": 1,
                    "message": "iati-activities-am-armenia.xml line 118: Sector code 99999 is "
                    "not in the DAC 5-digit codelist",
                    "where": "iati-activities-am-armenia.xml line 118",
                },
                {
                    "severity": "error",
                    "kind": "expectation",
                    "rule": "activity_dates_ordered",
                    "count": 3,
                    "message": "activities: 3 rows fail activity_dates_ordered",
                    "where": "iati-activities-am-armenia.xml /iati-activities/iati-activity[7]",
                },
            ],
        },
        {
            "id": KE,
            "kind": "country",
            "ref": "KE",
            "name": "KE",
            "slug": "country-ke",
            "files": ["country-report-ke-2026.xlsx"],
            "figures": figures(
                state="valid",
                files=1,
                records=12,
                activities=(12, 12),
                freshness=("2026-10-15T00:00:00+00:00", 44, "up_to_date"),
                frequency="annually",
                current=12,
                budgets=(12, 12, 10),
            ),
            "problems": [],
        },
        {
            "id": GIZ,
            "kind": "partner",
            "ref": "DE-1-GIZ",
            "name": "Deutsche Gesellschaft für Internationale Zusammenarbeit",
            "slug": "partner-de-1-giz",
            "files": ["partner-submission-giz.xlsx"],
            "figures": figures(
                state="valid",
                files=1,
                records=8,
                activities=(8, 8),
                freshness=("2025-09-01T00:00:00+00:00", 453, "delinquent"),
                frequency="semiannually",
                current=6,
                budgets=(6, 4, 0),
            ),
            "problems": [
                {
                    "severity": "warning",
                    "kind": "freshness",
                    "rule": "delinquent",
                    "count": 1,
                    "message": "DE-1-GIZ: delinquent: last updated 453 days before 2026-11-28, "
                    "expected semiannually",
                    "where": "last updated 2025-09-01T00:00:00+00:00",
                }
            ],
        },
        {
            "id": BROKEN,
            "kind": "publisher",
            "ref": "XI-IATI-BROKEN",
            "name": "Broken Publisher Trust",
            "slug": "publisher-xi-iati-broken",
            "files": ["broken-publisher.xml"],
            "figures": figures(
                state="rejected",
                files=1,
                files_rejected=1,
                freshness=(None, None, "unknown"),
            ),
            "problems": [
                {
                    "severity": "error",
                    "kind": "rejected_file",
                    "rule": "not_iati_xml",
                    "count": 1,
                    "message": "broken-publisher.xml: file rejected: the body is an HTML page, "
                    "not IATI XML",
                    "where": "broken-publisher.xml",
                }
            ],
        },
    ]
    files = [
        {
            "source_file": "broken-publisher.xml",
            "source": "iati",
            "status": "rejected",
            "reason": "the body is an HTML page, not IATI XML",
            "contributors": [BROKEN],
            "n_records": 0,
            "n_accepted": 0,
            "n_quarantined": 0,
            "iati_version": None,
            "schema": {"checked": False, "schema_version": None, "errors": 0, "warnings": 0},
            "codelists": {"errors": 0, "warnings": 0},
            "quarantine": [{"severity": "error", "rule": "not_iati_xml", "rows": 1}],
            "findings": [],
        },
        {
            "source_file": "country-report-ke-2026.xlsx",
            "source": "country_report",
            "status": "ok",
            "reason": None,
            "contributors": [KE],
            "n_records": 12,
            "n_accepted": 12,
            "n_quarantined": 0,
            "iati_version": None,
            "schema": {"checked": False, "schema_version": None, "errors": 0, "warnings": 0},
            "codelists": {"errors": 0, "warnings": 0},
            "quarantine": [],
            "findings": [],
        },
        {
            "source_file": "iati-activities-am-armenia.xml",
            "source": "iati",
            "status": "partial",
            "reason": "2 of 43 activities quarantined",
            "contributors": [ADB],
            "n_records": 43,
            "n_accepted": 41,
            "n_quarantined": 2,
            "iati_version": "2.03",
            "schema": {"checked": True, "schema_version": "2.03", "errors": 1, "warnings": 0},
            "codelists": {"errors": 1, "warnings": 0},
            "quarantine": [{"severity": "error", "rule": "codelist:Sector", "rows": 2}],
            "findings": adb_findings,
        },
        {
            "source_file": "partner-submission-giz.xlsx",
            "source": "partner_submission",
            "status": "ok",
            "reason": None,
            "contributors": [GIZ],
            "n_records": 8,
            "n_accepted": 8,
            "n_quarantined": 0,
            "iati_version": None,
            "schema": {"checked": False, "schema_version": None, "errors": 0, "warnings": 0},
            "codelists": {"errors": 0, "warnings": 0},
            "quarantine": [],
            "findings": [],
        },
    ]
    overall = figures(
        state="invalid",
        files=4,
        files_rejected=1,
        records=63,
        quarantined=2,
        schema_errors=1,
        codelist_errors=1,
        expectation_errors=3,
        activities=(51, 63),
        current=38,
        budgets=(32, 25, 12),
        by_rule=[
            SECTOR_RULE,
            {
                "rule": "not_iati_xml",
                "severity": "error",
                "rows": 1,
                "example": {
                    "source_file": "broken-publisher.xml",
                    "source_ref": "/",
                    "table": "sources",
                    "field": None,
                    "value": "<html>",
                    "message": "the body is an HTML page, not IATI XML",
                },
            },
            {
                "rule": "no_future_disbursement",
                "severity": "warning",
                "rows": 1,
                "example": {
                    "source_file": "iati-activities-am-armenia.xml",
                    "source_ref": "/iati-activities/iati-activity[9]/transaction[1]",
                    "table": "transactions",
                    "field": "transaction_date",
                    "value": "2027-01-15",
                    "message": "Disbursement dated in the future",
                },
            },
        ],
    )
    overall["timeliness"] = {
        "last_updated": None,
        "last_received": "2026-11-28T02:00:00+00:00",
        "age_days": None,
        "frequency": None,
        "state": None,
        "contributors_by_state": {
            "up_to_date": 1,
            "due": 1,
            "overdue": 0,
            "delinquent": 1,
            "unknown": 1,
        },
    }

    def contributor_line(state: str, fresh: str, records: int, quarantined: int) -> dict:
        return {
            "state": state,
            "freshness": fresh,
            "records": records,
            "records_quarantined": quarantined,
            "schema_errors": 1 if quarantined else 0,
            "codelist_errors": quarantined // 2,
            "expectation_errors": quarantined + 1 if quarantined else 0,
        }

    trend = []
    for index, (day, quarantined, valid, invalid, rejected) in enumerate(
        [("2026-11-26", 9, 1, 2, 0), ("2026-11-27", 5, 2, 1, 0), (AS_OF, 2, 2, 1, 1)]
    ):
        lines = {
            ADB: contributor_line("invalid", "due", 43, quarantined),
            KE: contributor_line("valid", "up_to_date", 12, 0),
            GIZ: contributor_line("valid" if index else "invalid", "delinquent", 8, 0),
        }
        if rejected:
            lines[BROKEN] = contributor_line("rejected", "unknown", 0, 0)
        trend.append(
            {
                "generated_at": f"{day}T06:40:00+00:00",
                "as_of": day,
                "release": f"{day[:4]}.{day[5:7]}.{day[8:]}" if index != 1 else None,
                "overall": {
                    "state_counts": {"valid": valid, "invalid": invalid, "rejected": rejected},
                    "files": 3 + rejected,
                    "files_rejected": rejected,
                    "records": 63,
                    "records_quarantined": quarantined,
                    "schema_errors": 4 - index,
                    "codelist_errors": 2 - index // 2,
                    "expectation_errors": 6 - index,
                    "completeness": {"activities_with_sector": 0.75 + index / 100},
                    "traceability": 0.75,
                    "forward_budgets": 0.84,
                },
                "contributors": lines,
            }
        )
    return {
        "report_format": "cdcompact-quality/1",
        "generated_at": f"{AS_OF}T06:40:00+00:00",
        "as_of": AS_OF,
        "release": "2026.11.28",
        "run_id": "5d0c3c9e-2f6a-4a3e-9d57-0c5b8a1f7e21",
        "settings": {
            "freshness": {
                "country": "annually",
                "partner": "semiannually",
                "publisher": "quarterly",
            },
            "forward_years": 3,
        },
        "overall": overall,
        "problems": [p for c in contributors for p in c["problems"]],
        "contributors": contributors,
        "files": files,
        "tables": {
            "activities": {
                "rows": 61,
                "schema_conformance": {"passed": True, "violations": {}},
                "expectations": {
                    "passed_errors": True,
                    "evaluated": 24,
                    "failed": [
                        {
                            "rule": "activity_dates_ordered",
                            "severity": "warning",
                            "unexpected": 3,
                            "examples": [
                                {
                                    "row": 6,
                                    "value": "2027-01-01 > 2026-12-31",
                                    "source_file": "iati-activities-am-armenia.xml",
                                    "source_ref": "/iati-activities/iati-activity[7]",
                                }
                            ],
                        }
                    ],
                },
            },
            "transactions": {
                "rows": 59,
                "schema_conformance": {
                    "passed": False,
                    "violations": {"required:value_date": 2},
                },
                "expectations": {
                    "passed_errors": False,
                    "evaluated": 31,
                    "failed": [
                        {
                            "rule": "value_usd_where_rate",
                            "severity": "error",
                            "unexpected": 2,
                            "examples": [
                                {
                                    "row": 17,
                                    "value": None,
                                    "source_file": "iati-activities-am-armenia.xml",
                                    "source_ref": (
                                        "/iati-activities/iati-activity[4]/transaction[3]"
                                    ),
                                }
                            ],
                        }
                    ],
                },
            },
        },
        "trend": trend,
    }


def parse(content: bytes) -> Any:
    return lxml.html.document_fromstring(content.decode())


def text(tree: Any, xpath: str) -> str:
    found = tree.xpath(xpath)
    assert len(found) == 1, (xpath, len(found))
    return " ".join(found[0].text_content().split())


def texts(tree: Any, xpath: str) -> list[str]:
    return [" ".join(node.text_content().split()) for node in tree.xpath(xpath)]


@pytest.fixture(scope="module")
def site() -> dict[str, bytes]:
    return render_quality_site(sample_report())


@pytest.fixture(scope="module")
def index(site: dict[str, bytes]) -> Any:
    return parse(site["index.html"])


@pytest.fixture(scope="module")
def adb(site: dict[str, bytes]) -> Any:
    return parse(site["contributors/publisher-xm-dac-46004.html"])


# ------------------------------------------------------------------- the site


def test_one_page_per_contributor_and_the_index(site: dict[str, bytes]) -> None:
    assert sorted(site) == [
        "contributors/country-ke.html",
        "contributors/partner-de-1-giz.html",
        "contributors/publisher-xi-iati-broken.html",
        "contributors/publisher-xm-dac-46004.html",
        "index.html",
    ]
    assert all(isinstance(content, bytes) for content in site.values())
    for content in site.values():
        tree = parse(content)
        assert tree.get("lang") == "en"
        assert tree.xpath('//meta[@name="viewport"]')
        assert tree.xpath("//style[contains(., '@media print')]")


def test_same_report_same_bytes() -> None:
    assert render_quality_site(sample_report()) == render_quality_site(sample_report())


def test_index_links_every_contributor_page(site: dict[str, bytes], index: Any) -> None:
    links = index.xpath('//table[@id="contributors-table"]//a/@href')
    assert sorted(links) == sorted(path for path in site if path.startswith("contributors/"))
    assert set(index.xpath('//table[@id="files-table"]//a/@href')) <= set(site)
    for path in site:
        if path.startswith("contributors/"):
            back = parse(site[path]).xpath('//p[@class="back"]/a/@href')
            assert back == ["../index.html"]


@pytest.mark.parametrize(
    "slug",
    ["../../etc/passwd", "Publisher-XM", "publisher_x", "", None, "a/b", "x.html", "---", "é"],
)
def test_an_unsafe_slug_gets_no_page_and_no_link(slug: object) -> None:
    report = sample_report()
    report["contributors"][0]["slug"] = slug
    site = render_quality_site(report)
    assert "contributors/publisher-xm-dac-46004.html" not in site
    assert len([path for path in site if path.startswith("contributors/")]) == 3
    tree = parse(site["index.html"])
    (row,) = tree.xpath(f'//tr[@data-contributor="{ADB}"]')
    assert not row.xpath(".//a")
    assert "(no page)" in row.text_content()
    assert all(
        href.startswith("contributors/")
        for href in tree.xpath("//a/@href[contains(., '.html')]")
        if href != "index.html"
    )
    assert safe_slug(slug) is None


def test_a_duplicate_slug_gets_one_page() -> None:
    report = sample_report()
    report["contributors"][1]["slug"] = "publisher-xm-dac-46004"
    site = render_quality_site(report)
    assert len([path for path in site if path.startswith("contributors/")]) == 3
    page = parse(site["contributors/publisher-xm-dac-46004.html"])
    assert text(page, "//h1") == "Asian Development Bank"


# ---------------------------------------------------------------------- index


def test_header_and_headline_tiles(index: Any) -> None:
    assert text(index, "//h1") == "Data-quality report"
    assert text(index, '//*[@id="as-of"]') == AS_OF
    assert text(index, '//*[@id="generated-at"]') == "2026-11-28 06:40 UTC"
    assert text(index, '//*[@id="release-version"]') == "2026.11.28"
    tiles = {
        node.get("data-figure"): node.text_content() for node in index.xpath("//dd[@data-figure]")
    }
    assert tiles == {
        "contributors": "4",
        "state_valid": "2",
        "state_invalid": "1",
        "state_rejected": "1",
        "state_nothing_received": "0",
        "files": "4",
        "files_rejected": "1",
        "files_stale": "0",
        "records": "63",
        "records_accepted": "61",
        "records_quarantined": "2",
        "records_unaccounted": "0",
        "schema_errors": "1",
        "codelist_errors": "1",
        "expectation_errors": "3",
        "fresh_up_to_date": "1",
        "fresh_due": "1",
        "fresh_overdue": "0",
        "fresh_delinquent": "1",
        "fresh_unknown": "1",
    }
    (rejected,) = index.xpath('//dd[@data-figure="files_rejected"]/..')
    assert "problem" in rejected.get("class")
    (unaccounted,) = index.xpath('//dd[@data-figure="records_unaccounted"]/..')
    assert "problem" not in unaccounted.get("class")


def test_contributors_table_figures(index: Any) -> None:
    table = index.xpath('//table[@id="contributors-table"]')[0]
    assert "sortable" in table.get("class")
    keys = table.xpath(".//thead/tr/th/@data-key")
    assert keys[:9] == [
        "kind",
        "contributor",
        "state",
        "freshness",
        "records",
        "quarantined",
        "schema-errors",
        "codelist-errors",
        "expectation-errors",
    ]
    assert {"activities-with-sector", "forward-budgets", "traceability"} <= set(keys)
    (row,) = table.xpath(f'.//tr[@data-contributor="{ADB}"]')

    def cell(key: str) -> Any:
        (found,) = row.xpath(f'./*[@data-col="{key}"]')
        return found

    assert " ".join(cell("kind").text_content().split()) == "IATI publisher"
    assert "Asian Development Bank" in cell("contributor").text_content()
    assert "XM-DAC-46004" in cell("contributor").text_content()
    assert " ".join(cell("state").text_content().split()) == "! invalid"
    assert cell("state").get("data-sort") == "1"
    assert " ".join(cell("freshness").text_content().split()) == "◔ due 119 days"
    assert cell("freshness").get("data-sort") == "119.0"
    assert cell("records").text_content() == "43"
    assert cell("records").get("data-sort") == "43.0"
    assert cell("quarantined").text_content() == "2"
    assert cell("schema-errors").text_content() == "1"
    assert cell("expectation-errors").text_content() == "3"
    sector = cell("activities-with-sector")
    assert " ".join(sector.text_content().split()) == "72.1% 31 of 43"
    assert sector.get("data-sort") == repr(31 / 43)
    assert " ".join(cell("forward-budgets").text_content().split()) == "70.0% 14 of 20"
    assert " ".join(cell("traceability").text_content().split()) == "75.0% 3 of 4"
    # A share with nothing to count is n/a, and sorts as missing.
    (broken,) = table.xpath(f'.//tr[@data-contributor="{BROKEN}"]')
    (na,) = broken.xpath('./*[@data-col="activities-with-sector"]')
    assert na.get("data-sort") == ""
    assert na.text_content().startswith("n/a")
    assert " ".join(broken.xpath('./*[@data-col="freshness"]')[0].text_content().split()) == (
        "? unknown –"
    )


def test_rejected_file_shows_its_reason(index: Any) -> None:
    reason = "the body is an HTML page, not IATI XML"
    (callout,) = index.xpath('//*[@id="rejected-files"]')
    assert reason in callout.text_content()
    assert "broken-publisher.xml" in callout.text_content()
    (row,) = index.xpath('//table[@id="files-table"]//tr[@data-file="broken-publisher.xml"]')
    assert text(row, './*[@data-col="reason"]/*[@class="reason"]') == reason
    assert " ".join(row.xpath('./*[@data-col="status"]')[0].text_content().split()) == "✗ rejected"
    assert row.xpath('./*[@data-col="contributors"]//a/@href') == [
        "contributors/publisher-xi-iati-broken.html"
    ]


def test_files_table_lists_every_file_with_findings_and_line_numbers(index: Any) -> None:
    rows = index.xpath('//table[@id="files-table"]/tbody/tr')
    assert [row.get("data-file") for row in rows] == [
        entry["source_file"] for entry in sample_report()["files"]
    ]
    (armenia,) = index.xpath('//tr[@data-file="iati-activities-am-armenia.xml"]')
    assert armenia.xpath('./*[@data-col="records"]')[0].text_content() == "43"
    assert armenia.xpath('./*[@data-col="accepted"]')[0].text_content() == "41"
    assert armenia.xpath('./*[@data-col="quarantined"]')[0].text_content() == "2"
    findings = texts(armenia, './/ol[@class="findings"]/li')
    assert findings[0].startswith("line 42 · error · xsd:SCHEMAV_CVC_DATATYPE_VALID_1_2_1:")
    assert "line 118" in findings[1]
    assert "Sector code 99999" in findings[1]
    assert armenia.xpath('.//ol[@class="findings"]/li/@data-line') == ["42.0", "118.0"]


def test_tables_section(index: Any) -> None:
    (row,) = index.xpath('//table[@id="tables-table"]//tr[@data-table="transactions"]')
    cells = texts(row, "./td")
    assert cells[0] == "59"
    assert cells[1] == "✗ failed: 2 violations"
    assert cells[2:] == ["31", "no", "1", "0"]
    (ok,) = index.xpath('//table[@id="tables-table"]//tr[@data-table="activities"]')
    assert texts(ok, "./td")[1] == "✓ passed"
    (failed,) = index.xpath('//table[@data-table="transactions"]//tr[@data-rule]')
    assert failed.get("data-rule") == "value_usd_where_rate"
    assert "iati-activity[4]/transaction[3]" in failed.text_content()
    assert "required:value_date" in text(index, '//section[@id="tables"]')


def test_overall_problems_and_quarantine(index: Any) -> None:
    messages = texts(index, '//section[@id="problems"]//td[@class="message"]')
    assert any("line 42" in message for message in messages)
    rules = index.xpath('//table[@id="quarantine-table"]/tbody/tr/@data-rule')
    assert rules == ["codelist:Sector", "not_iati_xml", "no_future_disbursement"]
    (row,) = index.xpath('//table[@id="quarantine-table"]//tr[@data-rule="codelist:Sector"]')
    assert texts(row, "./td")[:2] == ["✗ error", "2"]
    assert "Sector code 99999" in row.text_content()


def test_trend_and_distribution_charts(index: Any) -> None:
    (states,) = index.xpath('//svg[@id="chart-trend-states"]')
    valid = {
        rect.get("data-run"): rect.get("data-value")
        for rect in states.xpath('.//rect[@data-series="valid"]')
    }
    assert valid == {"0": "1.0", "1": "2.0", "2": "2.0"}
    assert states.xpath('.//rect[@data-series="rejected"]/@data-run') == ["2"]
    (table,) = index.xpath('//table[@data-chart="chart-trend-states"]')
    # the runs before issue 24 had no "nothing received" state
    assert texts(table, "./tbody/tr[3]/td") == ["2", "1", "1", "–"]
    assert "release 2026.11.28" in table.xpath("./tbody/tr[3]/th")[0].text_content()
    (quarantine,) = index.xpath('//table[@data-chart="chart-trend-quarantined"]')
    assert [row[-1] for row in (texts(tr, "./td") for tr in quarantine.xpath("./tbody/tr"))] == [
        "9",
        "5",
        "2",
    ]
    heights = [
        float(rect.get("height"))
        for rect in index.xpath('//svg[@id="chart-trend-quarantined"]//rect[@data-series]')
    ]
    assert heights[0] > heights[1] > heights[2] > 0
    (freshness,) = index.xpath('//table[@data-chart="chart-freshness"]')
    assert {tr.get("data-key"): texts(tr, "./td")[0] for tr in freshness.xpath("./tbody/tr")} == {
        "up_to_date": "1",
        "due": "1",
        "overdue": "0",
        "delinquent": "1",
        "unknown": "1",
    }
    (validity,) = index.xpath('//svg[@id="chart-validity"]')
    bars = {rect.get("data-key"): float(rect.get("width")) for rect in validity.xpath(".//rect")}
    assert bars["valid"] == pytest.approx(2 * bars["invalid"], abs=0.1)


def test_every_chart_has_a_title_and_its_figures_beside_it(site: dict[str, bytes]) -> None:
    charts = 0
    for content in site.values():
        tree = parse(content)
        for svg in tree.xpath("//svg"):
            charts += 1
            assert svg.get("role") == "img"
            (title,) = svg.xpath("./title")
            (desc,) = svg.xpath("./desc")
            assert title.text_content()
            assert desc.text_content()
            assert svg.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
            (caption,) = svg.xpath("ancestor::figure[1]/figcaption")
            assert title.text_content() == caption.text_content()
            (figure,) = svg.xpath("ancestor::figure[1]")
            tables = figure.xpath('.//table[@class="chart-data"]')
            assert len(tables) == 1
            assert tables[0].get("data-chart") == svg.get("id")
            assert tables[0].xpath("./tbody/tr")
            assert svg.xpath("following::table[1]")[0] is tables[0]
    assert charts == 6 + 4  # index: 3 trend, 2 distributions, quarantine; 1 per contributor


def test_headings_are_in_order(site: dict[str, bytes]) -> None:
    for path, content in site.items():
        levels = [int(node.tag[1]) for node in parse(content).xpath("//h1|//h2|//h3|//h4")]
        assert levels[0] == 1, path
        assert levels.count(1) == 1, path
        for before, after in itertools.pairwise(levels):
            assert after <= before + 1, (path, levels)


def test_data_docs_and_release_links() -> None:
    plain = parse(render_quality_site(sample_report())["index.html"])
    assert not plain.xpath('//a[@id="data-docs-link"]')
    site = render_quality_site(
        sample_report(), data_docs=True, release_link="../releases/2026.11.28/"
    )
    index = parse(site["index.html"])
    (docs,) = index.xpath('//a[@id="data-docs-link"]')
    assert docs.get("href") == DATA_DOCS
    assert "Great Expectations Data Docs" in docs.text_content()
    assert index.xpath('//a[@id="release"]/@href') == ["../releases/2026.11.28/"]
    assert "../releases/2026.11.28/data/quarantine.csv" in index.xpath("//a/@href")
    page = parse(site["contributors/country-ke.html"])
    assert page.xpath('//a[@id="data-docs-link"]/@href') == ["../data-docs/index.html"]
    assert page.xpath('//a[@id="release"]/@href') == ["../../releases/2026.11.28/"]
    unsafe = render_quality_site(sample_report(), release_link="javascript:alert(1)")
    assert b"javascript:" not in unsafe["index.html"]


# ------------------------------------------------------------ contributor page


def test_contributor_page_says_who_and_what(adb: Any) -> None:
    assert text(adb, "//h1") == "Asian Development Bank"
    assert text(adb, '//*[@id="kind"]') == "IATI publisher"
    assert text(adb, '//*[@id="ref"]') == "XM-DAC-46004"
    assert text(adb, '//*[@id="state"]') == "! invalid"
    points = texts(adb, '//ul[@id="summary-points"]/li')
    assert points[0].startswith("Your data is invalid:")
    assert "41 of 43 records were accepted; 2 were quarantined (not accepted)." in points
    assert "12 of 43 activities have no sector." in points
    assert "3 of 8 capacity-development activities have no partner declaration." in points
    assert "1 of 4 results indicators lacks a baseline or a target." in points
    assert (
        "Your data was last updated 119 days before 2026-11-28: due for quarterly updates."
        in points
    )
    assert "14 of 20 current activities have a budget for 2026." in points


def test_contributor_problems_with_lines(adb: Any) -> None:
    rows = adb.xpath('//table[@id="problems-table"]/tbody/tr')
    assert [row.get("data-kind") for row in rows] == ["schema", "codelist", "expectation"]
    assert texts(rows[0], "./td")[0] == "✗ error"
    assert "line 42" in texts(rows[0], './td[@class="message"]')[0]
    assert texts(rows[1], './td[@class="where"]') == ["iati-activities-am-armenia.xml line 118"]


def test_contributor_files_findings_completeness_and_more(adb: Any) -> None:
    (block,) = adb.xpath('//div[@class="file"]')
    assert block.get("data-file") == "iati-activities-am-armenia.xml"
    lines = [texts(tr, "./td")[0] for tr in block.xpath(".//table//tbody/tr")]
    assert lines == ["42", "118"]
    assert "codelist:Sector (error) 2" in block.text_content()
    (sector,) = adb.xpath(
        '//table[@id="completeness-table"]//tr[@data-item="activities_with_sector"]'
    )
    assert texts(sector, "./td") == ["31", "43", "72.1%"]
    assert text(adb, '//*[@id="frequency"]') == "quarterly"
    assert text(adb, '//*[@id="age"]') == "119 days"
    assert text(adb, '//*[@id="freshness-state"]') == "◔ due"
    explained = text(adb, '//*[@id="freshness-explained"]')
    assert "up to date for 0–89 days" in explained
    assert "due from 90 days, overdue from 120 days and delinquent from 150 days" in explained
    (current,) = adb.xpath('//table[@id="freshness-thresholds"]//tr[@class="current"]')
    assert current.get("data-frequency") == "quarterly"
    years = adb.xpath('//table[@id="forward-table"]/tbody/tr')
    assert texts(years[0], "./*") == [
        "2026",
        "14",
        "20",
        "70.0%",
        "USD 17.5 million",
    ]
    assert len(years) == 3
    assert texts(adb, '//table[@id="traceability-table"]/tbody/tr[1]/td') == ["3", "4", "75.0%"]
    (rule,) = adb.xpath('//table[@id="quarantine-table"]/tbody/tr')
    assert "/iati-activities/iati-activity[3]/sector[1]" in rule.text_content()
    table = adb.xpath('//table[@data-chart="chart-contributor-trend"]')[0]
    assert [texts(tr, "./td")[3] for tr in table.xpath("./tbody/tr")] == ["9", "5", "2"]


def test_rejected_contributor_page(site: dict[str, bytes]) -> None:
    page = parse(site["contributors/publisher-xi-iati-broken.html"])
    points = texts(page, '//ul[@id="summary-points"]/li')
    assert points[0].startswith("Your data is rejected: every file was rejected")
    assert (
        "Your file broken-publisher.xml was rejected: the body is an HTML page, not IATI XML"
        in points
    )
    assert "No update date of yours is known, so freshness cannot be judged." in points
    assert text(page, '//p[@class="callout"]//*[@class="reason"]') == (
        "the body is an HTML page, not IATI XML"
    )
    # Only the runs it was in have figures; the others say so.
    rows = page.xpath('//table[@data-chart="chart-contributor-trend"]/tbody/tr')
    assert [texts(tr, "./td")[0] for tr in rows] == ["–", "–", "✗ rejected"]


def test_valid_contributor_has_no_problem(site: dict[str, bytes]) -> None:
    page = parse(site["contributors/country-ke.html"])
    assert text(page, '//*[@id="kind"]') == "Compact country"
    assert "None. Thank you!" in text(page, '//section[@id="problems"]')
    assert texts(page, '//ul[@id="summary-points"]/li')[0].startswith("Your data is valid:")


# --------------------------------------------------------------------- safety


def test_hostile_strings_are_text() -> None:
    report = sample_report()
    report["contributors"][0]["name"] = HOSTILE
    report["contributors"][0]["ref"] = HOSTILE
    report["contributors"][0]["problems"][0]["message"] = HOSTILE
    report["files"][0]["source_file"] = HOSTILE
    report["files"][0]["reason"] = HOSTILE
    report["files"][2]["findings"][0]["message"] = HOSTILE
    report["overall"]["quarantine"]["by_rule"][0]["example"]["value"] = HOSTILE
    report["tables"][HOSTILE] = {"rows": 1, "schema_conformance": {"violations": {HOSTILE: 1}}}
    report["as_of"] = HOSTILE
    report["trend"][0]["as_of"] = HOSTILE
    report["settings"]["freshness"][HOSTILE] = HOSTILE
    site = render_quality_site(report)
    for content in site.values():
        page = content.decode()
        tree = parse(content)
        assert len(tree.xpath("//script")) == 1
        assert not tree.xpath("//img | //*[@onerror]")
        assert "<script>alert" not in page
    index = parse(site["index.html"])
    assert HOSTILE in index.xpath(f'//tr[@data-contributor="{ADB}"]/th')[0].text_content()
    assert HOSTILE in text(index, '//*[@id="rejected-files"]')
    page = parse(site["contributors/publisher-xm-dac-46004.html"])
    assert text(page, "//h1") == " ".join(HOSTILE.split())


def test_no_external_resources(site: dict[str, bytes]) -> None:
    for path, content in site.items():
        page = content.decode()
        tree = parse(content)
        assert not tree.xpath("//script[@src] | //link | //img | //iframe | //object"), path
        assert "@import" not in page
        assert "url(" not in page
        assert not re.search(r"(src|href)=\"(https?:)?//", page), path
        assert [node.text for node in tree.xpath("//script")] == [SORT_SCRIPT]
        (csp,) = tree.xpath('//meta[@http-equiv="Content-Security-Policy"]/@content')
        assert csp == CSP
        assert f"'sha256-{SCRIPT_HASH}'" in csp
        assert "default-src 'none'" in csp
        for target in tree.xpath("//a/@href"):
            assert not re.match(r"[a-z]+:", target), (path, target)


def test_missing_pieces_do_not_break_the_pages() -> None:
    site = render_quality_site({})
    tree = parse(site["index.html"])
    assert "No contributor in this report." in tree.text_content()
    assert "No file in this report." in tree.text_content()
    sparse = sample_report()
    for contributor in sparse["contributors"]:
        contributor["figures"] = {}
    del sparse["overall"]
    sparse["trend"] = []
    site = render_quality_site(sparse)
    assert len(site) == 5
    page = parse(site["contributors/country-ke.html"])
    assert "No completeness figures in this report." in page.text_content()
    assert "No run recorded yet." in page.text_content()


def test_long_trends_fold_their_tables() -> None:
    report = sample_report()
    report["trend"] = [copy.deepcopy(report["trend"][0]) for _ in range(40)]
    tree = parse(render_quality_site(report)["index.html"])
    (table,) = tree.xpath('//table[@data-chart="chart-trend-states"]')
    assert table.getparent().tag == "details"
    assert len(table.xpath("./tbody/tr")) == 40


def test_records_neither_accepted_nor_quarantined_are_shown_as_a_problem() -> None:
    from publish.quality_html import _unaccounted

    lost = {"records": 10, "records_accepted": 7, "records_quarantined": 2}
    assert _unaccounted(lost) == 1
    assert _unaccounted({**lost, "records_accepted": 8}) == 0
    assert _unaccounted({"records": 10}) is None
    report = sample_report()
    report["overall"]["validity"]["records_accepted"] -= 1
    index = parse(render_quality_site(report)["index.html"])
    (tile,) = index.xpath('//dd[@data-figure="records_unaccounted"]')
    assert tile.text_content() == "1"
    assert "problem" in tile.getparent().get("class").split()


# ------------------------------------------------------------------ languages

NBSP = "\u00a0"


@pytest.fixture(scope="module")
def bilingual() -> dict[str, bytes]:
    return render_quality_site(
        sample_report(),
        data_docs=True,
        release_link="../releases/2026.11.28/",
        languages=("en", "fr"),
    )


def test_every_page_in_every_language(bilingual: dict[str, bytes]) -> None:
    english = render_quality_site(sample_report())
    assert sorted(bilingual) == sorted(
        [*english, *(path.removesuffix(".html") + ".fr.html" for path in english)]
    )
    for path, content in bilingual.items():
        assert parse(content).get("lang") == ("fr" if path.endswith(".fr.html") else "en")


def test_english_alone_has_no_language_links(site: dict[str, bytes]) -> None:
    for content in site.values():
        tree = parse(content)
        assert not tree.xpath("//link[@hreflang]")
        assert not tree.xpath('//nav[@class="lang"]')


def test_the_languages_link_each_other(bilingual: dict[str, bytes]) -> None:
    for stem in ("index", "contributors/publisher-xm-dac-46004", "contributors/country-ke"):
        name = stem.rsplit("/", 1)[-1]
        for lang, path in (("en", f"{stem}.html"), ("fr", f"{stem}.fr.html")):
            tree = parse(bilingual[path])
            alternates = {
                link.get("hreflang"): link.get("href")
                for link in tree.xpath('//link[@rel="alternate"]')
            }
            assert alternates == {"en": f"{name}.html", "fr": f"{name}.fr.html"}
            (switch,) = tree.xpath('//nav[@class="lang"]')
            other = "fr" if lang == "en" else "en"
            assert switch.xpath(".//a/@hreflang") == [other]
            assert switch.xpath(".//a/@href") == [alternates[other]]
            assert switch.xpath(".//*[@aria-current]/@lang") == [lang]


def test_french_pages_link_french_pages(bilingual: dict[str, bytes]) -> None:
    index = parse(bilingual["index.fr.html"])
    pages = index.xpath('//table[@id="contributors-table"]//a/@href')
    assert pages
    assert all(href.endswith(".fr.html") for href in pages)
    assert set(pages) <= set(bilingual)
    files = index.xpath('//table[@id="files-table"]//a/@href')
    assert files
    assert all(href.endswith(".fr.html") for href in files)
    english = parse(bilingual["index.html"])
    assert all(
        not href.endswith(".fr.html")
        for href in english.xpath('//table[@id="contributors-table"]//a/@href')
    )
    page = parse(bilingual["contributors/publisher-xm-dac-46004.fr.html"])
    assert page.xpath('//p[@class="back"]/a/@href') == ["../index.fr.html"]
    # Data Docs and the data stay as they are; the release's page is its French one.
    assert page.xpath('//a[@id="data-docs-link"]/@href') == ["../data-docs/index.html"]
    assert page.xpath('//a[@id="release"]/@href') == ["../../releases/2026.11.28/index.fr.html"]
    assert index.xpath('//a[@id="release"]/@href') == ["../releases/2026.11.28/index.fr.html"]
    assert "../releases/2026.11.28/data/quarantine.csv" in index.xpath("//a/@href")


def test_french_index(bilingual: dict[str, bytes]) -> None:
    index = parse(bilingual["index.fr.html"])
    english = parse(bilingual["index.html"])
    assert text(index, "//h1") == "Rapport sur la qualité des données"
    assert text(index, "//head/title") == "Rapport sur la qualité des données 2026-11-28"
    assert texts(index, '//section[@id="figures"]//h3') == [
        "Contributeurs par état",
        "Fichiers et enregistrements",
        "Actualité",
    ]
    assert "Problèmes à corriger (tout le Compact)" in texts(index, "//h2")
    # the same figures as in English
    tiles = "//dd[@data-figure]"
    assert texts(index, tiles) == texts(english, tiles)
    (row,) = index.xpath(f'//tr[@data-contributor="{ADB}"]')

    def cell(key: str) -> str:
        return " ".join(row.xpath(f'./*[@data-col="{key}"]')[0].text_content().split())

    assert cell("kind") == "Éditeur IITA"
    assert cell("state") == "! non valide"
    assert cell("freshness") == "◔ à mettre à jour 119 jours"
    # shares and counts through Babel: decimal comma, no-break space before %
    assert cell("activities-with-sector") == f"72,1{NBSP}% 31 sur 43".replace(NBSP, " ")
    sector = row.xpath('./*[@data-col="activities-with-sector"]')[0].text_content()
    assert f"72,1{NBSP}%" in sector
    assert text(index, '//table[@id="contributors-table"]/caption') == "4 contributeurs"
    assert "Choisissez les colonnes" in index.text_content()
    labels = texts(index, '//fieldset[@class="columns"]/label')
    assert labels == [
        "Enregistrements et erreurs",
        "Complétude",
        "Budgets et traçabilité",
        "Toutes les colonnes",
    ]
    (nav,) = index.xpath('//nav[@aria-label="Rubriques"]')
    assert nav.xpath(".//a/text()")[0] == "Chiffres clés"
    (rejected,) = index.xpath('//div[@id="rejected-files"]/h3')
    assert rejected.text_content() == "1 fichier rejeté"
    chart = index.xpath('//svg[@id="chart-validity"]')[0]
    assert chart.xpath("./*[local-name()='title']/text()") == ["Contributeurs par état de validité"]
    assert "valide" in chart.xpath(".//*[local-name()='text']/text()")
    # validator messages and rule ids are data: as they are
    assert "Sector code 99999 is not in the DAC 5-digit codelist" in index.text_content()
    footer = text(index, "//footer")
    assert footer.startswith("Produit par cdcompact à partir de report.json")


def test_french_contributor_page(bilingual: dict[str, bytes]) -> None:
    page = parse(bilingual["contributors/publisher-xm-dac-46004.fr.html"])
    english = parse(bilingual["contributors/publisher-xm-dac-46004.html"])
    assert text(page, "//h1") == "Asian Development Bank"
    assert text(page, '//*[@id="kind"]') == "Éditeur IITA"
    assert text(page, '//*[@id="state"]') == "! non valide"
    assert text(page, '//*[@id="summary-h"]') == "Résumé"
    points = texts(page, '//ul[@id="summary-points"]/li')
    # texts() reads a no-break space as a space; French typography is checked on the bytes
    assert points[0].startswith("Vos données sont non valides : ")
    raw = bilingual["contributors/publisher-xm-dac-46004.fr.html"].decode()
    assert f"non valides</strong>{NBSP}: une partie" in raw
    assert (
        "41 enregistrements sur 43 ont été acceptés ; 2 ont été mis en quarantaine (non acceptés)."
    ) in points
    assert "12 activités sur 43 n'ont pas de secteur." in points
    assert "1 indicateur de résultats sur 4 n'a pas de situation de référence ou de cible." in (
        points
    )
    assert "14 activités en cours sur 20 ont un budget pour 2026." in points
    assert text(page, '//*[@id="frequency"]') == "chaque trimestre"
    assert text(page, '//*[@id="age"]') == "119 jours"
    assert text(page, '//*[@id="freshness-state"]') == "◔ à mettre à jour"
    explained = text(page, '//*[@id="freshness-explained"]')
    assert "à jour pendant 0 à 89 jours" in explained
    (sector,) = page.xpath(
        '//table[@id="completeness-table"]//tr[@data-item="activities_with_sector"]'
    )
    assert texts(sector, "./td") == ["31", "43", "72,1 %"]
    assert f"72,1{NBSP}%" in sector.text_content()
    years = page.xpath('//table[@id="forward-table"]/tbody/tr')
    assert texts(years[0], "./*") == ["2026", "14", "20", "70,0 %", "17,5 millions USD"]
    (block,) = page.xpath('//div[@class="file"]')
    assert "codelist:Sector (erreur) 2" in block.text_content()
    assert texts(block, ".//dd")[-2:] == [
        "1 erreur, 0 avertissement (IATI 2.03)",
        "1 erreur, 0 avertissement",
    ]
    # the findings are data: the validator's English message, the rule id
    finding = block.xpath(".//table//tbody/tr")[0]
    assert "xsd:SCHEMAV_CVC_DATATYPE_VALID_1_2_1" in finding.text_content()
    assert "is not a valid value of the atomic type" in finding.text_content()
    # the same figures as in English
    tiles = "//dd[@data-figure]"
    assert texts(page, tiles) == texts(english, tiles)
    trend = '//table[@data-chart="chart-contributor-trend"]/tbody/tr/td[4]'
    assert texts(page, trend) == texts(english, trend)


def test_an_unknown_language_is_refused() -> None:
    with pytest.raises(ValueError, match="no translation"):
        render_quality_site(sample_report(), languages=("en", "xx"))


def test_the_sort_script_is_allowed_in_every_language(bilingual: dict[str, bytes]) -> None:
    for content in bilingual.values():
        tree = parse(content)
        (csp,) = tree.xpath('//meta[@http-equiv="Content-Security-Policy"]/@content')
        assert csp == CSP
        assert tree.xpath("//script/text()") == [SORT_SCRIPT]
