"""Safe, streaming reading of IATI activity files.

Files come from strangers: entities are never resolved, nothing is fetched
from the network, DTDs are refused, and the file is read one
``<iati-activity>`` at a time so memory stays flat however large it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

#: Bytes read to recognise what a file is before parsing it.
SNIFF_BYTES = 4096

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a ZIP archive (such as an XLSX spreadsheet or a zipped folder)"),
    (b"\xd0\xcf\x11\xe0", "an old Microsoft Office document (such as an XLS spreadsheet)"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"\x89PNG", "a PNG image"),
    (b"{", "a JSON document"),
    (b"[", "a JSON document"),
)


class NotIatiActivities(Exception):
    """The file cannot be read as IATI activities; ``rule`` names why, the message says how."""

    def __init__(self, rule: str, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.rule = rule
        self.line = line


@dataclass(frozen=True)
class ActivityElement:
    """One ``<iati-activity>`` element with where it stands in the file."""

    element: etree._Element
    position: int  # 1-based among the file's activities
    line: int | None
    pointer: str  # XPath-like: /iati-activities/iati-activity[3]


@dataclass
class FileHeader:
    """What the root element says about the whole file."""

    root_tag: str = ""
    version: str | None = None
    default_language: str | None = None
    generated: str | None = None
    #: The root's ``version`` attribute as published, and the line of the root.
    raw_version: str | None = None
    line: int | None = None


def local_name(tag: object) -> str:
    """Element name without namespace; comments and processing instructions give ''."""
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def sniff(path: Path) -> None:
    """Refuse files that are empty or plainly not XML, naming what they look like."""
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if not head.strip():
        raise NotIatiActivities("empty_file", "the file is empty")
    body = head.lstrip(b"\xef\xbb\xbf").lstrip()
    for utf16_bom in (b"\xff\xfe", b"\xfe\xff"):
        if head.startswith(utf16_bom):
            return  # UTF-16 XML: let the parser decide
    for magic, what in _MAGIC:
        if body.startswith(magic):
            raise NotIatiActivities("not_xml", f"the file is {what}, not XML")
    if not body.startswith(b"<"):
        preview = body[:40].decode("utf-8", errors="replace").splitlines()[0]
        raise NotIatiActivities("not_xml", f"the file is not XML: it starts with {preview!r}")


_ACTIVITY_TAG = "iati-activity"


#: How every IATI file is parsed: no entity is resolved, nothing is fetched, no
#: DTD is loaded, no huge-tree lifting of libxml2's limits.
SAFE_PARSE_OPTIONS: dict[str, Any] = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "dtd_validation": False,
    "huge_tree": False,
    "remove_comments": True,
    "remove_pis": True,
}


def iter_activities(
    path: Path, header: FileHeader, on_root: Callable[[FileHeader], None] | None = None
) -> Iterator[ActivityElement]:
    """Yield each ``<iati-activity>`` of the file, filling ``header`` from the root (and
    telling ``on_root`` once the root is read and accepted).

    Raises :class:`NotIatiActivities` for a file that is not well-formed, has a
    DTD, or whose root is not ``<iati-activities>`` / ``<iati-activity>``.

    The root is read first on its own (the parser stops after its start tag);
    the file is then parsed with libxml2 reporting only ``iati-activity``
    elements, so no Python code runs for the elements inside an activity until
    the harmoniser reads them.
    """
    sniff(path)
    _read_root(path, header)
    if on_root is not None:
        on_root(header)
    root_is_activity = header.root_tag == _ACTIVITY_TAG
    context = etree.iterparse(
        str(path), events=("end",), tag="{*}" + _ACTIVITY_TAG, **SAFE_PARSE_OPTIONS
    )
    position = 0
    try:
        for _, element in context:
            parent = element.getparent()
            if root_is_activity:
                if parent is None:
                    yield ActivityElement(element, 1, element.sourceline, f"/{_ACTIVITY_TAG}")
                continue
            if parent is None or parent.getparent() is not None:
                continue  # an iati-activity nested deeper than the root's children
            position += 1
            yield ActivityElement(
                element,
                position,
                element.sourceline,
                f"/iati-activities/iati-activity[{position}]",
            )
            # Free what has been read: the element and every earlier sibling.
            element.clear(keep_tail=False)
            while element.getprevious() is not None:
                del parent[0]
    except etree.XMLSyntaxError as exc:
        raise _not_well_formed(exc, context, position) from exc


def _read_root(path: Path, header: FileHeader) -> None:
    """Check the root element (and the DTD) from its start tag alone."""
    context = etree.iterparse(str(path), events=("start",), **SAFE_PARSE_OPTIONS)
    try:
        for _, element in context:
            _check_root(element, header)
            return
    except etree.XMLSyntaxError as exc:
        raise _not_well_formed(exc, context, 0) from exc


def _not_well_formed(exc: etree.XMLSyntaxError, context: Any, position: int) -> NotIatiActivities:
    line, column, message = exc.lineno, exc.offset, str(exc.msg or exc)
    # libxml2 sometimes raises a generic error ("no element found", line 0)
    # after logging the real one; the parser's error log has the real place.
    logged = [e for e in context.error_log if e.line > 0]
    if logged and (not line or message == "no element found"):
        line, column, message = logged[0].line, logged[0].column, logged[0].message
    where = f"line {line}, column {column}" if line else "the file"
    message = _clean_libxml_message(message)
    return NotIatiActivities(
        "not_well_formed",
        f"not well-formed XML at {where}: {message}"
        + (f" ({position} complete activities before it were not used)" if position else ""),
        line or None,
    )


#: libxml2's safety limits (kept: ``huge_tree`` is never set), said for a publisher:
#: libxml2's own words advise lifting the limit, which is not theirs to do.
_LIMIT_MESSAGES = (
    (
        re.compile(r"Excessive depth in document: (\d+)"),
        "elements are nested more than {0} levels deep, over the parser's safety limit "
        "(IATI activities nest a few levels)",
    ),
    (
        re.compile(r"Text node too long"),
        "a text is longer than 10,000,000 characters, over the parser's safety limit",
    ),
    (
        re.compile(r"Buffer size limit exceeded|huge input lookup|Huge input lookup"),
        "a name, attribute or text is longer than 10,000,000 characters, over the "
        "parser's safety limit",
    ),
)


def _clean_libxml_message(message: str) -> str:
    for pattern, said in _LIMIT_MESSAGES:
        found = pattern.search(message)
        if found:
            return said.format(*found.groups())
    return re.sub(r",?\s*line \d+, column \d+\s*(\(.*\))?$", "", message).strip()


def _check_root(element: etree._Element, header: FileHeader) -> None:
    tree = element.getroottree()
    if tree.docinfo.doctype:
        raise NotIatiActivities(
            "doctype_not_allowed",
            "the file declares a DTD (<!DOCTYPE ...>); IATI files have none and DTDs "
            "can hide entity-expansion attacks, so the file is refused",
            1,
        )
    name = local_name(element.tag)
    namespace = element.tag[1:].split("}", 1)[0] if element.tag.startswith("{") else None
    if namespace is None and ":" in name:  # libxml2 only warns of an undeclared prefix
        raise NotIatiActivities(
            "not_well_formed",
            f"not well-formed XML at line {element.sourceline}: the namespace prefix "
            f"{name.split(':', 1)[0]!r} of the root element <{name}> is not declared",
            element.sourceline,
        )
    header.root_tag = name
    if name == "iati-organisations":
        raise NotIatiActivities(
            "organisation_file",
            "this is an IATI organisation file (<iati-organisations>), not an activity file",
            element.sourceline,
        )
    if name not in {"iati-activities", _ACTIVITY_TAG} or namespace is not None:
        shown = f"<{element.prefix}:{name}>" if element.prefix else f"<{name}>"
        if namespace:
            shown += f" (namespace {namespace})"
        raise NotIatiActivities(
            "not_iati_activities",
            f"XML, but not IATI activities: the root element is {shown}, "
            "expected <iati-activities> or <iati-activity>",
            element.sourceline,
        )
    header.raw_version = element.get("version")
    header.line = element.sourceline
    header.version = (header.raw_version or "").strip() or None
    header.default_language = element.get("{http://www.w3.org/XML/1998/namespace}lang")
    header.generated = element.get("generated-datetime")
