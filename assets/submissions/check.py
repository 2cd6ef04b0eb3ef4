"""Checking a submission as a careful human reviewer would: ``cdcompact check`` and the pipeline.

The sheets and columns come from :mod:`assets.submissions.model` (the one definition).
The checker is tolerant where a person would be (header spelling, yes/no words, thousands
separators, Excel dates, stray blanks) but records every such reading as a warning
(rule ``normalised_<what>``), and it says what is wrong in plain language, with a
suggestion where one can be made ("did you mean KE (Kenya)?").
"""

from __future__ import annotations

import argparse
import datetime as dt
import difflib
import math
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from openpyxl.utils.cell import (
    column_index_from_string,
    coordinate_from_string,
    range_boundaries,
)

from assets.iati.codelists import CodelistError, Codelists, load_codelists
from assets.settings import ConfigError, Settings, load_settings
from assets.submissions.model import Column, Sheet, SubmissionType, submission_types
from assets.submissions.read import (
    TEMPLATE_LISTS_SHEET,
    TEMPLATE_README_SHEET,
    RawSheet,
    RawSubmission,
    SubmissionRejected,
    read_submission,
)

ERROR, WARNING = "error", "warning"
#: Exit codes of ``cdcompact check``.
EXIT_OK, EXIT_ERRORS, EXIT_REJECTED = 0, 1, 2

TRUE_WORDS = frozenset({"yes", "y", "true", "t", "1", "oui", "o", "si", "sí", "ja", "x"})
FALSE_WORDS = frozenset({"no", "n", "false", "f", "0", "non", "nein", "nee"})
#: Boolean spellings the templates use; only other spellings are recorded as normalised.
CANONICAL_BOOLEANS = frozenset({"yes", "no"})
#: Sheets a submission of each type cannot do without (the others may be left out).
REQUIRED_SHEETS = {
    "country_report": ("metadata", "cd_priorities"),
    "partner_submission": ("metadata", "activities"),
}
#: Sheets that hold one row (in JSON: one object, ``"metadata": {...}``).
SINGLE_OBJECT = frozenset(
    sheet.name for kind in submission_types() for sheet in kind.sheets if sheet.single_row
)
#: Formula cells reported one by one on a sheet; the rest are counted.
MAX_FORMULA_CELLS = 10
#: 5-digit purpose codes shown as examples of a DAC 3-digit sector category.
CATEGORY_EXAMPLES = 4
#: Excel serial day numbers accepted as dates (1954-10-03 .. 2119-01-01).
EXCEL_SERIAL_RANGE = (20_000, 80_000)
EXCEL_EPOCH = dt.date(1899, 12, 30)
YEAR_RANGE = (1950, 2100)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_COMMA_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_SPACE_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:[ \u00a0\u202f']\d{3})+(?:[.,]\d+)?")
_DOT_THOUSANDS_COMMA_DECIMAL = re.compile(r"[+-]?\d{1,3}(?:\.\d{3})+,\d+")
_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d{1,2}|[+-]?\d+,\d{4,}")
_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ]00:00(?::00(?:\.0+)?)?)?")
_ISO_SLASH_DATE = re.compile(r"(\d{4})[/.](\d{1,2})[/.](\d{1,2})")
_DMY_DATE = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})")
_COUNTRY = re.compile(r"[A-Z]{2}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_SECTOR = re.compile(r"\d{5}")
_SECTOR_CATEGORY = re.compile(r"\d{3}")
_ORG_REF = re.compile(r"[A-Z]{2}-[A-Za-z0-9]+(?:-[A-Za-z0-9._-]+)?")


@dataclass(frozen=True)
class Problem:
    """One finding: where (sheet, submitter's row, column), which rule, how bad, and why."""

    sheet: str | None
    row: int | None
    column: str | None
    rule: str
    severity: str  # error | warning
    value: Any
    message: str
    fix: str | None = None

    def describe(self, json: bool = False) -> str:
        """``sheet results, row 12, column country_code: <message>``; in a JSON file
        ``results[10].country_code: <message>`` (arrays count from 0)."""
        if json:
            return f"{self.json_path()}: {self.message}" if self.sheet else self.message
        where = []
        if self.sheet:
            where.append(f"sheet {self.sheet}")
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column:
            where.append(f"column {self.column}")
        return f"{', '.join(where)}: {self.message}" if where else self.message

    def json_path(self) -> str:
        return json_path(self.sheet or "", self.row, self.column)


def json_path(sheet: str, row: int | None, column: str | None = None) -> str:
    """Where something is in a JSON submission: ``results[10].actual_value``, or
    ``metadata.country_code`` (the metadata is one object)."""
    path = sheet
    if sheet in SINGLE_OBJECT:
        return f"{path}.{column}" if column else path
    if row is not None:
        path += f"[{json_index(row)}]"
        return f"{path}.{column}" if column else path
    return f'{path}, field "{column}"' if column else path


def json_index(row: int) -> int:
    """The index in its array of the object read as ``row`` (objects count from 1)."""
    return row - 1


@dataclass
class CheckedSubmission:
    """A checked submission: typed rows by sheet (model column names) and every problem."""

    name: str
    format: str
    sha256: str
    type_name: str | None
    metadata: dict[str, Any]
    #: Per sheet of the type: the model's columns, then ``_row`` and ``_valid``.
    frames: dict[str, pd.DataFrame]
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == WARNING]

    @property
    def normalisations(self) -> list[Problem]:
        return [p for p in self.problems if p.rule.startswith("normalised_")]

    @property
    def ok(self) -> bool:
        return not self.errors

    def row_counts(self) -> dict[str, tuple[int, int]]:
        """Per sheet: (rows read, rows with errors)."""
        return {
            name: (len(frame), int((~frame["_valid"].astype(bool)).sum()))
            for name, frame in self.frames.items()
        }


def format_problems(checked: CheckedSubmission) -> str:
    """Every problem as a plain-language line (errors, then warnings, in file order):
    ``sheet results, row 12, column country_code: 'Keyna' is not an ISO country code — did
    you mean KE (Kenya)?``."""
    blocks = []
    json = checked.format == "json"
    for severity, title in ((ERROR, "Errors"), (WARNING, "Warnings")):
        lines = [p.describe(json) for p in checked.problems if p.severity == severity]
        if lines:
            blocks.append(f"{title} ({len(lines)}):\n" + "\n".join(f"  {line}" for line in lines))
    return "\n".join(blocks)


def summary_line(checked: CheckedSubmission) -> str:
    kind = checked.type_name or "unknown type"
    parts = []
    for name, (rows, bad) in checked.row_counts().items():
        text = f"{name} {rows} row{'s' if rows != 1 else ''}"
        parts.append(f"{text} ({bad} with errors)" if bad else text)
    errors, warnings = len(checked.errors), len(checked.warnings)
    return (
        f"{checked.name}: {kind}; {', '.join(parts) or 'no sheets'}; "
        f"{errors} error{'s' if errors != 1 else ''}, "
        f"{warnings} warning{'s' if warnings != 1 else ''}"
    )


# --- helpers --------------------------------------------------------------------------


def normalise_name(text: str) -> str:
    """``" Country Code "`` -> ``country_code``."""
    return re.sub(r"[^0-9a-z]+", "_", str(text).strip().lower()).strip("_")


def _closest(value: str, candidates: Iterable[str], cutoff: float = 0.6) -> str | None:
    found = difflib.get_close_matches(value, list(candidates), n=1, cutoff=cutoff)
    return found[0] if found else None


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value.strip() if value.strip() else value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return repr(value)


class _Reference:
    """Codes the checker knows: codelists when given, else patterns."""

    def __init__(self, codelists: Codelists | None) -> None:
        self.codelists = codelists

    def codes(self, codelist: str) -> frozenset[str] | None:
        if self.codelists is None or not self.codelists.has(codelist):
            return None
        return self.codelists.codes(codelist)

    def name(self, codelist: str, code: str) -> str | None:
        return None if self.codelists is None else self.codelists.name(codelist, code)

    def names(self, codelist: str) -> dict[str, str]:
        """Lower-cased name -> code."""
        codes = self.codes(codelist) or frozenset()
        found: dict[str, str] = {}
        for code in sorted(codes):
            name = self.name(codelist, code)
            if name:
                found.setdefault(name.strip().lower(), code)
        return found


# --- the checker ----------------------------------------------------------------------


class _Checker:
    def __init__(
        self,
        raw: RawSubmission,
        settings: Settings | None,
        codelists: Codelists | None,
        iati_activity_ids: set[str] | None,
    ) -> None:
        self.raw = raw
        self.settings = settings
        self.reference = _Reference(codelists)
        self.iati_ids = iati_activity_ids
        self.problems: list[Problem] = []
        self.invalid: dict[str, set[int]] = {}
        #: A JSON file has arrays of objects and their fields, not sheets, rows and columns.
        self.json = raw.format == "json"
        self.column_word = "field" if self.json else "column"

    # words: a JSON file is spoken of in JSON's terms

    def the_sheet(self, name: str) -> str:
        """``the sheet `results``` or, in JSON, ``the array "results"``."""
        if self.json:
            return f'the {"object" if name in SINGLE_OBJECT else "array"} "{name}"'
        return f"the `{name}` sheet"

    def place(self, sheet: str, row: int) -> str:
        """``row 12`` or, in JSON, ``results[10]``."""
        return f"{sheet}[{json_index(row)}]" if self.json else f"row {row}"

    # recording

    def add(
        self,
        sheet: str | None,
        row: int | None,
        column: str | None,
        rule: str,
        severity: str,
        value: Any,
        message: str,
        fix: str | None = None,
    ) -> None:
        self.problems.append(Problem(sheet, row, column, rule, severity, value, message, fix))
        if severity == ERROR and sheet is not None and row is not None:
            self.invalid.setdefault(sheet, set()).add(row)

    def normalised(
        self, sheet: str, row: int | None, column: str | None, what: str, value: Any, message: str
    ) -> None:
        self.add(sheet, row, column, f"normalised_{what}", WARNING, value, message)

    # sheets and type

    def match_sheets(self) -> dict[str, RawSheet]:
        """Raw sheets by normalised name (``"CD priorities"`` -> ``cd_priorities``)."""
        return {normalise_name(name): sheet for name, sheet in self.raw.sheets.items()}

    def decide_type(self, sheets: dict[str, RawSheet]) -> SubmissionType | None:
        metadata = self._find_sheet(sheets, "metadata", ("about_this_report", "about"))
        if metadata is not None:
            headers = {normalise_name(h) for h in metadata.header}
            if metadata.header_row == 0 and not metadata.header:
                headers = set()
            is_country = "country_code" in headers
            is_partner = "partner_org_ref" in headers
            if is_country != is_partner:
                return _type("country_report" if is_country else "partner_submission")
            if not is_country:  # try close spellings of the two columns
                country = _closest_any(headers, "country_code")
                partner = _closest_any(headers, "partner_org_ref")
                if bool(country) != bool(partner):
                    return _type("country_report" if country else "partner_submission")
        names = set(sheets)
        if "cd_priorities" in names and not names & {"activities", "declarations"}:
            return _type("country_report")
        if names & {"activities", "declarations"} and "cd_priorities" not in names:
            return _type("partner_submission")
        self.add(
            None,
            None,
            None,
            "unknown_type",
            ERROR,
            None,
            "cannot tell whether this is a country results report or a partner submission: "
            + (
                'the "metadata" object needs a "country_code" field (country report) or a '
                '"partner_org_ref" field (partner submission)'
                if self.json
                else "the metadata sheet needs a `country_code` column (country report) or a "
                "`partner_org_ref` column (partner submission)"
            ),
            "start from the template for your kind of submission",
        )
        return None

    def _find_sheet(
        self, sheets: dict[str, RawSheet], name: str, aliases: Sequence[str] = ()
    ) -> RawSheet | None:
        for candidate in (name, *aliases):
            if candidate in sheets:
                return sheets[candidate]
        return None

    def check(self) -> CheckedSubmission:
        sheets = self.match_sheets()
        kind = self.decide_type(sheets)
        checked = CheckedSubmission(
            name=self.raw.name,
            format=self.raw.format,
            sha256=self.raw.sha256,
            type_name=None if kind is None else kind.name,
            metadata={},
            frames={},
        )
        for note in self.raw.notes:
            self.add(None, None, None, "reader_note", WARNING, None, note)
        if kind is None:
            checked.problems = self.problems
            return checked
        assigned = self.assign_sheets(kind)
        records: dict[str, list[dict[str, Any]]] = {}
        for sheet in kind.sheets:
            raw_sheet = assigned.get(sheet.name)
            if raw_sheet is None:
                required = sheet.name in REQUIRED_SHEETS[kind.name]
                self.add(
                    sheet.name,
                    None,
                    None,
                    "missing_sheet",
                    ERROR if required else WARNING,
                    None,
                    (self.the_sheet(sheet.name) if self.json else f"the sheet `{sheet.name}`")
                    + f" ({sheet.title}) is missing"
                    + ("" if required else "; no rows of this kind were read"),
                    (
                        f"add {'an object' if sheet.single_row else 'an array'} named "
                        f'"{sheet.name}" as in the example templates/{kind.name}.json'
                        if self.json
                        else f"add a sheet named {sheet.name} as in the template"
                    ),
                )
                records[sheet.name] = []
                continue
            records[sheet.name] = self.read_sheet(sheet, raw_sheet)
        self.metadata_rules(kind, records)
        if kind.name == "country_report":
            self.country_rules(records)
        else:
            self.partner_rules(records)
        for sheet in kind.sheets:
            for record in records[sheet.name]:
                record["_valid"] = record["_row"] not in self.invalid.get(sheet.name, set())
            columns = [c.name for c in sheet.columns] + ["_row", "_valid"]
            checked.frames[sheet.name] = pd.DataFrame(
                records[sheet.name], columns=columns, dtype=object
            )
        meta_rows = records.get("metadata") or []
        if meta_rows:
            checked.metadata = {
                k: v for k, v in meta_rows[0].items() if k not in ("_row", "_valid")
            }
        order = {sheet.name: position for position, sheet in enumerate(kind.sheets)}
        checked.problems = sorted(
            self.problems,
            key=lambda p: (
                order.get(p.sheet or "", -1 if p.sheet is None else len(order)),
                p.row if p.row is not None else -1,
            ),
        )
        return checked

    def assign_sheets(self, kind: SubmissionType) -> dict[str, RawSheet]:
        expected = {s.name: s for s in kind.sheets}
        assigned: dict[str, RawSheet] = {}
        unknown: list[str] = []
        for raw_name, raw_sheet in self.raw.sheets.items():
            if self.raw.format == "xlsx" and raw_name in (
                TEMPLATE_README_SHEET,
                TEMPLATE_LISTS_SHEET,
            ):
                continue  # the template's instructions and drop-down lists
            key = normalise_name(raw_name)
            target = None
            if key in expected:
                target = key
            else:
                for sheet in kind.sheets:
                    if key == normalise_name(sheet.title):
                        target = sheet.name
                        break
                if target is None:
                    target = _closest(key, [s for s in expected if s not in assigned], 0.8)
            if target is None or target in assigned:
                unknown.append(raw_name)
                continue
            assigned[target] = raw_sheet
            if raw_name != target:
                self.normalised(
                    target,
                    None,
                    None,
                    "sheet_name",
                    raw_name,
                    (
                        f'array {raw_name!r} read as the array "{target}"'
                        if self.json
                        else f"sheet {raw_name!r} read as the `{target}` sheet"
                    ),
                )
        for raw_name in unknown:
            self.add(
                raw_name,
                None,
                None,
                "unknown_sheet",
                WARNING,
                None,
                f"{'' if self.json else 'the sheet '}{raw_name!r} is not part of a "
                f"{kind.title.lower()}; it was ignored (expected "
                f"{'names' if self.json else 'sheets'}: {', '.join(expected)})",
            )
        return assigned

    # columns

    def match_columns(self, sheet: Sheet, raw_sheet: RawSheet) -> dict[int, Column]:
        by_name = {c.name: c for c in sheet.columns}
        aliases: dict[str, str] = {}
        for column in sheet.columns:
            if column.field:
                aliases.setdefault(column.field.split(".", 1)[1], column.name)
        mapping: dict[int, Column] = {}
        taken: dict[str, str] = {}
        renamed: list[tuple[str, str]] = []
        unmatched: list[tuple[int, str]] = []
        for index, header in enumerate(raw_sheet.header):
            key = normalise_name(header)
            if not key:
                continue
            target = key if key in by_name else aliases.get(key)
            if target is None:
                unmatched.append((index, header))
                continue
            taken_now = self._take(sheet, mapping, taken, index, header, by_name[target])
            if taken_now and header != target:
                renamed.append((header, target))
        if renamed:
            self.normalised(
                sheet.name,
                None,
                None,
                "header",
                dict(renamed),
                f"{self.column_word} names read as the template's names: "
                + ", ".join(f"`{h}` → `{n}`" for h, n in renamed),
            )
        left: list[tuple[int, str]] = []
        for index, header in unmatched:
            key = normalise_name(header)
            free = [c for c in by_name if c not in taken]
            target = _closest(key, free, 0.8)
            if target is None:
                left.append((index, header))
                continue
            self.normalised(
                sheet.name,
                None,
                target,
                "header",
                header,
                f"{self.column_word} `{header}` looks like `{target}`; read as `{target}`",
            )
            self._take(sheet, mapping, taken, index, header, by_name[target])
        missing = [c for c in sheet.columns if c.name not in taken]
        for column in missing:
            hint = _closest(column.name, [normalise_name(h) for _, h in left], 0.5)
            hint_raw = next((h for _, h in left if normalise_name(h) == hint), None)
            suggestion = f" — {self.column_word} `{hint_raw}` looks like it" if hint_raw else ""
            if column.required:
                self.add(
                    sheet.name,
                    None,
                    column.name,
                    "missing_column",
                    ERROR,
                    None,
                    f"the required {self.column_word} `{column.name}` is missing{suggestion}",
                    (
                        f'add the field "{column.name}" to '
                        + ("the object" if sheet.single_row else "every object of the array")
                        if self.json
                        else f"add a column headed {column.name}"
                    ),
                )
                self.invalid.setdefault(sheet.name, set()).update(raw_sheet.row_numbers)
        if left:
            names = ", ".join(f"`{h}`" for _, h in left)
            self.add(
                sheet.name,
                None,
                None,
                "unknown_column",
                WARNING,
                [h for _, h in left],
                f"{self.column_word}{'s' if len(left) > 1 else ''} {names} "
                f"{'are' if len(left) > 1 else 'is'} not part of {self.the_sheet(sheet.name)}; "
                f"{'they were' if len(left) > 1 else 'it was'} ignored",
            )
        merged = _merged_columns(raw_sheet)
        empty_headers = [
            i for i, h in enumerate(raw_sheet.header) if not normalise_name(h) and i not in merged
        ]
        for index in empty_headers:
            if any(index < len(row) and not _blank(row[index]) for row in raw_sheet.rows):
                self.add(
                    sheet.name,
                    raw_sheet.header_row or None,
                    None,
                    "unknown_column",
                    WARNING,
                    None,
                    f"column {index + 1} has values but no header; it was ignored",
                )
        return mapping

    def _take(
        self,
        sheet: Sheet,
        mapping: dict[int, Column],
        taken: dict[str, str],
        index: int,
        header: str,
        column: Column,
    ) -> bool:
        if column.name in taken:
            self.add(
                sheet.name,
                None,
                column.name,
                "duplicate_column",
                ERROR,
                header,
                f"{self.column_word} `{header}` repeats `{taken[column.name]}` (both read as "
                f"`{column.name}`); only the first was read",
            )
            return False
        taken[column.name] = header
        mapping[index] = column
        return True

    # rows

    def read_sheet(self, sheet: Sheet, raw_sheet: RawSheet) -> list[dict[str, Any]]:
        mapping = self.match_columns(sheet, raw_sheet)
        self.merged_headers(sheet, raw_sheet)
        self.formula_cells(sheet, raw_sheet, mapping)
        records: list[dict[str, Any]] = []
        blank_rows: list[int] = []
        for number, values in zip(raw_sheet.row_numbers, raw_sheet.rows, strict=True):
            cells = {
                column.name: values[index] if index < len(values) else None
                for index, column in mapping.items()
            }
            if all(_blank(v) for v in values):
                blank_rows.append(number)
                continue
            if all(_blank(v) for v in cells.values()):
                self.add(
                    sheet.name,
                    number,
                    None,
                    "no_known_columns",
                    WARNING,
                    None,
                    (
                        "the object has values only in fields that are not part of the array; "
                        "skipped"
                        if self.json
                        else "the row has values only in columns that are not part of the sheet; "
                        "skipped"
                    ),
                )
                continue
            record: dict[str, Any] = {"_row": number}
            for column in sheet.columns:
                record[column.name] = self.value(sheet, number, column, cells.get(column.name))
            records.append(record)
        if blank_rows:
            shown = ", ".join(str(n) for n in blank_rows[:10])
            more = f" and {len(blank_rows) - 10} more" if len(blank_rows) > 10 else ""
            many = len(blank_rows) > 1
            self.normalised(
                sheet.name,
                None,
                None,
                "blank_rows",
                len(blank_rows),
                (
                    f"{len(blank_rows)} empty object{'s' if many else ''} skipped "
                    f"({', '.join(self.place(sheet.name, n) for n in blank_rows[:10])}{more})"
                    if self.json
                    else f"{len(blank_rows)} blank row{'s' if many else ''} skipped "
                    f"(row{'s' if many else ''} {shown}{more})"
                ),
            )
        if sheet.single_row and len(records) > 1:
            for extra in records[1:]:
                self.add(
                    sheet.name,
                    extra["_row"],
                    None,
                    "extra_metadata_row",
                    ERROR,
                    None,
                    (
                        f'"{sheet.name}" is one object; this one was not used'
                        if self.json
                        else f"the `{sheet.name}` sheet holds one row only; this row was not used"
                    ),
                )
            del records[1:]
        if sheet.single_row and not records:
            self.add(
                sheet.name,
                None,
                None,
                "missing_metadata",
                ERROR,
                None,
                (
                    f'the object "{sheet.name}" is empty'
                    if self.json
                    else f"the `{sheet.name}` sheet has no row below its header"
                ),
            )
        self.duplicate_keys(sheet, records)
        return records

    def merged_headers(self, sheet: Sheet, raw_sheet: RawSheet) -> None:
        """A merged header cell leaves the columns after its first without a header, so
        their values would be lost: the sheet is refused until it is unmerged."""
        if not raw_sheet.merged_header:
            return
        cells = ", ".join(raw_sheet.merged_header)
        several = len(raw_sheet.merged_header) > 1
        self.add(
            sheet.name,
            raw_sheet.header_row,
            None,
            "merged_header",
            ERROR,
            cells,
            f"the header cell{'s' if several else ''} {cells} "
            f"{'are' if several else 'is'} merged: the columns after the first of a merged "
            "header have no header, so their values cannot be read; no row of this sheet "
            "was read",
            f"unmerge {cells} and give each column its own header, one per column, as in "
            "the template",
        )
        self.invalid.setdefault(sheet.name, set()).update(raw_sheet.row_numbers)

    def formula_cells(self, sheet: Sheet, raw_sheet: RawSheet, mapping: dict[int, Column]) -> None:
        """Each cell holding a formula, located: its last calculated value was read."""
        rows = dict(zip(raw_sheet.row_numbers, raw_sheet.rows, strict=True))
        for ref in raw_sheet.formulas[:MAX_FORMULA_CELLS]:
            letters, row = coordinate_from_string(ref)
            index = column_index_from_string(letters) - 1
            column = mapping.get(index)
            header = raw_sheet.header[index] if index < len(raw_sheet.header) else ""
            values = raw_sheet.header if row == raw_sheet.header_row else rows.get(row, [])
            value = values[index] if index < len(values) else None
            read = (
                f"its last calculated value {_show(value)} was read"
                if not _blank(value)
                else "it was never calculated (a file written by a program?), so the cell "
                "reads as empty"
            )
            self.add(
                sheet.name,
                row,
                column.name if column else (header or None),
                "formula",
                WARNING,
                value,
                f"cell {ref} holds a formula; {read}",
                "type the value itself if the formula's result is not what should be sent",
            )
        more = len(raw_sheet.formulas) - MAX_FORMULA_CELLS
        if more > 0:
            self.add(
                sheet.name,
                None,
                None,
                "formula",
                WARNING,
                more,
                f"{more} more cell{'s' if more > 1 else ''} hold formulas "
                f"({', '.join(raw_sheet.formulas[MAX_FORMULA_CELLS:][:10])}"
                f"{', ...' if more > 10 else ''}); their last calculated values were read",
            )

    def duplicate_keys(self, sheet: Sheet, records: list[dict[str, Any]]) -> None:
        if not sheet.key:
            return
        seen: dict[tuple[Any, ...], int] = {}
        for record in records:
            key = tuple(record.get(k) for k in sheet.key)
            if all(v is None for v in key):
                continue
            first = seen.get(key)
            if first is None:
                seen[key] = record["_row"]
                continue
            shown = ", ".join(
                f"{k} {_show(v) if v is not None else '(empty)'}"
                for k, v in zip(sheet.key, key, strict=True)
            )
            self.add(
                sheet.name,
                record["_row"],
                sheet.key[0],
                "duplicate_key",
                ERROR,
                key[0] if len(key) == 1 else list(key),
                (
                    f"{shown} appears twice (first in {self.place(sheet.name, first)}); each "
                    "must be unique in the array"
                    if self.json
                    else f"{shown} appears twice (first on row {first}); each must be unique on "
                    "this sheet"
                ),
                (
                    "give the object its own id, or delete the repeated object"
                    if self.json
                    else "give the row its own id, or delete the repeated row"
                ),
            )

    def value(self, sheet: Sheet, row: int, column: Column, value: Any) -> Any:
        """The typed, normalised value of one cell (None when empty or wrong)."""
        where = (sheet.name, row, column.name)
        if (
            isinstance(value, list)
            and column.type == "string"
            and not any(isinstance(v, dict | list) for v in value)
        ):
            joined = ";".join(str(v).strip() for v in value if not _blank(v))
            self.normalised(*where, "list", value, f"list {value!r} read as {joined!r}")
            value = joined
        if isinstance(value, dict | list):
            self.add(*where, "type", ERROR, value, f"{_show(value)} is not a single value")
            return None
        if isinstance(value, str):
            stripped = value.strip().replace("\u00a0", " ").strip()
            if stripped != value and stripped:
                self.normalised(
                    *where, "whitespace", value, f"{value!r} read as {stripped!r} (blanks removed)"
                )
            value = stripped
        if _blank(value):
            if column.required:
                self.add(
                    *where,
                    "required",
                    ERROR,
                    None,
                    f"`{column.name}` is empty; it is required",
                    f"fill in {column.name}",
                )
            return None
        parse = getattr(self, f"_{column.type}")
        result: Any = parse(where, column, value)
        if result is None:
            return None
        if column.type == "string":
            result = self.codes(where, column, result)
        return result

    def _string(self, where: tuple[str, int, str], column: Column, value: Any) -> str:
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        if isinstance(value, dt.datetime):
            return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
        if isinstance(value, dt.date):
            return value.isoformat()
        text = str(value)
        if text.startswith(FORMULA_START) and len(text) > 1 and not _NUMBER.fullmatch(text):
            self.add(
                *where,
                "formula_text",
                WARNING,
                text,
                f"{text!r} looks like a spreadsheet formula; stored as text and published "
                "with a leading apostrophe in CSV",
            )
        return text

    def _integer(self, where: tuple[str, int, str], column: Column, value: Any) -> int | None:
        number = self._to_number(where, column, value)
        if number is None:
            return None
        if not float(number).is_integer():
            self.add(*where, "type", ERROR, value, f"{_show(value)} is not a whole number")
            return None
        result = int(number)
        if column.name.endswith("_year") and not YEAR_RANGE[0] <= result <= YEAR_RANGE[1]:
            self.add(
                *where,
                "implausible_year",
                ERROR,
                value,
                f"{_show(value)} is not a plausible year (write a year such as 2025)",
            )
            return None
        return result

    def _number(self, where: tuple[str, int, str], column: Column, value: Any) -> float | None:
        number = self._to_number(where, column, value)
        return None if number is None else float(number)

    def _to_number(self, where: tuple[str, int, str], column: Column, value: Any) -> float | None:
        if isinstance(value, bool):
            self.add(*where, "type", ERROR, value, f"{_show(value)} is not a number")
            return None
        if isinstance(value, int | float):
            if isinstance(value, float) and not math.isfinite(value):
                self.add(*where, "type", ERROR, value, f"{value!r} is not a number")
                return None
            try:
                return float(value)
            except OverflowError:  # an integer beyond float's range (JSON numbers have none)
                self.add(*where, "type", ERROR, value, f"{_show(value)} is too large a number")
                return None
        if isinstance(value, dt.date | dt.datetime | dt.time):
            self.add(*where, "type", ERROR, value, f"{_show(value)} is a date, not a number")
            return None
        text = str(value)
        compact = text.replace(" ", "")
        if _NUMBER.fullmatch(text):
            number = float(text)
            if math.isfinite(number):
                return number
            self.add(*where, "type", ERROR, value, f"{_show(value)} is too large a number")
            return None
        reading: str | None = None
        if _COMMA_THOUSANDS.fullmatch(text):
            reading = text.replace(",", "")
        elif _SPACE_THOUSANDS.fullmatch(text):
            reading = re.sub(r"[ \u00a0\u202f']", "", text).replace(",", ".")
        elif _DOT_THOUSANDS_COMMA_DECIMAL.fullmatch(text):
            reading = text.replace(".", "").replace(",", ".")
        elif _DECIMAL_COMMA.fullmatch(compact):
            reading = compact.replace(",", ".")
        elif text.endswith("%") and _NUMBER.fullmatch(text[:-1].strip()):
            reading = text[:-1].strip()
        if reading is not None and math.isfinite(float(reading)):
            self.normalised(*where, "number", value, f"{text!r} read as {reading}")
            return float(reading)
        if reading is not None:
            self.add(*where, "type", ERROR, value, f"{_show(value)} is too large a number")
            return None
        self.add(
            *where,
            "type",
            ERROR,
            value,
            f"{_show(value)} is not a {'whole ' if column.type == 'integer' else ''}number"
            + (
                " (write digits only, e.g. 12000 or 12000.5)"
                if any(c.isdigit() for c in text)
                else ""
            ),
        )
        return None

    def _boolean(self, where: tuple[str, int, str], column: Column, value: Any) -> bool | None:
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float) and value in (0, 1):
            self.normalised(
                *where, "boolean", value, f"{value!r} read as {'yes' if value else 'no'}"
            )
            return bool(value)
        text = str(value).strip().lower()
        if text in TRUE_WORDS or text in FALSE_WORDS:
            result = text in TRUE_WORDS
            if text not in CANONICAL_BOOLEANS:
                self.normalised(
                    *where, "boolean", value, f"{value!r} read as {'yes' if result else 'no'}"
                )
            return result
        self.add(
            *where,
            "type",
            ERROR,
            value,
            f"{_show(value)} is not yes or no (leave it empty when unknown)",
        )
        return None

    def _date(self, where: tuple[str, int, str], column: Column, value: Any) -> dt.date | None:
        if isinstance(value, dt.datetime):
            if value.time() != dt.time():
                self.normalised(
                    *where,
                    "date",
                    value,
                    f"{value.isoformat()} read as {value.date()} (time dropped)",
                )
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            if (
                EXCEL_SERIAL_RANGE[0] <= value <= EXCEL_SERIAL_RANGE[1]
                and float(value).is_integer()
            ):
                day = EXCEL_EPOCH + dt.timedelta(days=int(value))
                self.normalised(
                    *where, "excel_date", value, f"Excel date number {value!r} read as {day}"
                )
                return day
            self.add(
                *where, "type", ERROR, value, f"{_show(value)} is not a date (write YYYY-MM-DD)"
            )
            return None
        text = str(value)
        iso = _ISO_DATE.fullmatch(text) or _ISO_SLASH_DATE.fullmatch(text)
        if iso:
            try:
                day = dt.date(int(iso[1]), int(iso[2]), int(iso[3]))
            except ValueError:
                self.add(*where, "type", ERROR, value, f"{text!r} is not a real date")
                return None
            if text != day.isoformat():
                self.normalised(*where, "date", value, f"{text!r} read as {day}")
            return day
        dmy = _DMY_DATE.fullmatch(text)
        if dmy:
            first, second, year = int(dmy[1]), int(dmy[2]), int(dmy[3])
            readings = []
            for day_n, month_n in ((first, second), (second, first)):
                try:
                    readings.append(dt.date(year, month_n, day_n))
                except ValueError:
                    continue
            readings = list(dict.fromkeys(readings))
            if len(readings) == 2:
                a, b = readings
                self.add(
                    *where,
                    "ambiguous_date",
                    ERROR,
                    value,
                    f"{text!r} is ambiguous: {a.day} {a:%B %Y} or {b.day} {b:%B %Y}? "
                    f"Write dates as YYYY-MM-DD ({a} or {b})",
                    "write the date as YYYY-MM-DD",
                )
                return None
            if len(readings) == 1:
                self.add(
                    *where,
                    "date_format",
                    ERROR,
                    value,
                    f"{text!r} is not written YYYY-MM-DD — did you mean {readings[0]}?",
                    f"write {readings[0]}",
                )
                return None
        self.add(
            *where,
            "type",
            ERROR,
            value,
            f"{_show(value)} is not a date (write YYYY-MM-DD, e.g. 2025-03-31)",
        )
        return None

    # codes

    def codes(self, where: tuple[str, int, str], column: Column, text: str) -> str | None:
        if column.enum:
            return self._enum(where, column, text)
        if column.codelist == "Country":
            return self._country(where, text)
        if column.codelist == "Currency":
            return self._coded(where, text, "Currency", _CURRENCY, "an ISO 4217 currency code")
        if column.codelist == "Sector":
            if _SECTOR_CATEGORY.fullmatch(text):
                self._sector_category(where, text)
                return None
            return self._coded(where, text, "Sector", _SECTOR, "a DAC 5-digit sector code")
        if column.name == "partner_org_ref" and not _ORG_REF.fullmatch(text):
            self.add(
                *where,
                "org_ref",
                WARNING,
                text,
                f"{text!r} does not look like an IATI organisation identifier "
                "(e.g. GB-GOV-1, XM-DAC-41114)",
            )
        if column.name in ("priority_ids", "coordinated_with"):
            parts = [p.strip() for p in re.split(r"[;,\n]", text) if p.strip()]
            joined = ";".join(parts)
            if joined != text:
                self.normalised(*where, "list", text, f"{text!r} read as {joined!r}")
            return joined or None
        return text

    def _sector_category(self, where: tuple[str, int, str], text: str) -> None:
        """A DAC 3-digit sector category where a 5-digit purpose code is asked for: said
        so, with some purpose codes of the category, and none chosen for the submitter
        (picking one would change what the row says)."""
        categories = self.reference.codes("SectorCategory")
        sectors = self.reference.codes("Sector")
        purposes = sorted(c for c in sectors or () if c[:3] == text and _SECTOR.fullmatch(c))
        # without the category list, a category is the start of purpose codes
        known = text in categories if categories is not None else bool(purposes) or sectors is None
        if not known:
            self.add(
                *where,
                "invalid_sector",
                ERROR,
                text,
                f"{text!r} is neither a DAC 5-digit purpose code nor a DAC 3-digit sector category",
                "write the 5-digit DAC purpose code of the row's sector",
            )
            return
        name = self.reference.name("SectorCategory", text)
        shown = []
        for code in purposes[:CATEGORY_EXAMPLES]:
            label = self.reference.name("Sector", code)
            shown.append(f"{code} ({label})" if label else code)
        examples = ""
        if shown:
            more = len(purposes) - len(shown)
            examples = f": {', '.join(shown)}{f' and {more} more' if more > 0 else ''}"
        self.add(
            *where,
            "sector_category",
            ERROR,
            text,
            f"{text!r} is a DAC 3-digit sector category"
            f"{f' ({name})' if name else ''}, not a 5-digit purpose code; the sector must "
            f"be the purpose code within that category{examples}",
            f"choose the 5-digit purpose code of category {text} that fits the row "
            "(codes starting with " + text + ")",
        )

    def _enum(self, where: tuple[str, int, str], column: Column, text: str) -> str | None:
        if text in column.enum:
            return text
        key = normalise_name(text)
        if key in column.enum:
            self.normalised(*where, "code", text, f"{text!r} read as {key}")
            return key
        guess = _closest(key, column.enum)
        hint = f" — did you mean {guess}?" if guess else ""
        self.add(
            *where,
            "invalid_code",
            ERROR,
            text,
            f"{text!r} is not one of the allowed values ({', '.join(column.enum)}){hint}",
            f"write {guess}" if guess else None,
        )
        return None

    def _country(self, where: tuple[str, int, str], text: str) -> str | None:
        codes = self.reference.codes("Country")
        upper = text.upper()
        if codes is None:
            if _COUNTRY.fullmatch(upper):
                if upper != text:
                    self.normalised(*where, "code", text, f"{text!r} read as {upper}")
                return upper
            self.add(
                *where,
                "invalid_country",
                ERROR,
                text,
                f"{text!r} is not an ISO country code (two letters, e.g. KE)",
            )
            return None
        if upper in codes:
            if upper != text:
                self.normalised(*where, "code", text, f"{text!r} read as {upper}")
            return upper
        names = self.reference.names("Country")
        by_name = names.get(text.lower())
        if by_name:
            self.normalised(
                *where, "country_name", text, f"country {text!r} read as its code {by_name}"
            )
            return by_name
        guess = _closest(text.lower(), names, 0.6)
        code = names[guess] if guess else _closest(upper, codes, 0.5)
        hint = ""
        if code:
            name = self.reference.name("Country", code)
            hint = f" — did you mean {code} ({name})?" if name else f" — did you mean {code}?"
        self.add(
            *where,
            "invalid_country",
            ERROR,
            text,
            f"{text!r} is not an ISO country code{hint}",
            f"write {code}" if code else "write the two-letter ISO 3166 code",
        )
        return None

    def _coded(
        self,
        where: tuple[str, int, str],
        text: str,
        codelist: str,
        pattern: re.Pattern[str],
        what: str,
    ) -> str | None:
        codes = self.reference.codes(codelist)
        upper = text.upper()
        known = upper in codes if codes is not None else bool(pattern.fullmatch(upper))
        if known:
            if upper != text:
                self.normalised(*where, "code", text, f"{text!r} read as {upper}")
            return upper
        guess = _closest(upper, codes, 0.6) if codes is not None else None
        hint = ""
        if guess:
            name = self.reference.name(codelist, guess)
            hint = f" — did you mean {guess}{f' ({name})' if name else ''}?"
        self.add(
            *where,
            f"invalid_{codelist.lower()}",
            ERROR,
            text,
            f"{text!r} is not {what}{hint}",
            f"write {guess}" if guess else None,
        )
        return None

    # cross-table rules

    def metadata_rules(
        self, kind: SubmissionType, records: dict[str, list[dict[str, Any]]]
    ) -> None:
        meta = records.get("metadata") or []
        if not meta or self.settings is None:
            return
        country = meta[0].get("country_code")
        if country and self.settings.countries and country not in self.settings.countries:
            self.add(
                "metadata",
                meta[0]["_row"],
                "country_code",
                "not_compact_country",
                WARNING,
                country,
                f"{country} is not one of the compact's countries "
                f"({', '.join(self.settings.countries)})",
            )

    def country_rules(self, records: dict[str, list[dict[str, Any]]]) -> None:
        priorities = records.get("cd_priorities", [])
        for record in priorities:
            self._order(
                "cd_priorities",
                record,
                "start_year",
                "end_year",
                "the end year is before the start year",
            )
        known = [r["priority_id"] for r in priorities if r.get("priority_id")]
        for record in records.get("results", []):
            self._order(
                "results",
                record,
                "baseline_year",
                "target_year",
                "the target year is before the baseline year",
            )
            self._order(
                "results", record, "period_start", "period_end", "the period ends before it starts"
            )
            self._reference("results", record, "priority_id", known, "cd_priorities", "priority")

    def partner_rules(self, records: dict[str, list[dict[str, Any]]]) -> None:
        activities = records.get("activities", [])
        known = [r["activity_id"] for r in activities if r.get("activity_id")]
        for record in activities:
            row = record["_row"]
            self._order(
                "activities", record, "start_date", "end_date", "the activity ends before it starts"
            )
            for amount in ("budget", "disbursed"):
                value = record.get(amount)
                if value is not None and value < 0:
                    self.add(
                        "activities",
                        row,
                        amount,
                        "negative_amount",
                        ERROR,
                        value,
                        f"{amount} {value:g} is negative; amounts must be 0 or more",
                    )
            has_amount = record.get("budget") is not None or record.get("disbursed") is not None
            if has_amount and record.get("currency") is None:
                self.add(
                    "activities",
                    row,
                    "currency",
                    "missing_currency",
                    ERROR,
                    None,
                    "amounts are given but `currency` is empty or not understood",
                    "write the ISO 4217 currency code, e.g. USD",
                )
            activity_id = record.get("activity_id")
            if (
                record.get("in_iati")
                and activity_id
                and self.iati_ids is not None
                and activity_id not in self.iati_ids
            ):
                self.add(
                    "activities",
                    row,
                    "activity_id",
                    "not_in_iati",
                    WARNING,
                    activity_id,
                    f"{activity_id!r} is marked as published in IATI but is not (yet) in "
                    "the IATI data",
                )
        for sheet in ("declarations", "results"):
            for record in records.get(sheet, []):
                if sheet == "results":
                    self._order(
                        "results",
                        record,
                        "baseline_year",
                        "target_year",
                        "the target year is before the baseline year",
                    )
                    self._order(
                        "results",
                        record,
                        "period_start",
                        "period_end",
                        "the period ends before it starts",
                    )
                self._reference(sheet, record, "activity_id", known, "activities", "activity")

    def _order(
        self, sheet: str, record: dict[str, Any], first: str, last: str, message: str
    ) -> None:
        start, end = record.get(first), record.get(last)
        if start is None or end is None or start <= end:
            return
        self.add(
            sheet,
            record["_row"],
            last,
            "date_order",
            ERROR,
            end,
            f"{message}: {last} {_show(end)} < {first} {_show(start)}",
            f"check {first} and {last}",
        )

    def _reference(
        self,
        sheet: str,
        record: dict[str, Any],
        column: str,
        known: list[str],
        target: str,
        what: str,
    ) -> None:
        value = record.get(column)
        if value is None or value in known:
            return
        guess = _closest(value, known, 0.6)
        listed = ", ".join(dict.fromkeys(known)) if len(known) <= 10 else f"{len(known)} ids"
        hint = f" — did you mean {guess}?" if guess else ""
        self.add(
            sheet,
            record["_row"],
            column,
            f"unknown_{what}",
            ERROR,
            value,
            f"{what} {value!r} is not "
            f"{'in ' + self.the_sheet(target) if self.json else f'on the `{target}` sheet'} "
            f"(known: {listed or 'none'}){hint}",
            f"use an id from {self.the_sheet(target) if self.json else f'the {target} sheet'}",
        )


def _merged_columns(raw_sheet: RawSheet) -> set[int]:
    """Indexes of the columns covered by a merged header cell."""
    covered: set[int] = set()
    for ref in raw_sheet.merged_header:
        first, _, last, _ = range_boundaries(ref)
        covered.update(range(int(first or 1) - 1, int(last or first or 1)))
    return covered


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _closest_any(headers: set[str], name: str) -> str | None:
    return _closest(name, headers, 0.8)


def _type(name: str) -> SubmissionType:
    return next(kind for kind in submission_types() if kind.name == name)


def check_submission(
    raw: RawSubmission,
    settings: Settings | None,
    codelists: Codelists | None,
    iati_activity_ids: set[str] | None = None,
) -> CheckedSubmission:
    """Check a read submission against the model, then its structure with Frictionless;
    every problem is in ``problems``."""
    checked = _Checker(raw, settings, codelists, iati_activity_ids).check()
    if checked.type_name is None:
        return checked
    from assets.submissions.model import submission_type
    from assets.submissions.structure import structure_problems

    reported = {(p.sheet, p.row, p.column) for p in checked.problems if p.severity == "error"}
    for sheet, row, column, rule, note in structure_problems(
        submission_type(checked.type_name), checked.frames
    ):
        if (sheet, row, column) in reported or any(
            (sheet, row, None) == (p.sheet, p.row, None) and p.severity == "error"
            for p in checked.problems
        ):
            continue
        checked.problems.append(
            Problem(
                sheet,
                row,
                column,
                rule,
                "error",
                None,
                f"the {'object' if checked.format == 'json' else 'row'} does not fit the "
                f"template's structure: {note}",
            )
        )
        frame = checked.frames.get(sheet)
        if frame is not None and row is not None and "_row" in frame.columns:
            frame.loc[frame["_row"] == row, "_valid"] = False
    return checked


# --- command line ---------------------------------------------------------------------


def _iati_ids(args: argparse.Namespace, settings: Settings) -> set[str] | None:
    path: Path | None = getattr(args, "iati_ids", None)
    if path is not None:
        return {
            line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
        }
    table = settings.data_dir / "tables" / "activities.parquet"
    if table.is_file():
        try:
            frame = pd.read_parquet(table, columns=["activity_id"])
        except Exception:  # a damaged table only means in_iati is not checked
            return None
        return {str(v) for v in frame["activity_id"].dropna()}
    return None


def check_main(args: argparse.Namespace) -> int:
    """``cdcompact check FILE``: 0 no errors, 1 errors, 2 rejected or unreadable."""
    path: Path = args.file
    name = path.name
    try:
        settings = load_settings(getattr(args, "config", None))
    except ConfigError as exc:
        print(f"cdcompact check: {exc}", file=sys.stderr)
        return EXIT_REJECTED
    if not path.exists():
        print(f"cdcompact check: {name}: no such file or folder", file=sys.stderr)
        return EXIT_REJECTED
    codelists: Codelists | None = None
    if settings.codelists_dir is not None and settings.codelists_dir.is_dir():
        try:
            codelists = load_codelists(settings.codelists_dir)
        except CodelistError as exc:
            print(f"cdcompact check: codelists not used: {exc}", file=sys.stderr)
    try:
        raw = read_submission(path, name)
    except SubmissionRejected as exc:
        print(f"cdcompact check: {name}: rejected ({exc.rule}): {exc.message}", file=sys.stderr)
        return EXIT_REJECTED
    try:
        ids = _iati_ids(args, settings)
    except OSError as exc:
        print(f"cdcompact check: cannot read --iati-ids: {exc.strerror}", file=sys.stderr)
        return EXIT_REJECTED
    checked = check_submission(raw, settings, codelists, ids)
    text = format_problems(checked)
    if text:
        print(text)
    print(summary_line(checked))
    return EXIT_ERRORS if checked.errors else EXIT_OK
