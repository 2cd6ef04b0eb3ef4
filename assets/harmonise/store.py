"""Harmonised tables on disk: one Parquet file per table, typed from schema/.

Writes go to a temporary file renamed into place, so a reader never sees half
a table and a crash never leaves a truncated one behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from assets.harmonise.schema import ArrowTables, arrow_schema, pandas_type_of_arrow, table_frame
from assets.warehouse import ROW, literal, quote, typed_select


def write_table(table: str, frame: pd.DataFrame, path: Path) -> Path:
    """Write one table as Parquet, atomically."""
    return _write_arrow(to_arrow(table, frame), path)


def _write_arrow(arrow: pa.Table, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        pq.write_table(arrow, temporary, compression="zstd")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


#: Rows of one part of a large table written in order (see :func:`copy_table`): each
#: part is sorted on its own, so a large table is never sorted whole.
PART_ROWS = 1_000_000


def copy_table(
    con: duckdb.DuckDBPyConnection,
    table: str,
    relation: str,
    path: Path,
    order: str,
    part_rows: int = PART_ROWS,
) -> int:
    """The relation ``relation`` of ``con`` (a table) written as the table's Parquet file
    at ``path``, atomically (the schema's columns and types, the rows sorted by the
    ``ORDER BY`` list ``order``); the number of rows written.

    A table of more than ``part_rows`` rows is written in parts of ``part_rows``
    consecutive rows of that order, each sorted and written by DuckDB on its own, then
    joined into the one file row group by row group: sorting a whole table of a large
    night in one statement (long texts and all) fails at DuckDB's memory limit however
    much it spills. A relation ordered by its row numbers (:data:`~assets.warehouse.ROW`)
    is cut by their ranges; any other order first numbers the rows over the order's
    columns and the row ids alone."""
    name = quote(relation)
    counted = con.execute(f"SELECT count(*) FROM {name}").fetchone()
    rows = int(counted[0]) if counted else 0
    if rows <= part_rows:
        return copy_query(con, f"{typed_select(table, name)} ORDER BY {order}", path)
    if order.strip() in (ROW, quote(ROW)):
        source, key = name, quote(ROW)
    else:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _copy_order AS SELECT rowid AS _id, "
            f"row_number() OVER (ORDER BY {order}) AS _n FROM {name}"
        )
        source = f"(SELECT r.*, o._n FROM {name} r JOIN _copy_order o ON o._id = r.rowid)"
        key = "_n"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        low, high, numbered = con.execute(
            f"SELECT min({key}), max({key}), count({key}) FROM {source}"
        ).fetchone() or (None, None, 0)
        if numbered != rows:
            raise ValueError(f"{table}: {rows - numbered} of {rows} rows have no {key}")
        with tempfile.TemporaryDirectory(prefix=f".{path.name}.", dir=path.parent) as folder:
            parts: list[Path] = []
            for first in range(low, high + 1, part_rows):
                part = Path(folder) / f"{len(parts)}.parquet"
                copy_query(
                    con,
                    f"{typed_select(table, source)} "
                    f"WHERE {key} BETWEEN {first} AND {first + part_rows - 1} ORDER BY {key}",
                    part,
                )
                parts.append(part)
            return _join_parts(parts, path)
    finally:
        con.execute("DROP TABLE IF EXISTS _copy_order")


def _join_parts(parts: list[Path], path: Path) -> int:
    """The Parquet files ``parts`` (one schema) as one file at ``path``, atomically, their
    rows in the order of the parts, read and written one row group at a time; the number
    of rows."""
    schema = pq.read_schema(parts[0])
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    rows = 0
    try:
        with pq.ParquetWriter(temporary, schema, compression="zstd") as writer:
            for part in parts:
                reader = pq.ParquetFile(part)
                for index in range(reader.num_row_groups):
                    group = reader.read_row_group(index)
                    writer.write_table(group, row_group_size=group.num_rows)
                    rows += group.num_rows
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return rows


def copy_query(con: duckdb.DuckDBPyConnection, query: str, path: Path) -> int:
    """The rows of ``query`` written as a Parquet file at ``path``, atomically, by DuckDB;
    the number of rows written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        written = con.execute(
            f"COPY ({query}) TO {literal(temporary)} (FORMAT parquet, COMPRESSION zstd)"
        ).fetchone()
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return int(written[0]) if written else 0


def to_arrow(table: str, frame: pd.DataFrame) -> pa.Table:
    """A table's frame as Arrow with the schema's types; a frame that already has
    exactly the schema's columns converts directly, any other goes through
    :func:`table_frame` first (which types it, or fails on a field not in the schema)."""
    schema = arrow_schema(table)
    if list(frame.columns) == schema.names:
        try:
            return pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            pass
    return pa.Table.from_pandas(table_frame(table, frame), schema=schema, preserve_index=False)


def write_tables(tables: Mapping[str, pd.DataFrame], directory: Path) -> dict[str, Path]:
    """Every table as ``directory/<table>.parquet`` (tables kept as Arrow are written as
    they are, without a round trip through pandas)."""
    if isinstance(tables, ArrowTables):
        return {
            table: _write_arrow(arrow, directory / f"{table}.parquet")
            for table, arrow in tables.arrow.items()
        }
    return {
        table: write_table(table, frame, directory / f"{table}.parquet")
        for table, frame in tables.items()
    }


def read_table(table: str, path: Path) -> pd.DataFrame:
    """A table written by :func:`write_table`, with the schema's pandas dtypes."""
    frame = pq.read_table(path).to_pandas(types_mapper=pandas_type_of_arrow)
    return table_frame(table, frame)


def read_tables(directory: Path, tables: list[str] | tuple[str, ...]) -> dict[str, pd.DataFrame]:
    return {
        table: read_table(table, directory / f"{table}.parquet")
        if (directory / f"{table}.parquet").exists()
        else table_frame(table, [])
        for table in tables
    }


def reference_dir(data_dir: Path) -> Path:
    """Reference data the run used (exchange rates, codelists)."""
    return data_dir / "reference"


def timings_path(data_dir: Path) -> Path:
    """Seconds per stage of the last combining step (combine, metrics, write, checks,
    or reuse) and of the release after it, for ``benchmarks/pipeline.py``."""
    return data_dir / "timings.json"


def add_timings(data_dir: Path, seconds: Mapping[str, float]) -> None:
    """Add stages to :func:`timings_path` (the combining step starts it afresh)."""
    path = timings_path(data_dir)
    try:
        known = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    path.write_text(json.dumps({**known, **seconds}) + "\n", encoding="utf-8")


def tables_dir(data_dir: Path) -> Path:
    """The combined harmonised tables."""
    return data_dir / "tables"


def markdown_table(frame: pd.DataFrame, rows: int = 5) -> str:
    """The first rows of a frame as a Markdown table (for Dagster metadata previews)."""
    shown = frame.head(rows)

    def cell(value: object) -> str:
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return ""
        text = str(value).replace("|", "\\|").replace("\n", " ")
        return text if len(text) <= 60 else text[:57] + "..."

    header = "| " + " | ".join(str(c) for c in shown.columns) + " |"
    rule = "|" + "---|" * len(shown.columns)
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in shown.itertuples(index=False)]
    return "\n".join([header, rule, *body])
