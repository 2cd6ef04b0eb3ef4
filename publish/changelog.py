"""What changed between two releases: rows per table by primary key, and headline figures."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from assets.harmonise.schema import field_types, table_schema
from publish.files import column_cells

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


def _rows(table: str, frame: pd.DataFrame) -> list[tuple[str, ...]]:
    types = field_types(table)
    columns = [column_cells(kind, frame[name]) for name, kind in types.items()]
    return list(zip(*columns, strict=True)) if columns and len(frame) else []


def compare_table(table: str, old: pd.DataFrame | None, new: pd.DataFrame) -> TableChange:
    """Rows added, removed and changed; by primary key where the table has one."""
    change = TableChange(table)
    old_rows = _rows(table, old) if old is not None else []
    new_rows = _rows(table, new)
    names = list(field_types(table))
    key = table_schema(table).get("primaryKey") or []
    key = [key] if isinstance(key, str) else list(key)
    if key:
        positions = [names.index(k) for k in key]

        def keyed(rows: list[tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
            return {" / ".join(r[p] for p in positions): r for r in rows}

        before, after = keyed(old_rows), keyed(new_rows)
        content = [i for i, n in enumerate(names) if n not in PROVENANCE]
        added = sorted(set(after) - set(before))
        removed = sorted(set(before) - set(after))
        differ = [k for k in set(after) & set(before) if after[k] != before[k]]
        changed = sorted(
            k for k in differ if [after[k][i] for i in content] != [before[k][i] for i in content]
        )
        change.added, change.removed, change.changed = len(added), len(removed), len(changed)
        change.resourced = len(differ) - len(changed)
        for kind, keys in (("added", added), ("removed", removed), ("changed", changed)):
            if keys:
                change.examples[kind] = keys[:MAX_KEYS]
    else:
        before_count, after_count = Counter(old_rows), Counter(new_rows)
        change.added = sum((after_count - before_count).values())
        change.removed = sum((before_count - after_count).values())
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
