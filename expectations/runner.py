"""Run the Great Expectations suites (:mod:`expectations.suites`) on harmonised frames.

One ephemeral GX context per process holds a pandas data source and, per table
and day, one ValidationDefinition. Results come back row by row: which rule
failed, how often, and the first failing rows (index labels of the frame) with
their values — problems kept as data with a severity, not raised.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import warnings
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from typing import Any

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

import great_expectations as gx
import pandas as pd
from great_expectations.core.expectation_validation_result import (
    ExpectationValidationResult,
)
from great_expectations.data_context import AbstractDataContext
from great_expectations.data_context.types.base import ProgressBarsConfig

from expectations.suites import build_suite, date_columns

#: Failing rows kept per expectation: enough to find them, small enough for metadata.
MAX_EXAMPLES = 5

_DATASOURCE = "cdcompact"
_LOCK = threading.Lock()


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


def validate_table(
    table: str, frame: pd.DataFrame, today: dt.date | None = None
) -> TableValidation:
    """Run the suite of ``table`` on ``frame``; rows are reported by their index labels."""
    day = today or dt.date.today()
    with _LOCK, warnings.catch_warnings():
        # GX matches patterns with str.contains, which warns about our capture groups.
        warnings.filterwarnings("ignore", message="This pattern is interpreted as a regular")
        definition = _validation_definition(table, day)
        result = definition.run(
            batch_parameters={"dataframe": comparable(table, frame)},
            result_format={"result_format": "COMPLETE", "partial_unexpected_count": 0},
        )
    validation = TableValidation(table, len(frame))
    for expectation_result in result.results:
        validation.outcomes.append(_outcome(table, expectation_result))
    return validation


def _outcome(table: str, result: ExpectationValidationResult) -> ExpectationOutcome:
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
    rows = list(details.get("unexpected_index_list") or [])[:MAX_EXAMPLES]
    values = list(details.get("unexpected_list") or [])[:MAX_EXAMPLES]
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
    )


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
        return "|".join("" if v is None else str(_format(v)) for v in value)
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
