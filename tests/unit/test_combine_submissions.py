"""An activity that a partner submits and IATI also publishes: one source per figure.

The IATI side is the demo publisher's real file (``demo/iati/xm-demo-1001.xml``,
harmonised for real); the submission side is the harmonised form of a partner
workbook row with ``in_iati = yes`` for the same identifier.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from assets.harmonise.schema import table_frame
from assets.iati.harmonise import ALL_TABLES, HarmonisedFile, combine, harmonise_file
from tests.unit.test_double_counting import flag_double_counting
from tests.unit.test_iati_harmonise import options

DEMO = Path(__file__).resolve().parents[2] / "demo" / "iati" / "xm-demo-1001.xml"
ACTIVITY = "XM-DEMO-1001-GH-PFM-01"
SUBMISSION = "xm-demo-9001-2025-received.xlsx"


def _submission(activity_id: str, budget: bool = True) -> HarmonisedFile:
    provenance = {
        "source": "partner_submission",
        "source_file": SUBMISSION,
        "source_sha256": "0" * 64,
        "source_ref": "sheet activities, row 2",
    }
    when = pd.Timestamp("2025-12-31")
    rows: dict[str, list[dict[str, object]]] = {t: [] for t in ALL_TABLES}
    rows["activities"].append(
        {
            "activity_id": activity_id,
            "title": "PFM reform support (as the partner calls it)",
            "reporting_org_ref": "XM-DEMO-9001",
            "is_cd": True,
            "cd_basis": "partner_declared",
            **provenance,
        }
    )
    rows["activity_countries"].append(
        {"activity_id": activity_id, "country_code": "KE", "share": 1.0, **provenance}
    )
    if budget:
        rows["budgets"].append(
            {
                "budget_id": f"b-{activity_id}",
                "activity_id": activity_id,
                "value": 2_500_000.0,
                "currency": "USD",
                "value_usd": 2_500_000.0,
                **provenance,
            }
        )
    for tid, ttype, value in (("disbursed", "3", 600_000.0), ("incoming", "12", 50_000.0)):
        rows["transactions"].append(
            {
                "transaction_id": f"{tid}-{activity_id}",
                "activity_id": activity_id,
                "transaction_type": ttype,
                "transaction_date": when,
                "value": value,
                "currency": "USD",
                "value_usd": value,
                "counts_toward_totals": True,
                **provenance,
            }
        )
    rows["partner_declarations"].append(
        {
            "activity_id": activity_id,
            "partner_org_ref": "XM-DEMO-9001",
            "period": "2025",
            "on_budget": True,
            **provenance,
        }
    )
    rows["sources"].append(
        {
            "source_file": SUBMISSION,
            "source": "partner_submission",
            "uri": f"inbox:{SUBMISSION}",
            "fetched_at": dt.datetime(2026, 1, 5, tzinfo=dt.UTC),
            "status": "ok",
            "n_records": 1,
            "n_accepted": 1,
            "n_quarantined": 0,
        }
    )
    return HarmonisedFile(SUBMISSION, {t: table_frame(t, r) for t, r in rows.items()})


@pytest.fixture(scope="module")
def iati() -> HarmonisedFile:
    return harmonise_file(DEMO, options())


def test_iati_describes_the_activity_and_the_submission_keeps_its_figures(
    iati: HarmonisedFile,
) -> None:
    tables = combine([_submission(ACTIVITY), iati])
    activity = tables["activities"].loc[tables["activities"]["activity_id"] == ACTIVITY]
    assert activity["source"].tolist() == ["iati"]
    assert "as the partner calls it" not in activity["title"].iloc[0]
    countries = tables["activity_countries"]
    assert countries.loc[countries["activity_id"] == ACTIVITY, "country_code"].tolist() == ["GH"]
    # IATI publishes budgets for it: the submission's budget is set aside, not added
    budgets = tables["budgets"].loc[tables["budgets"]["activity_id"] == ACTIVITY]
    assert set(budgets["source"]) == {"iati"}
    # the record is accepted, with a warning that says what came from where
    warning = tables["quarantine"].loc[tables["quarantine"]["rule"] == "activity_also_in_iati"]
    assert len(warning) == 1
    assert warning["severity"].iloc[0] == "warning"
    assert warning["source_file"].iloc[0] == SUBMISSION
    message = warning["message"].iloc[0]
    assert "xm-demo-1001.xml" in message
    assert "budget is set aside" in message
    sources = tables["sources"].set_index("source_file")
    assert sources.loc[SUBMISSION, ["n_accepted", "n_quarantined"]].tolist() == [1, 0]
    assert sources.loc[SUBMISSION, "status"] == "ok"
    assert "also published in IATI" in sources.loc[SUBMISSION, "reason"]
    assert len(tables["partner_declarations"]) == 1

    tx, pairs = flag_double_counting(tables)
    sub = tx.loc[tx["source"] == "partner_submission"].set_index("transaction_type")
    # IATI reports disbursements (type 3) for it: the submission's do not count
    assert not sub.loc["3", "counts_toward_totals"]
    assert sub.loc["3", "exclusion_reason"] == "also reported in IATI (file xm-demo-1001.xml)"
    # IATI reports no incoming commitment (type 12): the submission's one stands
    assert sub.loc["12", "counts_toward_totals"]
    assert pd.isna(sub.loc["12", "exclusion_reason"])
    iati_tx = tx.loc[(tx["source"] == "iati") & (tx["activity_id"] == ACTIVITY)]
    assert iati_tx["counts_toward_totals"].all()
    same = pairs.loc[pairs["kind"] == "same_activity_reported_twice"]
    assert same[["activity_id_a", "activity_id_b"]].values.tolist() == [[ACTIVITY, ACTIVITY]]
    assert same["country_code"].iloc[0] == "GH"
    assert SUBMISSION in same["evidence"].iloc[0]
    assert "xm-demo-1001.xml" in same["evidence"].iloc[0]


def test_the_submission_budget_stays_where_iati_has_none(iati: HarmonisedFile) -> None:
    no_budgets = HarmonisedFile(
        iati.source_file,
        {**iati.tables, "budgets": table_frame("budgets", [])},
    )
    tables = combine([no_budgets, _submission(ACTIVITY)])
    budgets = tables["budgets"]
    assert budgets["value"].tolist() == [2_500_000.0]
    assert budgets["source"].tolist() == ["partner_submission"]
    message = tables["quarantine"].loc[
        tables["quarantine"]["rule"] == "activity_also_in_iati", "message"
    ]
    assert "budget is kept (IATI publishes none)" in message.iloc[0]


def test_a_submission_never_displaces_iati(iati: HarmonisedFile) -> None:
    # The submitter's own identifier prefix would win between two IATI files;
    # against IATI, the IATI publication stands whoever the submitter is.
    own = _submission(ACTIVITY)
    own.tables["activities"]["reporting_org_ref"] = "XM-DEMO-1001"
    tables = combine([own, iati])
    activity = tables["activities"].loc[tables["activities"]["activity_id"] == ACTIVITY]
    assert activity["source"].tolist() == ["iati"]
    assert "duplicate_activity_across_files" not in set(tables["quarantine"]["rule"])


def test_an_activity_iati_does_not_publish_is_the_submissions_own(iati: HarmonisedFile) -> None:
    tables = combine([iati, _submission("XM-DEMO-9001:GH-STAT-01")])
    activity = tables["activities"].set_index("activity_id").loc["XM-DEMO-9001:GH-STAT-01"]
    assert activity["source"] == "partner_submission"
    assert "activity_also_in_iati" not in set(tables["quarantine"]["rule"])
    tx, pairs = flag_double_counting(tables)
    assert tx.loc[tx["source"] == "partner_submission", "counts_toward_totals"].all()
    assert "same_activity_reported_twice" not in set(pairs["kind"])
