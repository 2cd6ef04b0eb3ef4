"""The quality report as the secretariat uses it (issue 24), on a demo night.

The night: the project's demo as `make run` reads it with config/compact.yaml (the four
demo IATI files checked against the demo codelists, no IATI schema configured; the
demo's country reports of Ghana, Kenya and Nepal and its two partner submissions),
harmonised and reported as the nightly run does. The compact expects five countries
(Armenia and El Salvador sent nothing) and its four demo publishers, plus a publisher
and contacts a test adds to the demo's configuration.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import lxml.html
import pandas as pd
import pytest

from assets.iati.codelists import load_codelists
from assets.iati.harmonise import HarmoniseOptions, combine, harmonise_paths
from assets.iati.rates import load_exchange_rates
from assets.settings import ConfigError, Contact, Settings, load_settings
from assets.submissions.check import check_submission
from assets.submissions.harmonise import harmonise_submission
from assets.submissions.read import read_submission
from assets.warehouse import register_frames
from publish.quality import QualityBundle, QualityInputs, quality_bundle
from tests.conftest import PROJECT_ROOT

NOW = dt.datetime(2026, 12, 7, 2, 0, tzinfo=dt.UTC)
DEMO = PROJECT_ROOT / "demo"
#: A publisher the compact expects that published nothing.
SILENT = "XM-DAC-99999"


@cache
def demo_settings() -> Settings:
    return load_settings(PROJECT_ROOT / "config" / "compact.yaml", environ={})


@cache
def demo_tables() -> dict[str, pd.DataFrame]:
    """The demo night's harmonised tables: IATI files and submissions, as the run reads them."""
    settings = demo_settings()
    assert settings.codelists_dir is not None
    codelists = load_codelists(settings.codelists_dir)
    rates = load_exchange_rates(list(settings.exchange_rate_files))
    options = HarmoniseOptions(rules=settings.cd_rules, rates=rates, codelists=codelists)
    iati, _ = harmonise_paths([DEMO / "iati"], options)
    submissions = []
    for path in sorted((DEMO / "submissions").iterdir()):
        checked = check_submission(read_submission(path, path.name), settings, codelists, None)
        submissions.append(
            harmonise_submission(
                checked,
                source_file=path.name,
                sha256=hashlib.sha256(path.name.encode()).hexdigest(),
                size=1,
                uri=path.as_uri(),
                rates=rates,
                cd_sectors=settings.cd_rules.cd_sectors,
                codelists=codelists,
            )
        )
    return combine([*iati, *submissions])


def night(settings: Settings | None = None) -> QualityBundle:
    quality = (settings or demo_settings()).quality
    tables = demo_tables()
    with duckdb.connect() as con:
        register_frames(con, tables)
        return quality_bundle(
            con,
            list(tables),
            release="2026.12.07",
            inputs=QualityInputs(settings=quality, as_of=NOW.date()),
            now=NOW,
        )


def with_silent_publisher() -> Settings:
    """The demo's configuration, expecting one more publisher, with contacts."""
    settings = demo_settings()
    quality = dataclasses.replace(
        settings.quality,
        publishers=(*settings.quality.publishers, SILENT),
        contacts={
            **settings.quality.contacts,
            SILENT: Contact("Silent Fund data team", "data@silent-fund.example.org"),
            "GB-DEMO-2002": Contact("Demo Agency IATI desk", "iati-desk@agency.example.org"),
        },
    )
    return dataclasses.replace(settings, quality=quality)


@pytest.fixture(scope="module")
def demo() -> QualityBundle:
    return night()


@pytest.fixture(scope="module")
def chased() -> QualityBundle:
    return night(with_silent_publisher())


def page(bundle: QualityBundle, path: str) -> Any:
    return lxml.html.document_fromstring(bundle.latest_files[path])


def words(node: Any) -> str:
    return " ".join(node.text_content().split())


def contributor(bundle: QualityBundle, ident: str) -> dict[str, Any]:
    (found,) = [c for c in bundle.report["contributors"] if c["id"] == ident]
    return found


def own_page(bundle: QualityBundle, ident: str) -> Any:
    return page(bundle, f"contributors/{contributor(bundle, ident)['slug']}.html")


# -- 1. whoever sent nothing is a contributor: whom to chase -----------------------------------


def test_countries_and_publishers_that_sent_nothing_are_contributors(
    chased: QualityBundle,
) -> None:
    states = {c["id"]: c["figures"]["validity"]["state"] for c in chased.report["contributors"]}
    nothing = sorted(who for who, state in states.items() if state == "nothing_received")
    assert nothing == ["country:AM", "country:SV", f"publisher:{SILENT}"]
    for who in ("country:GH", "country:KE", "country:NP", "publisher:XM-DEMO-1001"):
        assert states[who] != "nothing_received", who
    silent = contributor(chased, f"publisher:{SILENT}")
    assert silent["expected"] is True
    assert silent["files"] == []
    assert silent["figures"]["validity"]["files"] == 0
    assert silent["problems"] == []
    entry = chased.report["trend"][-1]["overall"]["state_counts"]
    assert entry["nothing_received"] == 3


def test_a_country_is_named_not_only_by_its_code(chased: QualityBundle) -> None:
    # the report of a run (no release's countries table yet) names countries as CLDR does
    assert contributor(chased, "country:AM")["name"] == "Armenia"
    assert contributor(chased, "country:GH")["name"] == "Ghana"
    markdown = chased.latest_files["report.md"].decode()
    assert "| Armenia (AM) | country | nothing_received |" in markdown


def test_the_index_says_whom_to_chase(chased: QualityBundle) -> None:
    index = page(chased, "index.html")
    rows = index.xpath('//table[@id="chase-table"]/tbody/tr')
    assert sorted(row.get("data-contributor") for row in rows) == [
        "country:AM",
        "country:SV",
        f"publisher:{SILENT}",
    ]
    for row in rows:
        assert "nothing received" in words(row)
        (link,) = row.xpath(".//th//a/@href")
        assert (chased.latest_files.get(link)) is not None, link
    (tile,) = index.xpath('//dd[@data-figure="state_nothing_received"]/@data-value')
    assert float(tile) == 3
    markdown = chased.latest_files["report.md"].decode()
    assert "## Whom to chase" in markdown
    assert "| Armenia CD focal point (demo) cd-focal-point.am@example.org |" in markdown


def test_a_page_of_a_contributor_that_sent_nothing_says_so(chased: QualityBundle) -> None:
    own = own_page(chased, "country:SV")
    assert "nothing received" in words(own.xpath('//*[@id="state"]')[0])
    summary = words(own.xpath('//*[@id="summary-points"]')[0])
    assert "nothing of yours was received in this run" in summary
    assert "No file in this run." in words(own.xpath('//section[@id="files"]')[0])
    # a country is pointed to its template, a publisher to the IATI Registry
    resubmit = own.xpath('//section[@id="resubmit"]//code[@class="template"]/text()')
    assert "country_report.xlsx" in resubmit
    silent = own_page(chased, f"publisher:{SILENT}")
    steps = words(silent.xpath('//section[@id="resubmit"]')[0])
    assert "Publish your IATI activity files on the IATI Registry" in steps
    assert "named below" not in steps


# -- 2. contacts -----------------------------------------------------------------------------


def test_contacts_are_on_the_page_and_in_the_chase_list(chased: QualityBundle) -> None:
    assert contributor(chased, "country:AM")["contact"] == {
        "name": "Armenia CD focal point (demo)",
        "email": "cd-focal-point.am@example.org",
    }
    assert contributor(chased, "country:GH")["contact"] is None
    index = page(chased, "index.html")
    (row,) = index.xpath(f'//table[@id="chase-table"]//tr[@data-contributor="publisher:{SILENT}"]')
    assert row.xpath(".//a/@href")[-1] == "mailto:data@silent-fund.example.org"
    assert "Silent Fund data team" in words(row)
    # a contributor who sent data has its contact on its own page, not in the chase list
    own = own_page(chased, "publisher:GB-DEMO-2002")
    contact = own.xpath('//*[@id="contact"]')[0]
    assert "Demo Agency IATI desk" in words(contact)
    assert contact.xpath(".//a/@href") == ["mailto:iati-desk@agency.example.org"]
    assert not index.xpath(
        '//table[@id="chase-table"]//tr[@data-contributor="publisher:GB-DEMO-2002"]'
    )
    ghana = own_page(chased, "country:GH")
    assert "no contact configured" in words(ghana.xpath('//*[@id="contact"]')[0])


@pytest.mark.parametrize(
    ("contacts", "message"),
    [
        (
            "    GH: {name: Ghana desk, email: ghana-desk.example.org}\n",
            "compact.contacts.GH.email: 'ghana-desk.example.org' is not an e-mail address",
        ),
        (
            "    GH: {name: Ghana desk, email: 'desk @example.org'}\n",
            "compact.contacts.GH.email: 'desk @example.org' is not an e-mail address",
        ),
        ("    GH: {name: Ghana desk}\n", "compact.contacts.GH.email: field required"),
        (
            "    GH: {name: '', email: desk@example.org}\n",
            "compact.contacts.GH.name: string should have at least 1 character",
        ),
    ],
)
def test_a_bad_contact_stops_the_configuration(tmp_path: Path, contacts: str, message: str) -> None:
    path = tmp_path / "compact.yaml"
    path.write_text("compact:\n  contacts:\n" + contacts)
    with pytest.raises(ConfigError) as raised:
        load_settings(path, environ={})
    assert str(path) in str(raised.value)
    assert message in str(raised.value)


def test_the_demo_configuration_expects_its_countries_and_publishers() -> None:
    quality = demo_settings().quality
    assert quality.countries == ("GH", "KE", "NP", "AM", "SV")
    assert quality.publishers == ("XM-DEMO-1001", "GB-DEMO-2002", "FR-DEMO-3003", "SE-DEMO-4004")
    assert quality.contacts["AM"].email == "cd-focal-point.am@example.org"
    live = load_settings(PROJECT_ROOT / "config" / "live.yaml", environ={}).quality
    assert live.contacts == {}
    assert "XM-DEMO-1001" not in live.publishers


# -- 3. the compact's own setup --------------------------------------------------------------


def test_the_compacts_setup_is_reported_once_and_charged_to_no_one(demo: QualityBundle) -> None:
    report = demo.report
    setup = {item["rule"]: item for item in report["setup"]}
    schema = setup["xsd:not_checked"]
    assert schema["files"] == 4
    assert "no schemas are configured" in schema["message"]
    assert sorted(schema["examples"]) == sorted(p.name for p in (DEMO / "iati").glob("*.xml"))
    kinds = [p["rule"] or "" for p in report["problems"]]
    assert not [k for k in kinds if k.endswith(":not_checked")], kinds
    for item in report["contributors"]:
        rules = [p["rule"] or "" for p in item["problems"]]
        assert not [r for r in rules if r.endswith(":not_checked")], item["id"]
    index = page(demo, "index.html")
    (section,) = index.xpath('//section[@id="setup"]')
    assert "Setup of this compact" in words(section)
    assert section.xpath('.//tr[@data-rule="xsd:not_checked"]')
    assert "not_checked" not in words(index.xpath('//section[@id="problems"]')[0])
    assert "not_checked" not in words(index.xpath('//section[@id="files"]')[0])
    for path, content in demo.latest_files.items():
        if path.startswith("contributors/"):
            assert b"not_checked" not in content, path
            assert b"no schemas are configured" not in content, path


# -- 4. a contributor page that can be sent as it is -----------------------------------------


def test_a_gap_names_the_activities(demo: QualityBundle) -> None:
    for item in demo.report["contributors"]:
        gap = item["figures"]["completeness"]["cd_activities_with_declaration"]
        if gap["denominator"] and gap["numerator"] < gap["denominator"]:
            break
    else:
        pytest.fail("no demo publisher has a CD activity without a partner declaration")
    missing = gap["denominator"] - gap["numerator"]
    assert len(gap["missing"]) == missing
    activities = demo_tables()["activities"]
    theirs = activities[
        (activities["reporting_org_ref"] == item["ref"]) & activities["is_cd"].astype(bool)
    ]
    declared = set(demo_tables()["partner_declarations"]["activity_id"])
    assert sorted(gap["missing"]) == sorted(set(theirs["activity_id"]) - declared)
    own = own_page(demo, item["id"])
    (point,) = own.xpath('//li[@data-gap="cd_activities_with_declaration"]')
    assert point.xpath('.//code[@class="activity"]/text()') == gap["missing"]


def test_a_long_gap_names_the_first_activities_and_counts_the_rest(demo: QualityBundle) -> None:
    from publish.quality_html import MAX_NAMED, render_contributor

    report = demo.report
    item = next(c for c in report["contributors"] if c["id"] == "publisher:XM-DEMO-1001")
    ids = [f"XM-DEMO-1001-X{n:02}" for n in range(25)]
    long_gap = {"numerator": 5, "denominator": 30, "share": 5 / 30, "missing": ids[:20]}
    changed = {
        **item,
        "figures": {
            **item["figures"],
            "completeness": {
                **item["figures"]["completeness"],
                "cd_activities_with_declaration": long_gap,
            },
        },
    }
    own = lxml.html.document_fromstring(render_contributor(report, changed))
    (point,) = own.xpath('//li[@data-gap="cd_activities_with_declaration"]')
    assert point.xpath('.//code[@class="activity"]/text()') == ids[:MAX_NAMED]
    assert words(point).endswith(f"and {25 - MAX_NAMED} more.")


def test_problems_are_located_by_activity_identifier(demo: QualityBundle) -> None:
    located = [
        problem
        for item in demo.report["contributors"]
        for problem in item["problems"]
        if problem["where"] and ", activity " in problem["where"]
    ]
    assert located, [p["where"] for c in demo.report["contributors"] for p in c["problems"]]
    activity_ids = set(demo_tables()["activities"]["activity_id"])
    for problem in located:
        source_file, activity = problem["where"].split(", activity ")
        assert source_file.split(" line ")[0] in {p.name for p in (DEMO / "iati").iterdir()}
        assert activity in activity_ids
        assert "iati-activity[" not in problem["where"]
        assert "iati-activity[" not in problem["message"]
    for item in demo.report["contributors"]:
        own = own_page(demo, item["id"])
        for section in ("problems", "quarantine"):
            text = words(own.xpath(f'//section[@id="{section}"]')[0])
            assert not re.search(r"iati-activity\[\d+\]", text), (item["id"], section)
    # the demo's sector without a percentage, in the quarantine table of its publisher
    own = own_page(demo, "publisher:GB-DEMO-2002")
    (row,) = own.xpath('//table[@id="quarantine-table"]//tr[@data-rule="percentage_missing"]')
    assert "GB-DEMO-2002-GH-WASH-02" in words(row)


def test_the_page_says_how_to_fix_and_resubmit(demo: QualityBundle) -> None:
    ghana = own_page(demo, "country:GH")
    (section,) = ghana.xpath('//section[@id="resubmit"]')
    templates = section.xpath('.//code[@class="template"]/text()')
    assert "country_report.xlsx" in templates
    assert (PROJECT_ROOT / "templates" / "country_report.xlsx").is_file()
    assert (PROJECT_ROOT / "templates" / "country_report").is_dir()
    (command,) = section.xpath('.//code[@class="command"]/text()')
    assert command == "cdcompact check " + contributor(demo, "country:GH")["files"][-1]
    partner = next(c for c in demo.report["contributors"] if c["kind"] == "partner")
    (section,) = own_page(demo, partner["id"]).xpath('//section[@id="resubmit"]')
    assert "partner_submission.xlsx" in section.xpath('.//code[@class="template"]/text()')
    publisher = own_page(demo, "publisher:XM-DEMO-1001")
    (section,) = publisher.xpath('//section[@id="resubmit"]')
    assert "IATI Registry" in words(section)


def test_the_warnings_card_counts_what_the_page_lists(demo: QualityBundle) -> None:
    # the demo's Skills and Statistics Trust: one sector without a percentage, set aside
    item = contributor(demo, "publisher:GB-DEMO-2002")
    own = own_page(demo, item["id"])
    (card,) = own.xpath('//dd[@data-figure="warnings"]/@data-value')
    findings = own.xpath('//section[@id="files"]//tr[@data-line]//*[@data-severity="warning"]')
    set_aside = sum(
        rule["rows"]
        for rule in item["figures"]["quarantine"]["by_rule"]
        if rule["severity"] == "warning"
    )
    assert float(card) == len(findings) + set_aside == 1
    # on every page, the card is the sum of the warnings its problems list
    for item in demo.report["contributors"]:
        (card,) = own_page(demo, item["id"]).xpath('//dd[@data-figure="warnings"]/@data-value')
        listed = sum(
            p["count"]
            for p in item["problems"]
            if p["severity"] == "warning" and p["kind"] != "freshness"
        )
        assert float(card or 0) == listed, item["id"]
