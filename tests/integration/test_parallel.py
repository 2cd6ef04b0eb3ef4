"""Harmonising in several processes gives exactly what one process gives: the command
line's pool (``cdcompact iati harmonise --workers 2``) on the real fixtures. (The
night's steps in processes of their own: tests/integration/test_orchestration.py.)
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipelines.cli import main
from tests.conftest import CODELISTS, IATI_FIXTURES, RATES

TABLES = ("activities", "transactions", "budgets", "quarantine", "sources", "alignment_metrics")


def _frames(folder: Path) -> dict[str, pd.DataFrame]:
    return {t: pd.read_parquet(folder / f"{t}.parquet") for t in TABLES}


def _same(one: dict[str, pd.DataFrame], two: dict[str, pd.DataFrame]) -> None:
    for table in TABLES:
        a, b = one[table], two[table]
        if table == "sources":  # fetched_at / uri differ between runs; the outcome must not
            a = a.drop(columns=["fetched_at", "checked_at", "uri"])
            b = b.drop(columns=["fetched_at", "checked_at", "uri"])
        pd.testing.assert_frame_equal(a, b, obj=table)


def test_the_cli_pool_gives_the_single_process_result(tmp_path: Path) -> None:
    inputs = [str(IATI_FIXTURES / "valid"), str(IATI_FIXTURES / "legacy")]
    common = ["--codelists", str(CODELISTS), "--rates", str(RATES / "imf-monthly-subset.csv")]
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}"
        arguments = ["--out", str(out), "--quiet", "--workers", workers, *common]
        code = main(["iati", "harmonise", *inputs, *arguments])
        assert code == 0
    one, two = _frames(tmp_path / "w1"), _frames(tmp_path / "w2")
    _same(one, two)
    assert len(one["activities"]) == 1434
    assert len(one["sources"]) == 13


def test_the_cli_refuses_zero_workers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "iati",
            "harmonise",
            str(IATI_FIXTURES / "valid"),
            "--out",
            str(tmp_path),
            "--workers",
            "0",
        ]
    )
    assert code == 2
    assert "--workers must be 1 or more, not 0" in capsys.readouterr().err
