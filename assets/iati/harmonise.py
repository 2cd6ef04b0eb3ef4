"""IATI activity files -> the harmonised CD results tables: extract, then transform (pure).

Harmonising is two halves: :mod:`assets.iati.extract` reads each file once into
Parquet (the values as published, keyed by the file's sha256 and the extractor's
version) and :mod:`assets.iati.transform` with :mod:`assets.harmonise.combine`
turns every extracted file of the night into the harmonised tables in DuckDB
(narratives by language, shares, US dollars, CD classification, one activity per
identifier). The IATI schema and codelist findings of each file
(:mod:`assets.iati.conformance`) are kept beside its extract, keyed by the schemas
and codelists they were checked against.

This module is the entry point for files on disk: :func:`prepare_paths` extracts
and checks them (``cdcompact iati harmonise``, which then transforms, combines and
writes them as the nightly job does, in DuckDB), :func:`harmonise_paths` and
:func:`harmonise_file` return their tables as frames (tests, benchmarks); the
nightly job runs the same halves as Dagster assets.
Every row carries provenance; every record that is not accepted goes to
``quarantine`` with the rule it broke and where; a broken file is ``rejected`` in
``sources`` and never stops the others.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from assets.harmonise import combine as combining
from assets.harmonise.combine import ALL_TABLES, ALSO_IN_IATI_RULE, IATI_TABLES
from assets.harmonise.schema import ArrowTables, arrow_schema, frame_of_arrow
from assets.iati.codelists import Codelists
from assets.iati.conformance import IatiSchemas, check_schema, findings_arrow
from assets.iati.extract import ExtractError, extract_file, stable_id
from assets.iati.rates import ExchangeRates
from assets.iati.transform import IatiInput, Rejection, TransformOptions, iati_tables
from assets.pool import WorkerDied, map_in_processes
from assets.settings import CdRules, Settings, over_size_limit
from assets.warehouse import set_up

__all__ = [
    "ALL_TABLES",
    "ALSO_IN_IATI_RULE",
    "IATI_TABLES",
    "HarmoniseOptions",
    "HarmonisedFile",
    "combine",
    "discover_files",
    "harmonise_file",
    "harmonise_paths",
    "stable_id",
    "unique_source_names",
]

#: Bumped whenever what :func:`check_schema` finds changes: every file is checked again.
CONFORMANCE_VERSION = 2


@dataclass(frozen=True)
class HarmoniseOptions:
    """What harmonisation needs besides the files: rules and reference data."""

    rules: CdRules
    rates: ExchangeRates | None = None
    codelists: Codelists | None = None
    preferred_languages: tuple[str, ...] = ("en", "fr", "es", "pt")
    rate_fallback_months: int = 12
    #: The official IATI XML Schemas files are checked against (None: not checked).
    schemas: IatiSchemas | None = None
    #: Conformance findings kept per file and check; the rest are counted in one row.
    max_findings: int = 1000
    #: Files larger than this are rejected before any of them is read (None: no limit).
    max_file_bytes: int | None = None
    #: DuckDB settings of the transform's connection (memory_limit, temp_directory...).
    duckdb_config: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        rates: ExchangeRates | None,
        codelists: Codelists | None,
        schemas: IatiSchemas | None,
    ) -> HarmoniseOptions:
        """The configuration's rules and preferences with this reference data."""
        from assets.warehouse import connection_config

        return cls(
            rules=settings.cd_rules,
            rates=rates,
            codelists=codelists,
            preferred_languages=settings.preferred_languages,
            rate_fallback_months=settings.rate_fallback_months,
            schemas=schemas,
            max_findings=settings.quality.max_findings,
            max_file_bytes=settings.fetch.max_bytes,
            duckdb_config=connection_config(settings),
        )

    def transform_options(self) -> TransformOptions:
        return TransformOptions(
            rules=self.rules,
            preferred_languages=self.preferred_languages,
            rate_fallback_months=self.rate_fallback_months,
            rates=None if self.rates is None else self.rates.to_frame(),
            codelists=None if self.codelists is None else self.codelists.to_frame(),
            max_findings=self.max_findings,
        )

    def conformance_key(self) -> str:
        """What a file's XML Schema findings depend on besides its bytes: the schemas, how
        many findings are listed, and the check's own version (codelists are checked in
        the transform, from the coded values the extract keeps)."""
        return schema_check_key(
            self.schemas.fingerprint() if self.schemas else "-", self.max_findings
        )


def schema_check_key(schemas_fingerprint: str, max_findings: int) -> str:
    """The key of a file's XML Schema findings (:func:`conformance_path`)."""
    digest = hashlib.sha256()
    digest.update(f"v{CONFORMANCE_VERSION}\0{max_findings}\0{schemas_fingerprint}".encode())
    return digest.hexdigest()[:32]


@dataclass
class HarmonisedFile:
    """The tables harmonised from one file, as frames that follow schema/ (kept as Arrow
    until a frame is read: :class:`ArrowTables`)."""

    source_file: str
    tables: Mapping[str, pd.DataFrame]

    def rows(self, table: str) -> int:
        tables = self.tables
        return tables.rows(table) if isinstance(tables, ArrowTables) else len(tables[table])

    @property
    def source(self) -> dict[str, Any]:
        return dict(self.tables["sources"].iloc[0].to_dict())

    @property
    def status(self) -> str:
        return str(self.tables["sources"]["status"].iloc[0])


# -- one file: extract, check --------------------------------------------------
def conformance_path(root: Path, key: str, sha256: str) -> Path:
    """Where the conformance findings of a file checked under ``key`` are kept."""
    return root / key / sha256[:2] / f"{sha256}.parquet"


def prepare_file(
    path: Path,
    options: HarmoniseOptions,
    root: Path,
    *,
    source_file: str,
    uri: str,
    sha256: str | None = None,
    conformance_key: str | None = None,
) -> IatiInput:
    """Extract one file (unless done already) and check it against the IATI XML Schema
    (unless done under the same schemas), into ``root``; what the transform needs of it.

    Files over ``max_file_bytes`` are refused before a byte is read; a file that cannot be
    read at all is refused too (``unreadable``): neither is extracted or remembered.
    """
    limit = options.max_file_bytes
    try:
        declared: int | None = path.stat().st_size
    except OSError:
        declared = None  # reported by the read below
    if limit is not None and declared is not None and declared > limit:
        message = f"{over_size_limit(declared, limit)}; it was not read"
        return IatiInput(
            source_file,
            uri,
            rejection=Rejection("too_large", message, f"file rejected: {message}", bytes=declared),
        )
    try:
        extracted = extract_file(path, root / "extract", sha256)
    except ExtractError as exc:
        message = f"cannot read the file: {exc.reason}"
        return IatiInput(
            source_file,
            uri,
            rejection=Rejection("unreadable", message, f"file rejected: {message}"),
        )
    # Every file read is checked, a rejected one too: the check says why it could not run
    # (not XML, not an activity file...), where it stops being well-formed, or what the
    # schema says of a well-formed file the extractor could take nothing from.
    digest = str(extracted.summary["sha256"])
    key = conformance_key or options.conformance_key()
    findings = conformance_path(root / "conformance", key, digest)
    if not findings.exists():
        table = findings_arrow(
            check_schema(
                path,
                "",
                schemas=options.schemas,
                max_findings=options.max_findings,
                well_formed=extracted.summary.get("rejected_rule") in (None, "no_activities"),
            )
        )
        _write_atomic(table, findings)
    return IatiInput(source_file, uri, extract=extracted.folder, conformance=findings)


def _write_atomic(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as f:
        temporary = Path(f.name)
    try:
        pq.write_table(table, temporary, compression="zstd")
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


# -- many files: transform, combine -------------------------------------------
def transform_connection(
    options: HarmoniseOptions, threads: int | None = None
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection for the transform, with the options' limits (and
    ``threads``: one for a single file, where threads cost more than they give)."""
    config = dict(options.duckdb_config)
    if threads is not None:
        config["threads"] = threads
    con = duckdb.connect(config=config)
    set_up(con)
    return con


def _per_file(con: duckdb.DuckDBPyConnection, source_file: str) -> HarmonisedFile:
    """One IATI file's tables as the transform made them (its own order, not combined)."""
    tables = {}
    for table in ALL_TABLES:
        columns = ", ".join(f'"{name}"' for name in arrow_schema(table).names)
        arrow = con.sql(
            f'SELECT {columns} FROM "iati_{table}" WHERE _file = $file ORDER BY _ord',
            params={"file": source_file},
        ).to_arrow_table()
        tables[table] = frame_of_arrow(arrow.cast(arrow_schema(table)))
    return HarmonisedFile(source_file, tables)


def harmonise_file(
    path: Path,
    options: HarmoniseOptions,
    *,
    source_file: str | None = None,
    uri: str | None = None,
) -> HarmonisedFile:
    """Harmonise one IATI activity file on its own; never raises for what is inside it."""
    name = source_file or path.name
    with tempfile.TemporaryDirectory(prefix="cdcompact-harmonise-") as work:
        prepared = prepare_file(
            path, options, Path(work), source_file=name, uri=uri or path.resolve().as_uri()
        )
        con = transform_connection(options, threads=1)
        try:
            iati_tables(con, [prepared], options.transform_options())
            return _per_file(con, name)
        finally:
            con.close()


def harmonise_paths(
    paths: Sequence[Path],
    options: HarmoniseOptions,
    progress: Callable[[int, int, Path], None] | None = None,
    workers: int = 1,
    work: Path | None = None,
) -> tuple[list[HarmonisedFile], dict[str, pd.DataFrame]]:
    """Harmonise files (folders are read for ``*.xml``) and combine them: each file's own
    tables, and every table combined. With ``workers`` > 1 the files are extracted in that
    many processes; ``work`` keeps the extracts (default: a temporary folder)."""
    with tempfile.TemporaryDirectory(prefix="cdcompact-harmonise-") as temporary:
        inputs = prepare_paths(paths, options, work or Path(temporary), workers, progress)
        return harmonise_inputs(inputs, options)


def harmonise_inputs(
    inputs: Sequence[IatiInput], options: HarmoniseOptions
) -> tuple[list[HarmonisedFile], dict[str, pd.DataFrame]]:
    """Prepared files (:func:`prepare_file`) transformed and combined: each file's own
    tables, and every table combined."""
    con = transform_connection(options)
    try:
        iati_tables(con, inputs, options.transform_options())
        per_file = [_per_file(con, i.source_file) for i in inputs]
        combining.combine_tables(con)
        return per_file, combining.frames(con)
    finally:
        con.close()


def combine(files: Iterable[HarmonisedFile]) -> dict[str, pd.DataFrame]:
    """Files' tables (frames) as one set, in a stable order, one activity per identifier
    (see :mod:`assets.harmonise.combine`)."""
    con = duckdb.connect()
    set_up(con)
    try:
        combining.combine_tables(con, [(h.source_file, h.tables) for h in files], with_iati=False)
        return combining.frames(con)
    finally:
        con.close()


# -- many files, in parallel -------------------------------------------------
_WORKER: dict[str, Any] = {}


def _start_worker(options: HarmoniseOptions, root: Path, key: str) -> None:
    """Once per worker process: the options (reference data) and where to write."""
    _WORKER.update(options=options, root=root, key=key)


def _prepare_job(job: tuple[Path, str]) -> IatiInput:
    path, name = job
    return prepare_file(
        path,
        _WORKER["options"],
        _WORKER["root"],
        source_file=name,
        uri=path.resolve().as_uri(),
        conformance_key=_WORKER["key"],
    )


def prepare_many(
    jobs: Sequence[tuple[Path, str]],
    options: HarmoniseOptions,
    root: Path,
    workers: int = 1,
    progress: Callable[[int, int, Path], None] | None = None,
) -> list[IatiInput]:
    """:func:`prepare_file` for each (path, source_file name), in order.

    With ``workers`` > 1 and more than one file, a pool of that many processes does the
    work (started with ``spawn``, safe beside threads such as Dagster's); each worker
    receives the options once. Files are handed out one at a time, so a large file does
    not hold back the others. A file whose worker process dies, even when run again
    alone, is rejected as ``worker_died`` (:mod:`assets.pool`).
    """
    key = options.conformance_key()
    if workers <= 1 or len(jobs) <= 1:
        _start_worker(options, root, key)
        results = []
        for index, job in enumerate(jobs, start=1):
            if progress is not None:
                progress(index, len(jobs), job[0])
            results.append(_prepare_job(job))
        return results
    results = []
    for index, result in map_in_processes(
        _prepare_job, jobs, workers, initializer=_start_worker, initargs=(options, root, key)
    ):
        path, name = jobs[index]
        if progress is not None:
            progress(index + 1, len(jobs), path)
        if isinstance(result, WorkerDied):
            result = died(path, name, result.message)
        results.append(result)
    return results


def prepare_paths(
    paths: Sequence[Path],
    options: HarmoniseOptions,
    root: Path,
    workers: int = 1,
    progress: Callable[[int, int, Path], None] | None = None,
) -> list[IatiInput]:
    """:func:`prepare_many` of the files given (folders are read for ``*.xml``:
    :func:`discover_files`), each named by :func:`unique_source_names`, into ``root``."""
    files = discover_files(paths)
    names = unique_source_names(files)
    return prepare_many([(path, names[path]) for path in files], options, root, workers, progress)


def died(path: Path, name: str, message: str) -> IatiInput:
    """The file whose worker process died: rejected, so that the others still count."""
    try:
        size: int | None = path.stat().st_size
    except OSError:
        size = None
    return IatiInput(
        name,
        path.resolve().as_uri(),
        rejection=Rejection("worker_died", message, f"file rejected: {message}", bytes=size),
    )


def discover_files(paths: Sequence[Path]) -> list[Path]:
    """Files as given; folders give their ``*.xml`` files (not recursive), sorted."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() == ".xml")
            )
        else:
            found.append(path)
    unique: dict[Path, None] = {}
    for path in found:
        unique.setdefault(path.resolve(), None)
    return list(unique)


def unique_source_names(files: Sequence[Path]) -> dict[Path, str]:
    """``source_file`` names: the file name, or ``folder/name`` where two files share one."""
    counts: dict[str, int] = {}
    for path in files:
        counts[path.name] = counts.get(path.name, 0) + 1
    return {
        path: path.name if counts[path.name] == 1 else f"{path.parent.name}/{path.name}"
        for path in files
    }
