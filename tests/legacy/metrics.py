"""The metrics stage as it was computed in pandas, kept only as the oracle of the tests.

``assets/metrics/`` computes the metrics in SQL inside the transform's DuckDB
connection (:func:`assets.metrics.stage.add_metrics`); this module is the pandas
implementation it replaced (the four modules ``double_counting``, ``alignment``,
``duplication`` and ``stage`` of ``assets/metrics/``, one after the other, unchanged
but for their imports and one shared helper), so that
``tests/unit/test_metrics_sql.py`` can compare the two, table by table, value by
value, on the shared fixtures, the demo and the synthetic cases of the metric tests.
Nothing in ``assets/`` imports it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from assets.harmonise.schema import field_names, table_frame
from assets.iati.harmonise import ALL_TABLES, ALSO_IN_IATI_RULE, stable_id
from assets.metrics.similarity import (
    HASH_BITS,
    _count_matrix,
    _weighted,
    clean_texts,
    rowwise_cosine,
)
from assets.settings import MetricsSettings

# =============================================================================
# assets/metrics/double_counting.py
#
# The same money counted twice (record level): flags and published pairs.
#
# :func:`flag_double_counting` completes ``transactions.counts_toward_totals`` /
# ``exclusion_reason`` and returns the ``duplication_pairs`` rows of kinds
# ``same_activity_reported_twice`` and ``funding_chain`` (see
# ``docs/metrics.md``, "Duplication and fragmentation", point 1). Pure pandas;
# every step is a merge or a groupby, never a loop over transactions.
#
# A flagged transaction keeps its row. A transaction the harmoniser already
# flagged stays flagged; when several reasons apply the first one in this order
# is kept:
#
# 1. ``incoming funds`` (types 1, 11, 13) and ``secondary reporter`` (set by the
#    harmoniser). Where the incoming funds (type 1 or 11) are part of a funding
#    chain (rule 4) the reason is refined to ``incoming funds from <A> (counted at
#    the funder)``.
# 2. ``reported again by child activity <C>``: the harmonised tables keep no
#    ``related-activity`` links, so a parent/child relation is read from the
#    hierarchy alone. An IATI transaction of an activity at hierarchy level *h*
#    (empty = 1, the IATI default) is excluded when an IATI activity of the same
#    reporting organisation at a deeper level (> *h*) has a transaction with the
#    same type, date, value and currency; ``<C>`` is the smallest such child.
# 3. ``also reported in IATI (file <F>)``: a partner submission's transaction for
#    an activity whose IATI publication has transactions of the same type (IATI
#    wins; ``<F>`` is the first IATI file by name). ``combine`` has already
#    merged such a submission's copy into the IATI activity (IATI's description,
#    the submission's transactions) and left a warning ``activity_also_in_iati``;
#    each becomes a pair, whether or not the types overlap. The cross-file case
#    between two IATI files (or two submissions) is resolved by ``combine``, which
#    keeps one copy and quarantines the other as ``duplicate_activity_across_files``;
#    each such quarantine row is published as a pair here (``activity_id_a`` =
#    ``activity_id_b`` = the identifier; the schema allows it).
# 4. Funding chain: a disbursement or outgoing commitment (type 3 or 2) of
#    activity A with ``receiver_activity_id`` = B, or incoming funds (type 1 or 11)
#    of B with ``provider_activity_id`` = A (either link suffices; both activities
#    must be in the tables, A != B) give a ``funding_chain`` pair. B's incoming
#    funds naming A, and B's incoming funds that name no provider activity but
#    match one of A's transactions to B in value and currency, get the chain
#    reason (rule 1 refined).
# =============================================================================


INCOMING_TYPES = ("1", "11", "13")
CHAIN_INCOMING_TYPES = ("1", "11")
CHAIN_OUTGOING_TYPES = ("2", "3")
DUPLICATE_RULE = "duplicate_activity_across_files"
SAME_ACTIVITY = "same_activity_reported_twice"
FUNDING_CHAIN = "funding_chain"

_KEPT_IN_MESSAGE = re.compile(r"also published in (.+?), which is kept")


def _table(tables: Mapping[str, pd.DataFrame], name: str) -> pd.DataFrame:
    frame = tables.get(name)
    return table_frame(name, []) if frame is None else frame


def _str(series: pd.Series) -> pd.Series:
    """Strings with empty text as missing."""
    out = series.astype("string").str.strip()
    return out.mask(out == "")


def _first_countries(countries: pd.DataFrame) -> pd.DataFrame:
    """activity_id -> its first country (table order)."""
    c = pd.DataFrame(
        {"activity_id": _str(countries["activity_id"]), "country": _str(countries["country_code"])}
    ).dropna()
    return c.drop_duplicates("activity_id").reset_index(drop=True)


def _apply(
    counts: pd.Series, reason: pd.Series, rows: pd.Index, reasons: pd.Series
) -> tuple[pd.Series, pd.Series]:
    """Flag ``rows`` (labels of the transactions frame) with ``reasons`` where still counted."""
    new = pd.Series(reasons.to_numpy(), index=rows, dtype="string")
    new = new[~new.index.duplicated()]
    open_rows = new.index[counts.loc[new.index].to_numpy()]
    reason = reason.copy()
    counts = counts.copy()
    reason.loc[open_rows] = new.loc[open_rows]
    counts.loc[open_rows] = False
    return counts, reason


def _usd_text(amount: object) -> str:
    if amount is None or pd.isna(amount):
        return "an amount without a USD rate"
    return f"USD {float(amount):,.0f}"  # type: ignore[arg-type]


def _period_text(n: int, first: object, last: object) -> str:
    if n == 1:
        return f" on {first}" if first is not None and not pd.isna(first) else ""
    span = f", {first} to {last}" if first is not None and not pd.isna(first) else ""
    return f" in {n} transactions{span}"


def _funding_chains(tx: pd.DataFrame, known: pd.Index) -> tuple[pd.DataFrame, pd.Series]:
    """Pairs (A funds B) with evidence, and the chain reason for B's incoming funds rows."""
    ttype = _str(tx["transaction_type"])
    activity = _str(tx["activity_id"])
    receiver = _str(tx["receiver_activity_id"])
    provider = _str(tx["provider_activity_id"])
    base = pd.DataFrame(
        {
            "activity": activity,
            "type": ttype,
            "date": tx["transaction_date"],
            "value": pd.to_numeric(tx["value"], errors="coerce").astype("float64"),
            "currency": _str(tx["currency"]).fillna(""),
            "usd": pd.to_numeric(tx["value_usd"], errors="coerce").astype("float64"),
        },
        index=tx.index,
    )

    def linked(types: tuple[str, ...], other: pd.Series) -> pd.Series:
        """Rows of these types naming another activity that is in the tables."""
        return (
            ttype.isin(types).fillna(False)
            & other.notna()
            & (other != activity).fillna(False)
            & other.isin(known)
        )

    out_mask = linked(CHAIN_OUTGOING_TYPES, receiver)
    out = base.loc[out_mask].assign(A=activity[out_mask], B=receiver[out_mask])
    in_mask = linked(CHAIN_INCOMING_TYPES, provider)
    inc = base.loc[in_mask].assign(A=provider[in_mask], B=activity[in_mask])

    # evidence per (A, B): the funder's side (disbursements, else commitments), the receiver's
    out = out.assign(_disb=out["type"] == "3", _no_usd=out["usd"].isna())
    out_side = out.loc[
        out["_disb"] | ~out.groupby(["A", "B"])["_disb"].transform("any")
    ].sort_values("date", na_position="last", kind="stable")
    out_agg = out_side.groupby(["A", "B"], sort=False).agg(
        out_n=("usd", "size"),
        out_usd=("usd", "sum"),
        out_no_usd=("_no_usd", "any"),
        out_first=("date", "first"),
        out_last=("date", "last"),
        out_disb=("_disb", "any"),
    )
    out_agg["out_usd"] = out_agg["out_usd"].mask(out_agg["out_no_usd"])
    in_agg = inc.groupby(["A", "B"], sort=False).agg(in_n=("usd", "size"))
    pairs = out_agg.join(in_agg, how="outer").reset_index()

    evidence = []
    for row in pairs.itertuples(index=False):  # one per pair, not per transaction
        parts = []
        if pd.notna(row.out_n):
            verb = "disbursed" if row.out_disb else "committed"
            parts.append(
                f"{row.A} {verb} {_usd_text(row.out_usd)} to {row.B}"
                f"{_period_text(int(row.out_n), row.out_first, row.out_last)} "
                "(receiver-activity-id)"
            )
        else:
            parts.append(f"{row.A} names no receiver-activity-id {row.B}")
        if pd.notna(row.in_n):
            parts.append(f"{row.B} reports incoming funds from {row.A} (provider-activity-id)")
        else:
            parts.append(f"{row.B} reports no incoming funds naming {row.A}")
        evidence.append("; ".join(parts))
    pairs["evidence"] = pd.Series(evidence, index=pairs.index, dtype="object")

    # the chain reason: B's incoming funds naming A ...
    named = inc[["A"]]
    # ... and B's incoming funds naming no provider activity that match A's flow to B
    unnamed_mask = ttype.isin(CHAIN_INCOMING_TYPES).fillna(False) & provider.isna()
    unnamed = base.loc[unnamed_mask, ["activity", "value", "currency"]].rename_axis("_row")
    matched = (
        unnamed.reset_index()
        .merge(
            out[["A", "B", "value", "currency"]].drop_duplicates(),
            left_on=["activity", "value", "currency"],
            right_on=["B", "value", "currency"],
        )
        .groupby("_row")["A"]
        .min()
        .to_frame()
    )
    chain = pd.concat([named, matched])
    chain = chain[~chain.index.duplicated()]
    reasons = "incoming funds from " + chain["A"] + " (counted at the funder)"
    return pairs[["A", "B", "evidence"]], reasons.astype("string")


def _child_repeats(tx: pd.DataFrame, activities: pd.DataFrame, counts: pd.Series) -> pd.Series:
    """Parent rows whose flow a deeper activity of the same publisher reports again."""
    acts = activities.loc[_str(activities["source"]) == "iati"]
    level = pd.DataFrame(
        {
            "activity": _str(acts["activity_id"]),
            "org": _str(acts["reporting_org_ref"]),
            "level": pd.to_numeric(acts["hierarchy"], errors="coerce").fillna(1).astype("int64"),
        }
    ).dropna(subset=["activity", "org"])
    level = level.drop_duplicates("activity")
    rows = pd.DataFrame(
        {
            "activity": _str(tx["activity_id"]),
            "type": _str(tx["transaction_type"]),
            "date": tx["transaction_date"],
            "value": pd.to_numeric(tx["value"], errors="coerce").astype("float64"),
            "currency": _str(tx["currency"]).fillna(""),
        },
        index=tx.index,
    ).rename_axis("_row")
    iati = (_str(tx["source"]) == "iati").fillna(False).to_numpy()
    rows = rows.loc[iati].dropna(subset=["type", "date", "value"])
    rows = rows.reset_index().merge(level, on="activity")
    keys = ["org", "type", "date", "value", "currency"]
    children = rows.loc[rows["level"] >= 2, [*keys, "activity", "level"]].drop_duplicates()
    parents = rows.loc[counts.loc[rows["_row"]].to_numpy(), ["_row", *keys, "activity", "level"]]
    found = parents.merge(children, on=keys, suffixes=("", "_child"))
    found = found.loc[
        (found["level_child"] > found["level"]) & (found["activity_child"] != found["activity"])
    ]
    child = found.groupby("_row")["activity_child"].min()
    return ("reported again by child activity " + child).astype("string")


def _iati_wins(tx: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame]:
    """Submission rows whose activity and type IATI reports, and the (activity, files) pairs."""
    frame = pd.DataFrame(
        {
            "activity": _str(tx["activity_id"]),
            "type": _str(tx["transaction_type"]),
            "source": _str(tx["source"]),
            "file": _str(tx["source_file"]),
        },
        index=tx.index,
    ).rename_axis("_row")
    iati = (
        frame.loc[frame["source"] == "iati"]
        .groupby(["activity", "type"], as_index=False)["file"]
        .min()
        .rename(columns={"file": "iati_file"})
    )
    sub = frame.loc[frame["source"] == "partner_submission"].reset_index()
    both = sub.merge(iati, on=["activity", "type"]).set_index("_row")
    reasons = ("also reported in IATI (file " + both["iati_file"] + ")").astype("string")
    files = (
        both.groupby(["activity", "file"], as_index=False)["iati_file"]
        .min()
        .rename(columns={"file": "submission_file"})
    )
    return reasons, files


def _pair_frame(
    kind: str,
    one: pd.Series,
    two: pd.Series,
    key: pd.Series,
    country: pd.Series,
    evidence: pd.Series,
) -> pd.DataFrame:
    a = one.where(one <= two, two)
    b = two.where(one <= two, one)
    ids = [stable_id(kind, x, y, k) for x, y, k in zip(a, b, key, strict=True)]
    return pd.DataFrame(
        {
            "pair_id": ids,
            "activity_id_a": a.to_numpy(),
            "activity_id_b": b.to_numpy(),
            "country_code": country.to_numpy(),
            "kind": kind,
            "score": 1.0,
            "evidence": evidence.to_numpy(),
        }
    )


def flag_double_counting(
    tables: Mapping[str, pd.DataFrame],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(transactions with counts_toward_totals / exclusion_reason completed,
    duplication_pairs rows of kinds same_activity_reported_twice and funding_chain).

    See the module docstring for the rules and their order.
    """
    tx = _table(tables, "transactions").reset_index(drop=True)
    activities = _table(tables, "activities")
    quarantine = _table(tables, "quarantine")
    first_country = _first_countries(_table(tables, "activity_countries"))
    country_of = first_country.set_index("activity_id")["country"]

    counts = tx["counts_toward_totals"].astype("boolean").fillna(True).astype(bool)
    reason = _str(tx["exclusion_reason"])

    # 1 + 4: funding chains; incoming funds in a chain get the chain reason
    known = pd.Index(
        pd.concat([_str(activities["activity_id"]), _str(tx["activity_id"])]).dropna().unique()
    )
    chains, chain_reasons = _funding_chains(tx, known)
    refine = chain_reasons.index[
        (
            reason.loc[chain_reasons.index].isna()
            | (reason.loc[chain_reasons.index] == "incoming funds")
        )
        .fillna(False)
        .to_numpy()
    ]
    reason.loc[refine] = chain_reasons.loc[refine]
    counts.loc[refine] = False

    # 2: the parent's figures where a child reports the same flow
    repeats = _child_repeats(tx, activities, counts)
    counts, reason = _apply(counts, reason, repeats.index, repeats)

    # 3: a partner submission's figures that IATI also reports
    iati_reasons, both_sources = _iati_wins(tx)
    counts, reason = _apply(counts, reason, iati_reasons.index, iati_reasons)

    out = tx.copy()
    out["counts_toward_totals"] = counts.astype("boolean")
    out["exclusion_reason"] = reason.where(~counts).astype("string")
    columns = field_names("transactions")
    if set(columns) <= set(out.columns):
        out = out[columns]

    # pairs: the cross-file duplicates combine set aside
    dup = quarantine.loc[(_str(quarantine["rule"]) == DUPLICATE_RULE).fillna(False).to_numpy()]
    dup_id = _str(dup["value"]).reset_index(drop=True)
    dropped = _str(dup["source_file"]).reset_index(drop=True)
    kept_from_message = (
        dup["message"].astype("string").str.extract(_KEPT_IN_MESSAGE, expand=False)
    ).reset_index(drop=True)
    kept_file = (
        pd.DataFrame(
            {
                "activity_id": _str(activities["activity_id"]),
                "file": _str(activities["source_file"]),
            }
        )
        .dropna()
        .drop_duplicates("activity_id")
        .set_index("activity_id")["file"]
    )
    kept = dup_id.map(kept_file).astype("string").fillna(kept_from_message).fillna("another file")
    cross_file = _pair_frame(
        SAME_ACTIVITY,
        dup_id,
        dup_id,
        "file:" + dropped,
        dup_id.map(country_of),
        "identifier "
        + dup_id
        + " published in "
        + kept
        + " (kept) and in "
        + dropped
        + " (set aside, see quarantine)",
    )

    # pairs: the same activity in IATI and in a partner submission (merged by
    # combine, which leaves a warning; or found here through the transactions)
    merged = quarantine.loc[
        (_str(quarantine["rule"]) == ALSO_IN_IATI_RULE).fillna(False).to_numpy()
    ]
    merged_id = _str(merged["value"]).reset_index(drop=True)
    both = pd.concat(
        [
            both_sources[["activity", "submission_file", "iati_file"]],
            pd.DataFrame(
                {
                    "activity": merged_id,
                    "submission_file": _str(merged["source_file"]).reset_index(drop=True),
                    "iati_file": merged_id.map(kept_file).astype("string").fillna("another file"),
                }
            ),
        ],
        ignore_index=True,
    ).drop_duplicates(["activity", "submission_file"])
    sub_id = both["activity"].reset_index(drop=True)
    in_iati = _pair_frame(
        SAME_ACTIVITY,
        sub_id,
        sub_id,
        "submission:" + both["submission_file"].reset_index(drop=True),
        sub_id.map(country_of),
        "identifier "
        + sub_id
        + " reported in IATI file "
        + both["iati_file"].reset_index(drop=True)
        + " and in partner submission "
        + both["submission_file"].reset_index(drop=True)
        + "; the description and every transaction type IATI reports are taken from IATI",
    )

    # pairs: funding chains; the country where they meet (B's, shared with A if possible)
    chains = chains.reset_index(drop=True)
    all_countries = pd.DataFrame(
        {
            "activity_id": _str(_table(tables, "activity_countries")["activity_id"]),
            "country": _str(_table(tables, "activity_countries")["country_code"]),
        }
    ).dropna()
    shared = (
        chains.reset_index()
        .merge(all_countries.rename(columns={"activity_id": "B"}), on="B")
        .merge(all_countries.rename(columns={"activity_id": "A"}), on=["A", "country"])
        .drop_duplicates("index")
        .set_index("index")["country"]
    )
    country = (
        shared.reindex(chains.index)
        .fillna(chains["B"].map(country_of))
        .fillna(chains["A"].map(country_of))
    )
    funding = _pair_frame(
        FUNDING_CHAIN,
        chains["A"].astype("string"),
        chains["B"].astype("string"),
        chains["A"] + ">" + chains["B"],
        country,
        chains["evidence"],
    )

    frames = [f for f in (cross_file, in_iati, funding) if len(f)]
    pairs = pd.concat(frames, ignore_index=True) if frames else table_frame("duplication_pairs", [])
    pairs = pairs.drop_duplicates("pair_id").sort_values(
        ["kind", "activity_id_a", "activity_id_b", "pair_id"], kind="stable"
    )
    return out, table_frame("duplication_pairs", pairs)


# =============================================================================
# assets/metrics/alignment.py
#
# Alignment of capacity development (CD) with country priorities and systems.
#
# Pure pandas: :func:`alignment_links` links activities to the country CD
# priorities (``alignment_links``), :func:`alignment_metrics` computes every
# metric of the Alignment table of ``docs/metrics.md`` (``alignment_metrics``)
# per ``country_code`` x ``partner_org_ref`` x ``year`` and for all partners
# together (``partner_org_ref`` empty).
#
# Rules (the method of ``method_version`` "1"):
#
# * Money is disbursements and expenditure (transaction types 3 and 4) that count
#   toward totals, in USD (``value_usd``; a transaction without a USD value is
#   left out). A transaction goes to its own ``recipient_country`` when it states
#   one, else it is split by the activity's country ``share``.
# * Year: money metrics use the year of ``transaction_date``. Activity-count and
#   indicator metrics (``results_framework_use``, ``government_data_use``,
#   ``objectives_from_country_framework``, ``parallel_piu_count``,
#   ``results_reporting``) use the years in which the CD activity disbursed to
#   the country, so every metric of a country-year describes the same activities.
#   ``traceability`` uses the year of the incoming-funds transaction.
# * Partner: the activity's ``reporting_org_ref``, else the ``partner_org_ref``
#   of its declarations (partner-submitted activities).
# * Declarations apply to the year of their ``period`` (its first four-digit
#   year); several declarations of one activity and year are combined (any true
#   -> true, else any false -> false, else unknown). No declaration for the year,
#   or an empty field, is unknown: the activity is left out of both numerator and
#   denominator of that metric, never guessed.
# * Indicators are counted once per activity and indicator (``indicator_id``,
#   else ``result_id``) whatever the number of reporting periods; a result with
#   a ``country_code`` counts for that country only, else for every country of
#   its activity. Counts are not split by country share.
# * Coverage: ``n_activities`` counts the activities with a known value,
#   ``n_activities_eligible`` every activity the metric's definition covers
#   (known or not), and ``coverage`` = n_activities ÷ n_activities_eligible
#   (empty when none is eligible), so the unknowns left out are always shown.
# =============================================================================


METHOD_VERSION = "1"

#: Confidence of each link basis (``alignment_links.confidence``).
CONFIDENCE_PARTNER_DECLARED = 1.0  # the partner listed the priority itself
CONFIDENCE_RESULT_REFERENCE = 0.9  # a result indicator refers to the priority
CONFIDENCE_SECTOR_MATCH = 0.5  # only the CD sector equals the priority's sector

MONEY_TRANSACTION_TYPES = frozenset({"3", "4"})
INCOMING_FUNDS = "1"
TECHNICAL_COOPERATION_AID_TYPES = frozenset({"D01", "D02"})
#: Aid types that are programme-based approaches by definition (budget support,
#: basket funds / pooled funding).
PROGRAMME_BASED_AID_TYPES = frozenset({"A01", "A02", "B04"})
#: Disbursement channels into government (treasury, or a government institution's
#: own account).
GOVERNMENT_CHANNELS = frozenset({"1", "2"})
#: Organisation types of the public sector (government, local government,
#: other public sector) for an implementing organisation.
GOVERNMENT_ORG_TYPES = frozenset({"10", "11", "15"})

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
_DECLARED_FLAGS = (
    *COUNTRY_SYSTEMS,
    "on_budget",
    "results_from_country_framework",
    "coordinated",
    "joint_programme",
    "parallel_piu",
)
_KEY = ["country_code", "partner_org_ref", "year"]
_UNIT_COLUMNS = [*_KEY, "activity_id", "weight", "hit"]


# --------------------------------------------------------------------------- helpers


# (``_table``: the same helper as double counting's, above)


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def _text(value: Any) -> str:
    return "" if _missing(value) else str(value).strip()


def _split(value: Any) -> list[str]:
    return [part.strip() for part in _text(value).split(";") if part.strip()]


def _flag(value: Any) -> bool | None:
    return None if _missing(value) else bool(value)


def _combine(values: Iterable[bool | None]) -> bool | None:
    """Any true -> true; else any false -> false; else unknown."""
    known = [v for v in values if v is not None]
    if not known:
        return None
    return any(known)


def _period_year(period: Any) -> int | None:
    match = re.search(r"\d{4}", _text(period))
    return int(match.group()) if match else None


def _year(value: Any) -> int | None:
    if _missing(value):
        return None
    year = getattr(value, "year", None)
    return int(year) if year is not None else _period_year(value)


def _activity_countries(tables: Mapping[str, pd.DataFrame]) -> dict[str, list[tuple[str, float]]]:
    """activity_id -> [(country_code, share)], equal shares where none given."""
    out: dict[str, list[tuple[str, float | None]]] = {}
    for row in _table(tables, "activity_countries").itertuples(index=False):
        share = None if _missing(row.share) else float(row.share)
        out.setdefault(str(row.activity_id), []).append((str(row.country_code), share))
    result: dict[str, list[tuple[str, float]]] = {}
    for activity_id, pairs in out.items():
        if any(share is None for _, share in pairs):
            result[activity_id] = [(c, 1.0 / len(pairs)) for c, _ in pairs]
        else:
            result[activity_id] = [(c, float(s or 0.0)) for c, s in pairs]
    return result


# --------------------------------------------------------------------------- links


def alignment_links(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """``alignment_links`` rows: one per activity, country, priority and basis.

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
    priorities = _table(tables, "cd_priorities")
    known = {(str(r.country_code), str(r.priority_id)) for r in priorities.itertuples(index=False)}
    by_sector: dict[tuple[str, str], list[str]] = {}
    for r in priorities.itertuples(index=False):
        if _text(r.sector_code):
            key = (str(r.country_code), _text(r.sector_code))
            by_sector.setdefault(key, []).append(str(r.priority_id))
    countries = _activity_countries(tables)
    rows: dict[tuple[str, str, str, str], float] = {}

    def add(activity_id: str, country: str, priority: str, basis: str, confidence: float) -> None:
        if (country, priority) in known:
            rows[(activity_id, country, priority, basis)] = confidence

    for d in _table(tables, "partner_declarations").itertuples(index=False):
        activity_id = str(d.activity_id)
        for priority in _split(d.priority_ids):
            for country, _ in countries.get(activity_id, []):
                add(activity_id, country, priority, "partner_declared", CONFIDENCE_PARTNER_DECLARED)

    for r in _table(tables, "results").itertuples(index=False):
        activity_id = _text(r.activity_id)
        if not activity_id:
            continue
        targets = _result_countries(r, activity_id, countries)
        for country in targets:
            priority = _text(r.priority_id)
            if not priority and _flag(r.from_country_framework):
                priority = _text(r.reference_code)
            if priority:
                add(activity_id, country, priority, "result_reference", CONFIDENCE_RESULT_REFERENCE)

    cd_activities = set(
        _table(tables, "activities").loc[
            lambda f: f["is_cd"].fillna(False).astype(bool), "activity_id"
        ]
    )
    for s in _table(tables, "activity_sectors").itertuples(index=False):
        activity_id = str(s.activity_id)
        if (
            activity_id not in cd_activities
            or not _flag(s.is_cd_sector)
            or _text(s.vocabulary) != "1"
        ):
            continue
        for country, _ in countries.get(activity_id, []):
            for priority in by_sector.get((country, _text(s.code)), []):
                add(activity_id, country, priority, "sector_match", CONFIDENCE_SECTOR_MATCH)

    records = [
        {"activity_id": a, "country_code": c, "priority_id": p, "basis": b, "confidence": conf}
        for (a, c, p, b), conf in sorted(rows.items())
    ]
    return table_frame("alignment_links", records)


# --------------------------------------------------------------------------- metrics


class _Context:
    """The inputs, resolved once: activities, countries, declarations, results."""

    def __init__(self, tables: Mapping[str, pd.DataFrame], links: pd.DataFrame) -> None:
        activities = _table(tables, "activities")
        self.countries = _activity_countries(tables)
        self.is_cd: dict[str, bool] = {}
        self.partner: dict[str, str] = {}
        self.default_aid_type: dict[str, str] = {}
        self.ftc: dict[str, bool] = {}
        for a in activities.itertuples(index=False):
            activity_id = str(a.activity_id)
            self.is_cd[activity_id] = bool(_flag(a.is_cd))
            self.partner[activity_id] = _text(a.reporting_org_ref)
            self.default_aid_type[activity_id] = _text(a.default_aid_type)
            self.ftc[activity_id] = "ftc_flag" in _split(a.cd_basis)

        # declarations: (activity, year) -> combined flags
        grouped: dict[tuple[str, int], list[Any]] = {}
        for d in _table(tables, "partner_declarations").itertuples(index=False):
            activity_id = str(d.activity_id)
            if not self.partner.get(activity_id):
                self.partner[activity_id] = _text(d.partner_org_ref)
            year = _period_year(d.period)
            if year is not None:
                grouped.setdefault((activity_id, year), []).append(d)
        self.declared: dict[tuple[str, int], dict[str, bool | None]] = {
            key: {f: _combine(_flag(getattr(d, f)) for d in rows) for f in _DECLARED_FLAGS}
            for key, rows in grouped.items()
        }

        self.linked = {
            (str(r.activity_id), str(r.country_code)) for r in links.itertuples(index=False)
        }

        self.government: set[str] = set()
        for o in _table(tables, "participating_orgs").itertuples(index=False):
            if _text(o.role) == "4" and _text(o.org_type) in GOVERNMENT_ORG_TYPES:
                self.government.add(str(o.activity_id))

        # indicators: (activity, country) -> {indicator key: row dicts}
        self.indicators: dict[tuple[str, str], dict[str, list[Any]]] = {}
        for r in _table(tables, "results").itertuples(index=False):
            activity_id = _text(r.activity_id)
            if not activity_id:
                continue
            targets = _result_countries(r, activity_id, self.countries)
            key = _text(r.indicator_id) or _text(r.result_id)
            for country in targets:
                self.indicators.setdefault((activity_id, country), {}).setdefault(key, []).append(r)

        self.money = self._money(_table(tables, "transactions"))
        self.incoming = self._incoming(_table(tables, "transactions"))
        cd = self.money.loc[self.money["is_cd"].astype(bool)]
        self.active = cd[
            ["country_code", "partner_org_ref", "year", "activity_id"]
        ].drop_duplicates()

    def declaration(self, activity_id: str, year: int, field: str) -> bool | None:
        return self.declared.get((activity_id, year), {}).get(field)

    def _allocate(self, t: Any) -> list[tuple[str, float]]:
        own = _text(t.recipient_country)
        return [(own, 1.0)] if own else self.countries.get(str(t.activity_id), [])

    def _money(self, transactions: pd.DataFrame) -> pd.DataFrame:
        rows = []
        for t in transactions.itertuples(index=False):
            if _text(t.transaction_type) not in MONEY_TRANSACTION_TYPES or not _flag(
                t.counts_toward_totals
            ):
                continue
            year = _year(t.transaction_date)
            if _missing(t.value_usd) or year is None:
                continue
            activity_id = str(t.activity_id)
            aid_type = _text(t.aid_type) or self.default_aid_type.get(activity_id, "")
            for country, share in self._allocate(t):
                rows.append(
                    {
                        "country_code": country,
                        "partner_org_ref": self.partner.get(activity_id, ""),
                        "year": year,
                        "activity_id": activity_id,
                        "usd": float(t.value_usd) * share,
                        "is_cd": self.is_cd.get(activity_id, False),
                        "tc": aid_type in TECHNICAL_COOPERATION_AID_TYPES
                        or self.ftc.get(activity_id, False),
                        "pba_aid_type": aid_type in PROGRAMME_BASED_AID_TYPES,
                        "government": _text(t.disbursement_channel) in GOVERNMENT_CHANNELS
                        or activity_id in self.government,
                    }
                )
        columns = [*_KEY, "activity_id", "usd", "is_cd", "tc", "pba_aid_type", "government"]
        return pd.DataFrame(rows, columns=columns)

    def _incoming(self, transactions: pd.DataFrame) -> pd.DataFrame:
        rows = []
        for t in transactions.itertuples(index=False):
            activity_id = str(t.activity_id)
            year = _year(t.transaction_date)
            if _text(t.transaction_type) != INCOMING_FUNDS or year is None:
                continue
            if not self.is_cd.get(activity_id, False):
                continue
            for country, _ in self._allocate(t):
                rows.append(
                    {
                        "country_code": country,
                        "partner_org_ref": self.partner.get(activity_id, ""),
                        "year": year,
                        "activity_id": activity_id,
                        "weight": 1.0,
                        "hit": bool(_text(t.provider_activity_id)),
                    }
                )
        return pd.DataFrame(rows, columns=_UNIT_COLUMNS)


def _units(frame: pd.DataFrame, weight: str, hit: Iterable[bool | None]) -> pd.DataFrame:
    units = frame[[*_KEY, "activity_id"]].copy()
    units["weight"] = frame[weight].astype(float) if weight in frame else 1.0
    units["hit"] = pd.Series(list(hit), index=frame.index, dtype="object")
    return units[_UNIT_COLUMNS]


def _declared_units(ctx: _Context, money: pd.DataFrame, field: str) -> pd.DataFrame:
    hits = [
        ctx.declaration(a, int(y), field)
        for a, y in zip(money["activity_id"], money["year"], strict=True)
    ]
    return _units(money, "usd", hits)


def _indicator_units(ctx: _Context, field: str) -> pd.DataFrame:
    rows = []
    for a in ctx.active.itertuples(index=False):
        for rows_of_indicator in ctx.indicators.get((a.activity_id, a.country_code), {}).values():
            hit = _combine(_flag(getattr(r, field)) for r in rows_of_indicator)
            rows.append({**a._asdict(), "weight": 1.0, "hit": hit})
    return pd.DataFrame(rows, columns=_UNIT_COLUMNS)


def _activity_units(ctx: _Context, decide: Any) -> pd.DataFrame:
    rows = [
        {**a._asdict(), "weight": 1.0, "hit": decide(a)} for a in ctx.active.itertuples(index=False)
    ]
    return pd.DataFrame(rows, columns=_UNIT_COLUMNS)


def _aggregate(units: pd.DataFrame, groups: pd.DataFrame) -> pd.DataFrame:
    """Per group: numerator, denominator, n_activities (known) and eligible activities."""
    units = units.copy()
    units["known"] = units["hit"].map(lambda v: v is not None and not _missing(v))
    units["num"] = [
        w if k and bool(h) else 0.0
        for w, h, k in zip(units["weight"], units["hit"], units["known"], strict=True)
    ]
    units["den"] = units["weight"].where(units["known"], 0.0)
    all_partners = units.assign(partner_org_ref="")
    both = pd.concat([units, all_partners], ignore_index=True)
    grouped = both.groupby(_KEY, sort=False)
    found = pd.DataFrame(
        {
            "numerator": grouped["num"].sum().astype(float),
            "denominator": grouped["den"].sum().astype(float),
            "n_activities": both.loc[both["known"].astype(bool)]
            .groupby(_KEY, sort=False)["activity_id"]
            .nunique(),
            "n_activities_eligible": grouped["activity_id"].nunique(),
        }
    )
    found["n_activities"] = found["n_activities"].fillna(0).astype(int)
    found = found.reset_index()
    merged = groups.merge(found, on=_KEY, how="left")
    return merged.fillna(
        {"numerator": 0.0, "denominator": 0.0, "n_activities": 0, "n_activities_eligible": 0}
    )


def _ratio(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["value"] = [
        n / d if d else None for n, d in zip(frame["numerator"], frame["denominator"], strict=True)
    ]
    return frame


def alignment_metrics(
    tables: Mapping[str, pd.DataFrame], links: pd.DataFrame, method_version: str = METHOD_VERSION
) -> pd.DataFrame:
    """``alignment_metrics`` rows: every Alignment metric per country, partner and
    year, and for all partners together (``partner_org_ref`` empty), each with
    its numerator, denominator, activities and coverage."""
    ctx = _Context(tables, links)
    money, cd = ctx.money, ctx.money.loc[ctx.money["is_cd"].astype(bool)]
    groups = pd.concat(
        [
            money[_KEY],
            ctx.incoming[_KEY],
            money[_KEY].assign(partner_org_ref=""),
            ctx.incoming[_KEY].assign(partner_org_ref=""),
        ],
        ignore_index=True,
    ).drop_duplicates()
    groups = groups.sort_values(_KEY).reset_index(drop=True)

    def active_declared(field: str) -> Any:
        return lambda a: ctx.declaration(a.activity_id, int(a.year), field)

    def objectives(a: Any) -> bool | None:
        declared = ctx.declaration(a.activity_id, int(a.year), "results_from_country_framework")
        indicated = _combine(
            _flag(r.from_country_framework)
            for rows in ctx.indicators.get((a.activity_id, a.country_code), {}).values()
            for r in rows
        )
        if declared or indicated:
            return True
        return _combine([declared, indicated])

    def baseline_and_target(a: Any) -> bool:
        return any(
            not _missing(r.baseline_value) and not _missing(r.target_value)
            for rows in ctx.indicators.get((a.activity_id, a.country_code), {}).values()
            for r in rows
        )

    pba = [
        True if aid else ctx.declaration(a, int(y), "joint_programme")
        for a, y, aid in zip(cd["activity_id"], cd["year"], cd["pba_aid_type"], strict=True)
    ]
    tc = cd.loc[cd["tc"].astype(bool)]
    government = cd.loc[cd["government"].astype(bool)]
    units: dict[str, pd.DataFrame] = {
        "cd_share": _units(money, "usd", money["is_cd"].tolist()),
        "priority_alignment": _units(
            cd,
            "usd",
            [
                (a, c) in ctx.linked
                for a, c in zip(cd["activity_id"], cd["country_code"], strict=True)
            ],
        ),
        "results_framework_use": _indicator_units(ctx, "from_country_framework"),
        "objectives_from_country_framework": _activity_units(ctx, objectives),
        "government_data_use": _indicator_units(ctx, "government_data_source"),
        "coordinated_tc": _declared_units(ctx, tc, "coordinated"),
        "on_budget": _declared_units(ctx, government, "on_budget"),
        "parallel_piu_count": _activity_units(ctx, active_declared("parallel_piu")),
        "programme_based": _units(cd, "usd", pba),
        "traceability": ctx.incoming,
        "results_reporting": _activity_units(ctx, baseline_and_target),
    }
    frames = []
    for metric in METRICS:
        if metric == "country_systems_use":
            frame = _country_systems(ctx, cd, groups)
        else:
            frame = _ratio(_aggregate(units[metric], groups))
            if metric == "parallel_piu_count":
                frame["value"] = [
                    n if d else None
                    for n, d in zip(frame["numerator"], frame["denominator"], strict=True)
                ]
        frames.append(frame.assign(metric=metric))
    out = pd.concat(frames, ignore_index=True)
    out["method_version"] = method_version
    out["coverage"] = [
        n / e if e else None
        for n, e in zip(out["n_activities"], out["n_activities_eligible"], strict=True)
    ]
    # nothing to measure is not a row: a zero denominator, or a priority metric in a year
    # no priority of the country covers
    priorities = _table(tables, "cd_priorities")
    covered = {
        (_text(c), year)
        for c, start, end in zip(
            priorities["country_code"],
            priorities["start_year"],
            priorities["end_year"],
            strict=True,
        )
        for year in set(out["year"])
        if (_missing(start) or int(start) <= year) and (_missing(end) or int(end) >= year)
    }
    keep = [
        d != 0 and (m != "priority_alignment" or (c, y) in covered)
        for d, m, c, y in zip(
            out["denominator"], out["metric"], out["country_code"], out["year"], strict=True
        )
    ]
    out = out.loc[keep]
    order = {m: i for i, m in enumerate(METRICS)}
    out = out.assign(_m=out["metric"].map(order)).sort_values(
        ["country_code", "year", "partner_org_ref", "_m"], kind="stable"
    )
    return table_frame(
        "alignment_metrics", out[field_names("alignment_metrics")].reset_index(drop=True)
    )


def _country_systems(ctx: _Context, cd: pd.DataFrame, groups: pd.DataFrame) -> pd.DataFrame:
    """Mean of the per-system shares: numerator = sum of the known shares,
    denominator = number of systems with a known share (so value = the mean);
    n_activities = activities with at least one system declared."""
    parts = []
    for field in COUNTRY_SYSTEMS:
        agg = _ratio(_aggregate(_declared_units(ctx, cd, field), groups))
        parts.append(agg.set_index(_KEY))
    frame = groups.set_index(_KEY)
    frame["numerator"] = sum(
        (p["value"].fillna(0.0) for p in parts), start=pd.Series(0.0, index=frame.index)
    )
    frame["denominator"] = sum(
        (p["value"].notna().astype(float) for p in parts), start=pd.Series(0.0, index=frame.index)
    )
    known_any = _units(
        cd,
        "usd",
        [
            _combine(ctx.declaration(a, int(y), f) is not None or None for f in COUNTRY_SYSTEMS)
            for a, y in zip(cd["activity_id"], cd["year"], strict=True)
        ],
    )
    counts = _aggregate(known_any, groups).set_index(_KEY)
    frame["n_activities"] = counts["n_activities"]
    frame["n_activities_eligible"] = counts["n_activities_eligible"]
    return _ratio(frame.reset_index())


def _result_countries(
    row: Any, activity_id: str, countries: Mapping[str, list[tuple[str, float]]]
) -> list[str]:
    """The countries a result is about: its own country, else its activity's countries."""
    own = _text(row.country_code)
    return [own] if own else [c for c, _ in countries.get(activity_id, [])]


# =============================================================================
# assets/metrics/duplication.py
#
# Overlapping effort between partners, and concentration / fragmentation metrics.
#
# Implements the "Duplication and fragmentation" section of ``docs/metrics.md``
# (tables ``duplication_pairs`` of kind ``overlapping_effort`` and
# ``duplication_metrics``). Pure pandas / numpy / scipy.
#
# Overlapping effort (:func:`overlapping_pairs`)
#     Only CD activities (``activities.is_cd``) with both ``start_date`` and
#     ``end_date`` known (they are already "actual, else planned"); an activity
#     without dates cannot have a date overlap and is not scored. Candidates come
#     from BLOCKING on (recipient country, CD sector code): two activities are
#     compared only when they share a country and a CD sector (vocabulary 1).
#     Within a block the activities are sorted by start date and swept: an
#     activity is compared with the following ones whose start is not after its
#     end (pairs with disjoint dates have date overlap 0 and cannot score), and
#     at most with its ``window`` (:data:`HUGE_BLOCK_WINDOW`) nearest followers
#     by start date (sorted neighbourhood) in blocks of more than ``huge_block``
#     (:data:`HUGE_BLOCK`) activities. With the defaults every block is windowed
#     (a block of at most ``window`` activities is never cut), so the number of
#     comparisons per activity is bounded and the search is linear in the number
#     of activities. This is a documented approximation: in an extremely dense
#     block (more than ``window`` activities starting between an activity's
#     start and end) a pair further apart in the start-date order is not found;
#     ``PairSearchStats.window_hits`` counts the activities concerned.
#
#     Memory is bounded: candidates are generated in batches of about
#     ``chunk_pairs`` pairs; each batch is scored (different partners, date
#     overlap, sector overlap, then title similarity for the pairs still above
#     the threshold, TF-IDF rows being built only for those pairs' activities)
#     and only the pairs with score ≥ ``threshold`` are kept. Pairs whose date
#     overlap is below the threshold are already dropped during the sweep
#     (score ≤ date overlap). Pairs found in several blocks are kept once (with
#     the alphabetically first country). The result does not depend on
#     ``chunk_pairs``.
#
#     score = sector_overlap × date_overlap (× title_similarity when
#     ``use_text``), where
#     - sector_overlap = Σ min(share) ÷ Σ max(share) over the union of the two
#       activities' DAC 5-digit sector codes (all vocabulary-1 sectors, CD or
#       not; a missing share counts as an equal split);
#     - date_overlap = |intersection| ÷ |union| of the [start, end] intervals,
#       counted in whole days, both ends inclusive;
#     - title_similarity = cosine of TF-IDF vectors of character 3- to 5-grams of
#       "title description" (lowercased, whitespace collapsed, accents kept,
#       description cut at :data:`TEXT_MAX_CHARS` characters). n-grams are hashed
#       into 2**:data:`HASH_BITS` buckets (rare collisions are accepted); tf is
#       sublinear (1 + ln tf), idf = ln((1 + N) / (1 + df)) + 1 over the N
#       scored CD activities. Cosine is computed only for candidate pairs, as
#       row-wise dot products of L2-normalised sparse rows.
#     A pair is kept when score ≥ ``threshold``.
# =============================================================================


KIND = "overlapping_effort"
HUGE_BLOCK_WINDOW = 100
#: Blocks larger than this are windowed; equal to the window, so every block is
#: effectively windowed (a block of at most ``window`` rows is never cut).
HUGE_BLOCK = HUGE_BLOCK_WINDOW
CHUNK_PAIRS = 2_000_000
_TEXT_CHUNK = 5_000
_PAIR_CHUNK = 50_000


@dataclass(frozen=True)
class OverlapSettings:
    threshold: float = 0.3  # minimum score for an overlapping_effort pair
    use_text: bool = True  # multiply by title/description similarity
    method_version: str = "1"
    huge_block: int = HUGE_BLOCK  # blocks larger than this are windowed
    window: int = HUGE_BLOCK_WINDOW  # followers by start date compared in a huge block
    chunk_pairs: int = CHUNK_PAIRS  # candidate pairs scored at a time (bounds memory)


@dataclass
class PairSearchStats:
    """Counters of one :func:`overlapping_pairs` run (filled when passed in)."""

    candidates: int = 0  # pairs compared (same block, dates touching, within the window)
    scored: int = 0  # candidates of different partners whose score was computed
    window_hits: int = 0  # activities with a follower left out by the window
    batches: int = 0  # candidate batches processed
    pairs: int = 0  # pairs returned


# --------------------------------------------------------------------------- inputs


def _truthy(series: pd.Series) -> np.ndarray:
    return series.astype("boolean").fillna(False).to_numpy(dtype=bool)


def _days(series: pd.Series) -> np.ndarray:
    """Dates (date objects, strings or datetimes) -> float days since epoch, NaN if missing."""
    values = pd.to_datetime(series, errors="coerce")
    out = (values - pd.Timestamp("1970-01-01")).dt.days.to_numpy(dtype="float64", na_value=np.nan)
    return np.asarray(out, dtype="float64")


def _vocab1_sectors(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """activity_id, code, share (equal split where missing), is_cd_sector for vocabulary 1."""
    sectors = tables["activity_sectors"]
    s = sectors.loc[sectors["vocabulary"].astype("string") == "1"]
    out = pd.DataFrame(
        {
            "activity_id": s["activity_id"].astype(str).to_numpy(),
            "code": s["code"].astype(str).to_numpy(),
            "share": pd.to_numeric(s["share"], errors="coerce").astype("float64").to_numpy(),
            "is_cd_sector": _truthy(s["is_cd_sector"]),
        }
    )
    if out["share"].isna().any():
        equal = 1.0 / out.groupby("activity_id")["code"].transform("size")
        out["share"] = out["share"].fillna(equal)
    return out


def _countries(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    c = tables["activity_countries"]
    out = pd.DataFrame(
        {
            "activity_id": c["activity_id"].astype(str).to_numpy(),
            "country_code": c["country_code"].astype(str).to_numpy(),
            "share": pd.to_numeric(c["share"], errors="coerce").astype("float64").to_numpy(),
        }
    )
    if out["share"].isna().any():
        equal = 1.0 / out.groupby("activity_id")["country_code"].transform("size")
        out["share"] = out["share"].fillna(equal)
    return out


# --------------------------------------------------------------------------- candidates


def _sweep_batches(
    block: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    min_date_overlap: float = 0.0,
    huge_block: int = HUGE_BLOCK,
    window: int = HUGE_BLOCK_WINDOW,
    chunk_pairs: int = CHUNK_PAIRS,
    hit: np.ndarray | None = None,
    stats: PairSearchStats | None = None,
) -> Iterator[np.ndarray]:
    """Batches of row pairs (i, j), i < j, in the same block with start[j] <= end[i].

    Pairs whose date overlap (intersection ÷ union, inclusive days) is below
    ``min_date_overlap`` are dropped on the fly (the score cannot exceed the
    date overlap).

    Rows must be sorted by (block, start). The rows are taken as anchors
    ``chunk_pairs // window`` at a time; for each group pairs are generated by
    offsets k = 1, 2, ...; a row leaves the active set as soon as its k-th
    follower is in another block or starts after its end (all later followers
    then do too), so the cost is O(rows + pairs). Rows in blocks larger than
    ``huge_block`` stop after ``window`` followers; those that still had a
    candidate follower are flagged in ``hit`` (by row). A batch is yielded as
    soon as it holds ``chunk_pairs`` pairs, so a batch holds fewer than
    2 × ``chunk_pairs`` pairs.
    """
    n = len(block)
    if n < 2:
        return
    chunk_pairs = max(1, chunk_pairs)
    _, inverse, counts = np.unique(block, return_inverse=True, return_counts=True)
    limit = np.where(counts[inverse] > huge_block, window, n)
    del inverse
    anchors_per_group = max(1, chunk_pairs // max(1, min(window, n)))
    pending: list[np.ndarray] = []
    n_pending = 0
    for lo in range(0, n, anchors_per_group):
        active = np.arange(lo, min(lo + anchors_per_group, n), dtype=np.int64)
        k = 1
        while active.size:
            active = active[active + k < n]
            follower = active + k
            ok = (block[follower] == block[active]) & (start[follower] <= end[active])
            active, follower = active[ok], follower[ok]
            over = k > limit[active]
            if over.any():
                if hit is not None:
                    hit[active[over]] = True
                active, follower = active[~over], follower[~over]
            if not active.size:
                break
            if stats is not None:
                stats.candidates += int(active.size)
            inter = np.minimum(end[active], end[follower]) - start[follower] + 1
            union = np.maximum(end[active], end[follower]) - start[active] + 1
            good = inter >= min_date_overlap * union
            if good.any():
                pending.append(np.column_stack([active[good], follower[good]]))
                n_pending += int(good.sum())
            if n_pending >= chunk_pairs:
                yield np.concatenate(pending)
                pending, n_pending = [], 0
            k += 1
    if pending:
        yield np.concatenate(pending)


# --------------------------------------------------------------------------- text
# (n-grams, tf-idf rows and cosines come from assets.metrics.similarity: the SQL
# stage kept that part in Python unchanged, so it is shared, not copied)


def _idf(texts: list[str]) -> np.ndarray:
    """ln((1 + N) / (1 + df)) + 1 per hashed bucket, df counted in chunks (bounded memory)."""
    df = np.zeros(1 << HASH_BITS, dtype=np.float64)
    for begin in range(0, len(texts), _TEXT_CHUNK):
        counts = _count_matrix(texts[begin : begin + _TEXT_CHUNK])
        df += np.bincount(counts.indices, minlength=1 << HASH_BITS)
    return np.asarray(np.log((1.0 + len(texts)) / (1.0 + df)) + 1.0)


def _tfidf_rows(texts: list[str], docs: np.ndarray, idf: np.ndarray) -> sp.csr_matrix:
    """L2-normalised TF-IDF rows of ``texts[docs]`` (row i = ``texts[docs[i]]``)."""
    kept = [
        _count_matrix([texts[i] for i in docs[begin : begin + _TEXT_CHUNK]])
        for begin in range(0, len(docs), _TEXT_CHUNK)
    ]
    if not kept:
        return sp.csr_matrix((0, 1 << HASH_BITS), dtype=np.float32)
    matrix = sp.vstack(kept, format="csr") if len(kept) > 1 else kept[0]
    return _weighted(matrix, idf)


def tfidf_matrix(
    texts: list[str], needed: np.ndarray | None = None
) -> tuple[sp.csr_matrix, np.ndarray]:
    """L2-normalised TF-IDF rows (char 3-5-grams, hashed) for ``texts[needed]``.

    The idf is computed over all ``texts`` in chunks (bounded memory); rows are
    kept only for the ``needed`` documents, which must be sorted and unique
    (row i of the matrix is ``texts[needed[i]]``). Returns (matrix, needed).
    """
    n = len(texts)
    needed = np.arange(n) if needed is None else np.asarray(needed, dtype=np.int64)
    return _tfidf_rows(texts, needed, _idf(texts)), needed


def text_similarity(text_a: str, text_b: str, corpus: list[str] | None = None) -> float:
    """Title similarity of two texts, idf over ``corpus`` (default: the two texts)."""
    texts = clean_texts(pd.Series([text_a, text_b]), pd.Series(["", ""]))
    extra = clean_texts(pd.Series(corpus or []), pd.Series([""] * len(corpus or [])))
    matrix, _ = tfidf_matrix(texts + extra, np.array([0, 1]))
    return float(rowwise_cosine(matrix, np.array([0]), np.array([1]))[0])


# --------------------------------------------------------------------------- pairs

_PAD_SECTORS = 8


def _pad_shares(shares: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(codes, values, wide): each row's (code, share) list padded to a small dense width.

    Rows with more than :data:`_PAD_SECTORS` codes are flagged ``wide`` (their
    padded lists are left empty).
    """
    counts = np.diff(shares.indptr)
    n = shares.shape[0]
    width = max(min(int(counts.max()) if len(counts) else 0, _PAD_SECTORS), 1)
    wide = counts > _PAD_SECTORS
    codes = np.full((n, width), -1, dtype=np.int32)
    values = np.zeros((n, width), dtype=np.float64)
    narrow = np.repeat(~wide, counts)
    rows = np.repeat(np.arange(n), counts)[narrow]
    cols = (np.arange(len(shares.indices)) - np.repeat(shares.indptr[:-1], counts))[narrow]
    codes[rows, cols] = shares.indices[narrow]
    values[rows, cols] = shares.data[narrow]
    return codes, values, wide


def _pair_sum_min(
    shares: sp.csr_matrix,
    a: np.ndarray,
    b: np.ndarray,
    padded: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Σ_code min(share_a, share_b) for each pair (rows a[i], b[i] of ``shares``).

    Activities rarely have more than a few sectors: their (code, share) lists
    are padded to a small dense width (:func:`_pad_shares`, computed once and
    passed as ``padded`` when called repeatedly) and compared pairwise, which
    is much faster than sparse row indexing; pairs with a wider row fall back
    to sparse minimum.
    """
    codes, values, wide = _pad_shares(shares) if padded is None else padded
    out = np.zeros(len(a), dtype=np.float64)
    for begin in range(0, len(a), _PAIR_CHUNK * 20):
        sl = slice(begin, begin + _PAIR_CHUNK * 20)
        ca, cb = codes[a[sl]], codes[b[sl]]
        va, vb = values[a[sl]], values[b[sl]]
        acc = np.zeros(len(ca), dtype=np.float64)
        for i in range(ca.shape[1]):
            for j in range(cb.shape[1]):
                match = (ca[:, i] == cb[:, j]) & (ca[:, i] >= 0)
                acc += np.where(match, np.minimum(va[:, i], vb[:, j]), 0.0)
        out[sl] = acc
    sparse = np.flatnonzero(wide[a] | wide[b])
    for begin in range(0, len(sparse), _PAIR_CHUNK):
        sel = sparse[begin : begin + _PAIR_CHUNK]
        out[sel] = np.asarray(shares[a[sel]].minimum(shares[b[sel]]).sum(axis=1)).ravel()
    return out


def _pair_id(a: str, b: str) -> str:
    key = "\x1f".join([KIND, *sorted((a, b))])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def _month(days: np.ndarray) -> np.ndarray:
    return np.asarray(
        (np.datetime64("1970-01-01") + days.astype("int64").astype("timedelta64[D]"))
        .astype("datetime64[M]")
        .astype(str)
    )


def _flows(tx: pd.DataFrame, orgs: pd.DataFrame) -> set[tuple[str, str]]:
    """(activity, the activity or organisation its funds go to or come from): receivers
    of outgoing funds (types 2, 3), providers of incoming funds (types 1, 11), and its
    participating organisations' activities."""
    out: set[tuple[str, str]] = {
        (_text(a), _text(o))
        for a, o in zip(orgs["activity_id"], orgs["org_activity_id"], strict=True)
        if _text(o) not in ("", _text(a))
    }
    for row in tx.itertuples(index=False):
        activity, kind = _text(row.activity_id), _text(row.transaction_type)
        if kind in CHAIN_OUTGOING_TYPES:
            others = (row.receiver_activity_id, row.receiver_org_ref)
        elif kind in CHAIN_INCOMING_TYPES:
            others = (row.provider_activity_id, row.provider_org_ref)
        else:
            continue
        out.update((activity, _text(o)) for o in others if _text(o) not in ("", activity))
    return out


def overlapping_pairs(
    tables: Mapping[str, pd.DataFrame],
    settings: OverlapSettings = OverlapSettings(),
    stats: PairSearchStats | None = None,
) -> pd.DataFrame:
    """``duplication_pairs`` rows of kind ``overlapping_effort`` (see the module docstring).

    ``stats``, when given, is filled with the counters of the search.
    """
    acts = tables["activities"]
    acts = acts.loc[_truthy(acts["is_cd"])]
    start = _days(acts["start_date"])
    end = _days(acts["end_date"])
    dated = ~np.isnan(start) & ~np.isnan(end) & (end >= start)
    acts = acts.loc[dated]
    start, end = start[dated], end[dated]
    ids = acts["activity_id"].astype(str).to_numpy()
    n_acts = len(ids)
    empty = table_frame("duplication_pairs", [])
    if n_acts < 2:
        return empty
    index = pd.Index(ids)
    refs = acts["reporting_org_ref"].astype("string").fillna("").to_numpy(dtype=object)
    partner = pd.factorize(acts["reporting_org_ref"].astype("string").fillna(""))[0]
    flows = _flows(_table(tables, "transactions"), _table(tables, "participating_orgs"))

    sectors = _vocab1_sectors(tables)
    sectors["act"] = index.get_indexer(sectors["activity_id"])
    sectors = sectors.loc[sectors["act"] >= 0]
    countries = _countries(tables)
    countries["act"] = index.get_indexer(countries["activity_id"])
    countries = countries.loc[countries["act"] >= 0, ["act", "country_code"]]

    blocks = countries.merge(
        sectors.loc[sectors["is_cd_sector"], ["act", "code"]], on="act"
    ).drop_duplicates()
    if blocks.empty:
        return empty
    blocks["block"] = pd.factorize(
        blocks["country_code"].astype(str) + "|" + blocks["code"].astype(str)
    )[0]
    act_b = blocks["act"].to_numpy(dtype=np.int64)
    blk = blocks["block"].to_numpy(dtype=np.int64)
    order = np.lexsort((start[act_b], blk))
    act_b, blk = act_b[order], blk[order]
    # country of each block row as its rank in alphabetical order
    country_codes, country_b = np.unique(
        blocks["country_code"].to_numpy()[order], return_inverse=True
    )
    del blocks, order

    # sector overlap: weighted Jaccard over vocabulary-1 shares
    codes = pd.factorize(sectors["code"])[0]
    shares = sp.csr_matrix(
        (sectors["share"].to_numpy(dtype=np.float64), (sectors["act"].to_numpy(), codes)),
        shape=(n_acts, max(codes.max() + 1, 1) if len(codes) else 1),
    )
    shares.sum_duplicates()
    totals = np.asarray(shares.sum(axis=1)).ravel()
    padded = _pad_shares(shares)

    texts: list[str] = []
    idf: np.ndarray | None = None
    if settings.use_text:
        texts = clean_texts(
            acts["title"] if "title" in acts else pd.Series([""] * n_acts),
            acts["description"] if "description" in acts else pd.Series([""] * n_acts),
        )

    hit = np.zeros(len(act_b), dtype=bool)
    stats = stats if stats is not None else PairSearchStats()
    kept: list[tuple[np.ndarray, ...]] = []
    for rows in _sweep_batches(
        blk,
        start[act_b],
        end[act_b],
        settings.threshold,
        settings.huge_block,
        settings.window,
        settings.chunk_pairs,
        hit,
        stats,
    ):
        stats.batches += 1
        a, b = act_b[rows[:, 0]], act_b[rows[:, 1]]
        pair_country = country_b[rows[:, 0]]
        del rows
        different = (partner[a] != partner[b]) & ~np.array(
            [
                (ids[x], ids[y]) in flows
                or (ids[x], refs[y]) in flows
                or (ids[y], ids[x]) in flows
                or (ids[y], refs[x]) in flows
                for x, y in zip(a, b, strict=True)
            ],
            dtype=bool,
        )
        a, b, pair_country = a[different], b[different], pair_country[different]
        stats.scored += len(a)
        # date overlap (inclusive days)
        inter = np.minimum(end[a], end[b]) - np.maximum(start[a], start[b]) + 1
        union = (end[a] - start[a] + 1) + (end[b] - start[b] + 1) - inter
        date_overlap = inter / union
        sum_min = _pair_sum_min(shares, a, b, padded)
        denom = totals[a] + totals[b] - sum_min
        sector_overlap = np.divide(sum_min, denom, out=np.zeros_like(sum_min), where=denom > 0)
        score = sector_overlap * date_overlap
        keep = score >= settings.threshold  # title similarity <= 1 can only lower it
        a, b, pair_country = a[keep], b[keep], pair_country[keep]
        sector_overlap, date_overlap, score = sector_overlap[keep], date_overlap[keep], score[keep]
        title_sim = np.full(len(a), np.nan)
        if settings.use_text and len(a):
            if idf is None:
                idf = _idf(texts)
            docs = np.unique(np.concatenate([a, b]))
            matrix = _tfidf_rows(texts, docs, idf)
            title_sim = rowwise_cosine(matrix, np.searchsorted(docs, a), np.searchsorted(docs, b))
            del matrix
            score = score * title_sim
            keep = score >= settings.threshold
            a, b, pair_country = a[keep], b[keep], pair_country[keep]
            sector_overlap, date_overlap = sector_overlap[keep], date_overlap[keep]
            score, title_sim = score[keep], title_sim[keep]
        if len(a):
            kept.append((a, b, pair_country, sector_overlap, date_overlap, score, title_sim))
    stats.window_hits = int(np.unique(act_b[hit]).size)
    if not kept:
        return empty
    a, b, pair_country, sector_overlap, date_overlap, score, title_sim = (
        np.concatenate(parts) for parts in zip(*kept, strict=True)
    )
    del kept
    # dedupe across blocks (a pair sharing several sectors, or several countries:
    # the first country in alphabetical order is kept); the scores do not depend on
    # the block
    key = np.minimum(a, b) * np.int64(n_acts) + np.maximum(a, b)
    order = np.lexsort((pair_country, key))
    key = key[order]
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    pick = order[first]
    a, b = key[first] // n_acts, key[first] % n_acts
    pair_country, sector_overlap = pair_country[pick], sector_overlap[pick]
    date_overlap, score, title_sim = date_overlap[pick], score[pick], title_sim[pick]
    del key, order, first, pick
    stats.pairs = len(a)

    # evidence: shared sector codes, common date range, title similarity
    shared = sp.csr_matrix(shares[a].minimum(shares[b]))
    shared.eliminate_zeros()
    code_names = np.asarray(pd.factorize(sectors["code"])[1], dtype=object)
    coo = shared.tocoo()
    shared_codes = (
        pd.DataFrame({"row": coo.row, "code": code_names[coo.col]})
        .sort_values(["row", "code"])
        .groupby("row")["code"]
        .agg(" ".join)
        .reindex(range(len(a)), fill_value="")
    )
    date_from = _month(np.maximum(start[a], start[b]))
    date_to = _month(np.minimum(end[a], end[b]))
    evidence = "sectors " + shared_codes.to_numpy(dtype=object) + "; dates " + date_from
    evidence = evidence + ".." + date_to
    if settings.use_text:
        evidence = evidence + np.char.mod("; title similarity %.2f", title_sim).astype(object)

    id_a, id_b = ids[a], ids[b]
    swap = id_a > id_b
    id_a, id_b = np.where(swap, id_b, id_a), np.where(swap, id_a, id_b)
    out = pd.DataFrame(
        {
            "pair_id": [_pair_id(x, y) for x, y in zip(id_a, id_b, strict=True)],
            "activity_id_a": id_a,
            "activity_id_b": id_b,
            "country_code": country_codes[pair_country],
            "kind": KIND,
            "score": score,
            "sector_overlap": sector_overlap,
            "date_overlap": date_overlap,
            "title_similarity": title_sim,
            "evidence": evidence,
        }
    ).sort_values(["activity_id_a", "activity_id_b"])
    return table_frame("duplication_pairs", out)


def overlap_clusters(pairs: pd.DataFrame) -> dict[str, int]:
    """activity_id -> cluster number: connected components of overlapping activities.

    Only ``overlapping_effort`` pairs are used. Clusters are numbered from 0 in
    the order of their smallest activity_id; activities in no pair are absent.
    """
    p = pairs.loc[pairs["kind"].astype(str) == KIND] if "kind" in pairs else pairs
    if p.empty:
        return {}
    ids = np.unique(
        np.concatenate([p["activity_id_a"].astype(str), p["activity_id_b"].astype(str)])
    )
    index = pd.Index(ids)
    a = index.get_indexer(p["activity_id_a"].astype(str))
    b = index.get_indexer(p["activity_id_b"].astype(str))
    graph = sp.coo_matrix((np.ones(len(a)), (a, b)), shape=(len(ids), len(ids)))
    _, labels = connected_components(graph, directed=False)
    # renumber by first appearance in sorted id order (ids are sorted)
    _, first = np.unique(labels, return_index=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    return {str(i): int(rank[label]) for i, label in zip(ids, labels, strict=True)}


# --------------------------------------------------------------------------- metrics


def _membership(tables: Mapping[str, pd.DataFrame], cd_ids: pd.Index) -> pd.DataFrame:
    """country_code, sector_code, priority_id, activity_id, weight of every CD activity.

    Sector rows: weight = country share × CD sector share (vocabulary 1).
    Priority rows (from ``alignment_links``): weight = country share ÷ number of
    priorities the activity is linked to in that country (equal split, so a
    dollar is never counted twice across priorities of one country).
    """
    countries = _countries(tables)
    countries = countries.loc[countries["activity_id"].isin(cd_ids)]
    sectors = _vocab1_sectors(tables)
    sectors = sectors.loc[sectors["is_cd_sector"] & sectors["activity_id"].isin(cd_ids)]
    by_sector = countries.merge(
        sectors[["activity_id", "code", "share"]], on="activity_id", suffixes=("_c", "_s")
    )
    by_sector = pd.DataFrame(
        {
            "country_code": by_sector["country_code"],
            "sector_code": by_sector["code"],
            "priority_id": "",
            "activity_id": by_sector["activity_id"],
            "weight": by_sector["share_c"] * by_sector["share_s"],
        }
    )
    frames = [by_sector]
    links = tables.get("alignment_links")
    if links is not None and not links.empty and "priority_id" in links:
        lk = pd.DataFrame(
            {
                "activity_id": links["activity_id"].astype(str).to_numpy(),
                "country_code": links["country_code"].astype(str).to_numpy(),
                "priority_id": links["priority_id"].astype("string").to_numpy(),
            }
        ).dropna()
        lk = lk.loc[lk["activity_id"].isin(cd_ids) & (lk["priority_id"] != "")]
        lk = lk.drop_duplicates(["activity_id", "country_code", "priority_id"])
        lk["n"] = lk.groupby(["activity_id", "country_code"])["priority_id"].transform("size")
        lk = lk.merge(countries, on=["activity_id", "country_code"])
        frames.append(
            pd.DataFrame(
                {
                    "country_code": lk["country_code"],
                    "sector_code": "",
                    "priority_id": lk["priority_id"].astype(str),
                    "activity_id": lk["activity_id"],
                    "weight": lk["share"] / lk["n"],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _fragmentation(cell_partner: pd.DataFrame, cell: list[str], ref: list[str]) -> pd.Series:
    """OECD fragmentation ratio per cell from positive partner amounts ``usd``.

    Relationship = a partner with positive disbursement in the cell. It is
    significant if (a) its share of the cell's aid ≥ its share of the reference
    total (the same sector or priority and year, all countries in the data), or
    (b) it is among the largest partners that together give ≥ 90% of the cell's
    aid (partners are added by decreasing amount until 90% is reached; the one
    crossing 90% is included).
    """
    cp = cell_partner.loc[cell_partner["usd"] > 0].copy()
    if cp.empty:
        return pd.Series(dtype="float64")
    cp["cell_total"] = cp.groupby(cell)["usd"].transform("sum")
    partner_ref = cp.groupby([*ref, "reporting_org_ref"])["usd"].transform("sum")
    ref_total = cp.groupby(ref)["usd"].transform("sum")
    share_cell = cp["usd"] / cp["cell_total"]
    share_ref = partner_ref / ref_total
    cp = cp.assign(share_cell=share_cell, share_ref=share_ref)
    cp = cp.sort_values(
        [*cell, "usd", "reporting_org_ref"], ascending=[True] * len(cell) + [False, True]
    )
    before = cp.groupby(cell)["share_cell"].cumsum() - cp["share_cell"]
    significant = (cp["share_cell"] >= cp["share_ref"] - 1e-12) | (before < 0.9 - 1e-12)
    cp["non_significant"] = ~significant
    return cp.groupby(cell)["non_significant"].mean()


def duplication_metrics(
    tables: Mapping[str, pd.DataFrame], pairs: pd.DataFrame, method_version: str = "1"
) -> pd.DataFrame:
    """``duplication_metrics`` rows per country × CD sector (or priority) × year.

    Cell membership: a CD activity is in (country, sector, year) when it has
    that recipient country and CD sector (vocabulary 1) and either has a
    counted CD disbursement (transaction type 3 or 4, ``counts_toward_totals``)
    dated in the year or its [start_date, end_date] covers part of the year.
    Priority cells (``alignment_links``, when given) work the same way with the
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
    acts = tables["activities"]
    acts = acts.loc[_truthy(acts["is_cd"])]
    cd_ids = pd.Index(acts["activity_id"].astype(str).unique())
    partner_of = pd.Series(
        acts["reporting_org_ref"].astype("string").fillna("").to_numpy(),
        index=acts["activity_id"].astype(str).to_numpy(),
    )
    member = _membership(tables, cd_ids)
    cell = ["country_code", "sector_code", "priority_id", "year"]
    if member.empty:
        return table_frame("duplication_metrics", [])

    # counted CD disbursement per activity and year
    tx = tables["transactions"]
    tx = tx.loc[
        tx["transaction_type"].astype("string").isin(["3", "4"])
        & _truthy(tx["counts_toward_totals"])
        & tx["activity_id"].astype(str).isin(cd_ids)
    ]
    tx = pd.DataFrame(
        {
            "activity_id": tx["activity_id"].astype(str).to_numpy(),
            "year": pd.to_datetime(tx["transaction_date"], errors="coerce").dt.year.to_numpy(),
            "usd": pd.to_numeric(tx["value_usd"], errors="coerce").astype("float64").to_numpy(),
        }
    ).dropna()
    tx["year"] = tx["year"].astype("int64")
    act_year_usd = tx.groupby(["activity_id", "year"], as_index=False)["usd"].sum()

    # activity-years: disbursement years ∪ years covered by the dates
    start_year = pd.to_datetime(acts["start_date"], errors="coerce").dt.year
    end_year = pd.to_datetime(acts["end_date"], errors="coerce").dt.year
    spans = pd.DataFrame(
        {"activity_id": acts["activity_id"].astype(str).to_numpy(), "s": start_year, "e": end_year}
    ).dropna()
    spans = spans.loc[spans["e"] >= spans["s"]]
    lengths = (spans["e"] - spans["s"] + 1).astype("int64").to_numpy()
    covered = pd.DataFrame(
        {
            "activity_id": np.repeat(spans["activity_id"].to_numpy(), lengths),
            "year": np.repeat(spans["s"].astype("int64").to_numpy(), lengths)
            + (np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)),
        }
    )
    act_years = pd.concat([covered, act_year_usd[["activity_id", "year"]]]).drop_duplicates()
    act_years = act_years.merge(act_year_usd, on=["activity_id", "year"], how="left")
    act_years["usd"] = act_years["usd"].fillna(0.0)

    rows = member.merge(act_years, on="activity_id")
    rows["usd"] = rows["usd"] * rows["weight"]
    rows["reporting_org_ref"] = partner_of.reindex(rows["activity_id"]).to_numpy()

    # pairs whose two activities are both in the cell
    p = pairs.loc[pairs["kind"].astype(str) == KIND] if len(pairs) else pairs
    in_pair = pd.Series(False, index=rows.index)
    n_pairs = pd.Series(0, index=pd.MultiIndex.from_tuples([], names=cell), dtype="int64")
    if len(p):
        key = ["country_code", "sector_code", "priority_id", "year"]
        pa = pd.DataFrame(
            {
                "country_code": p["country_code"].astype(str).to_numpy(),
                "a": p["activity_id_a"].astype(str).to_numpy(),
                "b": p["activity_id_b"].astype(str).to_numpy(),
            }
        )
        cells = rows[[*key, "activity_id"]]
        both = pa.merge(cells.rename(columns={"activity_id": "a"}), on=["country_code", "a"])
        both = both.merge(cells.rename(columns={"activity_id": "b"}), on=[*key, "b"])
        n_pairs = both.groupby(key).size()
        flagged = pd.concat(
            [
                both[[*key, "a"]].rename(columns={"a": "activity_id"}),
                both[[*key, "b"]].rename(columns={"b": "activity_id"}),
            ]
        ).drop_duplicates()
        flagged["flag"] = True
        in_pair = (
            rows[[*key, "activity_id"]]
            .merge(flagged, on=[*key, "activity_id"], how="left")["flag"]
            .fillna(False)
            .astype(bool)
        )
        in_pair.index = rows.index
    rows["overlap_usd"] = rows["usd"].where(in_pair.to_numpy(), 0.0)

    grouped = rows.groupby(cell)
    out = pd.DataFrame(
        {
            "n_partners": grouped["reporting_org_ref"].nunique(),
            "n_activities": grouped["activity_id"].nunique(),
            "cd_disbursement_usd": grouped["usd"].sum(),
            "overlap_usd": grouped["overlap_usd"].sum(),
        }
    )
    cell_partner = rows.groupby([*cell, "reporting_org_ref"], as_index=False)["usd"].sum()
    positive = cell_partner.assign(usd=cell_partner["usd"].clip(lower=0.0))
    positive["share"] = positive["usd"] / positive.groupby(cell)["usd"].transform("sum")
    hhi = (positive["share"] ** 2).groupby([positive[c] for c in cell]).sum(min_count=1)
    out["hhi"] = hhi.reindex(out.index)
    has_money = out["cd_disbursement_usd"] > 0
    out.loc[~has_money, "hhi"] = np.nan
    out["effective_partners"] = np.where(out["hhi"] > 0, 1.0 / out["hhi"], np.nan)
    ref = ["sector_code", "priority_id", "year"]
    out["fragmentation_ratio"] = _fragmentation(cell_partner, cell, ref).reindex(out.index)
    out.loc[~has_money, "fragmentation_ratio"] = np.nan
    out["n_overlap_pairs"] = n_pairs.reindex(out.index, fill_value=0).astype("int64")
    out["overlap_value_share"] = np.where(
        has_money, (out["overlap_usd"] / out["cd_disbursement_usd"]).clip(0, 1), np.nan
    )
    out = out.drop(columns="overlap_usd").reset_index()
    out["method_version"] = method_version
    out = out.sort_values(["country_code", "priority_id", "sector_code", "year"])
    out = out.replace({"sector_code": {"": None}, "priority_id": {"": None}})
    return table_frame("duplication_metrics", out)


# =============================================================================
# assets/metrics/stage.py
#
# The metrics stage: from the harmonised tables to the four metrics tables.
#
# In order: double counting (transactions that must not count toward totals are
# flagged with the reason; record-level duplication pairs), alignment links and
# metrics, overlapping-effort pairs (blocked on country and CD sector), then the
# duplication metrics. Pure: the Dagster asset and the CLI call :func:`add_metrics`.
# =============================================================================


#: The tables this stage adds to the harmonised ones.
METRIC_TABLES = ("alignment_links", "alignment_metrics", "duplication_pairs", "duplication_metrics")
#: Every table a release publishes.
PUBLISHED_TABLES = (*ALL_TABLES, *METRIC_TABLES)


def add_metrics(
    tables: Mapping[str, pd.DataFrame], settings: MetricsSettings
) -> dict[str, pd.DataFrame]:
    """The harmonised tables (transactions flagged for double counting) plus the metrics."""
    result = dict(tables)
    # The metrics read one activity per identifier (the schema's key). A broken
    # table with repeated identifiers is still returned as it is, so that its
    # blocking check fails and stops publishing, rather than the metrics crashing.
    view = dict(result)
    if "activities" in view:
        view["activities"] = view["activities"].drop_duplicates("activity_id")
    transactions, record_pairs = flag_double_counting(view)
    result["transactions"] = view["transactions"] = transactions
    links = alignment_links(view)
    result["alignment_links"] = links
    result["alignment_metrics"] = alignment_metrics(view, links, settings.method_version)
    overlap = overlapping_pairs(
        view,
        OverlapSettings(
            threshold=settings.overlap_threshold,
            use_text=settings.overlap_use_text,
            method_version=settings.method_version,
        ),
    )
    view["alignment_links"] = links
    result["duplication_metrics"] = duplication_metrics(view, overlap, settings.method_version)
    pairs = [frame for frame in (record_pairs, overlap) if len(frame)]
    result["duplication_pairs"] = (
        table_frame("duplication_pairs", pd.concat(pairs, ignore_index=True))
        .sort_values(["kind", "activity_id_a", "activity_id_b", "pair_id"])
        .reset_index(drop=True)
        if pairs
        else table_frame("duplication_pairs", [])
    )
    return result
