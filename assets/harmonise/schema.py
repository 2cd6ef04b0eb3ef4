"""The CD results schema (schema/*.json, Frictionless Table Schemas) as frames.

The schema files are the single source of truth for table fields: harmonisers
build their output through :func:`table_frame`, so a column that is not in the
schema, or a value of the wrong type, never reaches a published table.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from itertools import chain
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from assets.settings import project_root

#: Frictionless field type -> pandas dtype of the harmonised frame.
#: Dates stay Python ``datetime.date`` objects (Parquet date32); datetimes are
#: timezone-aware UTC.
#: IATI TransactionType codes of actual flows, disbursement and expenditure: the money
#: that reached someone, which cannot lie in the future.
ACTUAL_DISBURSEMENT_TYPES: tuple[str, ...] = ("3", "4")

PANDAS_DTYPES: dict[str, str] = {
    "string": "string",
    "integer": "Int64",
    "number": "Float64",
    "boolean": "boolean",
    "date": "object",
    "datetime": "datetime64[us, UTC]",
    "year": "Int64",
}


#: The exact extension dtypes (``"string"`` alone would also match pandas' NaN-based
#: ``str`` dtype, whose missing values compare differently).
_EXACT_DTYPES: dict[str, Any] = {
    "string": pd.StringDtype(na_value=pd.NA),
    "integer": pd.Int64Dtype(),
    "year": pd.Int64Dtype(),
    "number": pd.Float64Dtype(),
    "boolean": pd.BooleanDtype(),
}


#: Tables a release makes from the codelists and the codes and organisations the data
#: holds (:mod:`publish.names`): not harmonised, so not checked before publishing (a
#: release verifies every foreign key to them, :mod:`publish.verify`).
NAME_TABLES = (
    "countries",
    "sectors",
    "transaction_types",
    "aid_types",
    "finance_types",
    "flow_types",
    "organisation_types",
    "organisations",
)


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
    if isinstance(records, pd.DataFrame):
        frame = records
    else:
        rows = records if isinstance(records, list) else list(records)
        _check_fields(table, chain.from_iterable(rows))
        fast = _from_records(table, rows)
        if fast is not None:
            return fast
        frame = pd.DataFrame.from_records(rows)
    _check_fields(table, frame.columns)
    return _typed(table, frame)


def _typed(table: str, frame: pd.DataFrame) -> pd.DataFrame:
    """The lenient conversion: each schema field of ``frame`` to its dtype (missing: empty)."""
    types = field_types(table)
    columns: dict[str, pd.Series] = {}
    length = len(frame)
    for name, kind in types.items():
        raw = frame[name] if name in frame.columns else pd.Series([None] * length, dtype="object")
        raw = raw.reset_index(drop=True)
        target = PANDAS_DTYPES.get(kind, "string")
        exact = _EXACT_DTYPES.get(kind)
        if exact is not None and raw.dtype == exact:
            columns[name] = raw  # already typed (a frame read back or built here)
        elif kind == "date":
            columns[name] = pd.Series([_to_date(v) for v in raw], dtype="object")
        elif kind == "datetime":
            columns[name] = pd.to_datetime(raw, utc=True, format="ISO8601").astype(
                PANDAS_DTYPES[kind]
            )
        else:
            # astype("string") turns every value into str() and None / NaN / NA into NA
            columns[name] = raw.astype(target)
    return pd.DataFrame(columns, index=pd.RangeIndex(length))


_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "integer": pa.int64(),
    "year": pa.int64(),
    "number": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "datetime": pa.timestamp("us", tz="UTC"),
}
_PANDAS_OF_ARROW: dict[pa.DataType, Any] = {
    pa.string(): pd.StringDtype(na_value=pd.NA),
    pa.int64(): pd.Int64Dtype(),
    pa.float64(): pd.Float64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


def pandas_type_of_arrow(arrow_type: pa.DataType) -> Any:
    """The pandas extension dtype the schema uses for an Arrow type (None: Arrow's default)."""
    return _PANDAS_OF_ARROW.get(arrow_type)


@cache
def arrow_schema(table: str) -> pa.Schema:
    """The Arrow schema of a table, from its Table Schema."""
    return pa.schema(
        [
            pa.field(name, _ARROW_TYPES.get(kind, pa.string()))
            for name, kind in field_types(table).items()
        ]
    )


def _check_fields(table: str, names: Iterable[str]) -> None:
    """A field that is not in the schema is an error (a typo in a harmoniser fails loudly)."""
    unknown = sorted(set(names) - set(field_types(table)))
    if unknown:
        raise ValueError(f"{table}: fields not in schema/{table}.json: {', '.join(unknown)}")


def _from_records(table: str, rows: list[Mapping[str, Any]]) -> pd.DataFrame | None:
    """Records whose values already have the schema's types, converted in C by Arrow;
    None when a value needs the slower, lenient conversion (a number as text, ...)."""
    arrow = _arrow_from_records(table, rows) if rows else None
    return None if arrow is None else frame_of_arrow(arrow)


def _arrow_from_records(table: str, rows: list[Mapping[str, Any]]) -> pa.Table | None:
    try:
        arrow = pa.Table.from_pylist(rows, schema=arrow_schema(table))
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return None
    for index, column in enumerate(arrow.columns):
        # a float NaN is a missing value here, as in the lenient path
        if pa.types.is_floating(column.type) and pc.any(pc.is_nan(column)).as_py():
            arrow = arrow.set_column(
                index, arrow.field(index), pc.if_else(pc.is_nan(column), None, column)
            )
    return arrow


def table_arrow(table: str, records: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Records (dicts) -> an Arrow table with exactly the schema's columns and types: what
    :func:`table_frame` gives, without going through pandas when the values are typed."""
    rows = records if isinstance(records, list) else list(records)
    if not rows:
        return arrow_schema(table).empty_table()
    _check_fields(table, chain.from_iterable(rows))
    fast = _arrow_from_records(table, rows)
    if fast is not None:
        return fast
    frame = _typed(table, pd.DataFrame.from_records(rows))  # a value needs the lenient path
    return pa.Table.from_pandas(frame, schema=arrow_schema(table), preserve_index=False)


def frame_of_arrow(arrow: pa.Table) -> pd.DataFrame:
    """An Arrow table with a schema's types as a frame with the schema's pandas dtypes."""
    return arrow.to_pandas(types_mapper=_PANDAS_OF_ARROW.get)


class ArrowTables(Mapping[str, pd.DataFrame]):
    """Tables kept as Arrow (as written to Parquet), each turned into a typed frame only
    when it is first read as one."""

    def __init__(self, arrow: Mapping[str, pa.Table]) -> None:
        self.arrow = dict(arrow)
        self._frames: dict[str, pd.DataFrame] = {}

    def __getitem__(self, table: str) -> pd.DataFrame:
        if table not in self._frames:
            self._frames[table] = frame_of_arrow(self.arrow[table])
        return self._frames[table]

    def __iter__(self) -> Iterator[str]:
        return iter(self.arrow)

    def __len__(self) -> int:
        return len(self.arrow)

    def rows(self, table: str) -> int:
        return int(self.arrow[table].num_rows)


def empty_frame(table: str) -> pd.DataFrame:
    return table_frame(table, [])
