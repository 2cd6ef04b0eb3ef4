"""The data dictionary (docs/data-dictionary.md), generated from the Table Schemas in schema/.

The schema files are the single source of truth; the dictionary is their
readable form for researchers, so it is rendered, never written by hand, and a
test fails when the committed copy is stale.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

VERSION_FILE = "schema-version.json"
REGENERATE_COMMAND = "make dictionary"
REGENERATE_CLI = "cdcompact schema dictionary"


def _load_tables(schema_dir: Path) -> list[dict[str, Any]]:
    """Every table descriptor in ``schema_dir``, in file-name order (stable across machines)."""
    tables = []
    for path in sorted(schema_dir.glob("*.json")):
        if path.name == VERSION_FILE:
            continue
        descriptor: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        descriptor.setdefault("name", path.stem)
        tables.append(descriptor)
    return tables


def _load_version(schema_dir: Path) -> str:
    data = json.loads((schema_dir / VERSION_FILE).read_text(encoding="utf-8"))
    return str(data["schema_version"])


def _cell(text: str) -> str:
    """Make ``text`` safe inside one Markdown table cell (one line, no bare pipes)."""
    return " ".join(text.split()).replace("|", "\\|")


def _code(text: str) -> str:
    """``text`` as inline code, with a fence long enough for backticks inside it."""
    fence = "``" if "`" in text else "`"
    padding = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{padding}{text}{padding}{fence}"


def _names(fields: str | list[str]) -> list[str]:
    return [fields] if isinstance(fields, str) else list(fields)


def _key(fields: str | list[str]) -> str:
    return ", ".join(_code(name) for name in _names(fields))


def _constraints(field: dict[str, Any]) -> str:
    """A field's constraints other than ``required``, as short readable text."""
    constraints: dict[str, Any] = field.get("constraints", {})
    parts: list[str] = []
    if "enum" in constraints:
        parts.append("one of " + ", ".join(_code(str(v)) for v in constraints["enum"]))
    low, high = constraints.get("minimum"), constraints.get("maximum")
    if low is not None and high is not None:
        parts.append(f"{low} to {high}")
    elif low is not None:
        parts.append(f"≥ {low}")
    elif high is not None:
        parts.append(f"≤ {high}")
    if "minLength" in constraints:
        parts.append(f"at least {constraints['minLength']} characters")
    if "maxLength" in constraints:
        parts.append(f"at most {constraints['maxLength']} characters")
    if "pattern" in constraints:
        parts.append("matches " + _code(str(constraints["pattern"])))
    if constraints.get("unique"):
        parts.append("unique")
    return "; ".join(parts)


def _foreign_key(foreign_key: dict[str, Any]) -> str:
    reference = foreign_key["reference"]
    target = f"[{reference['resource']}](#{reference['resource']})"
    return f"{_key(foreign_key['fields'])} → {target} ({_key(reference['fields'])})"


def _render_table(table: dict[str, Any]) -> list[str]:
    name = table["name"]
    lines = [f"## {name}", ""]
    if table.get("title"):
        lines += [f"**{table['title']}**", ""]
    if table.get("description"):
        lines += [" ".join(str(table["description"]).split()), ""]
    primary_key = table.get("primaryKey")
    lines.append(f"- Primary key: {_key(primary_key) if primary_key else 'none'}")
    foreign_keys = table.get("foreignKeys") or []
    if foreign_keys:
        lines.append("- Foreign keys:")
        lines += [f"  - {_foreign_key(fk)}" for fk in foreign_keys]
    else:
        lines.append("- Foreign keys: none")
    lines += [
        "",
        "| field | type | required | constraints | description |",
        "|---|---|---|---|---|",
    ]
    key_fields = set(_names(primary_key)) if primary_key else set()
    for field in table["fields"]:
        required = field.get("constraints", {}).get("required", False) or (
            field["name"] in key_fields
        )
        lines.append(
            "| "
            + " | ".join(
                [
                    _cell(_code(field["name"])),
                    _cell(field.get("type", "any")),
                    "yes" if required else "",
                    _cell(_constraints(field)),
                    _cell(field.get("description", "")),
                ]
            )
            + " |"
        )
    lines.append("")
    return lines


def render_data_dictionary(schema_dir: Path) -> str:
    """The data dictionary as Markdown: deterministic, so the committed copy can be checked."""
    tables = _load_tables(schema_dir)
    version = _load_version(schema_dir)
    lines = [
        "# Data dictionary: the CD results schema",
        "",
        f"Schema version: **{version}** (semantic versioning: renaming or removing a field is a "
        "major change, adding one is a minor change).",
        "",
        "<!-- Generated from schema/*.json by publish/dictionary.py. Do not edit by hand. -->",
        "",
        "This file is generated from the Frictionless Table Schemas in the repository's "
        "`schema/` folder, the single source of truth for every table and field. Do not edit "
        f"it by hand: change the schema files and regenerate it with `{REGENERATE_COMMAND}` "
        f"(or `{REGENERATE_CLI}`).",
        "",
        "An empty cell in a published CSV file means the value is missing or unknown. Codes "
        "are kept as published (IATI codes as strings), dates are ISO 8601 dates, and money "
        "is a number plus an ISO 4217 currency.",
        "",
        "## Tables",
        "",
    ]
    for table in tables:
        title = f" — {table['title']}" if table.get("title") else ""
        lines.append(f"- [{table['name']}](#{table['name']}){title}")
    lines.append("")
    for table in tables:
        lines += _render_table(table)
    return "\n".join(lines).rstrip("\n") + "\n"


def write_data_dictionary(schema_dir: Path, out: Path) -> bool:
    """Write the dictionary to ``out``; True when the file's content changed."""
    text = render_data_dictionary(schema_dir)
    if out.is_file() and out.read_text(encoding="utf-8") == text:
        return False
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8", newline="\n")
    return True


def check_data_dictionary(schema_dir: Path, out: Path) -> bool:
    """True when ``out`` exists and equals the dictionary rendered from ``schema_dir``."""
    return out.is_file() and out.read_text(encoding="utf-8") == render_data_dictionary(schema_dir)
