"""The CHANGELOG's row counts, computed in SQL: rows matched by primary key (or as a
multiset), compared as the CSV files show them, with the first keys of each kind."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from assets.harmonise.schema import table_frame
from assets.harmonise.store import write_table
from assets.warehouse import set_up
from publish import files
from publish.changelog import TableChange, compare_table, render_changelog
from tests.unit.test_release import demo_tables


def compare(table: str, old: pd.DataFrame | None, new: pd.DataFrame, folder: Path) -> TableChange:
    with duckdb.connect() as con:
        set_up(con)
        files.prepare(con)
        before = (
            files.parquet_relation(table, write_table(table, old, folder / "old.parquet"))
            if old is not None
            else None
        )
        after = files.parquet_relation(table, write_table(table, new, folder / "new.parquet"))
        return compare_table(con, table, before, after)


def test_rows_added_removed_changed_and_resourced_by_key(tmp_path: Path) -> None:
    old = demo_tables()["transactions"]
    new = old.copy()
    ids = sorted(old["transaction_id"])
    new = new[~new["transaction_id"].isin(ids[:3])]  # removed
    new.loc[new["transaction_id"] == ids[10], "value"] = 1.5  # changed
    new.loc[new["transaction_id"] == ids[11], "source_ref"] = "/moved"  # re-sourced
    added = new.iloc[:2].assign(transaction_id=["=new-1", "new-2"])
    new = pd.concat([new, added], ignore_index=True)
    change = compare("transactions", old, new, tmp_path)
    assert (change.added, change.removed, change.changed, change.resourced) == (2, 3, 1, 1)
    # keys as the CSV shows them (formula-safe) and sorted as text
    assert change.examples == {
        "added": ["'=new-1", "new-2"],
        "removed": ids[:3],
        "changed": [ids[10]],
    }


def test_only_what_the_csv_shows_counts(tmp_path: Path) -> None:
    rows = [
        {"budget_id": "a", "activity_id": "x", "value": 0.0, "currency": "=USD"},
        {"budget_id": "b", "activity_id": "x", "value": float("nan"), "currency": ""},
        {"budget_id": "c", "activity_id": "x", "value": 2.0, "currency": "EUR"},
    ]
    old = table_frame("budgets", rows)
    same = table_frame(
        "budgets",
        [
            # -0.0 is written 0, an empty text as nothing, "=USD" as "'=USD"
            {**rows[0], "value": -0.0, "currency": "'=USD"},
            {**rows[1], "value": None, "currency": None},
            {**rows[2], "value": 2.0000000000000004},
        ],
    )
    change = compare("budgets", old, same, tmp_path)
    assert (change.added, change.removed, change.changed, change.resourced) == (0, 0, 1, 0)
    assert change.examples == {"changed": ["c"]}


def test_tables_without_a_key_are_compared_as_multisets(tmp_path: Path) -> None:
    old = demo_tables()["conformance"]
    assert len(old) > 6 and not old.duplicated().any()
    twice = pd.concat([old, old.iloc[:3]], ignore_index=True)  # three rows now twice
    new = twice.drop(index=[5, 6]).reset_index(drop=True)
    new.loc[0, "message"] = "Renamed"
    change = compare("conformance", old, new, tmp_path)
    # rows 5 and 6 removed; rows 1 and 2 now twice; row 0 renamed, but its copy is still
    # there (so one row added, none removed for it)
    assert (change.added, change.removed, change.changed, change.resourced) == (3, 2, 0, 0)
    assert change.examples == {}


def test_a_new_table_is_all_added_and_the_text_is_as_before(tmp_path: Path) -> None:
    results = demo_tables()["results"]
    change = compare("results", None, results, tmp_path)
    assert (change.added, change.removed) == (len(results), 0)
    assert change.examples["added"] == sorted(results["result_id"])[:10]
    text = render_changelog(
        "2026.11.28.2",
        "2026.11.28",
        [change, TableChange("activities", changed=2, resourced=1, examples={"changed": ["a"]})],
        {"activities": 16, "disbursed_usd": 10.0},
        {"activities": 16, "disbursed_usd": 12.5},
        "1.2.0",
        "1.2.0",
    )
    assert text == (
        "# Changes in release 2026.11.28.2\n\n"
        "Compared with release 2026.11.28.\n\n"
        "## Rows per table\n\n"
        "| table | added | removed | changed | re-sourced |\n"
        "|---|---:|---:|---:|---:|\n"
        f"| results | {len(results)} | 0 | 0 | 0 |\n"
        "| activities | 0 | 0 | 2 | 1 |\n\n"
        "Changed: a field other than the provenance fields differs. Re-sourced: only the "
        "provenance differs (the same row now comes from a new version of its source file).\n\n"
        "Rows are matched by primary key; the first keys of each kind:\n\n"
        f"- results added: {', '.join(f'`{k}`' for k in sorted(results['result_id']))}\n"
        "- activities changed: `a` and 1 more\n\n"
        "## Headline figures\n\n"
        "| figure | before | after |\n"
        "|---|---:|---:|\n"
        "| disbursed_usd | 10.00 | 12.50 |\n"
    )
