"""Submissions filled into the project's own templates (templates/), with the mistakes
people make: merged headers, percentages typed in Excel, the CSV folder's descriptor,
the workbook's own sheets, formulas, DAC sector categories, and JSON files."""

from __future__ import annotations

import argparse
import copy
import csv
import datetime as dt
import json
import re
import shutil
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from openpyxl.utils import get_column_letter

from assets.iati.codelists import Codelists, load_codelists
from assets.settings import Settings, load_settings
from assets.submissions.check import (
    EXIT_OK,
    CheckedSubmission,
    check_main,
    check_submission,
    format_problems,
)
from assets.submissions.examples import EXAMPLES, json_example
from assets.submissions.harmonise import harmonise_submission
from assets.submissions.model import submission_type
from assets.submissions.read import read_submission
from pipelines.cli import add_check_arguments
from tests.conftest import CODELISTS, PROJECT_ROOT

TEMPLATES = PROJECT_ROOT / "templates"
DOCS = PROJECT_ROOT / "docs" / "submission-json.md"
KINDS = ("country_report", "partner_submission")


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(PROJECT_ROOT / "config" / "compact.yaml")


@pytest.fixture(scope="module")
def codelists() -> Codelists:
    """The official IATI codelists (Sector, SectorCategory, Country, Currency, ...)."""
    return load_codelists(CODELISTS / "non-embedded")


def _records(kind: str, sheet: str) -> list[dict[str, Any]]:
    given = EXAMPLES[kind][sheet]
    return copy.deepcopy([given] if isinstance(given, dict) else given)


def _fill_xlsx(
    tmp_path: Path, kind: str, change: dict[str, list[dict[str, Any]]] | None = None
) -> tuple[Path, openpyxl.Workbook]:
    """A copy of templates/<kind>.xlsx filled with the example's rows (``change``
    replaces a sheet's rows), not saved yet: the caller may spoil it, then save."""
    workbook = openpyxl.load_workbook(TEMPLATES / f"{kind}.xlsx")
    for spec in submission_type(kind).sheets:
        sheet = workbook[spec.name]
        names = [cell.value for cell in sheet[1]]
        rows = (change or {}).get(spec.name, _records(kind, spec.name))
        for number, record in enumerate(rows, start=2):
            for index, name in enumerate(names, start=1):
                value = record.get(name)
                if spec.column(name).type == "date" and isinstance(value, str):
                    value = dt.datetime.fromisoformat(value)
                sheet.cell(number, index, value)
    return tmp_path / f"{kind}-filled.xlsx", workbook


def _save(path: Path, workbook: openpyxl.Workbook) -> Path:
    workbook.save(path)
    return path


def _check(path: Path, settings: Settings, codelists: Codelists | None) -> CheckedSubmission:
    return check_submission(read_submission(path), settings, codelists, set())


def _column(kind: str, sheet: str, name: str) -> str:
    names = [c.name for c in submission_type(kind).sheet(sheet).columns]
    return get_column_letter(names.index(name) + 1)


# --- a filled template checks clean ---------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_filled_workbook_template_checks_with_no_warning(
    tmp_path: Path, kind: str, settings: Settings, codelists: Codelists
) -> None:
    path = _save(*_fill_xlsx(tmp_path, kind))
    checked = _check(path, settings, codelists)
    assert format_problems(checked) == ""
    assert checked.type_name == kind
    assert all(frame["_valid"].all() for frame in checked.frames.values())


def test_an_unknown_extra_sheet_still_warns(
    tmp_path: Path, settings: Settings, codelists: Codelists
) -> None:
    path, workbook = _fill_xlsx(tmp_path, "country_report")
    workbook.create_sheet("my notes")["A1"] = "things to ask the ministry"
    checked = _check(_save(path, workbook), settings, codelists)
    assert [(p.sheet, p.rule) for p in checked.problems] == [("my notes", "unknown_sheet")]


# --- 1. merged header cells -----------------------------------------------------------


def test_a_merged_header_is_an_error_and_no_row_is_published_with_an_empty_field(
    tmp_path: Path, settings: Settings, codelists: Codelists
) -> None:
    path, workbook = _fill_xlsx(tmp_path, "country_report")
    first = _column("country_report", "results", "indicator_title")
    second = _column("country_report", "results", "unit")
    assert (first, second) == ("D", "E")
    workbook["results"].merge_cells("D1:E1")  # the unit header is gone, its values stay
    path = _save(path, workbook)
    checked = _check(path, settings, codelists)
    [merged] = [p for p in checked.errors if p.rule == "merged_header"]
    assert merged.describe() == (
        "sheet results, row 1: the header cell D1:E1 is merged: the columns after the first "
        "of a merged header have no header, so their values cannot be read; no row of this "
        "sheet was read"
    )
    assert merged.fix == (
        "unmerge D1:E1 and give each column its own header, one per column, as in the template"
    )
    assert not checked.frames["results"]["_valid"].any()
    harmonised = harmonise_submission(
        checked, source_file="merged.xlsx", sha256="0" * 64, size=1, uri="test:merged.xlsx"
    )
    assert len(harmonised.tables["results"]) == 0
    assert harmonised.source["status"] == "partial"
    assert "column 5 has values but no header" not in format_problems(checked)


# --- 2. percentages -------------------------------------------------------------------


def test_a_percentage_typed_in_excel_reads_as_the_percentage_shown(
    tmp_path: Path, settings: Settings, codelists: Codelists
) -> None:
    rows = _records("country_report", "results")
    rows[0]["actual_value"] = 0.45  # typed 45% in Excel: stored 0.45, shown 45%
    rows[1]["actual_value"] = "45%"  # typed as text
    rows[1]["baseline_value"] = 0.125  # typed 12.5% in a cell formatted 0.0%
    path, workbook = _fill_xlsx(tmp_path, "country_report", {"results": rows})
    results = workbook["results"]
    results[f"{_column('country_report', 'results', 'actual_value')}2"].number_format = "0%"
    results[f"{_column('country_report', 'results', 'baseline_value')}3"].number_format = "0.0%"
    checked = _check(_save(path, workbook), settings, codelists)
    frame = checked.frames["results"]
    assert frame["actual_value"].tolist() == [45.0, 45.0]
    assert frame["baseline_value"].tolist() == [120.0, 12.5]
    read_as = sorted(p.message for p in checked.normalisations)
    assert read_as == ["'12.5%' read as 12.5", "'45%' read as 45", "'45%' read as 45"]
    assert not checked.errors


# --- 3. the CSV template folder's datapackage.json --------------------------------------


def _fill_csv_folder(tmp_path: Path, kind: str) -> Path:
    """A copy of templates/<kind>/ (datapackage.json included) filled with the example."""
    folder = tmp_path / f"{kind} filled"
    shutil.copytree(TEMPLATES / kind, folder)
    assert (folder / "datapackage.json").is_file()
    for spec in submission_type(kind).sheets:
        with (folder / f"{spec.name}.csv").open("a", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\r\n")
            for record in _records(kind, spec.name):
                writer.writerow(
                    ("yes" if v else "no") if isinstance(v, bool) else v
                    for v in (record[c.name] for c in spec.columns)
                )
    return folder


@pytest.mark.parametrize("kind", KINDS)
def test_a_filled_csv_folder_with_its_descriptor_checks_with_no_warning(
    tmp_path: Path, kind: str, settings: Settings, codelists: Codelists
) -> None:
    checked = _check(_fill_csv_folder(tmp_path, kind), settings, codelists)
    assert format_problems(checked) == ""
    assert checked.type_name == kind


def test_the_nightly_intake_takes_a_csv_folder_with_its_descriptor_as_one_submission(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from assets.submissions.intake import process, receive

    monkeypatch.setenv("CDCOMPACT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CDCOMPACT_INBOX_DIR", str(tmp_path / "inbox"))
    (tmp_path / "inbox").mkdir()
    filled = _fill_csv_folder(tmp_path, "partner_submission")
    shutil.copytree(filled, tmp_path / "inbox" / "partner csv")
    settings = load_settings()
    keys = receive(settings)
    assert len(keys) == 1
    harmonised = process(settings, keys[0], None, None, None)
    assert harmonised.source["uri"] == "inbox:partner csv.zip"
    assert harmonised.source["status"] == "ok"
    assert len(harmonised.tables["activities"]) == 2
    assert len(harmonised.tables["quarantine"]) == 0
    # the descriptor changed alone: still the same submission, nothing new
    descriptor = tmp_path / "inbox" / "partner csv" / "datapackage.json"
    descriptor.write_text(descriptor.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert receive(settings) == []


# --- 5. where file-level notes and formulas are -----------------------------------------


def test_file_level_notes_name_the_file_and_formulas_are_located(
    tmp_path: Path, settings: Settings, codelists: Codelists
) -> None:
    path, workbook = _fill_xlsx(tmp_path, "country_report")
    letter = _column("country_report", "results", "actual_value")
    workbook["results"][f"{letter}3"] = "=40+22.5"  # written by a program: never calculated
    hidden = workbook.create_sheet("old figures")
    hidden["A1"] = "x"
    hidden.sheet_state = "hidden"
    path = _save(path, workbook)
    checked = _check(path, settings, codelists)
    [formula] = [p for p in checked.problems if p.rule == "formula"]
    assert formula.describe() == (
        f"sheet results, row 3, column actual_value: cell {letter}3 holds a formula; it was "
        "never calculated (a file written by a program?), so the cell reads as empty"
    )
    harmonised = harmonise_submission(
        checked,
        source_file="sub-1-country_report-filled.xlsx",
        sha256="0" * 64,
        size=1,
        uri="test:x",
    )
    quarantine = harmonised.tables["quarantine"]
    refs = dict(zip(quarantine["rule"], quarantine["source_ref"], strict=True))
    assert refs["reader_note"] == "country_report-filled.xlsx"
    assert refs["formula"] == "sheet results, row 3"
    assert not quarantine["source_ref"].str.contains("None").any()


# --- 6. DAC sector categories -----------------------------------------------------------


def test_a_dac_sector_category_is_named_and_no_purpose_code_is_chosen(
    tmp_path: Path, settings: Settings, codelists: Codelists
) -> None:
    rows = _records("country_report", "cd_priorities")
    rows[0]["sector_code"] = "151"
    path = _save(*_fill_xlsx(tmp_path, "country_report", {"cd_priorities": rows}))
    checked = _check(path, settings, codelists)
    [problem] = checked.errors
    assert (problem.sheet, problem.row, problem.column, problem.rule) == (
        "cd_priorities",
        2,
        "sector_code",
        "sector_category",
    )
    assert problem.message.startswith(
        "'151' is a DAC 3-digit sector category (Government & Civil Society-general), not a "
        "5-digit purpose code; the sector must be the purpose code within that category: "
        "15110 (Public sector policy and administrative management), 15111 (Public finance "
        "management (PFM)), "
    )
    assert "did you mean" not in problem.message
    assert problem.fix is not None
    assert not re.search(r"\d{5}", problem.fix)
    assert checked.frames["cd_priorities"]["sector_code"].tolist()[0] is None


# --- 7. JSON submissions ----------------------------------------------------------------


def _args(path: Path) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_check_arguments(parser)
    return parser.parse_args([str(path)])


@pytest.mark.parametrize("kind", KINDS)
def test_the_json_examples_pass_check_with_no_error_and_no_warning(
    kind: str, capsys: pytest.CaptureFixture[str], settings: Settings, codelists: Codelists
) -> None:
    path = TEMPLATES / f"{kind}.json"
    assert json.loads(path.read_text(encoding="utf-8")) == json_example(submission_type(kind))
    assert check_main(_args(path)) == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith(f"{kind}.json: {kind}; metadata 1 row, ")
    assert out.endswith(" 2 rows; 0 errors, 0 warnings\n"), out
    assert format_problems(_check(path, settings, codelists)) == ""


@pytest.mark.parametrize("kind", KINDS)
def test_the_json_format_is_documented_with_the_examples(kind: str) -> None:
    text = DOCS.read_text(encoding="utf-8")
    blocks = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", text, re.S)]
    assert json_example(submission_type(kind)) in blocks
    section = (TEMPLATES / "README.md").read_text(encoding="utf-8")
    assert "## JSON submissions" in section
    assert f"`{kind}.json`" in section


def test_problems_in_a_json_file_speak_of_json(
    tmp_path: Path, settings: Settings, codelists: Codelists
) -> None:
    document = json_example(submission_type("country_report"))
    del document["results"]
    document["cd_priorities"][1]["end_year"] = "soon"
    document["cd_priorities"].append(dict(document["cd_priorities"][0]))
    del document["metadata"]["submitted_by"]
    path = tmp_path / "report.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    checked = _check(path, settings, codelists)
    text = format_problems(checked)
    assert text.splitlines() == [
        "Errors (4):",
        "  metadata.submitted_by: the required field `submitted_by` is missing",
        "  metadata.submitted_by: `submitted_by` is empty; it is required",
        "  cd_priorities[1].end_year: 'soon' is not a whole number",
        "  cd_priorities[2].priority_id: priority_id 'GH-P1' appears twice (first in "
        "cd_priorities[0]); each must be unique in the array",
        "Warnings (1):",
        '  results: the array "results" (Results indicators) is missing; no rows of this '
        "kind were read",
    ]
    fixes = {p.rule: p.fix for p in checked.problems}
    assert fixes["missing_sheet"] == (
        'add an array named "results" as in the example templates/country_report.json'
    )
    assert fixes["missing_column"] == 'add the field "submitted_by" to the object'
    harmonised = harmonise_submission(
        checked, source_file="report.json", sha256="0" * 64, size=1, uri="test:report.json"
    )
    refs = sorted(harmonised.tables["quarantine"]["source_ref"])
    assert refs == ["cd_priorities[1]", "cd_priorities[2]", "metadata", "metadata", "results"]
    assert set(harmonised.tables["cd_priorities"]["source_ref"]) == {"cd_priorities[0]"}
