"""The data-quality website in a real browser: headless Chromium renders it from disk.

Checks the rendered DOM (figures, the sort script ran under the page's
Content-Security-Policy, sorting from a ``#sort=`` link), that every relative
link points at a file of the published folder, and keeps a printed contributor page
(``var/artifacts/quality-contributor.pdf``); phone widths and the screenshots are
``tests/e2e/test_page_screenshots.py``'s.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import lxml.html
import pytest

from publish.quality_html import CSP, render_quality_site
from tests.conftest import PROJECT_ROOT
from tests.e2e.test_index_in_browser import run_chromium  # the same flags
from tests.unit.test_quality_html import ADB, BROKEN, GIZ, KE, sample_report

ARTIFACTS = PROJECT_ROOT / "var" / "artifacts"
RELEASE = "../releases/2026.11.28/"
DESKTOP = "--window-size=1280,2400"


def publish_quality(root: Path, report: dict[str, Any]) -> Path:
    """The publish root with ``quality/`` as the publisher lays it out; the index page."""
    quality = root / "quality"
    for name, content in render_quality_site(report, data_docs=True, release_link=RELEASE).items():
        path = quality / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    (quality / "report.json").write_text("{}\n", encoding="utf-8")
    (quality / "history.json").write_text("[]\n", encoding="utf-8")
    (quality / "data-docs").mkdir()
    (quality / "data-docs" / "index.html").write_text("<!DOCTYPE html><p>docs</p>\n")
    release = root / "releases" / "2026.11.28"
    (release / "data").mkdir(parents=True)
    (release / "data" / "quarantine.csv").write_text("source_file\n", encoding="utf-8")
    return quality / "index.html"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return publish_quality(tmp_path / "publish", sample_report())


def dom(browser: Path, profile: Path, url: str, *arguments: str) -> Any:
    return lxml.html.document_fromstring(
        run_chromium(browser, profile, *arguments, "--dump-dom", url)
    )


def words(node: Any) -> str:
    return " ".join(node.text_content().split())


def order(tree: Any) -> list[str]:
    return tree.xpath('//table[@id="contributors-table"]/tbody/tr/@data-contributor')


def test_index_renders_with_its_figures_and_sort_script(
    chromium: Path,
    site: Path,
    tmp_path: Path,
) -> None:
    tree = dom(chromium, tmp_path / "profile", site.as_uri())
    tiles = {node.get("data-figure"): words(node) for node in tree.xpath("//dd[@data-figure]")}
    assert tiles["state_valid"] == "2"
    assert tiles["state_rejected"] == "1"
    assert tiles["files_rejected"] == "1"
    assert tiles["records_quarantined"] == "2"
    assert tiles["fresh_delinquent"] == "1"
    text = words(tree.xpath("//body")[0])
    assert "the body is an HTML page, not IATI XML" in text
    assert "line 42" in text
    assert "72.1%" in text
    # The script ran (the page's Content-Security-Policy allowed it by its hash): every
    # sortable heading became a button, and nothing was sorted before anyone asked.
    (table,) = tree.xpath('//table[@id="contributors-table"]')
    assert "js-sortable" in table.get("class")
    assert len(table.xpath("./thead/tr/th/button[@class='sort']")) == len(
        table.xpath("./thead/tr/th[@data-key]")
    )
    assert table.get("data-sorted") is None
    assert order(tree) == [ADB, KE, GIZ, BROKEN]
    assert tree.xpath('//meta[@http-equiv="Content-Security-Policy"]/@content') == [CSP]


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        ("#sort=records-desc", [ADB, KE, GIZ, BROKEN]),
        ("#sort=records-asc", [BROKEN, GIZ, KE, ADB]),
        ("#sort=contributor-asc", [ADB, BROKEN, GIZ, KE]),
        ("#sort=state-asc", [BROKEN, ADB, KE, GIZ]),
        ("#sort=freshness-desc", [GIZ, ADB, KE, BROKEN]),  # oldest first; no date last
        ("#sort=activities-with-sector-asc", [ADB, KE, GIZ, BROKEN]),  # n/a last
    ],
)
def test_sorting_from_a_link(
    chromium: Path,
    site: Path,
    tmp_path: Path,
    fragment: str,
    expected: list[str],
) -> None:
    tree = dom(chromium, tmp_path / "profile", site.as_uri() + fragment)
    assert order(tree) == expected
    (table,) = tree.xpath('//table[@id="contributors-table"]')
    assert table.get("data-sorted") == fragment.removeprefix("#sort=")
    (sorted_by,) = table.xpath("./thead/tr/th[@aria-sort]")
    assert sorted_by.get("data-key") == re.sub(r"-(asc|desc)$", "", table.get("data-sorted"))


def test_contributor_page_renders(
    chromium: Path,
    site: Path,
    tmp_path: Path,
) -> None:
    page = site.parent / "contributors" / "publisher-xm-dac-46004.html"
    tree = dom(chromium, tmp_path / "profile", page.as_uri())
    assert words(tree.xpath("//h1")[0]) == "Asian Development Bank"
    points = [words(li) for li in tree.xpath('//ul[@id="summary-points"]/li')]
    assert "12 of 43 activities have no sector." in points
    assert tree.xpath('//svg[@id="chart-contributor-trend"]//polyline')


def test_every_relative_link_resolves(
    chromium: Path,
    site: Path,
    tmp_path: Path,
) -> None:
    root = site.parent.parent.resolve()
    checked = set()
    pages = [site, *sorted((site.parent / "contributors").glob("*.html"))]
    for number, page in enumerate(pages):
        tree = dom(chromium, tmp_path / f"profile{number}", page.as_uri())
        for target in tree.xpath("//a/@href"):
            parts = urlsplit(target)
            assert not parts.scheme, target
            if target.startswith("#"):
                assert tree.xpath(f'//*[@id="{target[1:]}"]'), target
                continue
            path = (page.parent / unquote(parts.path)).resolve()
            assert path.is_relative_to(root), target
            assert path.exists(), f"{target} in {page.name} does not exist"
            checked.add(path.relative_to(root).as_posix())
    assert "quality/data-docs/index.html" in checked
    assert "quality/report.json" in checked
    assert "releases/2026.11.28/data/quarantine.csv" in checked
    assert "quality/contributors/publisher-xi-iati-broken.html" in checked
    assert "quality/index.html" in checked


def test_a_contributor_page_prints(
    chromium: Path,
    site: Path,
    tmp_path: Path,
) -> None:
    """Printed (to PDF) as a contributor would print the page they were sent."""
    pdf = tmp_path / "contributor.pdf"
    page = site.parent / "contributors" / "publisher-xm-dac-46004.html"
    run_chromium(
        chromium,
        tmp_path / "profile",
        f"--print-to-pdf={pdf}",
        "--no-pdf-header-footer",
        page.as_uri(),
    )
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    assert len(data) > 20_000
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(pdf, ARTIFACTS / "quality-contributor.pdf")


def test_the_contributors_table_fits_a_laptop_screen_one_group_at_a_time(
    chromium: Path,
    site: Path,
    tmp_path: Path,
) -> None:
    """At 1280 px the table shows the contributor and one group of columns at a time (the
    reader picks the group), without scrolling sideways or wrapping names; every column
    is still there, and "All columns" shows them all."""
    probe = (
        "<script>window.addEventListener('load',function(){"
        "function seen(){var n=[];document.querySelectorAll('#contributors-table thead th')"
        ".forEach(function(h){if(h.getClientRects().length)n.push(h.dataset.key||'');});"
        "return n.join(' ');}"
        "function fits(){var w=document.querySelector('#contributors .scroll');"
        "return w.scrollWidth<=w.clientWidth;}"
        "function tallest(){var t=[];document.querySelectorAll("
        "'#contributors-table tbody th[data-col=contributor] a').forEach(function(a){"
        "t.push(a.getClientRects().length);});return t;}"
        "var b=document.body,r={};r.problems=seen();r.fits=fits();r.lines=tallest();"
        "['completeness','flows','all'].forEach(function(g){"
        "document.getElementById('columns-'+g).click();r[g]=seen();r[g+'_fits']=fits();});"
        "b.setAttribute('data-probe',JSON.stringify(r));});</script></body>"
    )
    html = site.read_text(encoding="utf-8")
    html = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html)
    measured = site.with_name("measured-columns.html")
    measured.write_text(html.replace("</body>", probe), encoding="utf-8")
    tree = dom(
        chromium, tmp_path / "profile", measured.as_uri(), DESKTOP, "--virtual-time-budget=5000"
    )
    probe_result = json.loads(tree.xpath("//body/@data-probe")[0])
    always = ["kind", "contributor", "state", "freshness"]
    assert probe_result["problems"].split() == [
        *always,
        "records",
        "quarantined",
        "schema-errors",
        "codelist-errors",
        "expectation-errors",
    ]
    assert probe_result["completeness"].split()[:4] == always
    assert len(probe_result["completeness"].split()) == 4 + 7
    assert probe_result["flows"].split() == [*always, "forward-budgets", "traceability"]
    assert len(probe_result["all"].split()) == 18  # every column, scrolling if it must
    assert probe_result["fits"] is True
    assert probe_result["completeness_fits"] is True
    # in the default view the longest name (56 characters: Deutsche Gesellschaft für
    # Internationale Zusammenarbeit) takes two lines, the others one (all 18 columns
    # squeezed into 1280 px put it on four)
    assert sorted(probe_result["lines"]) == [1, 1, 1, 2]
