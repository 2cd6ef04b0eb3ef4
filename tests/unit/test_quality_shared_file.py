"""Three publishers in one file: each gets its own figures and findings, never the file's.

The file is written by the test from real publishers' activities in ../shared/fixtures:
Action Against Hunger Spain's 6 (acfspain-ph.xml), the World Bank's 13 (worldbank-sv.xml)
and WRI's 1 (wri-521257057-...xml), plus one activity without an identifier, which
cannot be accepted and whose publisher cannot be known. One World Bank transaction loses
its value (quarantined with the World Bank's activity) and WRI's activity gets an element
the 2.03 schema does not allow (a finding in WRI's activity).
"""

from __future__ import annotations

import datetime as dt
import json
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import lxml.html
from lxml import etree

from assets.iati.conformance import IatiSchemas
from assets.iati.harmonise import HarmoniseOptions, harmonise_paths
from assets.settings import load_settings
from assets.warehouse import register_frames
from expectations.quality import build_quality_report
from publish.quality_html import render_contributor
from tests.conftest import IATI_FIXTURES, IATI_SCHEMAS

VALID = IATI_FIXTURES / "valid"
ACF = "publisher:ES-CIF-G81164105"
WB = "publisher:44000"
WRI = "publisher:US-EIN-521257057"
NAME = "three-publishers.xml"


def _activities(name: str) -> list[etree._Element]:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True)
    root = etree.parse(str(VALID / name), parser).getroot()
    return list(root.iterchildren("iati-activity"))


def _write(folder: Path) -> Path:
    root = etree.Element("iati-activities", version="2.03")
    acf = _activities("acfspain-ph.xml")
    world_bank = _activities("worldbank-sv.xml")
    (wri,) = _activities("wri-521257057-strategic-plan-2023-2027.xml")
    value = world_bank[0].find("transaction/value")
    assert value is not None
    value.getparent().remove(value)  # a transaction without a value: quarantined
    etree.SubElement(wri, "not-an-iati-element")  # the 2.03 schema allows no such child
    nameless = etree.Element("iati-activity")
    etree.SubElement(nameless, "title").text = "no identifier"
    for activity in [*acf, *world_bank, wri, nameless]:
        root.append(activity)
    path = folder / NAME
    path.write_bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
    return path


@cache
def _report(folder: Path) -> dict[str, Any]:
    options = HarmoniseOptions(
        rules=load_settings().cd_rules, schemas=IatiSchemas.from_dir(IATI_SCHEMAS)
    )
    _, tables = harmonise_paths([_write(folder)], options)
    with duckdb.connect() as con:
        register_frames(con, tables)
        return build_quality_report(
            con,
            list(tables),
            validations=None,
            as_of=dt.date(2026, 12, 6),
            generated_at=dt.datetime(2026, 12, 6, 2, tzinfo=dt.UTC),
            freshness={"iati": "monthly", "country_report": "annually", "partner": "annually"},
        )


def _contributor(report: dict[str, Any], who: str) -> dict[str, Any]:
    return next(c for c in report["contributors"] if c["id"] == who)


def test_each_publisher_counts_its_own_records(tmp_path: Path) -> None:
    report = _report(tmp_path)
    (entry,) = report["files"]
    # the file: 21 activities, 20 accepted, the nameless one quarantined
    assert (entry["n_records"], entry["n_accepted"], entry["n_quarantined"]) == (21, 20, 1)
    assert sorted(entry["contributors"]) == sorted([ACF, WB, WRI])
    expected = {ACF: 6, WB: 13, WRI: 1}
    for who, accepted in expected.items():
        validity = _contributor(report, who)["figures"]["validity"]
        assert (validity["records"], validity["records_accepted"]) == (accepted, accepted), who
        assert validity["records_quarantined"] == 0, who
    overall = report["overall"]["validity"]
    assert (overall["records"], overall["records_quarantined"]) == (21, 1)
    parts = {p["contributor"]: p for p in entry["parts"]}
    assert {who: p["n_accepted"] for who, p in parts.items()} == expected


def test_each_publisher_sees_its_own_findings_and_the_files(tmp_path: Path) -> None:
    report = _report(tmp_path)
    (entry,) = report["files"]
    parts = {p["contributor"]: p for p in entry["parts"]}
    # the missing value is the World Bank's; the nameless activity is the file's (everyone's)
    rules = {who: {r["rule"] for r in p["quarantine"]} for who, p in parts.items()}
    assert "missing_value" in rules[WB]
    assert "missing_value" not in rules[ACF] | rules[WRI]
    assert {"missing_identifier"} <= rules[ACF] & rules[WB] & rules[WRI]
    # WRI's schema error is WRI's alone
    wri_errors = [f for f in parts[WRI]["findings"] if f["severity"] == "error"]
    assert any("not-an-iati-element" in f["message"] for f in wri_errors)
    for who in (ACF, WB):
        assert not any("not-an-iati-element" in f["message"] for f in parts[who]["findings"])
    # the nameless activity's schema error has no activity: it is the file's, everyone's;
    # the World Bank's value-less transaction breaks the schema in its own activity
    errors = {who: p["schema"]["errors"] for who, p in parts.items()}
    assert errors == {ACF: 1, WB: 2, WRI: 2}
    for who, count in errors.items():
        validity = _contributor(report, who)["figures"]["validity"]
        assert validity["schema_errors"] == count, who


def test_the_contributor_page_shows_its_own_part(tmp_path: Path) -> None:
    report = _report(tmp_path)
    page = lxml.html.fromstring(render_contributor(report, _contributor(report, ACF)))
    (block,) = page.xpath(f'//div[@data-file="{NAME}"]')
    text = block.text_content()
    assert "also holds the activities of 2 other publishers" in text
    assert "your 6 accepted activities" in text
    assert "1 activities of the file were not accepted" in text
    facts = {
        dt_.text_content(): dd.text_content()
        for dt_, dd in zip(block.xpath(".//dt"), block.xpath(".//dd"), strict=True)
    }
    assert (facts["Records"], facts["Accepted"], facts["Quarantined"]) == ("6", "6", "0")
    assert "not-an-iati-element" not in text
    assert "missing_value" not in text
    assert json.dumps(report)  # JSON-safe
