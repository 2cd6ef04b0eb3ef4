"""Tables written by DuckDB in order: a large table written in parts holds exactly the
rows, in exactly the order, that one sorted write gives, and no row is lost."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from assets.harmonise.schema import arrow_schema
from assets.harmonise.store import copy_table, read_table, write_table
from assets.iati.harmonise import HarmoniseOptions, harmonise_paths
from assets.settings import load_settings
from assets.warehouse import ROW, connection, quote
from tests.conftest import IATI_FIXTURES


@cache
def harmonised() -> dict[str, pd.DataFrame]:
    """The shared fixtures' tables (every valid and legacy file)."""
    options = HarmoniseOptions(rules=load_settings().cd_rules)
    _, tables = harmonise_paths([IATI_FIXTURES / "valid", IATI_FIXTURES / "legacy"], options)
    return tables


def _load(con: duckdb.DuckDBPyConnection, table: str, shuffle: int = 7) -> int:
    """``c_<table>`` of ``con``: the table's rows numbered by their place (:data:`ROW`),
    stored in another order (DuckDB keeps none)."""
    frame = harmonised()[table]
    numbered = frame.assign(**{ROW: range(1, len(frame) + 1)})
    shuffled = numbered.sample(frac=1.0, random_state=shuffle)
    con.register("frame", shuffled)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {quote('c_' + table)} AS SELECT * FROM frame")
    con.unregister("frame")
    return len(frame)


@pytest.mark.parametrize("table", ["transactions", "activity_sectors"])
def test_a_table_written_in_parts_is_the_table_written_whole(table: str, tmp_path: Path) -> None:
    with connection(load_settings()) as con:
        rows = _load(con, table)
        assert rows > 300, "the fixtures give too few rows to cut into parts"
        whole = copy_table(con, table, f"c_{table}", tmp_path / "whole.parquet", ROW)
        parts = copy_table(con, table, f"c_{table}", tmp_path / "parts.parquet", ROW, part_rows=97)
    assert whole == parts == rows
    written = read_table(table, tmp_path / "parts.parquet")
    pd.testing.assert_frame_equal(written, read_table(table, tmp_path / "whole.parquet"))
    # in the order of the rows' numbers: the frame as it was harmonised
    expected = read_table(table, _frame_file(table, tmp_path))
    pd.testing.assert_frame_equal(written, expected)
    assert pq.read_schema(tmp_path / "parts.parquet").names == arrow_schema(table).names
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "parts left behind"


def _frame_file(table: str, tmp_path: Path) -> Path:
    """The harmonised frame as written on its own (the expected file)."""
    return write_table(table, harmonised()[table], tmp_path / "frame.parquet")


def test_a_table_in_another_order_is_numbered_then_written_in_parts(tmp_path: Path) -> None:
    table = "transactions"
    with connection(load_settings()) as con:
        rows = _load(con, table)
        order = f"{ROW} DESC"
        written = copy_table(
            con, table, f"c_{table}", tmp_path / "parts.parquet", order, part_rows=101
        )
        leftovers = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = '_part_order'"
        ).fetchone()
    assert written == rows
    expected = read_table(table, _frame_file(table, tmp_path)).iloc[::-1].reset_index(drop=True)
    pd.testing.assert_frame_equal(read_table(table, tmp_path / "parts.parquet"), expected)
    assert leftovers == (0,)


def test_rows_without_a_number_stop_the_write_and_keep_the_last_file(tmp_path: Path) -> None:
    table = "transactions"
    path = tmp_path / "transactions.parquet"
    path.write_bytes(b"the last good file")
    with connection(load_settings()) as con:
        _load(con, table)
        con.execute(f"UPDATE c_transactions SET {ROW} = NULL WHERE {ROW} IN (5, 6)")
        with pytest.raises(
            ValueError,
            match=r"transactions: \d+ of \d+ rows written in order: a row's key is missing",
        ):
            copy_table(con, table, "c_transactions", path, ROW, part_rows=50)
    assert path.read_bytes() == b"the last good file"
    assert [p.name for p in tmp_path.iterdir()] == ["transactions.parquet"]
