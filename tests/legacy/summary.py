"""The run summary of ``cdcompact iati harmonise`` and ``cdcompact run`` as pandas computed
it over whole tables (``pipelines/cli.py`` before it moved to SQL), kept whole as the
oracle of tests/unit/test_cli.py; the submissions' line and the metrics measured (issue
23) are counted here in pandas too. Not used by the pipeline."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd


def summary(tables: Mapping[str, pd.DataFrame], out: Path | None = None) -> str:
    """The one-screen summary of a harmonisation run."""
    sources = tables["sources"]
    quarantine = tables["quarantine"]
    status = sources["status"].value_counts()
    errors = int((quarantine["severity"] == "error").sum())
    warnings = int((quarantine["severity"] == "warning").sum())
    cd = int(tables["activities"]["is_cd"].fillna(False).sum())
    revalidated = int((sources["download"] == "revalidated").sum())
    kept = int((sources["download"] == "kept").sum())
    lines = [
        f"files        {len(sources):>8,}   ok {int(status.get('ok', 0)):,} · "
        f"partial {int(status.get('partial', 0)):,} · rejected {int(status.get('rejected', 0)):,}"
        + (f" · not downloaded again {revalidated:,}" if revalidated else "")
        + (f" · last good copy kept {kept:,}" if kept else ""),
        f"activities   {len(tables['activities']):>8,}   capacity development: {cd:,}",
        f"transactions {len(tables['transactions']):>8,}",
        f"budgets      {len(tables['budgets']):>8,}",
        f"results      {len(tables['results']):>8,}",
        f"quarantined  {errors:>8,}   records not accepted (+ {warnings:,} warnings)",
    ]
    conformance = tables.get("conformance")
    if conformance is not None and len(conformance):
        checked = conformance[conformance["rule"] != "xsd:not_checked"]
        xsd = checked[(checked["check"] == "xsd") & (checked["severity"] == "error")]
        codes = checked[(checked["check"] == "codelist") & (checked["severity"] == "error")]
        lines.append(
            f"conformance  {len(xsd):>8,}   IATI schema errors in "
            f"{xsd['source_file'].nunique():,} files · {len(codes):,} codelist errors"
            + (
                f" · {unchecked:,} files not checked against the IATI schema"
                if (
                    unchecked := conformance.loc[
                        conformance["rule"] == "xsd:not_checked", "source_file"
                    ].nunique()
                )
                else ""
            )
        )
    empty = pd.DataFrame({"country_code": [], "partner_org_ref": []})
    priorities = tables.get("cd_priorities", empty)
    declarations = tables.get("partner_declarations", empty)
    links = tables.get("alignment_links")
    if len(priorities) or len(declarations):
        lines.append(
            f"priorities   {len(priorities):>8,}   from {priorities['country_code'].nunique():,} "
            f"countries · {len(declarations):,} partner declarations from "
            f"{declarations['partner_org_ref'].nunique():,} partners · "
            f"{0 if links is None else len(links):,} alignment links"
        )
    pairs = tables.get("duplication_pairs")
    metrics = tables.get("alignment_metrics")
    if pairs is not None and metrics is not None:
        kinds = pairs["kind"].value_counts()
        excluded = int((~tables["transactions"]["counts_toward_totals"].fillna(True)).sum())
        lines.append(
            f"metrics      {len(metrics):>8,}   alignment rows "
            f"({metrics.loc[metrics['value'].notna(), 'metric'].nunique():,} of 12 metrics "
            "measured) · "
            f"{int(kinds.get('overlapping_effort', 0)):,} overlapping pairs · "
            f"{int(kinds.get('funding_chain', 0)):,} funding chains · "
            f"{int(kinds.get('same_activity_reported_twice', 0)):,} reported twice · "
            f"{excluded:,} transactions not counted toward totals"
        )
    kept_copy = sources["download"] == "kept"
    problems = sources[sources["status"].isin(["rejected", "partial"]) | kept_copy]
    for row in problems.itertuples(index=False):
        shown = row.download if row.status == "ok" else row.status
        lines.append(f"  {shown:<8} {row.source_file}: {row.reason}")
    if out is not None:
        lines.append(f"tables written to {out}")
    return "\n".join(lines)
