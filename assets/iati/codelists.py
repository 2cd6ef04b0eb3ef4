"""Official IATI codelists (XML or JSON files) as reference data: code names, statuses, versions.

The same codelist can exist in several versions of the standard (TransactionType has letter
codes in 1.05 and numbers in 2.03), so each is kept per version. The version of a file is
the last folder on its path named like a version (``2.03``, ``1.05``); a file with none is
version-less (``non-embedded``: the non-embedded codelists serve every version). Without a
requested version the newest one is used; a requested version that lacks a codelist falls
back to its version-less copy only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from lxml import etree

#: Version of codelists found outside any version-named folder.
VERSIONLESS = "non-embedded"
#: Status of an item that states none (all items of 1.05 and embedded 2.03 codelists).
DEFAULT_STATUS = "active"
FRAME_COLUMNS = ["codelist", "code", "name", "status", "version"]

_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
#: IATI versions are 1.01-1.05 and 2.01-2.03: "3.11" in a path is not one.
_VERSION_FOLDER = re.compile(r"^\d\.0\d$")
_LANGUAGE_FOLDER = re.compile(r"^[a-z]{2}$")


class CodelistError(Exception):
    """A codelist file that cannot be read (not well-formed, or items without codes)."""


@dataclass
class CodelistItem:
    """One code: its names by language and its status (``active`` or ``withdrawn``)."""

    code: str
    names: dict[str, str] = field(default_factory=dict)
    status: str = DEFAULT_STATUS


@dataclass
class Codelist:
    """One version of one codelist; ``language`` is the language of unmarked names."""

    name: str
    version: str
    language: str = "en"
    items: dict[str, CodelistItem] = field(default_factory=dict)

    def item_name(self, code: str, language: str) -> str | None:
        """Name of ``code`` in ``language``, else in the codelist's own language."""
        item = self.items.get(code)
        if item is None:
            return None
        return item.names.get(language) or item.names.get(self.language)


def _version_key(version: str) -> tuple[int, ...]:
    """Sort key putting numbered versions newest last and the version-less list first."""
    return tuple(int(part) for part in version.split(".")) if version != VERSIONLESS else ()


@dataclass
class Codelists:
    """Codelists by name and version (``lists[name][version]``)."""

    lists: dict[str, dict[str, Codelist]] = field(default_factory=dict)

    def name(
        self, codelist: str, code: str, language: str = "en", version: str | None = None
    ) -> str | None:
        """Name of a code (in ``language``, else the codelist's own language); None when
        the codelist or code is unknown or the code has no name."""
        found = self._resolve(codelist, version)
        return None if found is None else found.item_name(code, language)

    def status(self, codelist: str, code: str, version: str | None = None) -> str | None:
        """``active`` or ``withdrawn``; None when the codelist or code is unknown."""
        found = self._resolve(codelist, version)
        item = None if found is None else found.items.get(code)
        return None if item is None else item.status

    def codes(
        self, codelist: str, version: str | None = None, *, include_withdrawn: bool = True
    ) -> frozenset[str]:
        """The codes of a codelist; KeyError when it is not loaded (check :meth:`has`)."""
        found = self._resolve(codelist, version)
        if found is None:
            raise KeyError(f"codelist {codelist!r} (version {version or 'newest'}) is not loaded")
        return frozenset(
            item.code
            for item in found.items.values()
            if include_withdrawn or item.status != "withdrawn"
        )

    def items(self, codelist: str, version: str | None = None) -> list[CodelistItem]:
        """Every code of a codelist with its names by language, in the file's order;
        KeyError when it is not loaded (check :meth:`has`)."""
        found = self._resolve(codelist, version)
        if found is None:
            raise KeyError(f"codelist {codelist!r} (version {version or 'newest'}) is not loaded")
        return list(found.items.values())

    def has(self, codelist: str, version: str | None = None) -> bool:
        return self._resolve(codelist, version) is not None

    def __contains__(self, codelist: object) -> bool:
        return isinstance(codelist, str) and self.has(codelist)

    def versions(self, codelist: str) -> list[str]:
        """Versions holding ``codelist``, oldest first (version-less first of all)."""
        return sorted(self.lists.get(codelist, {}), key=_version_key)

    def to_frame(self) -> pd.DataFrame:
        """One row per codelist, version and code (name in the codelist's own language),
        sorted, for storing as reference data; :meth:`from_frame` reads it back."""
        rows = [
            (name, item.code, found.item_name(item.code, found.language), item.status, version)
            for name, by_version in self.lists.items()
            for version, found in by_version.items()
            for item in found.items.values()
        ]
        frame = pd.DataFrame(rows, columns=FRAME_COLUMNS)
        return frame.sort_values(["codelist", "version", "code"], ignore_index=True)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> Codelists:
        """Codelists from a frame written by :meth:`to_frame` (names in one language)."""
        missing = [column for column in FRAME_COLUMNS if column not in frame.columns]
        if missing:
            raise CodelistError(f"codelist frame lacks columns {missing}")
        codelists = cls()
        for name, code, item_name, status, version in zip(
            *(frame[column] for column in FRAME_COLUMNS), strict=True
        ):
            found = codelists._codelist(str(name), str(version), "en")
            names = {} if pd.isna(item_name) else {found.language: str(item_name)}
            found.items.setdefault(
                str(code),
                CodelistItem(str(code), names, DEFAULT_STATUS if pd.isna(status) else str(status)),
            )
        return codelists

    def _codelist(self, name: str, version: str, language: str) -> Codelist:
        """The codelist for ``name`` and ``version``, created when new."""
        by_version = self.lists.setdefault(name, {})
        return by_version.setdefault(version, Codelist(name, version, language))

    def _resolve(self, codelist: str, version: str | None) -> Codelist | None:
        by_version = self.lists.get(codelist)
        if not by_version:
            return None
        if version is None:
            return by_version[max(by_version, key=_version_key)]
        return by_version.get(version) or by_version.get(VERSIONLESS)

    def _merge(self, parsed: Codelist) -> None:
        """Add a parsed file; for codes already known, only names in new languages count."""
        target = self._codelist(parsed.name, parsed.version, parsed.language)
        for code, item in parsed.items.items():
            known = target.items.setdefault(code, item)
            if known is not item:
                for language, text in item.names.items():
                    known.names.setdefault(language, text)


def load_codelists(directory: Path) -> Codelists:
    """All codelists under ``directory`` (recursive). XML or JSON files that are not
    codelists, such as ``mapping.xml``, are skipped; a malformed codelist raises
    CodelistError."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CodelistError(f"{directory}: not a folder of codelists")
    codelists = Codelists()
    for path in _codelist_files(directory):
        parsed = _parse_json(path) if path.suffix.lower() == ".json" else _parse_xml(path)
        if parsed is not None:
            codelists._merge(parsed)
    return codelists


def _codelist_files(directory: Path) -> Iterator[Path]:
    for path in sorted(directory.rglob("*")):
        if path.is_file() and path.suffix.lower() in (".xml", ".json"):
            yield path


def _version_of(path: Path) -> str:
    folders = [part for part in path.resolve().parent.parts if _VERSION_FOLDER.match(part)]
    return folders[-1] if folders else VERSIONLESS


def _parse_xml(path: Path) -> Codelist | None:
    """One IATI codelist XML file (1.0x plain names or 2.0x narratives); None if the root
    is not ``codelist``."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        root = etree.parse(str(path), parser).getroot()
    except (etree.XMLSyntaxError, OSError) as error:
        raise CodelistError(f"{path}: not a well-formed codelist file: {error}") from error
    if root.tag != "codelist":
        return None
    name = (root.get("name") or "").strip()
    if not name:
        raise CodelistError(f"{path}: codelist element has no name attribute")
    parsed = Codelist(name, _version_of(path), root.get(_XML_LANG) or "en")
    for number, element in enumerate(root.iterfind("codelist-items/codelist-item"), start=1):
        code = (element.findtext("code") or "").strip()
        if not code:
            raise CodelistError(f"{path}: codelist-item {number} has no code")
        names: dict[str, str] = {}
        name_element = element.find("name")
        if name_element is not None:
            narratives = name_element.findall("narrative")
            if narratives:
                for narrative in narratives:
                    text = (narrative.text or "").strip()
                    if text:
                        names.setdefault(narrative.get(_XML_LANG) or parsed.language, text)
            elif (name_element.text or "").strip():
                names[parsed.language] = (name_element.text or "").strip()
        status = (element.get("status") or DEFAULT_STATUS).strip()
        parsed.items.setdefault(code, CodelistItem(code, names, status))
    return parsed


def _parse_json(path: Path) -> Codelist | None:
    """One codelist in the official JSON format (``attributes`` and ``data``); its names'
    language is the folder's (``json/fr/Sector.json``) or the attributes' ``xml:lang``."""
    try:
        document: Any = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CodelistError(f"{path}: not a readable JSON codelist: {error}") from error
    if not (isinstance(document, dict) and "attributes" in document and "data" in document):
        return None
    attributes, data = document["attributes"], document["data"]
    if not isinstance(attributes, dict) or not isinstance(data, list):
        raise CodelistError(f"{path}: 'attributes' must be an object and 'data' a list")
    name = str(attributes.get("name") or "").strip()
    if not name:
        raise CodelistError(f"{path}: attributes have no codelist name")
    folder = path.parent.name
    language = folder if _LANGUAGE_FOLDER.match(folder) else attributes.get("xml:lang") or "en"
    parsed = Codelist(name, _version_of(path), str(language))
    for number, record in enumerate(data, start=1):
        raw_code = record.get("code") if isinstance(record, dict) else None
        code = "" if raw_code is None else str(raw_code).strip()
        if not code:
            raise CodelistError(f"{path}: data item {number} has no code")
        text = str(record.get("name") or "").strip()
        names = {parsed.language: text} if text else {}
        status = str(record.get("status") or DEFAULT_STATUS).strip()
        parsed.items.setdefault(code, CodelistItem(code, names, status))
    return parsed
