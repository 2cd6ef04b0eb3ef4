"""All inputs together: IATI datasets, country reports and partner submissions, in DuckDB."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq

from assets.harmonise import combine as combining
from assets.harmonise.combine import ALL_TABLES, FetchOutcome, order_by
from assets.harmonise.reuse import inputs_fingerprint
from assets.harmonise.schema import field_names
from assets.harmonise.store import copy_query, read_table, reference_dir
from assets.iati.extract import extract_dir, is_extracted
from assets.iati.fetching import (
    conformance_key,
    dataset_inputs,
    fetch_outcome,
    iati_dir,
    last_run,
    raw_store,
    reference_fingerprint,
)
from assets.iati.harmonise import HarmonisedFile, conformance_path
from assets.iati.transform import (
    MONEY_COLUMNS,
    IatiInput,
    TransformOptions,
    iati_money,
    iati_tables,
)
from assets.settings import Settings
from assets.submissions.intake import MARKER as SUBMISSION_MARKER
from assets.submissions.intake import load_index, processed_submissions, submissions_dir
from assets.warehouse import ROW, connection, literal, quote, typed_select

#: ``transactions``' flags as the combining step set them, by row, before the metrics
#: flagged double counting (kept beside the tables for :func:`refresh_money`).
FLAGS = "combined-flags.parquet"
#: The tables a night when only the exchange rates changed can change (besides the
#: metrics): the money, its warnings, and tonight's fetch outcome.
MONEY_TABLES = ("transactions", "budgets", "quarantine", "sources")
_FLAG_COLUMNS = ("counts_toward_totals", "exclusion_reason")


def transform_options(settings: Settings) -> TransformOptions:
    """The rules of the configuration and the reference data this run stored."""
    folder = reference_dir(settings.data_dir)
    rates = folder / "exchange_rates.parquet"
    codelists = folder / "codelists.parquet"
    return TransformOptions(
        rules=settings.cd_rules,
        preferred_languages=settings.preferred_languages,
        rate_fallback_months=settings.rate_fallback_months,
        rates=pd.read_parquet(rates) if rates.exists() else pd.DataFrame(),
        codelists=pd.read_parquet(codelists) if codelists.exists() else None,
        max_findings=settings.quality.max_findings,
    )


def transform(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Every harmonised table of tonight's inputs as ``c_<table>`` in ``con``: the extracted
    IATI datasets transformed, the processed submissions, tonight's fetch outcome, one
    activity per identifier."""
    inputs, outcomes = dataset_inputs(settings)
    combine_inputs(
        con, inputs, transform_options(settings), processed_submissions(settings), outcomes
    )


def combine_inputs(
    con: duckdb.DuckDBPyConnection,
    inputs: Sequence[IatiInput],
    options: TransformOptions,
    others: Sequence[HarmonisedFile] = (),
    fetch: Sequence[FetchOutcome] = (),
) -> None:
    """Every harmonised table as ``c_<table>`` in ``con``: the extracted IATI files
    ``inputs`` transformed with ``options``, the tables of ``others`` (submissions), the
    ``fetch`` outcome in the datasets' ``sources`` rows, one activity per identifier (the
    nightly job's :func:`transform`, and ``cdcompact iati harmonise``)."""
    before = set(_temporary(con))
    iati_tables(con, inputs, options)
    combining.combine_tables(con, [(h.source_file, h.tables) for h in others], fetch)
    # what the steps left besides the combined tables goes: on a large night it is several
    # times the tables, spilled to disk, and the metrics need the room
    for name, kind in _temporary(con).items():
        if name not in before and not name.startswith("c_"):
            con.execute(f"DROP {kind} IF EXISTS {quote(name)}")


def _temporary(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The connection's temporary views and tables, views first: {name: VIEW or TABLE}."""
    rows = con.execute(
        "SELECT view_name, 'VIEW' FROM duckdb_views() WHERE temporary AND NOT internal "
        "UNION ALL SELECT table_name, 'TABLE' FROM duckdb_tables() WHERE temporary"
    ).fetchall()
    return {str(name): str(kind) for name, kind in rows}


def save_flags(con: duckdb.DuckDBPyConnection, folder: Path) -> None:
    """``c_transactions``' flags by row (before the metrics change them) into ``folder``."""
    columns = ", ".join(quote(c) for c in (ROW, *_FLAG_COLUMNS))
    copy_query(con, f"SELECT {columns} FROM c_transactions ORDER BY {quote(ROW)}", folder / FLAGS)


def refresh_money(con: duckdb.DuckDBPyConnection, settings: Settings, folder: Path) -> int | None:
    """The tables of the last complete combining step (in ``folder``) as ``c_<table>`` in
    ``con`` with tonight's exchange rates, for a night when nothing else changed: the IATI
    transactions' and budgets' US dollars and their ``value_usd`` warnings computed again
    from the extracted files (:func:`assets.iati.transform.iati_money`), the transactions'
    flags as the combining step set them (the metrics flag them again), ``sources`` with
    tonight's fetch outcome. Every row keeps its place; the warnings are put in the
    quarantine's order. The number of rows whose money or warning changed (0: the tables
    on disk stand, and only the money's tables are made), or None when the last step's
    tables are not all there."""
    paths = {table: folder / f"{table}.parquet" for table in ALL_TABLES}
    flags = folder / FLAGS
    if not flags.exists() or not all(path.exists() for path in paths.values()):
        return None
    if pq.read_metadata(flags).num_rows != pq.read_metadata(paths["transactions"]).num_rows:
        return None
    inputs, _ = dataset_inputs(settings)
    iati_money(con, inputs, transform_options(settings))
    for table in ("transactions", "budgets", "quarantine"):
        _load(con, table, paths[table])
    try:
        changed = sum(_refresh_money_of(con, table) for table in MONEY_COLUMNS)
    except _NotTheSameRows:
        return None
    changed += _refresh_money_warnings(con)
    if not changed:
        return 0  # the tables on disk stand: nothing more is needed
    for table in ALL_TABLES:
        if table not in ("transactions", "budgets", "quarantine", "sources"):
            _load(con, table, paths[table])
    sources = refreshed_sources(settings, read_table("sources", paths["sources"]))
    con.register("refreshed_sources", sources.assign(**{ROW: range(1, len(sources) + 1)}))
    con.execute(
        "CREATE OR REPLACE TEMP TABLE c_sources AS "
        + typed_select("sources", "refreshed_sources", [quote(ROW)])
    )
    con.unregister("refreshed_sources")
    flag_set = ", ".join(f"{quote(c)} = f.{quote(c)}" for c in _FLAG_COLUMNS)
    con.execute(
        f"UPDATE c_transactions AS c SET {flag_set} "
        f"FROM read_parquet({literal(str(flags))}) f WHERE f.{quote(ROW)} = c.{quote(ROW)}"
    )
    return changed


def _load(con: duckdb.DuckDBPyConnection, table: str, path: Path) -> None:
    """``c_<table>`` from the table's file, each row numbered by its place in it."""
    numbered = (
        f"(SELECT *, file_row_number + 1 AS {quote(ROW)} "
        f"FROM read_parquet({literal(str(path))}, file_row_number = true))"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {quote('c_' + table)} AS "
        f"{typed_select(table, numbered, [quote(ROW)])}"
    )


class _NotTheSameRows(Exception):
    """The tables on disk have rows the extracted files do not give: combine in full."""


def _refresh_money_of(con: duckdb.DuckDBPyConnection, table: str) -> int:
    """``c_<table>``'s IATI rows with tonight's money (``iati_<table>``); how many changed."""
    columns = MONEY_COLUMNS[table]
    target, tonight = quote("c_" + table), quote("iati_" + table)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE r_money AS
        SELECT c.{quote(ROW)}, {", ".join(f"i.{quote(c)}" for c in columns)},
            {" OR ".join(f"c.{quote(c)} IS DISTINCT FROM i.{quote(c)}" for c in columns)}
                AS _changed
        FROM {target} c JOIN {tonight} i
            ON i.source_file = c.source_file AND i.source_ref = c.source_ref
        WHERE c.source = 'iati'
        """
    )
    found = con.execute(
        f"SELECT (SELECT count(*) FROM r_money), "
        f"(SELECT count(*) FROM {target} WHERE source = 'iati'), "
        "(SELECT count(*) FILTER (WHERE _changed) FROM r_money)"
    ).fetchone()
    assert found is not None
    matched, rows, changed = (int(v) for v in found)
    if matched != rows:
        raise _NotTheSameRows(table)
    if changed:
        assignments = ", ".join(f"{quote(c)} = r.{quote(c)}" for c in columns)
        con.execute(
            f"UPDATE {target} AS c SET {assignments} FROM r_money r "
            f"WHERE r._changed AND r.{quote(ROW)} = c.{quote(ROW)}"
        )
    con.execute("DROP TABLE r_money")
    return changed


def _refresh_money_warnings(con: duckdb.DuckDBPyConnection) -> int:
    """``c_quarantine`` with tonight's ``value_usd`` warnings of the IATI files in place of
    the last night's, in the quarantine's order; how many warnings changed."""
    columns = ", ".join(quote(c) for c in field_names("quarantine"))
    money = (
        "field = 'value_usd' AND \"table\" IN ('transactions', 'budgets') "
        "AND source_file IN (SELECT source_file FROM iati_inputs)"
    )
    found = con.execute(
        f"""
        SELECT count(*) FROM (
            (SELECT {columns} FROM c_quarantine WHERE {money}
                EXCEPT ALL SELECT {columns} FROM iati_money_warnings)
            UNION ALL
            (SELECT {columns} FROM iati_money_warnings
                EXCEPT ALL SELECT {columns} FROM c_quarantine WHERE {money})
        )
        """
    ).fetchone()
    changed = int(found[0]) if found else 0
    if not changed:
        return 0
    # Tonight's warnings never tie with a row kept on the sort keys (those of the same
    # file, place, table and field are the ones replaced), so the rows kept keep their
    # order among themselves, and the new ones fall where a full combine puts them.
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE r_quarantine AS
        SELECT {columns}, {quote(ROW)} AS _old FROM c_quarantine WHERE NOT ({money})
        UNION ALL
        SELECT {columns}, NULL AS _old FROM iati_money_warnings
        """
    )
    numbered = (
        f"(SELECT *, row_number() OVER (ORDER BY {order_by('quarantine', ties=('_old',))}) "
        f"AS {quote(ROW)} FROM r_quarantine)"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE c_quarantine AS "
        + typed_select("quarantine", numbered, [quote(ROW)])
    )
    con.execute("DROP TABLE r_quarantine")
    return changed


def refreshed_sources(settings: Settings, sources: pd.DataFrame) -> pd.DataFrame:
    """The combined ``sources`` table of an earlier night with tonight's fetch outcome
    (used when the inputs did not change, so nothing else in the tables can have)."""
    results = {r["key"]: r for r in last_run(settings.data_dir) if r["sha256"]}
    records = raw_store(settings).records()
    outcomes = [
        fetch_outcome(key, results.get(key, {"status": None}), record)
        for key, record in records.items()
    ]
    with connection(settings) as con:
        return combining.refresh_sources(con, sources, outcomes)


def combined_fingerprint(settings: Settings, with_rates: bool = True) -> str:
    """What :func:`transform` would combine tonight, as one digest
    (:func:`assets.harmonise.reuse.inputs_fingerprint`); without the exchange rates unless
    ``with_rates`` (a night when only they changed: :func:`refresh_money`)."""
    root = iati_dir(settings.data_dir)
    key = conformance_key(settings)

    def dataset_marker(sha256: str | None) -> str | None:
        if not sha256 or not is_extracted(root / "extract", sha256):
            return None
        findings = conformance_path(root / "conformance", key, sha256)
        return f"{extract_dir(root / 'extract', sha256)}|{findings.exists()}"

    folder = submissions_dir(settings.data_dir)
    index = load_index(settings.data_dir)
    submissions = [json.dumps(index, sort_keys=True)]
    for name in sorted(index):
        path: Path = folder / name / SUBMISSION_MARKER
        submissions.append(path.read_text(encoding="utf-8") if path.exists() else f"{name}: -")
    return inputs_fingerprint(
        settings,
        last_run(settings.data_dir),
        reference_fingerprint(settings, with_rates),
        dataset_marker,
        submissions,
    )


__all__ = [
    "FLAGS",
    "MONEY_TABLES",
    "FetchOutcome",
    "combined_fingerprint",
    "refresh_money",
    "refreshed_sources",
    "save_flags",
    "transform",
]
