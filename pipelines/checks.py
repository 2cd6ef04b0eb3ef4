"""Dagster asset checks over the schema conformance of harmonised tables.

Declared on the assets that produce the tables (``check_specs``) and blocking:
a table that breaks schema/ fails its check, and nothing downstream of it runs.
"""

from collections.abc import Iterable, Mapping
from typing import Any

import dagster as dg
import duckdb

from expectations.outcomes import TableValidation
from expectations.schema_checks import check_foreign_keys, check_table

CHECK_NAME = "schema_conformance"


def schema_check_specs(tables: Iterable[str]) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            CHECK_NAME,
            asset=table,
            blocking=True,
            description=f"{table} follows schema/{table}.json: required fields, codes, "
            "patterns, ranges, unique primary key and foreign keys.",
        )
        for table in tables
    ]


def schema_check_summaries(
    con: duckdb.DuckDBPyConnection, tables: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """Per table (views of ``con`` with row numbers): rows, violations by rule and the
    first failing rows (JSON-able, so a night with no change can report them again
    without checking again)."""
    given = list(tables)
    foreign = check_foreign_keys(con, given)
    summaries = {}
    for table in given:
        report = check_table(con, table)
        references = foreign[table]
        counts = report.counts + references.counts
        examples = (report.examples + references.examples)[:20]
        summaries[table] = {
            "rows": report.n_rows,
            "by_rule": dict(sorted(counts.items())),
            "examples": [
                {
                    "rule": v.rule,
                    "field": v.field,
                    "row": v.row,
                    "value": v.value,
                    "message": v.message,
                }
                for v in examples
            ],
        }
    return summaries


def schema_check_results_from(
    summaries: Mapping[str, Mapping[str, Any]],
) -> list[dg.AssetCheckResult]:
    """One blocking result per table from :func:`schema_check_summaries`."""
    return [
        dg.AssetCheckResult(
            asset_key=table,
            check_name=CHECK_NAME,
            passed=not summary["by_rule"],
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "rows": summary["rows"],
                "violations": sum(summary["by_rule"].values()),
                "by_rule": dg.MetadataValue.json(summary["by_rule"]),
                "examples": dg.MetadataValue.json(summary["examples"]),
            },
        )
        for table, summary in summaries.items()
    ]


GX_CHECK_NAME = "expectations"


def expectation_check_specs(tables: Iterable[str]) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            GX_CHECK_NAME,
            asset=table,
            blocking=True,
            description=f"Great Expectations suite for {table} (expectations/suites.py): "
            "error-level expectations block publishing, warning-level ones are reported.",
        )
        for table in tables
    ]


def expectation_check_results(
    validations: Mapping[str, TableValidation],
) -> list[dg.AssetCheckResult]:
    """One result per table: failed error expectations fail it (ERROR, blocking); failed
    warning expectations fail it as WARN, which does not block."""
    results = []
    for table, validation in validations.items():
        errors = validation.failed("error")
        warnings = validation.failed("warning")
        results.append(
            dg.AssetCheckResult(
                asset_key=table,
                check_name=GX_CHECK_NAME,
                passed=not errors and not warnings,
                severity=dg.AssetCheckSeverity.ERROR if errors else dg.AssetCheckSeverity.WARN,
                metadata={
                    "summary": dg.MetadataValue.json(validation.summary()),
                    "failed": dg.MetadataValue.json(
                        {o.rule: o.unexpected_count for o in errors + warnings}
                    ),
                    "examples": dg.MetadataValue.json(
                        [
                            {"rule": e.rule, "severity": e.severity, "row": e.row, "value": e.value}
                            for e in validation.examples()[:20]
                        ]
                    ),
                },
            )
        )
    return results
