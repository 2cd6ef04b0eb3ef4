"""Seed inputs for the fuzz harnesses, built at run time (never stored in the repository).

IATI: every XML file of the shared fixtures (``iati/valid``, ``iati/legacy``, ``iati/invalid``
...) and of ``demo/iati``. A file larger than :data:`MAX_SEED_BYTES` is cut after its first
activities and closed again (so it stays well-formed), because the fuzzer mutates small inputs
much faster and the interesting structure repeats anyway.

Submissions: the templates (the two workbooks, their CSV folders zipped, their data package
descriptors), the demo files, and the realistic and hostile samples that
``tests/submission_samples.py`` writes.
"""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
import zipfile
from pathlib import Path

from lxml import etree

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CDCOMPACT_SHARED", ROOT.parent / "shared")).resolve()
FIXTURES = SHARED / "fixtures"
#: IATI seeds are at most this long (larger files are cut after whole activities).
MAX_SEED_BYTES = 16 * 1024
#: Submission files longer than this are not used as seeds.
MAX_SUBMISSION_SEED_BYTES = 48 * 1024

_SUBMISSION_SUFFIXES = frozenset({".xlsx", ".csv", ".zip", ".json", ".txt"})
_ACTIVITY_END = re.compile(rb"</(?:[\w.-]+:)?iati-activity\s*>")
_ROOT_START = re.compile(rb"<((?:[\w.-]+:)?iati-activities)[\s>]")


def _label(path: Path, base: Path) -> str:
    return path.relative_to(base).as_posix().replace("/", "__")


def shrink_iati(data: bytes, limit: int = MAX_SEED_BYTES) -> bytes:
    """``data`` if short enough; else its start up to the last whole activity within
    ``limit`` (at least one), closed with the root's end tag when that is well-formed XML,
    else its first ``limit`` bytes."""
    if len(data) <= limit:
        return data
    root = _ROOT_START.search(data)
    ends = [m.end() for m in _ACTIVITY_END.finditer(data, 0, len(data))]
    if root is not None and ends:
        kept = [end for end in ends if end <= limit] or ends[:1]
        cut = data[: kept[-1]] + b"\n</" + root.group(1) + b">\n"
        if len(cut) <= limit and _well_formed(cut):
            return cut
    return _trimmed(data, limit) or data[:limit]


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def _well_formed(data: bytes) -> bool:
    try:
        etree.fromstring(data, _parser())
    except etree.XMLSyntaxError:
        return False
    return True


def _trimmed(data: bytes, limit: int) -> bytes | None:
    """The file re-serialised with its first activities only, each keeping at most a few
    elements of every kind (an activity with thousands of transactions keeps five)."""
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError:
        return None
    for activity in root[2:]:
        root.remove(activity)
    for keep in (5, 2, 1):
        for activity in root:
            seen: dict[object, int] = {}
            for child in list(activity):
                seen[child.tag] = seen.get(child.tag, 0) + 1
                if seen[child.tag] > keep:
                    activity.remove(child)
        cut = etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8")
        if len(cut) <= limit:
            return cut
    return None


def iati_seeds() -> dict[str, bytes]:
    """Seed name -> bytes for the IATI harness."""
    seeds: dict[str, bytes] = {}
    for base, folder in ((FIXTURES, FIXTURES / "iati"), (ROOT, ROOT / "demo" / "iati")):
        for path in sorted(folder.rglob("*.xml")):
            seeds[_label(path, base)] = shrink_iati(path.read_bytes())
    return seeds


def _zip_folder(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.iterdir()):
            if path.is_file() and path.suffix.lower() in {".csv", ".txt"}:
                archive.write(path, path.name)
    return buffer.getvalue()


def submission_seeds() -> dict[str, bytes]:
    """Seed name -> bytes for the submission harness.

    Every seed that reads as a submission also gets a JSON twin (its sheets as lists of
    records): a mutated ZIP member fails its CRC and is rejected, so the fuzzer reaches
    the checker mostly through JSON.
    """
    seeds: dict[str, bytes] = {}
    for top in (ROOT / "templates", ROOT / "demo"):
        for path in sorted(p for p in top.rglob("*") if p.is_file()):
            if (
                path.suffix.lower() in _SUBMISSION_SUFFIXES
                and path.stat().st_size <= MAX_SUBMISSION_SEED_BYTES
            ):
                seeds[_label(path, ROOT)] = path.read_bytes()
        for folder in sorted(p for p in top.rglob("*") if p.is_dir()):
            if any(folder.glob("*.csv")):
                seeds[_label(folder, ROOT) + ".zip"] = _zip_folder(folder)
    from tests import submission_samples

    writers = {**submission_samples.SAMPLES, **submission_samples.HOSTILE}
    with tempfile.TemporaryDirectory(prefix="cdcompact-fuzz-seeds-") as scratch:
        for name, write in sorted(writers.items()):
            path = write(Path(scratch))
            data = path.read_bytes()
            if len(data) <= MAX_SUBMISSION_SEED_BYTES:
                seeds[f"sample__{name}{path.suffix}"] = data
    for name, data in list(seeds.items()):
        twin = json_twin(data)
        if twin is not None and not name.endswith(".json"):
            seeds[name.rsplit(".", 1)[0] + ".as.json"] = twin
    return seeds


def json_twin(data: bytes) -> bytes | None:
    """The submission in ``data`` as a JSON submission; None if it cannot be read."""
    from assets.submissions.read import SubmissionRejected, read_submission_bytes

    try:
        raw = read_submission_bytes(data, "seed")
    except SubmissionRejected:
        return None
    document = {
        name: [dict(zip(sheet.header, row, strict=False)) for row in sheet.rows if row]
        for name, sheet in raw.sheets.items()
    }
    return json.dumps(document, default=str, ensure_ascii=False, indent=1).encode("utf-8")


# --- dictionaries ---------------------------------------------------------------------------


def iati_dictionary() -> list[bytes]:
    """Tokens for the IATI harness: the element and attribute names of the seeds."""
    tags: set[str] = set()
    attributes: set[str] = set()
    for data in iati_seeds().values():
        try:
            root = etree.fromstring(data, _parser())
        except etree.XMLSyntaxError:
            continue
        for element in root.iter():
            if isinstance(element.tag, str):
                tags.add(etree.QName(element).localname)
                attributes.update(etree.QName(a).localname for a in element.attrib)
    tokens = [f"<{t}>" for t in tags] + [f"</{t}>" for t in tags] + [f"<{t} " for t in tags]
    tokens += [f' {a}="' for a in attributes]
    tokens += ['iso-date="2020-01-31"', 'code="1"', 'xml:lang="en"', 'version="2.03"']
    tokens += ["<![CDATA[", "&amp;", "&#x0;", "<!DOCTYPE", "<?xml ", 'encoding="UTF-16"']
    return sorted(t.encode("utf-8") for t in set(tokens))


def submission_dictionary() -> list[bytes]:
    """Tokens for the submission harness: sheet and column names, codes, JSON and ZIP bits."""
    from assets.submissions.model import submission_types

    words: set[str] = {"yes", "no", "true", "false", "", "2025", "2025-01-31", "USD", "KE"}
    for kind in submission_types():
        words.add(kind.name)
        for sheet in kind.sheets:
            words.add(sheet.name)
            for column in sheet.columns:
                words.add(column.name)
                words.update(column.enum)
    tokens = [json.dumps(w).encode("utf-8") for w in words]
    tokens += [b'": "', b'": [', b'": {', b"null", b"-0", b"\\u0000", b'"0000"', b"0000"]
    # Numbers at the edges: non-finite (JSON allows NaN and Infinity), beyond float's range
    # (libFuzzer keeps tokens of up to 64 bytes; fuzz.mutators puts in longer numbers).
    tokens += [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"1" + b"0" * 60]
    tokens += [b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06", b"xl/workbook.xml"]
    return sorted(set(tokens))


def dictionary_text(tokens: list[bytes]) -> str:
    """Tokens in libFuzzer's ``-dict`` format (one quoted, escaped token a line)."""
    lines = []
    for token in tokens:
        escaped = "".join(
            chr(b) if 32 <= b < 127 and b not in (34, 92) else f"\\x{b:02x}" for b in token
        )
        lines.append(f'"{escaped}"')
    return "\n".join(lines) + "\n"
