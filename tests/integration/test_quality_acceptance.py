"""Issue 6's acceptance, on the shared fixtures as they are.

Every fixture file (valid, legacy, invalid) is harmonised with the official
IATI schemas and codelists, validated by the Great Expectations suites, and
published; the data-quality report must then name each rejected file and why,
show the ADB Armenia and WHO Argentina publishers as valid, and flag the
schema-invalid and legacy files with their line-numbered findings — in
report.json, in the HTML pages and on the contributors' own pages.
"""

from __future__ import annotations

import datetime as dt
import json
from functools import cache
from pathlib import Path
from typing import Any

import lxml.html
import pandas as pd
import pytest

from assets.iati.codelists import load_codelists
from assets.iati.conformance import IatiSchemas
from assets.iati.harmonise import HarmoniseOptions, harmonise_paths
from assets.iati.rates import load_exchange_rates
from assets.settings import load_settings
from assets.storage.targets import LocalTarget
from publish.quality import QualityInputs
from publish.release import ReleaseOptions, publish_release
from tests.conftest import CODELISTS, IATI_FIXTURES, IATI_SCHEMAS, RATES, validate_frames
from tests.unit.test_release import stored

NOW = dt.datetime(2026, 11, 28, 2, 0, tzinfo=dt.UTC)
ADB = "XM-DAC-46004"
WHO = "XM-DAC-928"
REJECTED = {
    "not-xml.xml": "not XML",
    "truncated.xml": "not well-formed",
    "xml-but-not-iati.xml": "not an IATI activity file",
    "organisation-file-not-activities.xml": "organisation file",
    "iati-act-schema-errors.xml": "none of the 1 activities could be accepted",
}


@cache
def tables() -> dict[str, pd.DataFrame]:
    options = HarmoniseOptions(
        rules=load_settings().cd_rules,
        rates=load_exchange_rates([RATES / "imf-monthly-subset.csv"]),
        codelists=load_codelists(CODELISTS),
        schemas=IatiSchemas.from_dir(IATI_SCHEMAS),
    )
    folders = [IATI_FIXTURES / name for name in ("valid", "legacy", "invalid")]
    _, harmonised = harmonise_paths(folders, options)
    return harmonised


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("publish")
    docs = tmp_path_factory.mktemp("work") / "data-docs"
    validations = validate_frames(tables(), today=NOW.date(), data_docs_dir=docs)
    options = ReleaseOptions(
        title="acceptance",
        description="issue 6",
        schema_version="1.2.0",
        quality=QualityInputs(validations=validations, data_docs_dir=docs, as_of=NOW.date()),
    )
    folder = stored(tables(), tmp_path_factory.mktemp("tables"))
    outcome = publish_release(folder, LocalTarget(root), options, now=NOW)
    assert outcome.status == "published"
    return root


def report(root: Path) -> dict[str, Any]:
    value: dict[str, Any] = json.loads((root / "quality" / "report.json").read_text())
    return value


def page(path: Path) -> Any:
    return lxml.html.document_fromstring(path.read_bytes())


def test_every_rejected_file_is_named_with_its_reason(published: Path) -> None:
    files = {f["source_file"]: f for f in report(published)["files"]}
    rejected = {name: f["reason"] for name, f in files.items() if f["status"] == "rejected"}
    assert set(rejected) == set(REJECTED)
    for name, reason in rejected.items():
        assert reason, name
    assert "line 4" in rejected["truncated.xml"]
    text = page(published / "quality" / "index.html").text_content()
    for name, reason in rejected.items():
        assert name in text
        assert reason in " ".join(text.split()), name


def test_adb_armenia_and_who_argentina_are_valid(published: Path) -> None:
    contributors = {c["ref"]: c for c in report(published)["contributors"]}
    for ref, name, activities in ((ADB, "Asian Development Bank", 43), (WHO, "World Health", 157)):
        item = contributors[ref]
        assert item["kind"] == "publisher"
        assert name in item["name"]
        validity = item["figures"]["validity"]
        assert validity["state"] == "valid", item["problems"][:3]
        assert validity["schema_checked_files"] == validity["schema_valid_files"] == 1
        assert validity["schema_errors"] == validity["codelist_errors"] == 0
        assert validity["expectation_errors"] == 0
        assert validity["records_accepted"] == activities
        own = page(published / "quality" / "contributors" / f"{item['slug']}.html")
        assert "valid" in own.text_content()
        assert item["ref"] in own.text_content()


def test_the_schema_invalid_file_is_flagged_with_its_line(published: Path) -> None:
    files = {f["source_file"]: f for f in report(published)["files"]}
    broken = files["iati-act-schema-errors.xml"]
    assert broken["schema"]["checked"] is True
    assert broken["schema"]["errors"] == 1
    (schema_error,) = [f for f in broken["findings"] if f["check"] == "xsd"]
    assert schema_error["line"] == 18
    assert schema_error["severity"] == "error"
    assert "iso-date" in schema_error["message"]
    codelist_errors = {
        f["line"]: f["rule"]
        for f in broken["findings"]
        if f["check"] == "codelist" and f["severity"] == "error"
    }
    # empty role, activity status and date type: codes not in embedded codelists
    assert codelist_errors == {
        14: "codelist:OrganisationRole",
        16: "codelist:ActivityStatus",
        18: "codelist:ActivityDateType",
    }
    text = " ".join(page(published / "quality" / "index.html").text_content().split())
    assert "line 18" in text


def test_legacy_files_are_flagged_with_line_numbered_errors(published: Path) -> None:
    files = {f["source_file"]: f for f in report(published)["files"]}
    for name in ("dfid-CD-1.01.xml", "usgov-big-value-1.0.xml"):
        legacy = files[name]
        assert legacy["iati_version"].startswith("1.0")
        assert legacy["codelists"]["errors"] > 0, name
        errors = [f for f in legacy["findings"] if f["severity"] == "error"]
        assert errors, name
        assert all(isinstance(f["line"], int) and f["line"] > 0 for f in errors), name
    conformance = tables()["conformance"]
    usgov = conformance[
        (conformance["source_file"] == "usgov-big-value-1.0.xml")
        & (conformance["severity"] == "error")
    ]
    assert (usgov["rule"] == "codelist:OrganisationRole").any()
    # the legacy publishers are not valid, and their pages say where to look
    contributors = report(published)["contributors"]
    legacy_publishers = [
        c for c in contributors if set(c["files"]) & {"dfid-CD-1.01.xml", "usgov-big-value-1.0.xml"}
    ]
    assert legacy_publishers
    for item in legacy_publishers:
        assert item["figures"]["validity"]["state"] == "invalid"
        own = " ".join(
            page(published / "quality" / "contributors" / f"{item['slug']}.html")
            .text_content()
            .split()
        )
        assert "line " in own


def test_data_docs_and_the_frozen_copy_are_published(published: Path) -> None:
    quality = published / "quality"
    assert (quality / "data-docs" / "index.html").is_file()
    frozen = published / "releases" / "2026.11.28" / "quality"
    assert json.loads((frozen / "report.json").read_text()) == report(published)
    index = page(quality / "index.html")
    assert "data-docs/index.html" in index.xpath("//a/@href")
    # links to the release's rows work from both places
    for folder in (quality, frozen):
        for target in page(folder / "index.html").xpath("//a/@href"):
            if "://" in target or target.startswith("#"):
                continue
            path = (folder / target.split("#")[0]).resolve()
            assert path.exists(), f"{folder}: {target}"
