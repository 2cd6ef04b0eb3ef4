"""Data files of a release: canonical row order, deterministic CSV and Parquet bytes.

The same table always gives the same bytes: rows sorted by primary key (or by
every column), no timestamps, fixed formatting. CSV is UTF-8 and RFC 4180
(CRLF line ends, minimal quoting); text cells that a spreadsheet would run as a
formula are made safe with a leading apostrophe (the Parquet file keeps the
value exactly as published).

Cells are formatted a column at a time (Arrow and numpy), not one by one: a
release of a million rows is written in seconds. The rules, per schema type:

* empty (None, NA, NaN) -> nothing;
* boolean -> ``true`` / ``false``; integer and year -> the digits;
* number -> the digits when the value is a whole number below 10^15, else
  Python's shortest round-trip form (``0.1``, ``1e+16``);
* date -> ``YYYY-MM-DD``; datetime -> UTC ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``;
* text -> as is, with ``'`` in front when it starts like a formula.

The row order sorts each column as text: empty first, numbers as
``+032.10f`` (so positives before negatives), dates as ISO text.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import math
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from assets.harmonise.schema import field_types, table_frame, table_schema
from assets.harmonise.store import arrow_schema

#: A text cell starting with one of these makes a spreadsheet run it as a formula (OWASP
#: CSV injection): =, +, -, @, tab, carriage return (an RE2 pattern).
FORMULA_START = "^[=+\\-@\t\r]"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_order(table: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in a stable order: by primary key where the table has one, else by every column.

    Ties on the key (a key that is not unique) are broken by the other columns, in
    schema order, so the order never depends on the order rows came in."""
    typed = table_frame(table, frame)
    if typed.empty:
        return typed
    return typed.take(_order(table, typed)).reset_index(drop=True)


def _order(table: str, typed: pd.DataFrame) -> np.ndarray:
    """The positions of ``typed``'s rows in canonical order."""
    key = table_schema(table).get("primaryKey") or []
    columns = [key] if isinstance(key, str) else list(key)
    rest = [c for c in typed.columns if c not in columns]
    types = field_types(table)
    keys = {f"k{i}": _sort_keys(types[c], typed[c]) for i, c in enumerate(columns)}
    if not columns or _has_ties(keys):
        keys.update(
            {f"k{len(columns) + i}": _sort_keys(types[c], typed[c]) for i, c in enumerate(rest)}
        )
    order = pc.sort_indices(pa.table(keys), sort_keys=[(k, "ascending") for k in keys])
    return np.asarray(order.to_numpy())


def _has_ties(keys: dict[str, pa.Array]) -> bool:
    if not keys:
        return True
    grouped = pa.table(keys).group_by(list(keys)).aggregate([])
    return grouped.num_rows < len(next(iter(keys.values())))


def _sort_keys(kind: str, series: pd.Series) -> pa.Array:
    """The text each value of a column sorts by (empty for a missing value)."""
    if kind in {"integer", "year", "number"}:
        values = _floats(series)
        return pa.array(
            ["" if v != v else f"{v:+032.10f}" for v in values.tolist()], type=pa.string()
        )
    if kind == "string":
        return pc.fill_null(_arrow_text(series), "")
    return pa.array(["" if _missing(v) else str(v) for v in series.tolist()], type=pa.string())


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _floats(series: pd.Series) -> np.ndarray:
    """A numeric column as float64, NaN where empty."""
    return pd.to_numeric(series, errors="coerce").astype("float64").to_numpy(na_value=np.nan)


def _arrow_text(series: pd.Series) -> pa.Array:
    """A column as Arrow text (null where empty); values that are not text yet become str()."""
    if isinstance(series.dtype, pd.StringDtype):
        return pa.array(series, type=pa.string(), from_pandas=True)
    values = series.astype("object").where(series.notna(), None).tolist()
    return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def column_cells(kind: str, series: pd.Series) -> list[str]:
    """Every cell of a typed column as its CSV text (the rules in the module docstring)."""
    if kind == "string":
        text = pc.fill_null(_arrow_text(series), "")
        formula = pc.match_substring_regex(text, FORMULA_START)
        return pc.if_else(formula, pc.binary_join_element_wise("'", text, ""), text).to_pylist()
    if kind == "boolean":
        flags = series.astype("boolean")
        return np.where(flags.isna(), "", np.where(flags.fillna(False), "true", "false")).tolist()
    if kind in {"integer", "year"}:
        whole = pd.array(series, dtype="Int64")
        present = ~whole.isna()
        cells = np.full(len(whole), "", dtype=object)
        cells[present] = whole[present].to_numpy(dtype=np.int64).astype(str)
        return list(cells.tolist())
    if kind == "number":
        values = _floats(series)
        cells = np.full(len(values), "", dtype=object)
        present = ~np.isnan(values)
        integral = present & (np.abs(values) < 1e15) & (np.floor(values) == values)
        other = present & ~integral
        cells[integral] = values[integral].astype(np.int64).astype(str)
        cells[other] = [repr(v) for v in values[other].tolist()]
        return list(cells.tolist())
    if kind == "date":
        return [
            "" if _missing(v) else (v.isoformat() if isinstance(v, dt.date) else str(v))
            for v in series.tolist()
        ]
    if kind == "datetime":
        if series.empty:
            return []  # (``map`` keeps an empty column's integer dtype: no text to add to)
        stamps = pd.to_datetime(series, utc=True)
        text = stamps.dt.strftime("%Y-%m-%dT%H:%M:%S")
        micro = stamps.dt.microsecond
        fraction = micro.map(lambda m: f".{int(m):06d}Z" if m == m and m else "Z")
        return (text + fraction).where(stamps.notna(), "").tolist()
    return column_cells("string", series)


def csv_bytes(table: str, frame: pd.DataFrame) -> bytes:
    """The table as deterministic RFC 4180 CSV (header row first)."""
    return _csv(table, canonical_order(table, frame))


def parquet_bytes(table: str, frame: pd.DataFrame) -> bytes:
    """The table as Parquet (zstd), typed from schema/, in the same order as the CSV."""
    return _parquet(table, canonical_order(table, frame))


def data_files(table: str, frame: pd.DataFrame) -> tuple[bytes, bytes]:
    """(CSV, Parquet) of a table, ordered once for both."""
    ordered = canonical_order(table, frame)
    return _csv(table, ordered), _parquet(table, ordered)


def _csv(table: str, ordered: pd.DataFrame) -> bytes:
    types = field_types(table)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(list(types))
    columns = [column_cells(kind, ordered[name]) for name, kind in types.items()]
    writer.writerows(zip(*columns, strict=True))
    return buffer.getvalue().encode("utf-8")


def _parquet(table: str, ordered: pd.DataFrame) -> bytes:
    arrow = pa.Table.from_pandas(ordered, schema=arrow_schema(table), preserve_index=False)
    arrow = arrow.replace_schema_metadata(None)  # no pandas/library metadata: stable bytes
    sink = io.BytesIO()
    pq.write_table(arrow, sink, compression="zstd")
    return sink.getvalue()


def read_parquet_bytes(table: str, data: bytes) -> pd.DataFrame:
    return table_frame(table, pq.read_table(io.BytesIO(data)).to_pandas())
