"""The same money counted twice (record level): flags and published pairs.

:func:`flag_double_counting` completes ``transactions.counts_toward_totals`` /
``exclusion_reason`` and returns the ``duplication_pairs`` rows of kinds
``same_activity_reported_twice`` and ``funding_chain`` (see
``docs/metrics.md``, "Duplication and fragmentation", point 1). Pure pandas;
every step is a merge or a groupby, never a loop over transactions.

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
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import pandas as pd

from assets.harmonise.schema import field_names, table_frame
from assets.iati.harmonise import ALSO_IN_IATI_RULE, stable_id

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
