"""Extract once, transform in DuckDB: the same tables as the pandas harmoniser, row by row.

``tests/legacy/harmonise.py`` is the harmoniser this project used before the
extract/transform split, kept only as the oracle of this test: for every shared
fixture file (valid, legacy, invalid) and the demo, with every kind of reference
data and with some missing, both paths must give equal tables, value by value
and in the same order.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from assets.iati import harmonise as new
from assets.iati import transform
from assets.iati.codelists import load_codelists
from assets.iati.conformance import IatiSchemas
from assets.iati.rates import load_exchange_rates
from assets.settings import load_settings
from tests.conftest import CODELISTS, IATI_FIXTURES, IATI_SCHEMAS, PROJECT_ROOT, RATES
from tests.legacy import harmonise as old

PATHS = [
    IATI_FIXTURES / "valid",
    IATI_FIXTURES / "legacy",
    IATI_FIXTURES / "invalid",
    PROJECT_ROOT / "demo" / "iati",
]


def _rates() -> object:
    return load_exchange_rates(
        [RATES / "imf-monthly-subset.csv", RATES / "monthly-average-sdr-per-unit.json"]
    )


VARIANTS: dict[str, Callable[[], dict[str, Any]]] = {
    "all reference data": lambda: {
        "rates": _rates(),
        "codelists": load_codelists(CODELISTS),
        "schemas": IatiSchemas.from_dir(IATI_SCHEMAS),
    },
    "French first, annual rates, 3 months of fallback": lambda: {
        "rates": load_exchange_rates(
            [RATES / "imf-annual-end-of-period.csv", RATES / "imf-monthly-subset.csv"]
        ),
        "codelists": load_codelists(CODELISTS),
        "preferred_languages": ("fr", "es", "en"),
        "rate_fallback_months": 3,
    },
    "no reference data": dict,
}


def _options(module: Any, variant: dict[str, Any]) -> Any:
    settings = load_settings()
    return module.HarmoniseOptions(
        rules=settings.cd_rules,
        preferred_languages=variant.pop("preferred_languages", settings.preferred_languages),
        **variant,
    )


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_table_equals_the_pandas_harmonisers(variant: str) -> None:
    _, expected = old.harmonise_paths(PATHS, _options(old, VARIANTS[variant]()))
    _, got = new.harmonise_paths(PATHS, _options(new, VARIANTS[variant]()))
    assert list(got) == list(expected)
    for table, frame in expected.items():
        if table not in ("cd_priorities", "partner_declarations"):  # IATI has none
            assert len(frame), table
        pd.testing.assert_frame_equal(got[table], frame, check_exact=True, obj=table)


def test_each_files_own_tables_equal_the_pandas_harmonisers(tmp_path: Path) -> None:
    variant = VARIANTS["all reference data"]
    for path in sorted((IATI_FIXTURES / "valid").glob("*.xml"))[:4]:
        expected = old.harmonise_file(path, _options(old, variant())).tables
        got = new.harmonise_file(path, _options(new, variant())).tables
        for table in old.IATI_TABLES:
            pd.testing.assert_frame_equal(
                got[table].reset_index(drop=True),
                expected[table].reset_index(drop=True),
                check_exact=True,
                obj=f"{path.name}: {table}",
            )


def test_a_night_transformed_in_parts_of_its_files_is_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A large night is transformed in parts of its files (DuckDB holds some of each
    part's work whole): parts of a few files give every table the one part gives."""
    variant = "all reference data"
    _, whole = new.harmonise_paths(PATHS, _options(new, VARIANTS[variant]()))
    parts: list[int] = []
    split = transform._parts

    def counted(*args: Any) -> list[list[Any]]:
        found = split(*args)
        parts.append(len(found))
        return found

    monkeypatch.setattr(transform, "PART_BYTES", 200_000)
    monkeypatch.setattr(transform, "_parts", counted)
    _, parted = new.harmonise_paths(PATHS, _options(new, VARIANTS[variant]()))
    assert max(parts) > 5
    for table, frame in whole.items():
        pd.testing.assert_frame_equal(parted[table], frame, check_exact=True, obj=table)
