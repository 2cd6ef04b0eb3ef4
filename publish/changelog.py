"""What changed between two releases: rows per table by primary key, and headline figures.

The rows are compared in SQL (DuckDB), as the CSV files show them: a table with
a primary key is joined with the previous release's on the key's text (the key
cells joined by `` / ``), one without is compared as a multiset of rows. Two
rows are the same when every cell's CSV text is: texts are compared as
written (``'=x`` for ``=x``), other values by value (a CSV cell is a value's
only spelling, except that ``-0.0`` is written ``0`` and NaN as nothing).

For a table with a key, the first :data:`MAX_KEYS` keys added and removed are
named, and the first :data:`MAX_KEYS` changed rows with each field that changed,
its old and new CSV text (``title: Old title → New title``). The ``sources``
table also says which files the previous release used and this one does not:
rejected now (with the reason) or no longer among the inputs; and which files'
last good copy stood in (their fetch failed, or they are missing from their
source's listing), with why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import duckdb

from assets.harmonise.schema import field_types
from assets.warehouse import quote
from publish.files import cell_sql, parquet_relation, primary_key

#: Keys (and changed rows) listed per table and kind of change.
MAX_KEYS = 20
#: Characters of a changed cell's text shown in the CHANGELOG (longer ones are cut).
MAX_TEXT = 60
#: Fields that say where a row came from; a row whose other fields are equal is
#: "re-sourced" (e.g. its file was republished with other edits), not changed.
PROVENANCE = frozenset({"source", "source_file", "source_sha256", "source_ref"})


@dataclass(frozen=True)
class FieldEdit:
    """One changed cell: the field and its CSV text before and after (None: empty)."""

    name: str
    old: str | None
    new: str | None


@dataclass
class TableChange:
    table: str
    added: int = 0
    removed: int = 0
    changed: int = 0
    resourced: int = 0
    examples: dict[str, list[str]] = field(default_factory=dict)
    #: The first changed rows: key, then each changed field with its old and new CSV text.
    edits: list[tuple[str, list[FieldEdit]]] = field(default_factory=list)
    #: ``sources`` only: the files of the previous release not used now, with why.
    dropped: list[tuple[str, str]] = field(default_factory=list)
    dropped_total: int = 0
    #: ``sources`` only: the files whose last good copy stood in (``download`` = ``kept``:
    #: the fetch failed, or the file is missing from its source), with why.
    kept: list[tuple[str, str]] = field(default_factory=list)

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


def _rows(table: str, relation: str, texts: bool = False) -> str:
    """Each row of ``relation`` as its key text (``__key``, with a primary key) and the
    values it is compared by (``__v0``, ``__v1``...); with ``texts``, also each cell's CSV
    text (``__t0``, ``__t1``...)."""
    types = field_types(table)
    columns = [f"{_value(kind, name)} AS __v{i}" for i, (name, kind) in enumerate(types.items())]
    if texts:
        columns += [
            f"{cell_sql(kind, name)} AS __t{i}" for i, (name, kind) in enumerate(types.items())
        ]
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
    if change.examples.get("changed"):
        change.edits = _edits(con, table, old, new, change.examples["changed"])
    if table == "sources" and old is not None:
        change.dropped, change.dropped_total = _dropped_sources(con, old, new)
    if table == "sources":
        change.kept = [
            (str(name), str(reason or "no reason given"))
            for name, reason in con.execute(
                f"SELECT source_file, reason FROM {new} WHERE download = 'kept' "
                f"ORDER BY source_file LIMIT {MAX_KEYS}"
            ).fetchall()
        ]
    return change


def _edits(
    con: duckdb.DuckDBPyConnection, table: str, old: str | None, new: str, keys: list[str]
) -> list[tuple[str, list[FieldEdit]]]:
    """The rows of ``keys`` (changed rows), each with the fields other than provenance
    that differ and their CSV text before and after, in key order."""
    names = list(field_types(table))
    fields = [i for i, name in enumerate(names) if name not in PROVENANCE]
    wanted = "__key IN (SELECT unnest($keys))"
    before = _rows(table, old if old is not None else parquet_relation(table, None), texts=True)
    after = _rows(table, new, texts=True)
    cells = ", ".join(f"o.__v{i} IS DISTINCT FROM n.__v{i}, o.__t{i}, n.__t{i}" for i in fields)
    found = con.execute(
        f"SELECT o.__key, {cells} FROM (SELECT * FROM {before} WHERE {wanted}) o "
        f"JOIN (SELECT * FROM {after} WHERE {wanted}) n ON o.__key = n.__key ORDER BY o.__key",
        {"keys": keys},
    ).fetchall()
    edits = []
    for row in found:
        cells_of = [row[1 + 3 * j : 4 + 3 * j] for j in range(len(fields))]
        edits.append(
            (
                row[0],
                [
                    FieldEdit(names[i], before_text, after_text)
                    for i, (differs, before_text, after_text) in zip(fields, cells_of, strict=True)
                    if differs
                ],
            )
        )
    return edits


def _dropped_sources(
    con: duckdb.DuckDBPyConnection, old: str, new: str
) -> tuple[list[tuple[str, str]], int]:
    """The first :data:`MAX_KEYS` files (by name) the previous release used and this one
    does not, each with why (rejected now, with the reason, or no longer among the
    inputs), and how many there are."""
    found = con.execute(
        f"""
        SELECT o.source_file,
            CASE WHEN n.source_file IS NOT NULL THEN 'rejected: '
                    || coalesce(nullif(n.reason, ''), 'no reason given')
                WHEN o.source = 'iati' THEN 'no longer in the IATI feed'
                ELSE 'no longer among the submitted files' END,
            count(*) OVER ()
        FROM {old} o LEFT JOIN {new} n ON n.source_file = o.source_file
        WHERE o.status IS DISTINCT FROM 'rejected'
            AND (n.source_file IS NULL OR n.status = 'rejected')
        ORDER BY o.source_file
        LIMIT {MAX_KEYS}
        """
    ).fetchall()
    return [(name, why) for name, why, _ in found], (found[0][2] if found else 0)


def _shorten(text: str | None) -> str:
    """A cell's text on one line, cut to :data:`MAX_TEXT` characters; ``(empty)`` for none."""
    line = " ".join((text or "").split())
    if not line:
        return "(empty)"
    return line if len(line) <= MAX_TEXT else line[: MAX_TEXT - 1] + "…"


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
        lines += [
            f"Rows are matched by primary key; the first {MAX_KEYS} of each kind, a changed "
            "row with each field that changed (`field: before → after`):",
            "",
        ]
        for change in details:
            for kind, keys in change.examples.items():
                more = getattr(change, kind) - len(keys)
                if kind == "changed" and change.edits:
                    lines += [
                        f"- {change.table} changed: `{key}` "
                        + "; ".join(
                            f"{e.name}: {_shorten(e.old)} → {_shorten(e.new)}" for e in edits
                        )
                        for key, edits in change.edits
                    ]
                    if more > 0:
                        lines.append(f"- {change.table} changed: and {more:,} more")
                    continue
                shown = ", ".join(f"`{k}`" for k in keys)
                lines.append(
                    f"- {change.table} {kind}: {shown}"
                    + (f" and {more:,} more" if more > 0 else "")
                )
        lines.append("")
    dropped = [c for c in changes if c.dropped]
    if dropped:
        lines += ["## Sources no longer used", ""]
        for change in dropped:
            lines += [f"- `{name}`: {why}" for name, why in change.dropped]
            more = change.dropped_total - len(change.dropped)
            if more > 0:
                lines.append(f"- and {more:,} more")
        lines.append("")
    kept = [item for c in changes for item in c.kept]
    if kept:
        lines += ["## Sources whose last good copy stood in", ""]
        lines += [f"- `{name}`: {why}" for name, why in kept]
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
