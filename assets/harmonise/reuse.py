"""Nights when nothing changed: the combined tables and their check results are reused.

Combining every dataset, computing the metrics and validating the tables cost
the same whether or not an input changed. :func:`inputs_fingerprint` digests
everything the combined tables depend on:

- every fetched dataset: its key, the sha256 of its good copy, whether that
  copy is extracted and checked against tonight's IATI schemas and codelists, and
  the error of a failed fetch or the reason a dataset is missing from its source;
- every processed submission's marker and the submissions index;
- the reference data and the rules (the reference fingerprint), the metric
  settings;
- the code and the schema that compute them (every ``*.py`` of ``assets/`` and
  ``expectations/``, every ``schema/*.json``).

When the fingerprint equals the one saved after the last complete combining
step, and the only calendar-dependent expectation (no disbursement dated in
the future) cannot have changed its outcome since (no disbursement is dated
between the day of that validation and today), the tables on disk are the
tables a full recomputation would give. Only the ``sources`` table is
refreshed: when each file was downloaded and checked, and ``download``
(:func:`assets.harmonise.combined.refreshed_sources`); a file's ``status`` stays.

When only the exchange rates changed (the fingerprint without them is the
saved one), only the money is computed again
(:func:`assets.harmonise.combined.refresh_money`): if no figure moved, the
tables and check results are reused as on a night with no change; else the
metrics and checks run on the refreshed tables.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import duckdb

from assets.harmonise.schema import ACTUAL_DISBURSEMENT_TYPES
from assets.settings import Settings, project_root
from assets.warehouse import literal, quote

STATE = "combined-state.json"


@cache
def code_digest() -> str:
    """sha256 over the code and schema that build the combined tables."""
    root = project_root()
    digest = hashlib.sha256()
    files = [
        *sorted((root / "assets").rglob("*.py")),
        *sorted((root / "expectations").rglob("*.py")),
        *sorted((root / "schema").glob("*.json")),
    ]
    for path in files:
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def inputs_fingerprint(
    settings: Settings,
    results: list[dict[str, Any]],
    reference: str,
    dataset_marker: Any,
    submission_markers: list[str],
) -> str:
    """A digest of everything the combined tables depend on (see the module docstring)."""
    datasets = [
        [
            result["key"],
            result["sha256"],
            # the note in ``sources.reason`` changes with them: a full combine writes it
            result["error"] if result["status"] in ("failed", "missing") else None,
            dataset_marker(result["sha256"]),
        ]
        for result in sorted(results, key=lambda r: str(r["key"]))
    ]
    payload = {
        "code": code_digest(),
        "reference": reference,
        "metrics": {
            "overlap_threshold": settings.metrics.overlap_threshold,
            "overlap_use_text": settings.metrics.overlap_use_text,
            "method_version": settings.metrics.method_version,
        },
        "datasets": datasets,
        "submissions": submission_markers,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def first_future_disbursement(
    con: duckdb.DuckDBPyConnection, transactions: str, day: dt.date
) -> str | None:
    """The earliest actual-disbursement date after ``day`` (ISO) in the relation
    ``transactions`` of ``con``, or None: until then the ``no_future_disbursement``
    expectation gives the same outcome every day."""

    types = ", ".join(literal(code) for code in ACTUAL_DISBURSEMENT_TYPES)
    row = con.execute(
        f"""
        SELECT min(transaction_date) FROM {quote(transactions)}
        WHERE CAST(transaction_type AS VARCHAR) IN ({types})
            AND transaction_date > {literal(day.isoformat())}::DATE
        """
    ).fetchone()
    return None if row is None or row[0] is None else row[0].isoformat()


def save_state(
    folder: Path,
    fingerprint: str,
    day: dt.date,
    valid_until: str | None,
    schema_checks: Mapping[str, Any],
    apart_from_rates: str | None = None,
) -> None:
    """After a complete combining step: what the tables in ``folder`` were made from
    (``fingerprint``; ``apart_from_rates``: the same without the exchange rates), when they
    were validated and until when that holds, and their schema checks."""
    path = folder / STATE
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(
        json.dumps(
            {
                "fingerprint": fingerprint,
                "apart_from_rates": apart_from_rates,
                "validated_on": day.isoformat(),
                "valid_until": valid_until,
                "schema_checks": schema_checks,
            },
            sort_keys=True,
            default=str,
        )
        + "\n",
        encoding="utf-8",
    )
    temporary.replace(path)


def saved_state(folder: Path) -> dict[str, Any] | None:
    """The state saved after the last complete combining step, if any."""
    try:
        state = json.loads((folder / STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def still_valid(state: Mapping[str, Any], today: dt.date) -> bool:
    """Whether the check results saved with ``state`` still hold ``today`` (no disbursement
    has fallen due since they were found)."""
    until = state.get("valid_until")
    return until is None or today < dt.date.fromisoformat(until)


def reusable_state(folder: Path, fingerprint: str, today: dt.date) -> dict[str, Any] | None:
    """The saved state when the tables in ``folder`` can stand for tonight's; else None."""
    state = saved_state(folder)
    if state is None or state.get("fingerprint") != fingerprint or not still_valid(state, today):
        return None
    return state


def rates_only_state(folder: Path, apart_from_rates: str) -> dict[str, Any] | None:
    """The saved state when only the exchange rates (and how they are looked up) changed
    since the tables in ``folder`` were combined; else None."""
    state = saved_state(folder)
    if state is None or state.get("apart_from_rates") != apart_from_rates:
        return None
    return state


def saved_schema_checks(folder: Path) -> dict[str, Any] | None:
    """The schema checks saved with the tables in ``folder`` (per table ``rows`` and
    ``by_rule``), whatever tonight's inputs; None when there are none. The state is
    removed before the tables are rewritten, so what it holds was found in these tables."""
    state = saved_state(folder)
    checks = state.get("schema_checks") if state is not None else None
    return checks if isinstance(checks, dict) else None


def forget_state(folder: Path) -> None:
    """Before the tables are rewritten: a crash half-way must not leave a state that
    vouches for tables it did not see."""
    (folder / STATE).unlink(missing_ok=True)
