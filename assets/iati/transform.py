"""Extracted IATI files -> the harmonised IATI tables, in DuckDB (pure; no Dagster).

The second half of harmonising (:mod:`assets.iati.extract` is the first). Over
the extracted Parquet of every file of the night, in SQL:

- narratives: the one in ``iati.preferred_languages`` order (else the first);
- shares: repeated countries, regions and sectors merged (percentages added),
  percentages rebased to shares summing to 1 per activity (countries with the regions
  of one vocabulary) and per activity and vocabulary (sectors), missing ones split
  evenly, each rebasing said in quarantine; an activity that gives its sectors or
  recipients only on its transactions gets its shares from their values
  (``share_basis`` says which);
- US dollars: a join with the exchange rates (the value date's month, else the
  nearest earlier month within ``reference.rate_fallback_months``);
- capacity development: ``is_cd``, ``cd_basis`` and ``modality`` from the rules of
  ``cd_classification`` (aid types, the FTC flag, CD sectors, keywords);
- sector names from the IATI codelists;
- ``sources``, ``quarantine`` and ``conformance`` rows of each file.

The result is one relation per harmonised table (``iati_<table>``, temporary in
the connection) with the file's ``source_file`` and ``_ord``, each row's place in
its file, for :mod:`assets.harmonise.combine` to put every input together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from assets.harmonise import sql
from assets.harmonise.schema import arrow_schema
from assets.iati.classify import normalise_text
from assets.iati.codelists import Codelists
from assets.iati.conformance import codelist_findings
from assets.iati.extract import DONE, EXTRACT_SCHEMAS
from assets.settings import CdRules
from assets.warehouse import duckdb_type, empty_table_sql, literal, quote, temp_table


@dataclass(frozen=True)
class Rejection:
    """A file refused before it could be extracted (too large, unreadable, not fetched)."""

    rule: str
    #: ``sources.reason``
    reason: str
    #: ``quarantine.message``
    message: str
    sha256: str | None = None
    bytes: int | None = None


@dataclass(frozen=True)
class IatiInput:
    """One IATI file of the night: its name in the tables, where it came from, and either
    its extracted folder or why it has none."""

    source_file: str
    uri: str
    extract: Path | None = None
    rejection: Rejection | None = None
    #: The file's conformance findings (``conformance`` rows without ``source_file``).
    conformance: Path | None = None


@dataclass(frozen=True)
class TransformOptions:
    """What the transform needs besides the extracted files: rules and reference data."""

    rules: CdRules
    preferred_languages: tuple[str, ...] = ("en",)
    rate_fallback_months: int = 12
    #: :meth:`assets.iati.rates.ExchangeRates.to_frame` (None: no rates configured).
    rates: pd.DataFrame | None = None
    #: :meth:`assets.iati.codelists.Codelists.to_frame` (None: no codelists configured).
    codelists: pd.DataFrame | None = None
    #: Conformance findings listed per file and check; the rest are counted in one row.
    max_findings: int = 1000


def _empty(schema: pa.Schema) -> str:
    columns = ", ".join(
        f"CAST(NULL AS {_sql_type(field.type)}) AS {quote(field.name)}" for field in schema
    )
    return f"SELECT {columns}, CAST(NULL AS VARCHAR) AS folder, 0::BIGINT AS _ord LIMIT 0"


def _sql_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_list(arrow_type):
        return "STRUCT(lang VARCHAR, text VARCHAR)[]"
    return duckdb_type(arrow_type)


def _scan(
    con: duckdb.DuckDBPyConnection,
    table: str,
    folders: Sequence[str],
    columns: Sequence[str] | None = None,
) -> None:
    """``x_<table>``: the extracted table of every folder (its ``columns``, by default all),
    with its folder and row order. ``x_file`` comes first: a folder has a file of another
    table only when that table has rows (``x_file.tables``)."""
    name = quote(f"x_{table}")
    schema = EXTRACT_SCHEMAS[table]
    if columns is not None:
        schema = pa.schema([schema.field(column) for column in columns])
    if table != "file" and folders:
        holding = con.execute(
            "SELECT folder FROM x_file WHERE list_contains(tables, $table) ORDER BY folder",
            {"table": table},
        ).fetchall()
        folders = [row[0] for row in holding]
    kind = "VIEW" if table == "codes" else "TABLE"  # the same in every part of a night
    if not folders:
        con.execute(f"CREATE OR REPLACE TEMP {kind} {name} AS {_empty(schema)}")
        return
    files = [f"{folder}/{DONE if table == 'file' else table + '.parquet'}" for folder in folders]
    selected = ", ".join(quote(field.name) for field in schema)
    listed = "[" + ", ".join(literal(f) for f in files) + "]"
    con.execute(
        f"CREATE OR REPLACE TEMP {kind} {name} AS SELECT {selected}, "
        "regexp_replace(filename, '/[^/]*$', '') AS folder, file_row_number AS _ord "
        f"FROM read_parquet({listed}, filename = true, file_row_number = true)"
    )


def _pick_macro(con: duckdb.DuckDBPyConnection, languages: Sequence[str]) -> None:
    """``pick_narrative(narratives, default_language)``: the struct (text, lang) of the
    narrative in the preferred language order, else the first one (its language, or
    none); narratives without a language take the activity's."""
    with_language = (
        "list_transform(n, x -> {'text': x.text, 'lang': coalesce(nullif(x.lang, ''), d)})"
    )
    preferred = [
        f"list_filter({with_language}, y -> nullif(y.lang, '') IS NOT NULL "
        f"AND lower(split_part(y.lang, '-', 1)) = {literal(language)})[1]"
        for language in languages
    ]
    first = f"{{'text': ({with_language})[1].text, 'lang': nullif(({with_language})[1].lang, '')}}"
    con.execute(
        "CREATE OR REPLACE MACRO pick_narrative(n, d) AS CASE WHEN n IS NULL OR len(n) = 0 "
        f"THEN NULL ELSE coalesce({', '.join([*preferred, first])}) END"
    )


def _varchar_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(literal(v) for v in values) + "]::VARCHAR[]"


def _phrase_regex(phrases: Sequence[str]) -> str | None:
    """The RE2 pattern of :func:`assets.iati.classify._phrase_pattern` (whole words,
    on normalised text); None when there is no phrase."""
    cleaned = sorted({normalise_text(p) for p in phrases if p.strip()}, key=len, reverse=True)
    if not cleaned:
        return None
    word = sql.RE2_WORD
    alternatives = "|".join(sql.re2_escape(p) for p in cleaned)
    return f"(?:^|[^{word[1:-1]}])(?:{alternatives})(?:$|[^{word[1:-1]}])"


def _classification_sql(rules: CdRules) -> str:
    """``is_cd``, ``cd_basis`` and ``modality`` of every extracted activity."""
    keywords = _phrase_regex([p for phrases in rules.keywords.values() for p in phrases])
    keyword = f"regexp_matches(a.cd_text, {literal(keywords)})" if keywords else "false"
    basis = [
        f"CASE WHEN list_has_any(e.aid_types, "
        f"{_varchar_list(sorted(rules.technical_cooperation_aid_types))}) "
        "THEN 'aid_type_technical_cooperation' END",
        f"CASE WHEN {'true' if rules.ftc_flag else 'false'} AND a.ftc_flag THEN 'ftc_flag' END",
        "CASE WHEN len(e.cd_sectors) > 0 THEN 'cd_sector' END",
        f"CASE WHEN {keyword} THEN 'cd_keyword' END",
    ]
    modalities = [
        f"WHEN regexp_matches(a.cd_text, {literal(pattern)}) THEN {literal(modality)}"
        for modality, phrases in rules.modalities.items()
        if (pattern := _phrase_regex(phrases)) is not None
    ]
    return f"""
        WITH tx AS (
            SELECT folder, activity_id,
                list(DISTINCT aid_type) FILTER (WHERE aid_type IS NOT NULL) AS aids,
                list(DISTINCT sector_code) FILTER (WHERE sector_code IS NOT NULL) AS sectors
            FROM x_transactions GROUP BY ALL
        ), sec AS (
            SELECT folder, activity_id, list(DISTINCT code) AS sectors
            FROM h_sectors WHERE vocabulary = '1' GROUP BY ALL
        ), evidence AS (
            SELECT a.folder, a.activity_id,
                list_distinct(list_concat(
                    CASE WHEN a.default_aid_type IS NULL THEN []::VARCHAR[]
                         ELSE [a.default_aid_type] END,
                    coalesce(tx.aids, []::VARCHAR[])
                )) AS aid_types,
                list_intersect(
                    list_distinct(list_concat(
                        coalesce(sec.sectors, []::VARCHAR[]), coalesce(tx.sectors, []::VARCHAR[])
                    )),
                    {_varchar_list(sorted(rules.cd_sectors))}
                ) AS cd_sectors
            FROM x_activities a
            LEFT JOIN tx USING (folder, activity_id)
            LEFT JOIN sec USING (folder, activity_id)
        ), based AS (
            SELECT a.folder, a.activity_id, a.cd_text, a.ftc_flag, e.aid_types, e.cd_sectors,
                list_filter([{", ".join(basis)}], b -> b IS NOT NULL) AS basis
            FROM x_activities a JOIN evidence e USING (folder, activity_id)
        )
        SELECT a.folder, a.activity_id,
            len(a.basis) > 0 AS is_cd,
            CASE WHEN len(a.basis) > 0 THEN array_to_string(a.basis, ';') END AS cd_basis,
            CASE WHEN len(a.basis) = 0 THEN NULL
                {" ".join(modalities)}
                WHEN list_contains(a.aid_types, 'D02') OR a.ftc_flag THEN 'technical_assistance'
                WHEN len(list_filter(a.cd_sectors, c -> suffix(c, '81')
                    OR c IN ('11330', '11430'))) > 0 THEN 'training'
                ELSE 'other'
            END AS modality
        FROM based a
    """


def _rates(con: duckdb.DuckDBPyConnection, options: TransformOptions) -> None:
    """``rate_series``: each currency's rate by month index (annual rates fill the months
    of their year that have no monthly rate)."""
    frame = options.rates
    if frame is None or frame.empty:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE rate_series (currency VARCHAR, month BIGINT, "
            "rate DOUBLE, period VARCHAR, source VARCHAR)"
        )
        return
    if "frequency" not in frame.columns:
        frame = frame.assign(frequency="M")
    con.register("rates_frame", frame[["currency", "period", "rate", "source", "frequency"]])
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE rate_series AS
        WITH rows AS (
            SELECT CAST(currency AS VARCHAR) AS currency, CAST(period AS VARCHAR) AS period,
                CAST(rate AS DOUBLE) AS rate, CAST(source AS VARCHAR) AS source,
                CAST(frequency AS VARCHAR) = 'A' AS annual
            FROM rates_frame
        ), monthly AS (
            SELECT currency,
                CAST(substr(period, 1, 4) AS BIGINT) * 12 + CAST(substr(period, 6, 2) AS BIGINT)
                    - 1 AS month,
                rate, period, source
            FROM rows WHERE NOT annual
        ), annual AS (
            SELECT currency, CAST(substr(period, 1, 4) AS BIGINT) * 12 + m.m AS month,
                rate, period, source
            FROM rows, range(12) AS m(m) WHERE annual
        )
        SELECT * FROM monthly
        UNION ALL
        SELECT * FROM annual a
        WHERE NOT EXISTS (
            SELECT 1 FROM monthly m WHERE m.currency = a.currency AND m.month = a.month
        )
        """
    )
    con.unregister("rates_frame")


def _usd_sql(source: str, options: TransformOptions) -> str:
    """``source`` (a relation with value, currency, value_date) with ``usd_rate``,
    ``usd_rate_period``, ``usd_rate_source`` and ``usd_reason`` (why there is none)."""
    if options.rates is None:
        rate = "NULL::DOUBLE"
        return f"""
            SELECT s.*, {rate} AS usd_rate, NULL::VARCHAR AS usd_rate_period,
                NULL::VARCHAR AS usd_rate_source,
                CASE WHEN s.value IS NULL THEN NULL
                    WHEN s.currency IS NULL THEN 'no_currency'
                    WHEN s.value_date IS NULL THEN 'no_value_date'
                    ELSE 'no_exchange_rates' END AS usd_reason
            FROM {source} s
        """
    fallback = int(options.rate_fallback_months)
    # The rate of each (currency, month) is looked up once, then joined to every value.
    return f"""
        WITH keyed AS (
            SELECT *, year(value_date) * 12 + month(value_date) - 1 AS _month
            FROM {source}
        ), pairs AS (
            SELECT DISTINCT currency, _month FROM keyed
            WHERE currency IS NOT NULL AND currency <> 'USD' AND _month IS NOT NULL
        ), looked AS (
            SELECT p.currency, p._month, r.rate AS _rate, r.period AS _rate_period,
                r.source AS _rate_source
            FROM pairs p ASOF JOIN rate_series r
                ON p.currency = r.currency AND p._month >= r.month
            WHERE p._month - r.month <= {fallback}
        ), found AS (
            SELECT k.*, l._rate, l._rate_period, l._rate_source,
                CASE WHEN k.value IS NULL OR k.currency IS NULL OR k.value_date IS NULL
                        THEN false
                    WHEN k.currency = 'USD' THEN true
                    ELSE l._rate IS NOT NULL
                END AS _has_rate
            FROM keyed k LEFT JOIN looked l ON l.currency = k.currency AND l._month = k._month
        )
        SELECT * EXCLUDE (_month, _rate, _rate_period, _rate_source, _has_rate),
            CASE WHEN NOT _has_rate THEN NULL WHEN currency = 'USD' THEN 1.0
                ELSE _rate END AS usd_rate,
            CASE WHEN NOT _has_rate THEN NULL
                WHEN currency = 'USD' THEN lpad(year(value_date)::VARCHAR, 4, '0') || '-'
                    || lpad(month(value_date)::VARCHAR, 2, '0')
                ELSE _rate_period END AS usd_rate_period,
            CASE WHEN NOT _has_rate THEN NULL WHEN currency = 'USD' THEN 'identity'
                ELSE _rate_source END AS usd_rate_source,
            CASE WHEN value IS NULL OR _has_rate THEN NULL
                WHEN currency IS NULL THEN 'no_currency'
                WHEN value_date IS NULL THEN 'no_value_date'
                ELSE 'no_exchange_rate' END AS usd_reason
        FROM found
    """


#: Why ``value_usd`` is empty, as the quarantine warning says it (``{}``: see _usd_message).
_USD_REASONS = {
    "no_currency": "'no currency on the value and no default-currency'",
    "no_value_date": "'no value date or transaction/period date to convert at'",
    "no_exchange_rates": "'no exchange rates configured'",
}


def _usd_message(options: TransformOptions) -> str:
    fallback = int(options.rate_fallback_months)
    cases = " ".join(f"WHEN {literal(k)} THEN {v}" for k, v in _USD_REASONS.items())
    return (
        f"'value_usd left empty: ' || CASE usd_reason {cases} ELSE "
        f"'no ' || currency || ' rate for ' || py_month(value_date) || ' or the "
        f"{fallback} months before' END"
    )


def _activity(alias: str, column: str) -> str:
    """SQL: ``column`` of the extracted activity the row ``alias`` (folder, activity_id)
    belongs to, for a warning about the activity as a whole."""
    return (
        f"(SELECT a.{column} FROM x_activities a WHERE a.folder = {alias}.folder "
        f"AND a.activity_id = {alias}.activity_id)"
    )


@dataclass(frozen=True)
class _ShareKind:
    """How :func:`_shares` names one kind of share rows in its quarantine warnings (SQL
    expressions over the row ``n`` or the group ``w``)."""

    #: The harmonised table of a row (``n``) ...
    table: str
    #: ... and of a whole group (``w``).
    group_table: str
    #: "countrie"/"sector"/"region" + " " + the code, for a repeated row (``n``).
    repeated: str
    #: "countries", "sectors", "countries and regions" ... of a group (``w``).
    plural: str
    #: Extra aggregates of ``g_<name>`` that ``group_table`` and ``plural`` read.
    counts: str = ""


_SECTORS = _ShareKind(
    table="'activity_sectors'",
    group_table="'activity_sectors'",
    # as the pandas harmoniser wrote it: "activity_sectors" without "activity_" and "s"
    repeated="'sector ' || n.vocabulary || ' / ' || n.code",
    plural="'sectors'",
)
#: Recipient countries and the regions of each activity's counted region vocabulary share
#: the activity between them (IATI: their percentages add up to 100 together).
_RECIPIENTS = _ShareKind(
    table="CASE n.kind WHEN 'country' THEN 'activity_countries' ELSE 'activity_regions' END",
    group_table=(
        "CASE WHEN w.n_countries > 0 THEN 'activity_countries' ELSE 'activity_regions' END"
    ),
    # "activity_countries" without "activity_" and a trailing "s" gave "countrie"
    repeated="CASE n.kind WHEN 'country' THEN 'countrie ' ELSE 'region ' END || n.code",
    plural=(
        "CASE WHEN w.n_regions = 0 THEN 'countries' WHEN w.n_countries = 0 THEN 'regions' "
        "ELSE 'countries and regions' END"
    ),
    counts=(
        ", count(*) FILTER (WHERE kind = 'country') AS n_countries, "
        "count(*) FILTER (WHERE kind = 'region') AS n_regions"
    ),
)


def _shares(
    con: duckdb.DuckDBPyConnection, name: str, key: str, group: str, kind: _ShareKind
) -> None:
    """``h_<name>``: the activity-level rows of ``x_<name>`` with repeated codes merged and
    percentages rebased into shares per activity and ``group`` (``share_basis``
    ``activity``, or ``even`` when no percentage could weigh them), with ``q_<name>``
    holding the quarantine warnings this gives (repeated codes, negative percentages,
    missing percentages, percentages not adding up to 100)."""
    source, merged, groups = quote("x_" + name), quote("m_" + name), quote("g_" + name)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {merged} AS
        WITH numbered AS (
            SELECT *, row_number() OVER (PARTITION BY folder, activity_id, {key} ORDER BY _ord)
                AS _repeat
            FROM {source}
        ), merged AS (
            SELECT folder, activity_id, {key},
                list(percentage ORDER BY _ord) FILTER (WHERE percentage IS NOT NULL) AS given,
                bool_or(_repeat = 1 AND percentage IS NULL) AS first_missing
            FROM numbered GROUP BY ALL
        )
        SELECT n.* EXCLUDE (percentage, _repeat),
            CASE WHEN len(m.given) = 0 THEN NULL
                WHEN m.first_missing THEN list_reduce(m.given, (a, b) -> a + b, 0.0)
                ELSE list_reduce(m.given, (a, b) -> a + b) END AS percentage
        FROM numbered n JOIN merged m USING (folder, activity_id, {key})
        WHERE n._repeat = 1
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {groups} AS
        SELECT folder, activity_id, {group} AS _group,
            count(*) AS n_members,
            count(*) FILTER (WHERE percentage IS NULL) AS n_missing,
            list(CASE WHEN percentage > 0.0 THEN percentage ELSE 0.0 END ORDER BY _ord)
                FILTER (WHERE percentage IS NOT NULL) AS given
            {kind.counts}
        FROM {merged} GROUP BY ALL
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {quote("w_" + name)} AS
        WITH sums AS (
            SELECT *, CASE WHEN len(given) = 0 THEN NULL
                ELSE list_reduce(given, (a, b) -> a + b) END AS given_sum
            FROM {groups}
        )
        SELECT *,
            CASE WHEN n_missing = 0 THEN NULL WHEN given_sum IS NULL THEN 100.0
                WHEN 100.0 - given_sum > 0.0 THEN 100.0 - given_sum ELSE 0.0 END AS remainder
        FROM sums
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {quote("h_" + name)} AS
        WITH weighted AS (
            SELECT m.*, w.n_members, w.n_missing,
                CASE WHEN m.percentage > 0.0 THEN m.percentage
                    WHEN m.percentage IS NOT NULL THEN 0.0
                    WHEN w.n_members = 1 THEN 100.0
                    ELSE w.remainder / w.n_missing END AS _weight
            FROM {merged} m
            JOIN {quote("w_" + name)} w ON w.folder = m.folder
                AND w.activity_id = m.activity_id AND w._group = m.{group}
        ), totals AS (
            SELECT folder, activity_id, {group} AS _group,
                list_reduce(list(_weight ORDER BY _ord), (a, b) -> a + b) AS _total
            FROM weighted GROUP BY ALL
        )
        SELECT w.* EXCLUDE (_weight, n_members, n_missing),
            CASE WHEN t._total > 0 THEN w._weight / t._total ELSE 1.0 / w.n_members END
                AS share,
            CASE WHEN t._total > 0 AND NOT (w.n_members > 1 AND w.n_missing = w.n_members)
                THEN 'activity' ELSE 'even' END AS share_basis
        FROM weighted w JOIN totals t ON t.folder = w.folder
            AND t.activity_id = w.activity_id AND t._group = w.{group}
        """
    )
    activity_place, activity_line = _activity("w", "source_ref"), _activity("w", "line")
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {quote("q_" + name)} AS
        SELECT n.folder, n.source_ref, {kind.table} AS "table", 'percentage' AS field,
            'repeated_code' AS rule, py_str(n.percentage) AS value,
            CASE WHEN n.line IS NULL OR n.line = 0 THEN '' ELSE 'line ' || n.line || ': ' END
                || {kind.repeated}
                || ' listed again for the activity; percentages added into the row of '
                || k.source_ref AS message,
            'warning' AS severity, 1 AS _kind, n._ord AS _ord
        FROM (
            SELECT *, row_number() OVER (PARTITION BY folder, activity_id, {key} ORDER BY _ord)
                AS _repeat
            FROM {source}
        ) n
        JOIN {merged} k ON k.folder = n.folder AND k.activity_id = n.activity_id
            AND {" AND ".join(f"k.{c} IS NOT DISTINCT FROM n.{c}" for c in key.split(", "))}
        WHERE n._repeat > 1
        UNION ALL
        SELECT n.folder, n.source_ref, {kind.table}, 'percentage', 'negative_percentage',
            py_str(n.percentage),
            CASE WHEN n.line IS NULL OR n.line = 0 THEN '' ELSE 'line ' || n.line || ': ' END
                || 'percentage ' || py_g(n.percentage)
                || ' is negative; counted as 0 in the shares',
            'warning', 2, n._ord
        FROM {merged} n WHERE n.percentage < 0
        UNION ALL
        SELECT w.folder, {activity_place}, {kind.group_table}, 'share', 'percentage_missing',
            NULL,
            coalesce('line ' || nullif({activity_line}, 0) || ': ', '')
                || w.n_missing || ' of ' || w.n_members || ' ' || {kind.plural}
                || ' have no percentage; the '
                || CASE WHEN w.given_sum IS NULL THEN '' ELSE 'remaining ' END
                || py_g(w.remainder) || '% is split evenly among them',
            'warning', 3, 0
        FROM {quote("w_" + name)} w WHERE w.n_missing > 0 AND w.n_members > 1
        UNION ALL
        SELECT w.folder, {activity_place}, {kind.group_table}, 'percentage',
            'percentages_not_100', py_g(w.given_sum),
            coalesce('line ' || nullif({activity_line}, 0) || ': ', '')
                || 'percentages add up to ' || py_g(w.given_sum)
                || ', not 100; shares rebased to sum to 1',
            'warning', 4, 0
        FROM {quote("w_" + name)} w
        WHERE w.n_missing = 0 AND w.given_sum IS NOT NULL AND abs(w.given_sum - 100.0) > 0.01
        """
    )


#: The place of a row derived from transactions (or of a region among the recipients): after
#: every row of its file's own table, within the quarantine's places of one kind (10**12).
_AFTER = 1_000_000_000


def _recipients(con: duckdb.DuckDBPyConnection) -> None:
    """``x_recipients``: each activity's recipient countries and the recipient regions of
    its counted region vocabulary (``1``, the OECD DAC regions, when it gives any, else
    the first of the others in code order), countries first; ``q_regions``: a warning for
    each region of another vocabulary, which is not counted (it would count the same
    money twice)."""
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE r_counted AS
        SELECT folder, activity_id,
            CASE WHEN bool_or(vocabulary = '1') THEN '1' ELSE min(vocabulary) END AS vocabulary
        FROM x_regions GROUP BY ALL
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE x_recipients AS
        SELECT folder, activity_id, source_ref, line, 'country' AS kind,
            NULL::VARCHAR AS vocabulary, country_code AS code, percentage, _ord,
            _ord AS _row
        FROM x_countries
        UNION ALL
        SELECT r.folder, r.activity_id, r.source_ref, r.line, 'region', r.vocabulary, r.code,
            r.percentage, {_AFTER} + r._ord, r._ord
        FROM x_regions r JOIN r_counted c ON c.folder = r.folder
            AND c.activity_id = r.activity_id AND c.vocabulary = r.vocabulary
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE q_regions AS
        SELECT r.folder, r.source_ref, 'activity_regions' AS "table", 'vocabulary' AS field,
            'region_vocabulary_not_counted' AS rule, r.vocabulary AS value,
            CASE WHEN r.line IS NULL OR r.line = 0 THEN '' ELSE 'line ' || r.line || ': ' END
                || 'recipient-region ' || r.code || ' of vocabulary ' || r.vocabulary
                || ' not recorded: the activity''s regions are counted in vocabulary '
                || c.vocabulary || ', and the same money is not counted twice' AS message,
            'warning' AS severity, 6 AS _kind, r._ord AS _ord
        FROM x_regions r JOIN r_counted c ON c.folder = r.folder
            AND c.activity_id = r.activity_id AND c.vocabulary <> r.vocabulary
        """
    )


def _transaction_shares(con: duckdb.DuckDBPyConnection) -> None:
    """``t_shares``: the shares of the activities that give sectors (of a vocabulary) or
    recipients only on their transactions, from the transactions' values; ``q_splits``:
    a warning for each activity whose shares had to be split evenly instead.

    The transactions weighed are those of the first kind that gives the dimension:
    disbursements and expenditures, else commitments, else any. A code weighs the net
    value of its transactions (in their own currency, so that the shares do not move
    with the exchange rates; a negative net weighs 0), and its share is its weight over
    all the codes' weights. When those transactions are in more than one currency, or
    no code weighs more than 0, each code gets an even share (``share_basis`` ``even``)
    and a warning says why."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE t_shares AS
        WITH own AS (
            SELECT DISTINCT folder, activity_id, 'recipient' AS _group FROM x_countries
            UNION SELECT DISTINCT folder, activity_id, 'recipient' FROM x_regions
            UNION SELECT DISTINCT folder, activity_id, 'sector ' || vocabulary FROM x_sectors
        ), given AS (
            SELECT s.folder, s.activity_id, s.dimension,
                CASE WHEN s.dimension = 'sector' THEN 'sector ' || s.vocabulary
                    ELSE 'recipient' END AS _group,
                s.vocabulary, s.code, t.source_ref, t.line, t.currency,
                coalesce(t.value, 0.0) AS weight,
                CASE WHEN t.transaction_type IN ('3', '4') THEN 1
                    WHEN t.transaction_type = '2' THEN 2 ELSE 3 END AS tier,
                s._ord AS _ord
            FROM x_transaction_splits s
            JOIN x_transactions t ON t.folder = s.folder AND t.transaction_id = s.transaction_id
            WHERE NOT EXISTS (
                SELECT 1 FROM own o WHERE o.folder = s.folder AND o.activity_id = s.activity_id
                    AND o._group = CASE WHEN s.dimension = 'sector' THEN 'sector ' || s.vocabulary
                        ELSE 'recipient' END
            )
        ), weighed AS (
            SELECT * FROM given
            QUALIFY tier = min(tier) OVER (PARTITION BY folder, activity_id, _group)
        ), codes AS (
            SELECT folder, activity_id, _group, dimension, vocabulary, code,
                greatest(list_reduce(list(weight ORDER BY _ord), (a, b) -> a + b), 0.0)
                    AS weight,
                arg_min(source_ref, _ord) AS source_ref, arg_min(line, _ord) AS line,
                min(_ord) AS _ord
            FROM weighed GROUP BY ALL
        ), currencies AS (
            SELECT folder, activity_id, _group,
                list_sort(list(DISTINCT coalesce(currency, 'no currency'))) AS currencies
            FROM weighed GROUP BY ALL
        ), groups AS (
            SELECT c.folder, c.activity_id, c._group,
                list_reduce(list(c.weight ORDER BY c._ord), (a, b) -> a + b) AS total,
                count(*) AS n_codes, any_value(k.currencies) AS currencies
            FROM codes c JOIN currencies k USING (folder, activity_id, _group)
            GROUP BY ALL
        )
        SELECT c.folder, c.activity_id, c._group, c.dimension, c.vocabulary, c.code,
            c.source_ref, c.line, NULL::DOUBLE AS percentage,
            CASE WHEN g.total > 0 AND len(g.currencies) <= 1 THEN c.weight / g.total
                ELSE 1.0 / g.n_codes END AS share,
            CASE WHEN g.total > 0 AND len(g.currencies) <= 1 THEN 'transaction'
                ELSE 'even' END AS share_basis,
            g.total, g.n_codes, g.currencies, {_AFTER} + c._ord AS _ord
        FROM codes c JOIN groups g USING (folder, activity_id, _group)
        """
    )
    activity_place, activity_line = _activity("t", "source_ref"), _activity("t", "line")
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE q_splits AS
        SELECT t.folder, {activity_place} AS source_ref,
            CASE WHEN t.dimension = 'sector' THEN 'activity_sectors'
                ELSE 'activity_countries' END AS "table",
            'share' AS field,
            CASE WHEN len(t.currencies) > 1 THEN 'transaction_currencies_differ'
                ELSE 'transaction_values_zero' END AS rule,
            CASE WHEN len(t.currencies) > 1 THEN array_to_string(t.currencies, ', ') END
                AS value,
            coalesce('line ' || nullif({activity_line}, 0) || ': ', '')
                || CASE WHEN t.dimension = 'sector'
                    THEN 'sectors of vocabulary ' || t.vocabulary
                    ELSE 'recipient countries and regions' END
                || ' are given on transactions '
                || CASE WHEN len(t.currencies) > 1
                    THEN 'in ' || len(t.currencies) || ' currencies ('
                        || array_to_string(t.currencies, ', ') || '), which cannot be weighed '
                        || 'together'
                    ELSE 'whose values add up to nothing' END
                || '; the activity is split evenly among the ' || t.n_codes || ' of them'
                AS message,
            'warning' AS severity, 7 AS _kind, min(t._ord) AS _ord
        FROM t_shares t WHERE t.share_basis = 'even'
        GROUP BY t.folder, t.activity_id, t.dimension, t.vocabulary, t.currencies, t.n_codes
        """
    )


def _all_shares(con: duckdb.DuckDBPyConnection) -> None:
    """``h_countries``, ``h_regions`` and ``h_sectors``: every activity's shares, from its
    own percentages (:func:`_shares`) or from its transactions (:func:`_transaction_shares`),
    with ``share_basis``."""
    _recipients(con)
    _shares(con, "recipients", "kind, code", "activity_id", _RECIPIENTS)
    _shares(con, "sectors", "vocabulary, code", "vocabulary", _SECTORS)
    _transaction_shares(con)
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE h_countries AS
        SELECT folder, activity_id, source_ref, code AS country_code, percentage, share,
            share_basis, _ord
        FROM h_recipients WHERE kind = 'country'
        UNION ALL
        SELECT folder, activity_id, source_ref, code, percentage, share, share_basis, _ord
        FROM t_shares WHERE dimension = 'country'
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE h_regions AS
        SELECT folder, activity_id, source_ref, vocabulary, code AS region_code, percentage,
            share, share_basis, _row AS _ord
        FROM h_recipients WHERE kind = 'region'
        UNION ALL
        SELECT folder, activity_id, source_ref, vocabulary, code, percentage, share,
            share_basis, _ord
        FROM t_shares WHERE dimension = 'region'
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE h_sectors_all AS
        SELECT folder, activity_id, source_ref, vocabulary, code, names, percentage, share,
            share_basis, _ord
        FROM h_sectors
        UNION ALL
        SELECT folder, activity_id, source_ref, vocabulary, code, NULL, percentage, share,
            share_basis, _ord
        FROM t_shares WHERE dimension = 'sector'
        """
    )
    con.execute("DROP TABLE h_sectors")
    con.execute("ALTER TABLE h_sectors_all RENAME TO h_sectors")


#: Bytes of IATI XML transformed together. Each file's tables are transformed on their
#: own, but some of that work is held by DuckDB whole (each activity's percentages,
#: aid types and sectors gathered into lists), which it cannot spill to disk: parts of
#: the night's files keep it within ``warehouse.memory_limit`` however large the night.
PART_BYTES = 512 * 2**20
#: The tables :func:`iati_tables` makes part by part.
PART_TABLES = (
    "activities",
    "activity_countries",
    "activity_regions",
    "activity_sectors",
    "participating_orgs",
    "results",
    "transactions",
    "budgets",
    "sources",
    "quarantine",
    "conformance",
)


def _parts(
    con: duckdb.DuckDBPyConnection, inputs: Sequence[IatiInput], most: int
) -> list[list[IatiInput]]:
    """``inputs`` in parts of at most ``most`` bytes of XML each (a larger file is a part
    of its own); the inputs of one extracted folder stay together."""
    folders = sorted({str(i.extract) for i in inputs if i.extract is not None})
    sizes: dict[str | None, int] = {}
    if folders:
        listed = "[" + ", ".join(literal(f"{folder}/{DONE}") for folder in folders) + "]"
        rows = con.execute(
            "SELECT regexp_replace(filename, '/[^/]*$', ''), bytes "
            f"FROM read_parquet({listed}, filename = true)"
        ).fetchall()
        sizes = {str(folder): int(size or 0) for folder, size in rows}
    by_folder: dict[str | None, list[IatiInput]] = {}
    for item in inputs:
        by_folder.setdefault(None if item.extract is None else str(item.extract), []).append(item)
    parts: list[list[IatiInput]] = [[]]
    total = 0
    for folder, items in sorted(by_folder.items(), key=lambda kv: kv[0] or ""):
        size = sizes.get(folder, 0)
        if parts[-1] and total + size > most:
            parts.append([])
            total = 0
        parts[-1].extend(items)
        total += size
    return parts


def iati_tables(
    con: duckdb.DuckDBPyConnection, inputs: Sequence[IatiInput], options: TransformOptions
) -> None:
    """Create ``iati_<table>`` for every harmonised table of IATI files (activities ...
    results, sources, quarantine, conformance) from ``inputs``; each row carries its file's
    ``source_file`` and ``_ord`` (its place among the file's rows of that table). The
    files are transformed in parts of about :data:`PART_BYTES` of XML."""
    sql.register(con)
    _pick_macro(con, options.preferred_languages)
    _rates(con, options)
    _codelist_names(con, options)
    parts = _parts(con, inputs, PART_BYTES)
    for number, part in enumerate(parts):
        _inputs(con, part)
        folders = sorted({str(i.extract) for i in part if i.extract is not None})
        for table in EXTRACT_SCHEMAS:
            _scan(con, table, folders)
        # rejected files' tables are empty; the accepted ones join the night's inputs
        _all_shares(con)
        con.execute(f"CREATE OR REPLACE TEMP TABLE h_class AS {_classification_sql(options.rules)}")
        _activity_tables(con, options)
        _money_tables(con, options)
        _file_tables(con, options)
        if len(parts) > 1:
            for table in PART_TABLES:
                whole, done = quote("p_" + table), quote("iati_" + table)
                if number == 0:
                    con.execute(f"CREATE OR REPLACE TEMP TABLE {whole} AS SELECT * FROM {done}")
                else:
                    con.execute(f"INSERT INTO {whole} SELECT * FROM {done}")
                con.execute(f"DROP TABLE {done}")
    if len(parts) > 1:
        _inputs(con, inputs)
        for table in PART_TABLES:
            con.execute(f"ALTER TABLE {quote('p_' + table)} RENAME TO {quote('iati_' + table)}")
    for table in ("cd_priorities", "partner_declarations"):  # IATI has none
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {quote('iati_' + table)} AS SELECT *, "
            f"NULL::VARCHAR AS _file, 0::BIGINT AS _ord FROM ({empty_table_sql(table)})"
        )


def iati_money(
    con: duckdb.DuckDBPyConnection, inputs: Sequence[IatiInput], options: TransformOptions
) -> None:
    """What :func:`iati_tables` computes from the exchange rates, alone, for a night when
    nothing else changed: ``iati_transactions`` and ``iati_budgets`` with only their keys
    (``source_file``, ``source_ref``) and money columns (``value_usd``, ``usd_rate`` ...),
    and ``iati_money_warnings``: the ``quarantine`` rows of the values left without US
    dollars, with their files' ``source_file``."""
    sql.register(con)
    _inputs(con, inputs)
    folders = sorted({str(i.extract) for i in inputs if i.extract is not None})
    _scan(con, "file", folders)
    for table in MONEY_COLUMNS:
        _scan(con, table, folders, _MONEY_INPUTS)
    _rates(con, options)
    _money_rows(con, options)
    for table, columns in MONEY_COLUMNS.items():
        money = ", ".join(
            "m.value / m.usd_rate AS value_usd" if c == "value_usd" else f"m.{quote(c)}"
            for c in columns
        )
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {quote("iati_" + table)} AS
            SELECT i.source_file, m.source_ref, {money}
            FROM {_ACCEPTED} JOIN {quote("u_" + table)} m ON m.folder = i.folder
            """
        )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE iati_money_warnings AS "
        + _accepted_quarantine(["q_transactions", "q_budgets"])
    )


#: The columns of each table that depend on the exchange rates (:func:`iati_money`) ...
MONEY_COLUMNS = {
    "transactions": ("value_usd", "usd_rate", "usd_rate_period", "usd_rate_source"),
    "budgets": ("value_usd", "usd_rate", "usd_rate_period"),
}
#: ... and the extracted columns they are computed from.
_MONEY_INPUTS = ("source_ref", "line", "value", "currency", "value_date")


def _accepted_quarantine(parts: Sequence[str]) -> str:
    """The ``quarantine`` rows of the relations ``parts`` (folder, source_ref ... severity,
    _kind, _ord) for every accepted input of their folder, in ``iati_quarantine``'s
    columns."""
    union = " UNION ALL ".join(f"SELECT * FROM {part}" for part in parts)
    return f"""
        SELECT i.source_file, q.source_ref, q."table", q.field, q.rule, q.value, q.message,
            q.severity, i.source_file AS _file, q._kind::BIGINT * 1000000000000 + q._ord AS _ord
        FROM iati_inputs i JOIN x_file f ON f.folder = i.folder AND f.rejected_rule IS NULL
        JOIN ({union}) q ON q.folder = i.folder
    """


def _inputs(con: duckdb.DuckDBPyConnection, inputs: Sequence[IatiInput]) -> None:
    rows = [
        {
            "source_file": i.source_file,
            "uri": i.uri,
            "folder": None if i.extract is None else str(i.extract),
            "conformance": None if i.conformance is None else str(i.conformance),
            "rej_rule": i.rejection.rule if i.rejection else None,
            "rej_reason": i.rejection.reason if i.rejection else None,
            "rej_message": i.rejection.message if i.rejection else None,
            "rej_sha256": i.rejection.sha256 if i.rejection else None,
            "rej_bytes": i.rejection.bytes if i.rejection else None,
        }
        for i in inputs
    ]
    schema = pa.schema(
        [
            ("source_file", pa.string()),
            ("uri", pa.string()),
            ("folder", pa.string()),
            ("conformance", pa.string()),
            ("rej_rule", pa.string()),
            ("rej_reason", pa.string()),
            ("rej_message", pa.string()),
            ("rej_sha256", pa.string()),
            ("rej_bytes", pa.int64()),
        ]
    )
    temp_table(con, "iati_inputs", pa.Table.from_pylist(rows, schema=schema))


def _codelist_names(con: duckdb.DuckDBPyConnection, options: TransformOptions) -> None:
    """``sector_names``: the name of every code of the newest version of the Sector and
    SectorCategory codelists (as :meth:`Codelists.name` gives it)."""
    frame = options.codelists
    if frame is None or frame.empty:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE sector_names "
            "(codelist VARCHAR, code VARCHAR, name VARCHAR)"
        )
        return
    con.register("codelists_frame", frame[["codelist", "code", "name", "version"]])
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE sector_names AS
        WITH lists AS (
            SELECT CAST(codelist AS VARCHAR) AS codelist, CAST(code AS VARCHAR) AS code,
                CAST(name AS VARCHAR) AS name, CAST(version AS VARCHAR) AS version
            FROM codelists_frame WHERE codelist IN ('Sector', 'SectorCategory')
        ), newest AS (
            SELECT codelist, version FROM (
                SELECT DISTINCT codelist, version,
                    CASE WHEN version = 'non-embedded' THEN []::BIGINT[]
                        ELSE list_transform(string_split(version, '.'), p -> CAST(p AS BIGINT))
                    END AS key
                FROM lists
            ) QUALIFY row_number() OVER (PARTITION BY codelist ORDER BY key DESC) = 1
        )
        SELECT l.codelist, l.code, first(l.name) AS name
        FROM lists l JOIN newest USING (codelist, version)
        GROUP BY ALL
        """
    )
    con.unregister("codelists_frame")


def _provenance(alias: str) -> str:
    return (
        f"'iati' AS source, i.source_file AS source_file, f.sha256 AS source_sha256, "
        f"{alias}.source_ref AS source_ref, i.source_file AS _file, {alias}._ord AS _ord"
    )


#: The extracted files that were not rejected, with their inputs (one folder may stand for
#: two inputs with the same bytes).
_ACCEPTED = """
    iati_inputs i JOIN x_file f ON f.folder = i.folder AND f.rejected_rule IS NULL
"""


def _activity_tables(con: duckdb.DuckDBPyConnection, options: TransformOptions) -> None:
    cd_sectors = _varchar_list(sorted(options.rules.cd_sectors))
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE iati_activities AS
        SELECT a.activity_id,
            pick_narrative(a.title, a.lang).text AS title,
            pick_narrative(a.description, a.lang).text AS description,
            pick_narrative(a.title, a.lang).lang AS title_language,
            a.reporting_org_ref,
            pick_narrative(a.reporting_org_name, a.lang).text AS reporting_org_name,
            a.reporting_org_type, a.secondary_reporter, a.hierarchy, a.activity_status,
            a.start_planned, a.start_actual, a.end_planned, a.end_actual,
            coalesce(a.start_actual, a.start_planned) AS start_date,
            coalesce(a.end_actual, a.end_planned) AS end_date,
            a.default_currency, a.humanitarian, a.default_aid_type, a.default_finance_type,
            a.default_flow_type, f.iati_version, a.last_updated,
            c.is_cd, c.cd_basis, c.modality,
            {_provenance("a")}
        FROM {_ACCEPTED}
        JOIN x_activities a ON a.folder = i.folder
        JOIN h_class c ON c.folder = a.folder AND c.activity_id = a.activity_id
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE iati_activity_countries AS
        SELECT c.activity_id, c.country_code, c.percentage, c.share, c.share_basis,
            {_provenance("c")}
        FROM {_ACCEPTED} JOIN h_countries c ON c.folder = i.folder
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE iati_activity_regions AS
        SELECT r.activity_id, r.vocabulary, r.region_code, r.percentage, r.share,
            r.share_basis, {_provenance("r")}
        FROM {_ACCEPTED} JOIN h_regions r ON r.folder = i.folder
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE iati_activity_sectors AS
        SELECT s.activity_id, s.vocabulary, s.code,
            coalesce(
                nullif(n.name, ''),
                pick_narrative(s.names, a.lang).text
            ) AS code_name,
            s.percentage, s.share, s.share_basis,
            s.vocabulary = '1' AND list_contains({cd_sectors}, s.code) AS is_cd_sector,
            {_provenance("s")}
        FROM {_ACCEPTED} JOIN h_sectors s ON s.folder = i.folder
        JOIN x_activities a ON a.folder = s.folder AND a.activity_id = s.activity_id
        LEFT JOIN sector_names n ON s.vocabulary IN ('1', '2')
            AND n.codelist = CASE s.vocabulary WHEN '1' THEN 'Sector' ELSE 'SectorCategory' END
            AND n.code = s.code
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE iati_participating_orgs AS
        SELECT o.activity_id, o.position, o.role, o.org_ref,
            pick_narrative(o.org_name, a.lang).text AS org_name,
            o.org_type, o.org_activity_id, {_provenance("o")}
        FROM {_ACCEPTED} JOIN x_participating_orgs o ON o.folder = i.folder
        JOIN x_activities a ON a.folder = o.folder AND a.activity_id = o.activity_id
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE iati_results AS
        WITH single_country AS (
            SELECT folder, activity_id, any_value(country_code) AS country_code
            FROM h_countries GROUP BY folder, activity_id
            HAVING count(DISTINCT country_code) = 1
        )
        SELECT r.result_id, r.activity_id, c.country_code,
            NULL::VARCHAR AS priority_id, r.level,
            pick_narrative(r.result_title, a.lang).text AS result_title, r.indicator_id,
            pick_narrative(r.indicator_title, a.lang).text AS indicator_title, r.measure,
            r.ascending, r.reference_vocabulary, r.reference_code, r.reference_uri,
            NULL::BOOLEAN AS from_country_framework, NULL::BOOLEAN AS government_data_source,
            r.baseline_year, r.baseline_value, r.target_year, r.target_value,
            r.period_start, r.period_end, r.actual_value, NULL::VARCHAR AS data_source,
            {_provenance("r")}
        FROM {_ACCEPTED} JOIN x_results r ON r.folder = i.folder
        JOIN x_activities a ON a.folder = r.folder AND a.activity_id = r.activity_id
        LEFT JOIN single_country c ON c.folder = r.folder AND c.activity_id = r.activity_id
        """
    )


def _money_rows(con: duckdb.DuckDBPyConnection, options: TransformOptions) -> None:
    """``u_<table>``: the extracted transactions and budgets of the accepted files (each
    folder once) with their exchange rates; ``q_<table>``: a warning for each value left
    without US dollars."""
    usd_message = _usd_message(options)
    for table in MONEY_COLUMNS:
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {quote("u_" + table)} AS
            {
                _usd_sql(
                    f"(SELECT x.* FROM {quote('x_' + table)} x WHERE x.folder IN "
                    f"(SELECT i.folder FROM {_ACCEPTED}))",
                    options,
                )
            }
            """
        )
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {quote("q_" + table)} AS
            SELECT DISTINCT folder, source_ref, '{table}' AS "table", 'value_usd' AS field,
                usd_reason AS rule,
                CASE WHEN currency IS NULL THEN py_str(value)
                    ELSE py_str(value) || ' ' || currency END AS value,
                CASE WHEN line IS NULL OR line = 0 THEN '' ELSE 'line ' || line || ': ' END
                    || {usd_message} AS message,
                'warning' AS severity, 5 AS _kind, _ord
            FROM {quote("u_" + table)} WHERE usd_reason IS NOT NULL
            """
        )


def _money_tables(con: duckdb.DuckDBPyConnection, options: TransformOptions) -> None:
    """Transactions and budgets in US dollars, with a warning for each value left empty."""
    _money_rows(con, options)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE iati_transactions AS
        SELECT t.transaction_id, t.activity_id, t.transaction_type, t.transaction_date,
            t.value, t.currency, t.value_date, t.value / t.usd_rate AS value_usd, t.usd_rate,
            t.usd_rate_period, t.usd_rate_source, t.provider_org_ref, t.provider_activity_id,
            t.receiver_org_ref, t.receiver_activity_id, t.aid_type, t.finance_type,
            t.flow_type, t.disbursement_channel, t.sector_code, t.recipient_country,
            t.recipient_region, t.recipient_region_vocabulary,
            t.humanitarian, t.counts_toward_totals, t.exclusion_reason, {_provenance("t")}
        FROM {_ACCEPTED} JOIN u_transactions t ON t.folder = i.folder
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE iati_budgets AS
        SELECT b.budget_id, b.activity_id, b.budget_type, b.budget_status, b.period_start,
            b.period_end, b.value, b.currency, b.value_date, b.value / b.usd_rate AS value_usd,
            b.usd_rate, b.usd_rate_period, {_provenance("b")}
        FROM {_ACCEPTED} JOIN u_budgets b ON b.folder = i.folder
        """
    )


def _file_tables(con: duckdb.DuckDBPyConnection, options: TransformOptions) -> None:
    """``sources``, ``quarantine`` and ``conformance`` of every input."""
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE iati_sources AS
        SELECT i.source_file, 'iati' AS source, i.uri, NULL::TIMESTAMPTZ AS fetched_at,
            NULL::TIMESTAMPTZ AS checked_at, NULL::VARCHAR AS download, NULL::VARCHAR AS http_etag,
            CASE WHEN i.folder IS NULL THEN i.rej_sha256 ELSE f.sha256 END AS sha256,
            CASE WHEN i.folder IS NULL THEN i.rej_bytes ELSE f.bytes END AS bytes,
            CASE WHEN i.folder IS NULL OR f.rejected_rule IS NOT NULL OR f.n_accepted = 0
                    THEN 'rejected'
                WHEN f.n_quarantined + f.rejected_parts > 0 THEN 'partial'
                ELSE 'ok' END AS status,
            CASE WHEN i.folder IS NULL THEN i.rej_reason
                WHEN f.rejected_rule IS NOT NULL THEN f.rejected_message
                WHEN f.n_accepted = 0 THEN 'none of the ' || f.n_records
                    || ' activities could be accepted (see quarantine)'
                WHEN f.n_quarantined + f.rejected_parts > 0 THEN array_to_string(
                    list_filter([
                        CASE WHEN f.n_quarantined > 0 THEN f.n_quarantined || ' of '
                            || f.n_records || ' activities not accepted' END,
                        CASE WHEN f.rejected_parts > 0 THEN f.rejected_parts
                            || ' transactions or budgets not accepted' END
                    ], p -> p IS NOT NULL), '; ') || ' (see quarantine)'
                END AS reason,
            coalesce(f.n_records, 0) AS n_records, coalesce(f.n_accepted, 0) AS n_accepted,
            coalesce(f.n_quarantined, 0) AS n_quarantined,
            i.source_file AS _file, 0 AS _ord
        FROM iati_inputs i LEFT JOIN x_file f ON f.folder = i.folder
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP VIEW x_quarantine_rows AS
        SELECT folder, source_ref, "table", field, rule, value, message, severity,
            0 AS _kind, _ord
        FROM x_quarantine
        """
    )
    parts = [
        "x_quarantine_rows",
        "q_recipients",
        "q_regions",
        "q_sectors",
        "q_splits",
        "q_transactions",
        "q_budgets",
    ]
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE iati_quarantine AS
        {_accepted_quarantine(parts)}
        UNION ALL
        SELECT i.source_file, '/', 'sources', NULL, i.rej_rule, NULL, i.rej_message, 'error',
            i.source_file, 0
        FROM iati_inputs i WHERE i.folder IS NULL
        UNION ALL
        SELECT i.source_file,
            CASE WHEN f.rejected_line IS NULL OR f.rejected_line = 0 THEN '/'
                ELSE 'line ' || f.rejected_line END,
            'sources', NULL, f.rejected_rule, NULL, 'file rejected: ' || f.rejected_message,
            'error', i.source_file, 0
        FROM iati_inputs i JOIN x_file f ON f.folder = i.folder AND f.rejected_rule IS NOT NULL
        """
    )
    _conformance(con, options)


def _conformance(con: duckdb.DuckDBPyConnection, options: TransformOptions) -> None:
    """``iati_conformance``: each file's XML Schema findings (kept with its extract; for a
    file refused unread, one ``xsd:not_checked`` row saying why), then an accepted file's
    codelist findings, checked here against tonight's codelists."""
    fields = [f for f in arrow_schema("conformance") if f.name != "source_file"]
    columns = ", ".join(quote(f.name) for f in fields)
    checked = [
        row[0]
        for row in con.execute(
            "SELECT DISTINCT i.conformance FROM iati_inputs i JOIN x_file f "
            "ON f.folder = i.folder WHERE i.conformance IS NOT NULL ORDER BY 1"
        ).fetchall()
    ]
    if checked:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE schema_findings AS SELECT {columns}, filename, "
            "file_row_number AS _ord "
            "FROM read_parquet($files, filename = true, file_row_number = true)",
            {"files": checked},
        )
    else:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE schema_findings AS SELECT "
            + ", ".join(f"NULL::{duckdb_type(f.type)} AS {quote(f.name)}" for f in fields)
            + ", NULL::VARCHAR AS filename, 0::BIGINT AS _ord LIMIT 0"
        )
    codelists = None if options.codelists is None else Codelists.from_frame(options.codelists)
    code_findings = codelist_findings(
        con,
        "(SELECT folder AS file_key, code_root, code_version FROM x_file "
        "WHERE rejected_rule IS NULL)",
        "(SELECT folder AS file_key, _ord AS seq, * EXCLUDE (folder, _ord) FROM x_codes)",
        codelists,
        options.max_findings,
    )
    temp_table(con, "code_findings", code_findings)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE iati_conformance AS
        SELECT i.source_file, {", ".join("c." + quote(f.name) for f in fields)},
            i.source_file AS _file, c._ord
        FROM iati_inputs i JOIN x_file f ON f.folder = i.folder
        JOIN schema_findings c ON c.filename = i.conformance
        UNION ALL
        SELECT i.source_file, 'xsd', NULL, NULL, NULL, NULL, 'xsd:not_checked', NULL,
            'the file was not checked: ' || i.rej_reason, 'warning', i.source_file, 0
        FROM iati_inputs i WHERE i.folder IS NULL
        UNION ALL
        SELECT i.source_file, {", ".join("c." + quote(f.name) for f in fields)},
            i.source_file AS _file, 1000000000000 + c._ord
        FROM iati_inputs i JOIN code_findings c ON c.file_key = i.folder
        """
    )
