"""A night when no input changed reuses the combined tables, and gives what a full
combine would; any changed input combines again.

Real fixture files in a local source folder, the nightly job on an in-memory
instance.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest
import yaml

from assets.harmonise.reuse import (
    STATE,
    first_future_disbursement,
    reusable_state,
    save_state,
)
from assets.metrics.stage import PUBLISHED_TABLES
from pipelines.nightly import run_nightly
from tests.conftest import IATI_FIXTURES, RATES
from tests.integration.test_pipeline import write_config

REUSED = "no input changed since the tables were combined"


def _tables(tmp_path: Path) -> dict[str, pd.DataFrame]:
    folder = tmp_path / "data" / "tables"
    return {t: pd.read_parquet(folder / f"{t}.parquet") for t in PUBLISHED_TABLES}


def _assert_same_tables(tables: dict[str, pd.DataFrame], full: dict[str, pd.DataFrame]) -> None:
    """Every table equal to a full combine's, but ``sources.fetched_at``, ``checked_at`` and
    ``download`` (each night's own: a local file is read again until it has settled)."""
    for table in PUBLISHED_TABLES:
        left, right = tables[table], full[table]
        if table == "sources":
            own = ["fetched_at", "checked_at", "download"]
            left, right = left.drop(columns=own), right.drop(columns=own)
        pd.testing.assert_frame_equal(left, right, obj=table)


def _night(config: Path, capsys: pytest.CaptureFixture[str]) -> str:
    # verbose: what the transform step logs (reused, rates only) is Dagster's log lines
    assert run_nightly(config, instance=dg.DagsterInstance.ephemeral(), verbose=True) == 0
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
    first_check = _tables(tmp_path)["sources"]["checked_at"]
    first_status = _tables(tmp_path)["sources"]["status"].tolist()

    second = _night(config, capsys)  # nothing changed: reused
    assert REUSED in second
    assert "no change since release" in second
    reused = _tables(tmp_path)
    # what the content is: as the first night, never "unchanged"
    assert reused["sources"]["status"].tolist() == first_status
    assert (reused["sources"]["checked_at"] > first_check).all()  # tonight's fetch
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
    _assert_same_tables(reused, _tables(tmp_path))

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


def _rates_config(tmp_path: Path, names: list[str]) -> tuple[Path, Path]:
    """A configuration over fixture files in a local folder whose only exchange rates are a
    copy of the IMF CSV that the test can change; (config, rates)."""
    source = tmp_path / "iati"
    source.mkdir()
    for name in names:
        shutil.copy(IATI_FIXTURES / "valid" / name, source / name)
    config = write_config(tmp_path, [source])
    rates = tmp_path / "imf-monthly.csv"
    shutil.copy(RATES / "imf-monthly-subset.csv", rates)
    settings = yaml.safe_load(config.read_text(encoding="utf-8"))
    settings["reference"]["exchange_rates"] = [str(rates)]  # the only rates
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return config, rates


def _edit_rates(rates: Path, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    frame = pd.read_csv(rates, dtype=str)
    edit(frame).to_csv(rates, index=False)


def test_a_rates_only_night_converts_the_money_again_and_matches_a_full_combine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # EUR and GBP money (acfspain, armenia, provider-activity-id) beside USD (who-arg)
    config, rates = _rates_config(
        tmp_path,
        [
            "acfspain-ph.xml",
            "iati-activities-am-armenia.xml",
            "provider-activity-id.xml",
            "who-arg.xml",
        ],
    )
    # the same file under another name: every activity of one copy is not accepted, and
    # that copy's warnings stay in quarantine
    copy = (tmp_path / "iati" / "acfspain-ph.xml").read_bytes() + b"<!-- again -->\n"
    (tmp_path / "iati" / "acfspain-again.xml").write_bytes(copy)
    state = tmp_path / "data" / "tables" / STATE
    first = _night(config, capsys)
    assert "only the exchange rates changed" not in first
    before = _tables(tmp_path)

    # a currency no value is in gains a month: nothing moves, the tables are reused
    _edit_rates(
        rates,
        lambda f: pd.concat([f, f[f["Currency"] == "AFN"].tail(1).assign(Date="2099-01-31")]),
    )
    second = _night(config, capsys)
    assert "only the exchange rates changed" in second
    assert "(0 values or warnings changed)" in second
    assert "no figure changed since the tables were combined" in second
    timings = json.loads((tmp_path / "data" / "timings.json").read_text(encoding="utf-8"))
    assert [s for s in timings if not s.startswith("release")] == ["money"]
    for table, frame in _tables(tmp_path).items():
        if table != "sources":
            pd.testing.assert_frame_equal(frame, before[table], obj=table)

    # GBP is revalued before 2015 and has no rates for 2016-2018: the money moves (the
    # 2012 transactions) and warnings appear (the 2017 budgets, of both copies)
    def revalue(frame: pd.DataFrame) -> pd.DataFrame:
        gbp = frame["Currency"] == "GBP"
        early = gbp & (frame["Date"] < "2015")
        frame.loc[early, "Rate"] = (frame.loc[early, "Rate"].astype(float) * 1.25).astype(str)
        return frame[~(gbp & frame["Date"].between("2016", "2019"))]

    _edit_rates(rates, revalue)
    third = _night(config, capsys)
    assert "only the exchange rates changed" in third
    assert "(0 values or warnings changed)" not in third
    refreshed = _tables(tmp_path)
    transactions = refreshed["transactions"]
    gbp = transactions[transactions["currency"] == "GBP"]
    assert len(gbp) == 10
    assert gbp["value_usd"].notna().all()
    old = before["transactions"].set_index(["source_file", "source_ref"])["value_usd"]
    new = gbp.set_index(["source_file", "source_ref"])["value_usd"]
    assert (new / old.loc[new.index]).round(9).eq(0.8).all()  # 1.25 times the GBP per USD
    budgets = refreshed["budgets"]
    spain = budgets[budgets["source_file"] == "acfspain-again"]
    assert len(spain) == 6
    assert spain["value_usd"].isna().all()
    assert before["budgets"].query("source_file == 'acfspain-again'")["value_usd"].notna().all()
    warnings = refreshed["quarantine"]
    gbp_warnings = warnings[warnings["message"].str.contains("no GBP rate for 2017")]
    assert gbp_warnings.groupby("source_file").size().to_dict() == {
        "acfspain-again": 5,
        "acfspain-ph": 5,  # the copy not accepted keeps its warnings
    }

    state.unlink()  # the same night again, combined in full
    fourth = _night(config, capsys)
    assert "only the exchange rates changed" not in fourth
    _assert_same_tables(refreshed, _tables(tmp_path))
