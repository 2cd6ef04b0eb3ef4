"""Every input of the night as one set of harmonised tables, in DuckDB (pure; no Dagster).

The inputs are the IATI files' tables the transform made (``iati_<table>``, see
:func:`assets.iati.transform.iati_tables`) and any other files' tables given as
frames (country reports and partner submissions: small, from people). Each row
keeps its file (``_file``) and its place in the file (``_ord``), so that the
result is in exactly the order the tables always had.

The same activity identifier in two files keeps an IATI publication over a
submission, then the reporting organisation's own publication (identifier
starts with its ref), else the most recently updated, else the first file by
name; the other copy's rows go to quarantine as ``duplicate_activity_across_files``
and its source's counts say so. A partner submission's copy of an activity that
IATI publishes is merged instead: IATI's description (activity, countries,
sectors, organisations) stands, the submission's budget is set aside where IATI
publishes budgets for the activity, its transactions, results and declarations
stay for the double-counting stage to weigh, and a warning
``activity_also_in_iati`` says what was taken from where.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import duckdb
import pandas as pd
import pyarrow as pa

from assets.harmonise import sql
from assets.harmonise.schema import arrow_schema, field_names
from assets.warehouse import ROW, empty_table_sql, quote, temp_table, typed_select

#: Tables one IATI file fills, in the order they are written.
IATI_TABLES = (
    "activities",
    "activity_countries",
    "activity_regions",
    "activity_sectors",
    "participating_orgs",
    "transactions",
    "budgets",
    "results",
)
#: Every harmonised table (country reports and partner submissions add the two CD ones;
#: ``conformance`` holds what the IATI schema and codelists say about each IATI file).
ALL_TABLES = (
    *IATI_TABLES,
    "cd_priorities",
    "partner_declarations",
    "sources",
    "quarantine",
    "conformance",
)
#: Tables that describe an activity: when a partner submission reports an
#: activity IATI publishes, these come from IATI alone.
DESCRIPTIVE_TABLES = (
    "activities",
    "activity_countries",
    "activity_regions",
    "activity_sectors",
    "participating_orgs",
)
ALSO_IN_IATI_RULE = "activity_also_in_iati"
DUPLICATE_RULE = "duplicate_activity_across_files"

#: The order of every table's rows (``source_ref`` compared with its numbers as numbers);
#: rows equal on these keep the order of their files (by name) and their place in them.
SORT_KEYS: dict[str, Sequence[str]] = {
    "activities": ("activity_id",),
    "activity_countries": ("activity_id", "country_code"),
    "activity_regions": ("activity_id", "vocabulary", "region_code"),
    "activity_sectors": ("activity_id", "vocabulary", "code"),
    "participating_orgs": ("activity_id", "source_ref"),
    "transactions": ("activity_id", "source_ref", "transaction_id"),
    "budgets": ("activity_id", "source_ref", "budget_id"),
    "results": ("activity_id", "source_ref", "result_id"),
    "cd_priorities": ("country_code", "priority_id"),
    "partner_declarations": ("activity_id", "partner_org_ref", "period"),
    "sources": ("source_file",),
    "quarantine": ("source_file", "source_ref", "table", "rule", "field", "message"),
    "conformance": ("source_file", "check", "line", "rule", "message"),
}


@dataclass(frozen=True)
class FetchOutcome:
    """What tonight's fetch says about one dataset's ``sources`` row."""

    source_file: str
    #: False when the raw store has no record of the dataset: the row is left as it is.
    with_record: bool
    #: When the bytes were last downloaded, and when the source was last asked.
    fetched_at: str | None
    checked_at: str | None
    http_etag: str | None
    uri: str | None
    #: What happened on the wire tonight: ``downloaded``, ``revalidated`` or ``kept``.
    download: str | None
    #: Appended to ``reason`` when the last good copy stood in (the fetch failed, or the
    #: dataset is missing from its source).
    note: str | None


def order_by(
    table: str,
    prefix: str = "",
    mixed: str | None = None,
    ties: Sequence[str] = ("_block", "_fo", "_ord"),
) -> str:
    """The ``ORDER BY`` list of a table's rows (:data:`SORT_KEYS`, then ``ties``: by default
    file and place).

    With ``mixed`` (a boolean column), the keys after the first are compared only where it
    is true: an activity's rows that all come from one IATI file are in their place in the
    file, which is their ``source_ref`` order (the extractor numbers them in document order),
    so comparing ``source_ref`` as text with numbers is needed only across files."""
    keys = []
    for position, key in enumerate(SORT_KEYS.get(table, ())):
        column = f"{prefix}{quote(key)}"
        if key == "source_ref":
            column = f"natural_key({column})"
        if mixed is not None and position > 0:
            column = f"CASE WHEN {mixed} THEN {column} END"
        keys.append(f"{column} ASC NULLS FIRST")
    return ", ".join([*keys, *(f"{prefix}{tie}" for tie in ties)])


#: Tables whose rows are ordered by activity, then ``source_ref`` (see :func:`order_by`).
_BY_ACTIVITY_AND_PLACE = ("participating_orgs", "transactions", "budgets", "results")


def _register_frames(
    con: duckdb.DuckDBPyConnection, files: Sequence[tuple[str, Mapping[str, pd.DataFrame]]]
) -> dict[str, list[str]]:
    """Each given file's tables as relations ``f<i>_<table>``; per table, their names."""
    names: dict[str, list[str]] = {table: [] for table in ALL_TABLES}
    for index, (_, tables) in enumerate(files):
        for table in ALL_TABLES:
            frame = tables.get(table)
            if frame is None or not len(frame):
                continue
            name = f"f{index}_{table}"
            arrow = pa.Table.from_pandas(
                frame[field_names(table)].reset_index(drop=True),
                schema=arrow_schema(table),
                preserve_index=False,
            )
            con.register(name, arrow.append_column("_ord", pa.array(range(len(arrow)), pa.int64())))
            names[table].append(name)
    return names


def combine_tables(
    con: duckdb.DuckDBPyConnection,
    others: Sequence[tuple[str, Mapping[str, pd.DataFrame]]] = (),
    fetch: Sequence[FetchOutcome] = (),
    with_iati: bool = True,
) -> None:
    """Create ``c_<table>`` for every harmonised table: the IATI files' tables (``iati_<table>``
    in ``con``, when ``with_iati``) and ``others`` ((source_file, tables) of other files),
    with tonight's ``fetch`` outcome in the datasets' ``sources`` rows, one activity per
    identifier across files, in the tables' order."""
    sql.register(con)
    registered = _register_frames(con, others)
    files = sorted(
        [(name, 1, index) for index, (name, _) in enumerate(others)]
        + (
            [
                (row[0], 0, 0)
                for row in con.execute("SELECT source_file FROM iati_inputs").fetchall()
            ]
            if with_iati
            else []
        )
    )
    order = pa.table(
        {
            "_file": [f[0] for f in files],
            "_group": [f[1] for f in files],
            "_index": [f[2] for f in files],
            "_fo": list(range(len(files))),
        }
    )
    temp_table(con, "file_order", order)
    for table in ALL_TABLES:
        parts = []
        if with_iati:
            parts.append(
                f"SELECT {', '.join(quote(c) for c in field_names(table))}, _file, _ord, "
                f"0 AS _group, 0 AS _index FROM {quote('iati_' + table)}"
            )
        for name in registered[table]:
            index = int(name[1 : name.index("_")])
            parts.append(
                f"SELECT * EXCLUDE (_ord), {sql_literal(others[index][0])} AS _file, "
                f"_ord, 1 AS _group, {index} AS _index "
                f"FROM {quote(name)}"
            )
        body = " UNION ALL ".join(parts) if parts else f"SELECT * FROM ({_empty(table)})"
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {quote("u_" + table)} AS
            SELECT u.*, o._fo, 0 AS _block FROM ({body}) u
            JOIN file_order o ON o._file = u._file AND o._group = u._group
                AND o._index = u._index
            """
        )
        for name in registered[table]:
            con.unregister(name)
    _apply_fetch(con, fetch)
    _one_activity_per_identifier(con)
    # Each combined table numbers its rows in their order (``_row``): DuckDB keeps no
    # insertion order (``preserve_insertion_order`` is off, so that large scans stream),
    # and whoever reads a table in order sorts by it. The order is computed over the sort
    # keys and the row ids alone, then joined back: sorting the whole rows (long texts
    # and all) would spill many times the table to disk on a large night.
    for table in ALL_TABLES:
        columns = ", ".join(f"u.{quote(c)}" for c in field_names(table))
        # the text of source_ref is compared only where the place in one IATI file does
        # not decide the order: on a large night that comparison is most of the sort
        mixed = "_mixed" if table in _BY_ACTIVITY_AND_PLACE else None
        con.execute(
            "CREATE OR REPLACE TEMP TABLE u_order AS SELECT _id, "
            f"row_number() OVER (ORDER BY {order_by(table, mixed=mixed)}) AS {quote(ROW)} "
            f"FROM {_ordered_rows(con, table)}"
        )
        numbered = (
            f"(SELECT {columns}, o.{quote(ROW)} FROM {quote('u_' + table)} u "
            "JOIN u_order o ON o._id = u.rowid)"
        )
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {quote('c_' + table)} AS "
            f"{typed_select(table, numbered, [quote(ROW)])}"
        )
        con.execute("DROP TABLE u_order")
        con.execute("DROP TABLE IF EXISTS u_mixed")
        con.execute(f"DROP TABLE {quote('u_' + table)}")


def _ordered_rows(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """``u_<table>``'s rows with their row id (``_id``) and, for the tables ordered by
    activity and place, ``_mixed``: whether the activity's rows come from more than one
    file or from a file other than IATI's (see :func:`order_by`)."""
    source = quote("u_" + table)
    if table not in _BY_ACTIVITY_AND_PLACE:
        return f"(SELECT *, rowid AS _id FROM {source})"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE u_mixed AS
        SELECT activity_id FROM {source} WHERE activity_id IS NOT NULL GROUP BY activity_id
        HAVING count(DISTINCT _fo) > 1 OR bool_or(coalesce(source <> 'iati', true))
        """
    )
    return f"""(
        SELECT u.*, u.rowid AS _id,
            u.activity_id IS NULL OR m.activity_id IS NOT NULL AS _mixed
        FROM {source} u LEFT JOIN u_mixed m ON m.activity_id = u.activity_id
    )"""


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _empty(table: str) -> str:
    return (
        f"SELECT *, NULL::VARCHAR AS _file, 0::BIGINT AS _ord, 0 AS _group, 0 AS _index "
        f"FROM ({empty_table_sql(table)})"
    )


def refresh_sources(
    con: duckdb.DuckDBPyConnection, sources: pd.DataFrame, fetch: Sequence[FetchOutcome]
) -> pd.DataFrame:
    """An earlier night's combined ``sources`` with tonight's ``fetch`` outcome in the IATI
    datasets' rows. A file the combining step rejected because every activity of it was
    also published in another file stays rejected, as after a full combine."""
    from assets.harmonise.schema import frame_of_arrow

    arrow = pa.Table.from_pandas(
        sources[field_names("sources")].reset_index(drop=True),
        schema=arrow_schema("sources"),
        preserve_index=False,
    )
    con.register("sources_arrow", arrow.append_column("_ord", pa.array(range(len(arrow)))))
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE u_sources AS
        SELECT *, CASE WHEN coalesce(source = 'iati', false) THEN 0 ELSE 1 END AS _group,
            coalesce(status = 'rejected' AND n_accepted = 0
                AND contains(reason, 'also published in another file'), false) AS _copy
        FROM sources_arrow
        """
    )
    con.unregister("sources_arrow")
    _apply_fetch(con, fetch)
    con.execute("UPDATE u_sources SET status = 'rejected' WHERE _copy")
    columns = ", ".join(quote(c) for c in field_names("sources"))
    return frame_of_arrow(
        con.sql(
            typed_select("sources", f"(SELECT {columns} FROM u_sources ORDER BY _ord)")
        ).to_arrow_table()
    )


def _apply_fetch(con: duckdb.DuckDBPyConnection, fetch: Sequence[FetchOutcome]) -> None:
    """Datasets' ``sources`` rows with tonight's fetch outcome: when and where from the copy
    was downloaded, when the source was asked, what happened on the wire (``download``),
    and a note when the last good copy stood in. ``status`` (what the content is) stays."""
    if not fetch:
        return
    rows = pa.Table.from_pylist(
        [vars(outcome) for outcome in fetch],
        schema=pa.schema(
            [
                ("source_file", pa.string()),
                ("with_record", pa.bool_()),
                ("fetched_at", pa.string()),
                ("checked_at", pa.string()),
                ("http_etag", pa.string()),
                ("uri", pa.string()),
                ("download", pa.string()),
                ("note", pa.string()),
            ]
        ),
    )
    temp_table(con, "fetch_outcomes", rows)
    con.execute(
        """
        UPDATE u_sources AS s SET
            fetched_at = CASE WHEN f.with_record THEN CAST(f.fetched_at AS TIMESTAMPTZ)
                ELSE s.fetched_at END,
            checked_at = CASE WHEN f.with_record THEN CAST(f.checked_at AS TIMESTAMPTZ)
                ELSE s.checked_at END,
            http_etag = CASE WHEN f.with_record THEN f.http_etag ELSE s.http_etag END,
            uri = CASE WHEN f.with_record THEN f.uri ELSE s.uri END,
            download = f.download,
            reason = CASE WHEN f.note IS NULL THEN s.reason
                WHEN s.reason IS NULL OR s.reason = '' THEN f.note
                ELSE s.reason || '; ' || f.note END
        FROM fetch_outcomes f
        WHERE f.source_file = s.source_file AND s._group = 0
        """
    )


def _one_activity_per_identifier(con: duckdb.DuckDBPyConnection) -> None:
    repeated = con.execute(
        "SELECT count(*) FROM (SELECT activity_id FROM u_activities "
        "GROUP BY activity_id HAVING count(*) > 1)"
    ).fetchone()
    if not repeated or not repeated[0]:
        return
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE ranked AS
        SELECT activity_id, source_file, source_ref, source, _fo, _ord,
            row_number() OVER (
                PARTITION BY activity_id
                ORDER BY coalesce(source <> 'iati', true),
                    NOT coalesce(starts_with(activity_id, reporting_org_ref), false),
                    coalesce(last_updated, TIMESTAMPTZ '1970-01-01 00:00:00+00') DESC,
                    source_file, _fo, _ord
            ) AS _rank
        FROM u_activities
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE extra AS
        SELECT e.*, k.source_file AS kept_file,
            coalesce(e.source = 'partner_submission', false)
                AND coalesce(k.source = 'iati', false) AS is_merge,
            row_number() OVER (ORDER BY e.activity_id, e._rank) AS _seq
        FROM ranked e JOIN ranked k ON k.activity_id = e.activity_id AND k._rank = 1
        WHERE e._rank > 1
        """
    )
    # a partner submission's copy of an activity IATI publishes: merged
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE merged AS
        SELECT e.*, e.activity_id IN (
                SELECT activity_id FROM u_budgets WHERE coalesce(source = 'iati', false)
            ) AS budget_set_aside
        FROM extra e WHERE e.is_merge
        """
    )
    for table in DESCRIPTIVE_TABLES:
        con.execute(
            f"DELETE FROM {quote('u_' + table)} t USING merged m "
            "WHERE t.activity_id = m.activity_id AND t.source_file = m.source_file"
        )
    con.execute(
        "DELETE FROM u_budgets t USING merged m WHERE t.activity_id = m.activity_id "
        "AND t.source_file = m.source_file AND m.budget_set_aside"
    )
    # any other copy: not accepted
    for table in IATI_TABLES:
        con.execute(
            f"DELETE FROM {quote('u_' + table)} t USING extra e "
            "WHERE NOT e.is_merge AND t.activity_id = e.activity_id "
            "AND t.source_file = e.source_file"
        )
    columns = ", ".join(quote(c) for c in field_names("quarantine"))
    con.execute(
        f"""
        INSERT INTO u_quarantine ({columns}, _file, _ord, _group, _index, _fo, _block)
        SELECT source_file, source_ref, 'activities', 'activity_id', '{ALSO_IN_IATI_RULE}',
            activity_id,
            'activity ' || py_repr(activity_id) || ' is also published in IATI ('
                || kept_file || '): its title, dates, countries and sectors are taken from '
                || 'IATI; ' || CASE WHEN budget_set_aside
                    THEN 'its budget is set aside because IATI publishes budgets for it'
                    ELSE 'its budget is kept (IATI publishes none)' END
                || '; its disbursements count only where IATI reports no transaction of the '
                || 'same type (see transactions.exclusion_reason); its declarations and '
                || 'results are kept',
            'warning', NULL, _seq, 0, 0, 0, 1
        FROM merged
        UNION ALL
        SELECT source_file, source_ref, 'activities', 'activity_id', '{DUPLICATE_RULE}',
            activity_id,
            'activity ' || py_repr(activity_id) || ' is also published in ' || kept_file
                || ', which is kept (an IATI publication over a submission, then the '
                || 'reporting organisation''s own publication, else the most recently '
                || 'updated); this copy is not accepted',
            'error', NULL, _seq, 0, 0, 0, 2
        FROM extra WHERE NOT is_merge
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE source_notes AS
        SELECT source_file,
            count(*) FILTER (WHERE is_merge) AS n_merged,
            count(*) FILTER (WHERE NOT is_merge) AS n_dropped
        FROM extra GROUP BY source_file
        """
    )
    con.execute(
        """
        UPDATE u_sources AS s SET
            reason = array_to_string(list_filter([
                s.reason,
                CASE WHEN n.n_merged > 0 THEN n.n_merged
                    || ' activities also published in IATI, merged (see quarantine)' END,
                CASE WHEN n.n_dropped > 0 THEN n.n_dropped
                    || ' activities also published in another file (see quarantine)' END
            ], p -> p IS NOT NULL), '; '),
            n_accepted = s.n_accepted - n.n_dropped,
            n_quarantined = s.n_quarantined + n.n_dropped,
            status = CASE
                WHEN n.n_dropped > 0 AND s.n_accepted - n.n_dropped = 0 THEN 'rejected'
                WHEN n.n_dropped > 0 AND s.status = 'ok' THEN 'partial'
                ELSE s.status END
        FROM source_notes n WHERE n.source_file = s.source_file
        """
    )


def frames(con: duckdb.DuckDBPyConnection, prefix: str = "c_") -> dict[str, pd.DataFrame]:
    """The combined tables as frames with the schema's dtypes (tests, small inputs)."""
    from assets.harmonise.schema import frame_of_arrow

    return {
        table: frame_of_arrow(
            con.sql(
                f"SELECT {', '.join(quote(c) for c in field_names(table))} "
                f"FROM {quote(prefix + table)} ORDER BY {quote(ROW)}"
            ).to_arrow_table()
        )
        for table in ALL_TABLES
    }
