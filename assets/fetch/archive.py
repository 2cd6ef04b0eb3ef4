"""Reading the members of a downloaded ZIP archive one at a time, safely.

Used by the ``bulk`` IATI source (:class:`assets.fetch.sources.BulkSource`). Nothing is
ever extracted to a path built from a member's name: :meth:`ZipReader.extract` writes
one member to a file the caller names (a staging file of the raw store). The archive's
own words are only used to refuse early, never to accept:

- the central directory is bounded before it is read (entries and bytes, from the
  end-of-archive record), so a directory of millions of entries is refused unread;
- every member's decompressed bytes are counted while they are read, in 64 KiB chunks,
  and reading stops at the per-member limit, at a compression ratio over
  :attr:`ArchiveLimits.max_ratio` (past :attr:`ArchiveLimits.ratio_min_bytes`), at more
  bytes than the header declares, or at the archive's total limit;
- the CRC-32 and the size the directory records are checked at the end of each member;
- members whose data overlaps another's (the trick of non-recursive ZIP bombs), whose
  local header disagrees with the directory, encrypted members, symbolic links and other
  non-regular files, absolute paths, ``..``, control characters in names, nested
  archives and compression methods other than stored and deflate are refused unread.

Member-level problems raise :class:`MemberRefused` (one member; the rest of the archive
can still be read); archive-level ones raise :class:`ArchiveError` (nothing can be read).
"""

from __future__ import annotations

import bisect
import hashlib
import re
import stat
import struct
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

#: How a ZIP archive starts (a local file header; an empty archive's end record).
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
#: Member names ending like this are archives themselves: never opened.
NESTED_ARCHIVE_SUFFIXES = (
    ".zip",
    ".gz",
    ".tgz",
    ".tar",
    ".bz2",
    ".xz",
    ".7z",
    ".rar",
    ".zst",
    ".jar",
)
_CHUNK_BYTES = 64 * 1024
_MIB = 1024 * 1024
#: Central-directory bytes allowed per entry the archive may hold (46 fixed bytes, the
#: name, extra fields and comment: real archives use about 100).
_DIRECTORY_BYTES_PER_MEMBER = 1024
_END_RECORD = struct.Struct("<4s4H2LH")  # signature, disks, entries, size, offset, comment
_ZIP64_LOCATOR = struct.Struct("<4sLQL")  # signature, disk, offset of the zip64 end record
_ZIP64_END_RECORD = struct.Struct("<4sQ2H2L4Q")  # ..., entries on disk, entries, size, offset
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # ..., flags, method, ..., name and extra length
_ABSOLUTE_NAME = re.compile(r"^(?:[A-Za-z]:|/)")
_SUPPORTED_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}
#: What reading a damaged archive raises besides BadZipFile (decompressor errors, short
#: reads, unsupported features).
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    struct.error,
    OSError,
    ValueError,
    EOFError,
    RuntimeError,
)


class ArchiveError(Exception):
    """The archive as a whole cannot be read: not a ZIP, damaged or truncated, too big a
    directory. ``str`` says what is wrong in plain words."""


class MemberRefused(Exception):
    """One member is not read (or reading it stopped); ``str`` says why in plain words."""


def mb(size: float) -> str:
    """``size`` bytes in MiB, as messages about size limits write it."""
    return f"{size / _MIB:,.1f} MB"


def limit_mb(size: float) -> str:
    """A limit in MiB, written like :func:`assets.settings.over_size_limit` writes it."""
    return f"{size / _MIB:,.0f} MB" if size >= _MIB else f"{size / _MIB:,.2f} MB"


def looks_like_zip(head: bytes) -> None:
    """Raise ValueError saying what the body is when its first bytes are not a ZIP
    archive (an HTML error page served with 200, say); pass when they are."""
    if head.startswith(ZIP_MAGIC):
        return
    body = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if not body:
        raise ValueError("the response is empty, not a ZIP archive")
    lowered = body[:512].lower()
    if lowered.startswith((b"<!doctype html", b"<html")) or b"<html" in lowered[:256]:
        raise ValueError("the server returned an HTML page, not a ZIP archive")
    if body.startswith(b"<"):
        raise ValueError("the server returned XML, not a ZIP archive")
    if body.startswith((b"{", b"[")):
        raise ValueError("the server returned JSON, not a ZIP archive")
    if body.startswith(b"\x1f\x8b"):
        raise ValueError("the server returned a gzip-compressed file, not a ZIP archive")
    preview = body[:16].decode("utf-8", errors="replace").splitlines()[0]
    raise ValueError(f"the response is not a ZIP archive: it starts with {preview!r}")


@dataclass(frozen=True)
class ArchiveLimits:
    """What one archive may hold; the names say which setting to change in messages."""

    #: Decompressed bytes of one member (``fetch.max_file_mb``).
    max_member_bytes: int
    #: Decompressed bytes of all members read, together.
    max_total_bytes: int
    #: Entries (files and folders) the archive may hold.
    max_members: int = 100_000
    #: Decompressed : compressed size of one member, checked past ``ratio_min_bytes``
    #: (small files compress oddly well without being dangerous).
    max_ratio: float = 200.0
    ratio_min_bytes: int = _MIB
    member_limit_name: str = "fetch.max_file_mb"
    total_limit_name: str = "max_total_mb"
    members_limit_name: str = "max_members"


def is_member_file(info: zipfile.ZipInfo) -> bool:
    """Whether the entry names a file rather than a folder."""
    return not info.filename.endswith("/")


def name_problem(info: zipfile.ZipInfo) -> str | None:
    """Why a member is refused from its directory entry alone (name, type, encryption,
    method), or None."""
    name = info.filename
    if not name or any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "its name is empty or holds control characters"
    normal = name.replace("\\", "/")
    if _ABSOLUTE_NAME.match(normal):
        return "its name is an absolute path"
    if ".." in normal.split("/"):
        return "its name climbs out of the archive (..)"
    file_type = stat.S_IFMT(info.external_attr >> 16)  # Unix type bits; 0 when unset
    if file_type == stat.S_IFLNK:
        return "it is a symbolic link, not a file"
    if file_type and file_type != stat.S_IFREG:
        return "it is not a regular file (a device, pipe or folder)"
    if info.flag_bits & 0x1:
        return "it is encrypted (password-protected)"
    if normal.lower().endswith(NESTED_ARCHIVE_SUFFIXES):
        return "it is an archive inside the archive; nested archives are not opened"
    if info.compress_type not in _SUPPORTED_METHODS:
        return (
            f"it is compressed with ZIP method {info.compress_type}; only stored and "
            "deflate members are read"
        )
    return None


def _directory_bounds(stream: BinaryIO, size: int) -> tuple[int, int]:
    """(entries, bytes) of the central directory, from the end-of-archive record (and the
    ZIP64 one), located as :mod:`zipfile` locates it."""
    if size < _END_RECORD.size:
        raise ArchiveError(f"it is {size} bytes long: too short to be a ZIP archive")
    tail_size = min(size, _END_RECORD.size + 0xFFFF)
    stream.seek(size - tail_size)
    tail = stream.read(tail_size)
    position = tail.rfind(b"PK\x05\x06")
    if position < 0 or len(tail) - position < _END_RECORD.size:
        raise ArchiveError(
            "it has no end-of-archive record: it is truncated, damaged or not a ZIP archive"
        )
    fields = _END_RECORD.unpack_from(tail, position)
    entries, directory_bytes = fields[4], fields[5]
    if entries == 0xFFFF or directory_bytes == 0xFFFFFFFF or fields[6] == 0xFFFFFFFF:
        at = size - tail_size + position - _ZIP64_LOCATOR.size
        if at < 0:
            raise ArchiveError("its ZIP64 end-of-archive locator is missing: it is damaged")
        stream.seek(at)
        locator = stream.read(_ZIP64_LOCATOR.size)
        if len(locator) != _ZIP64_LOCATOR.size or locator[:4] != b"PK\x06\x07":
            raise ArchiveError("its ZIP64 end-of-archive locator is missing: it is damaged")
        stream.seek(_ZIP64_LOCATOR.unpack(locator)[2])
        record = stream.read(_ZIP64_END_RECORD.size)
        if len(record) != _ZIP64_END_RECORD.size or record[:4] != b"PK\x06\x06":
            raise ArchiveError("its ZIP64 end-of-archive record is missing: it is damaged")
        values = _ZIP64_END_RECORD.unpack(record)
        entries, directory_bytes = values[7], values[8]
    return entries, directory_bytes


class ZipReader:
    """A ZIP archive on local disk whose members are read one at a time with limits.

    Raises :class:`ArchiveError` when the archive cannot be opened or is over the limits
    as a whole. Close it (or use it as a context manager) when done.
    """

    def __init__(self, path: Path, limits: ArchiveLimits) -> None:
        self.path = path
        self.limits = limits
        #: Decompressed bytes read from all members so far (refused ones included).
        self.total_read = 0
        self.size = path.stat().st_size
        self._raw = path.open("rb")
        try:
            self._zip = self._open()
        except BaseException:
            self._raw.close()
            raise
        self.members = [i for i in self._zip.infolist() if is_member_file(i)]
        #: Where each entry's local header starts, and the directory: a member's data
        #: must end before the next of these.
        self._bounds = sorted(
            {*(i.header_offset for i in self._zip.infolist()), self._zip.start_dir}
        )
        self._problems = self._directory_problems()

    def _open(self) -> zipfile.ZipFile:
        limits = self.limits
        try:
            entries, directory_bytes = _directory_bounds(self._raw, self.size)
        except OSError as exc:
            raise ArchiveError(f"it cannot be read ({exc})") from exc
        if entries > limits.max_members:
            raise ArchiveError(
                f"it holds {entries:,} entries, over the limit of {limits.max_members:,} "
                f"({limits.members_limit_name})"
            )
        if directory_bytes > max(limits.max_members, 1) * _DIRECTORY_BYTES_PER_MEMBER:
            raise ArchiveError(
                f"its directory is {mb(directory_bytes)}, too large for "
                f"{limits.max_members:,} entries ({limits.members_limit_name}): "
                "a damaged or hostile archive"
            )
        try:
            archive = zipfile.ZipFile(self.path)
        except _ZIP_ERRORS as exc:
            raise ArchiveError(f"it is not a readable ZIP archive ({exc})") from exc
        if len(archive.infolist()) > limits.max_members:  # the directory said fewer
            archive.close()
            raise ArchiveError(
                f"it holds more than {limits.max_members:,} entries ({limits.members_limit_name})"
            )
        return archive

    def _directory_problems(self) -> dict[int, str]:
        """Problems only the directory as a whole shows, by position in ``members``."""
        problems: dict[int, str] = {}
        offsets = Counter(i.header_offset for i in self._zip.infolist())
        names = Counter(i.filename for i in self.members)
        for index, info in enumerate(self.members):
            if names[info.filename] > 1:
                problems[index] = (
                    f"the archive holds {names[info.filename]} members of this name; none is read"
                )
            elif offsets[info.header_offset] > 1:
                problems[index] = (
                    "its data is shared with another member (overlapping members: a "
                    "ZIP-bomb trick); not read"
                )
        return problems

    def close(self) -> None:
        self._zip.close()
        self._raw.close()

    def __enter__(self) -> ZipReader:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- checks ---------------------------------------------------------------------------

    def problem(self, index: int) -> str | None:
        """Why member ``index`` is refused before a byte of it is read, or None."""
        info = self.members[index]
        reason = name_problem(info) or self._problems.get(index)
        if reason:
            return reason
        limits = self.limits
        if info.file_size > limits.max_member_bytes:
            return (
                f"its header declares {mb(info.file_size)} unpacked, over the limit of "
                f"{limit_mb(limits.max_member_bytes)} ({limits.member_limit_name}); not read"
            )
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > limits.ratio_min_bytes and ratio > limits.max_ratio:
            return (
                f"its header declares a compression ratio of {ratio:,.0f}:1 "
                f"({mb(info.file_size)} from {mb(info.compress_size)}), over "
                f"{limits.max_ratio:,.0f}:1: a likely ZIP bomb; not read"
            )
        return None

    def _total_problem(self) -> str:
        return (
            f"the archive's members unpack to more than "
            f"{limit_mb(self.limits.max_total_bytes)} in total "
            f"({self.limits.total_limit_name}); the rest of the archive is not read"
        )

    def _check(self, info: zipfile.ZipInfo, size: int) -> None:
        """Refuse the member being read once ``size`` decompressed bytes say so."""
        limits = self.limits
        if size > limits.max_member_bytes:
            raise MemberRefused(
                f"it unpacks to more than the limit of {limit_mb(limits.max_member_bytes)} "
                f"({limits.member_limit_name}); reading stopped at {mb(size)} (its header "
                f"declares {info.file_size:,} bytes)"
            )
        if size > limits.ratio_min_bytes and size > limits.max_ratio * max(info.compress_size, 1):
            raise MemberRefused(
                f"it unpacks to more than {limits.max_ratio:,.0f} times its compressed size "
                f"({mb(info.compress_size)} compressed, {mb(size)} read so far): a likely "
                "ZIP bomb; reading stopped"
            )
        if size > info.file_size:
            raise MemberRefused(
                f"it holds more than the {info.file_size:,} bytes its header declares "
                "(a damaged or hostile archive); reading stopped"
            )
        if self.total_read > limits.max_total_bytes:
            raise MemberRefused(self._total_problem())

    # -- reading --------------------------------------------------------------------------

    def _data_start(self, info: zipfile.ZipInfo) -> int:
        """Where the member's compressed bytes start, after checking its local header."""
        self._raw.seek(info.header_offset)
        header = self._raw.read(_LOCAL_HEADER.size)
        if len(header) != _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
            raise MemberRefused("its local header is missing (a damaged archive)")
        fields = _LOCAL_HEADER.unpack(header)
        flags, method, name_length, extra_length = fields[2], fields[3], fields[9], fields[10]
        raw_name = self._raw.read(name_length)
        encoding = "utf-8" if flags & 0x800 else "cp437"
        if raw_name.decode(encoding, errors="replace") != info.orig_filename:
            raise MemberRefused(
                "its local header names another file than the directory does "
                "(a damaged or hostile archive)"
            )
        if flags & 0x1:
            raise MemberRefused("it is encrypted (password-protected)")
        if method != info.compress_type:
            raise MemberRefused(
                "its local header and the directory disagree on its compression "
                "(a damaged or hostile archive)"
            )
        start = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length
        following = bisect.bisect_right(self._bounds, info.header_offset)
        end = self._bounds[following] if following < len(self._bounds) else self.size
        if start + info.compress_size > end:
            raise MemberRefused(
                "its data runs into the next member or the directory (overlapping members, "
                "a ZIP-bomb trick, or a damaged archive); not read"
            )
        return start

    def _compressed(self, info: zipfile.ZipInfo, start: int) -> Iterator[bytes]:
        self._raw.seek(start)
        remaining = info.compress_size
        while remaining > 0:
            chunk = self._raw.read(min(_CHUNK_BYTES, remaining))
            if not chunk:
                raise MemberRefused("its data is cut short (a truncated archive)")
            remaining -= len(chunk)
            yield chunk

    def _unpacked(self, info: zipfile.ZipInfo, start: int) -> Iterator[bytes]:
        """The member's bytes in chunks of at most 64 KiB, however well they compress."""
        if info.compress_type == zipfile.ZIP_STORED:
            yield from self._compressed(info, start)
            return
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        for chunk in self._compressed(info, start):
            data = chunk
            while True:
                piece = inflater.decompress(data, _CHUNK_BYTES)
                if piece:
                    yield piece
                data = inflater.unconsumed_tail
                if inflater.eof or (not data and len(piece) < _CHUNK_BYTES):
                    break
            if inflater.eof:
                return
        if not inflater.eof:
            raise MemberRefused("its compressed data ends early (a damaged or truncated archive)")

    def extract(
        self,
        index: int,
        destination: Path,
        expect: Callable[[bytes], None] | None = None,
        head_bytes: int = 4096,
    ) -> tuple[str, int]:
        """Write member ``index``'s bytes to ``destination``; their (sha256, size).

        ``expect`` sees the first ``head_bytes`` and raises ValueError when they are not
        what is wanted. Raises :class:`MemberRefused` (``destination`` may then hold part
        of the member: the caller removes it).
        """
        info = self.members[index]
        reason = self.problem(index)
        if reason:
            raise MemberRefused(reason)
        if self.total_read >= self.limits.max_total_bytes:
            raise MemberRefused(self._total_problem())
        digest = hashlib.sha256()
        crc = 0
        size = 0
        head = b""
        checked = expect is None
        try:
            start = self._data_start(info)
            with destination.open("wb") as out:
                for piece in self._unpacked(info, start):
                    size += len(piece)
                    self.total_read += len(piece)
                    self._check(info, size)
                    if not checked:
                        head += piece[: head_bytes - len(head)]
                        if len(head) >= head_bytes:
                            _expect(expect, head)
                            checked = True
                    crc = zlib.crc32(piece, crc)
                    digest.update(piece)
                    out.write(piece)
        except zlib.error as exc:
            raise MemberRefused(f"its compressed data is damaged ({exc})") from exc
        if size != info.file_size:
            raise MemberRefused(
                f"it holds {size:,} bytes but its header declares {info.file_size:,} "
                "(a damaged or hostile archive)"
            )
        if crc != info.CRC:
            raise MemberRefused(
                "its CRC-32 does not match the one the archive records: the archive is damaged"
            )
        if not checked:
            _expect(expect, head)
        return digest.hexdigest(), size


def _expect(expect: Callable[[bytes], None] | None, head: bytes) -> None:
    if expect is None:
        return
    try:
        expect(head)
    except ValueError as exc:
        raise MemberRefused(str(exc)) from None
