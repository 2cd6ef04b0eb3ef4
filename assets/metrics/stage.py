"""The metrics stage: from the harmonised tables to the four metrics tables, in DuckDB.

In order: double counting (transactions that must not count toward totals are
flagged with the reason; record-level duplication pairs), alignment links and
metrics, overlapping-effort pairs (blocked on country and CD sector), then the
duplication metrics. Pure: the Dagster asset and the CLI call :func:`add_metrics`
on the connection that holds the harmonised tables (``c_<table>``, as
:func:`assets.harmonise.combine.combine_tables` leaves them); it replaces
``c_transactions`` with the flagged transactions and adds ``c_<table>`` for each of
:data:`METRIC_TABLES`, with exactly the schema's columns and types, so that every
published table is then a relation of the connection (:func:`published_frames`
reads them in their order). Only the title similarity of candidate pairs is
computed in Python, a batch of pairs at a time (:mod:`assets.metrics.similarity`).
"""

from __future__ import annotations

import duckdb
import pandas as pd

from assets.harmonise.schema import field_names, frame_of_arrow
from assets.iati.harmonise import ALL_TABLES
from assets.metrics import sql
from assets.metrics.alignment import METRICS, alignment_links, alignment_metrics
from assets.metrics.double_counting import flag_double_counting
from assets.metrics.duplication import (
    DEFAULT_SEARCH,
    PairSearch,
    PairSearchStats,
    duplication_metrics,
    overlapping_pairs,
)
from assets.settings import MetricsSettings
from assets.warehouse import literal, quote, typed_select

#: The tables this stage adds to the harmonised ones.
METRIC_TABLES = ("alignment_links", "alignment_metrics", "duplication_pairs", "duplication_metrics")
#: Every table a release publishes.
PUBLISHED_TABLES = (*ALL_TABLES, *METRIC_TABLES)
#: The harmonised tables the metrics read.
INPUT_TABLES = (
    "activities",
    "activity_countries",
    "activity_sectors",
    "participating_orgs",
    "transactions",
    "results",
    "cd_priorities",
    "partner_declarations",
    "quarantine",
)

_METRIC_NUMBER = (
    "CASE metric "
    + " ".join(f"WHEN {literal(metric)} THEN {number}" for number, metric in enumerate(METRICS))
    + " END"
)
#: The order of the metric tables' rows (each a key of the table).
METRIC_ORDER = {
    "alignment_links": "activity_id, country_code, priority_id, basis",
    "alignment_metrics": f"country_code, year, partner_org_ref, {_METRIC_NUMBER}",
    "duplication_pairs": "kind, activity_id_a, activity_id_b, pair_id",
    "duplication_metrics": (
        "country_code, priority_id ASC NULLS FIRST, sector_code ASC NULLS FIRST, year"
    ),
}


def add_metrics(
    con: duckdb.DuckDBPyConnection,
    settings: MetricsSettings,
    prefix: str = "c_",
    search: PairSearch = DEFAULT_SEARCH,
    stats: PairSearchStats | None = None,
    keep_work_tables: bool = False,
) -> None:
    """Flag double counting in ``<prefix>transactions`` and add ``<prefix><table>`` for each
    of :data:`METRIC_TABLES`, from the harmonised tables ``<prefix><table>`` of ``con``.

    A relation's row order is its ``_row`` column where it has one (frames registered by
    :func:`assets.warehouse.register_frames`; the flagged transactions keep it), else the
    combined tables' order (:func:`assets.metrics.sql.table_order`). The metrics read one
    activity per identifier (the schema's key): a broken table with repeated identifiers
    is left as it is, so that its blocking check fails and stops publishing, rather than
    the metrics failing. ``search`` and ``stats``: the overlapping-effort pair search's
    limits and counters. The work tables (temporary, ``m_*``) are dropped unless
    ``keep_work_tables`` (the tests read the splits of amounts in them)."""
    prepare_inputs(con, prefix)
    flag_double_counting(con)
    # the flagged transactions as a view: each reader joins the flags to the columns it
    # reads, and the whole rows are copied once, when written
    con.execute("ALTER TABLE m_transactions RENAME TO m_transactions_given")
    con.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW m_transactions AS
        SELECT t.* REPLACE (
            f.counts_toward_totals AS counts_toward_totals,
            f.exclusion_reason AS exclusion_reason)
        FROM m_transactions_given t JOIN m_flags f USING ({sql.ORDER})
        """
    )
    alignment_links(con)
    alignment_metrics(con, settings.method_version)
    overlapping_pairs(con, settings.overlap_threshold, settings.overlap_use_text, search, stats)
    duplication_metrics(con, settings.method_version)
    _write(con, prefix)
    if not keep_work_tables:
        _drop_work_tables(con)


def prepare_inputs(con: duckdb.DuckDBPyConnection, prefix: str = "c_") -> None:
    """The metrics' functions in ``con`` and their inputs as ``m_<table>`` (each harmonised
    table with its row order, :data:`~assets.metrics.sql.ORDER`), ``m_acts`` one activity
    per identifier (the first)."""
    sql.register(con)
    for table in INPUT_TABLES:
        sql.load_input(con, table, quote(prefix + table))
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_acts AS SELECT * FROM m_activities
        QUALIFY row_number() OVER (PARTITION BY activity_id ORDER BY {sql.ORDER}) = 1
        """
    )


def _write(con: duckdb.DuckDBPyConnection, prefix: str) -> None:
    """The flagged transactions and the metric tables as ``<prefix><table>``."""
    transactions = quote(prefix + "transactions")
    kept = sql.ORDER in sql.columns_of(con, transactions)
    kind = con.execute(
        "SELECT table_type FROM information_schema.tables WHERE table_name = ?",
        [prefix + "transactions"],
    ).fetchone()
    if kind and kind[0] == "VIEW":
        con.execute(f"DROP VIEW {transactions}")
    columns = ", ".join(
        quote(c) for c in sql.columns_of(con, "m_transactions") if kept or c != sql.ORDER
    )
    # rows that keep their number are read in its order; the others are stored in order
    ordered = "" if kept else f" ORDER BY {sql.ORDER}"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {transactions} AS "
        f"SELECT {columns} FROM m_transactions{ordered}"
    )
    pairs = ", ".join(quote(c) for c in field_names("duplication_pairs"))
    sources = {
        "alignment_links": "m_alignment_links",
        "alignment_metrics": "m_alignment_metrics",
        "duplication_pairs": (
            f"(SELECT {pairs} FROM m_record_pairs UNION ALL SELECT {pairs} FROM m_overlap_pairs)"
        ),
        "duplication_metrics": (
            "(SELECT * REPLACE (nullif(sector_code, '') AS sector_code, "
            "nullif(priority_id, '') AS priority_id) FROM m_duplication_metrics)"
        ),
    }
    for table, source in sources.items():
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {quote(prefix + table)} AS "
            f"{typed_select(table, source)} ORDER BY {METRIC_ORDER[table]}"
        )


def _drop_work_tables(con: duckdb.DuckDBPyConnection) -> None:
    names = con.execute(
        "SELECT table_name, table_type FROM information_schema.tables "
        "WHERE table_catalog = 'temp' AND starts_with(table_name, 'm_')"
    ).fetchall()
    for name, kind in names:
        con.execute(f"DROP {'VIEW' if kind == 'VIEW' else 'TABLE'} IF EXISTS {quote(name)}")


def table_order(con: duckdb.DuckDBPyConnection, table: str, prefix: str = "c_") -> str:
    """The ``ORDER BY`` list of a published table's rows in ``con``."""
    if table in METRIC_ORDER:
        return METRIC_ORDER[table]
    if sql.ORDER in sql.columns_of(con, quote(prefix + table)):
        return sql.ORDER
    return sql.table_order(table)


def published_frames(con: duckdb.DuckDBPyConnection, prefix: str = "c_") -> dict[str, pd.DataFrame]:
    """Every published table of ``con`` (after :func:`add_metrics`) as a frame with the
    schema's columns and dtypes, its rows in the table's order."""
    sql.register(con)
    frames = {}
    for table in PUBLISHED_TABLES:
        columns = ", ".join(quote(c) for c in field_names(table))
        arrow = con.sql(
            f"SELECT {columns} FROM {quote(prefix + table)} "
            f"ORDER BY {table_order(con, table, prefix)}"
        ).to_arrow_table()
        frames[table] = frame_of_arrow(arrow)
    return frames
