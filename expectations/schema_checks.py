"""Conformance of harmonised tables to their Table Schemas (schema/), row by row, in SQL.

What the schema already says — required fields, codes (enum), patterns,
ranges, unique primary keys and foreign keys — is checked here for every
table, with the failing rows kept as examples, so a table that breaks the
contract is caught before anyone publishes it. (Domain rules and the Great
Expectations suites build on this.)

The tables are views of a DuckDB connection with their row numbers
(:func:`assets.warehouse.attach_tables` with ``row_numbers``, or
:func:`assets.warehouse.register_frames`): a failing row is reported by its
0-based position in the table as written. One scan per table counts every
rule; the first failing rows of a rule are read only when it fails.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import duckdb

from assets.harmonise.schema import table_schema
from assets.warehouse import ROW, literal, quote

#: Examples kept per rule and field: enough to find the rows, small enough for metadata.
MAX_EXAMPLES = 5


@dataclass(frozen=True)
class Violation:
    """One broken constraint: which table, rule, field and row (0-based), and the value."""

    table: str
    rule: str
    field: str
    row: int | None
    value: str | None
    message: str


@dataclass
class TableReport:
    """The outcome of checking one table: counts per rule and the first examples."""

    table: str
    n_rows: int
    counts: Counter[str] = field(default_factory=Counter)
    examples: list[Violation] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.counts

    def add(
        self,
        rule: str,
        fieldname: str,
        count: int,
        examples: Iterable[tuple[int | None, str | None]],
        message: str,
    ) -> None:
        """Record ``count`` failing rows of one rule on one field, with the first
        ``(row, value)`` of them."""
        if not count:
            return
        self.counts[f"{rule}:{fieldname}"] += count
        for row, value in list(examples)[:MAX_EXAMPLES]:
            self.examples.append(Violation(self.table, rule, fieldname, row, value, message))

    def summary(self) -> dict[str, Any]:
        return {
            "rows": self.n_rows,
            "violations": sum(self.counts.values()),
            "by_rule": dict(sorted(self.counts.items())),
        }


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """The columns of the view ``table`` (without its row number)."""
    return [name for name in con.sql(f"SELECT * FROM {quote(table)}").columns if name != ROW]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _key_text(values: Iterable[Any]) -> str:
    return "|".join("" if value is None else str(value) for value in values)


def re2_pattern(pattern: str) -> str:
    """A Table Schema pattern (Python ``re`` semantics, matched whole) for DuckDB's RE2:
    ``\\d`` is any Unicode decimal digit in Python, ASCII only in RE2."""
    return re.sub(r"(?<!\\)((?:\\\\)*)\\d", r"\1\\p{Nd}", pattern)


@dataclass(frozen=True)
class _Rule:
    rule: str
    field: str
    failing: str  # SQL condition on the failing rows
    message: str


def _rules(table: str, columns: set[str]) -> list[_Rule]:
    rules = []
    for spec in table_schema(table)["fields"]:
        name = spec["name"]
        if name not in columns:
            continue
        column = quote(name)
        constraints = spec.get("constraints", {})
        if constraints.get("required"):
            rules.append(_Rule("required", name, f"{column} IS NULL", f"{name} is required"))
        if "enum" in constraints:
            allowed = sorted(constraints["enum"])
            values = ", ".join(literal(str(value)) for value in constraints["enum"])
            rules.append(
                _Rule(
                    "enum",
                    name,
                    f"{column} IS NOT NULL AND CAST({column} AS VARCHAR) NOT IN ({values})",
                    f"{name} must be one of {allowed}",
                )
            )
        if "pattern" in constraints:
            pattern = literal(re2_pattern(constraints["pattern"]))
            rules.append(
                _Rule(
                    "pattern",
                    name,
                    f"{column} IS NOT NULL AND "
                    f"NOT regexp_full_match(CAST({column} AS VARCHAR), {pattern})",
                    f"{name} must match {constraints['pattern']}",
                )
            )
        for bound, compare in (("minimum", "<"), ("maximum", ">")):
            if bound in constraints and spec["type"] in {"number", "integer"}:
                limit = constraints[bound]
                rules.append(
                    _Rule(
                        bound,
                        name,
                        f"TRY_CAST({column} AS DOUBLE) {compare} {float(limit)!r}",
                        f"{name} must be {'>=' if bound == 'minimum' else '<='} {limit}",
                    )
                )
    return rules


def _fields(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def check_table(con: duckdb.DuckDBPyConnection, table: str) -> TableReport:
    """Check the view ``table`` of ``con`` against schema/<table>.json."""
    schema = table_schema(table)
    relation = quote(table)
    columns = set(table_columns(con, table))
    (n_rows,) = con.execute(f"SELECT count(*) FROM {relation}").fetchone() or (0,)
    report = TableReport(table, int(n_rows))
    for spec in schema["fields"]:
        name = spec["name"]
        if name not in columns:
            message = f"column {name} of schema/{table}.json is missing"
            report.add("missing_column", name, 1, [(None, None)], message)
    if not n_rows:
        return report
    rules = _rules(table, columns)
    if rules:
        counts = con.execute(
            "SELECT "
            + ", ".join(f"count(*) FILTER (WHERE {rule.failing})" for rule in rules)
            + f" FROM {relation}"
        ).fetchone() or (0,) * len(rules)
        for rule, count in zip(rules, counts, strict=True):
            examples = (
                con.execute(
                    f"SELECT {ROW}, {quote(rule.field)} FROM {relation} WHERE {rule.failing} "
                    f"ORDER BY {ROW} LIMIT {MAX_EXAMPLES}"
                ).fetchall()
                if count
                else []
            )
            report.add(
                rule.rule,
                rule.field,
                int(count),
                [(int(row), _text(value)) for row, value in examples],
                rule.message,
            )
    key = schema.get("primaryKey")
    if key:
        fields = _fields(key)
        if all(f in columns for f in fields):
            keys = ", ".join(quote(f) for f in fields)
            duplicates = (
                f"SELECT {ROW}, {keys} FROM {relation} "
                f"QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY {ROW}) > 1"
            )
            report.add(
                "primary_key",
                ",".join(fields),
                _count(con, duplicates),
                _examples(con, duplicates),
                f"primary key ({', '.join(fields)}) must be unique",
            )
    return report


def _count(con: duckdb.DuckDBPyConnection, query: str) -> int:
    (count,) = con.execute(f"SELECT count(*) FROM ({query})").fetchone() or (0,)
    return int(count)


def _examples(con: duckdb.DuckDBPyConnection, query: str) -> list[tuple[int | None, str | None]]:
    """The first failing rows of ``query`` (the row number, then the key fields)."""
    rows = con.execute(f"SELECT * FROM ({query}) ORDER BY {ROW} LIMIT {MAX_EXAMPLES}").fetchall()
    return [(int(row[0]), _key_text(row[1:])) for row in rows]


def check_foreign_keys(
    con: duckdb.DuckDBPyConnection, tables: Iterable[str]
) -> dict[str, TableReport]:
    """Foreign keys between the views ``tables`` of ``con`` (references to tables not
    among them are skipped)."""
    given = list(tables)
    reports: dict[str, TableReport] = {}
    for table in given:
        relation = quote(table)
        (n_rows,) = con.execute(f"SELECT count(*) FROM {relation}").fetchone() or (0,)
        report = TableReport(table, int(n_rows))
        columns = set(table_columns(con, table))
        for foreign in table_schema(table).get("foreignKeys", []):
            fields = _fields(foreign["fields"])
            target = foreign["reference"]["resource"]
            target_fields = _fields(foreign["reference"]["fields"])
            if target not in given or not n_rows or not set(fields) <= columns:
                continue
            keys = ", ".join(f"x.{quote(f)}" for f in fields)
            present = " AND ".join(f"x.{quote(f)} IS NOT NULL" for f in fields)
            match = " AND ".join(
                f"y.{quote(t)} = x.{quote(f)}" for f, t in zip(fields, target_fields, strict=True)
            )
            missing = (
                f"SELECT x.{ROW}, {keys} FROM {relation} AS x WHERE {present} AND NOT EXISTS "
                f"(SELECT 1 FROM {quote(target)} AS y WHERE {match})"
            )
            report.add(
                "foreign_key",
                ",".join(fields),
                _count(con, missing),
                _examples(con, missing),
                f"({', '.join(fields)}) must exist in {target}",
            )
        reports[table] = report
    return reports
