"""Harmonised tables on disk: one Parquet file per table, typed from schema/.

Writes go to a temporary file renamed into place, so a reader never sees half
a table and a crash never leaves a truncated one behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from assets.harmonise.schema import ArrowTables, arrow_schema, pandas_type_of_arrow, table_frame
from assets.warehouse import (
    PART_ROWS,
    ROW,
    literal,
    ordered_parts,
    quote,
    typed_columns,
    typed_select,
)


def write_table(table: str, frame: pd.DataFrame, path: Path) -> Path:
    """Write one table as Parquet, atomically."""
    return _write_arrow(to_arrow(table, frame), path)


@contextmanager
def _replacing(path: Path) -> Iterator[str]:
    """A hidden temporary file beside ``path`` to write, renamed to ``path`` when the block
    ends (removed instead if it fails), so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _write_arrow(arrow: pa.Table, path: Path) -> Path:
    with _replacing(path) as temporary:
        pq.write_table(arrow, temporary, compression="zstd")
    return path


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

    A table of more than ``part_rows`` rows is written in parts (:func:`ordered_parts`,
    cut by its row numbers, :data:`~assets.warehouse.ROW`, when it is in their order),
    then joined into the one file row group by row group: sorting a whole table of a
    large night in one statement fails at DuckDB's memory limit."""
    name = quote(relation)
    counted = con.execute(f"SELECT count(*) FROM {name}").fetchone()
    if (int(counted[0]) if counted else 0) <= part_rows:
        return copy_query(con, f"{typed_select(table, name)} ORDER BY {order}", path)
    # in the order of the row numbers the parts are their ranges; else the rows are numbered
    by_row = order.strip() in (ROW, quote(ROW))
    key = f"r.{quote(ROW)}" if by_row else "r.rowid"
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{path.name}.", dir=path.parent) as folder:
        parts = ordered_parts(
            con,
            typed_columns(table),
            f"{name} r",
            key if by_row else order,
            key,
            Path(folder),
            part_rows,
        )
        try:
            return _join_parts(parts, path)
        except ValueError as exc:
            raise ValueError(f"{table}: {exc}") from exc


def _join_parts(parts: Iterator[Path], path: Path) -> int:
    """The Parquet files ``parts`` (one schema) as one file at ``path``, atomically, their
    rows in the order of the parts, read and written one row group at a time; the number
    of rows."""
    rows = 0
    with _replacing(path) as temporary, ExitStack() as stack:
        writer: pq.ParquetWriter | None = None
        for part in parts:
            with pq.ParquetFile(part) as reader:
                if writer is None:  # the parts' schema, from the first
                    writer = stack.enter_context(
                        pq.ParquetWriter(temporary, reader.schema_arrow, compression="zstd")
                    )
                for index in range(reader.num_row_groups):
                    group = reader.read_row_group(index)
                    writer.write_table(group, row_group_size=group.num_rows)
                    rows += group.num_rows
    return rows


def copy_query(con: duckdb.DuckDBPyConnection, query: str, path: Path) -> int:
    """The rows of ``query`` written as a Parquet file at ``path``, atomically, by DuckDB;
    the number of rows written."""
    with _replacing(path) as temporary:
        written = con.execute(
            f"COPY ({query}) TO {literal(temporary)} (FORMAT parquet, COMPRESSION zstd)"
        ).fetchone()
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
