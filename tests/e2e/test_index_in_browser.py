"""The catalogue page in a real browser: headless Chromium renders it from disk (``file://``).

Checks the rendered DOM (latest version, figures, per-country bars), that every
relative link points at a file in the published folder, and keeps a screenshot of a
real release's page (``var/artifacts/index-demo-release.png``); the catalogue's screenshots
at phone and laptop widths are ``tests/e2e/test_page_screenshots.py``'s.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import lxml.html
import pytest

from publish.site import render_dcat, render_index_html
from tests.conftest import PROJECT_ROOT
from tests.unit.test_site import COUNTRIES, LATEST, make_catalog

ARTIFACT = PROJECT_ROOT / "var" / "artifacts" / "index-demo-release.png"
TIMEOUT = 60
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LANGUAGES = ("en", "fr")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def publish_folder(root: Path, catalog: dict[str, Any]) -> Path:
    """The publish root as the release builder lays it out, with dummy file contents."""
    for release in catalog["releases"]:
        for name in release["files"]:
            path = root / release["path"] / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"dummy {name}\n", encoding="utf-8")
    (root / "catalog.json").write_text(json.dumps(catalog, indent=2), encoding="utf-8")
    latest = {"version": catalog["latest"], "path": catalog["releases"][0]["path"]}
    (root / "latest.json").write_text(json.dumps(latest), encoding="utf-8")
    (root / "data-dictionary.md").write_text("# Data dictionary\n", encoding="utf-8")
    (root / "quality").mkdir(exist_ok=True)
    (root / "quality" / "index.html").write_text("<!DOCTYPE html><p>report</p>\n")
    dcat = render_dcat(catalog, None)
    (root / "dcat.jsonld").write_text(json.dumps(dcat, indent=2), encoding="utf-8")
    index = root / "index.html"
    index.write_text(render_index_html(catalog, "en", LANGUAGES), encoding="utf-8")
    french = render_index_html(catalog, "fr", LANGUAGES)
    (root / "index.fr.html").write_text(french, encoding="utf-8")
    return index


def run_chromium(browser: Path, profile: Path, *arguments: str) -> str:
    """Run headless Chromium with a fresh profile; its standard output."""
    command = [str(browser), *FLAGS, f"--user-data-dir={profile}", *arguments]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"Chromium did not finish within {TIMEOUT} s: {' '.join(command)}")
    assert result.returncode == 0, f"Chromium failed ({result.returncode}):\n{result.stderr}"
    return result.stdout


def rendered_dom(browser: Path, index: Path, profile: Path) -> Any:
    return lxml.html.document_fromstring(
        run_chromium(browser, profile, "--dump-dom", index.as_uri())
    )


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return publish_folder(tmp_path / "publish", make_catalog())


def test_index_renders_in_chromium(chromium: Path, site: Path, tmp_path: Path) -> None:
    dom = rendered_dom(chromium, site, tmp_path / "profile")

    (version,) = dom.xpath('//*[@id="latest-version"]')
    assert version.text_content() == LATEST
    figures = {
        node.get("data-figure"): " ".join(node.xpath("./span")[0].text_content().split())
        for node in dom.xpath("//*[@data-figure]")
    }
    assert figures["activities"] == "12,480"
    assert figures["publishers"] == "212"
    assert figures["disbursement_usd"] == "USD 10.6 million"
    assert figures["cd_disbursement_usd"] == "USD 7.1 million"
    assert figures["cd_share"] == "66.9%"
    for country in COUNTRIES:
        code = country["country_code"]
        bars = dom.xpath(f'//*[@id="chart-disbursements"]//*[@data-country="{code}"]')
        assert {bar.get("data-series") for bar in bars} == {"all", "cd"}, code
        assert all(float(bar.get("width")) > 0 for bar in bars), code
        shares = dom.xpath(f'//*[@id="chart-cd-share"]//*[@data-country="{code}"]')
        assert len(shares) == 1, code
    assert dom.xpath('//*[@id="alignment-table"]')
    assert dom.xpath('//*[@id="chart-effective-partners"]')
    assert not dom.xpath("//script")


def test_every_relative_link_resolves_to_a_published_file(
    chromium: Path, site: Path, tmp_path: Path
) -> None:
    dom = rendered_dom(chromium, site, tmp_path / "profile")
    root = site.parent.resolve()
    checked = []
    for target in dom.xpath("//a/@href | //link/@href"):
        parts = urlsplit(target)
        if parts.scheme or target.startswith("#"):
            continue
        path = (root / unquote(parts.path)).resolve()
        assert path.is_relative_to(root), target
        assert path.exists(), f"{target} does not exist in the published folder"
        checked.append(target)
    assert "data-dictionary.md" in checked
    assert f"releases/{LATEST}/data/activities.parquet" in checked
    assert f"releases/{LATEST}/quality/index.html" in checked
    assert "quality/index.html" in checked
    assert "dcat.jsonld" in checked


def test_the_french_catalogue_renders_in_chromium(
    chromium: Path, site: Path, tmp_path: Path
) -> None:
    dom = rendered_dom(chromium, site.with_name("index.fr.html"), tmp_path / "profile")
    assert dom.xpath("//html/@lang") == ["fr"]
    (version,) = dom.xpath('//*[@id="latest-version"]')
    assert version.text_content() == LATEST
    figures = {
        node.get("data-figure"): node.xpath("./span")[0].text_content().strip()
        for node in dom.xpath("//*[@data-figure]")
    }
    assert figures["activities"] == "12\u202f480"
    assert figures["cd_share"] == "66,9\u00a0%"
    assert dom.xpath('//nav[@class="lang"]//a/@href') == ["index.html"]
    root = site.parent.resolve()
    for target in dom.xpath("//a/@href | //link/@href"):
        parts = urlsplit(target)
        if parts.scheme or target.startswith("#"):
            continue
        assert (root / unquote(parts.path)).resolve().exists(), target


def test_a_real_release_of_the_demo_data_in_chromium(
    chromium: Path, tmp_path: Path, tables_dir: Path
) -> None:
    """The folder the release builder publishes, opened as a reader would open it."""
    import datetime as dt

    from assets.storage.targets import LocalTarget
    from publish.release import publish_release
    from tests.unit.test_release import OPTIONS, demo_tables, stored

    root = tmp_path / "publish"
    now = dt.datetime(2026, 11, 28, 2, 0, tzinfo=dt.UTC)
    publish_release(stored(demo_tables(), tables_dir), LocalTarget(root), OPTIONS, now=now)
    dom = rendered_dom(chromium, root / "index.html", tmp_path / "profile")
    (version,) = dom.xpath('//*[@id="latest-version"]')
    assert version.text_content() == "2026.11.28"
    figures = {
        node.get("data-figure"): " ".join(node.xpath("./span")[0].text_content().split())
        for node in dom.xpath("//*[@data-figure]")
    }
    assert figures["activities"] == "16"
    assert figures["cd_activities"] == "12"
    assert figures["countries"] == "4"
    countries = {
        bar.get("data-country")
        for bar in dom.xpath('//*[@id="chart-disbursements"]//*[@data-country]')
    }
    assert countries == {"GH", "KE", "NP", "SV"}
    assert dom.xpath('//*[@id="metrics-not-computed"]')
    for target in dom.xpath("//a/@href"):
        parts = urlsplit(target)
        if parts.scheme or target.startswith("#"):
            continue
        assert (root / unquote(parts.path)).exists(), target
    screenshot = tmp_path / "release.png"
    run_chromium(
        chromium,
        tmp_path / "profile2",
        f"--screenshot={screenshot}",
        "--window-size=1280,2400",
        (root / "index.html").as_uri(),
    )
    assert screenshot.read_bytes().startswith(PNG_SIGNATURE)
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_bytes(screenshot.read_bytes())
