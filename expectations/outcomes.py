"""What validating a table with Great Expectations found, in the project's own words: the
outcome of each expectation (rule, severity, counts, failing rows) per table.

Plain data without Great Expectations, so that the asset checks, the quality report
and the stored results read validations without importing it (a process that only
extracts files never loads it); :mod:`expectations.runner` makes them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


def whole_number(value: Any) -> int | None:
    """A count or row number read from GX or JSON (None stays None)."""
    return None if value is None else int(value)


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
                    element_count=whole_number(o.get("element_count")),
                    unexpected_count=whole_number(o.get("unexpected_count")),
                    examples=tuple(
                        Example(
                            table=str(e["table"]),
                            rule=str(e["rule"]),
                            severity=str(e["severity"]),
                            row=whole_number(e.get("row")),
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
