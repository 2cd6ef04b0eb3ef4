"""Alignment of capacity development (CD) with country priorities and systems, in SQL.

:func:`alignment_links` links activities to the country CD priorities
(``alignment_links``), :func:`alignment_metrics` computes every metric of the
Alignment table of ``docs/metrics.md`` (``alignment_metrics``) per
``country_code`` x ``partner_org_ref`` x ``year`` and for all partners together
(``partner_org_ref`` empty), over the metrics' inputs in a DuckDB connection
(:mod:`assets.metrics.stage`).

Rules (the method of ``method_version`` "1"):

* Money is disbursements and expenditure (transaction types 3 and 4) that count
  toward totals, in USD (``value_usd``; a transaction without a USD value is
  left out). A transaction goes to its own ``recipient_country`` when it states
  one, else it is split by the activity's country ``share``.
* Year: money metrics use the year of ``transaction_date``. Activity-count and
  indicator metrics (``results_framework_use``, ``government_data_use``,
  ``objectives_from_country_framework``, ``parallel_piu_count``,
  ``results_reporting``) use the years in which the CD activity disbursed to
  the country, so every metric of a country-year describes the same activities.
  ``traceability`` uses the year of the incoming-funds transaction.
* Partner: the activity's ``reporting_org_ref``, else the ``partner_org_ref``
  of its declarations (partner-submitted activities; the first one given).
* Declarations apply to the year of their ``period`` (its first four-digit
  year); several declarations of one activity and year are combined (any true
  -> true, else any false -> false, else unknown). No declaration for the year,
  or an empty field, is unknown: the activity is left out of both numerator and
  denominator of that metric, never guessed.
* Indicators are counted once per activity and indicator (``indicator_id``,
  else ``result_id``) whatever the number of reporting periods; a result with
  a ``country_code`` counts for that country only, else for every country of
  its activity. Counts are not split by country share.
* Coverage: ``n_activities`` counts the activities with a known value,
  ``n_activities_eligible`` every activity the metric's definition covers
  (known or not), and ``coverage`` = n_activities ÷ n_activities_eligible
  (empty when none is eligible), so the unknowns left out of a value are always shown.
* Nothing to measure is not a row: a metric has a row for a country, partner and
  year only where its denominator is not 0 (some unit with a known value), and
  ``priority_alignment`` only where the country has a CD priority covering the year
  (``start_year`` <= year <= ``end_year``, an empty bound open). A country that
  reported no priorities, or a year whose activities declared nothing, has no row
  rather than a 0 beside a full coverage.

Sums are pandas' (:mod:`assets.metrics.sql`): the rows of a group in the order of
the transactions and, within one, of the activity's countries.
"""

from __future__ import annotations

import duckdb

from assets.metrics.sql import ORDER, aggregate_in_batches, sum_sql, takes_reduceat, text
from assets.warehouse import literal

METHOD_VERSION = "1"

#: Confidence of each link basis (``alignment_links.confidence``).
CONFIDENCE_PARTNER_DECLARED = 1.0  # the partner listed the priority itself
CONFIDENCE_RESULT_REFERENCE = 0.9  # a result indicator refers to the priority
CONFIDENCE_SECTOR_MATCH = 0.5  # only the CD sector equals the priority's sector

MONEY_TRANSACTION_TYPES = ("3", "4")
INCOMING_FUNDS = "1"
TECHNICAL_COOPERATION_AID_TYPES = ("D01", "D02")
#: Aid types that are programme-based approaches by definition (budget support,
#: basket funds / pooled funding).
PROGRAMME_BASED_AID_TYPES = ("A01", "A02", "B04")
#: Disbursement channels into government (treasury, or a government institution's
#: own account).
GOVERNMENT_CHANNELS = ("1", "2")
#: Organisation types of the public sector (government, local government,
#: other public sector) for an implementing organisation.
GOVERNMENT_ORG_TYPES = ("10", "11", "15")

METRICS: tuple[str, ...] = (
    "cd_share",
    "priority_alignment",
    "results_framework_use",
    "objectives_from_country_framework",
    "government_data_use",
    "coordinated_tc",
    "country_systems_use",
    "on_budget",
    "parallel_piu_count",
    "programme_based",
    "traceability",
    "results_reporting",
)
COUNTRY_SYSTEMS = ("uses_country_pfm", "uses_country_procurement", "uses_country_me")
DECLARED_FLAGS = (
    *COUNTRY_SYSTEMS,
    "on_budget",
    "results_from_country_framework",
    "coordinated",
    "joint_programme",
    "parallel_piu",
)
_KEY = "country_code, partner_org_ref, year"


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(literal(v) for v in values) + ")"


def _countries(con: duckdb.DuckDBPyConnection) -> None:
    """``m_al_countries``: each activity's countries in table order (``pos``, from 1 for
    each activity), equal shares for all of an activity's countries where one share is
    missing."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_al_countries AS
        SELECT activity_id AS activity, country_code AS country,
            row_number() OVER (PARTITION BY activity_id ORDER BY {ORDER}) AS pos,
            CASE WHEN bool_or(share IS NULL) OVER (PARTITION BY activity_id)
                THEN CAST(1 AS DOUBLE) / count(*) OVER (PARTITION BY activity_id)
                ELSE CAST(share AS DOUBLE) END AS share
        FROM m_activity_countries WHERE activity_id IS NOT NULL
        """
    )


def _result_countries(con: duckdb.DuckDBPyConnection) -> None:
    """``m_al_results``: each result of an activity with the countries it is about (its
    own country, else its activity's countries)."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_al_results AS
        WITH r AS (
            SELECT *, {text("activity_id")} AS activity, {text("country_code")} AS own
            FROM m_results
        )
        SELECT r.*, r.own AS target FROM r WHERE r.activity <> '' AND r.own <> ''
        UNION ALL
        SELECT r.*, c.country FROM r JOIN m_al_countries c ON c.activity = r.activity
        WHERE r.activity <> '' AND r.own = ''
        """
    )


def alignment_links(con: duckdb.DuckDBPyConnection) -> None:
    """``m_alignment_links``: one row per activity, country, priority and basis.

    * ``partner_declared`` (confidence 1.0): a declaration's ``priority_ids``,
      for each country of the activity that has that priority;
    * ``result_reference`` (0.9): a result of the activity with a
      ``priority_id`` (or, for an indicator drawn from the country framework,
      a ``reference_code`` that is a priority id of the country);
    * ``sector_match`` (0.5): a CD sector of the activity (DAC 5-digit,
      vocabulary 1) equals the ``sector_code`` of a priority of one of the
      activity's countries.

    Only (country, priority) pairs that exist in ``cd_priorities`` are linked.
    """
    _countries(con)
    _result_countries(con)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_alignment_links AS
        WITH known AS (
            SELECT DISTINCT country_code AS country, priority_id AS priority FROM m_cd_priorities
        ),
        by_sector AS (
            SELECT DISTINCT country_code AS country, {text("sector_code")} AS code,
                priority_id AS priority
            FROM m_cd_priorities WHERE {text("sector_code")} <> ''
        ),
        declared_links AS (
            SELECT p.activity_id AS activity, c.country, p.priority,
                'partner_declared' AS basis, {CONFIDENCE_PARTNER_DECLARED} AS confidence
            FROM (
                SELECT activity_id, unnest(list_filter(
                    list_transform(string_split({text("priority_ids")}, ';'), p -> {text("p")}),
                    p -> p <> '')) AS priority
                FROM m_partner_declarations
            ) p JOIN m_al_countries c ON c.activity = p.activity_id
        ),
        result_links AS (
            SELECT activity, target AS country,
                CASE WHEN {text("priority_id")} = '' AND coalesce(from_country_framework, false)
                    THEN {text("reference_code")} ELSE {text("priority_id")} END AS priority,
                'result_reference' AS basis, {CONFIDENCE_RESULT_REFERENCE} AS confidence
            FROM m_al_results
            WHERE priority <> ''
        ),
        sector_links AS (
            SELECT s.activity_id AS activity, c.country, b.priority,
                'sector_match' AS basis, {CONFIDENCE_SECTOR_MATCH} AS confidence
            FROM m_activity_sectors s
            JOIN m_al_countries c ON c.activity = s.activity_id
            JOIN by_sector b ON b.country = c.country AND b.code = {text("s.code")}
            WHERE coalesce(s.is_cd_sector, false) AND {text("s.vocabulary")} = '1'
                AND s.activity_id IN (
                    SELECT activity_id FROM m_acts WHERE coalesce(is_cd, false))
        ),
        links AS (
            SELECT * FROM declared_links UNION ALL SELECT * FROM result_links
            UNION ALL SELECT * FROM sector_links
        )
        SELECT DISTINCT l.activity AS activity_id, l.country AS country_code,
            l.priority AS priority_id, l.basis, CAST(l.confidence AS DOUBLE) AS confidence
        FROM links l JOIN known k ON k.country = l.country AND k.priority = l.priority
        """
    )


def _context(con: duckdb.DuckDBPyConnection) -> None:
    """The inputs of every metric, resolved once: activities (CD, partner, aid type,
    FTC flag), declarations per activity and year, government implementers, indicators,
    the counted money (``m_al_money``) and the incoming funds (``m_al_incoming``)."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_al_acts AS
        WITH acts AS (
            SELECT activity_id AS activity, coalesce(is_cd, false) AS is_cd,
                {text("reporting_org_ref")} AS partner0,
                {text("default_aid_type")} AS default_aid_type,
                list_contains(list_transform(string_split({text("cd_basis")}, ';'),
                    p -> {text("p")}), 'ftc_flag') AS ftc
            FROM m_acts WHERE activity_id IS NOT NULL
        ),
        declared_partner AS (
            SELECT activity_id AS activity,
                arg_min({text("partner_org_ref")}, {ORDER})
                    FILTER (WHERE {text("partner_org_ref")} <> '') AS partner
            FROM m_partner_declarations WHERE activity_id IS NOT NULL GROUP BY activity_id
        )
        SELECT coalesce(a.activity, d.activity) AS activity,
            coalesce(a.is_cd, false) AS is_cd,
            coalesce(nullif(a.partner0, ''), d.partner, '') AS partner,
            coalesce(a.default_aid_type, '') AS default_aid_type,
            coalesce(a.ftc, false) AS ftc
        FROM acts a FULL OUTER JOIN declared_partner d ON d.activity = a.activity
        """
    )
    flags = ", ".join(f"bool_or({flag}) AS {flag}" for flag in DECLARED_FLAGS)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_al_declared AS
        SELECT activity, year, {flags} FROM (
            SELECT *, activity_id AS activity, m_period_year(period) AS year
            FROM m_partner_declarations WHERE activity_id IS NOT NULL
        )
        WHERE year IS NOT NULL GROUP BY activity, year
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_al_government AS
        SELECT DISTINCT activity_id AS activity FROM m_participating_orgs
        WHERE {text("role")} = '4' AND {text("org_type")} IN {_in(GOVERNMENT_ORG_TYPES)}
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_al_indicators AS
        SELECT activity, target AS country,
            coalesce(nullif({text("indicator_id")}, ''), {text("result_id")}) AS indicator,
            from_country_framework, government_data_source,
            baseline_value IS NOT NULL AND NOT isnan(baseline_value)
                AND target_value IS NOT NULL AND NOT isnan(target_value) AS baseline_and_target
        FROM m_al_results
        """
    )
    # the transactions' fields as the rules read them, and their countries: their own,
    # else their activity's (table order)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_al_tx AS
        SELECT {ORDER}, activity_id, transaction_date, CAST(value_usd AS DOUBLE) AS value_usd,
            counts_toward_totals, {text("transaction_type")} AS type,
            {text("recipient_country")} AS own, {text("aid_type")} AS aid_type,
            {text("disbursement_channel")} AS channel, {text("provider_activity_id")} AS provider
        FROM m_transactions
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_al_allocation AS
        SELECT {ORDER}, own AS country, CAST(1 AS DOUBLE) AS share, 0 AS pos
        FROM m_al_tx WHERE own <> ''
        UNION ALL
        SELECT t.{ORDER}, c.country, c.share, c.pos
        FROM m_al_tx t JOIN m_al_countries c ON c.activity = t.activity_id WHERE t.own = ''
        """
    )
    allocated = f"""
        FROM m_al_tx t JOIN m_al_allocation c USING ({ORDER})
        LEFT JOIN m_al_acts a ON a.activity = t.activity_id
    """
    # a money row's place: its transaction's, then its country's in the activity (0: the
    # transaction's own), as one number (a row number would sort every row again)
    row = con.execute("SELECT coalesce(max(pos), 0) + 1 FROM m_al_countries").fetchone()
    place = f"t.{ORDER} * {int(row[0]) if row else 1} + c.pos"
    aid_type = "coalesce(nullif(t.aid_type, ''), a.default_aid_type, '')"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_al_money AS
        SELECT c.country AS country_code, coalesce(a.partner, '') AS partner_org_ref,
            year(t.transaction_date) AS year, t.activity_id AS activity,
            t.value_usd * c.share AS usd, coalesce(a.is_cd, false) AS is_cd,
            {aid_type} IN {_in(TECHNICAL_COOPERATION_AID_TYPES)} OR coalesce(a.ftc, false) AS tc,
            {aid_type} IN {_in(PROGRAMME_BASED_AID_TYPES)} AS pba_aid_type,
            t.channel IN {_in(GOVERNMENT_CHANNELS)}
                OR t.activity_id IN (SELECT activity FROM m_al_government) AS government,
            {place} AS pos
        {allocated}
        WHERE t.type IN {_in(MONEY_TRANSACTION_TYPES)} AND coalesce(t.counts_toward_totals, false)
            AND t.value_usd IS NOT NULL AND NOT isnan(t.value_usd)
            AND t.transaction_date IS NOT NULL
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_al_incoming AS
        SELECT c.country AS country_code, coalesce(a.partner, '') AS partner_org_ref,
            year(t.transaction_date) AS year, t.activity_id AS activity,
            CAST(1 AS DOUBLE) AS weight, t.provider <> '' AS hit,
            {place} AS pos
        {allocated}
        WHERE t.type = {literal(INCOMING_FUNDS)} AND t.transaction_date IS NOT NULL
            AND coalesce(a.is_cd, false)
        """
    )
    # the CD activities active in a country, partner and year (first seen first)
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE m_al_active AS
        SELECT country_code, partner_org_ref, year, activity, min(pos) AS pos
        FROM m_al_money WHERE is_cd GROUP BY ALL
        """
    )


def _declaration(flag: str, activity: str, year: str) -> str:
    return (
        f"(SELECT d.{flag} FROM m_al_declared d WHERE d.activity = {activity} AND d.year = {year})"
    )


def _units(con: duckdb.DuckDBPyConnection) -> None:
    """``m_al_units``: per metric, the units (money rows, indicators, activities or
    incoming funds) with their weight and hit (true, false or unknown), ``pos`` their order."""
    money_units = {
        "cd_share": ("true", "is_cd"),
        "priority_alignment": (
            "is_cd",
            "EXISTS (SELECT 1 FROM m_alignment_links l "
            "WHERE l.activity_id = m.activity AND l.country_code = m.country_code)",
        ),
        "coordinated_tc": ("is_cd AND tc", "d.coordinated"),
        "on_budget": ("is_cd AND government", "d.on_budget"),
        "programme_based": ("is_cd", "CASE WHEN pba_aid_type THEN true ELSE d.joint_programme END"),
        **{f"system:{flag}": ("is_cd", f"d.{flag}") for flag in COUNTRY_SYSTEMS},
        "system:known": (
            "is_cd",
            "CASE WHEN "
            + " OR ".join(f"d.{flag} IS NOT NULL" for flag in COUNTRY_SYSTEMS)
            + " THEN true END",
        ),
    }
    parts = [
        f"""
        SELECT {literal(metric)} AS metric, country_code, partner_org_ref, m.year, m.activity,
            usd AS weight, {hit} AS hit, pos
        FROM m_al_money m
        LEFT JOIN m_al_declared d ON d.activity = m.activity AND d.year = m.year
        WHERE {where}
        """
        for metric, (where, hit) in money_units.items()
    ]
    indicators = {
        "results_framework_use": "from_country_framework",
        "government_data_use": "government_data_source",
    }
    parts += [
        f"""
        SELECT {literal(metric)}, a.country_code, a.partner_org_ref, a.year, a.activity,
            CAST(1 AS DOUBLE), bool_or(i.{field}), min(a.pos)
        FROM m_al_active a JOIN m_al_indicators i
            ON i.activity = a.activity AND i.country = a.country_code
        GROUP BY a.country_code, a.partner_org_ref, a.year, a.activity, i.indicator
        """
        for metric, field in indicators.items()
    ]
    per_activity = {
        "objectives_from_country_framework": (
            "CASE WHEN d.results_from_country_framework OR i.framework THEN true "
            "WHEN d.results_from_country_framework IS NOT NULL OR i.framework IS NOT NULL "
            "THEN false END"
        ),
        "parallel_piu_count": "d.parallel_piu",
        "results_reporting": "coalesce(i.baseline_and_target, false)",
    }
    parts += [
        f"""
        SELECT {literal(metric)}, a.country_code, a.partner_org_ref, a.year, a.activity,
            CAST(1 AS DOUBLE), {hit}, a.pos
        FROM m_al_active a
        LEFT JOIN m_al_declared d ON d.activity = a.activity AND d.year = a.year
        LEFT JOIN (
            SELECT activity, country, bool_or(from_country_framework) AS framework,
                bool_or(baseline_and_target) AS baseline_and_target
            FROM m_al_indicators GROUP BY activity, country
        ) i ON i.activity = a.activity AND i.country = a.country_code
        """
        for metric, hit in per_activity.items()
    ]
    parts.append(
        """
        SELECT 'traceability', country_code, partner_org_ref, year, activity, weight, hit, pos
        FROM m_al_incoming
        """
    )
    con.execute("CREATE OR REPLACE TEMP TABLE m_al_units AS " + " UNION ALL ".join(parts))
    # each unit counted for its partner, and again for all partners (partner ''), as the
    # pandas code concatenated them: ``pos`` is the row's place in that frame (a unit's
    # ``pos`` is below 2^62: a row number times the most countries of an activity)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW m_al_both AS
        SELECT metric, {_KEY}, activity, hit,
            CASE WHEN hit THEN weight ELSE CAST(0 AS DOUBLE) END AS num,
            CASE WHEN hit IS NOT NULL THEN weight ELSE CAST(0 AS DOUBLE) END AS den,
            half * {1 << 62} + pos AS pos
        FROM (
            SELECT *, 0 AS half FROM m_al_units
            UNION ALL
            SELECT * REPLACE ('' AS partner_org_ref), 1 AS half FROM m_al_units
        )
        """
    )


#: The units weighed in money (usd): their sums are pandas' (order and all). The other
#: units weigh 1, and a sum of whole numbers is exact whatever the order.
MONEY_UNITS = (
    "cd_share",
    "priority_alignment",
    "coordinated_tc",
    "on_budget",
    "programme_based",
    *(f"system:{flag}" for flag in COUNTRY_SYSTEMS),
)


def _aggregate(con: duckdb.DuckDBPyConnection) -> None:
    """``m_al_aggregates``: per metric (and country system) and group, the sums of the
    hits' and the known units' weights, the known and the eligible activities. Each
    metric's units were one frame in the pandas code: whether it summed them pairwise is
    decided metric by metric."""
    money = f"metric IN ({', '.join(literal(m) for m in MONEY_UNITS)})"
    reduceat = takes_reduceat(
        con, f"(SELECT * FROM m_al_both WHERE {money})",
        ["country_code", "partner_org_ref", "year"], ["num", "den"],
        sort=False, partition="metric",
    )  # fmt: skip
    counts = (
        "count(DISTINCT activity) FILTER (WHERE hit IS NOT NULL) AS n_activities, "
        "count(DISTINCT activity) AS n_activities_eligible"
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_al_aggregates AS
        SELECT metric, {_KEY}, sum(num) AS numerator, sum(den) AS denominator, {counts}
        FROM m_al_both WHERE NOT {money} GROUP BY metric, {_KEY}
        """
    )
    for pairwise in (False, True):
        metrics = [m for m, flag in reduceat.items() if flag == pairwise]
        if not metrics:
            continue
        aggregate_in_batches(
            con,
            "m_al_aggregates",
            f"(SELECT * FROM m_al_both WHERE metric IN ({', '.join(literal(m) for m in metrics)}))",
            ["metric", "country_code", "partner_org_ref", "year"],
            f"""
            metric, {_KEY}, {sum_sql("num", pairwise)} AS numerator,
                {sum_sql("den", pairwise)} AS denominator, {counts}
            """,
            append=True,
        )


def alignment_metrics(con: duckdb.DuckDBPyConnection, method_version: str = METHOD_VERSION) -> None:
    """``m_alignment_metrics``: every Alignment metric per country, partner and year, and
    for all partners together (``partner_org_ref`` empty), each with its numerator,
    denominator, activities and coverage (needs ``m_alignment_links``)."""
    _context(con)
    _units(con)
    _aggregate(con)
    metric_order = " ".join(
        f"WHEN {literal(metric)} THEN {index}" for index, metric in enumerate(METRICS)
    )
    zero = "CAST(0 AS DOUBLE)"
    systems = [f"s{index}" for index in range(len(COUNTRY_SYSTEMS))]

    def system_value(alias: str) -> str:
        return (
            f"CASE WHEN coalesce({alias}.denominator, 0) <> 0 "
            f"THEN {alias}.numerator / {alias}.denominator END"
        )

    numerator = zero
    denominator = zero
    for alias in systems:
        numerator = f"({numerator} + coalesce({system_value(alias)}, {zero}))"
        denominator = f"({denominator} + CAST({system_value(alias)} IS NOT NULL AS DOUBLE))"
    system_joins = "\n".join(
        f"LEFT JOIN m_al_aggregates {alias} ON {alias}.metric = 'system:{flag}' "
        f"AND {alias}.country_code = g.country_code "
        f"AND {alias}.partner_org_ref = g.partner_org_ref AND {alias}.year = g.year"
        for alias, flag in zip(systems, COUNTRY_SYSTEMS, strict=True)
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE m_alignment_metrics AS
        WITH groups AS (
            SELECT DISTINCT {_KEY} FROM (
                SELECT {_KEY} FROM m_al_money UNION ALL SELECT {_KEY} FROM m_al_incoming
                UNION ALL SELECT country_code, '', year FROM m_al_money
                UNION ALL SELECT country_code, '', year FROM m_al_incoming
            )
        ),
        metrics AS (SELECT unnest({[*METRICS]}) AS metric),
        plain AS (
            SELECT g.*, m.metric,
                coalesce(a.numerator, {zero}) AS numerator,
                coalesce(a.denominator, {zero}) AS denominator,
                coalesce(a.n_activities, 0) AS n_activities,
                coalesce(a.n_activities_eligible, 0) AS n_activities_eligible
            FROM groups g CROSS JOIN metrics m
            LEFT JOIN m_al_aggregates a ON a.metric = m.metric
                AND a.country_code = g.country_code AND a.partner_org_ref = g.partner_org_ref
                AND a.year = g.year
            WHERE m.metric <> 'country_systems_use'
        ),
        systems AS (
            SELECT g.*, 'country_systems_use' AS metric,
                {numerator} AS numerator, {denominator} AS denominator,
                coalesce(k.n_activities, 0) AS n_activities,
                coalesce(k.n_activities_eligible, 0) AS n_activities_eligible
            FROM groups g
            {system_joins}
            LEFT JOIN m_al_aggregates k ON k.metric = 'system:known'
                AND k.country_code = g.country_code AND k.partner_org_ref = g.partner_org_ref
                AND k.year = g.year
        ),
        rows AS (SELECT * FROM plain UNION ALL SELECT * FROM systems)
        SELECT country_code, partner_org_ref, year, metric, numerator, denominator,
            CASE WHEN denominator = 0 THEN NULL
                WHEN metric = 'parallel_piu_count' THEN numerator
                ELSE numerator / denominator END AS value,
            n_activities, n_activities_eligible,
            CASE WHEN n_activities_eligible <> 0
                THEN CAST(n_activities AS DOUBLE) / n_activities_eligible END AS coverage,
            {literal(method_version)} AS method_version,
            CASE metric {metric_order} END AS _metric
        FROM rows r
        WHERE denominator <> 0 AND (metric <> 'priority_alignment' OR EXISTS (
            SELECT 1 FROM m_cd_priorities p WHERE p.country_code = r.country_code
                AND coalesce(p.start_year <= r.year, true)
                AND coalesce(p.end_year >= r.year, true)))
        """
    )
