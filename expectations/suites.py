"""Great Expectations 1.x suites for the harmonised tables, built from schema/*.json.

Every constraint a Table Schema states (columns, required, enum, pattern,
minimum/maximum, primary key) becomes one expectation of severity "error";
domain rules that one GX expectation can express are added per table. Each
expectation carries ``meta={"rule": ..., "severity": ...}`` so results can be
reported in our own vocabulary (rule names match :mod:`expectations.schema_checks`).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from typing import Any, Literal

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

import great_expectations as gx
import great_expectations.expectations as gxe
from great_expectations.expectations.row_conditions import Column

from assets.harmonise.schema import table_schema

Severity = Literal["error", "warning"]

#: IATI 2.0x TransactionType codes (1 incoming funds ... 13 incoming pledge).
TRANSACTION_TYPE_CODES: tuple[str, ...] = tuple(str(code) for code in range(1, 14))
#: Disbursement and expenditure: actual flows, which cannot lie in the future.
ACTUAL_DISBURSEMENT_TYPES: tuple[str, ...] = ("3", "4")


def _meta(rule: str, severity: Severity) -> dict[str, Any]:
    return {"rule": rule, "severity": severity}


def date_columns(table: str) -> list[str]:
    """Fields of type date (held as ``datetime.date`` objects; compared as datetimes)."""
    return [f["name"] for f in table_schema(table)["fields"] if f["type"] == "date"]


def schema_expectations(table: str) -> list[gxe.Expectation]:
    """One error-severity expectation per constraint stated in schema/<table>.json."""
    schema = table_schema(table)
    fields = schema["fields"]
    expectations: list[gxe.Expectation] = [
        gxe.ExpectTableColumnsToMatchSet(
            column_set=[f["name"] for f in fields],
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


#: Domain rules per table, beyond what the schema states.
DOMAIN_RULES: dict[str, Callable[[dt.date], list[gxe.Expectation]]] = {
    "activities": _activities,
    "transactions": _transactions,
    "budgets": _budgets,
    "results": _results,
}


def build_suite(table: str, today: dt.date | None = None) -> gx.ExpectationSuite:
    """The suite for one harmonised table: schema constraints plus domain rules.

    ``today`` bounds date rules that depend on the calendar (default: today).
    """
    day = today or dt.date.today()
    domain_rules = DOMAIN_RULES.get(table)
    expectations = schema_expectations(table) + (domain_rules(day) if domain_rules else [])
    # Passed to the constructor: add_expectation() needs a data context, this does not.
    return gx.ExpectationSuite(name=f"cdcompact.{table}", expectations=expectations)
