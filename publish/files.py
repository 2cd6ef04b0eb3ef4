"""Data files of a release, written by DuckDB: canonical row order, deterministic CSV and Parquet.

The same table always gives the same bytes: rows sorted by primary key (or by
every column), no timestamps, fixed formatting. CSV is UTF-8 and RFC 4180
(CRLF line ends, minimal quoting); text cells that a spreadsheet would run as a
formula are made safe with a leading apostrophe (the Parquet file keeps the
value exactly as published).

Every cell is an SQL expression (:func:`cell_sql`) and the files are written
with ``COPY`` from the tables' Parquet, so a table of any size is written in
DuckDB's bounded memory (sorts spill to its temporary folder); a release sorts a
table once, writing its Parquet file, and reads its CSV from that file in order
(:func:`write_both`). The rules, per schema type:

* empty (NULL, NaN) -> nothing;
* boolean -> ``true`` / ``false``; integer and year -> the digits;
* number -> the digits when the value is a whole number below 10^15, else
  Python's shortest round-trip form (``0.1``, ``1e+16``; DuckDB's text of a
  double is the same);
* date -> ``YYYY-MM-DD``; datetime -> UTC ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``;
* text -> as is, with ``'`` in front when it starts like a formula.

The row order sorts each column as text: empty first, numbers as
``+032.10f`` (so positives before negatives), dates as ISO text. Rows are
sorted by the primary key alone when it is unique, else (or without a key) by
every column; rows that tie on every key keep their order in the source.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from assets import warehouse
from assets.harmonise.schema import arrow_schema, field_types, table_schema
from assets.warehouse import duckdb_type, empty_table_sql, literal, quote

#: A text cell starting with one of these makes a spreadsheet run it as a formula (OWASP
#: CSV injection): =, +, -, @, tab, carriage return.
FORMULA_CHARACTERS = "=+-@\t\r"
#: The same as a regular expression.
FORMULA_START = "^[=+\\-@\t\r]"
#: The column every source relation has besides the schema's: the row's position in its
#: source, the last sort key (so rows equal in every key keep the order they came in).
ROW = warehouse.ROW
#: SQL function for the sort text of a number DuckDB's ``printf`` does not spell as Python
#: does (magnitudes from 10^20, infinities); registered by :func:`prepare`.
_NUMBER_KEY = "cdcompact_number_key"
_PLAIN_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def prepare(con: duckdb.DuckDBPyConnection) -> None:
    """Make ``con`` able to run this module's SQL (registers the number sort function)."""
    from duckdb.sqltypes import DOUBLE, VARCHAR

    found = con.execute(
        "SELECT count(*) FROM duckdb_functions() WHERE function_name = ?", [_NUMBER_KEY]
    ).fetchone()
    if not found or not found[0]:
        con.create_function(_NUMBER_KEY, _number_key, [DOUBLE], VARCHAR, side_effects=False)


def _number_key(value: float) -> str:
    return f"{value:+032.10f}"


def cell_sql(kind: str, column: str) -> str:
    """SQL for the CSV text of a schema-typed cell (NULL when empty), before CSV quoting."""
    c = quote(column)
    if kind == "boolean":
        return f"CASE WHEN {c} THEN 'true' WHEN NOT {c} THEN 'false' END"
    if kind in {"integer", "year"}:
        return f"CAST({c} AS VARCHAR)"
    if kind == "number":
        return (
            f"CASE WHEN {c} IS NULL OR isnan({c}) THEN NULL "
            f"WHEN abs({c}) < 1e15 AND {c} = floor({c}) THEN CAST(CAST({c} AS BIGINT) AS VARCHAR) "
            f"ELSE CAST({c} AS VARCHAR) END"
        )
    if kind == "date":
        return f"strftime({c}, '%Y-%m-%d')"
    if kind == "datetime":
        return (
            f"strftime({c}, '%Y-%m-%dT%H:%M:%S') || CASE WHEN strftime({c}, '%f') = '000000' "
            f"THEN 'Z' ELSE '.' || strftime({c}, '%f') || 'Z' END"
        )
    # list_contains, not IN: DuckDB plans an IN list as a join, which keeps neither the
    # order of the rows (see write_both) nor its memory small beside a sort of wide rows
    first = ", ".join(str(ord(char)) for char in FORMULA_CHARACTERS)
    return f"CASE WHEN list_contains([{first}], ord({c})) THEN '''' || {c} ELSE {c} END"


def _quoted(kind: str, cell: str) -> str:
    """SQL for the CSV field of a cell column: in quotes (inner quotes doubled) when it holds
    a comma, a quote or a line break, as Python's ``csv.QUOTE_MINIMAL``. Only text can."""
    if kind in {"boolean", "integer", "year", "number", "date", "datetime"}:
        return cell
    needs = " OR ".join(
        f"contains({cell}, {char})" for char in ("','", "'\"'", "chr(10)", "chr(13)")
    )
    return f"CASE WHEN {needs} THEN '\"' || replace({cell}, '\"', '\"\"') || '\"' ELSE {cell} END"


def sort_sql(kind: str, column: str) -> str:
    """SQL for a column's sort key: ordered (NULLS FIRST) as its text key is (module docstring)."""
    c = quote(column)
    if kind in {"integer", "year", "number"}:
        x = f"CAST({c} AS DOUBLE)"
        return (
            f"CASE WHEN {x} IS NULL OR isnan({x}) THEN '' "
            f"WHEN abs({x}) < 1e20 THEN printf('%+032.10f', {x}) ELSE {_NUMBER_KEY}({x}) END"
        )
    if kind == "string":
        return f"coalesce({c}, '')"
    return c  # ISO dates, and Python's text of timestamps and booleans, sort as the values


def primary_key(table: str) -> list[str]:
    key = table_schema(table).get("primaryKey") or []
    return [key] if isinstance(key, str) else list(key)


def sort_keys(con: duckdb.DuckDBPyConnection, table: str, relation: str) -> list[str]:
    """The sort keys (SQL over ``relation``, which has :data:`ROW`) of the table's canonical
    order: the primary key, then every other column when the key is not unique, then
    :data:`ROW`."""
    types = field_types(table)
    key = primary_key(table)
    keys = [sort_sql(types[c], c) for c in key]
    ties = True
    if key:
        found = con.execute(
            f"SELECT EXISTS (SELECT 1 FROM {relation} GROUP BY {', '.join(keys)} "
            "HAVING count(*) > 1)"
        ).fetchone()
        ties = bool(found and found[0])
    if ties:
        keys += [sort_sql(kind, c) for c, kind in types.items() if c not in key]
    return [*keys, quote(ROW)]


def parquet_relation(table: str, path: Path | None) -> str:
    """SQL relation of a table stored as Parquet, with the schema's columns and types and
    :data:`ROW`; no file (``None`` or missing) is an empty table, a column the file lacks
    (a release of an earlier schema) is empty."""
    if path is None or not path.exists():
        return f"(SELECT *, CAST(0 AS BIGINT) AS {quote(ROW)} FROM ({empty_table_sql(table)}))"
    present = set(pq.read_schema(path).names)
    columns = ", ".join(
        f"CAST({quote(f.name) if f.name in present else 'NULL'} AS {duckdb_type(f.type)}) "
        f"AS {quote(f.name)}"
        for f in arrow_schema(table)
    )
    source = f"read_parquet({literal(str(path))}, file_row_number = true)"
    return f"(SELECT {columns}, file_row_number AS {quote(ROW)} FROM {source})"


def header(table: str) -> str:
    """The CSV header line: the schema's field names (which never need quoting)."""
    names = list(field_types(table))
    unusual = [n for n in names if not _PLAIN_NAME.match(n)]
    if unusual:
        raise ValueError(f"{table}: field names a CSV header would have to quote: {unusual}")
    return ",".join(names) + "\r\n"


def _ordered(relation: str, keys: list[str], outer: str, inner: str) -> str:
    """``SELECT outer FROM (SELECT inner, <keys> FROM relation) ORDER BY <keys>``; without
    keys, the rows in the order ``relation`` gives them."""
    if not keys:
        return f"SELECT {outer} FROM (SELECT {inner} FROM {relation})"
    named = ", ".join(f"{k} AS __k{i}" for i, k in enumerate(keys))
    order = ", ".join(f"__k{i} NULLS FIRST" for i in range(len(keys)))
    return f"SELECT {outer} FROM (SELECT {inner}, {named} FROM {relation}) ORDER BY {order}"


def fields_sql(table: str, relation: str, keys: list[str]) -> str:
    """Every row's CSV fields (one column per field, NULL when empty) in canonical order."""
    types = field_types(table)
    fields = ", ".join(
        f"{_quoted(kind, _cell(i))} AS {quote(name)}"
        for i, (name, kind) in enumerate(types.items())
    )
    return _ordered(relation, keys, fields, _cells(table))


def _cell(index: int) -> str:
    return f"__c{index}"


def _cells(table: str) -> str:
    """The select list of every cell's text, as ``__c0``, ``__c1``... (:func:`_cell`)."""
    return ", ".join(
        f"{cell_sql(kind, name)} AS {_cell(i)}"
        for i, (name, kind) in enumerate(field_types(table).items())
    )


def write_csv(
    con: duckdb.DuckDBPyConnection, table: str, relation: str, path: Path, keys: list[str]
) -> None:
    """The table's CSV file (header first) at ``path``, from ``relation`` sorted by ``keys``
    (no keys: in the order ``relation`` gives its rows).

    DuckDB writes the fields, already quoted as the rules say, without quoting anything
    itself (it would quote an empty text or a ``#``)."""
    header(table)  # refuses names a header would have to quote
    con.execute(
        f"COPY ({fields_sql(table, relation, keys)}) TO {literal(str(path))} "
        "(FORMAT csv, HEADER true, DELIMITER ',', QUOTE '', ESCAPE '', NEW_LINE '\r\n')"
    )


def write_parquet(
    con: duckdb.DuckDBPyConnection, table: str, relation: str, path: Path, keys: list[str]
) -> None:
    """The table's Parquet file (zstd, the schema's types, canonical order) at ``path``."""
    columns = ", ".join(quote(name) for name in field_types(table))
    con.execute(
        f"COPY ({_ordered(relation, keys, columns, columns)}) TO {literal(str(path))} "
        "(FORMAT parquet, COMPRESSION zstd)"
    )


def write_both(
    con: duckdb.DuckDBPyConnection,
    table: str,
    relation: str,
    csv_path: Path,
    parquet_path: Path,
    keys: list[str],
) -> None:
    """The table's Parquet and CSV files with one sort: the Parquet file in canonical order
    (:func:`write_parquet`), then the CSV file read from it in its order (the same rows and
    values: the Parquet file holds the schema's types exactly). Sorting a large table is
    most of the cost of writing it, and at the size of the whole of IATI the second sort
    of the same rows made the release grow faster than its input."""
    write_parquet(con, table, relation, parquet_path, keys)
    with warehouse.in_file_order(con):
        write_csv(con, table, f"read_parquet({literal(str(parquet_path))})", csv_path, [])
