"""Great Expectations 1.x suites for the harmonised tables, built from schema/*.json.

Every constraint a Table Schema states (columns, required, enum, pattern,
minimum/maximum, primary key) becomes one expectation of severity "error";
domain rules that one GX expectation can express are added per table. Each
expectation carries ``meta={"rule": ..., "severity": ...}`` so results can be
reported in our own vocabulary (rule names match :mod:`expectations.schema_checks`);
warning rules also carry GX's own ``severity`` (shown in Data Docs).

Rules that look beyond one row of one table are evaluated on **derived columns**,
computed in SQL over the whole table in DuckDB (window functions, joins to the
other tables) before the runner validates the rows in batches, so a rule over a
group (the shares of one activity) is right whatever batch its rows land in.
Each :class:`DerivedRule` gives its column's SQL over the table and the tables
validated with it (they start with ``_``; :func:`derived_rules` lists them per
table). Sums and medians are taken as pandas takes them (Kahan-compensated sums
in row order, the mean of the two middle values, numpy's log10), so the values,
and the failing rows, are the same floats as before the rules moved to SQL:

- ``sector_shares_sum_to_1`` (error, ``activity_sectors``): ``_share_sum``, the sum
  of ``share`` over the row's activity and vocabulary, must be 1 ± SHARE_TOLERANCE.
  The harmoniser rebases the percentages of every vocabulary to shares summing to 1.
- ``country_shares_at_most_1`` (error, ``activity_countries``): ``_share_sum``, the
  sum over the row's activity, must be at most 1 + SHARE_TOLERANCE. In IATI countries
  and regions together make 100%, so countries alone may sum to less than 1.
- ``recipient_shares_sum_to_1`` (error, ``activity_countries`` and
  ``activity_regions``): ``_recipient_sum``, the sum of ``share`` over the row's
  activity in both tables, must be 1 ± SHARE_TOLERANCE: the harmoniser rebases an
  activity's countries and regions together. Judged only when both tables are
  validated together (one alone cannot tell).
- ``transaction_type_for_version`` (warning, ``transactions``): ``_type_and_version``,
  the pair ``transaction_type|version class of the row's activity`` (the class of
  ``activities.iati_version``: 1.0x, 2.01, 2.02, 2.03), must be one of
  TRANSACTION_TYPES_BY_VERSION's pairs. Types outside the codelist
  (``transaction_type_code``'s business) and activities of an unknown or later version
  are not judged. (One text column checked against a set, not GX's column-pair
  expectation: that one tests row by row in Python, about 250 times slower.)
- ``value_outlier_for_currency`` (warning, ``transactions`` and ``budgets``):
  ``_value_outlier_score``, how far ``log10(|value|)`` lies above the median of its
  currency in robust standard deviations (1.4826 × MAD, at least OUTLIER_MIN_SCALE
  orders of magnitude), must be at most OUTLIER_LIMIT. Zero or missing values and
  currencies with fewer than OUTLIER_MIN_GROUP non-zero values are not judged.
  Only values too large are flagged: they distort totals (unit errors, extra
  zeros), while tiny values are ordinary corrections in real data (-1 GBP, 9 GBP,
  0.01 USD in the fixtures) that cannot.
- ``records_accounted_for`` (error, ``sources``): ``_unaccounted``, ``n_records -
  n_accepted - n_quarantined``, must be 0: every record read from a source is in a
  harmonised table or in quarantine. Rows with a count missing are not judged.
- ``<target>_exists`` (error, every foreign key of schema/<table>.json, e.g.
  ``activity_exists``): ``_<rule>`` is true when the row's key is found in the
  referenced table. Rows with an empty key are not judged.

A derived value is empty (not judged, so the expectation passes on it) where the
table it needs was not given: validating ``transactions`` alone judges neither
``transaction_type_for_version`` nor ``activity_exists``. A failing group rule
(the shares) fails on every row of the failing activity, so the failing rows map
back to the table's own rows. The column-set expectation expects the schema's
fields plus the derived columns; since the runner always adds the latter, it
reports exactly what is missing from or extra in the table itself.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

import duckdb
import great_expectations as gx
import great_expectations.expectations as gxe
import numpy as np
import pandas as pd
import pyarrow as pa
from duckdb.func import PythonUDFType
from great_expectations.expectations.metadata_types import FailureSeverity
from great_expectations.expectations.row_conditions import Column

from assets.harmonise.schema import (
    ACTUAL_DISBURSEMENT_TYPES,
    NAME_TABLES,
    table_schema,
    table_schemas,
)
from assets.warehouse import ROW, literal, quote

Severity = Literal["error", "warning"]

#: IATI 2.0x TransactionType codes (1 incoming funds ... 13 incoming pledge).
TRANSACTION_TYPE_CODES: tuple[str, ...] = tuple(str(code) for code in range(1, 14))

#: TransactionType codes valid in each IATI version (class): 1.0x letter codes are
#: translated to 1-10 by the harmoniser; 2.02 added 11 (incoming commitment), 2.03
#: added 12 (outgoing pledge) and 13 (incoming pledge) (IATI 2.02 / 2.03 changelogs).
TRANSACTION_TYPES_BY_VERSION: dict[str, tuple[str, ...]] = {
    "1.0x": TRANSACTION_TYPE_CODES[:10],
    "2.01": TRANSACTION_TYPE_CODES[:10],
    "2.02": TRANSACTION_TYPE_CODES[:11],
    "2.03": TRANSACTION_TYPE_CODES,
}

#: Shares of one activity may miss their sum by this much (float rounding).
SHARE_TOLERANCE = 0.001
#: Robust z-score (in log10 space) above which a value is implausibly large for its currency.
OUTLIER_LIMIT = 5.0
#: Non-zero values a currency needs before its values are judged.
OUTLIER_MIN_GROUP = 20
#: Smallest scale (orders of magnitude): values up to 10**(LIMIT*MIN_SCALE) = 100,000x
#: the median are never outliers, even where the values are alike (small or zero MAD).
OUTLIER_MIN_SCALE = 1.0
#: 1.4826 × MAD estimates the standard deviation of a normal distribution.
_MAD_TO_SD = 1.4826


def _meta(rule: str, severity: Severity, **extra: Any) -> dict[str, Any]:
    """``extra``: e.g. ``example_columns``, the table's own columns whose values the
    runner reports for a failing row instead of the derived value GX saw."""
    return {"rule": rule, "severity": severity, **extra}


def date_columns(table: str) -> list[str]:
    """Fields of type date (held as ``datetime.date`` objects; compared as datetimes)."""
    return [f["name"] for f in table_schema(table)["fields"] if f["type"] == "date"]


def schema_expectations(table: str, derived: tuple[str, ...] = ()) -> list[gxe.Expectation]:
    """One error-severity expectation per constraint stated in schema/<table>.json.

    ``derived``: columns the runner appends (expected besides the schema's fields).
    """
    schema = table_schema(table)
    fields = schema["fields"]
    expectations: list[gxe.Expectation] = [
        gxe.ExpectTableColumnsToMatchSet(
            column_set=[f["name"] for f in fields] + list(derived),
            exact_match=True,
            meta=_meta("columns", "error"),
        )
    ]
    for spec in fields:
        name = spec["name"]
        constraints = spec.get("constraints", {})
        if constraints.get("required"):
            expectations.append(
                gxe.ExpectColumnValuesToNotBeNull(
                    column=name, meta=_meta(f"required:{name}", "error")
                )
            )
        if "enum" in constraints:
            expectations.append(
                gxe.ExpectColumnValuesToBeInSet(
                    column=name,
                    value_set=list(constraints["enum"]),
                    meta=_meta(f"enum:{name}", "error"),
                )
            )
        if "pattern" in constraints:
            expectations.append(
                gxe.ExpectColumnValuesToMatchRegex(
                    column=name,
                    regex=_anchored(constraints["pattern"]),
                    meta=_meta(f"pattern:{name}", "error"),
                )
            )
        if spec["type"] in {"number", "integer"} and (
            "minimum" in constraints or "maximum" in constraints
        ):
            bounds = "/".join(b for b in ("minimum", "maximum") if b in constraints)
            expectations.append(
                gxe.ExpectColumnValuesToBeBetween(
                    column=name,
                    min_value=constraints.get("minimum"),
                    max_value=constraints.get("maximum"),
                    meta=_meta(f"{bounds}:{name}", "error"),
                )
            )
    key = schema.get("primaryKey")
    if key:
        key_fields = [key] if isinstance(key, str) else list(key)
        rule = f"primary_key:{','.join(key_fields)}"
        if len(key_fields) == 1:
            expectations.append(
                gxe.ExpectColumnValuesToBeUnique(column=key_fields[0], meta=_meta(rule, "error"))
            )
        else:
            expectations.append(
                gxe.ExpectCompoundColumnsToBeUnique(
                    column_list=key_fields, meta=_meta(rule, "error")
                )
            )
    return expectations


def _anchored(pattern: str) -> str:
    """Table Schema patterns match the whole value; GX regexes search, so anchor them."""
    return pattern if pattern.startswith("^") and pattern.endswith("$") else f"^(?:{pattern})$"


def _ordered(rule: str, first: str, last: str, severity: Severity = "warning") -> gxe.Expectation:
    """``first <= last`` where both are present (rows with a gap are not judged)."""
    return gxe.ExpectColumnPairValuesAToBeGreaterThanB(
        column_A=last,
        column_B=first,
        or_equal=True,
        ignore_row_if="either_value_is_missing",
        meta=_meta(rule, severity),
    )


def _activities(today: dt.date) -> list[gxe.Expectation]:
    return [_ordered("activity_dates_ordered", "start_date", "end_date")]


def _transactions(today: dt.date) -> list[gxe.Expectation]:
    return [
        gxe.ExpectColumnValuesToBeInSet(
            column="transaction_type",
            value_set=list(TRANSACTION_TYPE_CODES),
            meta=_meta("transaction_type_code", "error"),
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="transaction_date",
            max_value=dt.datetime.combine(today, dt.time()),
            row_condition=Column("transaction_type").is_in(list(ACTUAL_DISBURSEMENT_TYPES)),
            meta=_meta("no_future_disbursement", "warning"),
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column="value_usd",
            row_condition=Column("usd_rate").is_not_null(),
            meta=_meta("value_usd_where_rate", "error"),
        ),
    ]


def _budgets(today: dt.date) -> list[gxe.Expectation]:
    return [_ordered("budget_period_ordered", "period_start", "period_end")]


def _results(today: dt.date) -> list[gxe.Expectation]:
    return [_ordered("result_years_ordered", "baseline_year", "target_year")]


def next_verdict_change(table: str, today: dt.date) -> str | None:
    """For the table whose suite depends on the day (``transactions``: no disbursement in
    the future), an SQL aggregate over some of its rows, as the runner validates them
    (dates as timestamps): the first day after ``today`` on which their verdict can
    change, the earliest actual disbursement dated later (NULL: none). Until that day
    the rows give the same outcome every day. None for every other table."""
    if table != "transactions":
        return None
    return (
        f"min(transaction_date) FILTER (WHERE transaction_type IN "
        f"({_codes(ACTUAL_DISBURSEMENT_TYPES)}) AND transaction_date > "
        f"CAST({literal(today.isoformat())} AS TIMESTAMP))"
    )


#: Domain rules per table, beyond what the schema states.
DOMAIN_RULES: dict[str, Callable[[dt.date], list[gxe.Expectation]]] = {
    "activities": _activities,
    "transactions": _transactions,
    "budgets": _budgets,
    "results": _results,
}


# -- rules on derived columns ------------------------------------------------------------


@dataclass(frozen=True)
class Tables:
    """What a derived column is computed from: the table being validated (a view of the
    connection, alias ``t`` in :attr:`Derived.expression`, with its row numbers
    :data:`ROW`) and every table validated with it, by name, with its columns."""

    table: str
    given: Mapping[str, tuple[str, ...]]

    @property
    def columns(self) -> tuple[str, ...]:
        """The table's own columns, in its order."""
        return tuple(self.given[self.table])

    def has(self, table: str, columns: Iterable[str]) -> bool:
        return table in self.given and set(columns) <= set(self.given[table])


@dataclass(frozen=True)
class Derived:
    """A derived column in SQL: ``expression`` over the table (alias ``t``) and the
    relations ``joins`` add (``LEFT JOIN ... AS <alias> ON ...`` on the table's rows)."""

    expression: str
    joins: tuple[str, ...] = ()


#: Computes a derived column: (the tables, a unique alias for its joins) -> its SQL.
Compute = Callable[[Tables, str], Derived]


@dataclass(frozen=True)
class DerivedRule:
    """A rule evaluated on a derived ``column`` (of SQL type ``sql_type``) that
    ``compute`` gives (empty where not judged)."""

    rule: str
    column: str
    sql_type: str
    compute: Compute
    expectation: Callable[[], gxe.Expectation]


def _empty(sql_type: str) -> Derived:
    return Derived(f"CAST(NULL AS {sql_type})")


def unaccounted(tables: Tables, alias: str) -> Derived:
    """Per source: records read but neither accepted nor quarantined (negative: too many)."""
    counts = ("n_records", "n_accepted", "n_quarantined")
    if not tables.has(tables.table, counts):
        return _empty("BIGINT")
    return Derived(" - ".join(f"TRY_CAST(t.{quote(c)} AS BIGINT)" for c in counts))


def share_sums(keys: tuple[str, ...]) -> Compute:
    """Per row: the sum of ``share`` over the rows with the same ``keys`` (summed in row
    order with Kahan's compensation, as pandas sums a group: the same float)."""

    def compute(tables: Tables, alias: str) -> Derived:
        if not tables.has(tables.table, ("share", *keys)):
            return _empty("DOUBLE")
        names = ", ".join(quote(k) for k in keys)
        present = " AND ".join(f"{quote(k)} IS NOT NULL" for k in keys)
        match = " AND ".join(f"{alias}.{quote(k)} = t.{quote(k)}" for k in keys)
        share = 'TRY_CAST("share" AS DOUBLE)'
        return Derived(
            f"CASE WHEN {alias}.n > 0 THEN {alias}.s END",
            (
                f"LEFT JOIN (SELECT {names}, fsum({share} ORDER BY {ROW}) AS s, count({share}) "
                f"AS n FROM {quote(tables.table)} WHERE {present} GROUP BY {names}) AS {alias} "
                f"ON {match}",
            ),
        )

    return compute


#: The tables an activity's recipient shares are spread over (countries, then regions).
RECIPIENT_TABLES = ("activity_countries", "activity_regions")


def recipient_sums(tables: Tables, alias: str) -> Derived:
    """Per row of a recipient table: the sum of ``share`` over the row's activity in every
    recipient table (countries first, each in row order, Kahan-compensated); empty
    unless both are validated with it."""
    if not all(tables.has(name, ("activity_id", "share")) for name in RECIPIENT_TABLES):
        return _empty("DOUBLE")
    union = " UNION ALL ".join(
        f'SELECT activity_id, TRY_CAST("share" AS DOUBLE) AS share, {part} AS part, '
        f"{ROW} AS r FROM {quote(name)} WHERE activity_id IS NOT NULL"
        for part, name in enumerate(RECIPIENT_TABLES)
    )
    return Derived(
        f"CASE WHEN {alias}.n > 0 THEN {alias}.s END",
        (
            f"LEFT JOIN (SELECT activity_id, fsum(share ORDER BY part, r) AS s, count(share) "
            f"AS n FROM ({union}) GROUP BY activity_id) AS {alias} "
            f"ON {alias}.activity_id = t.activity_id",
        ),
    )


def version_class(version: Any) -> str | None:
    """An ``iati_version`` as a key of TRANSACTION_TYPES_BY_VERSION (None: unknown)."""
    if version is None or version is pd.NA or (isinstance(version, float) and version != version):
        return None
    match = re.fullmatch(r"\s*(\d+)\.(\d+)\s*", str(version))
    if not match:
        return None
    major, minor = int(match.group(1)), int(match.group(2))
    key = "1.0x" if major == 1 else f"{major}.{minor:02d}"
    return key if key in TRANSACTION_TYPES_BY_VERSION else None


#: SQL functions :func:`register_functions` adds to a connection.
VERSION_CLASS = "cdcompact_version_class"
LOG10 = "cdcompact_log10"


def _log10(values: pa.ChunkedArray) -> pa.Array:
    """numpy's log10 (DuckDB's differs in the last bit for about 5% of values)."""
    return pa.array(np.log10(values.to_numpy(zero_copy_only=False)), pa.float64())


def register_functions(con: duckdb.DuckDBPyConnection) -> None:
    """The Python functions the derived columns call: :func:`version_class` (on the
    distinct versions only) and numpy's log10."""
    for name in (VERSION_CLASS, LOG10):
        with contextlib.suppress(duckdb.InvalidInputException):  # not registered yet
            con.remove_function(name)
    con.create_function(VERSION_CLASS, version_class, ["VARCHAR"], "VARCHAR")
    con.create_function(LOG10, _log10, ["DOUBLE"], "DOUBLE", type=PythonUDFType.ARROW)


def _codes(codes: Iterable[str]) -> str:
    return ", ".join(literal(code) for code in codes)


def activity_versions(tables: Tables, alias: str) -> Derived:
    """Per transaction with a TransactionType code: ``type|version``, the version being the
    IATI version class of its activity (the first row of that activity in ``activities``)."""
    if not tables.has(tables.table, ("activity_id", "transaction_type")) or not tables.has(
        "activities", ("activity_id", "iati_version")
    ):
        return _empty("VARCHAR")
    # Codes outside the codelist are the concern of transaction_type_code, not this rule.
    return Derived(
        f"CASE WHEN t.transaction_type IN ({_codes(TRANSACTION_TYPE_CODES)}) "
        f"THEN CAST(t.transaction_type AS VARCHAR) || '|' || {alias}.version END",
        (
            "LEFT JOIN (SELECT first_rows.activity_id, classes.version FROM (SELECT "
            'activity_id, iati_version FROM "activities" WHERE activity_id IS NOT NULL '
            f"QUALIFY row_number() OVER (PARTITION BY activity_id ORDER BY {ROW}) = 1) "
            "AS first_rows JOIN (SELECT iati_version, "
            f"{VERSION_CLASS}(CAST(iati_version AS VARCHAR)) AS version FROM (SELECT DISTINCT "
            'iati_version FROM "activities")) AS classes USING (iati_version) '
            f"WHERE classes.version IS NOT NULL) AS {alias} "
            f"ON {alias}.activity_id = t.activity_id",
        ),
    )


def _median(values: str, source: str) -> str:
    """Per currency: the median of ``values`` in ``source`` as pandas takes it (the middle
    value, or the mean of the two middle values), and the group's size."""
    # Each value's place in its currency is its place in one sort of every value by
    # currency, less the values of the currencies before it: a window per currency holds
    # a whole currency in memory, and the largest ones outgrow the memory limit.
    values_of = f"SELECT currency, {values} AS v FROM {source}"
    return (
        f"SELECT currency, (min(v) FILTER (WHERE i = (n + 1) // 2) + max(v) FILTER "
        f"(WHERE i = n // 2 + 1)) / 2 AS median, any_value(n) AS n FROM ("
        f"SELECT r.currency, r.v, r.g - s.before AS i, s.n FROM ("
        f"SELECT currency, v, row_number() OVER (ORDER BY currency, v) AS g FROM ({values_of})"
        f") AS r JOIN (SELECT currency, count(*) AS n, sum(count(*)) OVER (ORDER BY currency) "
        f"- count(*) AS before FROM ({values_of}) GROUP BY currency) AS s USING (currency)"
        f") GROUP BY currency"
    )


def outlier_scores(tables: Tables, alias: str) -> Derived:
    """Per row: log10|value| - the median of its currency, in robust standard deviations
    (negative: below the median)."""
    if not tables.has(tables.table, ("value", "currency")):
        return _empty("DOUBLE")
    value = 'TRY_CAST("value" AS DOUBLE)'
    judged = (
        f"SELECT {ROW}, CAST(currency AS VARCHAR) AS currency, {LOG10}(abs({value})) AS lg "
        f"FROM {quote(tables.table)} WHERE isfinite({value}) AND {value} <> 0 "
        "AND currency IS NOT NULL"
    )
    return Derived(
        f"{alias}.score",
        (
            f"LEFT JOIN (WITH judged AS ({judged}), centre AS ({_median('lg', 'judged')}), "
            "deviations AS (SELECT judged.*, judged.lg - centre.median AS deviation, centre.n "
            "FROM judged JOIN centre USING (currency)), "
            f"spread AS ({_median('abs(deviation)', 'deviations')}) "
            f"SELECT {ROW}, CASE WHEN deviations.n >= {OUTLIER_MIN_GROUP} THEN deviation / "
            f"greatest(CAST({_MAD_TO_SD!r} AS DOUBLE) * spread.median, "
            f"CAST({float(OUTLIER_MIN_SCALE)!r} AS DOUBLE)) END AS score "
            f"FROM deviations JOIN spread USING (currency)) AS {alias} "
            f"ON {alias}.{ROW} = t.{ROW}",
        ),
    )


def key_exists(fields: tuple[str, ...], target: str, target_fields: tuple[str, ...]) -> Compute:
    """Per row: whether ``fields`` are found as ``target_fields`` in table ``target``."""

    def compute(tables: Tables, alias: str) -> Derived:
        if not tables.has(tables.table, fields) or not tables.has(target, target_fields):
            return _empty("BOOLEAN")
        keys = [f"k{i}" for i in range(len(fields))]
        found = ", ".join(f"{quote(f)} AS {k}" for f, k in zip(target_fields, keys, strict=True))
        known = " AND ".join(f"{quote(f)} IS NOT NULL" for f in target_fields)
        match = " AND ".join(
            f"{alias}.{k} = t.{quote(f)}" for f, k in zip(fields, keys, strict=True)
        )
        present = " AND ".join(f"t.{quote(f)} IS NOT NULL" for f in fields)
        return Derived(
            f"CASE WHEN {present} THEN {alias}.k0 IS NOT NULL END",
            (
                f"LEFT JOIN (SELECT DISTINCT {found} FROM {quote(target)} WHERE {known}) "
                f"AS {alias} ON {match}",
            ),
        )

    return compute


def _singular(table: str) -> str:
    if table.endswith("ies"):
        return table[:-3] + "y"
    return table[:-1] if table.endswith("s") else table


def _foreign_key_rules(table: str) -> list[DerivedRule]:
    rules = []
    for foreign in table_schema(table).get("foreignKeys", []):
        fields = foreign["fields"]
        fields = (fields,) if isinstance(fields, str) else tuple(fields)
        target = foreign["reference"]["resource"]
        if target in NAME_TABLES:  # made when publishing, where publish.verify checks them
            continue
        target_fields = foreign["reference"]["fields"]
        target_fields = (target_fields,) if isinstance(target_fields, str) else tuple(target_fields)
        rule = f"{_singular(target)}_exists"
        if fields != target_fields:
            rule = f"{rule}:{','.join(fields)}"
        column = "_" + re.sub(r"\W", "_", rule)
        rules.append(
            DerivedRule(
                rule,
                column,
                "BOOLEAN",
                key_exists(fields, target, target_fields),
                _in_true(column, rule, fields, target, target_fields),
            )
        )
    return rules


def _in_true(
    column: str,
    rule: str,
    fields: tuple[str, ...],
    target: str,
    target_fields: tuple[str, ...],
) -> Callable[[], gxe.Expectation]:
    def expectation() -> gxe.Expectation:
        return gxe.ExpectColumnValuesToBeInSet(
            column=column,
            value_set=[True],
            meta=_meta(rule, "error", example_columns=list(fields)),
            notes=f"`{column}`: whether ({', '.join(fields)}) is found as "
            f"({', '.join(target_fields)}) in `{target}`; empty (not judged) where the key "
            f"is empty or `{target}` was not validated with this table.",
        )

    return expectation


def _sector_shares() -> gxe.Expectation:
    return gxe.ExpectColumnValuesToBeBetween(
        column="_share_sum",
        min_value=1 - SHARE_TOLERANCE,
        max_value=1 + SHARE_TOLERANCE,
        meta=_meta("sector_shares_sum_to_1", "error"),
        notes="`_share_sum`: the sum of `share` over the row's activity and vocabulary; "
        "every row of a failing activity and vocabulary fails.",
    )


def _country_shares() -> gxe.Expectation:
    return gxe.ExpectColumnValuesToBeBetween(
        column="_share_sum",
        max_value=1 + SHARE_TOLERANCE,
        meta=_meta("country_shares_at_most_1", "error"),
        notes="`_share_sum`: the sum of `share` over the row's activity (countries and "
        "regions together make 100%, so countries alone may make less); every row of a "
        "failing activity fails.",
    )


def _recipient_shares() -> gxe.Expectation:
    return gxe.ExpectColumnValuesToBeBetween(
        column="_recipient_sum",
        min_value=1 - SHARE_TOLERANCE,
        max_value=1 + SHARE_TOLERANCE,
        meta=_meta("recipient_shares_sum_to_1", "error"),
        notes="`_recipient_sum`: the sum of `share` over the row's activity in "
        "`activity_countries` and `activity_regions` (countries and regions share the "
        "activity); empty (not judged) unless both tables are validated together. Every "
        "row of a failing activity fails.",
    )


_RECIPIENT_RULE = DerivedRule(
    "recipient_shares_sum_to_1", "_recipient_sum", "DOUBLE", recipient_sums, _recipient_shares
)


def _type_for_version() -> gxe.Expectation:
    return gxe.ExpectColumnValuesToBeInSet(
        column="_type_and_version",
        value_set=[
            f"{code}|{version}"
            for version, codes in TRANSACTION_TYPES_BY_VERSION.items()
            for code in codes
        ],
        meta=_meta("transaction_type_for_version", "warning"),
        notes="`_type_and_version`: the transaction's type and the IATI version (class) of "
        "its activity, as `type|version`; 11 exists from 2.02, 12 and 13 from 2.03. Not "
        "judged without `activities`.",
    )


def _value_outlier() -> gxe.Expectation:
    return gxe.ExpectColumnValuesToBeBetween(
        column="_value_outlier_score",
        max_value=OUTLIER_LIMIT,
        meta=_meta("value_outlier_for_currency", "warning", example_columns=["currency", "value"]),
        notes="`_value_outlier_score`: (log10(|value|) - median for the currency) / "
        f"max(1.4826 MAD, {OUTLIER_MIN_SCALE}); only values too large fail. Zero values and "
        f"currencies with fewer than {OUTLIER_MIN_GROUP} non-zero values are not judged.",
    )


def _records_accounted() -> gxe.Expectation:
    return gxe.ExpectColumnValuesToBeBetween(
        column="_unaccounted",
        min_value=0,
        max_value=0,
        meta=_meta(
            "records_accounted_for",
            "error",
            example_columns=["n_records", "n_accepted", "n_quarantined"],
        ),
        notes="`_unaccounted`: `n_records - n_accepted - n_quarantined`; every record read "
        "must be accepted or quarantined, none twice.",
    )


_OUTLIER_RULE = DerivedRule(
    "value_outlier_for_currency",
    "_value_outlier_score",
    "DOUBLE",
    outlier_scores,
    _value_outlier,
)

_RULES: dict[str, list[DerivedRule]] = {
    "sources": [
        DerivedRule(
            "records_accounted_for", "_unaccounted", "BIGINT", unaccounted, _records_accounted
        )
    ],
    "activity_sectors": [
        DerivedRule(
            "sector_shares_sum_to_1",
            "_share_sum",
            "DOUBLE",
            share_sums(("activity_id", "vocabulary")),
            _sector_shares,
        )
    ],
    "activity_countries": [
        DerivedRule(
            "country_shares_at_most_1",
            "_share_sum",
            "DOUBLE",
            share_sums(("activity_id",)),
            _country_shares,
        ),
        _RECIPIENT_RULE,
    ],
    "activity_regions": [_RECIPIENT_RULE],
    "transactions": [
        DerivedRule(
            "transaction_type_for_version",
            "_type_and_version",
            "VARCHAR",
            activity_versions,
            _type_for_version,
        ),
        _OUTLIER_RULE,
    ],
    "budgets": [_OUTLIER_RULE],
}


@cache
def derived_rules(table: str) -> tuple[DerivedRule, ...]:
    """The rules of ``table`` on derived columns: domain rules, then foreign keys."""
    return tuple(_RULES.get(table, [])) + tuple(_foreign_key_rules(table))


def derived_columns(table: str) -> tuple[str, ...]:
    """The derived columns the runner adds to ``table``, in order."""
    return tuple(dict.fromkeys(rule.column for rule in derived_rules(table)))


def has_suite(table: str) -> bool:
    """Whether there is a suite for ``table`` (a schema/<table>.json)."""
    return table in table_schemas()


def build_suite(table: str, today: dt.date | None = None) -> gx.ExpectationSuite:
    """The suite for one harmonised table: schema constraints plus domain rules.

    ``today`` bounds date rules that depend on the calendar (default: today). The
    suite expects the derived columns of :func:`derived_columns` besides the schema's fields.
    """
    day = today or dt.date.today()
    domain_rules = DOMAIN_RULES.get(table)
    expectations = (
        schema_expectations(table, derived_columns(table))
        + (domain_rules(day) if domain_rules else [])
        + [rule.expectation() for rule in derived_rules(table)]
    )
    for expectation in expectations:
        if (expectation.meta or {}).get("severity") == "warning":
            expectation.severity = FailureSeverity.WARNING
    # Passed to the constructor: add_expectation() needs a data context, this does not.
    return gx.ExpectationSuite(name=f"cdcompact.{table}", expectations=expectations)
