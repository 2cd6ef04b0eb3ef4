"""The CHANGELOG's row counts, computed in SQL: rows matched by primary key (or as a
multiset), compared as the CSV files show them, with the first keys of each kind and each
changed field's old and new text; and the sources a release no longer uses."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import pandas as pd

from assets.harmonise.schema import table_frame
from assets.harmonise.store import write_table
from assets.storage.targets import LocalTarget
from assets.warehouse import set_up
from publish import files
from publish.changelog import TableChange, compare_table, render_changelog
from publish.release import publish_release
from tests.conftest import PROJECT_ROOT
from tests.unit.test_release import NOW, OPTIONS, demo_tables, harmonise_folder, stored


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
    assert len(old) > 6
    assert not old.duplicated().any()
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
        "Rows are matched by primary key; the first 20 of each kind, a changed row with "
        "each field that changed (`field: before → after`):\n\n"
        f"- results added: {', '.join(f'`{k}`' for k in sorted(results['result_id']))}\n"
        "- activities changed: `a` and 1 more\n\n"
        "## Headline figures\n\n"
        "| figure | before | after |\n"
        "|---|---:|---:|\n"
        "| disbursed_usd | 10.00 | 12.50 |\n"
    )


def test_an_edited_title_and_transaction_value_read_as_changed_rows_with_both_values(
    tmp_path: Path, tables_dir: Path
) -> None:
    """The publisher of the demo's first file retitles an activity and corrects one
    disbursement (ref ...-T2) from 300000 to 450000 USD: the next release's CHANGELOG
    says so, row by row, and nothing is added or removed."""
    target = LocalTarget(tmp_path / "publish")
    publish_release(stored(demo_tables(), tables_dir), target, OPTIONS, now=NOW)
    edited = tmp_path / "iati"
    shutil.copytree(PROJECT_ROOT / "demo" / "iati", edited)
    xml = edited / "xm-demo-1001.xml"
    text = xml.read_text(encoding="utf-8")
    old_title = "Technical assistance for public finance management reform in Ghana"
    old_value = '<value value-date="2022-06-30">300000</value>'
    assert text.count(old_title) == 1
    assert text.count(old_value) == 1
    text = text.replace(old_title, "Technical assistance for PFM reform in Ghana")
    xml.write_text(text.replace(old_value, old_value.replace("300000", "450000")), "utf-8")
    second = NOW + dt.timedelta(hours=3)
    publish_release(stored(harmonise_folder(edited), tables_dir), target, OPTIONS, now=second)
    changelog = target.read_bytes("releases/2026.11.28.2/CHANGELOG.md")
    assert changelog is not None
    lines = changelog.decode().splitlines()
    counts = {line.split(" | ")[0][2:]: line.split(" | ")[1:4] for line in lines if "| 0 |" in line}
    # added, removed, changed (the file's other rows are re-sourced: its sha256 changed)
    assert counts["transactions"] == ["0", "0", "1"]
    assert counts["participating_orgs"] == ["0", "0", "0"]
    assert counts["activities"] == ["0", "0", "1"]
    # the old title is 66 characters: cut to 59 and an ellipsis
    assert (
        "- activities changed: `XM-DEMO-1001-GH-PFM-01` title: Technical assistance for "
        "public finance management reform i… → Technical assistance for PFM reform in Ghana"
    ) in lines
    # the disbursement keeps its id (its ref); the demo's rate for USD is 1
    assert (
        "- transactions changed: `XM-DEMO-1001-GH-PFM-01#ref:XM-DEMO-1001-GH-PFM-01-T2` "
        "value: 300000 → 450000; value_usd: 300000 → 450000"
    ) in lines
    assert not [line for line in lines if " added: " in line or " removed: " in line]


def test_changed_rows_beyond_the_first_are_counted_and_a_source_that_went_is_named(
    tmp_path: Path,
) -> None:
    sources = demo_tables()["sources"]
    assert len(sources) == 4
    assert set(sources["status"]) <= {"ok", "partial"}
    names = sorted(sources["source_file"])
    now = sources[sources["source_file"] != names[0]].copy()  # gone from the feed
    rejected = now["source_file"] == names[1]
    now.loc[rejected, "status"] = "rejected"
    now.loc[rejected, "reason"] = "not well-formed XML: line 3"
    change = compare("sources", sources, now, tmp_path)
    assert (change.added, change.removed, change.changed) == (0, 1, 1)
    assert change.dropped == [
        (names[0], "no longer in the IATI feed"),
        (names[1], "rejected: not well-formed XML: line 3"),
    ]
    budgets = table_frame(
        "budgets",
        [
            {"budget_id": f"b{i:02}", "activity_id": "x", "value": float(i), "currency": "USD"}
            for i in range(25)
        ],
    )
    raised = budgets.assign(value=budgets["value"] + 1)
    budget_change = compare("budgets", budgets, raised, tmp_path)
    text = render_changelog("2", "1", [budget_change, change], None, {}, "3.0.0", "3.0.0")
    lines = text.splitlines()
    # 25 changed: the first 20 by key, then how many more
    assert "- budgets changed: `b00` value: 0 → 1" in lines
    assert "- budgets changed: `b19` value: 19 → 20" in lines
    assert "- budgets changed: `b20` value: 20 → 21" not in lines
    assert "- budgets changed: and 5 more" in lines
    assert lines[lines.index("## Sources no longer used") :][:4] == [
        "## Sources no longer used",
        "",
        f"- `{names[0]}`: no longer in the IATI feed",
        f"- `{names[1]}`: rejected: not well-formed XML: line 3",
    ]
