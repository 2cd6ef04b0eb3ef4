"""IATI codelists from the official files: names, codes per version, statuses, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assets.iati.codelists import CodelistError, Codelists, load_codelists
from tests.conftest import CODELISTS


@pytest.fixture(scope="module")
def codelists() -> Codelists:
    return load_codelists(CODELISTS)


def test_names_of_real_codes(codelists: Codelists) -> None:
    assert codelists.name("Sector", "11110") == "Education policy and administrative management"
    assert codelists.name("AidType", "D01") == "Donor country personnel"
    assert codelists.name("AidType", "D02", "fr") == "Autres formes d’assistance technique"
    # No French name for currencies: the codelist's own language (English) is used.
    assert codelists.name("Currency", "XDR", "fr") == codelists.name("Currency", "XDR")
    assert codelists.name("Sector", "99999") is None
    assert codelists.name("NoSuchList", "1") is None
    # Version items have a code and a URL but no name.
    assert codelists.name("Version", "1.01") is None


def test_transaction_type_has_letters_in_1_05_and_numbers_in_2_03(
    codelists: Codelists,
) -> None:
    assert codelists.versions("TransactionType") == ["1.05", "2.03"]
    assert codelists.codes("TransactionType", "1.05") == {
        "C", "CG", "D", "E", "IF", "IR", "LR", "QP", "QS", "R"
    }  # fmt: skip
    assert codelists.codes("TransactionType") == codelists.codes("TransactionType", "2.03")
    assert "3" in codelists.codes("TransactionType")
    assert "D" not in codelists.codes("TransactionType")
    assert codelists.name("TransactionType", "D", version="1.05") == "Disbursement"
    assert codelists.name("TransactionType", "3") == "Disbursement"
    assert codelists.name("TransactionType", "3", "fr") == "Décaissement"


@pytest.mark.parametrize(
    ("codelist", "version", "items", "withdrawn"),
    [
        # counted with grep -c '<codelist-item[ >]' and '<codelist-item status="withdrawn"'
        ("Sector", None, 325, 30),
        ("AidType", None, 24, 0),
        ("Currency", None, 176, 9),
        ("Country", None, 251, 1),
        ("TransactionType", "2.03", 13, 0),
        ("TransactionType", "1.05", 10, 0),
    ],
)
def test_item_counts_match_the_files(
    codelists: Codelists, codelist: str, version: str | None, items: int, withdrawn: int
) -> None:
    assert len(codelists.codes(codelist, version)) == items
    active = codelists.codes(codelist, version, include_withdrawn=False)
    assert len(active) == items - withdrawn


def test_versions_and_statuses(codelists: Codelists) -> None:
    # 9 embedded 2.03 lists, 10 embedded 1.05 lists, 23 non-embedded lists (mapping.xml skipped).
    frame = codelists.to_frame()
    assert frame.groupby("version")["codelist"].nunique().to_dict() == {
        "1.05": 10,
        "2.03": 9,
        "non-embedded": 23,
    }
    assert codelists.status("Country", "AN") == "withdrawn"
    assert codelists.status("TransactionType", "3") == "active"
    # Non-embedded lists serve every version; an embedded list absent from a version is absent.
    assert codelists.name("Sector", "11110", version="1.05") == codelists.name("Sector", "11110")
    assert codelists.has("AidTypeFlag", "1.05")
    assert not codelists.has("AidTypeFlag", "2.03")
    assert "Sector" in codelists
    assert "NoSuchList" not in codelists
    with pytest.raises(KeyError, match="NoSuchList"):
        codelists.codes("NoSuchList")


def test_frame_round_trip(codelists: Codelists) -> None:
    frame = codelists.to_frame()
    assert list(frame.columns) == ["codelist", "code", "name", "status", "version"]
    assert len(frame) == 1395
    row = frame[(frame["codelist"] == "Sector") & (frame["code"] == "11110")]
    assert row[["name", "status", "version"]].values.tolist() == [
        ["Education policy and administrative management", "active", "non-embedded"]
    ]
    back = Codelists.from_frame(frame)
    assert back.to_frame().equals(frame)
    assert back.codes("TransactionType", "1.05") == codelists.codes("TransactionType", "1.05")


def test_version_comes_from_the_folder_even_when_loading_it_directly() -> None:
    only_105 = load_codelists(CODELISTS / "embedded" / "1.05")
    assert only_105.versions("TransactionType") == ["1.05"]
    assert "D" in only_105.codes("TransactionType")


def test_official_json_format_with_language_folders(tmp_path: Path) -> None:
    for language, name in (("en", "Disbursement"), ("fr", "Décaissement")):
        folder = tmp_path / "2.03" / "json" / language
        folder.mkdir(parents=True)
        document = {
            "attributes": {"name": "TransactionType", "complete": "1", "embedded": "1"},
            "metadata": {"name": "Transaction Type"},
            "data": [
                {"code": "3", "name": name, "status": "active"},
                {"code": "13", "name": "x", "status": "withdrawn"},
            ],
        }
        (folder / "TransactionType.json").write_text(json.dumps(document), encoding="utf-8")
    (tmp_path / "other.json").write_text('{"not": "a codelist"}')
    codelists = load_codelists(tmp_path)
    assert codelists.versions("TransactionType") == ["2.03"]
    assert codelists.name("TransactionType", "3") == "Disbursement"
    assert codelists.name("TransactionType", "3", "fr") == "Décaissement"
    assert codelists.codes("TransactionType", include_withdrawn=False) == {"3"}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('<codelist name="Broken"><codelist-items>', "not a well-formed"),
        ("<codelist><codelist-items/></codelist>", "no name attribute"),
        (
            '<codelist name="X"><codelist-items><codelist-item><name>a</name>'
            "</codelist-item></codelist-items></codelist>",
            "codelist-item 1 has no code",
        ),
    ],
)
def test_malformed_codelist_raises_naming_the_file(
    tmp_path: Path, content: str, problem: str
) -> None:
    (tmp_path / "Broken.xml").write_text(content)
    with pytest.raises(CodelistError, match=problem) as raised:
        load_codelists(tmp_path)
    assert "Broken.xml" in str(raised.value)


def test_entities_are_not_resolved(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET")
    (tmp_path / "Evil.xml").write_text(
        f'<?xml version="1.0"?><!DOCTYPE codelist [<!ENTITY xxe SYSTEM "file://{secret}">]>'
        '<codelist name="Evil"><codelist-items><codelist-item><code>1</code>'
        "<name>&xxe;</name></codelist-item></codelist-items></codelist>"
    )
    codelists = load_codelists(tmp_path)
    assert codelists.name("Evil", "1") != "SECRET"


def test_missing_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(CodelistError, match="nowhere"):
        load_codelists(tmp_path / "nowhere")
