"""The house rules that keep the project usable: layout, pure stages, the two commands."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import PROJECT_ROOT

PURE_MODULES = [
    "assets.settings",
    "assets.harmonise.schema",
    "assets.harmonise.store",
    "assets.iati.xml",
    "assets.iati.codes",
    "assets.iati.classify",
    "assets.iati.rates",
    "assets.iati.codelists",
    "assets.iati.harmonise",
    "assets.iati.fetching",
    "assets.fetch.http",
    "assets.fetch.rawstore",
    "assets.fetch.sources",
    "assets.fetch.reference",
    "expectations.schema_checks",
    "expectations.suites",
    "expectations.runner",
    "publish.dictionary",
    "publish.files",
    "publish.headline",
    "publish.changelog",
    "publish.quality",
    "publish.site",
    "publish.release",
    "publish.tables",
    "publish.verify",
    "assets.storage.targets",
    "publish.download",
]


def test_pure_stages_never_import_dagster() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {PURE_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m == 'dagster' or m.startswith('dagster.')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=PROJECT_ROOT,
    )
    assert result.stdout.strip() == "[]"


def test_the_code_location_loads_without_great_expectations() -> None:
    """Every step process of a run loads the code location: Great Expectations (2.5 s of
    its 4 s) is imported only by the steps that validate."""
    code = (
        "import sys\n"
        "from assets.settings import load_settings\n"
        "from pipelines.definitions import build_definitions\n"
        "build_definitions(load_settings()).resolve_all_job_defs()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'great_expectations'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PROJECT_ROOT
    )
    assert result.stdout.strip() == "[]"


def test_design_card_top_level() -> None:
    for folder in ("pipelines", "assets", "expectations", "publish", "tests", "schema", "config"):
        assert (PROJECT_ROOT / folder).is_dir(), folder
    for name in ("dagster.yaml", "pyproject.toml", "Makefile", "README.md"):
        assert (PROJECT_ROOT / name).is_file(), name
    assert (PROJECT_ROOT / "pipelines" / "definitions.py").is_file()


def test_ci_runs_make_test_and_readme_opens_with_the_two_commands() -> None:
    ci = (PROJECT_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    commands = [line for line in ci.splitlines() if line and not line.startswith("#")]
    assert commands[-1].strip() in {"make test", "exec make test"}
    opening = "\n".join((PROJECT_ROOT / "README.md").read_text(encoding="utf-8").splitlines()[:25])
    assert "make run" in opening
    assert "make test" in opening
    ignored = (PROJECT_ROOT / ".gitignore").read_text(encoding="utf-8").split()
    assert ".dagster_home/" in ignored
    assert "var/" in ignored
