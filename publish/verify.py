"""A release's files checked as the target holds them, before anything points to them.

What Frictionless checks when it validates a data package, row by row in
Python, is done here by DuckDB over each written file, in time linear in its
rows and in bounded memory:

* the CSV header holds the schema's field names, in order; every row has one
  cell per field and the file is UTF-8;
* every cell reads as its field's type, as Frictionless reads it (an empty cell
  is missing; integers and numbers as Python's ``int`` and ``Decimal`` read
  them, booleans ``true``/``True``/``TRUE``/``1`` and ``false``..., dates
  ``YYYY-MM-DD``, datetimes ISO 8601);
* the constraints: ``required``, ``pattern`` (a Python regular expression,
  anchored at both ends as Frictionless does), ``enum``, ``minimum`` and
  ``maximum`` (a NaN passes neither), checked only where the type is right;
* the primary key is unique and never all empty; every foreign key's values
  (unless all empty) are found in the referenced table of the same release;
* the Parquet twin has the schema's columns and types, the same number of rows,
  and the same constraints, keys and foreign keys (over its typed values).

A file that fails is named with the row (as Frictionless counts it in a CSV
file: the header is row 1; in a Parquet file the first row is row 1), the field
and the problem. Rows are only located, in file order, when a check has failed.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import frictionless
import pyarrow as pa
import pyarrow.parquet as pq

from assets.harmonise.schema import arrow_schema, table_schema
from assets.hashing import CHUNK_BYTES
from assets.storage.targets import Target
from assets.warehouse import in_file_order, literal, quote
from publish.tables import TableFiles

#: Problems listed per file before the rest are only counted.
MAX_PROBLEMS = 10
_SPACE = r"[\t\n\x0b\f\r ]"
_DIGITS = r"[0-9](?:_?[0-9])*"
#: What Python's ``int`` (Frictionless' integer reader) accepts, ASCII digits and spaces.
INTEGER = rf"{_SPACE}*[+-]?[0-9]+(?:_[0-9]+)*{_SPACE}*"
#: What Python's ``Decimal`` (Frictionless' number reader) accepts.
NUMBER = (
    rf"{_SPACE}*[+-]?(?:(?:{_DIGITS}(?:\.(?:{_DIGITS})?)?|\.{_DIGITS})(?:[eE][+-]?{_DIGITS})?"
    rf"|(?i:inf|infinity|s?nan[0-9]*)){_SPACE}*"
)
#: Python's ``strptime(cell, "%Y-%m-%d")`` (the day may be one digit, or a space and one).
DATE = r"([0-9]{4})-(1[0-2]|0[1-9]|[1-9])-(3[01]|[12][0-9]|0[1-9]|[1-9]| [1-9])"
#: Frictionless' default datetime: ISO 8601 with seconds, any one separator, a time zone.
DATETIME = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}.[0-9]{2}:[0-9]{2}:[0-9]{2}(?:[.,][0-9]+)?"
    r"(?:[zZ]|[+-][0-9]{2}(?::?[0-9]{2})?)?"
)
TRUE_VALUES = ("true", "True", "TRUE", "1")
FALSE_VALUES = ("false", "False", "FALSE", "0")
_CHECKED = frozenset({"required", "pattern", "enum", "minimum", "maximum"})


class VerificationError(ValueError):
    """The schema asks for a check this module does not make (so it cannot vouch for it)."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one file, as Frictionless would report it."""

    file: str
    kind: str  # Frictionless' error type: type-error, constraint-error, primary-key...
    note: str
    row: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f" row {self.row:,}"
        if self.field is not None:
            where += f", field {self.field}"
        return f"{where}: {self.note} ({self.kind})"


@dataclass(frozen=True)
class WrittenTable:
    """A table's two files as written (local copies of what the target holds)."""

    table: str
    csv: Path
    parquet: Path
    rows: int
    #: How messages name the files (their keys on the target).
    csv_name: str
    parquet_name: str


@dataclass(frozen=True)
class _Check:
    """A row-level check: SQL that is true for a failing row, and how to say what failed."""

    field: str | None
    kind: str
    failing: str
    note: str


def python_pattern(pattern: str) -> str:
    """An RE2 pattern that matches what Frictionless' ``re.match("^{pattern}$")`` matches:
    Python's ``$`` also matches before a final line break, and its ``\\d`` is any Unicode
    digit."""
    out: list[str] = []
    in_class = False
    index = 0
    source = f"^{pattern}$"
    while index < len(source):
        char = source[index]
        if char == "\\" and index + 1 < len(source):
            escaped = source[index + 1]
            if escaped in "dD" and not in_class:
                out.append(r"\p{Nd}" if escaped == "d" else r"\P{Nd}")
            elif escaped == "d":
                out.append(r"\p{Nd}")
            else:
                out.append(char + escaped)
            index += 2
            continue
        if char == "[" and not in_class:
            in_class = True
        elif char == "]" and in_class:
            in_class = False
        elif char == "$" and not in_class:
            char = r"(?:\n?$)"
        out.append(char)
        index += 1
    return "".join(out)


def _fields(table: str) -> list[dict[str, Any]]:
    fields: list[dict[str, Any]] = table_schema(table)["fields"]
    for field in fields:
        unknown = set(field.get("constraints", {})) - _CHECKED
        if unknown or field.get("format", "default") != "default":
            raise VerificationError(
                f"{table}.{field['name']}: the release's verification does not check "
                f"{sorted(unknown) or field.get('format')}"
            )
    return fields


def _typed(kind: str, cell: str) -> tuple[str, str]:
    """SQL that is true when the text ``cell`` (not NULL) reads as ``kind``, and SQL for
    its value (for bounds)."""
    if kind == "string":
        return "true", cell
    if kind == "integer":
        value = f"TRY_CAST(replace({cell}, '_', '') AS HUGEINT)"
        return f"regexp_full_match({cell}, {literal(INTEGER)})", value
    if kind == "year":
        value = f"TRY_CAST({cell} AS INTEGER)"
        return f"(length({cell}) = 4 AND {value} BETWEEN 0 AND 9999)", value
    if kind == "number":
        value = f"TRY_CAST(replace({cell}, '_', '') AS DOUBLE)"
        return f"regexp_full_match({cell}, {literal(NUMBER)})", value
    if kind == "boolean":
        values = ", ".join(literal(v) for v in (*TRUE_VALUES, *FALSE_VALUES))
        return f"list_contains([{values}], {cell})", cell
    if kind == "date":
        year, month, day = (
            f"regexp_extract({cell}, {literal('^' + DATE + '$')}, {i})" for i in (1, 2, 3)
        )
        numbers = ", ".join(f"TRY_CAST(trim({part}) AS INTEGER)" for part in (month, day))
        text = f"printf('%s-%02d-%02d', {year}, {numbers})"
        valid = (
            f"(regexp_full_match({cell}, {literal(DATE)}) AND {year} <> '0000' "
            f"AND TRY_CAST({text} AS DATE) IS NOT NULL)"
        )
        # The dates a release writes are YYYY-MM-DD: for those the same test is a cast
        # (the three extracts and the printf cost a second a column per million cells).
        canonical = f"regexp_full_match({cell}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}')"
        fast = f"(left({cell}, 4) <> '0000' AND TRY_CAST({cell} AS DATE) IS NOT NULL)"
        return f"CASE WHEN {canonical} THEN {fast} ELSE {valid} END", cell
    if kind == "datetime":
        iso = f"substr({cell}, 1, 10) || 'T' || substr({cell}, 12)"
        valid = (
            f"(regexp_full_match({cell}, {literal(DATETIME)}) "
            f"AND TRY_CAST(replace({iso}, ',', '.') AS TIMESTAMPTZ) IS NOT NULL)"
        )
        return valid, cell
    raise VerificationError(f"the release's verification does not read the type {kind!r}")


class _Format:
    """How one format's file is read: its relation, each field's value, its row numbers."""

    def __init__(self, table: str, path: Path, name: str, is_csv: bool) -> None:
        self.table = table
        self.path = path
        self.name = name
        self.is_csv = is_csv
        self.fields = _fields(table)
        self.kinds = {f["name"]: f["type"] for f in self.fields}

    @classmethod
    def of(cls, written: WrittenTable, is_csv: bool) -> _Format:
        if is_csv:
            return cls(written.table, written.csv, written.csv_name, True)
        return cls(written.table, written.parquet, written.parquet_name, False)

    def relation(self, numbered: bool = False) -> str:
        """The file's rows (``__rownum``: as Frictionless counts rows, when ``numbered``)."""
        if not self.is_csv:
            source = f"read_parquet({literal(str(self.path))}, file_row_number = true)"
            return f"(SELECT *, file_row_number + 1 AS __rownum FROM {source})"
        columns = ", ".join(f"{literal(f['name'])}: 'VARCHAR'" for f in self.fields)
        source = (
            f"read_csv({literal(str(self.path))}, header = true, auto_detect = false, "
            f"delim = ',', quote = '\"', escape = '\"', strict_mode = true, "
            f"columns = {{{columns}}})"
        )
        if not numbered:
            return f"(SELECT * FROM {source})"
        return f"(SELECT *, row_number() OVER () + 1 AS __rownum FROM {source})"

    def value(self, name: str) -> str:
        """SQL for the field's value, NULL when the cell is empty (Frictionless' None)."""
        column = quote(name)
        kind = self.kinds[name]
        if self.is_csv or kind == "string":
            return f"NULLIF({column}, '')"
        if kind == "number":
            return f"CASE WHEN isnan({column}) THEN NULL ELSE {column} END"
        return column

    def checks(self) -> list[_Check]:
        """Every row-level check of the file, field by field (constraints only where the
        cell reads as its type, as Frictionless)."""
        checks: list[_Check] = []
        for field in self.fields:
            name, kind = field["name"], field["type"]
            value = self.value(name)
            constraints = field.get("constraints", {})
            if constraints.get("required"):
                checks.append(
                    _Check(name, "constraint-error", f"{value} IS NULL", 'constraint "required"')
                )
            valid, typed = _typed(kind, value) if self.is_csv else ("true", value)
            present = f"{value} IS NOT NULL AND {valid}"
            if valid != "true":
                note = f'type is "{kind}/default"'
                checks.append(
                    _Check(name, "type-error", f"({value} IS NOT NULL AND NOT {valid})", note)
                )
            for constraint, failing in _constraints(kind, typed, constraints):
                note = f'constraint "{constraint}" is "{constraints[constraint]}"'
                checks.append(_Check(name, "constraint-error", f"({present} AND {failing})", note))
        return checks


def _constraints(
    kind: str, typed: str, constraints: Mapping[str, Any]
) -> Iterator[tuple[str, str]]:
    """(constraint, SQL true when a present, well-typed value breaks it)."""
    if "pattern" in constraints:
        pattern = literal(python_pattern(constraints["pattern"]))
        yield "pattern", f"NOT regexp_matches({typed}, {pattern})"
    if "enum" in constraints:
        if kind != "string":
            raise VerificationError("the release's verification checks enum on text only")
        values = ", ".join(literal(str(v)) for v in constraints["enum"])
        # list_contains, not IN: DuckDB plans an IN list of five or more values as a join
        yield "enum", f"NOT list_contains([{values}], {typed})"
    nan = f" OR isnan({typed})" if kind == "number" else ""
    for constraint, operator in (("minimum", ">="), ("maximum", "<=")):
        if constraint in constraints:
            bound = float(constraints[constraint])
            yield constraint, f"coalesce(NOT ({typed} {operator} {bound!r}){nan}, true)"


def verify_tables(
    con: duckdb.DuckDBPyConnection, written: Mapping[str, WrittenTable]
) -> list[Problem]:
    """Every problem of every table's CSV and Parquet file (at most :data:`MAX_PROBLEMS`
    listed per check and file); an empty list when the release may be published."""
    problems: list[Problem] = []
    for table in sorted(written):
        for is_csv in (True, False):
            files = {name: _Format.of(other, is_csv) for name, other in written.items()}
            problems += _FileCheck(con, files[table], written[table].rows, files).run()
    return problems


class _FileCheck:
    """The checks of one file: an aggregate pass, and where it finds problems, their rows."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        file: _Format,
        rows: int,
        parents: Mapping[str, _Format],
    ) -> None:
        self.con = con
        self.file = file
        self.rows = rows
        self.parents = parents
        self.key = _primary_key(file.table)

    def problem(
        self, kind: str, note: str, row: int | None = None, field: str | None = None
    ) -> Problem:
        return Problem(self.file.name, kind, note, row, field)

    def run(self) -> list[Problem]:
        structure = self._structure()
        if structure is not None:
            return [structure]
        checks = self.file.checks()
        if self.key:
            empty = " AND ".join(f"{self.file.value(k)} IS NULL" for k in self.key)
            note = f'{", ".join(self.key)}: cells composing the primary keys are all "None"'
            checks.append(_Check(None, "primary-key", f"({empty})", note))
        counts = ", ".join(f"count(*) FILTER (WHERE {c.failing})" for c in checks)
        try:
            found = self.con.execute(
                f"SELECT count(*){', ' if checks else ''}{counts} FROM {self.file.relation()}"
            ).fetchone()
        except duckdb.Error as exc:
            return [self.problem("source-error", _duckdb_reason(exc))]
        assert found is not None
        problems: list[Problem] = []
        if found[0] != self.rows:
            problems.append(
                self.problem(
                    "row-count", f"{found[0]:,} rows where the release lists {self.rows:,}"
                )
            )
        failed = [c for c, n in zip(checks, found[1:], strict=True) if n]
        try:
            if failed:
                problems += self._failing_rows(failed)
            if self.key:
                problems += self._duplicate_keys()
            for foreign_key in table_schema(self.file.table).get("foreignKeys") or []:
                problems += self._missing_references(foreign_key)
        except duckdb.Error as exc:  # a referenced file that cannot be read
            problems.append(self.problem("source-error", _duckdb_reason(exc)))
        return problems

    def _keyed(
        self, fields: Sequence[str], file: _Format | None = None, numbered: bool = False
    ) -> str:
        """The file's rows as ``__k0, __k1...`` (the fields' values) and ``__rownum``, without
        the rows whose fields are all empty."""
        file = file or self.file
        named = ", ".join(f"{file.value(f)} AS __k{i}" for i, f in enumerate(fields))
        some = " OR ".join(f"__k{i} IS NOT NULL" for i in range(len(fields)))
        rownum = "__rownum, " if numbered else ""
        return (
            f"(SELECT * FROM (SELECT {rownum}{named} FROM {file.relation(numbered)}) WHERE {some})"
        )

    def _structure(self) -> Problem | None:
        """The CSV header, or the Parquet file's columns and types, against the schema."""
        expected = [f["name"] for f in self.file.fields]
        if self.file.is_csv:
            try:
                with self.file.path.open(newline="", encoding="utf-8") as stream:
                    labels = next(csv.reader(stream), [])
            except (UnicodeDecodeError, csv.Error) as exc:
                return self.problem("source-error", f"the header cannot be read: {exc}", 1)
            if labels != expected:
                return self.problem("incorrect-label", _labels_note(labels, expected), 1)
            return None
        try:
            schema = pq.read_schema(self.file.path)
        except (OSError, pa.ArrowException) as exc:
            return self.problem("source-error", f"not a readable Parquet file: {exc}")
        wanted = arrow_schema(self.file.table)
        if schema.names != wanted.names:
            return self.problem(
                "incorrect-label",
                f"the columns are {schema.names} where the schema says {wanted.names}",
            )
        for got, want in zip(schema, wanted, strict=True):
            if got.type != want.type:
                return self.problem(
                    "type-error",
                    f"the column's type is {got.type}, not {want.type}",
                    field=got.name,
                )
        return None

    def _failing_rows(self, failed: Sequence[_Check]) -> list[Problem]:
        """The first rows, in file order, that fail the row-level checks, each with its cell."""
        flags = ", ".join(f"coalesce({c.failing}, false) AS __f{i}" for i, c in enumerate(failed))
        cells = ", ".join(
            f"NULL AS __v{i}" if c.field is None else f"{quote(c.field)} AS __v{i}"
            for i, c in enumerate(failed)
        )
        any_failing = " OR ".join(f"({c.failing})" for c in failed)
        with in_file_order(self.con):
            rows = self.con.execute(
                f"SELECT __rownum, {flags}, {cells} FROM {self.file.relation(numbered=True)} "
                f"WHERE {any_failing} ORDER BY __rownum LIMIT {MAX_PROBLEMS}"
            ).fetchall()
        problems = []
        for row in rows:
            for i, check in enumerate(failed):
                if row[1 + i]:
                    cell = row[1 + len(failed) + i]
                    shown = "" if cell is None else f"{_shown(cell)}: "
                    problems.append(
                        self.problem(check.kind, shown + check.note, row[0], check.field)
                    )
        return problems[:MAX_PROBLEMS]

    def _duplicate_keys(self) -> list[Problem]:
        """Rows whose primary key an earlier row has (Frictionless' ``primary-key``)."""
        keys = ", ".join(f"__k{i}" for i in range(len(self.key)))
        found = self.con.execute(
            f"SELECT count(*) FROM (SELECT {keys} FROM {self._keyed(self.key)} GROUP BY {keys} "
            "HAVING count(*) > 1)"
        ).fetchone()
        if not found or not found[0]:
            return []
        same = " AND ".join(f"r.__k{i} IS NOT DISTINCT FROM d.__k{i}" for i in range(len(self.key)))
        selected = ", ".join(f"r.__k{i}" for i in range(len(self.key)))
        with in_file_order(self.con):
            rows = self.con.execute(
                f"WITH r AS {self._keyed(self.key, numbered=True)}, "
                f"d AS (SELECT {keys}, min(__rownum) AS __first FROM r GROUP BY {keys} "
                f"HAVING count(*) > 1) "
                f"SELECT r.__rownum, d.__first, {selected} "
                f"FROM r JOIN d ON {same} WHERE r.__rownum > d.__first ORDER BY r.__rownum "
                f"LIMIT {MAX_PROBLEMS}"
            ).fetchall()
        return [
            self.problem(
                "primary-key",
                f"{', '.join(self.key)} {_shown(_joined(row[2:]))}: the same as in the row at "
                f"position {row[1]:,}",
                row[0],
            )
            for row in rows
        ]

    def _missing_references(self, foreign_key: Mapping[str, Any]) -> list[Problem]:
        """Rows whose foreign key's values the referenced table does not hold."""
        fields = _as_list(foreign_key["fields"])
        parent = foreign_key["reference"]["resource"] or self.file.table
        parent_fields = _as_list(foreign_key["reference"]["fields"])
        where = ", ".join(fields)
        if parent not in self.parents:
            return [
                self.problem(
                    "foreign-key",
                    f"the foreign key ({where}) refers to the table {parent}, which this "
                    "release does not hold",
                )
            ]
        lookup = self._keyed(parent_fields, self.parents[parent])
        same = " AND ".join(f"c.__k{i} IS NOT DISTINCT FROM p.__k{i}" for i in range(len(fields)))
        missing = f"NOT EXISTS (SELECT 1 FROM {lookup} p WHERE {same})"
        found = self.con.execute(
            f"SELECT count(*) FROM {self._keyed(fields)} c WHERE {missing}"
        ).fetchone()
        if not found or not found[0]:
            return []
        with in_file_order(self.con):
            rows = self.con.execute(
                f"SELECT c.* FROM {self._keyed(fields, numbered=True)} c WHERE {missing} "
                f"ORDER BY c.__rownum LIMIT {MAX_PROBLEMS}"
            ).fetchall()
        target = ", ".join(parent_fields)
        return [
            self.problem(
                "foreign-key",
                f"{where} {_shown(_joined(row[1:]))}: not found in {parent} ({target})",
                row[0],
            )
            for row in rows
        ]


def _labels_note(labels: Sequence[str], expected: Sequence[str]) -> str:
    for index, (label, wanted) in enumerate(zip(labels, expected, strict=False)):
        if label != wanted:
            return f"label {index + 1} is {_shown(label)} where the schema says {_shown(wanted)}"
    return f"{len(labels)} labels where the schema has {len(expected)}"


def _primary_key(table: str) -> list[str]:
    return _as_list(table_schema(table).get("primaryKey") or [])


def _as_list(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _joined(values: Sequence[Any]) -> str:
    return " / ".join("" if v is None else str(v) for v in values)


def _shown(value: Any) -> str:
    """A cell as a message shows it: quoted, cut to 60 characters."""
    text = str(value)
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _duckdb_reason(exc: duckdb.Error) -> str:
    """DuckDB's reason for not reading a file: its first lines, without the offending line
    itself (data), the list of fixes and the reader's options."""
    kept: list[str] = []
    lines = iter(line.strip() for line in str(exc).splitlines())
    for line in lines:
        if line.startswith(("Possible", "file =")):
            break
        if line.startswith("Original Line"):
            if line.rstrip(":").strip() == "Original Line":
                next(lines, None)  # the line itself follows
            continue
        if line:
            kept.append(line)
    return "cannot be read: " + "; ".join(kept)


def read_back(
    con: duckdb.DuckDBPyConnection,
    target: Target,
    prefix: str,
    entry: Mapping[str, Any],
    written: Mapping[str, TableFiles],
    scratch: Path,
) -> list[Problem]:
    """Every file of the release as the target holds it: its size and sha256 against the
    catalogue entry, every CSV file's UTF-8, ``datapackage.json`` against the Data Package
    profile (Frictionless) and every data file against its Table Schema
    (:func:`verify_tables`). Copies fetched into ``scratch`` (from a remote target) are
    removed, except the data files', which the caller's folder holds until the end."""
    problems: list[Problem] = []
    local: dict[str, Path] = {}
    descriptor: Any = None
    data_keys = {f.key for table in written.values() for f in (table.csv, table.parquet)}
    for path, expected in entry["files"].items():
        key = prefix + path
        copy = target.fetch(key, scratch)
        if copy is None:
            problems.append(Problem(key, "source-error", "not stored"))
            continue
        sha256, size, bad_text = _digest(copy, check_text=path.endswith(".csv"))
        if sha256 != expected["sha256"] or size != expected["bytes"]:
            note = f"{size:,} bytes with sha256 {sha256}: not what was written"
            problems.append(Problem(key, "hash-count", note))
        elif bad_text is not None:
            problems.append(Problem(key, "encoding-error", bad_text))
        elif path == "datapackage.json":
            descriptor = json.loads(copy.read_bytes())
        if path in data_keys:
            local[path] = copy
        elif copy.is_relative_to(scratch):
            copy.unlink()
    if problems:
        return problems
    report = frictionless.Package.validate_descriptor(descriptor)
    problems += [
        Problem(prefix + "datapackage.json", error.type, error.message) for error in report.errors
    ]
    tables = {
        table: WrittenTable(
            table,
            local[files.csv.key],
            local[files.parquet.key],
            files.rows,
            prefix + files.csv.key,
            prefix + files.parquet.key,
        )
        for table, files in written.items()
    }
    return problems + verify_tables(con, tables)


def _digest(path: Path, check_text: bool) -> tuple[str, int, str | None]:
    """A file's sha256 and size, and (``check_text``) where it stops being UTF-8."""
    digest = hashlib.sha256()
    size = 0
    line = 1
    decoder = codecs.getincrementaldecoder("utf-8")()
    bad: str | None = None
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
            if check_text and bad is None:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    line += chunk[: max(exc.start, 0)].count(b"\n")
                    bad = f"line {line:,}: not UTF-8 ({exc.reason})"
                else:
                    line += chunk.count(b"\n")
    if check_text and bad is None:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            bad = f"ends inside a character: not UTF-8 ({exc.reason})"
    return digest.hexdigest(), size, bad
