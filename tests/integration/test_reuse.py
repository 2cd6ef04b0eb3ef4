"""A night when no input changed reuses the combined tables, and gives what a full
combine would; any changed input combines again.

Real fixture files in a local source folder, the nightly job on an in-memory
instance.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest

from assets.harmonise.reuse import (
    STATE,
    first_future_disbursement,
    reusable_state,
    save_state,
)
from assets.metrics.stage import PUBLISHED_TABLES
from pipelines.nightly import run_nightly
from tests.conftest import IATI_FIXTURES
from tests.integration.test_pipeline import write_config

REUSED = "no input changed since the tables were combined"


def _tables(tmp_path: Path) -> dict[str, pd.DataFrame]:
    folder = tmp_path / "data" / "tables"
    return {t: pd.read_parquet(folder / f"{t}.parquet") for t in PUBLISHED_TABLES}


def _night(config: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert run_nightly(config, instance=dg.DagsterInstance.ephemeral()) == 0
    captured = capsys.readouterr()
    return captured.out + captured.err


def test_no_change_reuses_and_matches_a_full_combine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "iati"
    source.mkdir()
    for name in ("who-arg.xml", "worldbank-sv.xml", "provider-activity-id.xml"):
        shutil.copy(IATI_FIXTURES / "valid" / name, source / name)
    config = write_config(tmp_path, [source])
    state = tmp_path / "data" / "tables" / STATE

    first = _night(config, capsys)
    assert REUSED not in first
    assert state.exists()
    first_fetch = _tables(tmp_path)["sources"]["fetched_at"]

    second = _night(config, capsys)  # nothing changed: reused
    assert REUSED in second
    assert "no change since release" in second
    reused = _tables(tmp_path)
    assert set(reused["sources"]["status"]) == {"unchanged"}
    assert (reused["sources"]["fetched_at"] > first_fetch).all()  # tonight's fetch
    timings = json.loads((tmp_path / "data" / "timings.json").read_text(encoding="utf-8"))
    assert [stage for stage in timings if not stage.startswith("release: ")] == [
        "reuse",
        "release",
    ]
    # nothing to write, compare or verify: the content hash (sources' CSV, the other
    # tables' recorded digests) and the quality report
    assert {stage for stage in timings if stage.startswith("release: ")} == {
        "release: data files",
        "release: checksums",
        "release: quality report",
        "release: index/catalogue",
    }

    state.unlink()  # the same night again, combined in full
    third = _night(config, capsys)
    assert REUSED not in third
    full = _tables(tmp_path)
    for table in PUBLISHED_TABLES:
        if table == "sources":  # fetched at each night's own time; all else equal
            reused[table] = reused[table].drop(columns="fetched_at")
            full[table] = full[table].drop(columns="fetched_at")
        pd.testing.assert_frame_equal(reused[table], full[table], obj=table)

    # a dataset changes: combined again, and the change is in the tables
    text = (source / "worldbank-sv.xml").read_text(encoding="utf-8")
    (source / "worldbank-sv.xml").write_text(
        text.replace('hierarchy="1"', 'hierarchy="7"', 1), encoding="utf-8"
    )
    fourth = _night(config, capsys)
    assert REUSED not in fourth
    activities = _tables(tmp_path)["activities"]
    assert (activities["hierarchy"] == 7).sum() == 1


def test_a_future_disbursement_that_falls_due_ends_the_reuse(tmp_path: Path) -> None:
    transactions = pd.DataFrame(
        {
            "transaction_type": ["3", "4", "2", "3"],
            "transaction_date": [
                dt.date(2026, 12, 5),
                dt.date(2027, 1, 1),
                dt.date(2026, 12, 1),  # a commitment: no rule about its date
                dt.date(2026, 11, 1),
            ],
        }
    )
    day = dt.date(2026, 11, 28)
    con = duckdb.connect()
    con.register("transactions", transactions)
    con.register("earlier", transactions.iloc[2:])
    until = first_future_disbursement(con, "transactions", day)
    assert until == "2026-12-05"
    save_state(tmp_path, "abc", day, until, {})
    assert reusable_state(tmp_path, "abc", dt.date(2026, 12, 4)) is not None
    assert reusable_state(tmp_path, "abc", dt.date(2026, 12, 5)) is None  # the rule flips
    assert reusable_state(tmp_path, "other inputs", dt.date(2026, 11, 29)) is None
    assert first_future_disbursement(con, "earlier", day) is None
