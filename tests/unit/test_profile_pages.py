"""The profile pages of a real release of the small compact (``tests/profile_compact.py``):
hand-computed figures on the pages in English and French, and the pages, row extracts,
catalogue entry and index links that ``publish_release`` writes."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
from dataclasses import replace
from pathlib import Path

import lxml.html
import pytest

from assets.storage.targets import LocalTarget
from publish.profiles import ProfileOptions
from publish.release import publish_release
from tests.profile_compact import COUNTRY_NAMES, PEER_GROUPS, SECTOR_NAMES, golden_tables
from tests.unit.test_release import OPTIONS, stored

NOW = dt.datetime(2026, 11, 28, 2, 0, tzinfo=dt.UTC)
VERSION = "2026.11.28"
PROFILES = ProfileOptions(
    country_names=COUNTRY_NAMES,
    sector_names=SECTOR_NAMES,
    peer_groups=PEER_GROUPS,
    countries=("GH", "KE", "NP"),
)


def publish_golden(root: Path, tables: Path) -> Path:
    """The small compact published with its profile pages in English and French."""
    options = replace(OPTIONS, profiles=PROFILES, languages=("en", "fr"))
    outcome = publish_release(stored(golden_tables(), tables), LocalTarget(root), options, now=NOW)
    assert outcome.status == "published"
    return root / "releases" / VERSION


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return publish_golden(tmp_path_factory.mktemp("publish"), tmp_path_factory.mktemp("tables"))


def _page(release: Path, path: str) -> lxml.html.HtmlElement:
    return lxml.html.fromstring((release / path).read_bytes())


def _text(node: lxml.html.HtmlElement) -> str:
    """The text, ASCII blanks folded (the narrow no-break spaces of French numbers kept)."""
    return re.sub(r"[ \t\r\n]+", " ", node.text_content()).strip()


def _table_rows(section: lxml.html.HtmlElement, caption: str) -> list[list[str]]:
    (table,) = [t for t in section.xpath(".//table") if caption in _text(t.xpath("caption")[0])]
    return [[_text(c) for c in row.xpath("./th|./td")] for row in table.xpath(".//tr")]


def test_every_page_and_extract_is_in_the_release(release: Path) -> None:
    pages = sorted(p.relative_to(release).as_posix() for p in release.rglob("*.html"))
    profile_pages = [p for p in pages if p.startswith(("countries/", "partners/"))]
    assert "index.html" in pages  # the release folder's own page
    assert profile_pages == [
        "countries/GH.fr.html",
        "countries/GH.html",
        "countries/KE.fr.html",
        "countries/KE.html",
        "countries/NP.fr.html",
        "countries/NP.html",
        "countries/index.fr.html",
        "countries/index.html",
        "partners/XM-A.fr.html",
        "partners/XM-A.html",
        "partners/XM-B.fr.html",
        "partners/XM-B.html",
        "partners/XM-D.fr.html",
        "partners/XM-D.html",
        "partners/index.fr.html",
        "partners/index.html",
    ]
    sums: dict[str, str] = {}
    for line in (release / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ")
        sums[name] = digest
    for path in [*profile_pages, "countries/GH/rows/transactions.csv"]:
        assert sums[path] == hashlib.sha256((release / path).read_bytes()).hexdigest(), path


def test_ghana_in_english(release: Path) -> None:
    page = _page(release, "countries/GH.html")
    assert page.xpath("//html/@lang") == ["en"]
    money = page.xpath('//section[@id="money"]')[0]
    # Agency A: 1,000,000 (2023) + 500,000 (2024); Bank B: 400,000 (2023).
    assert _table_rows(money, "by partner") == [
        ["Partner", "2023", "2024", "Total"],
        ["Agency A", "USD 1,000,000", "USD 500,000", "USD 1,500,000"],
        ["Bank B", "USD 400,000", "–", "USD 400,000"],
        ["Total", "USD 1,400,000", "USD 500,000", "USD 1,900,000"],
    ]
    # PFM: 1,000,000 + half of 400,000 in 2023; employment: the other half.
    assert _table_rows(money, "by sector")[1:3] == [
        ["Public finance management (PFM)", "USD 1,200,000", "USD 500,000", "USD 1,700,000"],
        ["Employment creation", "USD 200,000", "–", "USD 200,000"],
    ]
    priorities = page.xpath('//section[@id="priorities"]')[0]
    assert _table_rows(priorities, "priorities")[1:] == [
        ["GH-P1", "Public financial management", "USD 1,900,000", "2", "Funded"],
        ["GH-P2", "Statistics for planning", "USD 0", "0", "No partner funds this priority"],
    ]
    results = page.xpath('//section[@id="results"]')[0]
    # (30 - 10) / (50 - 10)
    assert _table_rows(results, "Statistical")[1:] == [
        ["Baseline", "2020", "10"],
        ["Actual", "31 December 2023", "20"],
        ["Actual", "31 December 2024", "30"],
        ["Target", "2025", "50"],
        ["Progress toward the target", "", "50.0%"],
    ]
    peers = page.xpath('//section[@id="peers"]')[0]
    rank_rows = _table_rows(peers, "Aligned with country CD priorities: rank")
    assert rank_rows[1] == [
        "All compact countries", "3", "1st of 3", "20.0%", "35.0%", "50.0%", "65.0%", "80.0%"
    ]  # fmt: skip
    assert rank_rows[2] == [
        "Region: Africa", "2", "1st of 2", "50.0%", "57.5%", "65.0%", "72.5%", "80.0%"
    ]  # fmt: skip
    # Fewer parallel implementation units is better: Ghana's 2 is last of three.
    assert "3rd of 3" in _text(peers)
    links = page.xpath("//a/@href")
    assert "../countries/GH/rows/transactions.csv" in links
    assert "../partners/XM-A.html" in links
    assert "GH.fr.html" in links


def test_ghana_in_french(release: Path) -> None:
    page = _page(release, "countries/GH.fr.html")
    assert page.xpath("//html/@lang") == ["fr"]
    money = page.xpath('//section[@id="money"]')[0]
    rows = _table_rows(money, "partenaire")
    nnbsp, nbsp = "\u202f", "\u00a0"  # thousands, and before the currency
    assert rows[1] == [
        "Agency A",
        f"1{nnbsp}000{nnbsp}000{nbsp}USD",
        f"500{nnbsp}000{nbsp}USD",
        f"1{nnbsp}500{nnbsp}000{nbsp}USD",
    ]
    peers = _text(page.xpath('//section[@id="peers"]')[0])
    assert "1er sur 3" in peers
    assert f"57,5{nnbsp}%" in peers or "57,5\u00a0%" in peers
    assert "../partners/XM-A.fr.html" in page.xpath("//a/@href")


def test_agency_a(release: Path) -> None:
    page = _page(release, "partners/XM-A.html")
    text = _text(page)
    # 1,500,000 in Ghana + 1,200,000 in Kenya + 800,000 in Nepal.
    assert "USD 3.5 million" in text
    money = page.xpath('//section[@id="money"]')[0]
    assert _table_rows(money, "by country")[-1] == [
        "Total",
        "USD 1,000,000",
        "USD 2,500,000",
        "USD 3,500,000",
    ]
    declarations = page.xpath('//section[@id="declarations"]')[0]
    assert ["On the national budget", "1", "2", "50.0%"] in _table_rows(declarations, "")


def test_a_partners_money_beyond_countries_is_shown_apart(release: Path) -> None:
    """Donor D: 300,000 to Kenya, 250,000 to West Africa, 100,000 to no recipient."""
    page = _page(release, "partners/XM-D.html")
    figures = {
        f.get("data-figure"): _text(f.xpath('./*[@class="figure-value"]')[0])
        for f in page.xpath('//section[@id="headline"]//*[@data-figure]')
    }
    assert figures["cd_disbursement_usd"] == "USD 650,000"
    assert figures["cd_to_countries_usd"] == "USD 300,000"
    assert figures["cd_regional_usd"] == "USD 250,000"
    assert figures["cd_unspecified_usd"] == "USD 100,000"
    index = _page(release, "partners/index.html")
    (row,) = index.xpath('//tr[@data-code="XM-D"]')
    cells = [_text(cell) for cell in row.xpath("./td")]
    assert cells[:5] == ["XM-D", "USD 650,000", "USD 300,000", "USD 250,000", "USD 100,000"]
    headers = [_text(h) for h in index.xpath("//table//th[@scope='col']")]
    assert headers[2:6] == [  # the partner and its code first, as the cells
        "CD disbursements",
        "CD disbursements to countries",
        "CD disbursements, regional and global",
        "CD disbursements, no recipient given",
    ]


def test_every_link_of_every_page_resolves(release: Path) -> None:
    root = release.parent.parent
    checked = folders = 0
    for page_path in release.rglob("*.html"):
        if "quality" in page_path.parts:
            continue
        for target in _page(release, page_path.relative_to(release).as_posix()).xpath("//a/@href"):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue
            resolved = (page_path.parent / target.split("#")[0]).resolve()
            assert resolved.is_relative_to(root.resolve()), (page_path, target)
            assert resolved.exists(), f"{page_path.name}: {target}"
            if resolved.is_dir():  # a folder a browser shows: its index.html
                assert (resolved / "index.html").is_file(), f"{page_path.name}: {target}"
                folders += 1
            checked += 1
    assert checked > 200
    assert (
        folders > 5
    )  # the English profiles link to their release's folder (French: index.fr.html)


def test_the_release_folder_has_a_page_of_its_own(release: Path) -> None:
    page = _page(release, "index.html")
    assert _text(page.xpath("//h1")[0]) == f"{OPTIONS.title} {VERSION}"
    links = set(page.xpath("//a/@href"))
    assert {"datapackage.json", "README.md", "CHANGELOG.md", "SHA256SUMS"} <= links
    assert {"countries/index.html", "partners/index.html"} <= links
    # a quality report only when the release has one
    assert ("quality/index.html" in links) == (release / "quality" / "index.html").is_file()
    assert "../../index.html" in links  # the catalogue of every release
    package = json.loads((release / "datapackage.json").read_text())
    rows = {r.get("data-table"): r for r in page.xpath("//tr[@data-table]")}
    assert sorted(rows) == sorted(r["name"] for r in package["resources"])
    regions = [_text(c) for c in rows["activity_regions"].xpath("./td")]
    assert regions[:2] == ["Activity recipient regions", "1"]
    assert "data/activity_regions.csv" in rows["activity_regions"].xpath(".//a/@href")


def test_row_extracts_hold_exactly_the_rows_behind_the_figures(release: Path) -> None:
    rows = list(
        csv.DictReader(
            io.StringIO((release / "countries/GH/rows/alignment_metrics.csv").read_text())
        )
    )
    assert {(r["year"], r["metric"], r["partner_org_ref"]) for r in rows} == {
        ("2023", "priority_alignment", ""),
        ("2024", "priority_alignment", ""),
        ("2024", "parallel_piu_count", ""),
        ("2024", "priority_alignment", "XM-A"),
    }
    header = (release / "data/alignment_metrics.csv").read_text().splitlines()[0]
    assert (release / "countries/GH/rows/alignment_metrics.csv").read_text().splitlines()[
        0
    ] == header


def test_the_catalogue_and_index_link_the_profiles(release: Path) -> None:
    root = release.parent.parent
    catalog = json.loads((root / "catalog.json").read_text())
    profiles = catalog["releases"][0]["profiles"]
    assert profiles["languages"] == ["en", "fr"]
    assert [c["code"] for c in profiles["countries"]] == ["GH", "KE", "NP"]
    assert profiles["partners"] == 3
    index = lxml.html.fromstring((root / "index.html").read_bytes())
    links = index.xpath('//*[@id="profiles"]//a/@href')
    assert f"releases/{VERSION}/countries/GH.html" in links
    assert f"releases/{VERSION}/countries/GH.fr.html" in links
    assert f"releases/{VERSION}/partners/index.html" in links


def test_the_catalogue_and_the_release_page_are_published_in_french_too(release: Path) -> None:
    root = release.parent.parent
    assert (root / "index.fr.html").is_file()
    catalog = json.loads((root / "catalog.json").read_text())
    files = catalog["releases"][0]["files"]
    assert {"index.html", "index.fr.html"} <= set(files)  # checksummed like every file
    assert "  index.fr.html\n" in (release / "SHA256SUMS").read_text()
    french = lxml.html.fromstring((root / "index.fr.html").read_bytes())
    assert french.get("lang") == "fr"
    assert french.xpath('//link[@hreflang="en"]/@href') == ["index.html"]
    links = french.xpath('//*[@id="profiles"]//a/@href')
    assert f"releases/{VERSION}/countries/index.fr.html" in links
    assert f"releases/{VERSION}/partners/index.fr.html" in links
    assert f"releases/{VERSION}/countries/GH.fr.html" in links
    english = lxml.html.fromstring((root / "index.html").read_bytes())
    assert english.xpath('//link[@hreflang="fr"]/@href') == ["index.fr.html"]
    page = _page(release, "index.fr.html")
    assert page.get("lang") == "fr"
    assert {"../../index.fr.html", "countries/index.fr.html"} <= set(page.xpath("//a/@href"))
    assert _page(release, "index.html").xpath('//link[@hreflang="fr"]/@href') == ["index.fr.html"]


@pytest.mark.parametrize(
    ("page", "lang"), [("countries/GH.html", "en"), ("countries/GH.fr.html", "fr")]
)
def test_a_profile_links_its_catalogue_release_and_quality_report_in_its_language(
    release: Path, page: str, lang: str
) -> None:
    name = "index.html" if lang == "en" else f"index.{lang}.html"
    dom = _page(release, page)
    links = {a.get("data-link"): a.get("href") for a in dom.xpath("//a[@data-link]")}
    assert links["catalogue"] == f"../../../{name}"
    assert links["release"] == ("../" if lang == "en" else f"../{name}")
    if (release / "quality" / name).is_file():
        assert links["quality"] == f"../quality/{name}"
    for target in (links["catalogue"], links["release"]):
        assert (release / "countries" / target).resolve().exists(), target
    page_lang = dom.xpath("/html/@lang")
    assert page_lang == [lang]


@pytest.mark.parametrize("page", ["countries/GH.html", "partners/XM-A.fr.html"])
def test_every_section_with_figures_links_to_its_rows(release: Path, page: str) -> None:
    dom = _page(release, page)
    folder = page.split("/")[0]
    for section in dom.xpath("//section[.//table or .//*[@data-figure]]"):
        links = section.xpath(".//a[@data-rows or @data-table]/@href")
        assert any(f"../{folder}/" in h and "/rows/" in h for h in links), section.get("id")
