"""Every kind of page at a phone's width and a laptop's, in each language it is published
in: the catalogue, the data-quality report and a contributor's page of it, and a country's
and a partner's profile in English and French.

At 390 px (and 320) the page itself must not scroll sideways (wide tables and charts scroll inside
their own box); at both widths a screenshot is kept in ``var/artifacts/pages/`` for a
human to look at.

Headless Chromium will not open a window narrower than 500 px, so the width is measured
in a frame as wide as a phone: a copy of the page with a probe script (and without the
policy that would, rightly, block that script) measures itself and posts its widths to
the frame's parent.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import lxml.html
import pytest

from publish.quality_html import render_quality_site
from tests.conftest import PROJECT_ROOT
from tests.e2e.test_index_in_browser import PNG_SIGNATURE, run_chromium
from tests.unit.test_profile_pages import publish_golden
from tests.unit.test_quality_html import sample_report

ARTIFACTS = PROJECT_ROOT / "var" / "artifacts" / "pages"
PHONE, LAPTOP = 390, 1280
PROBE = (
    "<script>window.addEventListener('load',function(){var d=document.documentElement;"
    "parent.postMessage({scroll:d.scrollWidth,client:d.clientWidth},'*');});</script></body>"
)
FRAME = (
    "<!DOCTYPE html><html><body>"
    '<iframe src="{page}" width="{width}" height="2000"></iframe>'
    "<script>window.addEventListener('message',function(e){{"
    "document.body.setAttribute('data-scroll',e.data.scroll);"
    "document.body.setAttribute('data-client',e.data.client);}});</script>"
    "</body></html>"
)
#: (name of the screenshots, the page under the published root)
PAGES = (
    ("catalogue", "index.html"),
    ("catalogue-fr", "index.fr.html"),
    ("quality-report", "quality/index.html"),
    ("quality-contributor", "quality/contributors/publisher-xm-dac-46004.html"),
    ("quality-report-fr", "quality/index.fr.html"),
    ("quality-contributor-fr", "quality/contributors/publisher-xm-dac-46004.fr.html"),
    ("country-en", "releases/{version}/countries/GH.html"),
    ("country-fr", "releases/{version}/countries/GH.fr.html"),
    ("partner-en", "releases/{version}/partners/XM-A.html"),
    ("partner-fr", "releases/{version}/partners/XM-A.fr.html"),
)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A published folder with a release of the small compact (catalogue and profiles in
    English and French) and the quality report of the sample report (in both too)."""
    root = tmp_path_factory.mktemp("publish")
    release = publish_golden(root, tmp_path_factory.mktemp("tables"))
    quality = root / "quality"
    shutil.rmtree(quality, ignore_errors=True)
    link = f"../releases/{release.name}/"
    site = render_quality_site(sample_report(), release_link=link, languages=("en", "fr"))
    for name, content in site.items():
        (quality / name).parent.mkdir(parents=True, exist_ok=True)
        (quality / name).write_bytes(content)
    (root / "version.txt").write_text(release.name, encoding="utf-8")
    return root


def page_path(root: Path, page: str) -> Path:
    version = (root / "version.txt").read_text(encoding="utf-8")
    path = root / page.format(version=version)
    assert path.is_file(), f"{path} was not published"
    return path


@pytest.mark.parametrize("width", [320, PHONE])
@pytest.mark.parametrize(("name", "page"), PAGES, ids=[name for name, _ in PAGES])
def test_a_phone_does_not_scroll_sideways(
    chromium: Path, root: Path, tmp_path: Path, name: str, page: str, width: int
) -> None:
    path = page_path(root, page)
    html = path.read_text(encoding="utf-8")
    html = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html)
    measured = path.with_name(f"measured-{path.name}")
    measured.write_text(html.replace("</body>", PROBE), encoding="utf-8")
    frame = path.with_name(f"phone-{path.name}")
    frame.write_text(FRAME.format(page=measured.name, width=width), encoding="utf-8")
    try:
        dump = run_chromium(
            chromium, tmp_path / "profile", "--virtual-time-budget=5000", "--dump-dom",
            frame.as_uri(),
        )  # fmt: skip
    finally:
        measured.unlink()
        frame.unlink()
    (body,) = lxml.html.document_fromstring(dump).xpath("//body")
    client = int(body.get("data-client"))
    assert width - 20 <= client <= width, client
    assert int(body.get("data-scroll")) <= client, f"{name}: the page is wider than a phone"


@pytest.mark.parametrize("width", [PHONE, LAPTOP])
@pytest.mark.parametrize(("name", "page"), PAGES, ids=[name for name, _ in PAGES])
def test_screenshots_are_kept_as_artifacts(
    chromium: Path, root: Path, tmp_path: Path, name: str, page: str, width: int
) -> None:
    shot = tmp_path / f"{name}-{width}.png"
    run_chromium(
        chromium, tmp_path / "profile", f"--screenshot={shot}", f"--window-size={width},2400",
        "--hide-scrollbars", page_path(root, page).as_uri(),
    )  # fmt: skip
    data = shot.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 20_000, f"{shot.name} looks blank ({len(data)} bytes)"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, ARTIFACTS / shot.name)
