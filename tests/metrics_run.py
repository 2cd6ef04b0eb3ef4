"""The metrics stage run on frames, for the tests: register, ``add_metrics``, read back.

:func:`assets.metrics.stage.add_metrics` works on the harmonised tables in a DuckDB
connection. The tests build their tables as frames: :func:`run_metrics` puts each
(typed by ``schema/``, a missing table empty) in a fresh connection as ``c_<table>``
with its rows' order (``_row``), runs the stage and returns every published table as
a frame, in its order.
"""

from __future__ import annotations

from collections.abc import Mapping

import duckdb
import pandas as pd
import pyarrow as pa

from assets.harmonise.schema import arrow_schema, field_names, table_frame
from assets.iati.harmonise import ALL_TABLES
from assets.metrics.duplication import DEFAULT_SEARCH, PairSearch, PairSearchStats
from assets.metrics.stage import add_metrics, published_frames
from assets.settings import MetricsSettings
from assets.warehouse import ROW, quote, set_up, temp_table

#: The configuration's metrics settings (config/compact.yaml).
SETTINGS = MetricsSettings(overlap_threshold=0.3, overlap_use_text=True, method_version="1")


def complete(tables: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Every harmonised table, typed by the schema (a missing table empty)."""
    return {table: table_frame(table, tables.get(table, [])) for table in ALL_TABLES}


def register(
    con: duckdb.DuckDBPyConnection, tables: Mapping[str, pd.DataFrame], combined: bool = False
) -> None:
    """Each table as ``c_<table>`` of ``con`` with the schema's types: a view with ``_row``
    (its rows' order), or with ``combined`` a temporary table without it, as the transform
    leaves the combined tables (their order is then the tables' order, by their keys)."""
    for table, frame in complete(tables).items():
        arrow = pa.Table.from_pandas(
            frame[field_names(table)].reset_index(drop=True),
            schema=arrow_schema(table),
            preserve_index=False,
        )
        if combined:
            temp_table(con, f"c_{table}", arrow)
            continue
        arrow = arrow.append_column(ROW, pa.array(range(len(arrow)), pa.int64()))
        con.register(f"frame_{table}", arrow)
        con.execute(f"CREATE OR REPLACE VIEW {quote('c_' + table)} AS SELECT * FROM frame_{table}")


def run_metrics(
    tables: Mapping[str, pd.DataFrame],
    settings: MetricsSettings = SETTINGS,
    search: PairSearch = DEFAULT_SEARCH,
    stats: PairSearchStats | None = None,
    combined: bool = False,
) -> dict[str, pd.DataFrame]:
    """Every published table: ``tables`` with the transactions flagged, and the metrics
    (``combined``: see :func:`register`)."""
    con = duckdb.connect()
    try:
        set_up(con)
        register(con, tables, combined)
        add_metrics(con, settings, search=search, stats=stats)
        return published_frames(con)
    finally:
        con.close()
