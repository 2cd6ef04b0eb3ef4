"""Wrong types everywhere: every column of every sheet of both clean samples, filled in
turn with values of the wrong kind.

Each wrong cell must give an error at its own sheet, row and column that shows the value
as it was written; the row goes to quarantine; every other cell of the submission reads
exactly as it did in the clean sample; nothing escapes as an exception.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from assets.iati.codelists import Codelists, load_codelists
from assets.settings import Settings, load_settings
from assets.submissions.check import CheckedSubmission, check_submission
from assets.submissions.harmonise import harmonise_submission
from assets.submissions.model import Column, submission_type
from assets.submissions.read import RawSubmission, read_submission
from tests import submission_samples as samples

HUGE = "1," + ",".join(["000"] * 110)

#: Values of the wrong kind for a column of each type, as any reader can produce them
#: (XLSX cells give numbers, booleans and datetimes; JSON gives objects and lists).
WRONG: dict[str, list[Any]] = {
    "integer": ["twelve", True, dt.datetime(2024, 3, 1), {"value": 12}, 12.5, float("nan")],
    # Text past float's range (1.8e308) would read as infinity.
    "number": ["n/a", False, dt.date(2024, 3, 1), [1, 2], "12 000 USD", "1e400", HUGE],
    "boolean": ["maybe", 7, dt.datetime(2024, 3, 1), {"yes": True}, -1.5],
    "date": ["yesterday", True, 3.5, "2024-13-45", {"date": "2024-01-01"}, "31/02/2024"],
    # Coded text: a number, a boolean, a date, an object, an unknown code.
    "coded": [123, True, dt.date(2024, 3, 1), {"code": "GH"}, "zz-not-a-code"],
    # Free text accepts anything written as text; an object or a nested list is refused.
    "string": [{"text": "x"}, [["nested"]]],
}

SAMPLES: dict[str, Callable[[Path], Path]] = {
    "country_report": samples.clean_country_report_ghana,
    "partner_submission": samples.clean_partner_submission,
}


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings()


@pytest.fixture(scope="module")
def codelists(settings: Settings) -> Codelists:
    assert settings.codelists_dir is not None
    return load_codelists(settings.codelists_dir)


def _kind(column: Column) -> str:
    if column.type == "string" and (column.enum or column.codelist):
        return "coded"
    return column.type


def _check(raw: RawSubmission, settings: Settings, codelists: Codelists) -> CheckedSubmission:
    return check_submission(raw, settings, codelists, set(samples.DEMO_IATI_IDS))


def _cells(frame: pd.DataFrame, columns: list[str]) -> list[list[Any]]:
    return frame[columns].astype(object).where(frame[columns].notna(), None).values.tolist()


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_column_with_wrong_types(
    name: str, tmp_path: Path, settings: Settings, codelists: Codelists
) -> None:
    clean_raw = read_submission(SAMPLES[name](tmp_path))
    clean = _check(clean_raw, settings, codelists)
    assert clean.errors == [], [p.describe() for p in clean.errors]
    kind = submission_type(name)
    tried = 0
    for sheet in kind.sheets:
        raw_sheet = clean_raw.sheets[sheet.name]
        header = [str(h).strip() for h in raw_sheet.header]
        for column in sheet.columns:
            if column.name not in header:
                continue  # an optional column the sample leaves out
            position = header.index(column.name)
            values = WRONG[_kind(column)]
            n_rows = max(1, len(raw_sheet.rows))
            for first in range(0, len(values), n_rows):
                raw = copy.deepcopy(clean_raw)
                rows = raw.sheets[sheet.name].rows
                written: dict[int, Any] = {}
                for index, row in enumerate(rows):
                    if position < len(row):
                        value = values[(first + index) % len(values)]
                        row[position] = value
                        written[raw.sheets[sheet.name].row_numbers[index]] = value
                assert written, f"{sheet.name}.{column.name}: no row to change"
                checked = _check(raw, settings, codelists)
                where = f"{name} {sheet.name}.{column.name}"
                errors: dict[int | None, list[str]] = {}
                for problem in checked.errors:
                    if problem.sheet == sheet.name and problem.column == column.name:
                        errors.setdefault(problem.row, []).append(problem.message)
                # Every wrong cell: an error at its own place, showing what was written.
                assert set(errors) == set(written), (where, written, errors)
                for row_number, messages in errors.items():
                    assert row_number is not None
                    shown = written[row_number]
                    if isinstance(shown, str):
                        assert any(shown in m for m in messages), (where, messages)
                    tried += 1
                # Its row is quarantined.
                frame = checked.frames[sheet.name]
                bad_rows = frame.loc[frame["_row"].isin(written), "_valid"]
                assert not bad_rows.astype(bool).any(), where
                # Every other cell reads as in the clean sample.
                for other_name, other_frame in checked.frames.items():
                    clean_frame = clean.frames[other_name]
                    others = [
                        c
                        for c in clean_frame.columns
                        if c not in ("_valid", "_row")
                        and not (other_name == sheet.name and c == column.name)
                    ]
                    assert _cells(other_frame, others) == _cells(clean_frame, others), (
                        where,
                        other_name,
                    )
    assert tried >= 100, tried


def test_an_error_in_the_metadata_alone_says_so(
    tmp_path: Path, settings: Settings, codelists: Codelists
) -> None:
    raw = read_submission(samples.clean_partner_submission(tmp_path))
    raw.sheets["metadata"].rows[0][2] = {"name": "Jo"}  # submitted_by, from a JSON upload
    checked = _check(raw, settings, codelists)
    harmonised = harmonise_submission(
        checked, source_file="p.xlsx", sha256="0" * 64, size=1, uri="p.xlsx"
    )
    source = harmonised.source
    assert (source["status"], source["n_records"], source["n_quarantined"]) == ("partial", 12, 0)
    assert source["reason"] == "all 12 rows accepted; 1 error in the metadata (see quarantine)"
    quarantine = harmonised.tables["quarantine"]
    assert quarantine["message"].tolist() == ["{'name': 'Jo'} is not a single value"]
