"""The release's figures (headline, countries, credits, the catalogue's latest metrics),
computed in SQL over the tables as stored, against the pandas code they replaced
(tests/legacy/headline.py) on the shared fixtures, the demo and the golden compact of the
profile pages."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from assets.harmonise.store import read_tables, write_tables
from assets.settings import load_settings
from assets.warehouse import set_up
from publish import headline
from publish.release import ReleaseOptions, _credits, release_figures
from publish.tables import ReleaseTables, Stopwatch, StoredTables, public_sources, read_sources
from tests.legacy import headline as legacy
from tests.metrics_run import run_metrics
from tests.profile_compact import golden_tables
from tests.unit.test_release import demo_tables
from tests.unit.test_release_files import _real_tables

CREDITS = ("Source: International Monetary Fund",)


@cache
def _demo_with_metrics() -> dict[str, pd.DataFrame]:
    return run_metrics(demo_tables(), load_settings().metrics)


#: Each case: the tables to publish.
CASES: dict[str, Callable[[], Mapping[str, pd.DataFrame]]] = {
    "shared fixtures": _real_tables,
    "demo": demo_tables,
    "demo with metrics": _demo_with_metrics,
    "golden compact": golden_tables,
}


@contextmanager
def release_views(folder: Path, names: tuple[str, ...]) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection with the stored tables as views, as ``publish_release`` has them."""
    stored = StoredTables(folder, names)
    with duckdb.connect() as con:
        set_up(con)
        sources = read_sources(stored, None)
        ReleaseTables(con, stored, sources, folder / "work", Stopwatch()).views()
        yield con


def pandas_frames(folder: Path, names: tuple[str, ...]) -> dict[str, pd.DataFrame]:
    """The stored tables as the pandas release read them (``sources`` as published)."""
    frames = read_tables(folder, names)
    if "sources" in frames:
        frames["sources"] = public_sources(frames["sources"], None)
    return frames


def stored(case: str, folder: Path) -> tuple[str, ...]:
    """The tables of ``case`` written to ``folder``; their names."""
    tables = CASES[case]()
    write_tables(tables, folder)
    return tuple(tables)


def _sorted_rows(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    def plain(value: Any) -> Any:
        return None if value is None or value is pd.NA or value != value else value

    rows = [tuple(plain(v) for v in row) for row in frame.itertuples(index=False)]
    return sorted(rows, key=lambda row: tuple((v is None, str(v)) for v in row))


@pytest.mark.parametrize("case", sorted(CASES))
def test_release_figures_equal_the_pandas_ones(case: str, tmp_path: Path) -> None:
    names = stored(case, tmp_path)
    frames = pandas_frames(tmp_path, names)
    with release_views(tmp_path, names) as con:
        figures = release_figures(con, names)
        money = headline.disbursements(con, names).df()
    assert figures.headline == legacy.headline_figures(frames)
    assert figures.countries == legacy.country_figures(frames)
    options = ReleaseOptions(title="t", description="d", schema_version="1", credits=CREDITS)
    assert _credits(figures.publishers, options) == legacy.credits(frames, CREDITS)
    assert figures.alignment == legacy.records(
        legacy.latest_years(legacy.all_partners(frames.get("alignment_metrics")))
    )
    assert figures.duplication == legacy.records(
        legacy.latest_years(frames.get("duplication_metrics"))
    )
    # the rows behind them: the same disbursements, transaction by transaction
    old = legacy.disbursements(frames)
    assert list(money.columns) == list(old.columns)
    assert _sorted_rows(money) == _sorted_rows(old)
    if case == "shared fixtures":  # not a toy: real money in many countries
        assert figures.headline["disbursement_usd"] > 0
        assert len(figures.countries) > 10
        assert figures.alignment
        assert figures.duplication


def test_figures_of_tables_the_release_does_not_have_are_empty(tmp_path: Path) -> None:
    names = ("activities",)
    write_tables({"activities": demo_tables()["activities"]}, tmp_path)
    frames = pandas_frames(tmp_path, names)
    with release_views(tmp_path, names) as con:
        figures = release_figures(con, names)
    assert figures.headline == legacy.headline_figures(frames)
    assert figures.headline["activities"] == 16
    assert figures.headline["disbursement_usd"] == 0.0
    assert figures.countries == legacy.country_figures(frames) == []
    assert figures.alignment == figures.duplication == []


def test_nan_counts_as_missing_money(tmp_path: Path) -> None:
    """A NaN in ``value_usd`` or ``share`` is missing, as pandas read it."""
    tables = demo_tables()
    transactions = tables["transactions"].copy()
    values = transactions["value_usd"].astype("float64").to_numpy(copy=True)
    values[::3] = float("nan")
    transactions["value_usd"] = values
    countries = tables["activity_countries"].copy()
    shares = countries["share"].astype("float64").to_numpy(copy=True)
    shares[::2] = float("nan")
    countries["share"] = shares
    tables = {**tables, "transactions": transactions, "activity_countries": countries}
    write_tables(tables, tmp_path)
    names = tuple(tables)
    frames = pandas_frames(tmp_path, names)
    with release_views(tmp_path, names) as con:
        figures = release_figures(con, names)
    assert figures.headline == legacy.headline_figures(frames)
    assert figures.countries == legacy.country_figures(frames)
