"""Extract once: new exchange rates or CD rules never read a file again; the tables change.

The demo's IATI files in a local source, the demo's exchange rates and codelists
copied so that a night can change them, the nightly job on an in-memory instance.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import yaml

from assets.iati.fetching import iati_dir
from pipelines.nightly import run_nightly
from tests.conftest import PROJECT_ROOT

NOTHING_TO_EXTRACT = "nothing to extract: every dataset's copy is extracted already"


def _night(config: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert run_nightly(config, instance=dg.DagsterInstance.ephemeral()) == 0
    captured = capsys.readouterr()
    return captured.out + captured.err


def _extracted(tmp_path: Path) -> dict[Path, int]:
    """Every extracted Parquet file with the time it was last written (nanoseconds)."""
    root = iati_dir(tmp_path / "data") / "extract"
    return {path: path.stat().st_mtime_ns for path in root.rglob("*.parquet")}


def test_rates_rules_and_codelists_never_extract_a_file_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rates = tmp_path / "rates.csv"
    shutil.copy(PROJECT_ROOT / "demo" / "exchange-rates.csv", rates)
    codelists = tmp_path / "codelists"
    shutil.copytree(PROJECT_ROOT / "demo" / "codelists", codelists)
    settings = {
        "storage": {"data_dir": str(tmp_path / "data")},
        "publish": {"local_dir": str(tmp_path / "publish")},
        "iati": {
            "sources": [
                {"name": "demo", "kind": "local", "paths": [str(PROJECT_ROOT / "demo" / "iati")]}
            ]
        },
        "reference": {"codelists": str(codelists), "exchange_rates": [str(rates)]},
    }
    config = tmp_path / "compact.yaml"
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")

    first = _night(config, capsys)
    assert "extracting 4 datasets" in first
    extracted = _extracted(tmp_path)
    assert len({path.parent for path in extracted}) == 4  # one folder per file
    before = pd.read_parquet(tmp_path / "data" / "tables" / "transactions.parquet")
    gbp = before[before["currency"] == "GBP"]
    assert gbp["usd_rate_period"].tolist()[0] == "2024-02"

    # A new month of rates: GBP gains 2024-03, which the first GBP disbursement used
    # the month before of.
    text = rates.read_text(encoding="utf-8")
    line = next(row for row in text.splitlines() if row.startswith("2024-02-29,") and "GBP" in row)
    rates.write_text(text + line.replace("2024-02-29,", "2024-03-31,").replace(",0.", ",0.5"))
    second = _night(config, capsys)
    assert NOTHING_TO_EXTRACT in second
    assert "published release" in second
    assert _extracted(tmp_path) == extracted
    after = pd.read_parquet(tmp_path / "data" / "tables" / "transactions.parquet")
    changed = after[after["currency"] == "GBP"]
    assert "2024-03" in changed["usd_rate_period"].tolist()
    assert not changed["value_usd"].equals(gbp["value_usd"])

    # New CD rules: no keyword, no CD sector, no aid type; only the FTC flag is left.
    settings["cd_classification"] = {
        "technical_cooperation_aid_types": [],
        "ftc_flag": True,
        "cd_sectors": [],
        "keywords": {},
        "modalities": {},
    }
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    third = _night(config, capsys)
    assert NOTHING_TO_EXTRACT in third
    assert _extracted(tmp_path) == extracted
    activities = pd.read_parquet(tmp_path / "data" / "tables" / "activities.parquet")
    assert set(activities.loc[activities["is_cd"], "cd_basis"]) <= {"ftc_flag"}
    assert activities["is_cd"].sum() < 12  # 12 of 16 with the demo's own rules

    # Updated codelists: checked in the transform against the coded values each extract
    # keeps; no file is read again.
    def unchecked_lists() -> list[set[str]]:
        conformance = pd.read_parquet(tmp_path / "data" / "tables" / "conformance.parquet")
        notes = conformance.loc[conformance["rule"] == "codelist:not_checked", "value"]
        return [set(str(names).split(", ")) for names in notes]

    assert not any("AidType" in names for names in unchecked_lists())
    (codelists / "AidType.xml").unlink()
    fourth = _night(config, capsys)
    assert NOTHING_TO_EXTRACT in fourth
    assert _extracted(tmp_path) == extracted
    # each file's aid types could not be checked any more, and its note says so
    assert [("AidType" in names) for names in unchecked_lists()] == [True] * 4
