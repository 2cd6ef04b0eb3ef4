"""Data files of a release: canonical row order, deterministic CSV and Parquet bytes.

The same table always gives the same bytes: rows sorted by primary key (or by
every column), no timestamps, fixed formatting. CSV is UTF-8 and RFC 4180
(CRLF line ends, minimal quoting); text cells that a spreadsheet would run as a
formula are made safe with a leading apostrophe (the Parquet file keeps the
value exactly as published).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import math
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from assets.harmonise.schema import field_types, table_frame, table_schema
from assets.harmonise.store import arrow_schema

#: First characters that make a spreadsheet treat a cell as a formula (OWASP CSV injection).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_order(table: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in a stable order: by primary key where the table has one, else by every column."""
    typed = table_frame(table, frame)
    key = table_schema(table).get("primaryKey") or []
    columns = [key] if isinstance(key, str) else list(key)
    columns += [c for c in typed.columns if c not in columns]
    if typed.empty:
        return typed
    sort_keys = pd.DataFrame({f"k{i}": typed[c].map(_sort_text) for i, c in enumerate(columns)})
    order = sort_keys.sort_values(list(sort_keys.columns), kind="stable").index
    return typed.loc[order].reset_index(drop=True)


def _sort_text(value: Any) -> str:
    if _missing(value):
        return ""
    if isinstance(value, float | int) and not isinstance(value, bool):
        return f"{float(value):+032.10f}"
    return str(value)


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def safe_text(text: str) -> str:
    """A text cell that cannot run as a spreadsheet formula."""
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def _cell(kind: str, value: Any) -> str:
    if _missing(value):
        return ""
    if kind == "boolean":
        return "true" if bool(value) else "false"
    if kind in {"integer", "year"}:
        return str(int(value))
    if kind == "number":
        number = float(value)
        return str(int(number)) if number.is_integer() and abs(number) < 1e15 else repr(number)
    if kind == "date":
        return value.isoformat() if isinstance(value, dt.date) else str(value)
    if kind == "datetime":
        stamp = pd.Timestamp(value).tz_convert("UTC")
        return stamp.strftime("%Y-%m-%dT%H:%M:%S") + (
            f".{stamp.microsecond:06d}Z" if stamp.microsecond else "Z"
        )
    return safe_text(str(value))


def csv_bytes(table: str, frame: pd.DataFrame) -> bytes:
    """The table as deterministic RFC 4180 CSV (header row first)."""
    types = field_types(table)
    ordered = canonical_order(table, frame)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(list(types))
    columns = [(name, kind, ordered[name].tolist()) for name, kind in types.items()]
    for index in range(len(ordered)):
        writer.writerow([_cell(kind, values[index]) for _, kind, values in columns])
    return buffer.getvalue().encode("utf-8")


def parquet_bytes(table: str, frame: pd.DataFrame) -> bytes:
    """The table as Parquet (zstd), typed from schema/, in the same order as the CSV."""
    ordered = canonical_order(table, frame)
    arrow = pa.Table.from_pandas(ordered, schema=arrow_schema(table), preserve_index=False)
    arrow = arrow.replace_schema_metadata(None)  # no pandas/library metadata: stable bytes
    sink = io.BytesIO()
    pq.write_table(arrow, sink, compression="zstd")
    return sink.getvalue()


def read_parquet_bytes(table: str, data: bytes) -> pd.DataFrame:
    return table_frame(table, pq.read_table(io.BytesIO(data)).to_pandas())
