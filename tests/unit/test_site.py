"""The catalogue page and its DCAT description, rendered from a hand-built catalogue."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from typing import Any
from urllib.parse import urlsplit

import lxml.html
import pytest

from publish.formats import format_bytes, format_count, format_share
from publish.render import usd
from publish.site import href, render_dcat, render_index_html, render_release_html

NOT_COMPUTED = "Alignment and duplication metrics are not computed yet."
LATEST = "2026.11.28"
PREVIOUS = "2026.11.27"
TABLES = {
    "activities": 12480,
    "activity_countries": 13102,
    "transactions": 59311,
    "budgets": 20113,
    "results": 4410,
    "sources": 212,
    "quarantine": 37,
    "alignment_metrics": 9,
    "duplication_metrics": 3,
}
RELEASE_DOCUMENTS = (
    "datapackage.json",
    "README.md",
    "CHANGELOG.md",
    "SHA256SUMS",
    "quality/index.html",
    "quality/report.md",
    "quality/report.json",
)
COUNTRIES = [
    {
        "country_code": "GH",
        "disbursement_usd": 3591042.54,
        "cd_disbursement_usd": 3591042.54,
        "cd_share": 1.0,
        "cd_activities": 6,
    },
    {
        "country_code": "KE",
        "disbursement_usd": 4922577.14,
        "cd_disbursement_usd": 1982577.14,
        "cd_share": 0.4028,
        "cd_activities": 5,
    },
    {
        "country_code": "NP",
        "disbursement_usd": 1785305.78,
        "cd_disbursement_usd": 1210000.0,
        "cd_share": 0.6778,
        "cd_activities": 2,
    },
    {
        "country_code": "SV",
        "disbursement_usd": 329643.61,
        "cd_disbursement_usd": 329643.61,
        "cd_share": 1.0,
        "cd_activities": 1,
    },
]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def release_files(version: str) -> dict[str, dict[str, Any]]:
    """The ``files`` map of a release: every data table in two formats, plus its documents."""
    files: dict[str, dict[str, Any]] = {}
    for document in RELEASE_DOCUMENTS:
        files[document] = {"sha256": _digest(version + document), "bytes": 1200 + len(document)}
    for table, rows in TABLES.items():
        for fmt, per_row in (("csv", 180), ("parquet", 60)):
            name = f"data/{table}.{fmt}"
            files[name] = {"sha256": _digest(version + name), "bytes": rows * per_row}
    return files


def alignment_rows() -> list[dict[str, Any]]:
    """All-partner rows for 2024 and 2025 (only 2025 is the latest) and one per-partner row."""
    rows: list[dict[str, Any]] = []
    for year, share in ((2024, 0.25), (2025, 0.4028)):
        rows.append(
            {
                "country_code": "KE",
                "partner_org_ref": "",
                "year": year,
                "metric": "cd_share",
                "numerator": 1982577.14,
                "denominator": 4922577.14,
                "value": share,
                "n_activities": 5,
                "method_version": "1.0",
            }
        )
    rows += [
        {
            "country_code": "KE",
            "partner_org_ref": None,
            "year": 2025,
            "metric": "priority_alignment",
            "numerator": 991288.57,
            "denominator": 1982577.14,
            "value": 0.5,
            "n_activities": 4,
            "n_activities_eligible": 5,
            "coverage": 0.8,
            "method_version": "1.0",
        },
        {
            "country_code": "KE",
            "partner_org_ref": "",
            "year": 2025,
            "metric": "parallel_piu_count",
            "numerator": 3,
            "denominator": None,
            "value": 3,
            "n_activities": 3,
            "method_version": "1.0",
        },
        {
            "country_code": "KE",
            "partner_org_ref": "",
            "year": 2025,
            "metric": "on_budget",
            "numerator": 0,
            "denominator": 0,
            "value": None,
            "n_activities": 0,
            "method_version": "1.0",
        },
        {
            "country_code": "GH",
            "partner_org_ref": "",
            "year": 2025,
            "metric": "cd_share",
            "numerator": 3591042.54,
            "denominator": 3591042.54,
            "value": 1.0,
            "n_activities": 6,
            "method_version": "1.0",
        },
        {
            "country_code": "GH",
            "partner_org_ref": "XM-DAC-41114",
            "year": 2025,
            "metric": "cd_share",
            "numerator": 1.0,
            "denominator": 8.0,
            "value": 0.125,
            "n_activities": 1,
            "method_version": "1.0",
        },
    ]
    return rows


def duplication_rows() -> list[dict[str, Any]]:
    def row(country: str, sector: str, year: int, hhi: float) -> dict[str, Any]:
        return {
            "country_code": country,
            "sector_code": sector,
            "priority_id": "",
            "year": year,
            "n_partners": 3,
            "n_activities": 4,
            "cd_disbursement_usd": 1250000.0,
            "hhi": hhi,
            "effective_partners": round(1 / hhi, 4),
            "fragmentation_ratio": 0.3333,
            "n_overlap_pairs": 1,
            "overlap_value_share": 0.42,
            "method_version": "1.0",
        }

    return [
        row("GH", "15110", 2025, 0.42),
        row("GH", "15110", 2024, 0.9),
        row("KE", "43010", 2025, 0.25),
    ]


def make_catalog(*, title: str = "Capacity Development Compact open data") -> dict[str, Any]:
    """A realistic catalogue: two releases, four countries, metrics only in the latest."""
    quality = {
        "files": 4,
        "files_ok": 3,
        "files_partial": 1,
        "files_rejected": 0,
        "records_quarantined": 37,
        "warnings": 1,
        "schema_errors": 5,
        "codelist_errors": 0,
        "checks_failed": 0,
    }
    latest: dict[str, Any] = {
        "version": LATEST,
        "published": "2026-11-28T04:20:00Z",
        "date": "2026-11-28",
        "schema_version": "1.0.0",
        "content_hash": _digest("content " + LATEST),
        "path": f"releases/{LATEST}/",
        "row_counts": dict(TABLES),
        "files": release_files(LATEST),
        "headline": {
            "activities": 12480,
            "cd_activities": 7315,
            "publishers": 212,
            "countries": 4,
            "transactions": 59311,
            "disbursement_usd": 10628569.07,
            "cd_disbursement_usd": 7113263.29,
            "cd_share": 0.6693,
            "files": 4,
            "files_rejected": 0,
            "records_quarantined": 37,
        },
        "countries": copy.deepcopy(COUNTRIES),
        "quality": quality,
        "alignment": alignment_rows(),
        "duplication": duplication_rows(),
    }
    previous = copy.deepcopy(latest)
    previous.update(
        {
            "version": PREVIOUS,
            "published": "2026-11-27T04:20:00Z",
            "date": "2026-11-27",
            "content_hash": _digest("content " + PREVIOUS),
            "path": f"releases/{PREVIOUS}/",
            "row_counts": {**TABLES, "activities": 12400, "transactions": 58800},
            "files": release_files(PREVIOUS),
            "alignment": [],
            "duplication": [],
        }
    )
    return {
        "name": "cdcompact",
        "title": title,
        "description": "Capacity development aid to partner countries, from IATI and "
        "country reports.\n\nPublished every night when the data changed.",
        "license": {"name": "CC-BY-4.0", "path": "https://creativecommons.org/licenses/by/4.0/"},
        "latest": LATEST,
        "releases": [latest, previous],
        "credits": ["IATI publishers (iatistandard.org)", "IMF exchange rates"],
    }


def without_metrics(catalog: dict[str, Any]) -> dict[str, Any]:
    catalog = copy.deepcopy(catalog)
    for release in catalog["releases"]:
        release["alignment"] = []
        release["duplication"] = []
    return catalog


def parse(catalog: dict[str, Any]) -> Any:
    return lxml.html.document_fromstring(render_index_html(catalog))


def text(tree: Any, xpath: str) -> str:
    found = tree.xpath(xpath)
    assert len(found) == 1, (xpath, len(found))
    return " ".join(found[0].text_content().split())


# ------------------------------------------------------------ formatting


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (10628569.07, "USD 10.6 million"),
        (7113263.29, "USD 7.1 million"),
        (329643.61, "USD 329,644"),
        (0, "USD 0"),
        (2_345_000_000, "USD 2.3 billion"),
        (None, "–"),
        (float("nan"), "–"),
        ("", "–"),
    ],
)
def test_usd_is_formatted_for_humans(value: object, shown: str) -> None:
    assert usd(value) == shown


def test_counts_shares_and_sizes() -> None:
    assert format_count(12480) == "12,480"
    assert format_count("59311") == "59,311"
    assert format_count(None) == "–"
    assert format_share(0.6693) == "66.9%"
    assert format_share(1) == "100.0%"
    assert format_share(None) == "–"
    assert format_bytes(2_246_400) == "2.2 MB"
    assert format_bytes(512) == "512 B"


def test_links_stay_relative_and_inside_the_root() -> None:
    assert href("releases/2026.11.28/", "data/activities.csv") == (
        "releases/2026.11.28/data/activities.csv"
    )
    assert href("releases/2026.11.28/") == "releases/2026.11.28/"
    assert href("javascript:alert(1)") == "javascript%3Aalert%281%29"
    assert href("../../etc/", "passwd") == "etc/passwd"
    assert href("https://evil.example/x") == "https%3A/evil.example/x"


# ------------------------------------------------------------------ page


def test_latest_release_facts_and_downloads() -> None:
    tree = parse(make_catalog())
    assert text(tree, '//*[@id="latest-version"]') == LATEST
    assert text(tree, '//*[@id="latest-date"]') == "2026-11-28"
    assert text(tree, '//*[@id="schema-version"]') == "1.0.0"
    assert text(tree, '//*[@data-field="published"]') == "2026-11-28 04:20 UTC"
    links = set(tree.xpath("//a/@href"))
    base = f"releases/{LATEST}/"
    for name in (*RELEASE_DOCUMENTS, "data/activities.csv", "data/activities.parquet"):
        assert base + name in links, name
    assert "data-dictionary.md" in links
    assert {"catalog.json", "latest.json", "dcat.jsonld"} <= links
    assert text(tree, '//*[@id="data-dictionary"]').startswith("Data dictionary")


def test_every_link_is_relative_except_the_licence() -> None:
    tree = parse(make_catalog())
    external = set()
    for target in tree.xpath("//a/@href | //link/@href"):
        parts = urlsplit(target)
        if parts.scheme:
            external.add(target)
        else:
            assert not target.startswith("/"), target
    assert external == {"https://creativecommons.org/licenses/by/4.0/"}
    assert not tree.xpath("//script | //*[@src] | //iframe")


def test_data_file_table_lists_every_table_with_rows_links_and_hashes() -> None:
    catalog = make_catalog()
    tree = parse(catalog)
    rows = tree.xpath('//table[@id="data-files"]/tbody/tr')
    assert [row.get("data-table") for row in rows] == sorted(TABLES)
    (transactions,) = tree.xpath('//table[@id="data-files"]//tr[@data-table="transactions"]')
    cells = transactions.xpath("./th | ./td")
    assert cells[1].text_content() == "59,311"
    assert cells[2].xpath("./a/@href") == [f"releases/{LATEST}/data/transactions.csv"]
    assert cells[3].xpath("./a/@href") == [f"releases/{LATEST}/data/transactions.parquet"]
    files = catalog["releases"][0]["files"]
    for cell, name in ((cells[4], "csv"), (cells[5], "parquet")):
        (code,) = cell.xpath("./code")
        full = files[f"data/transactions.{name}"]["sha256"]
        assert code.get("title") == full
        assert code.text_content() == full[:12] + "…"


def test_headline_figures_are_shown_formatted() -> None:
    tree = parse(make_catalog())

    def figure(key: str) -> str:
        return text(tree, f'//*[@data-figure="{key}"]/*[@class="figure-value"]')

    assert figure("activities") == "12,480"
    assert figure("cd_activities") == "7,315"
    assert figure("publishers") == "212"
    assert figure("countries") == "4"
    assert figure("disbursement_usd") == "USD 10.6 million"
    assert figure("cd_disbursement_usd") == "USD 7.1 million"
    assert figure("cd_share") == "66.9%"


def test_quality_summary() -> None:
    tree = parse(make_catalog())
    shown = {
        node.get("data-quality"): node.text_content() for node in tree.xpath("//*[@data-quality]")
    }
    assert shown == {
        "files": "4",
        "files_ok": "3",
        "files_partial": "1",
        "files_rejected": "0",
        "records_quarantined": "37",
        "warnings": "1",
        "schema_errors": "5",
        "codelist_errors": "0",
        "checks_failed": "0",
    }
    for key, problem in (("records_quarantined", True), ("schema_errors", True)):
        (tile,) = tree.xpath(f'//*[@data-quality="{key}"]/..')
        assert ("problem" in tile.get("class")) is problem
    (codelists,) = tree.xpath('//*[@data-quality="codelist_errors"]/..')
    assert "problem" not in codelists.get("class")
    links = tree.xpath('//*[@id="quality"]//a/@href')
    assert f"releases/{LATEST}/quality/index.html" in links
    assert "quality/index.html" in links  # tonight's report, at the root


def test_country_bars_are_proportional_and_labelled() -> None:
    tree = parse(make_catalog())
    (chart,) = tree.xpath('//svg[@id="chart-disbursements"]')
    bars = {
        (bar.get("data-country"), bar.get("data-series")): float(bar.get("width"))
        for bar in chart.xpath(".//rect[@data-country]")
    }
    assert set(bars) == {(c["country_code"], s) for c in COUNTRIES for s in ("all", "cd")}
    # KE gives the most, so its all-disbursement bar is the longest; CD bars follow the money.
    assert max(bars, key=lambda key: bars[key]) == ("KE", "all")
    assert bars[("GH", "cd")] == pytest.approx(
        bars[("KE", "all")] * 3591042.54 / 4922577.14, abs=0.1
    )
    assert bars[("GH", "cd")] > bars[("KE", "cd")] > bars[("NP", "cd")] > bars[("SV", "cd")]
    labels = [" ".join(node.text_content().split()) for node in chart.xpath(".//text")]
    assert "USD 4.9 million" in labels
    assert "USD 329,644" in labels
    (share_chart,) = tree.xpath('//svg[@id="chart-cd-share"]')
    shares = {
        bar.get("data-country"): bar.get("data-value")
        for bar in share_chart.xpath(".//rect[@data-country]")
    }
    assert shares == {"GH": "1.0", "KE": "0.4028", "NP": "0.6778", "SV": "1.0"}
    share_labels = [node.text_content() for node in share_chart.xpath(".//text")]
    assert "40.3%" in share_labels


def test_alignment_shows_all_partners_latest_year_only() -> None:
    tree = parse(make_catalog())
    assert not tree.xpath('//*[@id="metrics-not-computed"]')
    assert NOT_COMPUTED not in render_index_html(make_catalog())
    (table,) = tree.xpath('//table[@id="alignment-table"]')
    cells = {
        (cell.get("data-country"), cell.get("data-metric")): cell.text_content()
        for cell in table.xpath(".//td[@data-metric]")
    }
    # KE 2025 (not 2024: 25.0%), GH all partners (not the 12.5% partner row).
    assert cells[("KE", "cd_share")] == "40.3%"
    assert cells[("GH", "cd_share")] == "100.0%"
    assert cells[("KE", "priority_alignment")] == "50.0%"
    assert cells[("KE", "parallel_piu_count")] == "3"
    assert cells[("KE", "on_budget")] == "n/a"
    assert "12.5%" not in table.text_content()
    assert [th.text_content() for th in table.xpath(".//thead/tr/th[@data-country]")] == [
        "GH2025",
        "KE2025",
    ]
    (detail,) = table.xpath('.//td[@data-country="KE"][@data-metric="cd_share"]/@title')
    assert detail == "1,982,577.14 ÷ 4,922,577.14 · 5 activities"
    # one activity's declaration is unknown: the reader sees it was left out
    (detail,) = table.xpath('.//td[@data-country="KE"][@data-metric="priority_alignment"]/@title')
    assert detail == (
        "991,288.57 ÷ 1,982,577.14 · 4 activities of 5 (80.0% known; the unknowns are left out)"
    )


def test_duplication_shows_effective_partners_latest_year() -> None:
    tree = parse(make_catalog())
    (chart,) = tree.xpath('//svg[@id="chart-effective-partners"]')
    bars = chart.xpath(".//rect[@data-country]")
    assert [(bar.get("data-country"), bar.get("data-value")) for bar in bars] == [
        ("GH", "2.381"),
        ("KE", "4.0"),
    ]
    labels = [node.text_content() for node in chart.xpath(".//text")]
    assert "2.4 (HHI 0.42)" in labels
    assert len(tree.xpath('//table[@id="duplication-table"]/tbody/tr')) == 2


def test_metrics_not_computed_yet() -> None:
    tree = parse(without_metrics(make_catalog()))
    assert text(tree, '//*[@id="metrics-not-computed"]') == NOT_COMPUTED
    assert not tree.xpath('//table[@id="alignment-table"] | //svg[@id="chart-effective-partners"]')


def test_only_one_metric_family_missing_is_said_plainly() -> None:
    catalog = make_catalog()
    catalog["releases"][0]["duplication"] = []
    tree = parse(catalog)
    assert not tree.xpath('//*[@id="metrics-not-computed"]')
    assert tree.xpath('//table[@id="alignment-table"]')
    assert text(tree, '//*[@data-empty="duplication"]') == (
        "Duplication metrics are not computed yet."
    )


def test_all_releases_table() -> None:
    tree = parse(make_catalog())
    rows = tree.xpath('//table[@id="releases-table"]/tbody/tr')
    assert [row.get("data-version") for row in rows] == [LATEST, PREVIOUS]
    cells = [" ".join(cell.text_content().split()) for cell in rows[1].xpath("./th | ./td")]
    assert cells[:5] == [PREVIOUS, "2026-11-27", "1.0.0", "12,400", "58,800"]
    assert cells[5] == _digest("content " + PREVIOUS)[:12] + "…"
    assert rows[1].xpath(".//a/@href") == [
        f"releases/{PREVIOUS}/",
        f"releases/{PREVIOUS}/datapackage.json",
    ]
    assert "latest" in rows[0].xpath("./th")[0].text_content()


def test_hostile_strings_are_escaped() -> None:
    hostile = "<script>alert(1)</script>"
    catalog = make_catalog(title=hostile)
    catalog["description"] = f'"><img src=x onerror=alert(1)> {hostile}'
    catalog["credits"] = [hostile]
    release = catalog["releases"][0]
    release["countries"][0]["country_code"] = '"><script>alert(2)</script>'
    release["path"] = "javascript:alert(3)//"
    release["alignment"][0]["metric"] = hostile
    page = render_index_html(catalog)
    tree = lxml.html.document_fromstring(page)
    assert not tree.xpath("//script | //img | //*[@onerror]")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert text(tree, "/html/head/title") == hostile
    assert text(tree, '//h1[@id="title"]') == hostile
    assert all(not target.startswith("javascript:") for target in tree.xpath("//a/@href"))
    assert f"javascript%3Aalert%283%29/{'datapackage.json'}" in tree.xpath("//a/@href")


def test_missing_pieces_do_not_break_the_page() -> None:
    empty = {"name": "cdcompact", "title": "Empty", "releases": []}
    tree = parse(empty)
    assert "No release has been published yet." in tree.text_content()
    sparse = make_catalog()
    for key in ("countries", "alignment", "duplication", "headline", "quality"):
        del sparse["releases"][0][key]
    tree = parse(sparse)
    assert text(tree, '//*[@data-figure="activities"]/*[@class="figure-value"]') == "–"
    assert "No disbursements by country" in tree.text_content()
    assert text(tree, '//*[@id="metrics-not-computed"]') == NOT_COMPUTED


def test_latest_follows_the_catalogue_pointer() -> None:
    catalog = make_catalog()
    catalog["latest"] = PREVIOUS
    tree = parse(catalog)
    assert text(tree, '//*[@id="latest-version"]') == PREVIOUS
    assert tree.xpath('//*[@id="metrics-not-computed"]')


# ------------------------------------------------------------------ DCAT


# --------------------------------------------------------------- languages

BOTH = ("en", "fr")


def with_profiles(catalog: dict[str, Any], languages: list[str]) -> dict[str, Any]:
    """The latest release with profile pages of two countries in ``languages``."""
    catalog["releases"][0]["profiles"] = {
        "languages": languages,
        "countries": [
            {"code": "GH", "name": "Ghana", "path": "countries/GH.html"},
            {"code": "KE", "name": "Kenya", "path": "countries/KE.html"},
        ],
        "partners": 3,
    }
    return catalog


def exact(node: Any) -> str:
    """The text, ASCII blanks folded (French numbers' narrow no-break spaces are kept)."""
    return re.sub(r"[ \t\r\n]+", " ", node.text_content()).strip()


def pages(catalog: dict[str, Any]) -> tuple[Any, Any]:
    """The English and French catalogue pages, each linking to the other."""
    return (
        lxml.html.document_fromstring(render_index_html(catalog, "en", BOTH)),
        lxml.html.document_fromstring(render_index_html(catalog, "fr", BOTH)),
    )


def test_the_french_catalogue_is_in_french() -> None:
    english, french = pages(make_catalog())
    assert french.get("lang") == "fr"
    assert english.get("lang") == "en"
    headings = [" ".join(h.text_content().split()) for h in french.xpath("//h2")]
    assert headings == [
        "Télécharger la dernière version",
        "Chiffres clés",
        "Par pays",
        "Alignement et doublons",
        "Qualité des données",
        "Toutes les versions",
    ]
    assert text(french, '//*[@data-figure="activities"]/*[@class="figure-label"]') == "Activités"
    assert text(french, '//tr[@data-metric="cd_share"]/th').startswith(
        "Part du DC dans les versements"
    )
    # Every heading, label and note differs from the English one, but for the words
    # French shares with English and the data (codes, file formats).
    shared = {"Version", "Date", "Table", "Transactions", "CSV", "Parquet", "GH", "KE"}
    shared |= {"SHA-256 (CSV)", "SHA-256 (Parquet)", "GH2025", "KE2025"}
    texts = "//h2 | //h3 | //th[@scope='col'] | //caption | //figcaption | //dt | //summary"
    texts += " | //nav[@aria-label]//a | //p[@class='note'] | //svg/title | //svg/desc"
    for en, fr in zip(english.xpath(texts), french.xpath(texts), strict=True):
        en_text, fr_text = (" ".join(x.text_content().split()) for x in (en, fr))
        assert en_text != fr_text or en_text in shared, en_text
    # French typography: a no-break space before a colon or a semicolon
    (note,) = french.xpath('//*[@id="headline"]//p[@class="note"]')
    assert "valeur\u202f; DC" in exact(note)
    assert exact(french.xpath('//*[@class="licence"]')[0]).startswith("Licence\u00a0:")


def test_the_french_catalogue_shows_the_same_figures_formatted_in_french() -> None:
    catalog = make_catalog()
    english, french = pages(catalog)
    headline = catalog["releases"][0]["headline"]

    def figures(tree: Any) -> dict[str, tuple[str, str]]:
        return {
            node.get("data-figure"): (
                node.get("data-value"),
                exact(node.xpath('./*[@class="figure-value"]')[0]),
            )
            for node in tree.xpath("//*[@data-figure]")
        }

    shown_en, shown_fr = figures(english), figures(french)
    assert {k: v[0] for k, v in shown_en.items()} == {k: v[0] for k, v in shown_fr.items()}
    for key in ("activities", "cd_activities", "publishers", "countries"):
        assert shown_fr[key][1] == format_count(headline[key], "fr"), key
    for key in ("disbursement_usd", "cd_disbursement_usd"):
        assert shown_fr[key][1] == usd(headline[key], "fr"), key
    assert shown_fr["cd_share"][1] == format_share(headline["cd_share"], "fr")
    assert shown_fr["activities"][1] == "12\u202f480"
    assert shown_fr["cd_share"][1] == "66,9\u00a0%"
    quality_en = {n.get("data-quality"): n.text_content() for n in english.xpath("//dd")}
    quality_fr = {n.get("data-quality"): n.text_content() for n in french.xpath("//dd")}
    assert quality_en.keys() == quality_fr.keys()
    (ke,) = french.xpath('//table[@id="country-table"]//tr[@data-country="KE"]')
    assert [c.text_content() for c in ke.xpath("./td")] == [
        usd(4922577.14, "fr"),
        usd(1982577.14, "fr"),
        format_share(0.4028, "fr"),
        "5",
    ]
    bars_en = english.xpath('//*[@id="chart-disbursements"]//rect[@data-country]/@width')
    bars_fr = french.xpath('//*[@id="chart-disbursements"]//rect[@data-country]/@width')
    assert bars_en == bars_fr


def test_each_catalogue_page_links_to_the_other_language() -> None:
    english, french = pages(make_catalog())
    for tree, lang, other, other_page in (
        (english, "en", "fr", "index.fr.html"),
        (french, "fr", "en", "index.html"),
    ):
        alternates = {
            link.get("hreflang"): link.get("href")
            for link in tree.xpath('//head/link[@rel="alternate"][@hreflang]')
        }
        assert alternates == {"en": "index.html", "fr": "index.fr.html"}
        assert tree.xpath('//nav[@class="lang"]//a/@href') == [other_page]
        assert tree.xpath('//nav[@class="lang"]//a/@hreflang') == [other]
        assert tree.xpath('//nav[@class="lang"]//*[@aria-current="page"]/@lang') == [lang]
    # one language: no switch, no alternates
    alone = parse(make_catalog())
    assert not alone.xpath('//nav[@class="lang"] | //link[@hreflang]')


def test_the_french_catalogue_links_to_the_french_profiles() -> None:
    catalog = with_profiles(make_catalog(), ["en", "fr"])
    english, french = pages(catalog)
    base = f"releases/{LATEST}/"
    links = french.xpath('//*[@id="profiles"]//a/@href')
    assert base + "countries/index.fr.html" in links
    assert base + "partners/index.fr.html" in links
    (ghana,) = french.xpath('//*[@id="profiles"]//li[contains(., "Ghana")]')
    assert ghana.xpath("./a/@href") == [base + "countries/GH.fr.html", base + "countries/GH.html"]
    assert ghana.xpath("./a/@hreflang") == ["en"]
    english_links = english.xpath('//*[@id="profiles"]//a/@href')
    assert base + "countries/index.html" in english_links
    assert base + "countries/GH.fr.html" in english_links
    # profiles in English only: the French catalogue links to them
    only_english = lxml.html.document_fromstring(
        render_index_html(with_profiles(make_catalog(), ["en"]), "fr", BOTH)
    )
    assert base + "countries/index.html" in only_english.xpath('//*[@id="profiles"]//a/@href')


def test_the_french_catalogue_names_countries_in_french() -> None:
    """The IATI Country codelist names countries in English only; French pages take
    CLDR's names (as the French profiles do), English pages keep the codelist's."""
    catalog = with_profiles(make_catalog(), ["en", "fr"])
    for row in catalog["releases"][0]["countries"]:
        row["country_name"] = {"NP": "Nepal", "SV": "El Salvador"}.get(row["country_code"])
    catalog["releases"][0]["profiles"]["countries"][1]["name"] = "Kenya"
    english, french = pages(catalog)

    def names(tree: Any) -> list[str]:
        return [exact(th) for th in tree.xpath('//table[@id="country-table"]//th[@scope="row"]')]

    assert any("Nepal" in name for name in names(english)), names(english)
    assert any("Népal" in name for name in names(french)), names(french)
    assert any("Salvador" in name and "El " not in name for name in names(french))
    assert not any("Népal" in name for name in names(english))


def test_the_french_catalogue_links_the_french_quality_report_when_there_is_one() -> None:
    catalog = make_catalog()
    _, french = pages(catalog)
    links = french.xpath('//*[@id="quality"]//a/@href')
    assert f"releases/{LATEST}/quality/index.html" in links  # no French report yet
    assert "quality/index.html" in links
    files = catalog["releases"][0]["files"]
    files["quality/index.fr.html"] = {"sha256": _digest("fr"), "bytes": 1300}
    english, french = pages(catalog)
    links = french.xpath('//*[@id="quality"]//a/@href')
    assert f"releases/{LATEST}/quality/index.fr.html" in links
    assert "quality/index.fr.html" in links
    assert f"releases/{LATEST}/quality/index.fr.html" in french.xpath(
        '//*[@id="downloads"]//a/@href'
    )
    assert "quality/index.fr.html" not in english.xpath("//a/@href")


def test_a_language_without_a_catalogue_is_refused() -> None:
    with pytest.raises(ValueError, match="no translation"):
        render_index_html(make_catalog(), "xx", ("en", "xx"))


def test_the_release_page_in_french() -> None:
    tables = [("activities", "Activities", 12480, 2_246_400, 748_800)]

    def page(lang: str, **options: Any) -> Any:
        return lxml.html.document_fromstring(
            render_release_html(
                "CD open data",
                LATEST,
                "2026-11-28T04:20:00Z",
                tables,
                has_quality=True,
                has_profiles=True,
                lang=lang,
                languages=BOTH,
                **options,
            )
        )

    english, french = page("en"), page("fr")
    assert french.get("lang") == "fr"
    assert [text(french, "//h1")] == [f"CD open data {LATEST}"]
    assert [" ".join(h.text_content().split()) for h in french.xpath("//h2")] == [
        "Cette version",
        "Tables de données",
    ]
    links = french.xpath("//a/@href")
    assert {"../../index.fr.html", "countries/index.fr.html", "partners/index.fr.html"} <= set(
        links
    )
    assert "quality/index.html" in links  # the quality report is in English only
    french_quality = page("fr", quality_languages=BOTH).xpath("//a/@href")
    assert "quality/index.fr.html" in french_quality
    assert {"../../index.html", "countries/index.html", "quality/index.html"} <= set(
        english.xpath("//a/@href")
    )
    (row,) = french.xpath('//tr[@data-table="activities"]')
    assert [c.text_content() for c in row.xpath("./td")][1] == format_count(12480, "fr")
    for tree in (english, french):
        alternates = tree.xpath('//link[@rel="alternate"][@hreflang]/@href')
        assert alternates == ["index.html", "index.fr.html"]
    assert french.xpath('//nav[@class="lang"]//a/@href') == ["index.html"]
    assert english.xpath('//nav[@class="lang"]//a/@href') == ["index.fr.html"]


def distributions(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [item for dataset in document["dcat:dataset"] for item in dataset["dcat:distribution"]]


def test_dcat_is_json_ld_with_one_dataset_per_release() -> None:
    document = render_dcat(make_catalog(), None)
    assert json.loads(json.dumps(document)) == document
    assert set(document["@context"]) >= {"dcat", "dct", "foaf", "spdx", "xsd"}
    assert document["@type"] == "dcat:Catalog"
    assert document["dct:license"] == {"@id": "https://creativecommons.org/licenses/by/4.0/"}
    datasets = document["dcat:dataset"]
    assert [d["dct:identifier"] for d in datasets] == [LATEST, PREVIOUS]
    latest = datasets[0]
    assert latest["@type"] == "dcat:Dataset"
    assert latest["dcat:version"] == latest["owl:versionInfo"] == LATEST
    assert latest["dct:issued"] == {"@value": "2026-11-28T04:20:00Z", "@type": "xsd:dateTime"}
    assert latest["dct:conformsTo"]["owl:versionInfo"] == "1.0.0"
    assert latest["dct:license"] == document["dct:license"]
    assert latest["dcat:previousVersion"] == {"@id": f"releases/{PREVIOUS}/"}
    assert "dcat:previousVersion" not in datasets[1]
    assert latest["dct:title"].endswith(LATEST)


def test_every_distribution_has_checksum_size_type_and_url() -> None:
    catalog = make_catalog()
    document = render_dcat(catalog, None)
    items = distributions(document)
    # Per release: each table in CSV and Parquet, plus datapackage.json.
    assert len(items) == 2 * (2 * len(TABLES) + 1)
    media = {"text/csv": 0, "application/vnd.apache.parquet": 0, "application/json": 0}
    for item in items:
        assert item["@type"] == "dcat:Distribution"
        url = item["dcat:downloadURL"]["@id"]
        assert url.startswith("releases/")
        assert not urlsplit(url).scheme
        checksum = item["spdx:checksum"]
        assert checksum["spdx:algorithm"] == {"@id": "spdx:checksumAlgorithm_sha256"}
        assert len(checksum["spdx:checksumValue"]["@value"]) == 64
        assert item["dcat:byteSize"]["@value"] > 0
        media[item["dcat:mediaType"]] += 1
    assert media == {
        "text/csv": 2 * len(TABLES),
        "application/vnd.apache.parquet": 2 * len(TABLES),
        "application/json": 2,
    }
    files = catalog["releases"][0]["files"]
    (activities_csv,) = [
        item
        for item in items
        if item["dcat:downloadURL"]["@id"] == f"releases/{LATEST}/data/activities.csv"
    ]
    assert (
        activities_csv["spdx:checksum"]["spdx:checksumValue"]["@value"]
        == (files["data/activities.csv"]["sha256"])
    )
    assert activities_csv["dcat:byteSize"]["@value"] == files["data/activities.csv"]["bytes"]


@pytest.mark.parametrize(
    "base_url", ["https://data.example.org/cd", "https://data.example.org/cd/"]
)
def test_dcat_base_url(base_url: str) -> None:
    document = render_dcat(make_catalog(), base_url)
    assert document["@id"] == "https://data.example.org/cd/"
    assert document["foaf:homepage"] == {"@id": "https://data.example.org/cd/index.html"}
    urls = [item["dcat:downloadURL"]["@id"] for item in distributions(document)]
    assert f"https://data.example.org/cd/releases/{LATEST}/data/activities.parquet" in urls
    assert f"https://data.example.org/cd/releases/{LATEST}/datapackage.json" in urls
    assert all(url.startswith("https://data.example.org/cd/releases/") for url in urls)
    assert "//releases" not in "".join(urls)


def test_dcat_credits_become_publisher_and_sources() -> None:
    catalog = make_catalog()
    catalog["publisher"] = "CD Compact secretariat"
    document = render_dcat(catalog, None)
    assert document["dct:publisher"] == {
        "@type": "foaf:Agent",
        "foaf:name": "CD Compact secretariat",
    }
    assert document["dct:source"] == catalog["credits"]
    assert document["dcat:dataset"][0]["dct:source"] == catalog["credits"]
    catalog["credits"] = [{"title": "IMF exchange rates"}, {"name": "IATI"}, ""]
    assert render_dcat(catalog, None)["dct:source"] == ["IMF exchange rates", "IATI"]
    del catalog["credits"], catalog["publisher"]
    document = render_dcat(catalog, None)
    assert "dct:source" not in document
    assert document["dct:publisher"]["foaf:name"] == catalog["title"]
