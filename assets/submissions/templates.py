"""Submission templates (XLSX workbooks and CSV folders) generated from the model.

Everything a template says about sheets and columns comes from
:mod:`assets.submissions.model` (and through it from ``schema/``); nothing is
restated here. ``cdcompact templates --out DIR`` writes them; the committed copy
in ``templates/`` is regenerated with ``make templates``.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.cell.cell import Cell
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from assets.harmonise.schema import schema_version
from assets.iati.codelists import CodelistError, Codelists, load_codelists
from assets.settings import ConfigError, Settings, load_settings
from assets.submissions import model
from assets.submissions.examples import json_example_text
from assets.submissions.model import Column, Sheet, SubmissionType
from assets.submissions.read import (
    TEMPLATE_DESCRIPTOR,
    TEMPLATE_LISTS_SHEET,
    TEMPLATE_README_SHEET,
)

#: Fixed workbook timestamps, so regenerating a template gives the same content.
FIXED_TIME = dt.datetime(2025, 1, 1, 0, 0, 0)
AUTHOR = "cdcompact"
#: Rows of a data sheet that get drop-downs and date formats (a metadata sheet: row 2 only).
MAX_ROWS = 5000
#: Excel's limit on the text of an inline drop-down list.
INLINE_LIST_LIMIT = 255
LISTS_SHEET = TEMPLATE_LISTS_SHEET
README_SHEET = TEMPLATE_README_SHEET
YES_NO_CODES = ("yes", "no")
DATE_FORMAT = "yyyy-mm-dd"

REQUIRED_FILL = PatternFill("solid", start_color="FFF4B183", end_color="FFF4B183")
OPTIONAL_FILL = PatternFill("solid", start_color="FFD9E1F2", end_color="FFD9E1F2")

#: Currencies offered when no Currency codelist is loaded.
DEFAULT_CURRENCIES: tuple[tuple[str, str], ...] = (
    ("USD", "US Dollar"),
    ("EUR", "Euro"),
    ("GBP", "Pound Sterling"),
    ("XDR", "SDR (Special Drawing Right)"),
    ("JPY", "Yen"),
    ("CHF", "Swiss Franc"),
    ("CAD", "Canadian Dollar"),
    ("AUD", "Australian Dollar"),
    ("SEK", "Swedish Krona"),
    ("NOK", "Norwegian Krone"),
    ("DKK", "Danish Krone"),
    ("KRW", "Won"),
    ("CNY", "Yuan Renminbi"),
)

_DAC5 = re.compile(r"^\d{5}$")


@dataclass(frozen=True)
class TemplateChoices:
    """The codes offered in drop-downs of codelist columns, as (code, name) pairs."""

    countries: list[tuple[str, str]]
    sectors: list[tuple[str, str]]
    currencies: list[tuple[str, str]]

    def for_codelist(self, codelist: str) -> list[tuple[str, str]] | None:
        return {
            "Country": self.countries,
            "Sector": self.sectors,
            "Currency": self.currencies,
        }.get(codelist)


def choices_from(settings: Settings, codelists: Codelists | None) -> TemplateChoices:
    """Countries of the compact, DAC sectors and currencies, named from the codelists."""

    def named(codelist: str, codes: Iterable[str]) -> list[tuple[str, str]]:
        return [
            (code, (codelists.name(codelist, code) if codelists else None) or "") for code in codes
        ]

    countries = named("Country", settings.countries)
    if codelists is not None and codelists.has("Sector"):
        sector_codes = sorted(c for c in codelists.codes("Sector") if _DAC5.match(c))
    else:
        sector_codes = sorted(settings.cd_rules.cd_sectors)
    sectors = named("Sector", sector_codes)
    if codelists is not None and codelists.has("Currency"):
        currencies = named("Currency", sorted(codelists.codes("Currency")))
    else:
        currencies = list(DEFAULT_CURRENCIES)
    return TemplateChoices(countries=countries, sectors=sectors, currencies=currencies)


# --------------------------------------------------------------------------- XLSX


def _comment_text(column: Column, choices: TemplateChoices) -> str:
    lines = [column.description]
    if column.required:
        lines.append("(required)")
    if column.enum:
        lines.append("Codes: " + ", ".join(column.enum) + ".")
    elif column.type == "boolean":
        lines.append("Choose yes or no; leave empty when unknown.")
    elif column.codelist:
        lines.append(f"Codes from the {column.codelist} list (drop-down).")
    if column.type == "date":
        lines.append("A date (YYYY-MM-DD).")
    elif column.type == "integer":
        lines.append("A whole number.")
    elif column.type == "number":
        lines.append("A number.")
    return "\n".join(lines)


def _width(column: Column) -> float:
    base = len(column.name) + 4
    if column.type == "string" and not column.enum and not column.codelist:
        base = max(base, 24)
    return float(min(max(base, 14), 45))


def _text(sheet: Worksheet, coordinate: str, value: str | None) -> Cell:
    """Write ``value`` as text, never as a formula.

    openpyxl stores any string starting with ``=`` as a formula. Codes and names come
    from codelist files this project does not control, so a name such as
    ``=HYPERLINK(...)`` must reach the submitter as the text it is.
    """
    cell = sheet[coordinate]
    cell.value = value
    if isinstance(value, str) and cell.data_type == "f":
        cell.data_type = "s"
    return cell


class _Lists:
    """The hidden ``lists`` sheet: one block of (code, name) columns per long list."""

    def __init__(self, workbook: Workbook) -> None:
        self.workbook = workbook
        self.sheet: Worksheet | None = None
        self.ranges: dict[str, str] = {}

    def range_for(self, name: str, items: Sequence[tuple[str, str]]) -> str:
        if name in self.ranges:
            return self.ranges[name]
        if self.sheet is None:
            self.sheet = self.workbook.create_sheet(LISTS_SHEET)
            self.sheet.sheet_state = "hidden"
        sheet = self.sheet
        first = 2 * len(self.ranges) + 1
        code_col, name_col = get_column_letter(first), get_column_letter(first + 1)
        _text(sheet, f"{code_col}1", name).font = Font(bold=True)
        _text(sheet, f"{name_col}1", f"{name} name").font = Font(bold=True)
        for row, (code, label) in enumerate(items, start=2):
            _text(sheet, f"{code_col}{row}", code)
            _text(sheet, f"{name_col}{row}", label or None)
        sheet.column_dimensions[code_col].width = 14
        sheet.column_dimensions[name_col].width = 40
        last = max(len(items) + 1, 2)
        ref = f"{quote_sheetname(LISTS_SHEET)}!${code_col}$2:${code_col}${last}"
        self.ranges[name] = ref
        return ref


def _list_formula(name: str, codes: Sequence[tuple[str, str]], lists: _Lists) -> str:
    inline = ",".join(code for code, _ in codes)
    # An inline list cannot hold a comma or a double quote: such codes go to the lists sheet.
    plain = all("," not in c and '"' not in c for c, _ in codes)
    if len(inline) + 2 <= INLINE_LIST_LIMIT and plain:
        return f'"{inline}"'
    return lists.range_for(name, codes)


def _validation_for(
    column: Column, choices: TemplateChoices, lists: _Lists
) -> DataValidation | None:
    if column.enum:
        formula = _list_formula(column.name, [(c, "") for c in column.enum], lists)
        return DataValidation(
            type="list",
            formula1=formula,
            allow_blank=True,
            showErrorMessage=True,
            errorStyle="stop",
            errorTitle="Not a known code",
            error=f"Choose one of the codes of {column.name} from the list.",
            promptTitle=column.name,
            prompt="Choose from the list.",
        )
    if column.type == "boolean":
        return DataValidation(
            type="list",
            formula1='"' + ",".join(YES_NO_CODES) + '"',
            allow_blank=True,
            showErrorMessage=True,
            errorStyle="stop",
            errorTitle="Yes or no",
            error="Choose yes or no (leave empty when unknown).",
        )
    if column.codelist:
        items = choices.for_codelist(column.codelist)
        if not items:
            return None
        # Countries are the compact's: nothing else is accepted. Sectors and currencies
        # may be codes the list does not offer, so a typed code only gets a warning.
        strict = column.codelist == "Country"
        return DataValidation(
            type="list",
            formula1=lists.range_for(column.codelist, items),
            allow_blank=True,
            showErrorMessage=True,
            errorStyle="stop" if strict else "warning",
            errorTitle="Not a known code",
            error=f"Choose a {column.codelist} code from the list.",
        )
    if column.type == "date":
        return DataValidation(
            type="date",
            operator="greaterThan",
            formula1="1",
            allow_blank=True,
            showErrorMessage=True,
            errorStyle="warning",
            errorTitle="Not a date",
            error="Enter a date (YYYY-MM-DD).",
        )
    return None


def _readme_lines(kind: SubmissionType) -> list[tuple[str, bool]]:
    """(text, is_heading) lines of the README sheet."""
    who = (
        "the country's CD Compact focal point (government)"
        if kind.name == "country_report"
        else "the development partner's CD Compact focal point"
    )
    lines: list[tuple[str, bool]] = [
        (f"{kind.title} — template", True),
        (kind.description, False),
        (f"Who fills it: {who}.", False),
        ("", False),
        ("Sheets", True),
    ]
    for sheet in kind.sheets:
        note = " Fill exactly one row." if sheet.single_row else ""
        if sheet.key:
            note += f" Each row is identified by {', '.join(sheet.key)}."
        lines.append((f"{sheet.name} — {sheet.title}: {sheet.description}{note}", False))
    lines += [
        ("", False),
        ("How to fill", True),
        (
            "Fill each sheet from row 2 down; do not rename, reorder or delete the header row. "
            "Hover over a header cell to read what the column means. Orange headers are "
            "required columns (their comment says '(required)'); blue ones are optional.",
            False,
        ),
        (
            "Coded columns (level, modality, country, sector, currency, ...) have a drop-down "
            "list: choose the code from it rather than typing a name.",
            False,
        ),
        (
            "Yes/no columns: choose yes or no from the drop-down; leave the cell empty when "
            "unknown (yes/no, y/n, true/false, 1/0 are all understood).",
            False,
        ),
        (
            "Dates are YYYY-MM-DD; years are four digits; amounts are plain numbers without "
            "currency signs or thousands separators. Lists inside one cell are separated by ';'.",
            False,
        ),
        ("", False),
        ("Before sending", True),
        (
            f"Check the file with:  cdcompact check FILE  (for example cdcompact check "
            f"{kind.name}.xlsx). It lists every problem with its sheet, row and column; "
            "fix them and check again before sending.",
            False,
        ),
        ("", False),
        (f"CD results schema version: {schema_version()}", False),
        (
            "This template is generated from the submission model by cdcompact templates; "
            "do not change its sheets or columns.",
            False,
        ),
    ]
    return lines


def _write_readme(sheet: Worksheet, kind: SubmissionType) -> None:
    sheet.column_dimensions["A"].width = 110
    for row, (text, heading) in enumerate(_readme_lines(kind), start=1):
        cell = _text(sheet, f"A{row}", text or None)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        if heading:
            cell.font = Font(bold=True, size=14 if row == 1 else 12)


def _write_sheet(sheet: Worksheet, spec: Sheet, choices: TemplateChoices, lists: _Lists) -> None:
    last_row = 2 if spec.single_row else MAX_ROWS
    sheet.freeze_panes = "A2"
    for index, column in enumerate(spec.columns, start=1):
        letter = get_column_letter(index)
        cell = _text(sheet, f"{letter}1", column.name)
        cell.font = Font(bold=True)
        cell.fill = REQUIRED_FILL if column.required else OPTIONAL_FILL
        comment = Comment(_comment_text(column, choices), AUTHOR)
        comment.width = 320
        comment.height = 160
        cell.comment = comment
        dimension = sheet.column_dimensions[letter]
        dimension.width = _width(column)
        if column.type == "date":
            # The column's default style: Excel applies it to every cell typed in.
            dimension.number_format = DATE_FORMAT
        validation = _validation_for(column, choices, lists)
        if validation is not None:
            validation.add(f"{letter}2" if spec.single_row else f"{letter}2:{letter}{last_row}")
            sheet.add_data_validation(validation)


def write_xlsx_template(kind: SubmissionType, path: Path, choices: TemplateChoices) -> None:
    """One workbook: README, one sheet per model sheet, and a hidden ``lists`` sheet."""
    workbook = Workbook()
    readme = workbook.active
    assert readme is not None
    readme.title = README_SHEET
    _write_readme(readme, kind)
    sheets = [(workbook.create_sheet(spec.name), spec) for spec in kind.sheets]
    lists = _Lists(workbook)
    for sheet, spec in sheets:
        _write_sheet(sheet, spec, choices, lists)
    props = workbook.properties
    props.creator = AUTHOR
    props.lastModifiedBy = AUTHOR
    props.title = f"{kind.title} template"
    props.created = FIXED_TIME
    props.modified = FIXED_TIME
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook.save(path)
    # openpyxl stamps "modified" with the current time on save; a second save of the
    # reloaded workbook cannot avoid it either, so content comparisons ignore it.


def workbook_content(path: Path) -> dict[str, Any]:
    """What a submitter sees in a workbook (sheets, cells, comments, drop-downs, formats),
    for comparing two generations by content rather than bytes."""
    workbook = load_workbook(path)
    sheets: list[dict[str, Any]] = []
    for sheet in workbook.worksheets:
        cells = [
            [cell.value for cell in row]
            for row in sheet.iter_rows(min_row=1, max_row=sheet.max_row)
        ]
        comments = {
            cell.coordinate: (cell.comment.text, cell.comment.author)
            for row in sheet.iter_rows(min_row=1, max_row=1)
            for cell in row
            if cell.comment is not None
        }
        validations = sorted(
            (
                str(v.sqref),
                v.type,
                v.formula1,
                v.errorStyle,
                bool(v.allow_blank),
            )
            for v in sheet.data_validations.dataValidation
        )
        headers_style = [
            (bool(cell.font.bold), cell.fill.fgColor.rgb if cell.fill else None)
            for cell in sheet[1]
        ]
        sheets.append(
            {
                "name": sheet.title,
                "state": sheet.sheet_state,
                "freeze": sheet.freeze_panes,
                "cells": cells,
                "comments": comments,
                "validations": validations,
                "header_style": headers_style,
                "formats": {
                    key: dim.number_format
                    for key, dim in sorted(sheet.column_dimensions.items())
                    if dim.number_format != "General"
                },
            }
        )
    return {"creator": workbook.properties.creator, "sheets": sheets}


# --------------------------------------------------------------------------- CSV


def _field(column: Column) -> dict[str, Any]:
    field: dict[str, Any] = {
        "name": column.name,
        "type": column.type,
        "description": column.description,
    }
    constraints: dict[str, Any] = {}
    if column.required:
        constraints["required"] = True
    if column.enum:
        constraints["enum"] = list(column.enum)
    if constraints:
        field["constraints"] = constraints
    if column.type == "boolean":
        field["trueValues"] = ["yes", "Yes", "YES", "y", "Y", "true", "True", "TRUE", "1"]
        field["falseValues"] = ["no", "No", "NO", "n", "N", "false", "False", "FALSE", "0"]
    return field


def datapackage_descriptor(kind: SubmissionType) -> dict[str, Any]:
    """The Frictionless Data Package of a CSV submission, built from the model."""
    return {
        "name": kind.name.replace("_", "-"),
        "title": f"{kind.title} (CSV template)",
        "description": kind.description,
        "version": schema_version(),
        "resources": [
            {
                "name": sheet.name.replace("_", "-"),
                "title": sheet.title,
                "description": sheet.description,
                "path": f"{sheet.name}.csv",
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
                "schema": {"fields": [_field(column) for column in sheet.columns]},
            }
            for sheet in kind.sheets
        ],
    }


def write_csv_template(kind: SubmissionType, folder: Path) -> None:
    """A folder of header-only CSV files (one per sheet) and their ``datapackage.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {f"{sheet.name}.csv" for sheet in kind.sheets}
    for stale in folder.glob("*.csv"):
        if stale.name not in wanted:
            stale.unlink()
    for sheet in kind.sheets:
        with (folder / f"{sheet.name}.csv").open("w", encoding="utf-8", newline="") as handle:
            csv.writer(handle, lineterminator="\r\n").writerow(c.name for c in sheet.columns)
    descriptor = datapackage_descriptor(kind)
    (folder / TEMPLATE_DESCRIPTOR).write_text(
        json.dumps(descriptor, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )


# --------------------------------------------------------------------------- all


def _readme_md(kinds: Sequence[SubmissionType]) -> str:
    lines = [
        "# Submission templates",
        "",
        "Generated by `cdcompact templates --out templates` (`make templates`) from the",
        "submission model (`assets/submissions/model.py`) and the CD results schema",
        f"(`schema/`, version {schema_version()}). They **must not be edited by hand**:",
        "change the model or the schema and regenerate; a test fails when they are stale.",
        "",
    ]
    for kind in kinds:
        lines += [
            f"## {kind.title} (`{kind.name}`)",
            "",
            kind.description,
            "",
            f"- `{kind.name}.xlsx`: Excel workbook with a README sheet, one sheet per "
            "table below, column descriptions as header comments, required columns in "
            "orange and drop-down lists for coded columns.",
            f"- `{kind.name}/`: the same as header-only CSV files (UTF-8) with a "
            "Frictionless `datapackage.json` describing every column (keep it in a filled "
            "copy of the folder or leave it out: it is not read as data).",
            f"- `{kind.name}.json`: a complete example of the same submission in JSON, "
            "every column filled (see *JSON submissions* below).",
            "",
            "| sheet / file | contents | columns |",
            "|---|---|---|",
        ]
        for sheet in kind.sheets:
            columns = ", ".join(
                f"`{c.name}`" + (" (required)" if c.required else "") for c in sheet.columns
            )
            lines.append(f"| `{sheet.name}` | {sheet.description} | {columns} |")
        lines.append("")
    lines += [
        "## JSON submissions",
        "",
        "A submission can also be sent as one JSON file (UTF-8): an object with one member",
        "per sheet above, named as the sheet. `metadata` is one object; every other sheet is",
        "an array of objects, one per row, whose fields are the sheet's columns (same names,",
        "same meaning). JSON types are used as they are: numbers are JSON numbers",
        '(`62.5`, not `"62.5%"`), yes/no columns are `true` or `false`, dates are strings',
        '`"YYYY-MM-DD"`, codes are strings (`"15111"`); a field left out or `null` is',
        "empty. An optional sheet may be left out (`cdcompact check` then warns that no",
        "rows of that kind were read). Problems are reported with the place in the JSON:",
        "`results[0].actual_value` is the field `actual_value` of the first object of the",
        "`results` array.",
        "",
        "The examples `country_report.json` and `partner_submission.json` fill every field",
        "and pass `cdcompact check` with no error and no warning; start from the one of your",
        "kind.",
        "",
        "Check a filled submission before sending it: `cdcompact check FILE`.",
        "",
    ]
    return "\n".join(lines)


def _inside(out: Path, path: Path) -> Path:
    resolved = path.resolve()
    if not resolved.is_relative_to(out.resolve()):
        raise ValueError(f"refusing to write {path} outside {out}")
    return path


def write_templates(out: Path, settings: Settings, codelists: Codelists | None) -> list[Path]:
    """Write both workbooks, both CSV folders and README.md into ``out``; the paths written."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    choices = choices_from(settings, codelists)
    kinds = model.submission_types()
    written: list[Path] = []
    for kind in kinds:
        xlsx = _inside(out, out / f"{kind.name}.xlsx")
        write_xlsx_template(kind, xlsx, choices)
        written.append(xlsx)
        folder = _inside(out, out / kind.name)
        write_csv_template(kind, folder)
        written += [folder / f"{sheet.name}.csv" for sheet in kind.sheets]
        written.append(folder / TEMPLATE_DESCRIPTOR)
        example = _inside(out, out / f"{kind.name}.json")
        example.write_text(json_example_text(kind), encoding="utf-8")
        written.append(example)
    readme = _inside(out, out / "README.md")
    readme.write_text(_readme_md(kinds), encoding="utf-8")
    written.append(readme)
    return written


def templates_main(args: argparse.Namespace) -> int:
    """``cdcompact templates --out DIR``: 0 when written, 2 on bad arguments."""
    out = getattr(args, "out", None)
    if out is None:
        print("cdcompact templates: --out DIR is required")
        return 2
    try:
        settings = load_settings(getattr(args, "config", None))
        codelists = load_codelists(settings.codelists_dir) if settings.codelists_dir else None
    except (ConfigError, CodelistError) as exc:
        print(f"cdcompact templates: {exc}")
        return 2
    try:
        written = write_templates(Path(out), settings, codelists)
    except (ValueError, OSError) as exc:
        print(f"cdcompact templates: {exc}")
        return 2
    for path in written:
        print(path)
    return 0
