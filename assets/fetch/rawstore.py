"""Content-addressed store of raw downloads, with the last known good copy of each dataset.

Objects live at ``raw/sha256/<ab>/<sha256><suffix>`` in a :class:`assets.storage.targets.Target`
(a local folder, or S3), so the same bytes are stored once however often they are fetched.
``raw/state.json`` keeps one record per dataset key: the sha256 of the last good copy, the
validators for conditional requests (ETag, Last-Modified), when it was fetched and checked,
and the outcome of the last ten attempts. A failed attempt never replaces the last good
sha256. When the target is remote, ``cache_dir`` holds local copies for parsing.

``state.json`` is rewritten on every :meth:`RawStore.record` (read, change one record,
write). Writers in several threads or processes on one machine are serialised with a lock
file for a local target; on S3 the last writer wins, so record from one process at a time.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assets.fetch.http import strip_secrets
from assets.hashing import file_sha256
from assets.storage.s3 import S3Target
from assets.storage.targets import LocalTarget, Target, check_key

if TYPE_CHECKING:
    from assets.fetch.sources import FetchResult

#: Attempts kept in each record's history.
HISTORY_LENGTH = 10
STATE_FORMAT = 1
STATUSES = ("updated", "unchanged", "failed", "missing", "removed")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SUFFIX = re.compile(r"^\.[a-z0-9]{1,10}$")
_CHUNK_BYTES = 1 << 20


class RawStoreError(RuntimeError):
    """The raw store cannot be read or written, or holds something other than expected."""


def utc_now() -> str:
    """The current time as ISO 8601 UTC with seconds (``2026-11-28T02:00:05Z``)."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass
class StateRecord:
    """The state of one dataset: its last good copy and how the latest attempts went."""

    key: str
    source: str
    kind: str
    uri: str
    sha256: str | None = None  # last good copy; kept when an attempt fails
    etag: str | None = None  # validators of the last good copy
    last_modified: str | None = None
    fetched_at: str | None = None  # when the last good copy's bytes were last downloaded
    changed_at: str | None = None  # when sha256 last changed
    checked_at: str | None = None  # last attempt, whatever its outcome
    status: str = "failed"  # of the last attempt
    error: str | None = None  # of the last attempt when it failed
    history: list[dict[str, Any]] = field(default_factory=list)
    bytes: int | None = None
    #: A local file's size, times and inode when its bytes were last read (None for other
    #: sources, and while it was changing): the same again means the same bytes.
    file_stat: str | None = None
    #: When the dataset was first found missing from its source's listing, and on how many
    #: runs since (None and 0 while it is listed); see :func:`assets.fetch.sources.fetch_all`.
    missing_since: str | None = None
    missing_nights: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StateRecord:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def _check_sha256(sha256: str) -> str:
    if not isinstance(sha256, str) or not _SHA256.match(sha256):
        raise RawStoreError(f"not a sha256 hex digest: {sha256!r}")
    return sha256


def _check_suffix(suffix: str) -> str:
    suffix = suffix.lower()
    if not _SUFFIX.match(suffix):
        raise RawStoreError(f"unusable file suffix {suffix!r}")
    return suffix


def _copy_hashing(source: Path, destination: Path) -> str:
    """Copy ``source`` to ``destination`` atomically; the sha256 of the bytes written."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(
        prefix=f".{destination.name}.", suffix=".part", dir=destination.parent
    )
    temporary = Path(name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(handle, "wb") as out, source.open("rb") as stream:
            for chunk in iter(lambda: stream.read(_CHUNK_BYTES), b""):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, destination)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return digest.hexdigest()


class RawStore:
    """Raw downloads by sha256 in ``target`` under ``prefix``, plus the dataset state."""

    def __init__(self, target: Target, cache_dir: Path, prefix: str = "raw") -> None:
        self.target = target
        self.cache_dir = cache_dir
        self.prefix = check_key(prefix.strip("/"))
        self._lock = threading.RLock()
        self._batch_base: dict[str, StateRecord] | None = None
        self._batch_changes: dict[str, StateRecord] = {}
        self._flush_every = 100
        self._flush_seconds = 30.0
        self._flushed_at = 0.0

    @classmethod
    def local(cls, data_dir: Path) -> RawStore:
        """The default store: objects and state under ``data_dir/raw`` (no separate cache)."""
        return cls(LocalTarget(data_dir), data_dir / "raw-cache")

    @property
    def location(self) -> str:
        return f"{self.target.location.rstrip('/')}/{self.prefix}"

    @property
    def state_key(self) -> str:
        return f"{self.prefix}/state.json"

    def object_key(self, sha256: str, suffix: str = ".xml") -> str:
        """Where the object with this digest is, relative to the target."""
        sha256 = _check_sha256(sha256)
        return f"{self.prefix}/sha256/{sha256[:2]}/{sha256}{_check_suffix(suffix)}"

    def staging_path(self, key: str, suffix: str = ".xml") -> Path:
        """A local working file for a download of dataset ``key`` before it is stored."""
        folder = self.cache_dir / "incoming"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{check_key(key)}{_check_suffix(suffix)}"

    # -- objects --------------------------------------------------------------------------

    def has(self, sha256: str, suffix: str = ".xml") -> bool:
        """Whether the object is stored in the target."""
        key = self.object_key(sha256, suffix)
        if isinstance(self.target, LocalTarget):
            return (self.target.root / key).is_file()
        if isinstance(self.target, S3Target):
            from botocore.exceptions import ClientError

            try:
                self.target.client.head_object(
                    Bucket=self.target.bucket, Key=self.target.prefix + key
                )
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                if code in {"404", "NoSuchKey", "NotFound"}:
                    return False
                raise RawStoreError(f"{self.location}: cannot check {key}: {code}") from exc
            return True
        return self.target.read_bytes(key) is not None

    def put_file(self, path: Path, *, expected_sha256: str | None = None) -> str:
        """Store the file (once: an object already stored is not rewritten); its sha256.

        The suffix comes from the file name (``.xml`` when it has none). With
        ``expected_sha256``, a file whose bytes hash differently is refused.
        """
        suffix = _check_suffix(path.suffix or ".xml")
        sha256 = file_sha256(path)
        if expected_sha256 is not None and sha256 != expected_sha256:
            raise RawStoreError(
                f"{path}: sha256 is {sha256}, expected {expected_sha256}: the file changed"
            )
        key = self.object_key(sha256, suffix)
        if self.has(sha256, suffix):
            return sha256
        if isinstance(self.target, LocalTarget):
            written = _copy_hashing(path, self.target.root / key)
            if written != sha256:
                (self.target.root / key).unlink(missing_ok=True)
                raise RawStoreError(f"{path}: the file changed while it was being stored")
            return sha256
        if isinstance(self.target, S3Target):
            self._upload_s3(path, key, sha256)
        else:
            self.target.write_bytes(key, path.read_bytes(), "application/octet-stream")
        cached = self._cache_path(sha256, suffix)
        if not cached.is_file():
            _copy_hashing(path, cached)
        return sha256

    def _upload_s3(self, path: Path, key: str, sha256: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        assert isinstance(self.target, S3Target)
        checksum = base64.b64encode(bytes.fromhex(sha256)).decode("ascii")
        try:
            with path.open("rb") as body:
                # S3 recomputes the SHA-256 and refuses the object (BadDigest) on a mismatch.
                self.target.client.put_object(
                    Bucket=self.target.bucket,
                    Key=self.target.prefix + key,
                    Body=body,
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=checksum,
                    ContentType="application/octet-stream",
                )
        except (ClientError, BotoCoreError) as exc:
            raise RawStoreError(f"{self.location}: cannot store {key}: {exc}") from exc

    def _cache_path(self, sha256: str, suffix: str) -> Path:
        return self.cache_dir / "sha256" / sha256[:2] / f"{sha256}{suffix}"

    def local_path(self, sha256: str, suffix: str = ".xml") -> Path:
        """A local file holding the object, for parsing: the object itself for a local
        target, else a cached copy (fetched from the target and verified when missing)."""
        key = self.object_key(sha256, suffix)
        if isinstance(self.target, LocalTarget):
            path = self.target.root / key
            if not path.is_file():
                raise RawStoreError(f"{self.location}: no object {key}")
            return path
        cached = self._cache_path(sha256, suffix)
        if cached.is_file():
            return cached
        chunks = self._read_chunks(key)
        if chunks is None:
            raise RawStoreError(f"{self.location}: no object {key}")
        cached.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(
            prefix=f".{cached.name}.", suffix=".part", dir=cached.parent
        )
        temporary = Path(name)
        try:
            digest = hashlib.sha256()
            with os.fdopen(handle, "wb") as out:
                for chunk in chunks:
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != sha256:
                raise RawStoreError(
                    f"{self.location}: object {key} is damaged: its bytes hash to "
                    f"{digest.hexdigest()}"
                )
            os.replace(temporary, cached)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return cached

    def _read_chunks(self, key: str) -> Iterator[bytes] | None:
        if isinstance(self.target, S3Target):
            return self.target.read_stream(key)
        data = self.target.read_bytes(key)
        return None if data is None else iter([data])

    # -- state ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock:
            if not isinstance(self.target, LocalTarget):
                yield
                return
            lock_path = self.target.root / self.prefix / ".state.lock"
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            with lock_path.open("a") as lock:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _read_state(self) -> dict[str, StateRecord]:
        data = self.target.read_bytes(self.state_key)
        if data is None:
            return {}
        try:
            document = json.loads(data)
            datasets = document["datasets"]
            if not isinstance(datasets, dict):
                raise TypeError("'datasets' is not an object")
            return {key: StateRecord.from_dict(value) for key, value in datasets.items()}
        except (ValueError, KeyError, TypeError) as exc:
            raise RawStoreError(
                f"{self.location}/state.json is not a readable fetch state ({exc}); "
                "move it aside to start again (stored objects are kept)"
            ) from exc

    def _write_state(self, records: dict[str, StateRecord]) -> None:
        document = {
            "format": STATE_FORMAT,
            "datasets": {key: records[key].to_dict() for key in sorted(records)},
        }
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        self.target.write_bytes(self.state_key, text.encode("utf-8"), "application/json")

    def records(self) -> dict[str, StateRecord]:
        """Every dataset's record, by key."""
        return dict(self._view())

    def last_good(self, key: str) -> StateRecord | None:
        """The record of dataset ``key`` when it has a good copy, else None."""
        record = self._lookup(key)
        return record if record is not None and record.sha256 else None

    def _lookup(self, key: str) -> StateRecord | None:
        if self._batch_base is None:
            return self._read_state().get(key)
        found = self._batch_changes.get(key)  # not a merged copy of the state per lookup
        return found if found is not None else self._batch_base.get(key)

    def _view(self) -> dict[str, StateRecord]:
        if self._batch_base is None:
            return self._read_state()
        return {**self._batch_base, **self._batch_changes}

    @contextlib.contextmanager
    def batch(self, flush_every: int = 100, flush_seconds: float = 30.0) -> Iterator[RawStore]:
        """Read the state once and write it at the end and, on the way, once ``flush_every``
        records changed and ``flush_seconds`` passed since the last write, instead of once
        per record (for runs over thousands of datasets). Each write merges this batch's
        records into the state as it is then, and rewrites all of it: at ten thousand
        datasets a write takes over a second, so writing every hundred records made a night
        without changes spend minutes on them. A run that stops loses at most the records
        since the last write (their files are stored; they are fetched again)."""
        with self._lock:
            if self._batch_base is not None:  # already batching: join the outer batch
                nested = True
            else:
                nested = False
                self._batch_base, self._batch_changes = self._read_state(), {}
                self._flush_every = max(1, flush_every)
                self._flush_seconds = flush_seconds
                self._flushed_at = time.monotonic()
        if nested:
            yield self
            return
        try:
            yield self
        finally:
            with self._lock:
                try:
                    self._flush()
                finally:
                    self._batch_base, self._batch_changes = None, {}

    def _flush(self) -> None:
        if not self._batch_changes:
            return
        with self._locked():
            records = self._read_state()
            records.update(self._batch_changes)
            self._write_state(records)
        self._batch_base, self._batch_changes = records, {}
        self._flushed_at = time.monotonic()

    def record(self, result: FetchResult) -> StateRecord:
        """Add one attempt to the state; a failure keeps the last good copy and validators."""
        if result.status not in STATUSES:
            raise RawStoreError(f"unknown fetch status {result.status!r}")
        with self._lock:
            if self._batch_base is not None:
                record = _apply(self._lookup(result.ref.key), result, utc_now())
                self._batch_changes[record.key] = record
                if (
                    len(self._batch_changes) >= self._flush_every
                    and time.monotonic() - self._flushed_at >= self._flush_seconds
                ):
                    self._flush()
                return record
            with self._locked():
                records = self._read_state()
                record = _apply(records.get(result.ref.key), result, utc_now())
                records[record.key] = record
                self._write_state(records)
            return record


def _apply(previous: StateRecord | None, result: FetchResult, now: str) -> StateRecord:
    """The record after one more attempt."""
    ref = result.ref
    uri = strip_secrets(ref.uri)
    record = (
        StateRecord.from_dict(previous.to_dict())
        if previous
        else StateRecord(ref.key, ref.source_name, ref.kind, uri)
    )
    record.source, record.kind, record.uri = ref.source_name, ref.kind, uri
    record.checked_at = now
    record.status = result.status
    entry_sha: str | None = None
    if result.listed:
        record.missing_since, record.missing_nights = None, 0
    if result.status in ("missing", "removed"):
        record.missing_since = record.missing_since or now
        record.missing_nights += 1
        record.error = result.error or f"{result.status} (no reason given)"
        entry_sha = record.sha256
    elif result.status == "failed":
        record.error = result.error or "failed (no reason given)"
    else:
        sha256 = result.sha256 or record.sha256
        if not sha256:
            raise RawStoreError(f"{ref.key}: a {result.status} result needs a sha256")
        if sha256 != record.sha256:
            record.changed_at = now
            record.etag, record.last_modified = result.etag, result.last_modified
        else:
            record.etag = result.etag or record.etag
            record.last_modified = result.last_modified or record.last_modified
        record.file_stat = result.file_stat
        record.sha256 = entry_sha = sha256
        record.bytes = result.bytes if result.bytes is not None else record.bytes
        if result.downloaded or record.fetched_at is None:
            record.fetched_at = result.fetched_at or now
        record.error = None
    record.history = [
        *record.history,
        {"at": now, "status": result.status, "sha256": entry_sha, "error": record.error},
    ][-HISTORY_LENGTH:]
    return record
