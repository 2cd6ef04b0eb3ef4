"""Shared test setup: where the real third-party fixtures live (never copied here)."""

from __future__ import annotations

import atexit
import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from multiprocessing import forkserver
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from assets.warehouse import ROW, register_frames
from expectations.batch_cache import BatchCache
from expectations.outcomes import TableValidation
from expectations.runner import (
    BATCH_ROWS,
    prepared_sql,
    validate_table,
    validate_tables,
)
from expectations.schema_checks import TableReport, check_foreign_keys, check_table, table_columns
from expectations.suites import Tables, register_functions

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CDCOMPACT_SHARED", PROJECT_ROOT.parent / "shared")).resolve()
FIXTURES = SHARED / "fixtures"
IATI_FIXTURES = FIXTURES / "iati"
CODELISTS = FIXTURES / "codelists"
RATES = FIXTURES / "exchange-rates"
IATI_SCHEMAS = FIXTURES / "iati-schemas"

# Great Expectations and Dagster print progress bars and phone home by default.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")

# The default configuration copies the demo's submissions (demo/submissions) into an
# empty inbox on a first run. Tests start from an empty folder instead, so a night
# reads what its test put in the inbox and nothing is written to the checkout's own
# inbox; a test of the demo sets CDCOMPACT_SUBMISSIONS_SEED to demo/submissions.
NO_SEED = Path(tempfile.mkdtemp(prefix="cdcompact-no-seed-"))
atexit.register(shutil.rmtree, NO_SEED, ignore_errors=True)
os.environ["CDCOMPACT_SUBMISSIONS_SEED"] = str(NO_SEED)


@pytest.fixture(autouse=True)
def _fresh_fork_server() -> Iterator[None]:
    """The multiprocess executor forks each step from a server that this process starts
    once, with this process's environment at that moment (a ``cdcompact run`` process
    runs one night). Tests change the environment from one night to the next: the
    server is stopped after each test, so the next night's steps see the next
    environment."""
    yield
    forkserver._forkserver._stop()  # type: ignore[attr-defined]


def pytest_configure(config: pytest.Config) -> None:
    if not FIXTURES.is_dir():
        raise pytest.UsageError(
            f"the shared fixtures are missing: expected them at {FIXTURES} "
            "(set CDCOMPACT_SHARED to the shared/ folder)"
        )


# -- frames a test holds, checked as the pipeline checks the tables it wrote ---------------


def schema_reports(
    frames: Mapping[str, pd.DataFrame],
) -> tuple[dict[str, TableReport], dict[str, TableReport]]:
    """The SQL schema checks of every frame (registered in DuckDB, rows numbered by
    position), and the foreign keys between them."""
    with duckdb.connect() as con:
        register_frames(con, frames)
        return (
            {table: check_table(con, table) for table in frames},
            check_foreign_keys(con, frames),
        )


def validate_frames(
    frames: Mapping[str, pd.DataFrame],
    today: dt.date | None = None,
    data_docs_dir: Path | None = None,
    cache: BatchCache | None = None,
    batch_rows: int | None = None,
) -> dict[str, TableValidation]:
    """The GX suites of the frames that have one, judged together; rows by position."""
    with duckdb.connect() as con:
        register_frames(con, frames)
        return validate_tables(
            con, list(frames), today, data_docs_dir, cache, batch_rows or BATCH_ROWS
        )


def validate_frame(
    table: str, frame: pd.DataFrame, today: dt.date | None = None
) -> TableValidation:
    """One frame's suite, alone (rules needing another table judge nothing)."""
    with duckdb.connect() as con:
        register_frames(con, {table: frame})
        return validate_table(con, table, today)


def derived_frame(table: str, frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """What GX validates of ``table``: its columns and derived columns, by row number."""
    with duckdb.connect() as con:
        register_frames(con, frames)
        register_functions(con)
        given = {name: tuple(table_columns(con, name)) for name in frames}
        sql = prepared_sql(table, Tables(table, given))
        return con.sql(f"SELECT * FROM ({sql}) ORDER BY {ROW}").df().set_index(ROW)


@pytest.fixture
def tables_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of its own for the harmonised tables a test publishes (not in ``tmp_path``,
    which tests often publish into)."""
    return tmp_path_factory.mktemp("tables")
