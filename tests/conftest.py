"""Shared test setup: where the real third-party fixtures live (never copied here)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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


def pytest_configure(config: pytest.Config) -> None:
    if not FIXTURES.is_dir():
        raise pytest.UsageError(
            f"the shared fixtures are missing: expected them at {FIXTURES} "
            "(set CDCOMPACT_SHARED to the shared/ folder)"
        )


@pytest.fixture
def tables_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of its own for the harmonised tables a test publishes (not in ``tmp_path``,
    which tests often publish into)."""
    return tmp_path_factory.mktemp("tables")
