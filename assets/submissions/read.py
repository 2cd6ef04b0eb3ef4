"""Reading a submission file safely: XLSX, a folder or ZIP of CSV files, or JSON.

The format is decided by the file's content (magic bytes), never by its name, and the
submitter's file name is only ever displayed: nothing is written to disk, ZIP members are
read into memory after their sizes and compression ratios are checked. A file that cannot
be read safely raises :class:`SubmissionRejected` with a rule and a plain-language reason.

Cell values are returned raw (as the file holds them); :mod:`assets.submissions.check`
interprets them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import lzma
import math
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import Any

from lxml import etree
from openpyxl.utils.cell import range_boundaries

#: Formats :func:`read_submission` returns.
FORMATS = ("xlsx", "csv_folder", "csv_zip", "json")

#: The XLSX template's own sheets (see :mod:`assets.submissions.templates`): its
#: instructions and the hidden sheet of drop-down lists, which are no data.
TEMPLATE_README_SHEET, TEMPLATE_LISTS_SHEET = "README", "lists"
#: The CSV template folder's own Frictionless descriptor, which is no data either.
TEMPLATE_DESCRIPTOR = "datapackage.json"

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_CELL = re.compile(r"[A-Z]{1,3}[1-9]\d{0,6}")
_CELL_RANGE = re.compile(r"[A-Z]{1,3}[1-9]\d{0,6}:[A-Z]{1,3}[1-9]\d{0,6}")
_ABSOLUTE_NAME = re.compile(r"^(?:[A-Za-z]:|[\\/])")
#: What reading a damaged or unsupported ZIP raises: the decompressors' own errors
#: (zlib.error, LZMAError) are not OSErrors; an unknown compression method or ZIP version
#: is NotImplementedError (a RuntimeError).
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    OSError,
    ValueError,
    EOFError,
    RuntimeError,
)


class SubmissionRejected(Exception):
    """The file cannot be read as a submission at all (hostile, corrupt or not one)."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class ReadLimits:
    """Caps that keep a hostile or runaway file from exhausting memory or time."""

    max_file_bytes: int = 50 * 1024 * 1024
    #: Sum of the uncompressed sizes of all members of a ZIP (an XLSX is one too).
    max_uncompressed_bytes: int = 200 * 1024 * 1024
    #: Uncompressed : compressed size of one member (checked for members over 1 MiB,
    #: since tiny files compress oddly well without being dangerous).
    max_ratio: float = 100.0
    ratio_min_bytes: int = 1024 * 1024
    max_members: int = 1000
    max_sheets: int = 50
    #: Non-blank rows per sheet (the header row included) and columns per row.
    max_rows: int = 100_000
    max_columns: int = 200


@dataclass
class RawSheet:
    """One sheet (or CSV file) as read: the header cells and the rows below it.

    ``row_numbers[i]`` is the row number of ``rows[i]`` as the submitter sees it (the
    spreadsheet row, header row included; the CSV line; the record position in JSON).
    Blank rows between data rows are kept (as empty lists); blank rows at the end are not.
    """

    name: str
    header: list[str]
    header_row: int
    rows: list[list[Any]] = field(default_factory=list)
    row_numbers: list[int] = field(default_factory=list)
    #: XLSX: merged ranges (``D1:E1``) that take in the header row; every column of a
    #: merged header but the first is left without a header.
    merged_header: list[str] = field(default_factory=list)
    #: XLSX: the cells holding a formula (``C7``), whose last calculated value was read.
    formulas: list[str] = field(default_factory=list)


@dataclass
class RawSubmission:
    """A submission file read into memory, uninterpreted."""

    #: The name shown to people (the submitter's file name); never used as a path.
    name: str
    format: str  # one of FORMATS
    #: sha256 of the file's bytes (a folder: of its sorted files' names and bytes).
    sha256: str
    size: int
    #: By sheet name as found in the file (CSV: the file name without ``.csv``).
    sheets: dict[str, RawSheet] = field(default_factory=dict)
    #: Things the reader skipped or decided that a reviewer should know about.
    notes: list[str] = field(default_factory=list)


def read_submission(
    path: Path, display_name: str | None = None, *, limits: ReadLimits | None = None
) -> RawSubmission:
    """Read a submission file (or folder of CSV files); SubmissionRejected when unsafe."""
    limits = limits or ReadLimits()
    path = Path(path)
    name = display_name or path.name
    if path.is_dir():
        return _read_folder(path, name, limits)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise SubmissionRejected("unreadable", f"cannot read the file: {exc.strerror}") from exc
    if size > limits.max_file_bytes:
        raise SubmissionRejected(
            "too_large",
            f"the file is {size / 1e6:.1f} MB; submissions are limited to "
            f"{limits.max_file_bytes / 1e6:.0f} MB",
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SubmissionRejected("unreadable", f"cannot read the file: {exc.strerror}") from exc
    return read_submission_bytes(data, name, limits=limits)


def read_submission_bytes(
    data: bytes, name: str, *, limits: ReadLimits | None = None
) -> RawSubmission:
    """Read a submission held in memory (an upload); ``name`` is for display only."""
    limits = limits or ReadLimits()
    if len(data) > limits.max_file_bytes:
        raise SubmissionRejected(
            "too_large", f"the file is larger than {limits.max_file_bytes / 1e6:.0f} MB"
        )
    digest = hashlib.sha256(data).hexdigest()
    kind = sniff_format(data)
    raw = RawSubmission(name=name, format=kind, sha256=digest, size=len(data))
    if kind == "zip":
        archive = _open_zip(data, limits)
        names = set(archive.namelist())
        if "[Content_Types].xml" in names or "xl/workbook.xml" in names:
            raw.format = "xlsx"
            _read_xlsx(archive, data, raw, limits)
        else:
            raw.format = "csv_zip"
            _read_csv_zip(archive, raw, limits)
    elif kind == "json":
        _read_json(data, raw, limits)
    else:  # pragma: no cover - sniff_format raises for everything else
        raise SubmissionRejected("unknown_format", "not a submission file")
    if not raw.sheets:
        raise SubmissionRejected("empty", "the file holds no sheets with data")
    return raw


def sniff_format(data: bytes) -> str:
    """``zip`` or ``json`` from the first bytes; SubmissionRejected for anything else."""
    if not data.strip():
        raise SubmissionRejected("empty", "the file is empty")
    head = data[:8]
    if head.startswith(_ZIP_MAGIC):
        return "zip"
    if head.startswith(_OLE2_MAGIC):
        if "EncryptionInfo".encode("utf-16-le") in data:
            raise SubmissionRejected(
                "encrypted",
                "the workbook is password-protected (encrypted); save it as .xlsx without "
                "a password",
            )
        if "WordDocument".encode("utf-16-le") in data:
            raise SubmissionRejected("unknown_format", "a Word document, not a submission")
        raise SubmissionRejected(
            "old_format",
            "an old-format Office file (.xls); save it as an Excel workbook (.xlsx)",
        )
    if head.startswith(b"%PDF"):
        raise SubmissionRejected("unknown_format", "a PDF file, not a submission")
    if head.startswith(b"{\\rtf"):
        raise SubmissionRejected("unknown_format", "a Word (RTF) document, not a submission")
    if head.startswith((b"\x89PNG", b"\xff\xd8\xff", b"GIF8")):
        raise SubmissionRejected("unknown_format", "an image, not a submission")
    if head.startswith((b"\x1f\x8b", b"Rar!", b"7z\xbc\xaf")):
        raise SubmissionRejected(
            "unknown_format", "a compressed archive other than ZIP; send a .zip or .xlsx"
        )
    text = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text[:1] in (b"{", b"["):
        return "json"
    if text[:1] == b"<":
        raise SubmissionRejected(
            "unknown_format", "an HTML or XML file, not a submission (XLSX, CSV or JSON)"
        )
    if b"\x00" in data[:4096]:
        raise SubmissionRejected("unknown_format", "a binary file of unknown type")
    raise SubmissionRejected(
        "single_csv",
        "a single text/CSV file; a submission has several sheets: send the XLSX workbook, "
        "or a ZIP (or folder) holding one CSV file per sheet",
    )


# --- ZIP and XLSX ---------------------------------------------------------------------


def _open_zip(data: bytes, limits: ReadLimits) -> zipfile.ZipFile:
    """A ZIP whose members have been checked for bombs, unsafe names and encryption."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except _ZIP_ERRORS as exc:
        raise SubmissionRejected("corrupt", f"a damaged ZIP/XLSX file ({exc})") from exc
    if len(members) > limits.max_members:
        raise SubmissionRejected(
            "too_many_files",
            f"the archive holds {len(members)} files (at most {limits.max_members})",
        )
    total = 0
    for member in members:
        member_name = member.filename
        if stat.S_ISLNK(member.external_attr >> 16):
            raise SubmissionRejected(
                "unsafe_path",
                f"the archive holds a symbolic link ({member_name!r}); archives must hold "
                "plain files",
            )
        parts = PurePosixPath(member_name.replace("\\", "/")).parts
        if _ABSOLUTE_NAME.match(member_name) or ".." in parts:
            raise SubmissionRejected(
                "unsafe_path",
                f"the archive holds a file with an unsafe path ({member_name!r}); "
                "archives must not point outside themselves",
            )
        if member.flag_bits & 0x1:
            raise SubmissionRejected(
                "encrypted", f"the archive member {member_name!r} is password-protected"
            )
        total += member.file_size
        if total > limits.max_uncompressed_bytes:
            raise SubmissionRejected(
                "zip_bomb",
                f"the archive unpacks to more than {limits.max_uncompressed_bytes / 1e6:.0f} MB",
            )
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size >= limits.ratio_min_bytes and ratio > limits.max_ratio:
            raise SubmissionRejected(
                "zip_bomb",
                f"the archive member {member_name!r} is compressed {ratio:.0f}:1 "
                f"(at most {limits.max_ratio:.0f}:1 is accepted): a possible ZIP bomb",
            )
    return archive


def _member_bytes(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    limits: ReadLimits,
    what: str = "the archive member",
) -> bytes:
    """A member's bytes, reading no more than its declared size (which was checked)."""
    try:
        with archive.open(info) as stream:
            data = stream.read(info.file_size + 1)
    except _ZIP_ERRORS as exc:
        raise SubmissionRejected(
            "corrupt", f"{what} {info.filename!r} cannot be read ({exc})"
        ) from exc
    if len(data) > info.file_size:
        raise SubmissionRejected(
            "zip_bomb", f"the archive member {info.filename!r} is larger than it declares"
        )
    return data


def _read_xlsx(
    archive: zipfile.ZipFile, data: bytes, raw: RawSubmission, limits: ReadLimits
) -> None:
    import openpyxl

    names = {name.lower() for name in archive.namelist()}
    content_types = ""
    if "[content_types].xml" in names:
        info = archive.getinfo(
            next(n for n in archive.namelist() if n.lower() == "[content_types].xml")
        )
        content_types = _member_bytes(archive, info, limits).decode("utf-8", "replace")
    if any(name.endswith("vbaproject.bin") for name in names) or "macroEnabled" in content_types:
        raise SubmissionRejected(
            "macros",
            "the workbook contains macros (VBA); save it as a plain Excel workbook (.xlsx) "
            "without macros",
        )
    if "xl/workbook.xml" not in names:
        raise SubmissionRejected(
            "unknown_format", "an Office document other than an Excel workbook (Word?)"
        )
    # Every worksheet part is decompressed and parsed first: a damaged part is named, and
    # merged cells and formulas (which the read-only mode does not report) are found.
    parts = {
        info.filename: _sheet_cells(archive, info, limits)
        for info in archive.infolist()
        if re.fullmatch(r"xl/worksheets/[^/]+\.xml", info.filename)
    }
    try:
        workbook = openpyxl.load_workbook(
            io.BytesIO(data), read_only=True, data_only=True, keep_links=False
        )
    except Exception as exc:  # openpyxl raises many kinds on damaged files
        raise SubmissionRejected("corrupt", f"a damaged Excel workbook ({exc})") from exc
    try:
        if len(workbook.sheetnames) > limits.max_sheets:
            raise SubmissionRejected(
                "too_many_sheets",
                f"the workbook has {len(workbook.sheetnames)} sheets (at most {limits.max_sheets})",
            )
        for sheet_name in workbook.sheetnames:
            worksheet = workbook[sheet_name]
            hidden = getattr(worksheet, "sheet_state", "visible") != "visible"
            if hidden and sheet_name != TEMPLATE_LISTS_SHEET:
                raw.notes.append(f"sheet {sheet_name!r} is hidden; it was read all the same")
            if hasattr(worksheet, "reset_dimensions"):
                worksheet.reset_dimensions()
            try:
                rows = (
                    (number, [_shown_value(cell) for cell in cells])
                    for number, cells in enumerate(worksheet.iter_rows(), 1)
                )
                sheet = _collect(sheet_name, rows, limits)
            except SubmissionRejected:
                raise
            except Exception as exc:
                raise SubmissionRejected(
                    "corrupt", f"sheet {sheet_name!r} cannot be read ({exc})"
                ) from exc
            if sheet is not None:
                part = getattr(worksheet, "_worksheet_path", None)
                if part in parts:
                    merges, sheet.formulas, unlocated = parts[part]
                    if unlocated:
                        raw.notes.append(
                            f"sheet {sheet_name!r} holds {unlocated} formula cell"
                            f"{'s' if unlocated > 1 else ''} without a cell reference: their "
                            "last calculated values were read (an uncalculated one reads as empty)"
                        )
                    sheet.merged_header = [
                        ref
                        for ref in merges
                        if _rows_of(ref)[0] <= sheet.header_row <= _rows_of(ref)[1]
                    ]
                raw.sheets[sheet_name] = sheet
    finally:
        workbook.close()


def _is_percent(number_format: str | None) -> bool:
    """Whether an Excel number format shows a number as a percentage (``0%``, ``0.0%``):
    a ``%`` outside quoted text and not escaped."""
    if not number_format:
        return False
    shown = re.sub(r'"[^"]*"|\\.', "", number_format)
    return "%" in shown


def _shown_value(cell: Any) -> Any:
    """A cell's value as the submitter sees it: a number in a percent-formatted cell
    (typed ``45%``, stored 0.45) is the text ``45%``, read like a typed ``"45%"``."""
    value = getattr(cell, "value", None)
    if (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and _is_percent(getattr(cell, "number_format", None))
    ):
        if not math.isfinite(value):
            return value  # left for the checker to refuse
        text = format(Decimal(repr(value)) * 100, "f")
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return f"{text}%"
    return value


def _rows_of(ref: str) -> tuple[int, int]:
    """First and last row of a cell range such as ``D1:E1``."""
    _, first, _, last = range_boundaries(ref)
    return int(first or 0), int(last or first or 0)


def _sheet_cells(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: ReadLimits
) -> tuple[list[str], list[str], int]:
    """The merged ranges and the formula cells of one worksheet part (which openpyxl's
    read-only mode does not report), read from its XML, and how many formula cells have
    no (valid) cell reference."""
    merges: list[str] = []
    formulas: list[str] = []
    data = _member_bytes(archive, info, limits, what="the workbook part")
    events = etree.iterparse(
        io.BytesIO(data),
        events=("end",),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
    )
    try:
        for _, element in events:
            tag = etree.QName(element).localname
            if tag == "mergeCell" and element.get("ref"):
                merges.append(str(element.get("ref")))
            elif tag == "c":
                if any(
                    isinstance(child.tag, str) and etree.QName(child).localname == "f"
                    for child in element
                ):
                    formulas.append(str(element.get("r") or ""))
                element.clear()
    except etree.XMLSyntaxError as exc:
        raise SubmissionRejected(
            "corrupt", f"the workbook part {info.filename!r} cannot be read ({exc})"
        ) from exc
    located = [ref for ref in formulas if _CELL.fullmatch(ref)]
    return (
        [ref for ref in merges if _CELL_RANGE.fullmatch(ref)],
        located,
        len(formulas) - len(located),
    )


def _read_csv_zip(archive: zipfile.ZipFile, raw: RawSubmission, limits: ReadLimits) -> None:
    for info in sorted(archive.infolist(), key=lambda i: i.filename):
        if info.filename.endswith("/"):  # a folder (ZipInfo.is_dir fails on an empty name)
            continue
        parts = PurePosixPath(info.filename.replace("\\", "/")).parts
        if not parts:  # "", "." and the like name no file
            raw.notes.append(f"{info.filename!r} in the archive is not a file name; skipped")
            continue
        base = parts[-1]
        if parts[0] == "__MACOSX" or base.startswith((".", "~$")) or base == TEMPLATE_DESCRIPTOR:
            continue
        if not base.lower().endswith((".csv", ".txt")):
            raw.notes.append(f"{info.filename!r} in the archive is not a CSV file; skipped")
            continue
        _add_csv(raw, base, _member_bytes(archive, info, limits), limits)


def _read_folder(path: Path, name: str, limits: ReadLimits) -> RawSubmission:
    digest = hashlib.sha256()
    files = sorted(
        p
        for p in path.iterdir()
        if not p.name.startswith((".", "~$")) and p.name != TEMPLATE_DESCRIPTOR
    )
    raw = RawSubmission(name=name, format="csv_folder", sha256="", size=0)
    for file in files:
        if file.is_symlink() or not file.is_file():
            raw.notes.append(f"{file.name!r} is not a regular file; skipped")
            continue
        if not file.name.lower().endswith((".csv", ".txt")):
            raw.notes.append(f"{file.name!r} is not a CSV file; skipped")
            continue
        size = file.stat().st_size
        raw.size += size
        if raw.size > limits.max_file_bytes:
            raise SubmissionRejected(
                "too_large", f"the CSV files total more than {limits.max_file_bytes / 1e6:.0f} MB"
            )
        data = file.read_bytes()
        digest.update(file.name.encode("utf-8") + b"\0" + hashlib.sha256(data).digest())
        _add_csv(raw, file.name, data, limits)
    raw.sha256 = digest.hexdigest()
    if not raw.sheets:
        raise SubmissionRejected("empty", "the folder holds no CSV files with data")
    return raw


_SAVE_AS_UTF8 = "save the file as UTF-8 (CSV UTF-8 in Excel)"


def _decode(data: bytes, file_name: str) -> tuple[str, str]:
    """The text of a CSV file: UTF-8 (with or without BOM), UTF-16 with a BOM, or else
    Windows-1252, the encoding of Excel's plain "CSV" on Western systems.

    Nothing is replaced or guessed line by line: a file whose lines mix UTF-8 with
    another encoding, or holding bytes Windows-1252 does not define, is refused."""
    for encoding in ("utf-8-sig", "utf-16"):
        if encoding == "utf-16" and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
            continue
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    utf8_line = bad_line = None
    for number, line in enumerate(data.split(b"\n"), 1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            bad_line = bad_line or number
        else:
            if utf8_line is None and not line.isascii():
                utf8_line = number
        if utf8_line and bad_line:
            raise SubmissionRejected(
                "mixed_encoding",
                f"{file_name!r} mixes encodings: line {utf8_line} is UTF-8 but line {bad_line} "
                f"is not; {_SAVE_AS_UTF8}",
            )
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError as exc:
        at = data.count(b"\n", 0, exc.start) + 1
        raise SubmissionRejected(
            "bad_encoding",
            f"{file_name!r} line {at} holds bytes that are neither UTF-8 nor Windows-1252 "
            f"(0x{data[exc.start]:02x}); {_SAVE_AS_UTF8}",
        ) from exc


def _add_csv(raw: RawSubmission, file_name: str, data: bytes, limits: ReadLimits) -> None:
    sheet_name = file_name.rsplit(".", 1)[0]
    if sheet_name in raw.sheets:
        raise SubmissionRejected("duplicate_sheet", f"two CSV files are named {file_name!r}")
    if len(raw.sheets) >= limits.max_sheets:
        raise SubmissionRejected("too_many_sheets", f"more than {limits.max_sheets} CSV files")
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SubmissionRejected("unknown_format", f"{file_name!r} is a binary file, not CSV")
    text, encoding = _decode(data, file_name)
    if encoding == "cp1252":
        raw.notes.append(f"{file_name!r} is not UTF-8; read as Windows-1252 (cp1252)")
    sample = text[:8192]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)

    def numbered() -> Any:
        line = 1
        try:
            for values in reader:
                yield line, values
                line = reader.line_num + 1
        except csv.Error as exc:
            raise SubmissionRejected(
                "corrupt", f"{file_name!r} is not valid CSV near line {line} ({exc})"
            ) from exc

    sheet = _collect(sheet_name, numbered(), limits)
    if sheet is not None:
        raw.sheets[sheet_name] = sheet


# --- JSON -----------------------------------------------------------------------------


def _read_json(data: bytes, raw: RawSubmission, limits: ReadLimits) -> None:
    try:
        document = json.loads(data.decode("utf-8-sig"))
    # ValueError: besides JSONDecodeError and UnicodeDecodeError, an integer of more than
    # sys.get_int_max_str_digits() digits
    except (ValueError, RecursionError) as exc:
        raise SubmissionRejected("corrupt", f"not valid JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise SubmissionRejected(
            "bad_json",
            'the JSON must be an object: {"metadata": {...}, "results": [{...}, ...]}, '
            "one array of objects per table of the template",
        )
    for sheet_name, records in document.items():
        if isinstance(records, dict):
            records = [records]
        if not isinstance(records, list):
            raise SubmissionRejected(
                "bad_json", f"{sheet_name!r} must be an array of objects ([{{...}}, ...])"
            )
        if len(records) + 1 > limits.max_rows:
            raise SubmissionRejected(
                "too_many_rows",
                f"the array {sheet_name!r} has {len(records)} objects "
                f"(at most {limits.max_rows - 1})",
            )
        header: list[str] = []
        for record in records:
            if not isinstance(record, dict):
                raise SubmissionRejected(
                    "bad_json", f"the array {sheet_name!r} must hold objects ({{field: value}})"
                )
            for key in record:
                if key not in header:
                    header.append(str(key))
        if len(header) > limits.max_columns:
            raise SubmissionRejected(
                "too_many_columns",
                f"the objects of {sheet_name!r} have {len(header)} fields "
                f"(at most {limits.max_columns})",
            )
        sheet = RawSheet(name=str(sheet_name), header=header, header_row=0)
        for number, record in enumerate(records, start=1):
            sheet.rows.append([record.get(key) for key in header])
            sheet.row_numbers.append(number)
        if len(raw.sheets) >= limits.max_sheets:
            raise SubmissionRejected(
                "too_many_sheets", f"more than {limits.max_sheets} arrays (tables)"
            )
        raw.sheets[str(sheet_name)] = sheet


# --- shared ---------------------------------------------------------------------------


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _collect(sheet_name: str, rows: Any, limits: ReadLimits) -> RawSheet | None:
    """The header (first non-blank row) and the rows below it, capped; None if blank."""
    sheet: RawSheet | None = None
    pending_blank: list[int] = []
    count = 0
    for number, values in rows:
        while values and _is_blank(values[-1]):
            values.pop()
        if not values or all(_is_blank(v) for v in values):
            if sheet is not None:
                pending_blank.append(number)
            continue
        count += 1
        if count > limits.max_rows:
            raise SubmissionRejected(
                "too_many_rows",
                f"sheet {sheet_name!r} has more than {limits.max_rows:,} rows "
                f"(row {number} and beyond); split the submission or remove empty formatting",
            )
        if len(values) > limits.max_columns:
            raise SubmissionRejected(
                "too_many_columns",
                f"sheet {sheet_name!r} has {len(values)} columns on row {number} "
                f"(at most {limits.max_columns})",
            )
        if sheet is None:
            header = ["" if v is None else str(v) for v in values]
            sheet = RawSheet(name=sheet_name, header=header, header_row=number)
            continue
        for blank in pending_blank:
            sheet.rows.append([])
            sheet.row_numbers.append(blank)
        pending_blank.clear()
        sheet.rows.append(values)
        sheet.row_numbers.append(number)
    return sheet
