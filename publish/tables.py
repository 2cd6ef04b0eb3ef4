"""The tables a release publishes, as DuckDB relations over their Parquet files.

From here come the content digest of every table (the "no change" decision),
the release's data files (written by :mod:`publish.files`, or reused from the
previous release when a table's bytes would be the same), and the search of
every cell for strings no release may hold. Nothing here holds a table in
memory, except ``sources`` (one row per input file), whose URIs a release shows
as :func:`publish.provenance.public_uri` says.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from duckdb.sqltypes import VARCHAR

from assets.harmonise.schema import arrow_schema, field_types, table_frame
from assets.harmonise.store import read_table, to_arrow
from assets.hashing import file_digest, file_sha256
from assets.warehouse import duckdb_type, literal, quote
from publish import files
from publish.provenance import local_names, public_text, public_uri

#: Beside the harmonised tables: each table's Parquet sha256 and CSV digest.
CONTENT_DIGESTS = "content-digests.json"
#: Fields of ``sources`` that describe a run rather than the data: a night whose
#: files were merely re-checked (``download`` = ``revalidated``), or whose fetch failed
#: while the last good copy was kept (``kept``), has the same data and publishes nothing new.
RUN_FIELDS = ("status", "reason", "fetched_at", "checked_at", "download", "http_etag", "uri")
#: Tables with rows about IATI datasets that could not be fetched at all (no bytes, no
#: earlier copy: a failed listing, a download that never succeeded). Those rows are run
#: facts, not data: they are published, but a night does not publish a new release for
#: them alone (:meth:`ReleaseTables.content_relation`).
UNFETCHED_ROWS = ("sources", "quarantine", "conformance")
_PUBLISHED_SOURCES = "__published_sources"
_PUBLIC_TEXT = "__public_text"
#: Tables whose ``message`` may quote a local file's reason, and which of their rows do.
_SCRUBBED = {
    "quarantine": "\"table\" = 'sources'",
    "conformance": "rule = 'xsd:not_checked'",
}


@dataclass(frozen=True)
class StoredTables:
    """The tables to publish: ``folder/<table>.parquet`` for each name (no file: empty),
    or the file ``elsewhere`` names (the tables made when publishing, :mod:`publish.names`)."""

    folder: Path
    names: tuple[str, ...]
    elsewhere: Mapping[str, Path] = field(default_factory=dict)

    def path(self, table: str) -> Path | None:
        path = self.elsewhere.get(table) or self.folder / f"{table}.parquet"
        return path if path.exists() else None

    def rows(self, table: str) -> int:
        """The table's rows, from its Parquet file's footer."""
        path = self.path(table)
        return 0 if path is None else int(pq.ParquetFile(path).metadata.num_rows)


def read_sources(stored: StoredTables, root: Path | None) -> pd.DataFrame | None:
    """``sources`` (small: one row per input file) as a release shows it
    (:func:`public_sources`); None when the tables have no ``sources``."""
    if "sources" not in stored.names:
        return None
    path = stored.path("sources")
    frame = read_table("sources", path) if path is not None else table_frame("sources", [])
    return public_sources(frame, root)


def local_files(stored: StoredTables, root: Path | None) -> dict[str, list[tuple[str, str]]]:
    """Each input file's local names and what a release shows instead
    (:func:`publish.provenance.local_names`), by ``source_file``: none for a file that was
    not local."""
    path = stored.path("sources") if "sources" in stored.names else None
    if path is None:
        return {}
    frame = read_table("sources", path)
    found: dict[str, list[tuple[str, str]]] = {}
    for name, uri in zip(frame["source_file"], frame["uri"], strict=True):
        names = local_names(uri, root) if isinstance(uri, str) else []
        if isinstance(name, str) and names:
            found.setdefault(name, names)
    return found


def public_sources(sources: pd.DataFrame, root: Path | None) -> pd.DataFrame:
    """``sources`` with each ``uri`` as a release may show it (no local paths outside the
    project, no credentials): :func:`publish.provenance.public_uri`; and each ``reason``
    without its local file's names (:func:`publish.provenance.local_names`)."""
    if "uri" not in sources.columns:
        return sources
    raw = sources["uri"]
    shown = raw.map(lambda uri: public_uri(uri, root) if isinstance(uri, str) else uri)
    changed = {} if shown.equals(raw) else {"uri": shown}
    if "reason" in sources.columns:
        reasons = pd.array(
            [
                public_text(reason, local_names(uri, root))
                if isinstance(reason, str) and isinstance(uri, str)
                else reason
                for reason, uri in zip(sources["reason"], raw, strict=True)
            ],
            dtype=sources["reason"].dtype,
        )
        if not pd.Series(reasons, index=sources.index).equals(sources["reason"]):
            changed["reason"] = reasons
    return sources.assign(**changed) if changed else sources


@dataclass(frozen=True)
class DataFile:
    """One data file of the release: rendered at ``path``, or a copy of ``copy_of`` (a key
    of the previous release on the target), with its checksum."""

    key: str
    sha256: str
    bytes: int
    path: Path | None = None
    copy_of: str | None = None


@dataclass(frozen=True)
class TableFiles:
    """A table's CSV and Parquet files and its rows."""

    csv: DataFile
    parquet: DataFile
    rows: int

    @property
    def reused(self) -> bool:
        return self.csv.copy_of is not None


@dataclass
class Stopwatch:
    """Seconds spent per part of the release."""

    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, part: str, began: float) -> None:
        self.seconds[part] = self.seconds.get(part, 0.0) + time.perf_counter() - began


@cache
def _csv_code() -> str:
    """The code that writes the CSV files: a digest recorded for a table stands only
    while it is the same."""
    return file_sha256(Path(files.__file__))[:16]


class ReleaseTables:
    """The stored tables in a DuckDB connection, and the files made from them in ``work``."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        stored: StoredTables,
        sources: pd.DataFrame | None,
        work: Path,
        stopwatch: Stopwatch,
        local: Mapping[str, Sequence[tuple[str, str]]] | None = None,
    ) -> None:
        self.con = con
        self.stored = stored
        self.work = work
        self.stopwatch = stopwatch
        files.prepare(con)
        #: The local names of each input file (:func:`local_files`), which the messages of
        #: ``quarantine`` and ``conformance`` (a file's rejection says where it was read) do
        #: not publish.
        self.local = dict(local or {})
        if self.local:
            con.create_function(
                _PUBLIC_TEXT,
                lambda source_file, text: public_text(text, self.local.get(source_file, ())),
                [VARCHAR, VARCHAR],
                VARCHAR,
                side_effects=False,
            )
        #: Tables whose published files are written (while digesting, the CSV's digest is
        #: the published one): table -> (CSV, Parquet).
        self._rendered: dict[str, tuple[Path, Path]] = {}
        self._keys: dict[str, list[str]] = {}
        if sources is not None:
            arrow = to_arrow("sources", sources.reset_index(drop=True))
            rows = pa.array(np.arange(arrow.num_rows, dtype=np.int64))
            con.register(_PUBLISHED_SOURCES, arrow.append_column(files.ROW, rows))
        #: IATI datasets tonight could not fetch at all (see :data:`UNFETCHED_ROWS`).
        self.unfetched: tuple[str, ...] = ()
        if "sources" in self.names:
            found = con.execute(
                f"SELECT source_file FROM {self.relation('sources')} "
                "WHERE source = 'iati' AND sha256 IS NULL ORDER BY source_file"
            ).fetchall()
            self.unfetched = tuple(str(row[0]) for row in found)

    @property
    def names(self) -> tuple[str, ...]:
        return self.stored.names

    def views(self) -> None:
        """Every table as published as a view of its name (with :data:`files.ROW`, its row
        number), as the quality report and the profile pages read them."""
        for table in self.names:
            relation = self.relation(table)
            self.con.execute(
                f"CREATE OR REPLACE TEMP VIEW {quote(table)} AS SELECT * FROM {relation}"
            )

    def relation(self, table: str) -> str:
        """The table as published (``sources`` with public URIs), with :data:`files.ROW`."""
        if table == "sources" and "sources" in self.names:
            return quote(_PUBLISHED_SOURCES)
        relation = files.parquet_relation(table, self.stored.path(table))
        if table in _SCRUBBED and self.local:
            # the rows that say why a file was refused or not checked: they quote its reason
            files_named = "[" + ", ".join(literal(name) for name in sorted(self.local)) + "]"
            return (
                f"(SELECT * REPLACE (CASE WHEN ({_SCRUBBED[table]}) "
                f"AND list_contains({files_named}, source_file) "
                f"THEN {_PUBLIC_TEXT}(source_file, message) ELSE message END AS message) "
                f"FROM {relation})"
            )
        return relation

    def content_only(self, table: str) -> bool:
        """Whether the table's content (what the content hash covers) differs from the
        table as published: ``sources`` always (run fields), and the tables with rows of
        datasets that could not be fetched, on a night that has some."""
        return table == "sources" or (bool(self.unfetched) and table in UNFETCHED_ROWS)

    def content_relation(self, table: str) -> str:
        """The table as far as the content hash is concerned: run fields of ``sources``
        empty, and no rows of the datasets tonight could not fetch at all."""
        relation = self.relation(table)
        if self.unfetched and table in UNFETCHED_ROWS:
            names = "[" + ", ".join(literal(name) for name in self.unfetched) + "]"
            relation = f"(SELECT * FROM {relation} WHERE NOT list_contains({names}, source_file))"
        if table != "sources":
            return relation
        types = {f.name: duckdb_type(f.type) for f in arrow_schema(table)}
        blanked = ", ".join(
            f"CAST(NULL AS {types[name]}) AS {quote(name)}" for name in RUN_FIELDS if name in types
        )
        return f"(SELECT * REPLACE ({blanked}) FROM {relation})"

    def rows(self, table: str) -> int:
        if table == "sources":
            found = self.con.execute(f"SELECT count(*) FROM {self.relation(table)}").fetchone()
            return int(found[0]) if found else 0
        return self.stored.rows(table)

    def _sort_keys(self, table: str, relation: str) -> list[str]:
        if relation not in self._keys:
            self._keys[relation] = files.sort_keys(self.con, table, relation)
        return self._keys[relation]

    def _write_csv(self, table: str, relation: str, path: Path) -> tuple[str, int]:
        began = time.perf_counter()
        path.parent.mkdir(parents=True, exist_ok=True)
        files.write_csv(self.con, table, relation, path, self._sort_keys(table, relation))
        self.stopwatch.add("data files", began)
        began = time.perf_counter()
        digest = file_digest(path)
        self.stopwatch.add("checksums", began)
        return digest

    def content_digests(self) -> dict[str, str]:
        """Every table's content CSV sha256, by table.

        A table whose Parquet file has the same bytes as when its digest was last
        computed (``content-digests.json`` beside the tables) has the same CSV: the
        digest is taken from that record instead of writing the CSV again. ``sources``
        is always digested (its run fields change every night and it is small), and so is
        a table whose content differs from its published rows (:meth:`content_only`)."""
        record_path = self.stored.folder / CONTENT_DIGESTS
        record: dict[str, dict[str, str]] = {}
        if record_path.exists():
            try:
                record = json.loads(record_path.read_text(encoding="utf-8"))
            except ValueError:
                record = {}
        digests: dict[str, str] = {}
        for table in sorted(self.names):
            parquet = self.stored.path(table)
            key = None
            if parquet is not None and not self.content_only(table):
                began = time.perf_counter()
                key = f"{file_sha256(parquet)}:{_csv_code()}"
                self.stopwatch.add("checksums", began)
                known = record.get(table)
                if known is not None and known.get("parquet_sha256") == key:
                    digests[table] = known["csv_sha256"]
                    continue
            if self.content_only(table):
                path = self.work / "content" / f"{table}.csv"
                digests[table], _ = self._write_csv(table, self.content_relation(table), path)
            else:
                digests[table] = self._render(table, self.relation(table))
            if key is not None:
                record[table] = {"parquet_sha256": key, "csv_sha256": digests[table]}
        temporary = record_path.with_name(f".{record_path.name}.tmp")
        temporary.write_text(json.dumps(record, sort_keys=True) + "\n", encoding="utf-8")
        temporary.replace(record_path)
        return digests

    def data_files(
        self, digests: Mapping[str, str], previous: Mapping[str, Any] | None
    ) -> dict[str, TableFiles]:
        """Every table's CSV and Parquet files: copies of the previous release's where the
        table's CSV has the same bytes, else written in ``work/data``."""
        known = (previous or {}).get("files", {})
        before = (previous or {}).get("path", "")
        written: dict[str, TableFiles] = {}
        for table in sorted(self.names):
            csv_key, parquet_key = f"data/{table}.csv", f"data/{table}.parquet"
            relation = self.relation(table)
            # sources' published CSV differs from its content CSV (run fields): write it
            digest = None if self.content_only(table) else digests.get(table)
            if digest is None:
                digest = self._render(table, relation)
            old_csv, old_parquet = known.get(csv_key), known.get(parquet_key)
            if old_csv and old_parquet and old_csv["sha256"] == digest:
                written[table] = TableFiles(
                    DataFile(csv_key, digest, old_csv["bytes"], copy_of=before + csv_key),
                    DataFile(
                        parquet_key,
                        old_parquet["sha256"],
                        old_parquet["bytes"],
                        copy_of=before + parquet_key,
                    ),
                    self.rows(table),
                )
                continue
            if table not in self._rendered:
                self._render(table, relation)
            csv_path, parquet_path = self._rendered[table]
            began = time.perf_counter()
            parquet_sha256, parquet_bytes = file_digest(parquet_path)
            self.stopwatch.add("checksums", began)
            written[table] = TableFiles(
                DataFile(csv_key, digest, csv_path.stat().st_size, csv_path),
                DataFile(parquet_key, parquet_sha256, parquet_bytes, parquet_path),
                self.rows(table),
            )
        return written

    def _render(self, table: str, relation: str) -> str:
        """Write the table's published CSV and Parquet files into ``work/data`` (one sort:
        :func:`files.write_both`); the CSV's sha256."""
        csv_path = self.work / "data" / f"{table}.csv"
        parquet_path = csv_path.with_suffix(".parquet")
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        keys = self._sort_keys(table, relation)
        began = time.perf_counter()
        files.write_both(self.con, table, relation, csv_path, parquet_path, keys)
        self.stopwatch.add("data files", began)
        began = time.perf_counter()
        digest, _ = file_digest(csv_path)
        self.stopwatch.add("checksums", began)
        self._rendered[table] = (csv_path, parquet_path)
        return digest

    def leaks(self, private: Mapping[str, str]) -> list[tuple[str, str]]:
        """(CSV file, what it would leak) for every table with a cell whose CSV text holds
        one of the ``private`` strings (:func:`publish.release.check_private`, for the data
        files; a string across two cells, or with a quote the CSV doubles, is not found).

        Text is searched as it is, and the apostrophe in front of a formula-looking text
        where a string starts with one; other cells only for a string made of the
        characters their text can have (digits, signs, points, ``e``, ``inf``, dates,
        ``true``/``false``)."""
        needles = [(value, what) for value, what in private.items() if value]
        if not needles:
            return []
        found: list[tuple[str, str]] = []
        for table in sorted(self.names):
            tests = []
            for index, (needle, _) in enumerate(needles):
                cells = []
                for name, kind in field_types(table).items():
                    if kind == "string":
                        cells.append(_text_holds(name, needle, index + 1))
                    elif set(needle) <= _NOT_TEXT_CHARACTERS:
                        cells.append(f"contains({files.cell_sql(kind, name)}, ${index + 1})")
                tests.append(f"bool_or({' OR '.join(cells) or 'false'})")
            row = self.con.execute(
                f"SELECT {', '.join(tests)} FROM {self.relation(table)}",
                [value for value, _ in needles],
            ).fetchone()
            for (_, what), hit in zip(needles, row or (), strict=True):
                if hit:
                    found.append((f"data/{table}.csv", what))
        return found


#: Every character the CSV text of a number, date, datetime or boolean can have.
_NOT_TEXT_CHARACTERS = frozenset("0123456789+-.:eEinfINFTZtruefals")


def _text_holds(column: str, needle: str, parameter: int) -> str:
    """SQL: the text column's CSV cell holds the needle (``$parameter``), without spelling
    out every cell (the apostrophe of a formula-looking text only matters to a needle that
    starts with one)."""
    c = quote(column)
    holds = f"contains({c}, ${parameter})"
    if needle.startswith("'"):
        holds += f" OR contains({files.cell_sql('string', column)}, ${parameter})"
    return holds
