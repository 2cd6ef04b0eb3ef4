"""The CD results schema (schema/*.json, Frictionless Table Schemas) as frames.

The schema files are the single source of truth for table fields: harmonisers
build their output through :func:`table_frame`, so a column that is not in the
schema, or a value of the wrong type, never reaches a published table.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

from assets.settings import project_root

#: Frictionless field type -> pandas dtype of the harmonised frame.
#: Dates stay Python ``datetime.date`` objects (Parquet date32); datetimes are
#: timezone-aware UTC.
PANDAS_DTYPES: dict[str, str] = {
    "string": "string",
    "integer": "Int64",
    "number": "Float64",
    "boolean": "boolean",
    "date": "object",
    "datetime": "datetime64[us, UTC]",
    "year": "Int64",
}


def schema_dir() -> Path:
    return project_root() / "schema"


@cache
def _load(directory: str) -> dict[str, dict[str, Any]]:
    tables: dict[str, dict[str, Any]] = {}
    for path in sorted(Path(directory).glob("*.json")):
        if path.name == "schema-version.json":
            continue
        descriptor = json.loads(path.read_text(encoding="utf-8"))
        tables[path.stem] = descriptor
    return tables


def table_schemas(directory: Path | None = None) -> dict[str, dict[str, Any]]:
    """Every table's Table Schema descriptor, by table name (the file's stem)."""
    return _load(str(directory or schema_dir()))


def table_schema(table: str, directory: Path | None = None) -> dict[str, Any]:
    try:
        return table_schemas(directory)[table]
    except KeyError:
        raise KeyError(f"no table schema named {table!r} in {directory or schema_dir()}") from None


def field_names(table: str) -> list[str]:
    return [f["name"] for f in table_schema(table)["fields"]]


def field_types(table: str) -> dict[str, str]:
    return {f["name"]: f["type"] for f in table_schema(table)["fields"]}


def schema_version(directory: Path | None = None) -> str:
    """The schema's semantic version (schema/schema-version.json)."""
    path = (directory or schema_dir()) / "schema-version.json"
    return str(json.loads(path.read_text(encoding="utf-8"))["schema_version"])


def _is_missing(value: Any) -> bool:
    """None, pd.NA or NaN (what pandas puts in for a key a record does not have)."""
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def _to_date(value: Any) -> dt.date | None:
    if _is_missing(value):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def table_frame(table: str, records: Iterable[Mapping[str, Any]] | pd.DataFrame) -> pd.DataFrame:
    """Records (dicts) or a frame -> a frame with exactly the schema's columns, typed.

    Missing fields become empty; a field that is not in the schema is an error,
    so a typo in a harmoniser fails loudly instead of vanishing.
    """
    types = field_types(table)
    frame = (
        records.copy()
        if isinstance(records, pd.DataFrame)
        else pd.DataFrame.from_records(list(records))
    )
    unknown = sorted(set(frame.columns) - set(types))
    if unknown:
        raise ValueError(f"{table}: fields not in schema/{table}.json: {', '.join(unknown)}")
    columns: dict[str, pd.Series] = {}
    length = len(frame)
    for name, kind in types.items():
        raw = frame[name] if name in frame.columns else pd.Series([None] * length, dtype="object")
        raw = raw.reset_index(drop=True)
        if kind == "date":
            columns[name] = pd.Series([_to_date(v) for v in raw], dtype="object")
        elif kind == "datetime":
            columns[name] = pd.to_datetime(raw, utc=True, format="ISO8601").astype(
                PANDAS_DTYPES[kind]
            )
        else:
            dtype = PANDAS_DTYPES.get(kind, "string")
            if kind == "string":
                raw = raw.map(lambda v: None if _is_missing(v) else str(v))
            columns[name] = raw.astype(dtype)
    return pd.DataFrame(columns, index=pd.RangeIndex(length))


def empty_frame(table: str) -> pd.DataFrame:
    return table_frame(table, [])
