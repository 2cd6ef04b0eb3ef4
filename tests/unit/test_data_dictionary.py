"""docs/data-dictionary.md is generated from schema/ and must stay in step with it."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from publish.dictionary import (
    check_data_dictionary,
    render_data_dictionary,
    write_data_dictionary,
)
from tests.conftest import PROJECT_ROOT

SCHEMA_DIR = PROJECT_ROOT / "schema"
DICTIONARY = PROJECT_ROOT / "docs" / "data-dictionary.md"
UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")


def table_descriptors(schema_dir: Path = SCHEMA_DIR) -> dict[str, dict[str, Any]]:
    return {
        path.stem: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(schema_dir.glob("*.json"))
        if path.name != "schema-version.json"
    }


def section(markdown: str, table: str) -> str:
    """The part of the dictionary about one table."""
    match = re.search(rf"^## {re.escape(table)}\n(.*?)(?=^## |\Z)", markdown, re.M | re.S)
    assert match, f"no section for {table}"
    return match.group(1)


def field_rows(markdown: str, table: str) -> dict[str, list[str]]:
    """Field name -> the cells of its row in the table's field table."""
    rows: dict[str, list[str]] = {}
    for line in section(markdown, table).splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in UNESCAPED_PIPE.split(line)[1:-1]]
        rows[cells[0].strip("`")] = cells
    return rows


@pytest.fixture
def schema_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "schema"
    shutil.copytree(SCHEMA_DIR, copy)
    return copy


def test_committed_dictionary_is_up_to_date() -> None:
    expected = render_data_dictionary(SCHEMA_DIR)
    actual = DICTIONARY.read_text(encoding="utf-8") if DICTIONARY.is_file() else ""
    assert actual == expected, (
        "docs/data-dictionary.md is out of date with schema/: regenerate it with "
        "`make dictionary` (or `cdcompact schema dictionary`) and commit the result"
    )
    assert check_data_dictionary(SCHEMA_DIR, DICTIONARY)


def test_a_changed_description_changes_the_dictionary(schema_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "data-dictionary.md"
    assert write_data_dictionary(schema_copy, out) is True
    assert write_data_dictionary(schema_copy, out) is False
    assert check_data_dictionary(schema_copy, out)

    path = schema_copy / "transactions.json"
    descriptor = json.loads(path.read_text(encoding="utf-8"))
    value = next(f for f in descriptor["fields"] if f["name"] == "value")
    value["description"] = "Amount in the transaction's currency, revised."
    path.write_text(json.dumps(descriptor), encoding="utf-8")

    assert not check_data_dictionary(schema_copy, out)
    assert render_data_dictionary(schema_copy) != render_data_dictionary(SCHEMA_DIR)
    assert "revised." in field_rows(render_data_dictionary(schema_copy), "transactions")["value"][4]
    assert write_data_dictionary(schema_copy, out) is True
    assert check_data_dictionary(schema_copy, out)


def test_a_missing_dictionary_is_not_up_to_date(tmp_path: Path) -> None:
    assert not check_data_dictionary(SCHEMA_DIR, tmp_path / "nowhere.md")


def test_rendering_is_deterministic() -> None:
    first = render_data_dictionary(SCHEMA_DIR)
    assert first == render_data_dictionary(SCHEMA_DIR)
    assert not re.search(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", first), "no timestamps"
    assert first.endswith("\n")
    assert not first.endswith("\n\n")


def test_intro_says_version_generation_and_how_to_regenerate() -> None:
    markdown = render_data_dictionary(SCHEMA_DIR)
    version = json.loads((SCHEMA_DIR / "schema-version.json").read_text(encoding="utf-8"))
    intro = markdown.split("\n## ", 1)[0]
    assert markdown.startswith("# ")
    assert f"**{version['schema_version']}**" in intro
    assert "Do not edit" in intro
    assert "`make dictionary`" in intro
    assert "`cdcompact schema dictionary`" in intro


def test_every_table_is_in_the_contents_and_has_a_section() -> None:
    markdown = render_data_dictionary(SCHEMA_DIR)
    contents = section(markdown, "Tables")
    for table, descriptor in table_descriptors().items():
        assert f"- [{table}](#{table})" in contents
        body = section(markdown, table)
        assert " ".join(descriptor["description"].split()) in body


def test_every_field_has_a_row_with_type_requirement_and_description() -> None:
    markdown = render_data_dictionary(SCHEMA_DIR)
    for table, descriptor in table_descriptors().items():
        rows = field_rows(markdown, table)
        assert list(rows) == [f["name"] for f in descriptor["fields"]], table
        for schema_field in descriptor["fields"]:
            cells = rows[schema_field["name"]]
            assert len(cells) == 5, f"{table}.{schema_field['name']}: a cell has a bare |"
            assert cells[1] == schema_field["type"]
            required = schema_field.get("constraints", {}).get("required", False)
            assert cells[2] == ("yes" if required else "")
            assert cells[4].replace("\\|", "|") == " ".join(schema_field["description"].split())


def test_keys_and_constraints_are_readable() -> None:
    markdown = render_data_dictionary(SCHEMA_DIR)
    links = section(markdown, "alignment_links")
    assert "Primary key: `activity_id`, `country_code`, `priority_id`, `basis`" in links
    assert "`country_code`, `priority_id` → [cd_priorities](#cd_priorities)" in links
    assert "Primary key: none" in section(markdown, "alignment_metrics")

    activities = field_rows(markdown, "activities")
    assert activities["modality"][3].startswith("one of `training`, `technical_assistance`")
    assert activities["default_currency"][3] == "matches `^[A-Z]{3}$`"
    # a pattern with alternatives keeps its pipes, escaped so the row keeps five cells
    assert "\\|ftc_flag\\|" in activities["cd_basis"][3]
    assert field_rows(markdown, "activity_countries")["share"][3] == "0 to 1"
    assert field_rows(markdown, "sources")["bytes"][3] == "≥ 0"


def test_pipes_in_descriptions_are_escaped(schema_copy: Path) -> None:
    path = schema_copy / "quarantine.json"
    descriptor = json.loads(path.read_text(encoding="utf-8"))
    descriptor["fields"][0]["description"] = "Either a | b,\nor c."
    path.write_text(json.dumps(descriptor), encoding="utf-8")
    cells = field_rows(render_data_dictionary(schema_copy), "quarantine")["source_file"]
    assert len(cells) == 5
    assert cells[4] == "Either a \\| b, or c."
