"""Structure-aware mutators for the harnesses (libFuzzer custom mutators, run by ``run.py``).

Byte-level mutations of an XML file mostly make it not well-formed, and those of a JSON
submission mostly make it invalid JSON: the file is then rejected at once and the code
behind the parser (harmonising, checking) is seldom reached. So, most of the time, these
mutators parse the input, change one thing in its structure (an attribute, a text, a value
of a record, an element or a record moved, copied or dropped) to a value from a list of
awkward ones, and write it back; otherwise, and for anything that does not parse, they
fall back to libFuzzer's own byte mutations (``atheris.Mutate``).

This module is imported before the project's modules are instrumented, so its own code
adds nothing to the coverage the fuzzer steers by.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from typing import Any

from lxml import etree

#: Attribute and text values that have broken parsers of dates, numbers and codes.
XML_VALUES = (
    "",
    " ",
    "0",
    "-0",
    "1",
    "-1",
    "99",
    "100",
    "101",
    "-5",
    "0.5",
    "1,000.50",
    "1.000,50",
    "1e309",
    "-1e309",
    "1e-400",
    "NaN",
    "Infinity",
    "9" * 40,
    "0x1F",
    "١٢٣",
    "2020-01-01",
    "2020-02-30",
    "2020-13-01",
    "0000-01-01",
    "0001-01-01",
    "9999-12-31",
    "10000-01-01",
    "2020-01-01T00:00:00",
    "2020-01-01T24:00:00+14:00",
    "2020-01-01Z",
    "2020-01-01+25:00",
    "2020",
    "20200101",
    "USD",
    "XDR",
    "EUR",
    "usd",
    "ZZZ",
    "1.01",
    "1.05",
    "2.03",
    "2.99",
    "3.0",
    "C",
    "D",
    "IF",
    "en",
    "x" * 300,
    "\u202e\ufeff\U0001f600",
)
#: Values a JSON submission's cell may hold.
JSON_VALUES: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    1,
    0.5,
    2025,
    20000,
    44000.5,
    1e308,
    10**400,
    float("nan"),
    float("inf"),
    -float("inf"),
    [],
    {},
    [1, "a"],
    {"a": 1},
    *XML_VALUES,
    "31/12/2025",
    "12/31/2025",
    "2025-12-31 00:00",
    "yes",
    "no",
    "KE",
    "Kenya",
    "=1+1",
)


def _fallback(data: bytes, max_size: int) -> bytes:
    import atheris

    mutated: bytes = atheris.Mutate(data, max_size)
    return mutated


def _xml_value(rng: random.Random, current: str | None) -> str:
    if current and rng.random() < 0.3:
        text = list(current)
        text.insert(rng.randrange(len(text) + 1), rng.choice("0-9.,:TZ+ e"))
        return "".join(text)
    return rng.choice(XML_VALUES)


def _safe_parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def mutate_xml_tree(root: etree._Element, rng: random.Random) -> None:
    """One structural change somewhere in the tree under ``root``."""
    elements = [e for e in root.iter() if isinstance(e.tag, str)]
    element = rng.choice(elements)
    action = rng.randrange(7)
    if action == 0 and element.attrib:
        name = rng.choice(list(element.attrib))
        element.set(name, _xml_value(rng, element.get(name)))
    elif action == 1:
        element.text = _xml_value(rng, element.text)
    elif action == 2 and element.attrib:
        del element.attrib[rng.choice(list(element.attrib))]
    elif action == 3 and (parent := element.getparent()) is not None:
        parent.remove(element)
    elif action == 4 and element.getparent() is not None:
        element.addnext(copy.deepcopy(element))
    elif action == 5 and element is not root:
        target = rng.choice(elements)
        if element not in target.iterancestors() and target is not element:
            target.append(copy.deepcopy(element))
    else:
        names = sorted({a for e in elements for a in e.attrib})
        if names:
            element.set(rng.choice(names), _xml_value(rng, None))


def iati_mutator(data: bytes, max_size: int, seed: int) -> bytes:
    """A mutation of an IATI file: mostly structural, sometimes byte-level."""
    rng = random.Random(seed)
    if rng.random() < 0.3:
        return _fallback(data, max_size)
    try:
        root = etree.fromstring(data, _safe_parser())
    except (etree.XMLSyntaxError, ValueError):
        return _fallback(data, max_size)
    for _ in range(1 + int(rng.expovariate(1.0))):
        try:
            mutate_xml_tree(root, rng)
        except ValueError:  # a value lxml refuses (the byte-level mutations can add those)
            continue
    out: bytes = etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8")
    return out if len(out) <= max_size else _fallback(data, max_size)


def _json_value(rng: random.Random, current: Any) -> Any:
    if isinstance(current, str) and current and rng.random() < 0.3:
        text = list(current)
        text.insert(rng.randrange(len(text) + 1), rng.choice("0-9.,/: e%'\u00a0"))
        return "".join(text)
    return rng.choice(JSON_VALUES)


def mutate_submission(document: dict[str, Any], rng: random.Random) -> None:
    """One change to a JSON submission: a cell, a column, a record or a sheet."""
    sheets = [name for name, value in document.items() if isinstance(value, list) and value]
    if not sheets or rng.random() < 0.05:
        name = rng.choice([*document, "metadata", "results", "activities"])
        document[name] = rng.choice(([{}], {"a": 1}, "x", [], None))
        return
    records = document[rng.choice(sheets)]
    index = rng.randrange(len(records))
    record = records[index]
    if not isinstance(record, dict) or not record:
        records[index] = {"id": _json_value(rng, None)}
        return
    key = rng.choice(list(record))
    action = rng.randrange(8)
    if action <= 3:
        record[key] = _json_value(rng, record[key])
    elif action == 4:
        del record[key]
    elif action == 5:
        record[rng.choice((key.upper(), f" {key}", key.replace("_", " "), ""))] = record.pop(key)
    elif action == 6:
        records.insert(rng.randrange(len(records) + 1), copy.deepcopy(record))
    else:
        records.pop(index)


def submission_mutator(data: bytes, max_size: int, seed: int) -> bytes:
    """A mutation of a submission: structural for JSON ones, else byte-level."""
    rng = random.Random(seed)
    if rng.random() < 0.3:
        return _fallback(data, max_size)
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except (ValueError, RecursionError):
        return _fallback(data, max_size)
    if not isinstance(document, dict):
        return _fallback(data, max_size)
    for _ in range(1 + int(rng.expovariate(1.0))):
        mutate_submission(document, rng)
    try:
        out = json.dumps(document, ensure_ascii=rng.random() < 0.5).encode("utf-8")
    except (ValueError, RecursionError):  # an integer too long to write out, deep nesting
        return _fallback(data, max_size)
    return out if len(out) <= max_size else _fallback(data, max_size)


Mutator = Callable[[bytes, int, int], bytes]


def _guarded(mutator: Mutator) -> Mutator:
    """``mutator``, falling back to byte-level mutation should it fail (an exception in a
    custom mutator would end the fuzzing run)."""

    def guarded(data: bytes, max_size: int, seed: int) -> bytes:
        try:
            return mutator(data, max_size, seed)
        except Exception:
            return _fallback(data, max_size)

    return guarded


MUTATORS: dict[str, Mutator] = {
    "iati_harmonise": _guarded(iati_mutator),
    "submission_read": _guarded(submission_mutator),
}
