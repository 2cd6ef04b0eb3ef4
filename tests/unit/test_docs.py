"""The README fits on a few screens and the manual in docs/ builds as a site with no broken link.

A newcomer reads the README: what the project is, the two commands, what they produce and
what to open, and where to read more. Everything else is in docs/, one guide per reader,
built by MkDocs with ``--strict`` (``make docs``, part of ``make test``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"
DOCS = PROJECT_ROOT / "docs"
MKDOCS = PROJECT_ROOT / "mkdocs.yml"
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _nav_pages(nav: list[object]) -> set[str]:
    pages: set[str] = set()
    for entry in nav:
        if isinstance(entry, str):
            pages.add(entry)
        elif isinstance(entry, dict):
            for value in entry.values():
                pages |= _nav_pages(value) if isinstance(value, list) else {str(value)}
    return pages


def _build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_readme_fits_on_a_few_screens_and_says_where_to_read_more() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; move the detail into docs/"
    headings = [line for line in lines if line.startswith("## ")]
    assert headings[:4] == [
        "## The two commands",
        "## What you get",
        "## What to open",
        "## Where to read more",
    ]
    text = "\n".join(lines)
    for guide in ("operators.md", "researchers.md", "submitters.md", "developers.md"):
        assert f"(docs/{guide})" in text, f"the README does not point to docs/{guide}"


def test_every_link_of_the_readme_leads_to_a_file_of_the_project() -> None:
    targets = [t for t in _LINK.findall(README.read_text(encoding="utf-8")) if "://" not in t]
    assert targets
    missing = [t for t in targets if not (PROJECT_ROOT / t.split("#", 1)[0]).is_file()]
    assert missing == []


def test_every_page_of_docs_is_in_the_site_navigation() -> None:
    config = yaml.safe_load(MKDOCS.read_text(encoding="utf-8"))
    assert config["strict"] is True
    pages = {p.name for p in DOCS.glob("*.md")}
    assert _nav_pages(config["nav"]) == pages


def test_the_manual_builds_with_no_broken_link(tmp_path: Path) -> None:
    built = _build(MKDOCS, tmp_path / "site")
    assert built.returncode == 0, built.stderr
    for page in ("index", "operators", "researchers", "submitters", "developers"):
        assert (tmp_path / "site" / f"{page}.html").is_file(), page


@pytest.mark.parametrize(
    ("mistake", "named"),
    [
        ("[the fetch](fetchng.md)", "fetchng.md"),
        ("[the keys](developers.md#no-such-section)", "no-such-section"),
    ],
)
def test_a_broken_link_in_the_manual_fails_the_build_and_is_named(
    tmp_path: Path, mistake: str, named: str
) -> None:
    shutil.copytree(DOCS, tmp_path / "docs")
    shutil.copy(MKDOCS, tmp_path / "mkdocs.yml")
    guide = tmp_path / "docs" / "operators.md"
    guide.write_text(guide.read_text(encoding="utf-8") + f"\nSee {mistake}.\n", encoding="utf-8")
    built = _build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert built.returncode != 0
    assert named in built.stderr
