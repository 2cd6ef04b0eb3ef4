"""Headline figures of a release: what a reader looks at first, and what CHANGELOG compares.

Disbursements follow metrics.md: transaction types 3 (disbursement) and 4
(expenditure) that count toward totals, in USD at the value date. A
transaction without its own recipient country is split across the activity's
countries by ``share``, so country figures never add up to more than the total.

Every figure is computed in SQL over the tables as views of a DuckDB connection
(the release's own: :meth:`publish.tables.ReleaseTables.views`), each view with its
rows numbered (:data:`assets.warehouse.ROW`); ``tables`` names the views the
connection has, and a table it does not have counts as empty. Only the figures
come into Python. A NaN counts as missing, as pandas and the release's CSV files have
it. Money is summed exactly (DuckDB's ``fsum``) and then rounded to the cent.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import duckdb

from assets.harmonise.schema import ACTUAL_DISBURSEMENT_TYPES
from assets.warehouse import ROW, empty_table_sql, literal, quote


def relation(table: str, tables: Collection[str]) -> str:
    """SQL relation of ``table``: its view, or an empty table of its schema (with
    :data:`ROW`) when ``tables`` does not name it."""
    if table in tables:
        return quote(table)
    return f"({empty_table_sql(table, [f'CAST(NULL AS BIGINT) AS {ROW}'])})"


def _number(column: str) -> str:
    """SQL: the number as a DOUBLE, NaN as missing."""
    number = f"CAST({column} AS DOUBLE)"
    return f"CASE WHEN isnan({number}) THEN NULL ELSE {number} END"


#: Shares of an activity's recipients that leave less than this uncovered cover it all
#: (a sum of float shares may fall short of 1 by a rounding).
SHARE_GAP = 1e-9


def recipient_split_sql(countries: str, regions: str) -> str:
    """CTEs (to follow a ``WITH counted AS (...)`` of the disbursements: ``activity_id``,
    ``recipient_country``, ``recipient_region``, ``year``, ``usd``) ending in ``split``:
    each disbursement where it went (``activity_id``, ``country_code``, ``region_code``,
    ``year``, ``usd``).

    A transaction that names its country goes to that country, one that names only a
    region to that region. The others are split over the activity's countries and
    regions (the relations ``countries`` and ``regions``) by their shares, and what no
    share covers (an activity with no recipient) goes to neither: the rows add up to the
    disbursements, whatever the recipients."""
    return f""", recipients AS (
            SELECT activity_id, country_code, NULL::VARCHAR AS region_code,
                coalesce({_number("share")}, 1.0) AS share
            FROM {countries} WHERE activity_id IS NOT NULL
            UNION ALL
            SELECT activity_id, NULL, region_code, coalesce({_number("share")}, 1.0)
            FROM {regions} WHERE activity_id IS NOT NULL
        ), covered AS (
            SELECT activity_id, least(greatest(fsum(share), 0.0), 1.0) AS share
            FROM recipients GROUP BY activity_id
        ), own AS (
            SELECT * FROM counted WHERE recipient_country IS NULL AND recipient_region IS NULL
        ), split AS (
            SELECT activity_id, recipient_country AS country_code,
                NULL::VARCHAR AS region_code, year, usd
            FROM counted WHERE recipient_country IS NOT NULL
            UNION ALL
            SELECT activity_id, NULL, recipient_region, year, usd
            FROM counted WHERE recipient_country IS NULL AND recipient_region IS NOT NULL
            UNION ALL
            SELECT c.activity_id, r.country_code, r.region_code, c.year, c.usd * r.share
            FROM own c JOIN recipients r ON r.activity_id = c.activity_id
            UNION ALL
            SELECT c.activity_id, NULL, NULL, c.year, c.usd * (1.0 - coalesce(v.share, 0.0))
            FROM own c LEFT JOIN covered v ON v.activity_id = c.activity_id
            WHERE coalesce(v.share, 0.0) < 1.0 - {SHARE_GAP}
        )"""


def disbursements_sql(tables: Collection[str]) -> str:
    """SQL of the USD disbursements per transaction and country: activity_id,
    country_code, year (of ``transaction_date``, as the metrics count it; missing when
    undated), usd, is_cd (of the activity's first row): split as
    :func:`recipient_split_sql` says, a region's part going to no country."""
    types = ", ".join(literal(code) for code in ACTUAL_DISBURSEMENT_TYPES)
    split = recipient_split_sql(
        relation("activity_countries", tables), relation("activity_regions", tables)
    )
    return f"""
        WITH counted AS (
            SELECT activity_id, recipient_country, recipient_region, usd, year FROM (
                SELECT activity_id, recipient_country, recipient_region,
                       {_number("value_usd")} AS usd,
                       year(CAST(transaction_date AS DATE)) AS year
                FROM {relation("transactions", tables)}
                WHERE transaction_type IN ({types}) AND coalesce(counts_toward_totals, false)
            ) WHERE usd IS NOT NULL
        ){split}, flags AS (
            SELECT activity_id, coalesce(is_cd, false) AS is_cd
            FROM {relation("activities", tables)}
            QUALIFY row_number() OVER (PARTITION BY activity_id ORDER BY {ROW}) = 1
        )
        SELECT m.activity_id, m.country_code, CAST(m.year AS BIGINT) AS year,
               CAST(m.usd AS DOUBLE) AS usd, coalesce(f.is_cd, false) AS is_cd
        FROM split m LEFT JOIN flags f ON f.activity_id = m.activity_id"""


def disbursements(
    con: duckdb.DuckDBPyConnection, tables: Collection[str]
) -> duckdb.DuckDBPyRelation:
    """The disbursements of :func:`disbursements_sql`, as a relation of ``con`` (nothing
    is read until it is)."""
    return con.sql(disbursements_sql(tables))


def _money(total: float | None) -> float:
    return 0.0 if total is None else float(total)


def headline_figures(con: duckdb.DuckDBPyConnection, tables: Collection[str]) -> dict[str, Any]:
    """The release's headline figures (plain numbers, rounded for display)."""
    activities = relation("activities", tables)
    sources = relation("sources", tables)
    found = con.execute(
        f"""WITH money AS ({disbursements_sql(tables)})
        SELECT
            (SELECT count(*) FROM {activities}),
            (SELECT count(*) FILTER (WHERE is_cd) FROM {activities}),
            (SELECT count(DISTINCT reporting_org_ref) FROM {activities}),
            (SELECT count(DISTINCT country_code) FROM {relation("activity_countries", tables)}),
            (SELECT count(*) FROM {relation("transactions", tables)}),
            (SELECT fsum(usd) FROM money),
            (SELECT fsum(usd) FILTER (WHERE is_cd) FROM money),
            (SELECT count(*) FROM {sources}),
            (SELECT count(*) FILTER (WHERE status = 'rejected') FROM {sources}),
            (SELECT count(*) FILTER (WHERE severity = 'error')
             FROM {relation("quarantine", tables)})"""
    ).fetchone()
    assert found is not None
    n_activities, n_cd, n_publishers, n_countries, n_transactions = map(int, found[:5])
    total, cd = _money(found[5]), _money(found[6])
    n_files, n_rejected, n_quarantined = map(int, found[7:])
    return {
        "activities": n_activities,
        "cd_activities": n_cd,
        "publishers": n_publishers,
        "countries": n_countries,
        "transactions": n_transactions,
        "disbursement_usd": round(total, 2),
        "cd_disbursement_usd": round(cd, 2),
        "cd_share": round(cd / total, 4) if total else None,
        "files": n_files,
        "files_rejected": n_rejected,
        "records_quarantined": n_quarantined,
    }


def country_figures(
    con: duckdb.DuckDBPyConnection, tables: Collection[str]
) -> list[dict[str, Any]]:
    """Per recipient country: disbursements, CD disbursements, CD share, CD activities
    (the rows of ``activity_countries`` of CD activities), by country code."""
    cd_count = {
        str(code): int(count)
        for code, count in con.execute(
            f"""SELECT country_code, count(*) FILTER (WHERE activity_id IN (
                    SELECT activity_id FROM {relation("activities", tables)} WHERE is_cd))
            FROM {relation("activity_countries", tables)}
            WHERE country_code IS NOT NULL GROUP BY country_code"""
        ).fetchall()
    }
    rows: dict[str, dict[str, Any]] = {}
    for code, found_total, found_cd in con.execute(
        f"""SELECT country_code, fsum(usd), fsum(usd) FILTER (WHERE is_cd)
        FROM ({disbursements_sql(tables)}) WHERE country_code IS NOT NULL
        GROUP BY country_code"""
    ).fetchall():
        total, cd = _money(found_total), _money(found_cd)
        rows[str(code)] = {
            "country_code": str(code),
            "disbursement_usd": round(total, 2),
            "cd_disbursement_usd": round(cd, 2),
            "cd_share": round(cd / total, 4) if total else None,
            "cd_activities": cd_count.get(str(code), 0),
        }
    for code, count in cd_count.items():
        rows.setdefault(
            code,
            {
                "country_code": code,
                "disbursement_usd": 0.0,
                "cd_disbursement_usd": 0.0,
                "cd_share": None,
                "cd_activities": count,
            },
        )
    return [rows[k] for k in sorted(rows)]


def publishers(
    con: duckdb.DuckDBPyConnection, tables: Collection[str]
) -> list[tuple[str, str | None]]:
    """Every publisher of an activity: (``reporting_org_ref``, ``reporting_org_name`` of
    its first activity), by ref."""
    found = con.execute(
        f"""SELECT reporting_org_ref, reporting_org_name FROM (
            SELECT reporting_org_ref, reporting_org_name FROM {relation("activities", tables)}
            QUALIFY row_number() OVER (PARTITION BY reporting_org_ref ORDER BY {ROW}) = 1
        ) WHERE reporting_org_ref IS NOT NULL"""
    ).fetchall()
    return sorted((str(ref), None if name is None else str(name)) for ref, name in found)
