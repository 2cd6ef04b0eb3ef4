"""SQL pieces the metrics share: the inputs in table order, Python's text rules, pandas' sums.

The metrics were computed in pandas until issue 18 (the code is kept as the oracle of
the tests in ``tests/legacy/metrics.py``); every published value is the same in SQL:

- **Table order.** Where the pandas code took "the first" row (an activity's first
  country, the kept copy of an identifier) or summed in row order, the SQL reads the
  input in its table order: the ``_row`` column of a relation that has one (frames
  registered by :func:`assets.warehouse.register_frames`), else the order of the
  combined tables (:data:`assets.harmonise.combine.SORT_KEYS`, then every other
  column, so that the order is total). DuckDB keeps no row order of its own.
- **Text.** ``_str`` / ``_text`` of the pandas code strip what Python's
  ``str.strip()`` strips (:func:`stripped`, :func:`text`); ``str()`` of a text is
  the text itself (the column as it is).
- **Sums.** pandas 3 sums a group of floats in one of two ways: numpy's
  ``add.reduceat`` (pairwise) when the frame's rows are already grouped in the order
  of the group numbers and the column has no missing value, else Kahan summation in
  row order. :func:`takes_reduceat` tells which way the frame at hand goes, and
  :func:`sum_sql` is the same sum in SQL (DuckDB's ``fsum`` over the rows in their
  order, or numpy's ``add.reduceat`` itself over the group's list), so that even the
  last bit of a published sum is the pandas one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from duckdb.func import SPECIAL, PythonUDFType

from assets.harmonise import sql as harmonise_sql
from assets.harmonise.combine import SORT_KEYS
from assets.harmonise.schema import field_names
from assets.harmonise.sql import py_strip
from assets.warehouse import ROW, quote

#: The order column of every ``m_`` input table (and of frames registered by
#: :func:`assets.warehouse.register_frames`).
ORDER = ROW
#: Rows summed in order at a time (:func:`aggregate_in_batches`).
BATCH_ROWS = 1_000_000


# --------------------------------------------------------------------------- Python functions


def _usd_text(amount: float | None) -> str:
    """The amount of a funding chain's evidence, as the pandas code wrote it."""
    if amount is None or amount != amount:
        return "an amount without a USD rate"
    return f"USD {float(amount):,.0f}"


def _period_year(period: str | None) -> int | None:
    """The first four-digit year in a declaration's ``period`` (Python's ``\\d``)."""
    match = re.search(r"\d{4}", "" if period is None else period.strip())
    return int(match.group()) if match else None


def _lists(lists: Any) -> tuple[pa.ListArray, np.ndarray, np.ndarray]:
    """(the lists, each list's length, the values one after the other)."""
    if isinstance(lists, pa.ChunkedArray):
        lists = lists.combine_chunks()
    lengths = pc.list_value_length(lists).fill_null(0).to_numpy(zero_copy_only=False)
    values = lists.flatten().to_numpy(zero_copy_only=False).astype(np.float64)
    return lists, lengths.astype(np.int64), values


def _reduceat(lists: Any) -> pa.Array:
    """Each list summed as pandas sums a group through ``numpy.add.reduceat``."""
    lists, lengths, values = _lists(lists)
    out = np.zeros(len(lists), dtype=np.float64)
    filled = lengths > 0
    if filled.any():
        starts = np.cumsum(lengths) - lengths
        out[filled] = np.add.reduceat(values, starts[filled])
    missing = ~filled | lists.is_null().to_numpy(zero_copy_only=False)
    return pa.array(out, mask=missing)


def _kahan_cumsum(lists: Any) -> pa.Array:
    """Each list's running sums, as pandas' ``groupby().cumsum()`` (Kahan, in order)."""
    lists, lengths, values = _lists(lists)
    sums = np.empty(len(values), dtype=np.float64)
    position = 0
    for length in lengths.tolist():
        total = compensation = 0.0
        for index in range(position, position + length):
            y = values[index] - compensation
            t = total + y
            compensation = (t - total) - y
            total = t
            sums[index] = total
        position += length
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(sums), mask=lists.is_null())


def register(con: duckdb.DuckDBPyConnection) -> None:
    """The harmoniser's SQL helpers and the metrics' own Python functions in ``con``
    (idempotent)."""
    harmonise_sql.register(con)
    functions: tuple[tuple[str, Any, Any, Any, PythonUDFType], ...] = (
        ("m_usd_text", _usd_text, ["DOUBLE"], "VARCHAR", PythonUDFType.NATIVE),
        ("m_period_year", _period_year, ["VARCHAR"], "BIGINT", PythonUDFType.NATIVE),
        ("m_reduceat", _reduceat, ["DOUBLE[]"], "DOUBLE", PythonUDFType.ARROW),
        ("m_kahan_cumsum", _kahan_cumsum, ["DOUBLE[]"], "DOUBLE[]", PythonUDFType.ARROW),
    )
    try:  # registered already on this connection?
        con.execute("SELECT m_period_year(NULL)").fetchall()
    except duckdb.CatalogException:
        for name, function, arguments, result, kind in functions:
            con.create_function(
                name,
                function,
                arguments,
                result,
                type=kind,
                null_handling=SPECIAL,
                side_effects=False,
            )


# --------------------------------------------------------------------------- text


def stripped(column: str) -> str:
    """SQL of the pandas code's ``_str``: the text stripped, empty text as missing."""
    return f"nullif({py_strip(column)}, '')"


def text(column: str) -> str:
    """SQL of the pandas code's ``_text``: the text stripped, missing as empty text."""
    return f"coalesce({py_strip(column)}, '')"


# --------------------------------------------------------------------------- inputs


def table_order(table: str, alias: str = "") -> str:
    """The ``ORDER BY`` list of a combined table's rows: its sort keys
    (:data:`~assets.harmonise.combine.SORT_KEYS`, ``source_ref`` with its numbers as
    numbers), then every other column, so that rows equal on the keys still have one
    order."""
    keys = SORT_KEYS.get(table, ())
    parts = [
        f"natural_key({alias}{quote(key)})" if key == "source_ref" else f"{alias}{quote(key)}"
        for key in keys
    ]
    parts += [f"{alias}{quote(name)}" for name in field_names(table) if name not in keys]
    return ", ".join(f"{part} ASC NULLS FIRST" for part in parts)


def columns_of(con: duckdb.DuckDBPyConnection, relation: str) -> list[str]:
    return [column[0] for column in con.execute(f"SELECT * FROM {relation} LIMIT 0").description]


def load_input(con: duckdb.DuckDBPyConnection, table: str, relation: str) -> None:
    """``relation`` as the temporary table ``m_<table>``, every column and :data:`ORDER`
    (its own where it has one, else the table order)."""
    target = quote("m_" + table)
    if ORDER in columns_of(con, relation):
        con.execute(f"CREATE OR REPLACE TEMP TABLE {target} AS SELECT * FROM {relation}")
        return
    numbered = f"row_number() OVER (ORDER BY {table_order(table)}) AS {ORDER}"
    try:  # a table: the order computed over the row ids alone (a narrower sort)
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE m_order AS SELECT rowid AS _id, {numbered} "
            f"FROM {relation}"
        )
    except duckdb.BinderException:  # a view has no row ids
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {target} AS SELECT *, {numbered} FROM {relation}"
        )
        return
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {target} AS SELECT r.*, o.{ORDER} "
        f"FROM {relation} r JOIN m_order o ON o._id = r.rowid"
    )
    con.execute("DROP TABLE m_order")


# --------------------------------------------------------------------------- pandas' sums


def takes_reduceat(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    keys: Sequence[str],
    values: Sequence[str],
    sort: bool,
    position: str = "pos",
    partition: str | None = None,
) -> Any:
    """Whether pandas sums the groups of ``keys`` of this frame (``relation``, its rows in
    the order of ``position``) with numpy's ``add.reduceat``: the group numbers never go
    down from one row to the next (``sort``: groups numbered in key order, else in order
    of first appearance) and no value of the summed columns is missing. Else pandas sums
    each group by Kahan summation in row order. With ``partition``, the relation holds
    one frame per value of that column: {value: whether}."""
    key = f"struct_pack({', '.join(keys)})"
    over = f"PARTITION BY {partition}" if partition else ""
    # sorted groups: the keys never go down; groups in order of first appearance: each
    # group's rows are together (as many runs of equal keys as there are keys)
    test = (
        "coalesce(bool_and(previous IS NULL OR key >= previous), true)"
        if sort
        else "count(*) FILTER (WHERE previous IS DISTINCT FROM key) = count(DISTINCT key)"
    )
    missing = " OR ".join(f"{value} IS NULL OR isnan({value})" for value in values) or "false"
    frame = partition or "NULL"
    rows = con.execute(
        f"""
        SELECT frame, {test} AND NOT coalesce(bool_or(missing), false)
        FROM (
            SELECT {frame} AS frame, {key} AS key, ({missing}) AS missing,
                lag({key}) OVER ({over} ORDER BY {position}) AS previous
            FROM {relation}
        )
        GROUP BY frame
        """
    ).fetchall()
    if partition:
        return {frame: bool(flag) for frame, flag in rows}
    return bool(rows[0][1]) if rows else True


def aggregate_in_batches(
    con: duckdb.DuckDBPyConnection,
    target: str,
    relation: str,
    keys: Sequence[str],
    select: str,
    rows: int | None = None,
    append: bool = False,
) -> None:
    """``CREATE TEMP TABLE target AS SELECT select FROM relation GROUP BY keys``, a share of
    the groups at a time (by a hash of their keys), about ``rows`` rows of ``relation``
    each: DuckDB keeps the rows of a sorted aggregate (a sum in row order) in memory, so
    the groups are summed in batches that fit its memory limit (``rows``: default
    :data:`BATCH_ROWS`). ``append``: insert into the existing ``target``."""
    row = con.execute(f"SELECT count(*) FROM {relation}").fetchone()
    batches = max(1, -(-int(row[0] if row else 0) // max(1, rows or BATCH_ROWS)))
    key_list = ", ".join(keys)
    source = relation
    if batches > 1:  # the rows once, in batch order, so that each batch reads its own
        source = "m_batch_rows"
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {source} AS SELECT *, "
            f"hash({key_list}) % {batches} AS _batch FROM {relation} ORDER BY _batch"
        )
    for batch in range(batches):
        where = f"WHERE _batch = {batch}" if batches > 1 else ""
        query = f"SELECT {select} FROM {source} {where} GROUP BY {key_list}"
        if batch == 0 and not append:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {target} AS {query}")
        else:
            con.execute(f"INSERT INTO {target} {query}")
    if batches > 1:
        con.execute(f"DROP TABLE {source}")


def sum_sql(value: str, reduceat: bool, position: str = "pos", min_count: int = 0) -> str:
    """An aggregate: the group's ``value`` summed as pandas sums it (see
    :func:`takes_reduceat`); a group without values sums to 0 (``min_count`` 1: empty)."""
    if reduceat:
        return f"m_reduceat(list({value} ORDER BY {position}))"
    kahan = f"fsum({value} ORDER BY {position})"
    return kahan if min_count else f"coalesce({kahan}, 0.0)"
