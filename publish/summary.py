"""The one-screen summary of a night's or a harmonise run's tables, counted by DuckDB
over their Parquet files (printed by ``cdcompact run`` and ``cdcompact iati harmonise``)."""

from __future__ import annotations

from pathlib import Path

from assets.metrics.alignment import METRICS
from assets.settings import Settings
from assets.warehouse import ROW, attach_tables, connection

#: The tables the run summary counts.
SUMMARY_TABLES = (
    "sources",
    "quarantine",
    "activities",
    "transactions",
    "budgets",
    "results",
    "conformance",
    "duplication_pairs",
    "alignment_metrics",
    "cd_priorities",
    "partner_declarations",
    "alignment_links",
)


def summary(settings: Settings, folder: Path) -> str:
    """The one-screen summary of a run's tables, ``folder/<table>.parquet`` (a table
    without a file is empty), counted in SQL by DuckDB over the Parquet files."""
    with connection(settings) as con:
        attach_tables(con, folder, SUMMARY_TABLES, row_numbers=True)

        def one(sql: str) -> tuple[int, ...]:
            found = con.execute(sql).fetchone()
            assert found is not None
            return tuple(int(value) for value in found)

        n_files, ok, partial, rejected, revalidated, kept = one(
            """SELECT count(*), count(*) FILTER (WHERE status = 'ok'),
                count(*) FILTER (WHERE status = 'partial'),
                count(*) FILTER (WHERE status = 'rejected'),
                count(*) FILTER (WHERE download = 'revalidated'),
                count(*) FILTER (WHERE download = 'kept')
            FROM sources"""
        )
        errors, warnings = one(
            """SELECT count(*) FILTER (WHERE severity = 'error'),
                count(*) FILTER (WHERE severity = 'warning') FROM quarantine"""
        )
        n_activities, cd = one("SELECT count(*), count(*) FILTER (WHERE is_cd) FROM activities")
        n_transactions, excluded = one(
            "SELECT count(*), count(*) FILTER (WHERE NOT counts_toward_totals) FROM transactions"
        )
        (n_budgets,) = one("SELECT count(*) FROM budgets")
        (n_results,) = one("SELECT count(*) FROM results")
        n_conformance, xsd, xsd_files, codes, unchecked = one(
            """SELECT count(*), count(*) FILTER (WHERE xsd),
                count(DISTINCT source_file) FILTER (WHERE xsd),
                count(*) FILTER (WHERE checked AND "check" = 'codelist'
                    AND severity = 'error'),
                count(DISTINCT source_file) FILTER (WHERE rule = 'xsd:not_checked')
            FROM (
                SELECT *, rule <> 'xsd:not_checked' AS checked,
                    rule <> 'xsd:not_checked' AND "check" = 'xsd' AND severity = 'error'
                        AS xsd
                FROM conformance
            )"""
        )
        n_metrics, overlapping, chains, twice = one(
            """SELECT (SELECT count(*) FROM alignment_metrics),
                count(*) FILTER (WHERE kind = 'overlapping_effort'),
                count(*) FILTER (WHERE kind = 'funding_chain'),
                count(*) FILTER (WHERE kind = 'same_activity_reported_twice')
            FROM duplication_pairs"""
        )
        n_priorities, n_countries = one(
            "SELECT count(*), count(DISTINCT country_code) FROM cd_priorities"
        )
        n_declarations, n_partners = one(
            "SELECT count(*), count(DISTINCT partner_org_ref) FROM partner_declarations"
        )
        (n_links,) = one("SELECT count(*) FROM alignment_links")
        (measured,) = one(
            "SELECT count(DISTINCT metric) FILTER (WHERE value IS NOT NULL) FROM alignment_metrics"
        )
        problems = con.execute(
            f"""SELECT CASE WHEN status = 'ok' THEN download ELSE status END, source_file,
                reason FROM sources
            WHERE status IN ('rejected', 'partial') OR download = 'kept' ORDER BY {ROW}"""
        ).fetchall()
    lines = [
        f"files        {n_files:>8,}   ok {ok:,} · partial {partial:,} · rejected {rejected:,}"
        + (f" · not downloaded again {revalidated:,}" if revalidated else "")
        + (f" · last good copy kept {kept:,}" if kept else ""),
        f"activities   {n_activities:>8,}   capacity development: {cd:,}",
        f"transactions {n_transactions:>8,}",
        f"budgets      {n_budgets:>8,}",
        f"results      {n_results:>8,}",
        f"quarantined  {errors:>8,}   records not accepted (+ {warnings:,} warnings)",
    ]
    if n_conformance:
        lines.append(
            f"conformance  {xsd:>8,}   IATI schema errors in {xsd_files:,} files · "
            f"{codes:,} codelist errors"
            + (f" · {unchecked:,} files not checked against the IATI schema" if unchecked else "")
        )
    if n_priorities or n_declarations:
        lines.append(
            f"priorities   {n_priorities:>8,}   from {n_countries:,} countries · "
            f"{n_declarations:,} partner declarations from {n_partners:,} partners · "
            f"{n_links:,} alignment links"
        )
    lines.append(
        f"metrics      {n_metrics:>8,}   alignment rows ({measured:,} of {len(METRICS)} metrics "
        "measured) · "
        f"{overlapping:,} overlapping pairs · {chains:,} funding chains · "
        f"{twice:,} reported twice · {excluded:,} transactions not counted toward totals"
    )
    for status, source_file, reason in problems:
        # a missing reason is shown as the summary has always shown it
        lines.append(f"  {status:<8} {source_file}: {'<NA>' if reason is None else reason}")
    lines.append(f"tables written to {folder}")
    return "\n".join(lines)
