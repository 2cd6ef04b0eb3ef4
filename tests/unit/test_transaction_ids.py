"""Transaction identifiers and participating organisations' keys stay the same when a
publisher edits a transaction's value or date, so a release's CHANGELOG can say what
changed in a row instead of one row removed and another added."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import pytest

from assets.iati.harmonise import HarmoniseOptions, harmonise_file
from assets.settings import load_settings


@pytest.fixture(scope="module")
def options() -> HarmoniseOptions:
    return HarmoniseOptions(rules=load_settings().cd_rules)


def transaction(value: str, date: str, ref: str | None = None) -> str:
    attribute = f' ref="{ref}"' if ref is not None else ""
    return (
        f'<transaction{attribute}><transaction-type code="3"/>'
        f'<transaction-date iso-date="{date}"/><value>{value}</value></transaction>'
    )


def org(role: str, name: str) -> str:
    return f'<participating-org role="{role}"><narrative>{name}</narrative></participating-org>'


def harmonise(
    folder: Path, options: HarmoniseOptions, *activities: tuple[str, str]
) -> Mapping[str, pd.DataFrame]:
    body = "".join(
        f'<iati-activity default-currency="USD"><iati-identifier>{identifier}</iati-identifier>'
        f"<title><narrative>Title</narrative></title>{inner}</iati-activity>"
        for identifier, inner in activities
    )
    path = folder / "file.xml"
    path.write_text(f'<iati-activities version="2.03">{body}</iati-activities>', "utf-8")
    return harmonise_file(path, options).tables


def ids_and_values(tables: Mapping[str, pd.DataFrame]) -> list[tuple[str, float, object]]:
    rows = tables["transactions"]
    dates = rows["transaction_date"].astype(str)
    return list(zip(rows["transaction_id"], rows["value"], dates, strict=True))


def test_a_transaction_keeps_its_identifier_when_its_value_or_date_changes(
    tmp_path: Path, options: HarmoniseOptions
) -> None:
    before = harmonise(
        tmp_path,
        options,
        ("XM-A", transaction("1000", "2024-01-10", ref="T-1") + transaction("200", "2024-02-01")),
    )
    after = harmonise(
        tmp_path,
        options,
        ("XM-A", transaction("1500", "2024-01-10", ref="T-1") + transaction("200", "2024-03-01")),
    )
    assert ids_and_values(before) == [
        ("XM-A#ref:T-1", 1000.0, "2024-01-10"),
        ("XM-A#2", 200.0, "2024-02-01"),
    ]
    assert ids_and_values(after) == [
        ("XM-A#ref:T-1", 1500.0, "2024-01-10"),
        ("XM-A#2", 200.0, "2024-03-01"),
    ]


def test_repeated_refs_fall_back_to_the_position_and_ids_are_unique_across_activities(
    tmp_path: Path, options: HarmoniseOptions
) -> None:
    tables = harmonise(
        tmp_path,
        options,
        (
            "XM-A",
            transaction("1", "2024-01-01", ref="R")
            + transaction("2", "2024-01-02", ref="T-9")
            + transaction("3", "2024-01-03", ref="R")
            + transaction("4", "2024-01-04", ref=""),
        ),
        ("XM-B", transaction("5", "2024-01-05", ref="T-9")),
    )
    ids = tables["transactions"]["transaction_id"].tolist()
    # "R" is used twice in XM-A: both fall back to their positions; "T-9" is used once
    # in each activity, and the activity keeps the two apart; an empty ref is no ref
    assert ids == ["XM-A#1", "XM-A#ref:T-9", "XM-A#3", "XM-A#4", "XM-B#ref:T-9"]


def test_participating_orgs_are_keyed_by_their_place_in_the_activity(
    tmp_path: Path, options: HarmoniseOptions
) -> None:
    tables = harmonise(
        tmp_path,
        options,
        ("XM-A", org("1", "Funder") + org("9", "Bad role") + org("4", "Implementer")),
        ("XM-B", org("4", "Implementer")),
    )
    orgs: pd.DataFrame = tables["participating_orgs"]
    # the second organisation of XM-A is not recorded (role 9) and keeps its number
    assert list(zip(orgs["activity_id"], orgs["position"], orgs["org_name"], strict=True)) == [
        ("XM-A", 1, "Funder"),
        ("XM-A", 3, "Implementer"),
        ("XM-B", 1, "Implementer"),
    ]
