"""Run the Great Expectations suites (:mod:`expectations.suites`) on harmonised frames.

One ephemeral GX context per process holds a pandas data source and, per table
and day, one ValidationDefinition. Results come back row by row: which rule
failed, how often, and the first failing rows (index labels of the frame) with
their values — problems kept as data with a severity, not raised.

:func:`validate_tables` validates every given table that has a suite. Before GX
sees a frame, the runner appends the derived columns of
:func:`expectations.suites.derive` (share sums per activity, the activity's IATI
version, outlier scores per currency, whether foreign keys exist), computed from
that frame and the other tables of the call, on the frame's own index: every
failing row (``ExpectationOutcome.rows``, ``Example.row``) is an index label of
the caller's frame, so ``frame.loc[rows]`` finds the rows and their
``source_file``. A rule over a group (the shares of one activity) fails on every
row of the failing group. Rules that need a table the call did not give (the
activities of ``transactions``, the target of a foreign key) see empty derived
values and pass without judging anything; :func:`validate_table` validates one
table alone in exactly that way.

With ``data_docs_dir`` the validations run through GX Checkpoints that build GX's
own Data Docs site into that folder (:mod:`expectations.data_docs`).
"""

from __future__ import annotations

import datetime as dt
import os
import warnings
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

import great_expectations as gx
import pandas as pd
from great_expectations.core.expectation_validation_result import (
    ExpectationSuiteValidationResult,
    ExpectationValidationResult,
)
from great_expectations.data_context import AbstractDataContext
from great_expectations.data_context.data_context.context_factory import set_context
from great_expectations.data_context.types.base import ProgressBarsConfig

from assets.harmonise.schema import table_schema
from expectations.data_docs import GX_LOCK, validate_with_data_docs
from expectations.suites import build_suite, date_columns, derive, has_suite

#: Failing rows kept per expectation: enough to find them, small enough for metadata.
MAX_EXAMPLES = 5

_DATASOURCE = "cdcompact"
#: GX contexts are not thread-safe: one lock for every use of GX in the process.
_LOCK = GX_LOCK
#: Every failing row's index label (complete), the first few values (none: speed).
_RESULT_FORMAT: dict[str, Any] = {"result_format": "COMPLETE", "partial_unexpected_count": 0}
#: Data Docs show GX's sample of unexpected values, so keep some.
_DOCS_RESULT_FORMAT: dict[str, Any] = {"result_format": "COMPLETE", "partial_unexpected_count": 20}


@dataclass(frozen=True)
class Example:
    """One failing row of one expectation: ``row`` is the frame's index label (None: table)."""

    table: str
    rule: str
    severity: str
    row: int | None
    value: str | None


@dataclass(frozen=True)
class ExpectationOutcome:
    """The result of one expectation, in our vocabulary (rule, severity) plus GX's counts."""

    rule: str
    severity: str
    expectation_type: str
    success: bool
    element_count: int | None
    unexpected_count: int | None
    examples: tuple[Example, ...] = ()
    error: str | None = None  # GX raised instead of evaluating (e.g. a missing column)
    #: Every failing row (index labels of the frame), for attributing failures to sources.
    rows: tuple[int, ...] = ()


@dataclass
class TableValidation:
    """Every expectation of one table's suite, evaluated on one frame."""

    table: str
    n_rows: int
    outcomes: list[ExpectationOutcome] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(o.success for o in self.outcomes)

    @property
    def passed_errors(self) -> bool:
        """All error-severity expectations succeeded (warnings may still fail)."""
        return all(o.success for o in self.outcomes if o.severity == "error")

    def failed(self, severity: str | None = None) -> list[ExpectationOutcome]:
        return [
            o
            for o in self.outcomes
            if not o.success and (severity is None or o.severity == severity)
        ]

    def outcome(self, rule: str) -> ExpectationOutcome:
        """The outcome of the expectation named ``rule`` (KeyError if the suite has none)."""
        for o in self.outcomes:
            if o.rule == rule:
                return o
        raise KeyError(f"{self.table}: no expectation with rule {rule!r}")

    def summary(self) -> dict[str, Any]:
        """Counts by severity: expectations evaluated, failed, and failing rows."""
        evaluated: Counter[str] = Counter(o.severity for o in self.outcomes)
        failed: Counter[str] = Counter(o.severity for o in self.outcomes if not o.success)
        rows: Counter[str] = Counter()
        for o in self.outcomes:
            if not o.success:
                rows[o.severity] += o.unexpected_count or 0
        return {
            "rows": self.n_rows,
            "passed_errors": self.passed_errors,
            "by_severity": {
                severity: {
                    "expectations": evaluated[severity],
                    "failed": failed[severity],
                    "unexpected_rows": rows[severity],
                }
                for severity in sorted(evaluated)
            },
            "failed_rules": sorted(o.rule for o in self.outcomes if not o.success),
        }

    def examples(self) -> list[Example]:
        """The first failing rows of every failed expectation."""
        return [example for o in self.outcomes for example in o.examples]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict; :meth:`from_dict` gives back an equal TableValidation."""
        return {
            "table": self.table,
            "n_rows": self.n_rows,
            "outcomes": [
                {
                    "rule": o.rule,
                    "severity": o.severity,
                    "expectation_type": o.expectation_type,
                    "success": o.success,
                    "element_count": o.element_count,
                    "unexpected_count": o.unexpected_count,
                    "examples": [
                        {
                            "table": e.table,
                            "rule": e.rule,
                            "severity": e.severity,
                            "row": e.row,
                            "value": e.value,
                        }
                        for e in o.examples
                    ],
                    "error": o.error,
                    "rows": list(o.rows),
                }
                for o in self.outcomes
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TableValidation:
        """The TableValidation of :meth:`to_dict` (also after a JSON round trip)."""
        return cls(
            table=str(data["table"]),
            n_rows=int(data["n_rows"]),
            outcomes=[
                ExpectationOutcome(
                    rule=str(o["rule"]),
                    severity=str(o["severity"]),
                    expectation_type=str(o["expectation_type"]),
                    success=bool(o["success"]),
                    element_count=_int(o.get("element_count")),
                    unexpected_count=_int(o.get("unexpected_count")),
                    examples=tuple(
                        Example(
                            table=str(e["table"]),
                            rule=str(e["rule"]),
                            severity=str(e["severity"]),
                            row=_int(e.get("row")),
                            value=None if e.get("value") is None else str(e["value"]),
                        )
                        for e in o.get("examples", [])
                    ),
                    error=None if o.get("error") is None else str(o["error"]),
                    rows=tuple(int(row) for row in o.get("rows", [])),
                )
                for o in data.get("outcomes", [])
            ],
        )


@cache
def _context() -> AbstractDataContext:
    """The process's ephemeral GX context, without progress bars."""
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.data_sources.add_pandas(_DATASOURCE)
    return context


@cache
def _validation_definition(table: str, day: dt.date) -> gx.ValidationDefinition:
    context = _context()
    suite = build_suite(table, today=day)
    suite.name = f"{suite.name}@{day.isoformat()}"
    suite = context.suites.add(suite)
    datasource = context.data_sources.get(_DATASOURCE)
    asset = datasource.add_dataframe_asset(name=suite.name)  # type: ignore[attr-defined]
    batch = asset.add_batch_definition_whole_dataframe(name=suite.name)
    return context.validation_definitions.add(
        gx.ValidationDefinition(name=suite.name, data=batch, suite=suite)
    )


def comparable(table: str, frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with date columns (``datetime.date`` objects) as pandas datetimes."""
    columns = [c for c in date_columns(table) if c in frame.columns]
    if not columns:
        return frame
    prepared = frame.copy()
    for column in columns:
        prepared[column] = pd.to_datetime(prepared[column], errors="coerce")
    return prepared


def prepared(
    table: str, frame: pd.DataFrame, tables: Mapping[str, pd.DataFrame] | None = None
) -> pd.DataFrame:
    """What GX validates: ``frame`` with comparable dates and the derived columns of
    :func:`expectations.suites.derive` appended (same index, the caller's frame untouched)."""
    derived = derive(table, frame, tables)
    return comparable(table, frame).assign(**{c: derived[c] for c in derived.columns})


def validate_table(
    table: str, frame: pd.DataFrame, today: dt.date | None = None
) -> TableValidation:
    """Run the suite of ``table`` on ``frame`` alone; rows are reported by their index
    labels. Rules that need another table (foreign keys, the activity's IATI version)
    pass without judging; :func:`validate_tables` judges them."""
    table_schema(table)  # a KeyError naming the table when it has no schema
    return validate_tables({table: frame}, today)[table]


def validate_tables(
    tables: Mapping[str, pd.DataFrame],
    today: dt.date | None = None,
    data_docs_dir: Path | None = None,
) -> dict[str, TableValidation]:
    """Run the suite of every table in ``tables`` that has one (others are left out),
    with the rules across tables judged on the tables given; by table, in order.

    ``data_docs_dir``: also write GX's Data Docs of these validations there.
    """
    day = today or dt.date.today()
    frames = {table: frame for table, frame in tables.items() if has_suite(table)}
    batches = {table: prepared(table, frame, tables) for table, frame in frames.items()}
    with _LOCK, _quiet():
        if data_docs_dir is None:
            results = {
                table: _validation_definition(table, day).run(
                    batch_parameters={"dataframe": batch}, result_format=_RESULT_FORMAT
                )
                for table, batch in batches.items()
            }
        else:
            try:
                results = validate_with_data_docs(
                    {table: (build_suite(table, day), batch) for table, batch in batches.items()},
                    Path(data_docs_dir),
                    _DOCS_RESULT_FORMAT,
                    run_name=f"cdcompact-{day.isoformat()}",
                )
            finally:
                set_context(_context())  # the process's context stays the current one
    return {table: _validation(table, frames[table], results[table]) for table in frames}


@contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        # GX matches patterns with str.contains, which warns about our capture groups.
        warnings.filterwarnings("ignore", message="This pattern is interpreted as a regular")
        yield


def _validation(
    table: str, frame: pd.DataFrame, result: ExpectationSuiteValidationResult
) -> TableValidation:
    validation = TableValidation(table, len(frame))
    for expectation_result in result.results:
        validation.outcomes.append(_outcome(table, expectation_result, frame))
    return validation


def _outcome(
    table: str, result: ExpectationValidationResult, frame: pd.DataFrame | None = None
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
    columns = [c for c in meta.get("example_columns") or [] if frame is not None and c in frame]
    if columns and frame is not None:
        # A derived column failed: report the table's own values of that row instead.
        values = [_own_values(frame, row, columns) for row in rows]
    examples = tuple(
        Example(table, rule, severity, _row(row), _format(value))
        for row, value in zip(rows, values, strict=False)
    )
    return ExpectationOutcome(
        rule,
        severity,
        kind,
        bool(result.success),
        _int(details.get("element_count")),
        _int(details.get("unexpected_count")),
        examples,
        rows=tuple(row for row in failing if row is not None),
    )


def _own_values(frame: pd.DataFrame, label: Any, columns: list[str]) -> tuple[Any, ...] | Any:
    """The values of ``columns`` in the row labelled ``label`` (one column: the value)."""
    try:
        row = frame.loc[label, columns]
    except KeyError:
        return None
    if isinstance(row, pd.DataFrame):  # a label used twice: its first row
        row = row.iloc[0]
    values = tuple(row.tolist())
    return values[0] if len(values) == 1 else values


def _exception_message(info: dict[str, Any]) -> str | None:
    """GX's exception info: flat, or keyed by metric id when a metric failed to resolve."""
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    for value in info.values():
        if isinstance(value, dict) and value.get("raised_exception"):
            return str(value.get("exception_message"))
    return None


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


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
