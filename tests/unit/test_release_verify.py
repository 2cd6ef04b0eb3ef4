"""The release's verification in SQL: every file it refuses is named with its row, field and
problem, and it finds what Frictionless finds (compared on the flattened reports)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import shutil
from pathlib import Path

import duckdb
import frictionless
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from assets.harmonise.schema import NAME_TABLES, table_schema
from assets.storage.targets import LocalTarget
from assets.warehouse import set_up
from publish.release import ReleaseError, publish_release
from publish.verify import Problem, WrittenTable, python_pattern, verify_tables
from tests.unit.test_release import NOW, OPTIONS, demo_tables, stored

TABLES = (
    "activities",
    "activity_countries",
    "transactions",
    "sources",
    "quarantine",
    "conformance",
    "budgets",
)


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo published once: the folder of its release."""
    root = tmp_path_factory.mktemp("publish")
    tables = {name: frame for name, frame in demo_tables().items() if name in TABLES}
    publish_release(
        stored(tables, tmp_path_factory.mktemp("tables")), LocalTarget(root), OPTIONS, now=NOW
    )
    return root / "releases" / "2026.11.28"


def copy_of(release: Path, folder: Path) -> Path:
    """A copy of the release's data and a descriptor without checksums (so Frictionless
    reports only what is wrong with the data once a file is edited)."""
    shutil.copytree(release / "data", folder / "data")
    package = json.loads((release / "datapackage.json").read_text())
    for resource in package["resources"]:
        resource.pop("hash")
        resource.pop("bytes")
    (folder / "datapackage.json").write_text(json.dumps(package))
    return folder


def written(folder: Path) -> dict[str, WrittenTable]:
    """The release's tables: the demo's, and the name tables every release makes."""
    package = json.loads((folder / "datapackage.json").read_text())
    rows = {r["name"]: r["rows"] for r in package["resources"]}
    return {
        table: WrittenTable(
            table,
            folder / "data" / f"{table}.csv",
            folder / "data" / f"{table}.parquet",
            rows[table],
            f"data/{table}.csv",
            f"data/{table}.parquet",
        )
        for table in (*TABLES, *NAME_TABLES)
    }


def verify(folder: Path) -> list[Problem]:
    with duckdb.connect() as con:
        set_up(con)
        return verify_tables(con, written(folder))


def edit_cell(folder: Path, table: str, row: int, field: str, value: str) -> None:
    """Set one cell of a CSV file (``row`` as Frictionless counts: the header is row 1)."""
    path = folder / "data" / f"{table}.csv"
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    rows[row - 1][rows[0].index(field)] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8", newline="")


def frictionless_errors(folder: Path, table: str) -> list[tuple[int | None, str | None, str]]:
    report = frictionless.validate(str(folder / "datapackage.json"))
    (task,) = [task for task in report.tasks if task.name == table]
    return sorted(tuple(error) for error in task.flatten(["rowNumber", "fieldName", "type"]))


def ours(problems: list[Problem], table: str) -> list[tuple[int | None, str | None, str]]:
    return sorted((p.row, p.field, p.kind) for p in problems if p.file == f"data/{table}.csv")


def test_the_published_files_pass(release: Path, tmp_path: Path) -> None:
    folder = copy_of(release, tmp_path)
    assert verify(folder) == []
    assert frictionless.validate(str(folder / "datapackage.json")).valid


#: One edit per kind of problem: (table, row, field, new cell, what the problem says).
CELL_EDITS = [
    ("transactions", 3, "value", "12,5", 'type is "number/default"'),
    ("transactions", 3, "value", "abc", 'type is "number/default"'),
    ("sources", 2, "bytes", "1.5", 'type is "integer/default"'),
    ("transactions", 4, "humanitarian", "yes", 'type is "boolean/default"'),
    ("transactions", 5, "transaction_date", "2024-02-30", 'type is "date/default"'),
    ("transactions", 5, "transaction_date", "28/02/2024", 'type is "date/default"'),
    ("transactions", 5, "transaction_date", "1900-02-29", 'type is "date/default"'),
    ("transactions", 5, "value_date", "0000-01-01", 'type is "date/default"'),
    ("budgets", 2, "period_start", "2024-13-01", 'type is "date/default"'),
    ("activities", 3, "last_updated", "2024-02-29", 'type is "datetime/default"'),
    ("transactions", 6, "activity_id", "", 'constraint "required"'),
    ("transactions", 7, "currency", "usd", 'constraint "pattern" is "^[A-Z]{3}$"'),
    ("transactions", 7, "currency", "USDX", 'constraint "pattern" is "^[A-Z]{3}$"'),
    ("transactions", 8, "source", "other", 'constraint "enum"'),
    ("transactions", 9, "usd_rate", "-0.5", 'constraint "minimum" is "0"'),
    ("sources", 3, "n_records", "-1", 'constraint "minimum" is "0"'),
    ("budgets", 2, "usd_rate", "nan", 'constraint "minimum" is "0"'),
    ("activity_countries", 2, "share", "1.5", 'constraint "maximum" is "1"'),
    ("activity_countries", 3, "share", "inf", 'constraint "maximum" is "1"'),
]


@pytest.mark.parametrize(("table", "row", "field", "cell", "says"), CELL_EDITS)
def test_each_broken_cell_is_named_as_frictionless_names_it(
    release: Path, tmp_path: Path, table: str, row: int, field: str, cell: str, says: str
) -> None:
    folder = copy_of(release, tmp_path)
    edit_cell(folder, table, row, field, cell)
    problems = verify(folder)
    assert ours(problems, table) == frictionless_errors(folder, table)
    (problem,) = [p for p in problems if p.file == f"data/{table}.csv"]
    assert (problem.row, problem.field) == (row, field)
    assert says in problem.note
    assert str(problem).startswith(f"data/{table}.csv row {row}, field {field}: ")


def test_activity_ids_that_break_the_keys(release: Path, tmp_path: Path) -> None:
    folder = copy_of(release, tmp_path)
    rows = list(csv.reader(io.StringIO((folder / "data" / "activities.csv").read_text())))
    first = rows[1][0]
    edit_cell(folder, "activities", 3, "activity_id", first)  # a repeated primary key
    edit_cell(folder, "transactions", 4, "activity_id", "XM-NOWHERE-1")  # a foreign key
    problems = verify(folder)
    for table in ("activities", "transactions"):
        assert ours(problems, table) == frictionless_errors(folder, table)
    (duplicate,) = [p for p in problems if p.file == "data/activities.csv"]
    assert (duplicate.kind, duplicate.row) == ("primary-key", 3)
    assert duplicate.note == f"activity_id {first!r}: the same as in the row at position 2"
    missing = [p for p in problems if p.file == "data/transactions.csv"]
    assert {p.kind for p in missing} == {"foreign-key"}
    (edited,) = [p for p in missing if p.row == 4]
    assert edited.note == "activity_id 'XM-NOWHERE-1': not found in activities (activity_id)"
    # the transactions of the activity whose key was overwritten lost it too
    lost = rows[2][0]
    assert len(missing) > 1
    assert all(f"activity_id {lost!r}" in p.note for p in missing if p.row != 4)


def test_a_wrong_header_and_a_row_of_the_wrong_width(release: Path, tmp_path: Path) -> None:
    folder = copy_of(release, tmp_path)
    path = folder / "data" / "transactions.csv"
    lines = path.read_bytes().split(b"\r\n")
    path.write_bytes(b"\r\n".join([lines[0].replace(b",currency,", b",curr,"), *lines[1:]]))
    (problem,) = verify(folder)
    assert (problem.file, problem.row, problem.kind) == (
        "data/transactions.csv",
        1,
        "incorrect-label",
    )
    assert problem.note == "label 6 is 'curr' where the schema says 'currency'"

    path.write_bytes(b"\r\n".join([lines[0], lines[1] + b",extra", *lines[2:]]))
    (problem,) = verify(folder)
    assert problem.file == "data/transactions.csv"
    assert "Line: 2" in problem.note
    columns = len(table_schema("transactions")["fields"])
    assert f"Expected Number of Columns: {columns} Found: {columns + 1}" in problem.note


def test_a_missing_row_is_a_wrong_count(release: Path, tmp_path: Path) -> None:
    folder = copy_of(release, tmp_path)
    path = folder / "data" / "budgets.csv"
    lines = path.read_bytes().split(b"\r\n")
    path.write_bytes(b"\r\n".join(lines[:5] + lines[6:]))
    (problem,) = verify(folder)
    assert problem.file == "data/budgets.csv"
    assert problem.note == "38 rows where the release lists 39"


def test_parquet_files_are_checked_on_their_values_and_types(release: Path, tmp_path: Path) -> None:
    folder = copy_of(release, tmp_path)
    path = folder / "data" / "sources.parquet"
    table = pq.read_table(path)
    column = table.schema.get_field_index("n_records")
    negative = pa.array([-4, *table.column(column).to_pylist()[1:]], pa.int64())
    pq.write_table(table.set_column(column, "n_records", negative), path)
    (problem,) = verify(folder)
    assert (problem.file, problem.row, problem.field) == ("data/sources.parquet", 1, "n_records")
    assert problem.note == '\'-4\': constraint "minimum" is "0"'

    as_text = table.set_column(column, "n_records", table.column(column).cast(pa.string()))
    pq.write_table(as_text, path)
    (problem,) = verify(folder)
    assert (problem.kind, problem.field) == ("type-error", "n_records")
    assert problem.note == "the column's type is string, not int64"


def test_a_foreign_key_to_a_table_the_release_lacks(release: Path, tmp_path: Path) -> None:
    folder = copy_of(release, tmp_path)
    tables = written(folder)
    del tables["sources"]
    with duckdb.connect() as con:
        set_up(con)
        problems = verify_tables(con, tables)
    assert {(p.file, p.kind) for p in problems} == {
        ("data/quarantine.csv", "foreign-key"),
        ("data/quarantine.parquet", "foreign-key"),
        ("data/conformance.csv", "foreign-key"),
        ("data/conformance.parquet", "foreign-key"),
    }
    assert "refers to the table sources, which this release does not hold" in problems[0].note


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        ("^[A-Z]{3}$", "USD", True),
        ("^[A-Z]{3}$", "USD\n", True),  # Python's $ allows a final line break
        ("^[A-Z]{3}$", "USD\n\n", False),
        ("^\\d{4}-\\d{2}$", "2024-01", True),
        ("^\\d{4}-\\d{2}$", "٢٠٢٤-٠١", True),  # Python's \d is any digit
        ("^[0-9a-f]{64}$", "a" * 64, True),
        ("^(a|b)(;(a|b))*$", "a;b;a", True),
        ("^(a|b)(;(a|b))*$", "a;c", False),
    ],
)
def test_patterns_mean_what_they_mean_to_frictionless(
    pattern: str, text: str, matches: bool
) -> None:
    assert bool(re.match(f"^{pattern}$", text)) is matches
    with duckdb.connect() as con:
        found = con.execute("SELECT regexp_matches(?, ?)", [text, python_pattern(pattern)])
        assert found.fetchone() == (matches,)


def test_publish_refuses_a_table_that_breaks_its_schema(tmp_path: Path, tables_dir: Path) -> None:
    tables = demo_tables()
    transactions = tables["transactions"]
    bad = transactions.index[
        transactions["transaction_id"] == sorted(transactions["transaction_id"])[2]
    ]
    transactions.loc[bad, "currency"] = "usd"
    root = tmp_path / "publish"
    with pytest.raises(ReleaseError) as refused:
        publish_release(stored(tables, tables_dir), LocalTarget(root), OPTIONS, now=NOW)
    message = str(refused.value)
    assert message.startswith(f"{root}/releases/2026.11.28/: verification failed: ")
    assert (
        "releases/2026.11.28/data/transactions.csv row 4, field currency: 'usd': "
        'constraint "pattern" is "^[A-Z]{3}$" (constraint-error)'
    ) in message
    assert "releases/2026.11.28/data/transactions.parquet row 3, field currency" in message
    assert not (root / "catalog.json").exists()  # nothing points to the refused release


def test_bytes_that_are_not_utf8_are_refused_with_their_line(
    tmp_path: Path, tables_dir: Path
) -> None:
    from publish.verify import read_back

    tables = demo_tables()
    root = tmp_path / "publish"
    publish_release(stored(tables, tables_dir), LocalTarget(root), OPTIONS, now=NOW)
    release = root / "releases" / "2026.11.28"
    path = release / "data" / "budgets.csv"
    lines = path.read_bytes().split(b"\r\n")
    path.write_bytes(b"\r\n".join([*lines[:3], lines[3] + b"\xff", *lines[4:]]))
    catalog = json.loads((root / "catalog.json").read_text())
    entry = catalog["releases"][0]
    data = path.read_bytes()
    entry["files"]["data/budgets.csv"] = {
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
    }
    with duckdb.connect() as con:
        set_up(con)
        problems = read_back(con, LocalTarget(root), entry["path"], entry, {}, tmp_path / "s")
    assert [str(p) for p in problems] == [
        "releases/2026.11.28/data/budgets.csv: line 4: not UTF-8 (invalid start byte) "
        "(encoding-error)"
    ]


def test_frictionless_agrees_on_an_edited_file_of_several_problems(
    release: Path, tmp_path: Path
) -> None:
    folder = copy_of(release, tmp_path)
    for row, field, cell in [
        (2, "value", "x"),
        (5, "currency", "eur"),
        (9, "counts_toward_totals", ""),
    ]:
        edit_cell(folder, "transactions", row, field, cell)
    problems = verify(folder)
    assert ours(problems, "transactions") == frictionless_errors(folder, "transactions")
    assert len(ours(problems, "transactions")) == 3


def test_awkward_values_publish_and_pass_verification(tmp_path: Path, tables_dir: Path) -> None:
    """Text that needs quoting or a leading apostrophe, and numbers at the edges of their
    formats, go through the whole release and the verification (and Frictionless agrees)."""
    tables = demo_tables()
    activities = tables["activities"]
    awkward = [
        '=HYPERLINK("http://x")',
        "two\nlines",
        "cr\rinside",
        "crlf\r\nend",
        'a "quoted" word, and a comma',
        "#hash",
        "\tleading tab",
        "Bogotá — año 😀",
    ]
    for i, text in enumerate(awkward):
        activities.loc[i, "title"] = text
        activities.loc[i, "description"] = text * 3
    transactions = tables["transactions"]
    edge = [1e300, -1e300, 5e-324, -0.0, float("inf"), float("nan"), 1e20, 1e15, 2.5e-7]
    for i, number in enumerate(edge):
        transactions.loc[i, "value"] = number
    root = tmp_path / "publish"
    outcome = publish_release(stored(tables, tables_dir), LocalTarget(root), OPTIONS, now=NOW)
    assert outcome.status == "published"
    release = root / "releases" / "2026.11.28"
    report = frictionless.validate(str(release / "datapackage.json"))
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])[:5]
    titles = set(pd.read_csv(release / "data" / "activities.csv", dtype=str)["title"])
    assert {'\'=HYPERLINK("http://x")', "cr\rinside", "#hash", "'\tleading tab"} <= titles
