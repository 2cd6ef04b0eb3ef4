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

from assets.iati.codelists import CodelistError, Codelists, load_codelists
from assets.settings import ConfigError, Settings, load_settings
from assets.submissions.model import Column, Sheet, SubmissionType, submission_types
from assets.submissions.read import RawSheet, RawSubmission, SubmissionRejected, read_submission

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

    def describe(self) -> str:
        """``sheet results, row 12, column country_code: <message>``."""
        where = []
        if self.sheet:
            where.append(f"sheet {self.sheet}")
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column:
            where.append(f"column {self.column}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


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
    for severity, title in ((ERROR, "Errors"), (WARNING, "Warnings")):
        lines = [p.describe() for p in checked.problems if p.severity == severity]
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
            "the metadata sheet needs a `country_code` column (country report) or a "
            "`partner_org_ref` column (partner submission)",
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
                    f"the sheet `{sheet.name}` ({sheet.title}) is missing"
                    + ("" if required else "; no rows of this kind were read"),
                    f"add a sheet named {sheet.name} as in the template",
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
                    f"sheet {raw_name!r} read as the `{target}` sheet",
                )
        for raw_name in unknown:
            self.add(
                raw_name,
                None,
                None,
                "unknown_sheet",
                WARNING,
                None,
                f"the sheet {raw_name!r} is not part of a {kind.title.lower()}; it was ignored "
                f"(expected sheets: {', '.join(expected)})",
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
                "column headers read as the template's names: "
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
                f"column `{header}` looks like `{target}`; read as `{target}`",
            )
            self._take(sheet, mapping, taken, index, header, by_name[target])
        missing = [c for c in sheet.columns if c.name not in taken]
        for column in missing:
            hint = _closest(column.name, [normalise_name(h) for _, h in left], 0.5)
            hint_raw = next((h for _, h in left if normalise_name(h) == hint), None)
            suggestion = f" — column `{hint_raw}` looks like it" if hint_raw else ""
            if column.required:
                self.add(
                    sheet.name,
                    None,
                    column.name,
                    "missing_column",
                    ERROR,
                    None,
                    f"the required column `{column.name}` is missing{suggestion}",
                    f"add a column headed {column.name}",
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
                f"column{'s' if len(left) > 1 else ''} {names} "
                f"{'are' if len(left) > 1 else 'is'} not part of the `{sheet.name}` sheet; "
                f"{'they were' if len(left) > 1 else 'it was'} ignored",
            )
        empty_headers = [i for i, h in enumerate(raw_sheet.header) if not normalise_name(h)]
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
                f"column `{header}` repeats `{taken[column.name]}` (both read as "
                f"`{column.name}`); only the first was read",
            )
            return False
        taken[column.name] = header
        mapping[index] = column
        return True

    # rows

    def read_sheet(self, sheet: Sheet, raw_sheet: RawSheet) -> list[dict[str, Any]]:
        mapping = self.match_columns(sheet, raw_sheet)
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
                    "the row has values only in columns that are not part of the sheet; skipped",
                )
                continue
            record: dict[str, Any] = {"_row": number}
            for column in sheet.columns:
                record[column.name] = self.value(sheet, number, column, cells.get(column.name))
            records.append(record)
        if blank_rows:
            shown = ", ".join(str(n) for n in blank_rows[:10])
            more = f" and {len(blank_rows) - 10} more" if len(blank_rows) > 10 else ""
            self.normalised(
                sheet.name,
                None,
                None,
                "blank_rows",
                len(blank_rows),
                f"{len(blank_rows)} blank row{'s' if len(blank_rows) > 1 else ''} skipped "
                f"(row{'s' if len(blank_rows) > 1 else ''} {shown}{more})",
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
                    f"the `{sheet.name}` sheet holds one row only; this row was not used",
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
                f"the `{sheet.name}` sheet has no row below its header",
            )
        self.duplicate_keys(sheet, records)
        return records

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
                f"{shown} appears twice (first on row {first}); each must be unique on this sheet",
                "give the row its own id, or delete the repeated row",
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
            f"{what} {value!r} is not on the `{target}` sheet (known: {listed or 'none'}){hint}",
            f"use an id from the {target} sheet",
        )


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
                f"the row does not fit the template's structure: {note}",
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
