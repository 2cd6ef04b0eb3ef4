"""The quality report that ships in every release (quality/report.json and report.md).

Per contributor file: status, reason, records read, accepted and quarantined,
quarantine rows by rule; overall: files by status and the schema conformance of
every published table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from expectations.schema_checks import check_foreign_keys, check_table


def quality_report(tables: Mapping[str, pd.DataFrame]) -> dict[str, Any]:
    sources = tables["sources"]
    quarantine = tables["quarantine"]
    files = []
    for row in sources.sort_values("source_file").itertuples(index=False):
        mine = quarantine[quarantine["source_file"] == row.source_file]
        by_rule = (
            mine.groupby(["severity", "rule"]).size().sort_index().items() if len(mine) else []
        )
        files.append(
            {
                "source_file": row.source_file,
                "status": row.status,
                "reason": None if pd.isna(row.reason) else row.reason,
                "n_records": int(row.n_records),
                "n_accepted": int(row.n_accepted),
                "n_quarantined": int(row.n_quarantined),
                "quarantine": [
                    {"severity": severity, "rule": rule, "rows": int(count)}
                    for (severity, rule), count in by_rule
                ],
            }
        )
    foreign = check_foreign_keys(tables)
    checks = {}
    for table, frame in sorted(tables.items()):
        report = check_table(table, frame)
        counts = report.counts + foreign[table].counts
        checks[table] = {
            "rows": len(frame),
            "passed": not counts,
            "violations": dict(sorted(counts.items())),
        }
    status = sources["status"].value_counts()
    return {
        "summary": {
            "files": len(sources),
            "files_ok": int(status.get("ok", 0)),
            "files_partial": int(status.get("partial", 0)),
            "files_rejected": int(status.get("rejected", 0)),
            "records_quarantined": int((quarantine["severity"] == "error").sum()),
            "warnings": int((quarantine["severity"] == "warning").sum()),
            "checks_failed": sum(1 for c in checks.values() if not c["passed"]),
        },
        "files": files,
        "checks": checks,
    }


def render_quality_markdown(report: Mapping[str, Any], version: str) -> str:
    summary = report["summary"]
    lines = [
        f"# Data quality, release {version}",
        "",
        f"- files: {summary['files']} (ok {summary['files_ok']}, partial "
        f"{summary['files_partial']}, rejected {summary['files_rejected']})",
        f"- records not accepted (quarantined): {summary['records_quarantined']:,}",
        f"- warnings (accepted, with something set aside): {summary['warnings']:,}",
        f"- tables failing schema conformance: {summary['checks_failed']}",
        "",
        "The rows behind every figure are in `data/quarantine.csv` "
        "(file, place, rule, value, message) and `data/sources.csv`.",
        "",
        "## Files",
        "",
        "| file | status | records | accepted | quarantined | quarantine rows by rule | reason |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for item in report["files"]:
        rules = ", ".join(f"{q['rule']} ({q['severity']}) {q['rows']}" for q in item["quarantine"])
        reason = (item["reason"] or "").replace("|", "\\|")
        lines.append(
            f"| {item['source_file']} | {item['status']} | {item['n_records']:,} | "
            f"{item['n_accepted']:,} | {item['n_quarantined']:,} | {rules} | {reason} |"
        )
    lines += ["", "## Schema conformance", "", "| table | rows | result |", "|---|---:|---|"]
    for table, check in report["checks"].items():
        result = (
            "passed"
            if check["passed"]
            else ", ".join(f"{rule}: {count}" for rule, count in check["violations"].items())
        )
        lines.append(f"| {table} | {check['rows']:,} | {result} |")
    lines.append("")
    return "\n".join(lines)
