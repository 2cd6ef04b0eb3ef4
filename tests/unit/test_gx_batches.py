"""GX in batches from DuckDB: batches give the whole table's results, in this process or in
worker processes, and a night where one file changed validates only the batch of that file
again."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import Future
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from assets.harmonise.store import read_table, write_table
from assets.iati.harmonise import HarmoniseOptions, harmonise_paths
from assets.iati.rates import load_exchange_rates
from assets.settings import load_settings
from assets.warehouse import attach_tables, connection
from expectations import runner
from expectations.batch_cache import BatchCache
from expectations.outcomes import TableValidation
from expectations.runner import validate_tables
from tests.conftest import IATI_FIXTURES, RATES

TODAY = dt.date(2026, 6, 30)
TABLES = ("activities", "transactions", "budgets", "activity_sectors", "sources")
#: Small batches: every fixture file its own group of files, cut into parts of 300 rows.
ROWS = 300


@cache
def harmonised() -> dict[str, pd.DataFrame]:
    options = HarmoniseOptions(
        rules=load_settings().cd_rules,
        rates=load_exchange_rates([RATES / "imf-monthly-subset.csv"]),
    )
    _, tables = harmonise_paths([IATI_FIXTURES / "valid", IATI_FIXTURES / "legacy"], options)
    return tables


def _write(folder: Path, tables: dict[str, pd.DataFrame]) -> None:
    for table in TABLES:
        write_table(table, tables[table], folder / f"{table}.parquet")


def _validate(
    folder: Path, cache: BatchCache, day: dt.date = TODAY, rows: int = ROWS, workers: int = 1
) -> dict[str, dict[str, object]]:
    with connection(load_settings()) as con:
        attach_tables(con, folder, TABLES, row_numbers=True)
        validations = validate_tables(
            con, TABLES, day, cache=cache, batch_rows=rows, workers=workers
        )
    return {table: v.to_dict() for table, v in validations.items()}


def _cold(folder: Path, day: dt.date = TODAY) -> dict[str, dict[str, object]]:
    """Every row validated in one batch per table, nothing kept: the reference."""
    return _validate(folder, BatchCache(None), day, rows=10_000_000)


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CDCOMPACT_DATA_DIR", str(tmp_path / "data"))
    tables = {t: harmonised()[t].copy() for t in TABLES}
    transactions = tables["transactions"]
    # A disbursement due in 30 days: the one rule whose verdict changes with the calendar.
    due = transactions.index[transactions["transaction_type"] == "3"][40]
    transactions.at[due, "transaction_date"] = TODAY + dt.timedelta(days=30)
    _write(tmp_path / "tables", tables)
    return tmp_path / "tables"


def _failed_rows(validation: dict[str, object], rule: str) -> list[int]:
    restored = TableValidation.from_dict(validation)
    return list(restored.outcome(rule).rows)


def test_batches_give_the_whole_tables_results(folder: Path, tmp_path: Path) -> None:
    cache = BatchCache(tmp_path / "batches")
    batched = _validate(folder, cache)
    assert cache.validated["transactions"] > 10  # the table really was cut into batches
    assert batched == _cold(folder)
    transactions = read_table("transactions", folder / "transactions.parquet")
    (row,) = _failed_rows(batched["transactions"], "no_future_disbursement")
    assert transactions.at[row, "transaction_date"] == TODAY + dt.timedelta(days=30)


def test_worker_processes_give_the_same_results(folder: Path, tmp_path: Path) -> None:
    cache = BatchCache(tmp_path / "batches")
    parallel = _validate(folder, cache, workers=2)
    assert cache.validated["transactions"] > 10
    assert parallel == _cold(folder)
    # what the workers validated is kept like the rest: the next night reuses all of it
    again = BatchCache(tmp_path / "batches")
    assert _validate(folder, again) == parallel
    assert again.validated == {}


def test_a_killed_worker_process_costs_time_not_results(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    class Killing(runner._Validators):
        """Kills the worker processes once they have been handed five batches."""

        handed = 0

        def submit(self, table: str, day: dt.date, rows: pa.Table) -> Future[list[dict[str, Any]]]:
            future = super().submit(table, day, rows)
            self.handed += 1
            if self.handed == 5 and self.pool is not None:
                for process in list(self.pool._processes.values()):
                    process.kill()
            return future

    monkeypatch.setattr(runner, "_Validators", Killing)
    cache = BatchCache(tmp_path / "batches")
    assert _validate(folder, cache, workers=2) == _cold(folder)
    assert "a Great Expectations worker process stopped abruptly" in capfd.readouterr().err


def test_only_the_changed_files_batch_is_validated_again(folder: Path, tmp_path: Path) -> None:
    first = BatchCache(tmp_path / "batches")
    before = _validate(folder, first)
    total = sum(first.validated.values())
    assert not first.reused

    # The same tables the next night: every batch's outcome is reused.
    again = BatchCache(tmp_path / "batches")
    assert _validate(folder, again) == before
    assert again.validated == {}
    assert sum(again.reused.values()) == total

    # One file changed: one of its transactions has a code outside the codelist.
    transactions = read_table("transactions", folder / "transactions.parquet")
    changed = transactions["source_file"].value_counts().index[0]
    row = int(transactions.index[transactions["source_file"] == changed][5])
    transactions.loc[row, "transaction_type"] = "99"
    write_table("transactions", transactions, folder / "transactions.parquet")
    night = BatchCache(tmp_path / "batches")
    after = _validate(folder, night)
    assert night.validated == {"transactions": 1}  # that file's batch, and only it
    assert sum(night.reused.values()) == total - 1
    assert after == _cold(folder)
    assert _failed_rows(after["transactions"], "transaction_type_code") == [row]


def test_a_disbursement_falling_due_validates_its_batch_again(folder: Path, tmp_path: Path) -> None:
    _validate(folder, BatchCache(tmp_path / "batches"))
    tomorrow = BatchCache(tmp_path / "batches")
    _validate(folder, tomorrow, TODAY + dt.timedelta(days=1))
    assert tomorrow.validated == {}  # no disbursement fell due: same verdicts
    due_day = TODAY + dt.timedelta(days=30)
    later = BatchCache(tmp_path / "batches")
    results = _validate(folder, later, due_day)
    assert later.validated == {"transactions": 1}
    assert _failed_rows(results["transactions"], "no_future_disbursement") == []
    assert results == _cold(folder, due_day)
