"""Outcomes of validated batches, kept between runs so unchanged rows are not validated again.

The runner (:mod:`expectations.runner`) validates a table in batches of rows. A
batch's outcome depends only on its rows with their derived columns, the suite's
definition and, for the one calendar-dependent rule, the day; the runner digests
exactly that into the batch's key. :class:`BatchCache` keeps, per table, the
outcome of every batch of the last run under its key (one JSON file per table),
so on a night where one file changed only the batches holding its rows are
validated again. Outcomes hold row positions within their batch, never row
numbers of the table, so rows moving up or down the table do not matter.

Failing values are kept with their types (dates, timestamps, tuples of a compound
key, numpy scalars as Python ones) so a reused outcome renders as a fresh one.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: Bumped when what an outcome holds changes: older files are then ignored.
FORMAT = 1


def encode(value: Any) -> Any:
    """A failing value GX reported as JSON, tagged so :func:`decode` restores its type."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, pd.Timestamp | dt.datetime):
        return {"timestamp": pd.Timestamp(value).isoformat()}
    if isinstance(value, dt.date):
        return {"date": value.isoformat()}
    if isinstance(value, tuple | list):
        return {"tuple" if isinstance(value, tuple) else "list": [encode(v) for v in value]}
    if isinstance(value, dict):
        return {"dict": [[str(k), encode(v)] for k, v in value.items()]}
    raise TypeError(f"cannot keep a failing value of type {type(value).__name__}: {value!r}")


def decode(value: Any) -> Any:
    """The value :func:`encode` was given (numpy scalars come back as Python ones)."""
    if not isinstance(value, dict):
        return value
    ((kind, body),) = value.items()
    if kind == "float":
        return float(body)
    if kind == "timestamp":
        return pd.Timestamp(body)
    if kind == "date":
        return dt.date.fromisoformat(body)
    if kind == "tuple":
        return tuple(decode(v) for v in body)
    if kind == "list":
        return [decode(v) for v in body]
    if kind == "dict":
        return {k: decode(v) for k, v in body}
    raise ValueError(f"unknown kept value {value!r}")


class BatchCache:
    """Per table, the outcomes of the batches validated in the last run, by batch key.

    ``folder`` None keeps nothing between runs. :attr:`validated` and :attr:`reused`
    count the batches of this run by table.
    """

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self.validated: dict[str, int] = {}
        self.reused: dict[str, int] = {}
        self._known: dict[str, dict[str, Any]] = {}
        self._used: dict[str, dict[str, Any]] = {}

    def _path(self, table: str) -> Path | None:
        return None if self.folder is None else self.folder / f"{table}.json"

    def _load(self, table: str) -> dict[str, Any]:
        if table not in self._known:
            path = self._path(table)
            known: dict[str, Any] = {}
            if path is not None and path.exists():
                try:
                    payload = json.loads(path.read_text(encoding="utf-8"))
                except ValueError:
                    payload = {}
                if isinstance(payload, dict) and payload.get("format") == FORMAT:
                    known = dict(payload.get("batches") or {})
            self._known[table] = known
        return self._known[table]

    def get(self, table: str, key: str) -> Any | None:
        """The outcome kept under ``key`` (counted as reused), or None."""
        outcome = self._load(table).get(key)
        if outcome is not None:
            self._used.setdefault(table, {})[key] = outcome
            self.reused[table] = self.reused.get(table, 0) + 1
        return outcome

    def put(self, table: str, key: str, outcome: Any) -> None:
        """Keep the outcome of a batch just validated."""
        self._used.setdefault(table, {})[key] = outcome
        self.validated[table] = self.validated.get(table, 0) + 1

    def save(self, tables: Mapping[str, object] | None = None) -> None:
        """Write, per table of this run, the outcomes of its batches (and only those: the
        batches of earlier runs that are gone are forgotten)."""
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        for table in tables if tables is not None else self._used:
            path = self._path(table)
            assert path is not None
            payload = {"format": FORMAT, "batches": self._used.get(table, {})}
            temporary = path.with_name(f".{path.name}.tmp")
            temporary.write_text(json.dumps(payload, sort_keys=True), encoding="utf-8")
            temporary.replace(path)
