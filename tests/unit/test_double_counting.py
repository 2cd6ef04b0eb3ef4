"""The same money counted twice: transaction flags and published pairs (the metrics stage,
run on frames by :func:`tests.metrics_run.run_metrics`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import pytest

from assets.harmonise.schema import field_names, table_frame
from assets.iati.harmonise import HarmoniseOptions, harmonise_paths, stable_id
from assets.iati.rates import load_exchange_rates
from assets.settings import load_settings
from tests.conftest import IATI_FIXTURES, RATES
from tests.metrics_run import run_metrics

SHA = "0" * 64


def _activity(activity_id: str, file: str, **fields: Any) -> dict[str, Any]:
    return {
        "activity_id": activity_id,
        "is_cd": True,
        "source": "iati",
        "source_file": file,
        "source_sha256": SHA,
        "source_ref": "iati-activity[1]",
        **fields,
    }


def _tx(
    tid: str,
    activity_id: str,
    kind: str,
    value: float,
    date: str,
    file: str,
    source: str = "iati",
    **fields: Any,
) -> dict[str, Any]:
    incoming = kind in {"1", "11", "13"}
    secondary = fields.pop("secondary", False)
    reason = "incoming funds" if incoming else ("secondary reporter" if secondary else None)
    return {
        "transaction_id": tid,
        "activity_id": activity_id,
        "transaction_type": kind,
        "transaction_date": dt.date.fromisoformat(date),
        "value": value,
        "currency": "USD",
        "value_usd": value,
        "usd_rate": 1.0,
        "counts_toward_totals": reason is None,
        "exclusion_reason": reason,
        "source": source,
        "source_file": file,
        "source_sha256": SHA,
        "source_ref": f"{tid}",
        **fields,
    }


def flag_double_counting(tables: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the flagged transactions, the pairs of kinds same_activity_reported_twice and
    funding_chain) of the metrics stage."""
    published = run_metrics(tables)
    pairs = published["duplication_pairs"]
    record = pairs.loc[pairs["kind"] != "overlapping_effort"].reset_index(drop=True)
    return published["transactions"], record


def double_counting_tables() -> dict[str, pd.DataFrame]:
    """A funding chain, a parent and its child, a cross-file duplicate, an activity in IATI
    and in a partner submission, a secondary reporter."""
    activities = [
        _activity("GB-1-A", "gb-1.xml", reporting_org_ref="GB-1", hierarchy=1),
        _activity("XM-9-B", "xm-9.xml", reporting_org_ref="XM-9", hierarchy=1),
        _activity("GB-1-P", "gb-1.xml", reporting_org_ref="GB-1", hierarchy=1),
        _activity("GB-1-C", "gb-1.xml", reporting_org_ref="GB-1", hierarchy=2),
        _activity("DE-1-D", "de-1-new.xml", reporting_org_ref="DE-1"),
        _activity("SE-1-S", "se-1.xml", reporting_org_ref="SE-1"),
        _activity("XX-2-R", "xx-2.xml", reporting_org_ref="XX-2", secondary_reporter=True),
    ]
    countries = [
        {"activity_id": a, "country_code": c, "source_file": "f", "source_sha256": SHA}
        for a, c in [
            ("GB-1-A", "KE"),
            ("GB-1-A", "UG"),
            ("XM-9-B", "UG"),
            ("XM-9-B", "KE"),
            ("DE-1-D", "TZ"),
            ("SE-1-S", "RW"),
        ]
    ]
    sub = {"source": "partner_submission", "source_file": "se-1-2025.xlsx"}
    transactions = [
        # funder A disburses 100,000 to B; B reports it as incoming funds, then disburses 80,000
        _tx("t1", "GB-1-A", "3", 100_000, "2024-03-01", "gb-1.xml", receiver_activity_id="XM-9-B"),
        _tx("t2", "XM-9-B", "1", 100_000, "2024-03-05", "xm-9.xml", provider_activity_id="GB-1-A"),
        _tx("t3", "XM-9-B", "3", 80_000, "2024-06-01", "xm-9.xml"),
        # parent P and child C report the same disbursement; P has one more of its own
        _tx("t4", "GB-1-P", "3", 50_000, "2024-04-01", "gb-1.xml"),
        _tx("t5", "GB-1-C", "3", 50_000, "2024-04-01", "gb-1.xml"),
        _tx("t6", "GB-1-P", "3", 7_000, "2024-05-01", "gb-1.xml"),
        # the kept copy of a cross-file duplicate
        _tx("t7", "DE-1-D", "3", 30_000, "2024-02-01", "de-1-new.xml"),
        # the same activity in IATI and in a partner submission
        _tx("t8", "SE-1-S", "3", 20_000, "2024-07-01", "se-1.xml"),
        {**_tx("t9", "SE-1-S", "3", 25_000, "2025-12-31", "", **sub)},
        # a secondary reporter
        _tx("t10", "XX-2-R", "3", 9_000, "2024-01-01", "xx-2.xml", secondary=True),
    ]
    quarantine = [
        {
            "source_file": "de-1-old.xml",
            "source_ref": "iati-activity[4]",
            "table": "activities",
            "field": "activity_id",
            "rule": "duplicate_activity_across_files",
            "value": "DE-1-D",
            "message": "activity 'DE-1-D' is also published in de-1-new.xml, which is kept "
            "(the reporting organisation's own publication, else the most recently updated); "
            "this copy is not accepted",
            "severity": "error",
        }
    ]
    return {
        "activities": table_frame("activities", activities),
        "activity_countries": table_frame("activity_countries", countries),
        "transactions": table_frame("transactions", transactions),
        "quarantine": table_frame("quarantine", quarantine),
    }


@pytest.fixture
def tables() -> dict[str, pd.DataFrame]:
    return double_counting_tables()


def test_flags_and_reasons(tables: dict[str, pd.DataFrame]) -> None:
    out, _ = flag_double_counting(tables)
    assert list(out.columns) == field_names("transactions")
    assert out["counts_toward_totals"].dtype == "boolean"
    flags = dict(zip(out["transaction_id"], out["counts_toward_totals"], strict=True))
    reasons = dict(zip(out["transaction_id"], out["exclusion_reason"], strict=True))
    assert {t for t, c in flags.items() if c} == {"t1", "t3", "t5", "t6", "t7", "t8"}
    assert reasons["t2"] == "incoming funds from GB-1-A (counted at the funder)"
    assert reasons["t4"] == "reported again by child activity GB-1-C"
    assert reasons["t9"] == "also reported in IATI (file se-1.xml)"
    assert reasons["t10"] == "secondary reporter"
    for t in ("t1", "t3", "t5", "t6", "t7", "t8"):
        assert pd.isna(reasons[t])
    # every figure once: 100,000 + 80,000 + 50,000 + 7,000 + 30,000 + 20,000
    total = out.loc[out["counts_toward_totals"].astype(bool), "value_usd"].sum()
    assert total == 287_000
    # the input is not modified
    assert tables["transactions"]["counts_toward_totals"].sum() == 8


def test_pairs(tables: dict[str, pd.DataFrame]) -> None:
    _, pairs = flag_double_counting(tables)
    assert list(pairs.columns) == field_names("duplication_pairs")
    rows = {(r.kind, r.activity_id_a, r.activity_id_b): r for r in pairs.itertuples()}
    assert set(rows) == {
        ("funding_chain", "GB-1-A", "XM-9-B"),
        ("same_activity_reported_twice", "DE-1-D", "DE-1-D"),
        ("same_activity_reported_twice", "SE-1-S", "SE-1-S"),
    }
    chain = rows[("funding_chain", "GB-1-A", "XM-9-B")]
    assert chain.evidence == (
        "GB-1-A disbursed USD 100,000 to XM-9-B on 2024-03-01 (receiver-activity-id); "
        "XM-9-B reports incoming funds from GB-1-A (provider-activity-id)"
    )
    assert chain.country_code == "UG"  # B's first country that A shares
    assert chain.score == 1.0
    assert chain.pair_id == stable_id("funding_chain", "GB-1-A", "XM-9-B", "GB-1-A>XM-9-B")
    cross = rows[("same_activity_reported_twice", "DE-1-D", "DE-1-D")]
    assert cross.evidence == (
        "identifier DE-1-D published in de-1-new.xml (kept) and in de-1-old.xml "
        "(set aside, see quarantine)"
    )
    assert cross.country_code == "TZ"
    both = rows[("same_activity_reported_twice", "SE-1-S", "SE-1-S")]
    assert both.evidence == (
        "identifier SE-1-S reported in IATI file se-1.xml and in partner submission "
        "se-1-2025.xlsx; the description and every transaction type IATI reports are "
        "taken from IATI"
    )
    assert both.country_code == "RW"
    assert pairs[["sector_overlap", "date_overlap", "title_similarity"]].isna().all().all()
    assert pairs["pair_id"].str.fullmatch(r"[0-9a-f]{20}").all()
    # stable: the same input gives the same pairs
    _, again = flag_double_counting(tables)
    pd.testing.assert_frame_equal(pairs.reset_index(drop=True), again.reset_index(drop=True))


def test_receiver_link_alone_makes_a_chain(tables: dict[str, pd.DataFrame]) -> None:
    tx = tables["transactions"].copy()
    tx.loc[tx["transaction_id"] == "t2", "provider_activity_id"] = None
    out, pairs = flag_double_counting({**tables, "transactions": tx})
    chain = pairs.loc[pairs["kind"] == "funding_chain"].iloc[0]
    assert chain["evidence"].endswith("XM-9-B reports no incoming funds naming GB-1-A")
    reason = out.loc[out["transaction_id"] == "t2", "exclusion_reason"].iloc[0]
    assert reason == "incoming funds from GB-1-A (counted at the funder)"


def test_provider_link_alone_makes_a_chain(tables: dict[str, pd.DataFrame]) -> None:
    tx = tables["transactions"].copy()
    tx.loc[tx["transaction_id"] == "t1", "receiver_activity_id"] = None
    _, pairs = flag_double_counting({**tables, "transactions": tx})
    chain = pairs.loc[pairs["kind"] == "funding_chain"].iloc[0]
    assert chain["evidence"] == (
        "GB-1-A names no receiver-activity-id XM-9-B; "
        "XM-9-B reports incoming funds from GB-1-A (provider-activity-id)"
    )


def test_empty_tables() -> None:
    out, pairs = flag_double_counting({"transactions": table_frame("transactions", [])})
    assert out.empty
    assert pairs.empty
    assert list(pairs.columns) == field_names("duplication_pairs")


def test_real_fixture_with_provider_activity_id() -> None:
    options = HarmoniseOptions(
        rules=load_settings().cd_rules,
        rates=load_exchange_rates([RATES / "imf-monthly-subset.csv"]),
    )
    _, tables = harmonise_paths([IATI_FIXTURES / "valid" / "provider-activity-id.xml"], options)
    before = tables["transactions"]
    out, pairs = flag_double_counting(tables)
    # the provider activity GB-1-202907 is not in the tables: no chain, nothing newly flagged
    assert pairs.empty
    pd.testing.assert_series_equal(before["counts_toward_totals"], out["counts_toward_totals"])
    pd.testing.assert_series_equal(before["exclusion_reason"], out["exclusion_reason"])
    incoming = out["transaction_type"].isin(["1", "11", "13"])
    assert (out.loc[incoming, "exclusion_reason"] == "incoming funds").all()
    assert not out.loc[incoming, "counts_toward_totals"].any()


def test_first_reason_is_kept_and_nothing_is_unflagged(tables: dict[str, pd.DataFrame]) -> None:
    tx = tables["transactions"].copy()
    parent = tx["transaction_id"] == "t4"
    tx.loc[parent, "counts_toward_totals"] = False
    tx.loc[parent, "exclusion_reason"] = "secondary reporter"
    out, _ = flag_double_counting({**tables, "transactions": tx})
    row = out.loc[out["transaction_id"] == "t4"].iloc[0]
    assert not row["counts_toward_totals"]
    assert row["exclusion_reason"] == "secondary reporter"
    before = tx.set_index("transaction_id")["counts_toward_totals"]
    after = out.set_index("transaction_id")["counts_toward_totals"]
    assert not (after & ~before).any()
