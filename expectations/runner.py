"""Run the Great Expectations suites (:mod:`expectations.suites`) on tables held in DuckDB.

The tables are views of a DuckDB connection with their row numbers
(:func:`assets.warehouse.attach_tables` with ``row_numbers``, or
:func:`assets.warehouse.register_frames` for frames a caller holds). For each
table with a suite, :func:`validate_tables`:

1. computes the table's derived columns in SQL over the whole table and the other
   tables of the call (:mod:`expectations.suites`: share sums per activity, the
   activity's IATI version, outlier scores per currency, whether foreign keys exist,
   records accounted for), date columns as datetimes, into a temporary table of the
   connection (DuckDB spills it to disk past its memory limit);
2. cuts the rows into batches of about ``batch_rows`` rows: the rows of one group of
   source files (files grouped by a digest of their names, so a file's group does
   not depend on the other files' rows), or fixed runs of rows for tables without
   ``source_file``; rows whose primary key is not unique in the table form batches
   of their own with every row sharing their key, so GX's uniqueness expectations
   see each duplicate with its copies;
3. validates each batch with GX on a pandas frame indexed by the rows' numbers,
   unless :class:`expectations.batch_cache.BatchCache` holds the outcome of a batch
   with the same digest (its rows with their derived columns, the suite, and for the
   calendar-dependent rule the next day its verdict can change). With ``workers`` above
   one, the batches go to that many worker processes (GX holds the GIL), a few at a
   time, while this process cuts the next table into batches;
4. merges the batches' results into one result per expectation for the whole table,
   as GX reports a whole frame (counts summed, every failing row and value in row
   order, GX's own summary of the first 20), from which come the
   :class:`TableValidation` and, with ``data_docs_dir``, GX's Data Docs
   (:mod:`expectations.data_docs`): one validation per table, as before.

Only one batch of rows is ever held in pandas in a process (and a few more as Arrow
tables on their way to the worker processes). Every failing row
(``ExpectationOutcome.rows``, ``Example.row``) is a row number of the table as
written, so ``frame.loc[rows]`` of the table read back finds the rows and their
``source_file``. A rule over a group (the shares of one activity) fails on every
row of the failing group. Rules that need a table the call did not give (the
activities of ``transactions``, the target of a foreign key) see empty derived
values and pass without judging anything; :func:`validate_table` validates one
table alone in exactly that way.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import multiprocessing
import os
import sys
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

import duckdb
import great_expectations as gx
import numpy as np
import pandas as pd
import pyarrow as pa
from great_expectations.constants import MAX_RESULT_RECORDS
from great_expectations.core.batch_definition import BatchDefinition
from great_expectations.core.expectation_validation_result import (
    ExpectationValidationResult,
)
from great_expectations.data_context import AbstractDataContext
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.expectations.expectation import _format_map_output
from great_expectations.expectations.expectation_configuration import parse_result_format
from great_expectations.util import convert_to_json_serializable
from great_expectations.validator.v1_validator import Validator

from assets.harmonise.schema import table_schema
from assets.pool import kill_workers
from assets.warehouse import ROW, quote
from expectations.batch_cache import BatchCache, decode, encode
from expectations.data_docs import GX_LOCK, write_data_docs
from expectations.outcomes import Example, ExpectationOutcome, TableValidation, whole_number
from expectations.schema_checks import table_columns
from expectations.suites import (
    Tables,
    build_suite,
    date_columns,
    derived_rules,
    has_suite,
    next_verdict_change,
    register_functions,
)

#: Failing rows kept per expectation: enough to find them, small enough for metadata.
MAX_EXAMPLES = 5
#: Rows per batch (about): GX costs about 0.2 s per batch and table besides its rows.
BATCH_ROWS = 50_000

_DATASOURCE = "cdcompact"
#: GX contexts are not thread-safe: one lock for every use of GX in the process.
_LOCK = GX_LOCK
#: Per batch: every failing row's index label and value (all of them are merged).
_RESULT_FORMAT: dict[str, Any] = {"result_format": "COMPLETE", "partial_unexpected_count": 0}
#: The merged result of a table, as GX reports a whole frame (Data Docs show its sample).
_MERGED_FORMAT = parse_result_format({"result_format": "COMPLETE", "partial_unexpected_count": 20})
#: The batch column of the work table (the rows of one batch are validated together).
_BATCH = "_batch"
_WORK = "__gx_rows"


@cache
def _context() -> AbstractDataContext:
    """The process's ephemeral GX context, without progress bars."""
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    context.data_sources.add_pandas(_DATASOURCE)
    return context


@cache
def _suite(table: str, day: dt.date) -> gx.ExpectationSuite:
    return build_suite(table, today=day)


@cache
def _batch_definition(table: str) -> BatchDefinition:
    datasource = _context().data_sources.get(_DATASOURCE)
    asset = datasource.add_dataframe_asset(name=f"cdcompact.{table}")  # type: ignore[attr-defined]
    return asset.add_batch_definition_whole_dataframe(name=f"cdcompact.{table}")


@cache
def _suite_digest(table: str, day: dt.date) -> str:
    """sha256 of the suite's definition on ``day`` (GX's version included)."""
    definition = _suite(table, day).to_json_dict()
    payload = json.dumps([gx.__version__, definition], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def prepared_sql(table: str, tables: Tables) -> str:
    """What GX validates, in SQL: the view ``table``'s columns (date columns as datetimes,
    as pandas compares them) and its derived columns, then its row number."""
    dates = set(date_columns(table))
    columns = [
        f"TRY_CAST(t.{quote(c)} AS TIMESTAMP_S) AS {quote(c)}" if c in dates else f"t.{quote(c)}"
        for c in tables.columns
    ]
    joins: list[str] = []
    derived: dict[str, str] = {}
    for number, rule in enumerate(derived_rules(table)):
        if rule.column in derived:
            continue
        sql = rule.compute(tables, f"_d{number}")
        derived[rule.column] = f"CAST({sql.expression} AS {rule.sql_type}) AS {quote(rule.column)}"
        joins.extend(sql.joins)
    select = ", ".join([*columns, *derived.values(), f"t.{ROW}"])
    return f"SELECT {select} FROM {quote(table)} AS t {' '.join(joins)}"


def _work_table(con: duckdb.DuckDBPyConnection, table: str, prepared: str, rows: int) -> None:
    """:data:`_WORK`: ``prepared`` with :data:`_BATCH`, the batch of each row, stored in
    batch and row order (so that reading one batch skips the others' row groups). The
    batches are cut first, into a table of their own, then the rows are joined to them, then
    sorted: in one statement the windows, the derived columns' joins and the sort of every
    column could not spill on a large night (DuckDB ran out of memory at its limit)."""
    numbers, unsorted = f"{_WORK}_batches", f"{_WORK}_unsorted"
    con.execute(f"CREATE OR REPLACE TEMP TABLE {numbers} AS {_batch_numbers_sql(con, table, rows)}")
    try:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {unsorted} AS SELECT p.*, b.{_BATCH} "
            f"FROM ({prepared}) AS p JOIN {numbers} AS b USING ({ROW})"
        )
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {_WORK} AS SELECT * FROM {unsorted} "
            f"ORDER BY {_BATCH}, {ROW}"
        )
    finally:
        con.execute(f"DROP TABLE IF EXISTS {numbers}")
        con.execute(f"DROP TABLE IF EXISTS {unsorted}")


def _batch_numbers_sql(con: duckdb.DuckDBPyConnection, table: str, rows: int) -> str:
    """Each row of ``table`` (:data:`ROW`) with its batch (:data:`_BATCH`)."""
    columns = set(table_columns(con, table))
    key = table_schema(table).get("primaryKey")
    key_fields = [key] if isinstance(key, str) else list(key or [])
    if key_fields and set(key_fields) <= columns:
        keys = ", ".join(quote(f) for f in key_fields)
        duplicated = f"count(*) OVER (PARTITION BY {keys}) > 1"
        (n_duplicated,) = con.execute(
            f"SELECT count(*) FROM (SELECT {duplicated} AS dup FROM {quote(table)}) WHERE dup"
        ).fetchone() or (0,)
        # Rows sharing a key stay together, in parts of about `rows` rows.
        duplicate_part = f"hash({keys}) % {max(1, math.ceil(n_duplicated / rows))}"
    else:
        duplicated, duplicate_part = "false", "0"
    if "source_file" in columns:
        n_rows, n_files = con.execute(
            f"SELECT count(*), count(DISTINCT source_file) FROM {quote(table)}"
        ).fetchone() or (0, 0)
        # A file whose name's digest is a multiple of `every` starts a group of files: about
        # `every` files of about `rows` rows together, whatever the other files hold.
        every = 2 ** max(0, round(math.log2(max(1.0, rows * max(n_files, 1) / max(n_rows, 1)))))
        groups = (
            f"SELECT source_file, max(CASE WHEN h % {every} = 0 THEN h END) OVER (ORDER BY h, "
            "source_file ROWS UNBOUNDED PRECEDING) AS grp FROM (SELECT DISTINCT source_file, "
            f"md5_number(coalesce(source_file, '')) AS h FROM {quote(table)})"
        )
        grouped = (
            f"SELECT t.{ROW}, t.* EXCLUDE ({ROW}), g.grp FROM {quote(table)} AS t "
            f"LEFT JOIN ({groups}) AS g USING (source_file)"
        )
    else:
        grouped = f"SELECT *, {ROW} // {rows} AS grp FROM {quote(table)}"
    # The batches are cut on the table's few columns that decide them, then joined to
    # the prepared rows (windows over every column would sort them all).
    marked = (
        f"SELECT {ROW}, grp, {duplicated} AS dup, {duplicate_part} AS dup_part FROM ({grouped})"
    )
    parts = (
        f"SELECT {ROW}, dup, CASE WHEN NOT dup THEN grp END AS grp, CASE WHEN dup THEN "
        f"dup_part ELSE (row_number() OVER (PARTITION BY dup, grp ORDER BY {ROW}) - 1) "
        f"// {rows} END AS part FROM ({marked})"
    )
    return (
        f"SELECT {ROW}, dense_rank() OVER (ORDER BY dup, grp, part) - 1 AS {_BATCH} FROM ({parts})"
    )


@dataclass(frozen=True)
class _Batch:
    number: int
    rows: int
    digest: str
    calendar: str | None


def _batches(
    con: duckdb.DuckDBPyConnection, table: str, day: dt.date, columns: Sequence[str]
) -> list[_Batch]:
    """The batches of the work table with the digest of their rows (``columns``, the
    derived ones too, in row order) and their calendar value."""
    calendar = next_verdict_change(table, day) or "NULL"
    fields = ", ".join(f"{quote(c)} := {quote(c)}" for c in columns)
    rows = con.execute(
        f"SELECT {_BATCH}, count(*), md5(string_agg(md5(to_json(struct_pack({fields}))), '' "
        f"ORDER BY {ROW})), CAST({calendar} AS VARCHAR) FROM {_WORK} GROUP BY {_BATCH} "
        f"ORDER BY {_BATCH}"
    ).fetchall()
    return [_Batch(int(n), int(count), str(digest), c) for n, count, digest, c in rows]


def _rows(con: duckdb.DuckDBPyConnection, batch: int | None) -> pa.Table:
    """One batch of the work table in row order, with its row numbers (None: no rows)."""
    where = f"{_BATCH} = {int(batch)}" if batch is not None else "false"
    return con.execute(
        f"SELECT * EXCLUDE ({_BATCH}) FROM {_WORK} WHERE {where} ORDER BY {ROW}"
    ).to_arrow_table()


def _frame(rows: pa.Table) -> pd.DataFrame:
    """A batch's rows (:func:`_rows`) as pandas, indexed by row number."""
    frame = rows.to_pandas(types_mapper=_PANDAS_TYPES.get)
    frame.index = pd.Index(frame.pop(ROW).to_numpy(dtype="int64", na_value=-1))
    return frame


#: Arrow -> the schema's pandas dtypes (as the tables are read), large strings too.
_PANDAS_TYPES: dict[pa.DataType, Any] = {
    pa.string(): pd.StringDtype(na_value=pd.NA),
    pa.large_string(): pd.StringDtype(na_value=pd.NA),
    pa.int64(): pd.Int64Dtype(),
    pa.int32(): pd.Int64Dtype(),
    pa.float64(): pd.Float64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


def _batch_rows(con: duckdb.DuckDBPyConnection, batch: int) -> np.ndarray:
    return con.execute(
        f"SELECT {ROW} FROM {_WORK} WHERE {_BATCH} = {int(batch)} ORDER BY {ROW}"
    ).fetchnumpy()[ROW]


def _compact(result: ExpectationValidationResult, labels: pd.Index) -> dict[str, Any]:
    """What the merge needs of one expectation's result on one batch, JSON-safe, with
    failing rows as positions within the batch."""
    info = result.exception_info or {}
    raised = _raised(info)
    if raised is not None:
        return {"success": False, "exception": raised}
    details: dict[str, Any] = dict(result.result or {})
    if "unexpected_index_list" not in details:
        return {"success": bool(result.success), "result": convert_to_json_serializable(details)}
    indices = list(details.get("unexpected_index_list") or [])
    return {
        "success": bool(result.success),
        "element_count": int(details.get("element_count") or 0),
        "missing_count": whole_number(details.get("missing_count")),
        "unexpected_count": int(details.get("unexpected_count") or 0),
        "positions": [int(p) for p in labels.get_indexer(indices)],
        "values": [encode(v) for v in details.get("unexpected_list") or []],
    }


def _raised(info: Mapping[str, Any]) -> dict[str, Any] | None:
    """GX's exception info, flat or keyed by metric id, as one flat dict (None: no error)."""
    if info.get("raised_exception"):
        return {
            "raised_exception": True,
            "exception_message": info.get("exception_message"),
            "exception_traceback": info.get("exception_traceback"),
        }
    for value in info.values():
        if isinstance(value, dict) and value.get("raised_exception"):
            return _raised(value)
    return None


#: A failing row whose value GX did not list (past MAX_RESULT_RECORDS in its batch).
_NO_VALUE = object()


@dataclass
class _Merge:
    """One expectation's results on the batches of a table, merged as GX reports a frame."""

    success: bool = True
    exception: dict[str, Any] | None = None
    table_result: dict[str, Any] | None = None
    element_count: int = 0
    missing_count: int | None = 0
    unexpected_count: int = 0
    failures: list[tuple[int, Any]] = field(default_factory=list)

    def add(self, outcome: Mapping[str, Any], rows: np.ndarray | None) -> None:
        self.success = self.success and bool(outcome["success"])
        if outcome.get("exception") is not None:
            self.exception = self.exception or dict(outcome["exception"])
            return
        if "result" in outcome:
            self.table_result = self.table_result or dict(outcome["result"])
            return
        self.element_count += int(outcome["element_count"])
        missing = outcome.get("missing_count")
        self.missing_count = None if missing is None or self.missing_count is None else (
            self.missing_count + int(missing)
        )  # fmt: skip
        self.unexpected_count += int(outcome["unexpected_count"])
        if outcome["positions"]:
            assert rows is not None
            # GX lists the values of the first MAX_RESULT_RECORDS failing rows only (every
            # row's index, though): the table's first ones are among the batches' first.
            values = [decode(v) for v in outcome["values"]]
            values += [_NO_VALUE] * (len(outcome["positions"]) - len(values))
            self.failures.extend(
                (int(rows[p]), v) for p, v in zip(outcome["positions"], values, strict=True)
            )

    def result(self, config: Any) -> ExpectationValidationResult:
        if self.exception is not None:
            return ExpectationValidationResult(
                success=False, expectation_config=config, exception_info=self.exception
            )
        no_error = {
            "raised_exception": False,
            "exception_traceback": None,
            "exception_message": None,
        }
        if self.table_result is not None:
            return ExpectationValidationResult(
                success=self.success,
                expectation_config=config,
                result=self.table_result,
                exception_info=no_error,
            )
        self.failures.sort(key=lambda failure: failure[0])
        indices = [row for row, _ in self.failures]
        values = [value for _, value in self.failures[:MAX_RESULT_RECORDS]]
        if any(value is _NO_VALUE for value in values):
            raise AssertionError("a failing value GX reported for the table is missing")
        nonnull = None if self.missing_count is None else self.element_count - self.missing_count
        result = _format_map_output(
            result_format=dict(_MERGED_FORMAT),
            success=self.success,
            element_count=self.element_count,
            nonnull_count=nonnull,
            unexpected_count=self.unexpected_count,
            unexpected_list=values,
            unexpected_index_list=indices,
        )
        details = dict(result.get("result") or {})
        details["unexpected_index_query"] = f"df.filter(items={indices}, axis=0)"
        return ExpectationValidationResult(
            success=self.success, expectation_config=config, result=details, exception_info=no_error
        )


@cache
def _expectation_numbers(table: str, day: dt.date) -> dict[str, int]:
    """Each expectation of the suite (:func:`_config_key`) by its place in the suite."""
    configurations = _suite(table, day).expectation_configurations
    return {_config_key(config): number for number, config in enumerate(configurations)}


def _validate_batch(table: str, day: dt.date, rows: pa.Table) -> list[dict[str, Any]]:
    """GX on one batch's rows (:func:`_rows`): each expectation's outcome on them, as
    :func:`_compact` keeps it, with the expectation's place in the suite. The same in this
    process and in a worker process."""
    frame = _frame(rows)
    numbers = _expectation_numbers(table, day)
    with _LOCK, _quiet():
        validator = Validator(
            batch_definition=_batch_definition(table),
            batch_parameters={"dataframe": frame},
            result_format=_RESULT_FORMAT,
        )
        results = validator.validate_expectation_suite(_suite(table, day)).results
    return [
        {"expectation": numbers[_config_key(result.expectation_config)]}
        | _compact(result, frame.index)
        for result in results
    ]


def _start_worker() -> None:
    """Once per worker process: GX's context, before the first batch arrives."""
    _context()


@dataclass
class _TableMerge:
    """One table's batches, merged in batch order as their outcomes come: one
    :class:`_Merge` per expectation, in GX's order of results."""

    table: str
    day: dt.date
    cache: BatchCache
    configurations: list[Any]
    n_rows: int
    waiting: int = 0  # batches queued and not merged yet
    merged: dict[int, _Merge] = field(default_factory=dict)

    def results(self) -> list[ExpectationValidationResult]:
        return [merge.result(self.configurations[n]) for n, merge in self.merged.items()]


@dataclass
class _Queued:
    """A batch waiting to be merged: handed to a validator (``future``, with its ``rows``
    in case its worker dies) or found in the cache (``kept``)."""

    merge: _TableMerge
    key: str
    numbers: np.ndarray | None
    future: Future[list[dict[str, Any]]] | None = None
    rows: pa.Table | None = None
    kept: list[dict[str, Any]] | None = None


class _Validators:
    """Where batches are validated: in this process, or in ``workers`` spawned worker
    processes from the first table with two batches to validate (GX holds the GIL, so
    one process validates on one core), until the call ends. At most :attr:`ahead` batches
    are handed out and not merged yet, so that the rows held wait in a short queue. A
    worker process that dies stops the pool: its batches and the rest are validated in
    this process, with the same outcomes."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool: ProcessPoolExecutor | None = None
        self.broken = False
        #: Every table's batches not merged yet, in the order they were queued.
        self.queue: deque[_Queued] = deque()

    def add(self, queued: _Queued) -> None:
        """Queue a batch; merge the oldest ones while too many are handed out."""
        self.queue.append(queued)
        queued.merge.waiting += 1
        while sum(q.future is not None for q in self.queue) >= self.ahead:
            self._merge_next()

    def finish(self, merge: _TableMerge) -> _TableMerge:
        """``merge`` with every batch of its table merged."""
        while merge.waiting:
            self._merge_next()
        return merge

    def _merge_next(self) -> None:
        queued = self.queue.popleft()
        merge, kept = queued.merge, queued.kept
        if queued.future is not None:
            kept = self.outcome(queued.future, merge.table, merge.day, queued.rows)
            merge.cache.put(merge.table, queued.key, kept)
        assert kept is not None
        for outcome in kept:
            merge.merged.setdefault(int(outcome["expectation"]), _Merge()).add(
                outcome, queued.numbers
            )
        merge.waiting -= 1

    @property
    def ahead(self) -> int:
        return 2 * self.workers if self.pool is not None else 1

    def start(self, batches: int) -> None:
        """Start the worker processes when ``batches`` batches are to be validated."""
        if self.pool is None and not self.broken and self.workers > 1 and batches > 1:
            self.pool = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
            )

    def submit(self, table: str, day: dt.date, rows: pa.Table) -> Future[list[dict[str, Any]]]:
        if self.pool is not None:
            try:
                return self.pool.submit(_validate_batch, table, day, rows)
            except BrokenProcessPool:
                self._stop()
        done: Future[list[dict[str, Any]]] = Future()
        done.set_result(_validate_batch(table, day, rows))
        return done

    def outcome(
        self, future: Future[list[dict[str, Any]]], table: str, day: dt.date, rows: pa.Table | None
    ) -> list[dict[str, Any]]:
        try:
            return future.result()
        except BrokenProcessPool:
            self._stop()
            assert rows is not None
            return _validate_batch(table, day, rows)

    def _stop(self) -> None:
        if self.pool is not None and not self.broken:
            print(
                "cdcompact: a Great Expectations worker process stopped abruptly; the "
                "batches it had are validated in the main process",
                file=sys.stderr,
            )
        self.broken = True
        if self.pool is not None:
            kill_workers(self.pool)
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


def _cache_key(table: str, day: dt.date, columns: Sequence[tuple[str, str]], batch: _Batch) -> str:
    """The digest of everything a batch's outcome depends on."""
    tomorrow = day + dt.timedelta(days=1)
    daily = _suite_digest(table, day) != _suite_digest(table, tomorrow)
    calendar = batch.calendar if next_verdict_change(table, day) else None
    payload = [
        table,
        _suite_digest(table, dt.date.min) if not daily or calendar is not None else None,
        _suite_digest(table, day) if daily and next_verdict_change(table, day) is None else None,
        list(columns),
        batch.rows,
        batch.digest,
        calendar,
    ]
    return hashlib.sha256(json.dumps(payload, default=str).encode()).hexdigest()


def _queue_table(
    con: duckdb.DuckDBPyConnection,
    table: str,
    tables: Tables,
    day: dt.date,
    cache: BatchCache,
    batch_rows: int,
    validators: _Validators,
) -> _TableMerge:
    """Cut ``table`` into batches and queue each to be validated (or its outcome found in
    the cache); the merge of its results, which :meth:`_Validators.finish` completes. The
    batches' rows are read here, so that the next table's work can begin while the
    worker processes validate this one's last batches."""
    _work_table(con, table, prepared_sql(table, tables), batch_rows)
    try:
        columns = [
            (str(name), str(kind))
            for name, kind, *_ in con.execute(f"DESCRIBE {_WORK}").fetchall()
            if name not in (ROW, _BATCH)
        ]
        batches = _batches(con, table, day, [name for name, _ in columns]) or [
            _Batch(-1, 0, "", None)
        ]
        configurations = _suite(table, day).expectation_configurations
        n_rows = sum(batch.rows for batch in batches)
        merge = _TableMerge(table, day, cache, configurations, n_rows)
        keys = [_cache_key(table, day, columns, batch) for batch in batches]
        kept_before = [cache.get(table, key) for key in keys]
        validators.start(sum(kept is None for kept in kept_before))
        for batch, key, kept in zip(batches, keys, kept_before, strict=True):
            if kept is None:
                rows = _rows(con, batch.number if batch.number >= 0 else None)
                numbers = rows.column(ROW).to_numpy(zero_copy_only=False).astype("int64")
                future = validators.submit(table, day, rows)
                validators.add(_Queued(merge, key, numbers, future=future, rows=rows))
            else:
                positions = any(outcome.get("positions") for outcome in kept)
                numbers = _batch_rows(con, batch.number) if positions else None
                validators.add(_Queued(merge, key, numbers, kept=kept))
    finally:
        con.execute(f"DROP TABLE IF EXISTS {_WORK}")
    return merge


def _config_key(config: Any) -> str:
    """An expectation's configuration as text: which expectation of the suite a result is
    (GX adds the batch's id to the configuration of a result)."""
    definition = config.to_json_dict()
    definition["kwargs"] = {k: v for k, v in definition["kwargs"].items() if k != "batch_id"}
    return json.dumps(definition, sort_keys=True, default=str)


def validate_table(
    con: duckdb.DuckDBPyConnection, table: str, today: dt.date | None = None
) -> TableValidation:
    """Run the suite of the view ``table`` alone; rows are reported by their row numbers.
    Rules that need another table (foreign keys, the activity's IATI version) pass
    without judging; :func:`validate_tables` judges them."""
    table_schema(table)  # a KeyError naming the table when it has no schema
    return validate_tables(con, [table], today)[table]


def validate_tables(
    con: duckdb.DuckDBPyConnection,
    tables: Iterable[str],
    today: dt.date | None = None,
    data_docs_dir: Path | None = None,
    cache: BatchCache | None = None,
    batch_rows: int = BATCH_ROWS,
    workers: int = 1,
) -> dict[str, TableValidation]:
    """Run the suite of every view of ``con`` named in ``tables`` that has one (others are
    left out), with the rules across tables judged on the tables given; by table, in order.

    ``data_docs_dir``: also write GX's Data Docs of these validations there. ``cache``:
    reuse the outcomes of unchanged batches, and keep this run's. ``workers``: validate
    the batches in that many worker processes once a table has two batches to validate
    (the outcomes are the same as in this process).
    """
    day = today or dt.date.today()
    names = list(dict.fromkeys(tables))
    given = {table: tuple(table_columns(con, table)) for table in names}
    cache = cache or BatchCache(None)
    register_functions(con)
    validations: dict[str, TableValidation] = {}
    docs: dict[str, tuple[gx.ExpectationSuite, list[ExpectationValidationResult]]] = {}
    validators = _Validators(workers)

    def finish(merge: _TableMerge) -> None:
        results = validators.finish(merge).results()
        validations[merge.table] = _validation(con, merge.table, merge.n_rows, results)
        docs[merge.table] = (build_suite(merge.table, day), results)

    try:
        with _LOCK, _quiet():
            queued: _TableMerge | None = None
            for table in [name for name in names if has_suite(name)]:
                merge = _queue_table(
                    con, table, Tables(table, given), day, cache, batch_rows, validators
                )
                if queued is not None:  # the last table's batches, validated meanwhile
                    finish(queued)
                queued = merge
            if queued is not None:
                finish(queued)
    finally:
        validators.close()
    cache.save(validations)
    if data_docs_dir is not None:
        write_data_docs(docs, Path(data_docs_dir), run_name=f"cdcompact-{day.isoformat()}")
    return validations


@contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        # GX matches patterns with str.contains, which warns about our capture groups.
        warnings.filterwarnings("ignore", message="This pattern is interpreted as a regular")
        yield


def _validation(
    con: duckdb.DuckDBPyConnection,
    table: str,
    n_rows: int,
    results: Sequence[ExpectationValidationResult],
) -> TableValidation:
    validation = TableValidation(table, n_rows)

    known = set(table_columns(con, table))

    def own_values(rows: list[int], columns: list[str]) -> dict[int, tuple[Any, ...]] | None:
        """The values of ``columns`` in ``rows`` (None: the table has none of them)."""
        wanted = [c for c in columns if c in known]
        if not wanted:
            return None
        found = con.execute(
            f"SELECT {ROW}, {', '.join(quote(c) for c in wanted)} FROM {quote(table)} "
            f"WHERE {ROW} IN (SELECT unnest(?))",
            [rows],
        ).fetchall()
        return {int(row[0]): tuple(row[1:]) for row in found}

    for expectation_result in results:
        validation.outcomes.append(_outcome(table, expectation_result, own_values))
    return validation


def _outcome(
    table: str,
    result: ExpectationValidationResult,
    own_values: Callable[[list[int], list[str]], dict[int, tuple[Any, ...]] | None],
) -> ExpectationOutcome:
    config = result.expectation_config
    meta = (config.meta if config else None) or {}
    rule = str(meta.get("rule", config.type if config else "unknown"))
    severity = str(meta.get("severity", "error"))
    kind = config.type if config else "unknown"
    details: dict[str, Any] = dict(result.result or {})
    error = _exception_message(result.exception_info or {})
    if error is not None:
        return ExpectationOutcome(rule, severity, kind, False, None, None, error=error)
    if "unexpected_index_list" not in details:
        # Table-level expectations (the column set) report what is missing or extra.
        mismatched = details.get("details", {}).get("mismatched", {}) or {}
        names = [
            f"{problem}:{name}"
            for problem in ("missing", "unexpected")
            for name in mismatched.get(problem, []) or []
        ]
        return ExpectationOutcome(
            rule,
            severity,
            kind,
            bool(result.success),
            None,
            len(names),
            tuple(Example(table, rule, severity, None, n) for n in names[:MAX_EXAMPLES]),
        )
    failing = [_row(label) for label in details.get("unexpected_index_list") or []]
    rows = list(details.get("unexpected_index_list") or [])[:MAX_EXAMPLES]
    values = list(details.get("unexpected_list") or [])[:MAX_EXAMPLES]
    columns = list(meta.get("example_columns") or [])
    found = own_values([int(row) for row in rows], columns) if columns else None
    if found is not None:
        # A derived column failed: report the table's own values of that row instead.
        values = [_single(found.get(int(row))) for row in rows]
    examples = tuple(
        Example(table, rule, severity, _row(row), _format(value))
        for row, value in zip(rows, values, strict=False)
    )
    return ExpectationOutcome(
        rule,
        severity,
        kind,
        bool(result.success),
        whole_number(details.get("element_count")),
        whole_number(details.get("unexpected_count")),
        examples,
        rows=tuple(row for row in failing if row is not None),
    )


def _single(values: tuple[Any, ...] | None) -> Any:
    """A row's own values: one column's value alone, several as a tuple (None: no row)."""
    if values is None:
        return None
    return values[0] if len(values) == 1 else values


def _exception_message(info: dict[str, Any]) -> str | None:
    """GX's exception info: flat, or keyed by metric id when a metric failed to resolve."""
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    for value in info.values():
        if isinstance(value, dict) and value.get("raised_exception"):
            return str(value.get("exception_message"))
    return None


def _row(label: Any) -> int | None:
    if isinstance(label, dict):  # with unexpected_index_column_names GX returns dicts
        return None
    try:
        return int(label)
    except (TypeError, ValueError):
        return None


def _format(value: Any) -> str | None:
    """A failing value as text: dates as ISO dates, key tuples joined by ``|``."""
    if isinstance(value, dict):
        value = tuple(value.values())
    if isinstance(value, tuple | list):
        return "|".join(text or "" for text in map(_format, value))
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dt.datetime | pd.Timestamp):
        stamp = pd.Timestamp(value)
        if stamp == stamp.normalize() and stamp.tzinfo is None:
            return stamp.date().isoformat()
        return stamp.isoformat()
    if hasattr(value, "dtype") and str(getattr(value, "dtype", "")).startswith("datetime64"):
        return _format(pd.Timestamp(value))
    if hasattr(value, "item"):
        value = value.item()
    return str(value)
