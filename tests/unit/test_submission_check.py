"""Reading and checking submissions: the realistic samples, hostile files and the CLI."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from assets.iati.codelists import Codelists, load_codelists
from assets.settings import Settings, load_settings
from assets.submissions.check import (
    EXIT_ERRORS,
    EXIT_OK,
    EXIT_REJECTED,
    CheckedSubmission,
    check_main,
    check_submission,
    format_problems,
)
from assets.submissions.model import submission_type
from assets.submissions.read import (
    ReadLimits,
    SubmissionRejected,
    read_submission,
    read_submission_bytes,
)
from pipelines.cli import add_check_arguments
from tests import submission_samples as samples

KEYNA_LINE = (
    "sheet metadata, row 2, column country_code: 'Keyna' is not an ISO country code "
    "— did you mean KE (Kenya)?"
)


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings()


@pytest.fixture(scope="module")
def codelists(settings: Settings) -> Codelists:
    assert settings.codelists_dir is not None
    return load_codelists(settings.codelists_dir)


def _check(path: Path, settings: Settings, codelists: Codelists | None) -> CheckedSubmission:
    return check_submission(read_submission(path), settings, codelists, set(samples.DEMO_IATI_IDS))


def _error_rules(checked: CheckedSubmission) -> dict[tuple[str, int], set[str]]:
    found: dict[tuple[str, int], set[str]] = {}
    for problem in checked.errors:
        assert problem.sheet is not None, problem
        assert problem.row is not None, problem
        found.setdefault((problem.sheet, problem.row), set()).add(problem.rule)
    return found


@pytest.mark.parametrize("name", list(samples.SAMPLES))
def test_sample_outcomes(
    name: str, tmp_path: Path, settings: Settings, codelists: Codelists
) -> None:
    expected: dict[str, Any] = samples.EXPECTED[name]
    checked = _check(samples.SAMPLES[name](tmp_path), settings, codelists)
    text = format_problems(checked)

    assert checked.type_name == expected["type"]
    assert checked.format == expected["format"]
    for key, value in expected["metadata"].items():
        assert checked.metadata[key] == value, key
    assert checked.row_counts() == expected["rows"], text
    assert _error_rules(checked) == expected["errors"], text
    assert expected["warnings"] <= {p.rule for p in checked.warnings}, text
    assert len(checked.normalisations) == expected["normalisations"], text
    assert all(p.severity == "warning" for p in checked.normalisations)
    for message in expected["messages"]:
        assert message in text
    # frames: the model's columns plus _row and _valid; invalid rows are the error rows
    kind = submission_type(expected["type"])
    for sheet in kind.sheets:
        frame = checked.frames[sheet.name]
        assert list(frame.columns) == [c.name for c in sheet.columns] + ["_row", "_valid"]
        invalid = {int(r) for r in frame.loc[~frame["_valid"].astype(bool), "_row"]}
        assert invalid == {row for (s, row) in expected["errors"] if s == sheet.name}


def test_keyna_message_and_typed_values(
    tmp_path: Path, settings: Settings, codelists: Codelists
) -> None:
    checked = _check(samples.messy_country_report_kenya(tmp_path), settings, codelists)
    assert KEYNA_LINE in [line.strip() for line in format_problems(checked).splitlines()]
    keyna = next(p for p in checked.errors if p.rule == "invalid_country")
    assert (keyna.sheet, keyna.row, keyna.column, keyna.value) == (
        "metadata",
        2,
        "country_code",
        "Keyna",
    )
    assert keyna.fix == "write KE"
    results = checked.frames["results"].set_index("_row")
    assert results.loc[2, "target_value"] == 12000.0
    assert results.loc[2, "from_country_framework"] is True
    assert results.loc[3, "period_start"] == dt.date(2025, 1, 1)
    assert results.loc[3, "level"] == "institutional"
    assert results.loc[5, "period_start"] is None
    assert results.loc[6, "indicator_title"] == "Farmers reached"
    priorities = checked.frames["cd_priorities"].set_index("_row")
    assert priorities.loc[3, "title"].startswith("=HYPERLINK(")  # kept as text
    assert priorities.loc[4, "sector_code"] == "31120"
    assert checked.frames["metadata"].loc[0, "reporting_period"] == "2025"


def test_clean_partner_iati_id_found_or_flagged(
    tmp_path: Path, settings: Settings, codelists: Codelists
) -> None:
    raw = read_submission(samples.clean_partner_submission(tmp_path))
    found = check_submission(raw, settings, codelists, set(samples.DEMO_IATI_IDS))
    assert not found.problems
    missing = check_submission(raw, settings, codelists, {"XM-DEMO-1001-KE-ROAD-02"})
    (problem,) = missing.problems
    assert problem.rule == "not_in_iati"
    assert "not (yet) in the IATI data" in problem.message
    activities = found.frames["activities"].set_index("activity_id")
    assert activities.loc["KE-TVET-02", "priority_ids"] == "KP1;KP3"
    assert activities.loc[samples.DEMO_IATI_ID, "budget"] == 2500000.0


def test_csv_folder_reads_like_the_zip(
    tmp_path: Path, settings: Settings, codelists: Codelists
) -> None:
    archive = samples.partner_csv_zip(tmp_path)
    folder = tmp_path / "folder"
    folder.mkdir()
    with zipfile.ZipFile(archive) as opened:
        for info in opened.infolist():
            (folder / Path(info.filename).name).write_bytes(opened.read(info))
    from_zip = _check(archive, settings, codelists)
    from_folder = _check(folder, settings, codelists)
    assert from_folder.format == "csv_folder"
    assert from_folder.row_counts() == from_zip.row_counts()
    assert [p.describe() for p in from_folder.problems] == [p.describe() for p in from_zip.problems]
    assert read_submission(folder).sha256 == read_submission(folder).sha256
    assert len(from_folder.sha256) == 64


@pytest.mark.parametrize("name", list(samples.HOSTILE))
def test_hostile_files_rejected(name: str, tmp_path: Path) -> None:
    expected = samples.EXPECTED[name]
    path = samples.HOSTILE[name](tmp_path)
    with pytest.raises(SubmissionRejected) as caught:
        read_submission(path, limits=ReadLimits(max_rows=50))
    assert caught.value.rule == expected["rejected"]
    assert expected["message"] in caught.value.message
    assert not (tmp_path / "etc").exists()


def test_more_hostile_bytes() -> None:
    encrypted = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + "EncryptionInfo".encode("utf-16-le")
    with pytest.raises(SubmissionRejected, match="password-protected") as caught:
        read_submission_bytes(encrypted, "secret.xlsx")
    assert caught.value.rule == "encrypted"
    with pytest.raises(SubmissionRejected) as caught:
        read_submission_bytes(b"a,b\n1,2\n", "one.csv")
    assert caught.value.rule == "single_csv"
    with pytest.raises(SubmissionRejected) as caught:
        read_submission_bytes(b"x" * 100, "big.json", limits=ReadLimits(max_file_bytes=10))
    assert caught.value.rule == "too_large"
    with pytest.raises(SubmissionRejected) as caught:
        read_submission_bytes(b'{"metadata": [1, 2]}', "bad.json")
    assert caught.value.rule == "bad_json"


def _json_check(
    document: dict[str, Any], settings: Settings, codelists: Codelists | None
) -> CheckedSubmission:
    raw = read_submission_bytes(json.dumps(document).encode(), "x.json")
    return check_submission(raw, settings, codelists)


def test_type_undecidable(settings: Settings) -> None:
    checked = _json_check({"sheet1": [{"a": 1}]}, settings, None)
    assert checked.type_name is None
    (problem,) = checked.errors
    assert problem.rule == "unknown_type"
    assert 'the "metadata" object needs a "country_code" field' in problem.message
    assert '"partner_org_ref" field' in problem.message


def test_fuzzy_header_missing_column_and_value_readings(
    settings: Settings, codelists: Codelists
) -> None:
    checked = _json_check(
        {
            "metadata": {"Contry code": "ke", "reporting_period": "2025", "submitted_by": "A"},
            "cd_priorities": [
                {"priority_id": "P1", "title": "A", "start_year": "2,024", "end_year": 2026},
                {"priority_id": "P2", "title": "B", "sector_code": "15112"},
            ],
            "results": [
                {
                    "indicator_id": "I1",
                    "priority_id": "P1",
                    "level": "ouput",
                    "indicator_title": "T",
                    "baseline_value": "1 234,5",
                    "period_start": "25/04/2025",
                    "period_end": "2025/12/31",
                    "government_data_source": "maybe",
                    "target_value": "1,5",
                },
                {
                    "indicator_id": "I2",
                    "priority_id": "P1",
                    "level": "output",
                    "indicator_title": "U",
                    "target_value": "12.000,75",
                    "period_start": 45658,
                },
            ],
        },
        settings,
        codelists,
    )
    text = format_problems(checked)
    assert checked.type_name == "country_report"
    assert "metadata.country_code: field `Contry code` looks like `country_code`" in text
    assert checked.metadata["country_code"] == "KE"
    assert "'2,024' read as 2024" in text
    assert "'15112' is not a DAC 5-digit sector code — did you mean 15111" in text
    assert "'ouput' is not one of the allowed values" in text
    assert "did you mean output?" in text
    assert "'25/04/2025' is not written YYYY-MM-DD — did you mean 2025-04-25?" in text
    assert "'maybe' is not yes or no" in text
    results = checked.frames["results"].set_index("_row")
    assert results.loc[1, "baseline_value"] == 1234.5
    assert results.loc[1, "target_value"] == 1.5
    assert results.loc[1, "period_end"] == dt.date(2025, 12, 31)
    assert results.loc[2, "target_value"] == 12000.75
    assert results.loc[2, "period_start"] == dt.date(2025, 1, 1)
    assert {(p.sheet, p.row, p.rule) for p in checked.errors} == {
        ("cd_priorities", 2, "invalid_sector"),
        ("results", 1, "invalid_code"),
        ("results", 1, "date_format"),
        ("results", 1, "type"),
    }


def test_missing_required_column_and_sheet(settings: Settings) -> None:
    checked = _json_check(
        {
            "metadata": {
                "partner_org_ref": "XM-DEMO-9001",
                "reporting_period": "2025",
                "submitted_by": "A",
            },
            "activities": [{"activity_id": "A1", "country_code": "GH"}],
        },
        settings,
        None,
    )
    rules = {(p.sheet, p.rule, p.severity) for p in checked.problems}
    assert ("activities", "missing_column", "error") in rules  # title is required
    assert ("declarations", "missing_sheet", "warning") in rules
    assert checked.row_counts()["activities"] == (1, 1)
    assert checked.row_counts()["results"] == (0, 0)


# --- command line ---------------------------------------------------------------------


def _args(path: Path, ids_file: Path) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_check_arguments(parser)
    return parser.parse_args([str(path), "--iati-ids", str(ids_file)])


@pytest.fixture
def ids_file(tmp_path: Path) -> Path:
    path = tmp_path / "ids.txt"
    path.write_text("\n".join(sorted(samples.DEMO_IATI_IDS)) + "\n", encoding="utf-8")
    return path


def test_check_main_clean(
    tmp_path: Path, ids_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = samples.clean_country_report_ghana(tmp_path)
    assert check_main(_args(path, ids_file)) == EXIT_OK
    out = capsys.readouterr().out
    assert out.strip() == (
        "ghana-country-report-2025.xlsx: country_report; metadata 1 row, cd_priorities 3 rows, "
        "results 6 rows; 0 errors, 0 warnings"
    )


def test_check_main_errors(
    tmp_path: Path, ids_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = samples.messy_country_report_kenya(tmp_path)
    assert check_main(_args(path, ids_file)) == EXIT_ERRORS
    out = capsys.readouterr().out
    assert KEYNA_LINE in out
    assert out.splitlines()[-1].startswith("Kenya report FINAL (2).xlsx: country_report; ")
    assert "results 5 rows (2 with errors); 5 errors," in out


def test_check_main_rejected(
    tmp_path: Path, ids_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check_main(_args(samples.pdf_renamed(tmp_path), ids_file)) == EXIT_REJECTED
    err = capsys.readouterr().err
    assert "report.xlsx: rejected (unknown_format): a PDF file, not a submission" in err
    assert check_main(_args(tmp_path / "nothing.xlsx", ids_file)) == EXIT_REJECTED
    assert "nothing.xlsx: no such file or folder" in capsys.readouterr().err


def test_real_formulas_are_noted(tmp_path: Path, settings: Settings) -> None:
    path = samples.clean_country_report_ghana(tmp_path)
    workbook = openpyxl.load_workbook(path)
    workbook["results"]["G2"] = "=1+1"  # a formula never calculated: reads as empty
    workbook.save(path)
    checked = check_submission(read_submission(path), settings, None)
    (formula,) = [p for p in checked.problems if p.rule == "formula"]
    assert (formula.sheet, formula.row, formula.column) == ("results", 2, "baseline_value")
    assert formula.message.startswith("cell G2 holds a formula; it was never calculated")
    assert checked.frames["results"].loc[0, "baseline_value"] is None
