"""Conformance of harmonised tables to their Table Schemas (schema/), row by row.

What the schema already says — required fields, codes (enum), patterns,
ranges, unique primary keys and foreign keys — is checked here for every
table, with the failing rows kept as examples, so a table that breaks the
contract is caught before anyone publishes it. (Domain rules and the Great
Expectations suites build on this.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from assets.harmonise.schema import table_schema

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
        self, rule: str, fieldname: str, rows: pd.Series, values: pd.Series, message: str
    ) -> None:
        """Record the failing rows (index ``rows``) of one rule on one field."""
        count = len(rows)
        if not count:
            return
        self.counts[f"{rule}:{fieldname}"] += count
        for row, value in list(zip(rows, values, strict=True))[:MAX_EXAMPLES]:
            self.examples.append(
                Violation(
                    self.table,
                    rule,
                    fieldname,
                    int(row),
                    None if _missing(value) else str(value),
                    message,
                )
            )

    def summary(self) -> dict[str, Any]:
        return {
            "rows": self.n_rows,
            "violations": sum(self.counts.values()),
            "by_rule": dict(sorted(self.counts.items())),
        }


def _missing(value: object) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def check_table(table: str, frame: pd.DataFrame) -> TableReport:
    """Check one table against schema/<table>.json."""
    schema = table_schema(table)
    report = TableReport(table, len(frame))
    missing_columns = [f["name"] for f in schema["fields"] if f["name"] not in frame.columns]
    for name in missing_columns:
        report.counts[f"missing_column:{name}"] += 1
        report.examples.append(
            Violation(
                table,
                "missing_column",
                name,
                None,
                None,
                f"column {name} of schema/{table}.json is missing",
            )
        )
    if frame.empty:
        return report
    index = pd.Series(range(len(frame)))
    for spec in schema["fields"]:
        name = spec["name"]
        if name not in frame.columns:
            continue
        column = frame[name].reset_index(drop=True)
        constraints = spec.get("constraints", {})
        present = ~column.isna()
        if constraints.get("required"):
            failing = ~present
            report.add("required", name, index[failing], column[failing], f"{name} is required")
        if "enum" in constraints:
            allowed = set(constraints["enum"])
            failing = present & ~column.astype("object").isin(allowed)
            report.add(
                "enum",
                name,
                index[failing],
                column[failing],
                f"{name} must be one of {sorted(allowed)}",
            )
        if "pattern" in constraints:
            failing = present & ~column.astype("string").fillna("").str.fullmatch(
                constraints["pattern"]
            ).fillna(False).astype(bool)
            report.add(
                "pattern",
                name,
                index[failing],
                column[failing],
                f"{name} must match {constraints['pattern']}",
            )
        for bound, compare in (("minimum", "lt"), ("maximum", "gt")):
            if bound in constraints and spec["type"] in {"number", "integer"}:
                limit = constraints[bound]
                numeric = pd.to_numeric(column, errors="coerce")
                failing = present & getattr(numeric, compare)(limit).fillna(False).astype(bool)
                report.add(
                    bound,
                    name,
                    index[failing],
                    column[failing],
                    f"{name} must be {'>=' if bound == 'minimum' else '<='} {limit}",
                )
    key = schema.get("primaryKey")
    if key:
        fields = [key] if isinstance(key, str) else list(key)
        if all(f in frame.columns for f in fields):
            keys = frame[fields].reset_index(drop=True)
            duplicated = keys.duplicated(keep="first")
            report.add(
                "primary_key",
                ",".join(fields),
                index[duplicated],
                keys[duplicated].astype("string").agg("|".join, axis=1),
                f"primary key ({', '.join(fields)}) must be unique",
            )
    return report


def check_foreign_keys(tables: Mapping[str, pd.DataFrame]) -> dict[str, TableReport]:
    """Foreign keys between the given tables (references to absent tables are skipped)."""
    reports: dict[str, TableReport] = {}
    for table, frame in tables.items():
        report = TableReport(table, len(frame))
        for foreign in table_schema(table).get("foreignKeys", []):
            fields = foreign["fields"]
            fields = [fields] if isinstance(fields, str) else list(fields)
            target = foreign["reference"]["resource"]
            target_fields = foreign["reference"]["fields"]
            target_fields = [target_fields] if isinstance(target_fields, str) else target_fields
            if target not in tables or frame.empty:
                continue
            keys = frame[fields].reset_index(drop=True)
            present = ~keys.isna().any(axis=1)
            known = set(tables[target][list(target_fields)].itertuples(index=False, name=None))
            found = pd.Series(
                [tuple(row) in known for row in keys.itertuples(index=False)], dtype=bool
            )
            failing = present & ~found
            index = pd.Series(range(len(frame)))
            report.add(
                "foreign_key",
                ",".join(fields),
                index[failing],
                keys[failing].astype("string").agg("|".join, axis=1),
                f"({', '.join(fields)}) must exist in {target}",
            )
        reports[table] = report
    return reports
