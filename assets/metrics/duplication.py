"""Overlapping effort between partners, and concentration / fragmentation metrics, in SQL.

Implements the "Duplication and fragmentation" section of ``docs/metrics.md``
(tables ``duplication_pairs`` of kind ``overlapping_effort`` and
``duplication_metrics``) over the metrics' inputs in a DuckDB connection
(:mod:`assets.metrics.stage`).

Overlapping effort (:func:`overlapping_pairs`)
    Only CD activities (``activities.is_cd``) with both ``start_date`` and
    ``end_date`` known (they are already "actual, else planned"); an activity
    without dates cannot have a date overlap and is not scored. Candidates come
    from BLOCKING on (recipient country, CD sector code): two activities are
    compared only when they share a country and a CD sector (vocabulary 1).
    Within a block the activities are sorted by start date: an activity is
    compared with the following ones whose start is not after its end (pairs
    with disjoint dates have date overlap 0 and cannot score), and at most with
    its ``window`` (:data:`HUGE_BLOCK_WINDOW`) nearest followers by start date
    (sorted neighbourhood) in blocks of more than ``huge_block``
    (:data:`HUGE_BLOCK`) activities. With the defaults every block is windowed
    (a block of at most ``window`` activities is never cut), so the number of
    comparisons per activity is bounded and the search is linear in the number
    of activities. This is a documented approximation: in an extremely dense
    block (more than ``window`` activities starting between an activity's
    start and end) a pair further apart in the start-date order is not found;
    ``PairSearchStats.window_hits`` counts the activities concerned.

    The candidates are joined, scored and filtered in SQL (DuckDB spills to disk
    within its memory limit): different partners (``reporting_org_ref``, so two
    activities of one partner, a parent and its child included, are never a pair),
    not linked by a flow (neither activity's transactions name the other, or the
    other's reporting organisation, as the receiver of its outgoing funds or the
    provider of its incoming funds, nor does one name the other as a participating
    organisation's activity: a funder and its implementer are one funding chain, not
    two efforts; see :func:`_flows`), date overlap, sector overlap;
    pairs whose date overlap is below the threshold are dropped first (score ≤
    date overlap). Pairs found in several blocks are kept once (with the
    alphabetically first country). Title similarity is computed in Python
    (:mod:`assets.metrics.similarity`) for the pairs still at or above the
    threshold, ``text_batch`` pairs at a time with the texts of only those
    pairs' activities; the result does not depend on ``text_batch``.

    score = sector_overlap × date_overlap (× title_similarity when
    ``use_text``), where
    - sector_overlap = Σ min(share) ÷ Σ max(share) over the union of the two
      activities' DAC 5-digit sector codes (all vocabulary-1 sectors, CD or
      not; a missing share counts as an equal split);
    - date_overlap = |intersection| ÷ |union| of the [start, end] intervals,
      counted in whole days, both ends inclusive;
    - title_similarity: see :mod:`assets.metrics.similarity`.
    A pair is kept when score ≥ ``threshold``.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from assets.metrics import similarity
from assets.metrics.double_counting import CHAIN_INCOMING_TYPES, CHAIN_OUTGOING_TYPES
from assets.metrics.sql import ORDER, aggregate_in_batches, sum_sql, takes_reduceat, text
from assets.warehouse import literal

KIND = "overlapping_effort"
HUGE_BLOCK_WINDOW = 100
#: Blocks larger than this are windowed; equal to the window, so every block is
#: effectively windowed (a block of at most ``window`` rows is never cut).
HUGE_BLOCK = HUGE_BLOCK_WINDOW
#: Candidate pairs whose title similarity is computed at a time (bounds memory).
TEXT_BATCH = 5_000
#: Sector lists longer than this were summed by scipy (row sums), shorter ones by numpy.
_PAD_SECTORS = 8


@dataclass(frozen=True)
class PairSearch:
    """How the overlapping-effort pairs are searched (the threshold and the use of
    text are the metrics settings'); the defaults are the published method's."""

    huge_block: int = HUGE_BLOCK  # blocks larger than this are windowed
    window: int = HUGE_BLOCK_WINDOW  # followers by start date compared in a huge block
    text_batch: int = TEXT_BATCH  # pairs whose title similarity is computed at a time


#: The published method's search.
DEFAULT_SEARCH = PairSearch()


@dataclass
class PairSearchStats:
    """Counters of one :func:`overlapping_pairs` run (filled when passed in)."""

    candidates: int = 0  # pairs compared (same block, dates touching, within the window)
    scored: int = 0  # candidates of different partners whose score was computed
    window_hits: int = 0  # activities with a follower left out by the window
    batches: int = 0  # batches of pairs whose title similarity was computed
    pairs: int = 0  # pairs returned


def _double(value: float) -> str:
    return f"CAST({float(value)!r} AS DOUBLE)"


# --------------------------------------------------------------------------- inputs


def _inputs(con: duckdb.DuckDBPyConnection) -> None:
    """The CD activities, their countries and vocabulary-1 sectors (equal shares where a
    share is missing), as the duplication rules read them."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_du_cd AS
        SELECT activity_id AS activity, coalesce(reporting_org_ref, '') AS partner,
            start_date, end_date, title, description, {ORDER}
        FROM m_acts WHERE coalesce(is_cd, false) AND activity_id IS NOT NULL
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_du_countries AS
        SELECT activity_id AS activity, country_code AS country, {ORDER} AS pos,
            coalesce(CAST(share AS DOUBLE),
                CAST(1 AS DOUBLE) / count(*) OVER (PARTITION BY activity_id)) AS share
        FROM m_activity_countries WHERE activity_id IS NOT NULL
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_du_sectors AS
        SELECT activity_id AS activity, code, {ORDER} AS pos,
            coalesce(CAST(share AS DOUBLE),
                CAST(1 AS DOUBLE) / count(*) OVER (PARTITION BY activity_id)) AS share,
            coalesce(is_cd_sector, false) AS is_cd_sector
        FROM m_activity_sectors WHERE vocabulary = '1' AND activity_id IS NOT NULL
        """
    )


# --------------------------------------------------------------------------- pairs


def overlapping_pairs(
    con: duckdb.DuckDBPyConnection,
    threshold: float,
    use_text: bool,
    search: PairSearch = DEFAULT_SEARCH,
    stats: PairSearchStats | None = None,
) -> None:
    """``m_overlap_pairs``: ``duplication_pairs`` rows of kind ``overlapping_effort`` (see
    the module docstring), from ``m_acts``, ``m_activity_countries`` and
    ``m_activity_sectors``. ``stats``, when given, is filled with the search's counters."""
    stats = stats if stats is not None else PairSearchStats()
    _inputs(con)
    _scored_candidates(con, threshold, search, stats)
    if use_text:
        _title_similarity(con, search.text_batch, stats)
    text = "t.title_similarity" if use_text else "CAST(NULL AS DOUBLE)"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_overlap_pairs AS
        WITH kept AS (
            SELECT p.*, {text} AS title_similarity,
                p.score * {"t.title_similarity" if use_text else "1"} AS final_score,
                {"t.suffix" if use_text else "''"} AS suffix
            FROM m_du_scored p
            {"JOIN m_du_text t ON t.lo = p.lo AND t.hi = p.hi" if use_text else ""}
        ),
        named AS (
            SELECT k.*, least(a.activity, b.activity) AS id_a,
                greatest(a.activity, b.activity) AS id_b,
                a.start_date AS start_a, a.end_date AS end_a,
                b.start_date AS start_b, b.end_date AS end_b,
                array_to_string(list_sort(list_filter(
                    list_transform(sa.codes, (c, i) -> CASE
                        WHEN list_contains(sb.codes, c)
                            AND least(sa.shares[i], sb.shares[list_position(sb.codes, c)]) <> 0
                        THEN sa.names[i] END),
                    n -> n IS NOT NULL)), ' ') AS shared
            FROM kept k
            JOIN m_du_acts a ON a.act = k.lo JOIN m_du_acts b ON b.act = k.hi
            JOIN m_du_shares sa ON sa.act = k.lo JOIN m_du_shares sb ON sb.act = k.hi
            WHERE k.final_score >= {_double(threshold)}
        )
        SELECT left(sha256({literal(KIND)} || chr(31) || id_a || chr(31) || id_b), 32) AS pair_id,
            id_a AS activity_id_a, id_b AS activity_id_b, country AS country_code,
            {literal(KIND)} AS kind, final_score AS score, sector_overlap, date_overlap,
            title_similarity,
            'sectors ' || shared || '; dates ' || m_month(greatest(start_a, start_b))
                || '..' || m_month(least(end_a, end_b)) || suffix AS evidence
        FROM named
        """
    )
    row = con.execute("SELECT count(*) FROM m_overlap_pairs").fetchone()
    stats.pairs = int(row[0]) if row else 0


def _scored_candidates(
    con: duckdb.DuckDBPyConnection, threshold: float, search: PairSearch, stats: PairSearchStats
) -> None:
    """``m_du_scored``: every pair of dated CD activities of different partners in one
    block, within the window, with date overlap, sector overlap and their product at or
    above the threshold; once per pair (``lo`` < ``hi``, the activities' numbers), with
    the alphabetically first country of its blocks."""
    con.execute(
        "CREATE OR REPLACE TEMP MACRO m_month(d) AS "
        "lpad(CAST(year(d) AS VARCHAR), 4, '0') || '-' || lpad(CAST(month(d) AS VARCHAR), 2, '0')"
    )
    # activities with dates, numbered in table order
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_du_acts AS
        SELECT row_number() OVER (ORDER BY {ORDER}) - 1 AS act, activity, partner,
            start_date, end_date, title, description,
            start_date - DATE '1970-01-01' AS s, end_date - DATE '1970-01-01' AS e
        FROM m_du_cd
        WHERE start_date IS NOT NULL AND end_date IS NOT NULL AND end_date >= start_date
        """
    )
    # their vocabulary-1 sectors: codes numbered in order of first appearance, shares of a
    # code repeated in an activity added; each activity's codes in that order, and total
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE m_du_shares AS
        WITH rows AS (
            SELECT a.act, s.code, s.share, s.pos, s.is_cd_sector
            FROM m_du_sectors s JOIN m_du_acts a ON a.activity = s.activity
        ),
        numbered AS (
            SELECT *, dense_rank() OVER (ORDER BY first) AS code_no
            FROM (SELECT *, min(pos) OVER (PARTITION BY code) AS first FROM rows)
        ),
        summed AS (
            SELECT act, code_no, any_value(code) AS code, sum(share ORDER BY pos) AS share
            FROM numbered GROUP BY act, code_no
        )
        SELECT act, list(code_no ORDER BY code_no) AS codes,
            list(share ORDER BY code_no) AS shares, list(code ORDER BY code_no) AS names,
            m_reduceat(list(share ORDER BY code_no)) AS total
        FROM summed GROUP BY act
        """
    )
    # blocks (country, CD sector): an activity's rows in the order of the pandas merge
    # of its countries and CD sectors, sorted by start date; ``last``: the last row of
    # the block starting on or before this one's end; ``upper``: the last follower
    # compared (the window)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_du_blocks AS
        WITH rows AS (
            SELECT a.act, c.country, s.code, min(c.pos) AS cpos, min(s.pos) AS spos,
                any_value(a.s) AS s, any_value(a.e) AS e
            FROM m_du_acts a
            JOIN m_du_countries c ON c.activity = a.activity
            JOIN m_du_sectors s ON s.activity = a.activity AND s.is_cd_sector
            GROUP BY a.act, c.country, s.code
        ),
        numbered AS (
            SELECT *, row_number() OVER (PARTITION BY country, code ORDER BY s, cpos, spos) AS rn,
                count(*) OVER (PARTITION BY country, code) AS size
            FROM rows
        ),
        reach AS (
            SELECT *, max(rn) OVER (
                PARTITION BY country, code ORDER BY s
                RANGE BETWEEN CURRENT ROW AND (e - s) FOLLOWING) AS last
            FROM numbered
        )
        SELECT *, CASE WHEN size > {int(search.huge_block)}
                THEN least(last, rn + {int(search.window)}) ELSE last END AS upper,
            size > {int(search.huge_block)} AND last > rn + {int(search.window)} AS hit
        FROM reach
        """
    )
    row = con.execute(
        "SELECT coalesce(sum(upper - rn), 0), count(DISTINCT act) FILTER (WHERE hit) "
        "FROM m_du_blocks"
    ).fetchone()
    assert row is not None
    stats.candidates += int(row[0])
    stats.window_hits = int(row[1])
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_du_candidates AS
        WITH followers AS (
            SELECT act, country, code, s, e, rn, unnest(range(rn + 1, upper + 1)) AS rn_j
            FROM m_du_blocks WHERE upper > rn
        )
        SELECT f.act AS act_i, j.act AS act_j, f.country,
            {{'country': f.country, 'code': f.code, 'i': f.rn, 'j': f.rn_j}} AS place
        FROM followers f JOIN m_du_blocks j
            ON j.country = f.country AND j.code = f.code AND j.rn = f.rn_j
        WHERE CAST(least(f.e, j.e) - j.s + 1 AS DOUBLE)
            >= {_double(threshold)} * CAST(greatest(f.e, j.e) - f.s + 1 AS DOUBLE)
        """
    )
    _flows(con)
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE m_du_different AS
        SELECT c.* FROM m_du_candidates c
        JOIN m_du_acts a ON a.act = c.act_i JOIN m_du_acts b ON b.act = c.act_j
        WHERE a.partner <> b.partner
            AND NOT EXISTS (SELECT 1 FROM m_du_flows f
                WHERE f.activity = a.activity AND f.other IN (b.activity, b.partner))
            AND NOT EXISTS (SELECT 1 FROM m_du_flows f
                WHERE f.activity = b.activity AND f.other IN (a.activity, a.partner))
        """
    )
    row = con.execute("SELECT count(*) FROM m_du_different").fetchone()
    stats.scored += int(row[0]) if row else 0
    # Σ min(share) over the codes both have, in code order: added one by one from 0 (numpy's
    # padded lists), or by scipy's row sum where an activity has more than eight codes;
    # denominator Σ max = total_a + total_b - Σ min
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_du_scored AS
        WITH pairs AS (
            SELECT least(act_i, act_j) AS lo, greatest(act_i, act_j) AS hi,
                min(country) AS country, min(place) AS place
            FROM m_du_different GROUP BY lo, hi
        ),
        overlap AS (
            SELECT p.lo, p.hi, p.country, p.place,
                CAST(least(a.e, b.e) - greatest(a.s, b.s) + 1 AS DOUBLE) AS inter,
                CAST((a.e - a.s + 1) + (b.e - b.s + 1) - (least(a.e, b.e) - greatest(a.s, b.s) + 1)
                    AS DOUBLE) AS union_,
                list_transform(sa.codes, (c, i) -> CASE
                    WHEN list_contains(sb.codes, c)
                    THEN least(sa.shares[i], sb.shares[list_position(sb.codes, c)])
                    ELSE CAST(0 AS DOUBLE) END) AS mins,
                len(sa.codes) > {_PAD_SECTORS} OR len(sb.codes) > {_PAD_SECTORS} AS wide,
                sa.total + sb.total AS totals
            FROM pairs p
            JOIN m_du_acts a ON a.act = p.lo JOIN m_du_acts b ON b.act = p.hi
            JOIN m_du_shares sa ON sa.act = p.lo JOIN m_du_shares sb ON sb.act = p.hi
        ),
        summed AS (
            SELECT *, CASE
                WHEN wide THEN coalesce(
                    m_reduceat(list_filter(mins, m -> m <> 0)), CAST(0 AS DOUBLE))
                ELSE list_reduce(mins, (x, y) -> x + y) END AS sum_min
            FROM overlap
        ),
        scored AS (
            SELECT lo, hi, country, place, inter / union_ AS date_overlap,
                CASE WHEN totals - sum_min > 0 THEN sum_min / (totals - sum_min)
                    ELSE CAST(0 AS DOUBLE) END AS sector_overlap
            FROM summed
        )
        SELECT *, sector_overlap * date_overlap AS score FROM scored
        WHERE sector_overlap * date_overlap >= {_double(threshold)}
        """
    )


def _flows(con: duckdb.DuckDBPyConnection) -> None:
    """``m_du_flows``: each dated CD activity and the activities and organisations its
    transactions name as the other end of a flow: the receiver of its outgoing funds
    (types 2 and 3), the provider of its incoming funds (types 1 and 11), the funding
    chains of :mod:`assets.metrics.double_counting`, by activity identifier and by
    organisation identifier; and the activities of its participating organisations
    (``org_activity_id``: a funder's or an implementer's own activity). Two activities
    one of which names the other, or the other's reporting organisation, are one
    funding chain, never two efforts."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_du_flows AS
        WITH tx AS (
            SELECT {text("activity_id")} AS activity, {text("transaction_type")} AS type,
                {text("receiver_activity_id")} AS receiver_activity,
                {text("receiver_org_ref")} AS receiver_org,
                {text("provider_activity_id")} AS provider_activity,
                {text("provider_org_ref")} AS provider_org
            FROM m_transactions
            WHERE {text("activity_id")} IN (SELECT activity FROM m_du_acts)
        ),
        named AS (
            SELECT activity, unnest([receiver_activity, receiver_org]) AS other
            FROM tx WHERE list_contains({[*CHAIN_OUTGOING_TYPES]}, type)
            UNION ALL
            SELECT activity, unnest([provider_activity, provider_org])
            FROM tx WHERE list_contains({[*CHAIN_INCOMING_TYPES]}, type)
            UNION ALL
            SELECT {text("activity_id")}, {text("org_activity_id")} FROM m_participating_orgs
            WHERE {text("activity_id")} IN (SELECT activity FROM m_du_acts)
        )
        SELECT DISTINCT activity, other FROM named WHERE other <> '' AND other <> activity
        """
    )


def _title_similarity(con: duckdb.DuckDBPyConnection, batch: int, stats: PairSearchStats) -> None:
    """``m_du_text``: the title similarity of every scored pair and its words in the
    evidence, ``batch`` pairs at a time, with the texts of only those pairs' activities
    (the pairs taken block by block, in the order they were found, so that a batch needs
    few activities' texts); the document frequencies are counted over every dated CD
    activity, in chunks."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE m_du_text "
        "(lo BIGINT, hi BIGINT, title_similarity DOUBLE, suffix VARCHAR)"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE m_du_pages AS "
        "SELECT lo, hi, row_number() OVER (ORDER BY place) - 1 AS n FROM m_du_scored"
    )
    row = con.execute("SELECT count(*) FROM m_du_pages").fetchone()
    total = int(row[0]) if row else 0
    if not total:
        return
    idf = _idf(con)
    batch = max(1, batch)
    for begin in range(0, total, batch):
        pairs = con.execute(
            "SELECT lo, hi FROM m_du_pages WHERE n >= ? AND n < ? ORDER BY n",
            [begin, begin + batch],
        ).fetchnumpy()
        a = np.asarray(pairs["lo"], dtype=np.int64)
        b = np.asarray(pairs["hi"], dtype=np.int64)
        docs = np.unique(np.concatenate([a, b]))
        texts = _texts(con, docs)
        matrix = similarity.tfidf_rows(texts, idf)
        sims = similarity.rowwise_cosine(matrix, np.searchsorted(docs, a), np.searchsorted(docs, b))
        del matrix, texts
        suffix = np.char.mod("; title similarity %.2f", sims).astype(object)
        rows = pa.table(
            {
                "lo": pa.array(a, pa.int64()),
                "hi": pa.array(b, pa.int64()),
                "title_similarity": pa.array(sims, pa.float64()),
                "suffix": pa.array(suffix, pa.string()),
            }
        )
        con.register("m_du_text_batch", rows)
        try:
            con.execute("INSERT INTO m_du_text SELECT * FROM m_du_text_batch")
        finally:
            con.unregister("m_du_text_batch")
        stats.batches += 1


def _texts(con: duckdb.DuckDBPyConnection, acts: np.ndarray) -> list[str]:
    """The cleaned texts of these activities (numbers, sorted), in their order."""
    con.register("m_du_wanted", pa.table({"act": pa.array(acts, pa.int64())}))
    try:
        frame = con.execute(
            "SELECT a.title, a.description FROM m_du_acts a "
            "JOIN m_du_wanted w ON w.act = a.act ORDER BY a.act"
        ).to_arrow_table()
    finally:
        con.unregister("m_du_wanted")
    return similarity.clean_texts(
        pd.Series(frame.column("title").to_pylist(), dtype="string"),
        pd.Series(frame.column("description").to_pylist(), dtype="string"),
    )


def _idf(con: duckdb.DuckDBPyConnection) -> np.ndarray:
    """The idf over the texts of every dated CD activity, read in chunks."""
    frequencies = similarity.DocumentFrequencies()
    row = con.execute("SELECT count(*) FROM m_du_acts").fetchone()
    n = int(row[0]) if row else 0
    for begin in range(0, n, similarity.TEXT_CHUNK):
        frame = con.execute(
            "SELECT title, description FROM m_du_acts WHERE act >= ? AND act < ? ORDER BY act",
            [begin, begin + similarity.TEXT_CHUNK],
        ).to_arrow_table()
        frequencies.add(
            similarity.clean_texts(
                pd.Series(frame.column("title").to_pylist(), dtype="string"),
                pd.Series(frame.column("description").to_pylist(), dtype="string"),
            )
        )
    return frequencies.idf()


def overlap_clusters(con: duckdb.DuckDBPyConnection, pairs: str) -> dict[str, int]:
    """activity_id -> cluster number: connected components of overlapping activities.

    Only ``overlapping_effort`` pairs of the relation ``pairs`` are used. Clusters are
    numbered from 0 in the order of their smallest activity_id; activities in no pair
    are absent. Labels spread along the pairs in SQL until they settle."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_du_edges AS
        SELECT activity_id_a AS x, activity_id_b AS y FROM {pairs} WHERE kind = {literal(KIND)}
        UNION SELECT activity_id_b, activity_id_a FROM {pairs} WHERE kind = {literal(KIND)}
        """
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE m_du_labels AS "
        "SELECT x AS activity, min(x) AS label FROM m_du_edges GROUP BY x"
    )
    while True:
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE m_du_next AS
            SELECT l.activity, least(l.label, min(n.label)) AS label
            FROM m_du_labels l JOIN m_du_edges e ON e.x = l.activity
            JOIN m_du_labels n ON n.activity = e.y
            GROUP BY l.activity, l.label
            """
        )
        row = con.execute(
            "SELECT count(*) FROM m_du_next n JOIN m_du_labels l USING (activity) "
            "WHERE n.label <> l.label"
        ).fetchone()
        con.execute("CREATE OR REPLACE TEMP TABLE m_du_labels AS SELECT * FROM m_du_next")
        if not row or not row[0]:
            break
    rows = con.execute(
        "SELECT activity, dense_rank() OVER (ORDER BY label) - 1 FROM m_du_labels"
    ).fetchall()
    for table in ("m_du_edges", "m_du_labels", "m_du_next"):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    return {str(activity): int(number) for activity, number in rows}


# --------------------------------------------------------------------------- metrics


def _membership(con: duckdb.DuckDBPyConnection) -> None:
    """``m_du_member``: country_code, sector_code, priority_id, activity_id, weight of
    every CD activity (``pos``: the order of the pandas frame).

    Sector rows: weight = country share × CD sector share (vocabulary 1).
    Priority rows (from ``m_alignment_links``): weight = country share ÷ number of
    priorities the activity is linked to in that country (equal split, so a
    dollar is never counted twice across priorities of one country).
    """
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE m_du_member AS
        WITH cd AS (SELECT DISTINCT activity FROM m_du_cd),
        countries AS (SELECT * FROM m_du_countries WHERE activity IN (SELECT activity FROM cd)),
        by_sector AS (
            SELECT c.country AS country_code, s.code AS sector_code, '' AS priority_id,
                c.activity AS activity_id, c.share * s.share AS weight,
                0 AS part, c.pos AS p1, s.pos AS p2, 0 AS p3
            FROM countries c JOIN m_du_sectors s ON s.activity = c.activity
            WHERE s.is_cd_sector
        ),
        links AS (
            SELECT activity_id, country_code, priority_id,
                count(*) OVER (PARTITION BY activity_id, country_code) AS n
            FROM (
                SELECT DISTINCT activity_id, country_code, priority_id FROM m_alignment_links
                WHERE activity_id IS NOT NULL AND country_code IS NOT NULL
                    AND priority_id IS NOT NULL AND priority_id <> ''
                    AND activity_id IN (SELECT activity FROM cd)
            )
        ),
        by_priority AS (
            SELECT l.country_code, '' AS sector_code, l.priority_id, l.activity_id,
                c.share / l.n AS weight, 1 AS part,
                dense_rank() OVER (ORDER BY l.activity_id, l.country_code, l.priority_id) AS p1,
                c.pos AS p2, 0 AS p3
            FROM links l JOIN countries c
                ON c.activity = l.activity_id AND c.country = l.country_code
        )
        SELECT * EXCLUDE (part, p1, p2, p3),
            row_number() OVER (ORDER BY part, p1, p2, p3) AS pos
        FROM (SELECT * FROM by_sector UNION ALL SELECT * FROM by_priority)
        """
    )


_CELL = "country_code, sector_code, priority_id, year"
_CELL_KEYS = ["country_code", "sector_code", "priority_id", "year"]


def _cell_rows(con: duckdb.DuckDBPyConnection) -> None:
    """``m_du_rows``: per cell member and activity-year (disbursement years and the years
    the dates cover), its CD disbursement × weight, its partner, and whether it is in an
    overlapping pair of the cell; ``pos``: the order of the pandas frame."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_du_tx AS
        SELECT activity_id AS activity, year(transaction_date) AS year,
            CAST(value_usd AS DOUBLE) AS usd, {ORDER} AS pos
        FROM m_transactions
        WHERE CAST(transaction_type AS VARCHAR) IN ('3', '4')
            AND coalesce(counts_toward_totals, false)
            AND activity_id IN (SELECT activity FROM m_du_cd)
            AND transaction_date IS NOT NULL
            AND value_usd IS NOT NULL AND NOT isnan(value_usd)
        """
    )
    reduceat = takes_reduceat(con, "m_du_tx", ["activity", "year"], ["usd"], sort=True)
    aggregate_in_batches(
        con, "m_du_money", "m_du_tx", ["activity", "year"],
        f"activity, year, {sum_sql('usd', reduceat)} AS usd",
    )  # fmt: skip
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_du_act_years AS
        WITH money AS (SELECT * FROM m_du_money),
        covered AS (
            SELECT activity, unnest(range(year(start_date), year(end_date) + 1)) AS year,
                {ORDER} AS p1
            FROM m_du_cd
            WHERE start_date IS NOT NULL AND end_date IS NOT NULL
                AND year(end_date) >= year(start_date)
        ),
        years AS (
            SELECT * FROM (
                SELECT activity, year, 0 AS part, p1 FROM covered
                UNION ALL SELECT activity, year, 1 AS part,
                    row_number() OVER (ORDER BY activity, year) AS p1 FROM money
            )
            QUALIFY row_number() OVER (PARTITION BY activity, year ORDER BY part, p1) = 1
        )
        SELECT y.activity, y.year, coalesce(m.usd, CAST(0 AS DOUBLE)) AS usd,
            row_number() OVER (ORDER BY y.part, y.p1, y.year) AS pos
        FROM years y LEFT JOIN money m ON m.activity = y.activity AND m.year = y.year
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE m_du_cells AS
        SELECT m.country_code, m.sector_code, m.priority_id, y.year, m.activity_id,
            y.usd * m.weight AS usd, c.partner AS reporting_org_ref,
            row_number() OVER (ORDER BY m.pos, y.pos) AS pos
        FROM m_du_member m JOIN m_du_act_years y ON y.activity = m.activity_id
        JOIN (SELECT DISTINCT activity, partner FROM m_du_cd) c ON c.activity = m.activity_id
        """
    )
    # pairs whose two activities are both in the cell (as often as they are)
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE m_du_cell_pairs AS
        SELECT ca.country_code, ca.sector_code, ca.priority_id, ca.year,
            p.activity_id_a AS a, p.activity_id_b AS b
        FROM m_overlap_pairs p
        JOIN m_du_cells ca ON ca.country_code = p.country_code AND ca.activity_id = p.activity_id_a
        JOIN m_du_cells cb ON cb.country_code = ca.country_code
            AND cb.sector_code = ca.sector_code AND cb.priority_id = ca.priority_id
            AND cb.year = ca.year AND cb.activity_id = p.activity_id_b
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_du_rows AS
        WITH flagged AS (
            SELECT DISTINCT {_CELL}, a AS activity_id FROM m_du_cell_pairs
            UNION SELECT DISTINCT {_CELL}, b FROM m_du_cell_pairs
        )
        SELECT c.*, CASE WHEN f.activity_id IS NOT NULL THEN c.usd
            ELSE CAST(0 AS DOUBLE) END AS overlap_usd
        FROM m_du_cells c LEFT JOIN flagged f ON f.country_code = c.country_code
            AND f.sector_code = c.sector_code AND f.priority_id = c.priority_id
            AND f.year = c.year AND f.activity_id = c.activity_id
        """
    )


def duplication_metrics(con: duckdb.DuckDBPyConnection, method_version: str = "1") -> None:
    """``m_duplication_metrics``: rows per country × CD sector (or priority) × year, from
    the inputs, ``m_overlap_pairs`` and ``m_alignment_links``.

    Cell membership: a CD activity is in (country, sector, year) when it has
    that recipient country and CD sector (vocabulary 1) and either has a
    counted CD disbursement (transaction type 3 or 4, ``counts_toward_totals``)
    dated in the year or its [start_date, end_date] covers part of the year.
    Priority cells (``alignment_links``) work the same way with the
    activity's linked priorities in that country instead of sectors.

    - ``cd_disbursement_usd``: Σ value_usd × country share × sector share
      (priority cells: × 1 / number of linked priorities), by transaction year.
    - ``hhi`` = Σ sᵢ² over partners' (reporting_org_ref) shares of the cell's
      disbursement, partners with a negative net amount counted as 0;
      ``effective_partners`` = 1 / hhi. Empty when the cell's disbursement is
      not positive.
    - ``fragmentation_ratio``: the OECD rule (significant if the partner's
      share of the country's aid ≥ its share of total aid to all countries, or
      among the largest partners giving ≥ 90%) applied within each cell: the
      "country's aid" is the cell's disbursement and "total aid to all
      countries" is the disbursement in the same sector (or priority) and year
      across all countries in the data. Empty when no positive disbursement.
    - ``n_overlap_pairs``: ``overlapping_effort`` pairs of that country whose
      two activities are both members of the cell.
    - ``overlap_value_share``: disbursement of the cell's activities that are
      in at least one of those pairs ÷ the cell's disbursement (empty when the
      disbursement is not positive).
    """
    _membership(con)
    _cell_rows(con)
    usd = takes_reduceat(con, "m_du_rows", _CELL_KEYS, ["usd"], sort=True)
    overlap = takes_reduceat(con, "m_du_rows", _CELL_KEYS, ["overlap_usd"], sort=True)
    partner_sums = takes_reduceat(
        con, "m_du_rows", [*_CELL_KEYS, "reporting_org_ref"], ["usd"], sort=True
    )
    aggregate_in_batches(
        con,
        "m_du_cell",
        "m_du_rows",
        _CELL_KEYS,
        f"""
        {_CELL}, count(DISTINCT reporting_org_ref) AS n_partners,
            count(DISTINCT activity_id) AS n_activities,
            {sum_sql("usd", usd)} AS cd_disbursement_usd,
            {sum_sql("overlap_usd", overlap)} AS overlap_usd
        """,
    )
    aggregate_in_batches(
        con,
        "m_du_partner_sums",
        "m_du_rows",
        [*_CELL_KEYS, "reporting_org_ref"],
        f"{_CELL}, reporting_org_ref, {sum_sql('usd', partner_sums)} AS usd",
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_du_cell_partner AS
        SELECT *, row_number() OVER (ORDER BY {_CELL}, reporting_org_ref) AS pos
        FROM m_du_partner_sums
        """
    )
    _concentration(con)
    _fragmentation(con)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_duplication_metrics AS
        SELECT c.country_code, c.sector_code, c.priority_id, c.year, c.n_partners,
            c.n_activities, c.cd_disbursement_usd,
            CASE WHEN c.cd_disbursement_usd > 0 THEN h.hhi END AS hhi,
            CASE WHEN c.cd_disbursement_usd > 0 AND h.hhi > 0 THEN 1 / h.hhi END
                AS effective_partners,
            CASE WHEN c.cd_disbursement_usd > 0 THEN f.ratio END AS fragmentation_ratio,
            coalesce(p.n, 0) AS n_overlap_pairs,
            CASE WHEN c.cd_disbursement_usd > 0
                THEN greatest(least(c.overlap_usd / c.cd_disbursement_usd, 1), 0) END
                AS overlap_value_share,
            {literal(method_version)} AS method_version
        FROM m_du_cell c
        LEFT JOIN m_du_hhi h USING ({_CELL})
        LEFT JOIN m_du_fragmentation f USING ({_CELL})
        LEFT JOIN (SELECT {_CELL}, count(*) AS n FROM m_du_cell_pairs GROUP BY {_CELL}) p
            USING ({_CELL})
        """
    )


def _concentration(con: duckdb.DuckDBPyConnection) -> None:
    """``m_du_hhi``: Σ of the squared partner shares of the cell's positive disbursement
    (the cell's total as pandas' ``transform("sum")`` over the partners in order)."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_du_positive AS
        WITH positive AS (
            SELECT {_CELL}, reporting_org_ref, greatest(usd, CAST(0 AS DOUBLE)) AS usd, pos
            FROM m_du_cell_partner
        ),
        totals AS (
            SELECT {_CELL}, {sum_sql("usd", True)} AS total FROM positive GROUP BY {_CELL}
        )
        SELECT p.*, CASE WHEN t.total = 0 AND p.usd = 0 THEN NULL
            ELSE p.usd / t.total END AS share
        FROM positive p JOIN totals t USING ({_CELL})
        """
    )
    reduceat = takes_reduceat(con, "m_du_positive", _CELL_KEYS, ["share"], sort=True)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_du_hhi AS
        SELECT {_CELL}, {sum_sql("share * share", reduceat, min_count=1)} AS hhi
        FROM m_du_positive GROUP BY {_CELL}
        """
    )


def _fragmentation(con: duckdb.DuckDBPyConnection) -> None:
    """``m_du_fragmentation``: the OECD fragmentation ratio per cell from the partners'
    positive amounts.

    Relationship = a partner with positive disbursement in the cell. It is
    significant if (a) its share of the cell's aid ≥ its share of the reference
    total (the same sector or priority and year, all countries in the data), or
    (b) it is among the largest partners that together give ≥ 90% of the cell's
    aid (partners are added by decreasing amount until 90% is reached; the one
    crossing 90% is included).
    """
    ref = "sector_code, priority_id, year"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_du_cp AS
        SELECT {_CELL}, reporting_org_ref, usd, row_number() OVER (ORDER BY pos) AS pos
        FROM m_du_cell_partner WHERE usd > 0
        """
    )
    by_partner = takes_reduceat(
        con, "m_du_cp", ["sector_code", "priority_id", "year", "reporting_org_ref"], ["usd"], True
    )
    by_reference = takes_reduceat(
        con, "m_du_cp", ["sector_code", "priority_id", "year"], ["usd"], True
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_du_fragmentation AS
        WITH cell_total AS (
            SELECT {_CELL}, {sum_sql("usd", True)} AS total FROM m_du_cp GROUP BY {_CELL}
        ),
        partner_ref AS (
            SELECT {ref}, reporting_org_ref, {sum_sql("usd", by_partner)} AS total
            FROM m_du_cp GROUP BY {ref}, reporting_org_ref
        ),
        ref_total AS (
            SELECT {ref}, {sum_sql("usd", by_reference)} AS total FROM m_du_cp GROUP BY {ref}
        ),
        shares AS (
            SELECT c.*, c.usd / t.total AS share_cell, p.total / r.total AS share_ref
            FROM m_du_cp c JOIN cell_total t USING ({_CELL})
            JOIN partner_ref p USING ({ref}, reporting_org_ref)
            JOIN ref_total r USING ({ref})
        ),
        running AS (
            SELECT {_CELL},
                list(share_cell ORDER BY usd DESC, reporting_org_ref) AS shares,
                list(share_ref ORDER BY usd DESC, reporting_org_ref) AS refs
            FROM shares GROUP BY {_CELL}
        ),
        flags AS (
            SELECT {_CELL}, unnest(shares) AS share_cell, unnest(refs) AS share_ref,
                unnest(m_kahan_cumsum(shares)) AS cumulative
            FROM running
        )
        SELECT {_CELL},
            CAST(count(*) FILTER (WHERE NOT (share_cell >= share_ref - {_double(1e-12)}
                OR cumulative - share_cell < {_double(0.9)} - {_double(1e-12)})) AS DOUBLE)
                / count(*) AS ratio
        FROM flags GROUP BY {_CELL}
        """
    )
