"""What changed between two releases: rows per table by primary key, and headline figures.

The rows are compared in SQL (DuckDB), as the CSV files show them: a table with
a primary key is joined with the previous release's on the key's text (the key
cells joined by `` / ``), one without is compared as a multiset of rows. Two
rows are the same when every cell's CSV text is: texts are compared as
written (``'=x`` for ``=x``), other values by value (a CSV cell is a value's
only spelling, except that ``-0.0`` is written ``0`` and NaN as nothing).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import duckdb

from assets.harmonise.schema import field_types
from assets.warehouse import quote
from publish.files import cell_sql, parquet_relation, primary_key

#: Example keys listed per table and kind of change.
MAX_KEYS = 10
#: Fields that say where a row came from; a row whose other fields are equal is
#: "re-sourced" (e.g. its file was republished with other edits), not changed.
PROVENANCE = frozenset({"source", "source_file", "source_sha256", "source_ref"})


@dataclass
class TableChange:
    table: str
    added: int = 0
    removed: int = 0
    changed: int = 0
    resourced: int = 0
    examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def any(self) -> bool:
        return bool(self.added or self.removed or self.changed)


def _value(kind: str, column: str) -> str:
    """SQL for what a cell is compared by: its CSV text for text (NULL as empty), else its
    value as the CSV spells it (NaN as NULL, -0.0 as 0.0)."""
    if kind == "string":
        return f"coalesce({cell_sql(kind, column)}, '')"
    if kind == "number":
        c = quote(column)
        return f"CASE WHEN isnan({c}) THEN NULL ELSE {c} + 0.0 END"
    return quote(column)


def _rows(table: str, relation: str) -> str:
    """Each row of ``relation`` as its key text (``__key``, with a primary key) and the
    values it is compared by (``__v0``, ``__v1``...)."""
    types = field_types(table)
    columns = [f"{_value(kind, name)} AS __v{i}" for i, (name, kind) in enumerate(types.items())]
    key = primary_key(table)
    if key:
        text = " || ' / ' || ".join(f"coalesce({cell_sql(types[k], k)}, '')" for k in key)
        columns.insert(0, f"{text} AS __key")
    return f"(SELECT {', '.join(columns)} FROM {relation})"


def compare_table(
    con: duckdb.DuckDBPyConnection, table: str, old: str | None, new: str
) -> TableChange:
    """Rows added, removed and changed between two relations of ``table`` (``old`` None:
    the table is new); by primary key where the table has one (its keys are unique in a
    published release)."""
    change = TableChange(table)
    names = list(field_types(table))
    before = _rows(table, old if old is not None else parquet_relation(table, None))
    after = _rows(table, new)
    if not primary_key(table):
        values = ", ".join(f"__v{i}" for i in range(len(names)))
        found = con.execute(
            "SELECT coalesce(sum(greatest(n - o, 0)), 0), coalesce(sum(greatest(o - n, 0)), 0) "
            f"FROM (SELECT sum(o) AS o, sum(n) AS n FROM (SELECT {values}, 1 AS o, 0 AS n "
            f"FROM {before} UNION ALL SELECT {values}, 0, 1 FROM {after}) GROUP BY {values})"
        ).fetchone()
        assert found is not None
        change.added, change.removed = int(found[0]), int(found[1])
        return change

    def differ(indexes: list[int]) -> str:
        return " OR ".join(f"o.__v{i} IS DISTINCT FROM n.__v{i}" for i in indexes) or "false"

    both = "o.__key IS NOT NULL AND n.__key IS NOT NULL"
    changed = f"{both} AND ({differ([i for i, n in enumerate(names) if n not in PROVENANCE])})"
    resourced = f"{both} AND ({differ(list(range(len(names))))}) AND NOT ({changed})"
    found = con.execute(
        "SELECT count(*) FILTER (WHERE o.__key IS NULL), "
        "count(*) FILTER (WHERE n.__key IS NULL), "
        f"count(*) FILTER (WHERE {changed}), count(*) FILTER (WHERE {resourced}), "
        f"min(n.__key, {MAX_KEYS}) FILTER (WHERE o.__key IS NULL), "
        f"min(o.__key, {MAX_KEYS}) FILTER (WHERE n.__key IS NULL), "
        f"min(n.__key, {MAX_KEYS}) FILTER (WHERE {changed}) "
        f"FROM {before} o FULL OUTER JOIN {after} n ON o.__key = n.__key"
    ).fetchone()
    assert found is not None
    change.added, change.removed, change.changed, change.resourced = found[:4]
    for kind, keys in zip(("added", "removed", "changed"), found[4:], strict=True):
        if keys:
            change.examples[kind] = list(keys)
    return change


def _format(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 1 else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def render_changelog(
    version: str,
    previous_version: str | None,
    changes: list[TableChange],
    headline_before: Mapping[str, Any] | None,
    headline_after: Mapping[str, Any],
    schema_before: str | None,
    schema_after: str,
) -> str:
    """CHANGELOG.md of a release, against the previous one."""
    lines = [f"# Changes in release {version}", ""]
    if previous_version is None:
        lines += ["First release: every row is new.", ""]
    else:
        lines += [f"Compared with release {previous_version}.", ""]
    if schema_before and schema_before != schema_after:
        lines += [f"Schema version: {schema_before} → {schema_after}.", ""]
    lines += [
        "## Rows per table",
        "",
        "| table | added | removed | changed | re-sourced |",
        "|---|---:|---:|---:|---:|",
    ]
    for change in changes:
        lines.append(
            f"| {change.table} | {change.added:,} | {change.removed:,} | {change.changed:,} "
            f"| {change.resourced:,} |"
        )
    lines += [
        "",
        "Changed: a field other than the provenance fields differs. Re-sourced: only the "
        "provenance differs (the same row now comes from a new version of its source file).",
        "",
    ]
    details = [c for c in changes if c.examples]
    if details:
        lines += ["Rows are matched by primary key; the first keys of each kind:", ""]
        for change in details:
            for kind, keys in change.examples.items():
                shown = ", ".join(f"`{k}`" for k in keys)
                more = getattr(change, kind) - len(keys)
                lines.append(
                    f"- {change.table} {kind}: {shown}"
                    + (f" and {more:,} more" if more > 0 else "")
                )
        lines.append("")
    lines += ["## Headline figures", ""]
    moved = [
        (name, (headline_before or {}).get(name), value)
        for name, value in headline_after.items()
        if headline_before is None or headline_before.get(name) != value
    ]
    if headline_before is not None and not moved:
        lines.append("No headline figure moved.")
    else:
        lines += ["| figure | before | after |", "|---|---:|---:|"]
        for name, before, after in moved:
            lines.append(f"| {name} | {_format(before)} | {_format(after)} |")
    lines.append("")
    return "\n".join(lines)
