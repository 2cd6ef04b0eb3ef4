"""Country and partner profile pages in a real browser: headless Chromium opens them from a
release of the small compact (``tests/profile_compact.py``), as a reader would from disk.

Checks the figures the rendered pages show, that the charts are drawn and that nothing is
loaded from outside, and keeps a printed page as an artifact in ``var/artifacts/``
(the screenshots are ``tests/e2e/test_page_screenshots.py``'s).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import lxml.html
import pytest

from tests.conftest import PROJECT_ROOT
from tests.e2e.test_index_in_browser import rendered_dom, run_chromium
from tests.unit.test_profile_pages import publish_golden

ARTIFACTS = PROJECT_ROOT / "var" / "artifacts"


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return publish_golden(tmp_path_factory.mktemp("publish"), tmp_path_factory.mktemp("tables"))


def _text(node: lxml.html.HtmlElement) -> str:
    return re.sub(r"[ \t\r\n]+", " ", node.text_content()).strip()


def _cells(dom: lxml.html.HtmlElement, section: str, caption: str) -> list[list[str]]:
    tables = [
        t
        for t in dom.xpath(f'//section[@id="{section}"]//table')
        if caption in _text(t.xpath("caption")[0])
    ]
    assert tables, f"no table '{caption}' in section {section}"
    return [[_text(c) for c in row.xpath("./th|./td")] for row in tables[0].xpath(".//tr")]


def test_a_country_page_in_chromium(chromium: Path, release: Path, tmp_path: Path) -> None:
    page = release / "countries" / "GH.html"
    dom = rendered_dom(chromium, page, tmp_path / "profile")
    assert _text(dom.xpath("//h1")[0]).startswith("Ghana")
    # Hand-computed: CD disbursements by partner (see tests/unit/test_profiles.py).
    assert _cells(dom, "money", "by partner")[-1] == [
        "Total", "USD 1,400,000", "USD 500,000", "USD 1,900,000"
    ]  # fmt: skip
    assert _cells(dom, "priorities", "priorities")[2][-1] == "No partner funds this priority"
    ranks = _cells(dom, "peers", "Aligned with country CD priorities: rank")
    assert ranks[1][:3] == ["All compact countries", "3", "1st of 3"]
    # Every chart drawn, labelled for screen readers, with bars of some width.
    charts = dom.xpath("//svg")
    assert len(charts) >= 6
    for chart in charts:
        assert chart.get("role") == "img"
        assert chart.xpath("./title")
        assert chart.xpath("./desc")
    widths = [float(w) for w in dom.xpath('//section[@id="money"]//svg//rect/@width')]
    assert max(widths) > 100
    # Nothing is loaded from outside: no script, no external source of any kind.
    assert not dom.xpath("//script | //img | //iframe | //link[@rel='stylesheet']")
    assert not [s for s in dom.xpath("//@src") if s]


def test_a_partner_page_in_chromium(chromium: Path, release: Path, tmp_path: Path) -> None:
    page = release / "partners" / "XM-A.fr.html"
    dom = rendered_dom(chromium, page, tmp_path / "profile")
    assert dom.xpath("//html/@lang") == ["fr"]
    assert _text(dom.xpath("//h1")[0]).startswith("Agency A")
    total = _cells(dom, "money", "pays")[-1]
    nnbsp, nbsp = "\u202f", "\u00a0"
    assert total[-1] == f"3{nnbsp}500{nnbsp}000{nbsp}USD"
    overlaps = _text(dom.xpath('//section[@id="overlaps"]')[0])
    assert "Bank B" in overlaps
    assert "XM-B-1" in overlaps


def test_a_country_page_prints(chromium: Path, release: Path, tmp_path: Path) -> None:
    """Printed to PDF as a browser prints it (the print styles apply): a document of pages."""
    pdf = tmp_path / "GH.pdf"
    page = release / "countries" / "GH.html"
    run_chromium(
        chromium, tmp_path / "profile", f"--print-to-pdf={pdf}", "--no-pdf-header-footer",
        page.as_uri(),
    )  # fmt: skip
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    assert len(data) > 20_000
    assert data.count(b"/Type /Page") - data.count(b"/Type /Pages") >= 2
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(pdf, ARTIFACTS / "profile-country-GH.pdf")
