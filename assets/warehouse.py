"""DuckDB, the embedded engine of everything after parsing (no Dagster import).

Every stage after extraction reads and writes columnar files through DuckDB:
one connection per step, configured from ``warehouse`` in the configuration
with a ``memory_limit`` and a ``temp_directory``, so a large night spills to
disk instead of dying. The Dagster layer hands out the same connections through
``dagster-duckdb``'s resource (:func:`pipelines.resources.duckdb_resource`).

The contract between stages is Parquet on disk (``<data_dir>/tables/<table>.parquet``
and the extracted partitions): :func:`attach_tables` puts a folder's tables in a
connection as views, typed by ``schema/``, so a missing table is an empty one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from assets.harmonise.schema import arrow_schema
from assets.settings import Settings, WarehouseSettings


def connection_config(settings: Settings) -> dict[str, Any]:
    """DuckDB settings of every connection: memory limit, spill folder and threads."""
    return warehouse_config(settings.warehouse, settings.duckdb_temp_directory)


def warehouse_config(warehouse: WarehouseSettings, temp: Path) -> dict[str, Any]:
    """:func:`connection_config` from the ``warehouse`` section and a spill folder (for
    code that is given the section rather than the whole settings)."""
    temp.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "memory_limit": warehouse.memory_limit,
        "temp_directory": str(temp),
        # Rows are ordered explicitly wherever order matters (ORDER BY): without the
        # promise to keep insertion order, large COPYs and inserts stream in less memory.
        "preserve_insertion_order": False,
    }
    threads = warehouse.threads or os.cpu_count() or 1
    config["threads"] = threads
    return config


def connect(settings: Settings, database: str | Path = ":memory:") -> duckdb.DuckDBPyConnection:
    """A new DuckDB connection with the configured limits (in memory unless ``database``)."""
    if database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(database), config=connection_config(settings))
    set_up(con)
    return con


def set_up(con: duckdb.DuckDBPyConnection) -> None:
    """What every connection shares besides its limits: timestamps with time zone are UTC
    (as the schema's datetimes; ICU is loaded by then, not yet when connecting)."""
    con.execute("SET TimeZone = 'UTC'")


@contextmanager
def connection(
    settings: Settings, database: str | Path = ":memory:"
) -> Iterator[duckdb.DuckDBPyConnection]:
    """:func:`connect` as a context manager that always closes the connection."""
    con = connect(settings, database)
    try:
        yield con
    finally:
        con.close()


@contextmanager
def in_file_order(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Within the block, results keep the order of the files they read (the connection
    otherwise does not promise it: ``preserve_insertion_order`` is off, see
    :func:`warehouse_config`), e.g. a file already written in a sorted order copied on
    without sorting it again."""
    found = con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()
    con.execute("SET preserve_insertion_order = true")
    try:
        yield
    finally:
        con.execute(f"SET preserve_insertion_order = {bool(found and found[0])}")


def quote(name: str) -> str:
    """An SQL identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """An SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


#: The column of numbered views (:func:`attach_tables` with ``row_numbers``,
#: :func:`register_frames`): each row's 0-based position in the table as written.
ROW = "_row"


def empty_table_sql(table: str, extra: Sequence[str] = ()) -> str:
    """``SELECT`` of no rows with exactly the schema's columns and types (then ``extra``)."""
    columns = ", ".join(
        [
            *(
                f"CAST(NULL AS {duckdb_type(field.type)}) AS {quote(field.name)}"
                for field in arrow_schema(table)
            ),
            *extra,
        ]
    )
    return f"SELECT {columns} LIMIT 0"


_DUCKDB_TYPES = {
    pa.string(): "VARCHAR",
    pa.int64(): "BIGINT",
    pa.int32(): "INTEGER",
    pa.int16(): "SMALLINT",
    pa.float64(): "DOUBLE",
    pa.bool_(): "BOOLEAN",
    pa.date32(): "DATE",
    pa.timestamp("us", tz="UTC"): "TIMESTAMPTZ",
}


def duckdb_type(arrow_type: pa.DataType) -> str:
    """The DuckDB type of a schema field's Arrow type."""
    return _DUCKDB_TYPES[arrow_type]


def typed_columns(table: str) -> str:
    """The schema's columns of ``table``, each cast to the schema's type, in its order (a
    ``SELECT`` list)."""
    return ", ".join(
        f"CAST({quote(field.name)} AS {duckdb_type(field.type)}) AS {quote(field.name)}"
        for field in arrow_schema(table)
    )


def typed_select(table: str, source: str, extra: Sequence[str] = ()) -> str:
    """``SELECT`` of ``source`` (a relation) with exactly the schema's columns, cast to the
    schema's types, in the schema's order (then the expressions ``extra``)."""
    return f"SELECT {', '.join([typed_columns(table), *extra])} FROM {source}"


def attach_tables(
    con: duckdb.DuckDBPyConnection,
    directory: Path,
    tables: Iterable[str],
    row_numbers: bool = False,
) -> None:
    """Each table as a view over ``directory/<table>.parquet`` with the schema's columns
    and types; a table without a file is an empty view. ``row_numbers``: the views also
    have :data:`ROW`, each row's position in the file (rows keep no order in DuckDB
    unless ordered by it)."""
    for table in tables:
        path = directory / f"{table}.parquet"
        if path.exists():
            options = ", file_row_number = true" if row_numbers else ""
            body = typed_select(
                table,
                f"read_parquet({literal(str(path))}{options})",
                [f"file_row_number AS {ROW}"] if row_numbers else [],
            )
        else:
            body = empty_table_sql(table, [f"CAST(NULL AS BIGINT) AS {ROW}"] if row_numbers else [])
        con.execute(f"CREATE OR REPLACE VIEW {quote(table)} AS {body}")


def temp_table(con: duckdb.DuckDBPyConnection, name: str, rows: pa.Table) -> None:
    """``rows`` (small: inputs, settings, outcomes) as the temporary table ``name``."""
    view = f"_{name}_arrow"
    con.register(view, rows)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {quote(name)} AS SELECT * FROM {quote(view)}")
    finally:
        con.unregister(view)


#: Rows of one part of a large ordered result (:func:`ordered_parts`).
PART_ROWS = 1_000_000


def ordered_parts(
    con: duckdb.DuckDBPyConnection,
    select: str,
    source: str,
    order: str,
    key: str,
    folder: Path,
    part_rows: int | None = None,
) -> Iterator[Path]:
    """The rows ``SELECT <select> FROM <source>`` sorted by the ``ORDER BY`` list
    ``order``, as Parquet files written by DuckDB in ``folder``: parts of at most
    ``part_rows`` (default :data:`PART_ROWS`) consecutive rows, each yielded once written
    and removed when the next is asked for. ``key`` is an expression of ``source`` unique
    to each row.

    Sorting a large result in one statement (long texts and all) fails at DuckDB's memory
    limit however much it spills, and streaming it to Python cannot spill at all; a part
    sorts and writes in bounded memory. Where ``order`` is ``key`` itself (a row number),
    the parts are its ranges; otherwise the rows are first numbered in that order over the
    order's columns and the keys alone. A key that is missing or repeated is an error
    (rows would be lost or doubled), raised before the last part."""
    part_rows = part_rows or PART_ROWS
    counted = con.execute(f"SELECT count(*) FROM {source}").fetchone()
    rows = int(counted[0]) if counted else 0
    folder.mkdir(parents=True, exist_ok=True)
    if rows <= part_rows:
        yield from _parts(con, [f"SELECT {select} FROM {source} ORDER BY {order}"], folder, rows)
        return
    if order.strip() == key.strip():
        where = key
    else:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _part_order AS SELECT {key} AS _id, "
            f"row_number() OVER (ORDER BY {order}) AS _n FROM {source}"
        )
        source = f"{source} JOIN _part_order ON _part_order._id = {key}"
        where = "_part_order._n"
    try:
        bounds = con.execute(f"SELECT min({where}), max({where}) FROM {source}").fetchone()
        low, high = bounds if bounds else (None, None)
        queries = [
            f"SELECT {select} FROM {source} "
            f"WHERE {where} BETWEEN {first} AND {first + part_rows - 1} ORDER BY {where}"
            for first in range(low if low is not None else 1, (high or 0) + 1, part_rows)
        ]
        yield from _parts(con, queries, folder, rows)
    finally:
        con.execute("DROP TABLE IF EXISTS _part_order")


def _parts(
    con: duckdb.DuckDBPyConnection, queries: Sequence[str], folder: Path, rows: int
) -> Iterator[Path]:
    written = 0
    for index, query in enumerate(queries):
        part = folder / f"part-{index}.parquet"
        result = con.execute(
            f"COPY ({query}) TO {literal(str(part))} (FORMAT parquet, COMPRESSION zstd)"
        ).fetchone()
        written += int(result[0]) if result else 0
        if index == len(queries) - 1 and written != rows:
            part.unlink(missing_ok=True)
            raise ValueError(
                f"{written} of {rows} rows written in order: a row's key is missing or repeated"
            )
        try:
            yield part
        finally:
            part.unlink(missing_ok=True)


def register_frames(con: duckdb.DuckDBPyConnection, frames: Mapping[str, pd.DataFrame]) -> None:
    """Frames a caller still holds as views of ``con`` like :func:`attach_tables`' with
    ``row_numbers`` (:data:`ROW`: the position in the frame), with the frames' own columns
    and types (Arrow's reading of them), so a frame that breaks its schema stays broken."""
    for table, frame in frames.items():
        arrow = pa.Table.from_pandas(frame, preserve_index=False)
        arrow = arrow.append_column(ROW, pa.array(range(len(frame)), pa.int64()))
        name = f"__frame_{table}"
        con.register(name, arrow)
        con.execute(f"CREATE OR REPLACE VIEW {quote(table)} AS SELECT * FROM {quote(name)}")
