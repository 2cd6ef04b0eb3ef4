"""The same money counted twice (record level): flags and published pairs, in SQL.

:func:`flag_double_counting` completes ``transactions.counts_toward_totals`` /
``exclusion_reason`` and makes the ``duplication_pairs`` rows of kinds
``same_activity_reported_twice`` and ``funding_chain`` (see ``docs/metrics.md``,
"Duplication and fragmentation", point 1), over the metrics' inputs in a DuckDB
connection (:mod:`assets.metrics.stage`).

A flagged transaction keeps its row. A transaction the harmoniser already
flagged stays flagged; when several reasons apply the first one in this order
is kept:

1. ``incoming funds`` (types 1, 11, 13) and ``secondary reporter`` (set by the
   harmoniser). Where the incoming funds (type 1 or 11) are part of a funding
   chain (rule 4) the reason is refined to ``incoming funds from <A> (counted at
   the funder)``.
2. ``reported again by child activity <C>``: the harmonised tables keep no
   ``related-activity`` links, so a parent/child relation is read from the
   hierarchy alone. An IATI transaction of an activity at hierarchy level *h*
   (empty = 1, the IATI default) is excluded when an IATI activity of the same
   reporting organisation at a deeper level (> *h*) has a transaction with the
   same type, date, value and currency; ``<C>`` is the smallest such child.
3. ``also reported in IATI (file <F>)``: a partner submission's transaction for
   an activity whose IATI publication has transactions of the same type (IATI
   wins; ``<F>`` is the first IATI file by name). ``combine`` has already
   merged such a submission's copy into the IATI activity (IATI's description,
   the submission's transactions) and left a warning ``activity_also_in_iati``;
   each becomes a pair, whether or not the types overlap. The cross-file case
   between two IATI files (or two submissions) is resolved by ``combine``, which
   keeps one copy and quarantines the other as ``duplicate_activity_across_files``;
   each such quarantine row is published as a pair here (``activity_id_a`` =
   ``activity_id_b`` = the identifier; the schema allows it).
4. Funding chain: a disbursement or outgoing commitment (type 3 or 2) of
   activity A with ``receiver_activity_id`` = B, or incoming funds (type 1 or 11)
   of B with ``provider_activity_id`` = A (either link suffices; both activities
   must be in the tables, A != B) give a ``funding_chain`` pair. B's incoming
   funds naming A, and B's incoming funds that name no provider activity but
   match one of A's transactions to B in value and currency, get the chain
   reason (rule 1 refined).

Identifiers, types, files and currencies are compared as Python strips them.
"""

from __future__ import annotations

import duckdb

from assets.harmonise.combine import ALSO_IN_IATI_RULE, DUPLICATE_RULE
from assets.metrics.sql import ORDER, stripped, sum_sql, takes_reduceat
from assets.warehouse import literal

INCOMING_TYPES = ("1", "11", "13")
CHAIN_INCOMING_TYPES = ("1", "11")
CHAIN_OUTGOING_TYPES = ("2", "3")
SAME_ACTIVITY = "same_activity_reported_twice"
FUNDING_CHAIN = "funding_chain"

#: Where combine's message names the file it kept (when the activity is not in the tables).
KEPT_IN_MESSAGE = "also published in (.+?), which is kept"
#: The separator of :func:`assets.iati.extract.stable_id`'s parts.
_UNIT = "chr(31)"


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(literal(v) for v in values) + ")"


def stable_id_sql(*parts: str) -> str:
    """SQL of :func:`assets.iati.extract.stable_id` over SQL expressions (none missing)."""
    return f"left(sha256({f' || {_UNIT} || '.join(parts)}), 20)"


def flag_double_counting(con: duckdb.DuckDBPyConnection) -> None:
    """From the inputs ``m_transactions``, ``m_acts`` (one activity per identifier),
    ``m_activity_countries`` and ``m_quarantine``: ``m_flags`` (each transaction's
    :data:`~assets.metrics.sql.ORDER`, ``counts_toward_totals`` and ``exclusion_reason``)
    and ``m_record_pairs`` (``duplication_pairs`` rows with ``_part`` and ``_pos``, the
    order in which the pandas code met them). See the module docstring for the rules."""
    _transactions(con)
    _funding_chains(con)
    _child_repeats(con)
    _iati_wins(con)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_flags AS
        SELECT t.{ORDER},
            t.counts1 AND r.child IS NULL AND w.{ORDER} IS NULL AS counts_toward_totals,
            CASE
                WHEN NOT t.counts1 THEN t.reason1
                WHEN r.child IS NOT NULL THEN 'reported again by child activity ' || r.child
                WHEN w.{ORDER} IS NOT NULL THEN 'also reported in IATI (file ' || w.iati_file || ')'
            END AS exclusion_reason
        FROM m_dc_rule1 t
        LEFT JOIN m_dc_child r ON r.{ORDER} = t.{ORDER}
        LEFT JOIN m_dc_iati_wins w ON w.{ORDER} = t.{ORDER}
        """
    )
    _record_pairs(con)


def _transactions(con: duckdb.DuckDBPyConnection) -> None:
    """Each transaction's fields as the rules read them (``counts0``/``reason0``: as given)."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_dc_tx AS
        SELECT {ORDER},
            {stripped("activity_id")} AS activity,
            {stripped("transaction_type")} AS type,
            {stripped("receiver_activity_id")} AS receiver,
            {stripped("provider_activity_id")} AS provider,
            transaction_date AS date,
            CAST(value AS DOUBLE) AS value,
            coalesce({stripped("currency")}, '') AS currency,
            CAST(value_usd AS DOUBLE) AS usd,
            {stripped("source")} AS source,
            {stripped("source_file")} AS file,
            counts_toward_totals AS counts0,
            {stripped("exclusion_reason")} AS reason0
        FROM m_transactions
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_dc_known AS
        SELECT {stripped("activity_id")} AS id FROM m_acts
        UNION SELECT activity FROM m_dc_tx
        """
    )


def _funding_chains(con: duckdb.DuckDBPyConnection) -> None:
    """``m_dc_chains`` (A funds B, with the evidence) and ``m_dc_chain_reasons`` (the
    funder of B's incoming funds rows that are part of a chain)."""

    def linked(types: tuple[str, ...], other: str) -> str:
        return (
            f"type IN {_in(types)} AND {other} IS NOT NULL AND {other} <> activity "
            f"AND {other} IN (SELECT id FROM m_dc_known WHERE id IS NOT NULL)"
        )

    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_dc_out AS
        SELECT *, activity AS A, receiver AS B FROM m_dc_tx
        WHERE {linked(CHAIN_OUTGOING_TYPES, "receiver")}
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_dc_in AS
        SELECT *, provider AS A, activity AS B FROM m_dc_tx
        WHERE {linked(CHAIN_INCOMING_TYPES, "provider")}
        """
    )
    # the funder's side of the evidence: its disbursements to B, else its commitments,
    # in date order (the pandas code sorted them by date, then summed per pair)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_dc_out_side AS
        SELECT *, type = '3' AS disb,
            row_number() OVER (ORDER BY date ASC NULLS LAST, {ORDER}) AS pos
        FROM m_dc_out
        QUALIFY type = '3' OR NOT bool_or(type = '3') OVER (PARTITION BY A, B)
        """
    )
    reduceat = takes_reduceat(con, "m_dc_out_side", ["A", "B"], ["usd"], sort=False)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_dc_chains AS
        WITH out_agg AS (
            SELECT A, B, count(*) AS out_n, {sum_sql("usd", reduceat)} AS out_usd,
                bool_or(usd IS NULL) AS out_no_usd, min(date) AS out_first,
                max(date) AS out_last, bool_or(disb) AS out_disb
            FROM m_dc_out_side GROUP BY A, B
        ),
        in_agg AS (SELECT A, B, count(*) AS in_n FROM m_dc_in GROUP BY A, B),
        pairs AS (
            SELECT coalesce(o.A, i.A) AS A, coalesce(o.B, i.B) AS B, o.out_n,
                CASE WHEN NOT o.out_no_usd THEN o.out_usd END AS out_usd,
                o.out_first, o.out_last, o.out_disb, i.in_n
            FROM out_agg o FULL OUTER JOIN in_agg i ON i.A = o.A AND i.B = o.B
        )
        SELECT A, B,
            CASE WHEN out_n IS NOT NULL THEN
                A || ' ' || CASE WHEN out_disb THEN 'disbursed' ELSE 'committed' END || ' '
                    || m_usd_text(out_usd) || ' to ' || B
                    || CASE
                        WHEN out_n = 1 THEN coalesce(' on ' || CAST(out_first AS VARCHAR), '')
                        ELSE ' in ' || out_n || ' transactions' || coalesce(
                            ', ' || CAST(out_first AS VARCHAR) || ' to '
                                || CAST(out_last AS VARCHAR), '')
                    END
                    || ' (receiver-activity-id)'
            ELSE A || ' names no receiver-activity-id ' || B END
            || '; ' ||
            CASE WHEN in_n IS NOT NULL
                THEN B || ' reports incoming funds from ' || A || ' (provider-activity-id)'
                ELSE B || ' reports no incoming funds naming ' || A END AS evidence,
            row_number() OVER (ORDER BY A, B) AS pos
        FROM pairs
        """
    )
    # the chain reason: B's incoming funds naming A, and B's incoming funds naming no
    # provider activity that match one of A's flows to B in value and currency (missing
    # values matched as pandas' merge matches NaN)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_dc_chain_reasons AS
        WITH named AS (SELECT {ORDER}, A, 0 AS part FROM m_dc_in),
        outs AS (SELECT DISTINCT A, B, value, currency FROM m_dc_out),
        matched AS (
            SELECT u.{ORDER}, min(o.A) AS A, 1 AS part
            FROM m_dc_tx u JOIN outs o ON o.B = u.activity
                AND o.value IS NOT DISTINCT FROM u.value AND o.currency = u.currency
            WHERE u.type IN {_in(CHAIN_INCOMING_TYPES)} AND u.provider IS NULL
            GROUP BY u.{ORDER}
        )
        SELECT {ORDER}, A FROM (SELECT * FROM named UNION ALL SELECT * FROM matched)
        QUALIFY row_number() OVER (PARTITION BY {ORDER} ORDER BY part) = 1
        """
    )
    # rule 1: incoming funds without a reason, or with the plain one, get the chain's
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_dc_rule1 AS
        SELECT {ORDER},
            CASE WHEN refine THEN false ELSE coalesce(counts0, true) END AS counts1,
            CASE WHEN refine THEN 'incoming funds from ' || A || ' (counted at the funder)'
                ELSE reason0 END AS reason1
        FROM (
            SELECT t.{ORDER}, t.counts0, t.reason0, c.A, c.{ORDER} IS NOT NULL
                AND (t.reason0 IS NULL OR t.reason0 = 'incoming funds') AS refine
            FROM m_dc_tx t LEFT JOIN m_dc_chain_reasons c ON c.{ORDER} = t.{ORDER}
        )
        """
    )


def _child_repeats(con: duckdb.DuckDBPyConnection) -> None:
    """``m_dc_child``: parent rows (still counted after rule 1) whose flow a deeper IATI
    activity of the same publisher reports again, and the smallest such child.

    Each activity has one level, so a deeper activity is never the parent itself; the
    children are reduced to the smallest activity per flow and level before the join,
    which then meets at most one row per deeper level (a publisher that reports the same
    flow in many activities would otherwise join every parent with every child)."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_dc_child AS
        WITH level AS (
            SELECT activity, org, level FROM (
                SELECT {stripped("activity_id")} AS activity,
                    {stripped("reporting_org_ref")} AS org,
                    coalesce(CAST(hierarchy AS BIGINT), 1) AS level, {ORDER}
                FROM m_acts WHERE {stripped("source")} = 'iati'
            )
            WHERE activity IS NOT NULL AND org IS NOT NULL
            QUALIFY row_number() OVER (PARTITION BY activity ORDER BY {ORDER}) = 1
        ),
        rows AS (
            SELECT t.{ORDER}, t.type, t.date, t.value, t.currency, t.activity, l.org, l.level,
                r.counts1
            FROM m_dc_tx t JOIN level l ON l.activity = t.activity
            JOIN m_dc_rule1 r ON r.{ORDER} = t.{ORDER}
            WHERE t.source = 'iati' AND t.type IS NOT NULL AND t.date IS NOT NULL
                AND t.value IS NOT NULL AND NOT isnan(t.value)
        ),
        children AS (
            SELECT org, type, date, value, currency, level, min(activity) AS activity
            FROM rows WHERE level >= 2 GROUP BY org, type, date, value, currency, level
        )
        SELECT p.{ORDER}, min(c.activity) AS child
        FROM rows p JOIN children c ON c.org = p.org AND c.type = p.type AND c.date = p.date
            AND c.value = p.value AND c.currency = p.currency
        WHERE p.counts1 AND c.level > p.level
        GROUP BY p.{ORDER}
        """
    )


def _iati_wins(con: duckdb.DuckDBPyConnection) -> None:
    """``m_dc_iati_wins``: partner submission rows (still counted after rules 1 and 2)
    whose activity and type IATI reports, with IATI's first file; ``m_dc_both_sources``:
    (activity, submission file, IATI file) of every submission row IATI also reports."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_dc_iati_rows AS
        WITH iati AS (
            SELECT activity, type, min(file) AS iati_file FROM m_dc_tx
            WHERE source = 'iati' AND activity IS NOT NULL AND type IS NOT NULL
            GROUP BY activity, type
        )
        SELECT t.{ORDER}, t.activity, t.file, i.iati_file, o.counts1 AND r.child IS NULL AS counts2
        FROM m_dc_tx t JOIN iati i ON i.activity = t.activity AND i.type = t.type
        JOIN m_dc_rule1 o ON o.{ORDER} = t.{ORDER}
        LEFT JOIN m_dc_child r ON r.{ORDER} = t.{ORDER}
        WHERE t.source = 'partner_submission'
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_dc_iati_wins AS
        SELECT {ORDER}, iati_file FROM m_dc_iati_rows WHERE counts2
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE m_dc_both_sources AS
        SELECT activity, file AS submission_file, min(iati_file) AS iati_file
        FROM m_dc_iati_rows WHERE activity IS NOT NULL AND file IS NOT NULL
        GROUP BY activity, file
        """
    )


def _record_pairs(con: duckdb.DuckDBPyConnection) -> None:
    """``m_record_pairs``: the cross-file duplicates combine set aside, the activities in
    IATI and in a partner submission, and the funding chains."""
    for name, source, column, alias in (
        ("m_dc_first_country", "m_activity_countries", "country_code", "country"),
        ("m_dc_kept_file", "m_acts", "source_file", "file"),
    ):
        # each activity's first value (stripped, non-empty), in table order
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {name} AS
            SELECT activity, value AS {alias} FROM (
                SELECT {stripped("activity_id")} AS activity, {stripped(column)} AS value, {ORDER}
                FROM {source}
            )
            WHERE activity IS NOT NULL AND value IS NOT NULL
            QUALIFY row_number() OVER (PARTITION BY activity ORDER BY {ORDER}) = 1
            """
        )
    same = literal(SAME_ACTIVITY)
    chain = literal(FUNDING_CHAIN)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_dc_pair_parts AS
        WITH cross_file AS (
            SELECT {stripped("q.value")} AS one, {stripped("q.value")} AS two,
                'file:' || {stripped("q.source_file")} AS key,
                'identifier ' || {stripped("q.value")} || ' published in '
                    || coalesce(
                        k.file,
                        CASE WHEN regexp_matches(q.message, {literal(KEPT_IN_MESSAGE)})
                            THEN regexp_extract(q.message, {literal(KEPT_IN_MESSAGE)}, 1) END,
                        'another file')
                    || ' (kept) and in ' || {stripped("q.source_file")}
                    || ' (set aside, see quarantine)' AS evidence,
                0 AS _part, q.{ORDER} AS _pos
            FROM m_quarantine q LEFT JOIN m_dc_kept_file k ON k.activity = {stripped("q.value")}
            WHERE {stripped("q.rule")} = {literal(DUPLICATE_RULE)}
        ),
        merged AS (
            SELECT {stripped("q.value")} AS activity,
                {stripped("q.source_file")} AS submission_file,
                coalesce(k.file, 'another file') AS iati_file, 1 AS part, q.{ORDER} AS pos
            FROM m_quarantine q LEFT JOIN m_dc_kept_file k ON k.activity = {stripped("q.value")}
            WHERE {stripped("q.rule")} = {literal(ALSO_IN_IATI_RULE)}
        ),
        both_sources AS (
            SELECT * FROM (
                SELECT activity, submission_file, iati_file, 0 AS part,
                    row_number() OVER (ORDER BY activity, submission_file) AS pos
                FROM m_dc_both_sources
                UNION ALL SELECT * FROM merged
            )
            QUALIFY row_number() OVER (
                PARTITION BY activity, submission_file ORDER BY part, pos) = 1
        ),
        in_iati AS (
            SELECT activity AS one, activity AS two, 'submission:' || submission_file AS key,
                'identifier ' || activity || ' reported in IATI file ' || iati_file
                    || ' and in partner submission ' || submission_file
                    || '; the description and every transaction type IATI reports are '
                    || 'taken from IATI' AS evidence,
                1 AS _part, row_number() OVER (ORDER BY part, pos) AS _pos
            FROM both_sources
        ),
        funding AS (
            SELECT A AS one, B AS two, A || '>' || B AS key, evidence, 2 AS _part, pos AS _pos
            FROM m_dc_chains
        )
        SELECT * FROM cross_file UNION ALL SELECT * FROM in_iati UNION ALL SELECT * FROM funding
        """
    )
    # the country of a pair: the activity's first country; a funding chain's is where A and
    # B meet (B's first country that A also has), else B's, else A's
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_record_pairs AS
        WITH countries AS (
            SELECT {stripped("activity_id")} AS activity, {stripped("country_code")} AS country,
                {ORDER}
            FROM m_activity_countries
        ),
        shared AS (
            SELECT c.A, c.B, arg_min(b.country, b.{ORDER}) AS country
            FROM m_dc_chains c
            JOIN countries b ON b.activity = c.B AND b.country IS NOT NULL
            JOIN (SELECT DISTINCT activity, country FROM countries) a
                ON a.activity = c.A AND a.country = b.country
            GROUP BY c.A, c.B
        ),
        pairs AS (
            SELECT p.*, least(p.one, p.two) AS a, greatest(p.one, p.two) AS b,
                CASE WHEN p._part = 2 THEN {chain} ELSE {same} END AS kind,
                CASE WHEN p._part = 2
                    THEN coalesce(s.country, fb.country, fa.country)
                    ELSE fa.country END AS country_code
            FROM m_dc_pair_parts p
            LEFT JOIN shared s ON s.A = p.one AND s.B = p.two
            LEFT JOIN m_dc_first_country fa ON fa.activity = p.one
            LEFT JOIN m_dc_first_country fb ON fb.activity = p.two
        )
        SELECT {stable_id_sql("kind", "a", "b", "key")} AS pair_id,
            a AS activity_id_a, b AS activity_id_b, country_code, kind,
            1.0 AS score, CAST(NULL AS DOUBLE) AS sector_overlap,
            CAST(NULL AS DOUBLE) AS date_overlap, CAST(NULL AS DOUBLE) AS title_similarity,
            evidence, _part, _pos
        FROM pairs
        QUALIFY row_number() OVER (
            PARTITION BY {stable_id_sql("kind", "a", "b", "key")} ORDER BY _part, _pos) = 1
        """
    )
