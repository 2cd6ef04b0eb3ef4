"""One release, timed part by part: run by ``benchmarks/release.py`` in a fresh process.

    python benchmarks/release_child.py CODE_ROOT {publish|perturb} [ARGS]

``CODE_ROOT`` is the checkout whose code runs (this one, or an export of an
earlier commit: the part names below cover the pandas release of commit
7ca04e4 and the DuckDB release since). ``publish`` runs ``publish_tables`` on
the configuration in ``CDCOMPACT_CONFIG`` and prints, as JSON on its last line,
the seconds and peak RSS of each part: the time of a part excludes the parts
it calls, and a part's peak RSS is the largest resident size sampled (every
10 ms) while it ran. ``previous`` publishes the tables of ``CDCOMPACT_DATA_DIR``
with the DuckDB release, without quality report or profile pages (the release
the timed one follows). ``perturb SOURCE TARGET TABLES...`` copies a folder of
tables, every 1000th row of the named ones dropped or changed. Not a test.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import resource
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: module -> function -> part, for the pandas release (7ca04e4) and the DuckDB one.
PARTS: dict[str, dict[str, str]] = {
    "assets.release.assets": {"read_tables": "reading tables into pandas"},
    "publish.tables": {"read_table": "reading tables into pandas"},
    "publish.release": {
        "data_files": "data files",
        "content_hash": "checksums",
        "_previous": "changelog",
        "compare_table": "changelog",
        "_changes": "changelog",
        "render_changelog": "changelog",
        "check_private": "verification",
        "verify_release_folder": "verification",
        "read_back": "verification",
        "quality_bundle": "quality report",
        "write_latest_quality": "quality report",
        "build_profiles": "profile pages",
        "render_all": "profile pages",
        "headline_figures": "index/catalogue",
        "country_figures": "index/catalogue",
        "write_catalogue_files": "index/catalogue",
        "_store": "storing",
    },
}
#: Methods of the DuckDB release's classes.
METHODS = {
    ("publish.tables", "ReleaseTables"): {
        "content_digests": "data files and checksums",
        "data_files": "data files and checksums",
        "leaks": "verification",
    }
}
_PAGE = os.sysconf("SC_PAGE_SIZE")


class Parts:
    """Exclusive seconds and peak RSS per part, with a sampler thread."""

    def __init__(self) -> None:
        self.stack: list[tuple[str, float]] = []
        self.seconds: dict[str, float] = {}
        self.peak: dict[str, int] = {}
        self.done = threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        with open("/proc/self/statm") as statm:
            while not self.done.wait(0.01):
                statm.seek(0)
                rss = int(statm.read().split()[1]) * _PAGE
                part = self.stack[-1][0] if self.stack else "other"
                self.peak[part] = max(self.peak.get(part, 0), rss)

    def wrap(self, part: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            now = time.perf_counter()
            if self.stack:
                outer, began = self.stack[-1]
                self.seconds[outer] = self.seconds.get(outer, 0.0) + now - began
            self.stack.append((part, now))
            try:
                return function(*args, **kwargs)
            finally:
                _, began = self.stack.pop()
                now = time.perf_counter()
                self.seconds[part] = self.seconds.get(part, 0.0) + now - began
                if self.stack:
                    self.stack[-1] = (self.stack[-1][0], now)

        return timed

    def install(self) -> None:
        for module_name, functions in PARTS.items():
            module = _module(module_name)
            for name, part in functions.items():
                if module is not None and hasattr(module, name):
                    setattr(module, name, self.wrap(part, getattr(module, name)))
        for (module_name, class_name), methods in METHODS.items():
            module = _module(module_name)
            cls = getattr(module, class_name, None) if module is not None else None
            for name, part in methods.items():
                if cls is not None and hasattr(cls, name):
                    setattr(cls, name, self.wrap(part, getattr(cls, name)))


def _module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def publish() -> dict[str, Any]:
    from assets.settings import load_settings
    from publish.stage import publish_tables

    with open("/proc/self/statm") as statm:
        baseline = int(statm.read().split()[1]) * _PAGE  # the code imported, nothing read
    parts = Parts()
    parts.install()
    began = time.perf_counter()
    outcome = parts.wrap("other", publish_tables)(load_settings(), "bench")
    seconds = time.perf_counter() - began
    parts.done.set()
    return {
        "status": outcome.status,
        "seconds": seconds,
        "parts": parts.seconds,
        "peak_mb": {part: rss / 1e6 for part, rss in parts.peak.items()},
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "baseline_mb": baseline / 1e6,
        "timings": getattr(outcome, "timings", {}),
        "files": outcome.files,
    }


def previous() -> dict[str, Any]:
    from dataclasses import replace

    from assets.harmonise.store import tables_dir
    from assets.metrics.stage import PUBLISHED_TABLES
    from assets.settings import load_settings
    from publish.release import publish_release
    from publish.stage import release_options, release_target
    from publish.tables import StoredTables

    settings = load_settings()
    options = replace(release_options(settings, "previous"), profiles=None)
    stored = StoredTables(tables_dir(settings.data_dir), PUBLISHED_TABLES)
    outcome = publish_release(stored, release_target(settings), options)
    return {"status": outcome.status, "version": outcome.version}


def perturb(source: Path, target: Path, tables: list[str]) -> dict[str, Any]:
    """Copy the tables; in those named, every 1000th row is dropped, or (in a table other
    tables refer to, so that their rows still find it) has a free text changed, or
    (``sources``) a count."""
    import shutil

    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from assets.harmonise.schema import table_schema, table_schemas

    referenced = {
        key["reference"]["resource"]
        for schema in table_schemas().values()
        for key in schema.get("foreignKeys") or []
    }
    target.mkdir(parents=True, exist_ok=True)
    changed = {}
    for path in sorted(source.glob("*.parquet")):
        if path.stem not in tables:
            shutil.copyfile(path, target / path.name)
            continue
        table = pq.read_table(path)
        every = pa.array(np.arange(table.num_rows) % 1000 == 999)
        if path.stem not in referenced:
            table = table.filter(pc.invert(every))
        else:
            fields = table_schema(path.stem)["fields"]
            free = [
                f["name"]
                for f in fields
                if f["type"] == "string"
                and not f.get("constraints")
                and f["name"] not in {"uri", "http_etag", "reason"}  # sources' run fields
            ]
            name = (free or ["n_records"])[0]
            column = table.column(name)
            edited = (
                pc.binary_join_element_wise(column, " (earlier)", "") if free else pc.add(column, 1)
            )
            index = table.schema.get_field_index(name)
            table = table.set_column(index, name, pc.if_else(every, edited, column))
        pq.write_table(table, target / path.name, compression="zstd")
        changed[path.stem] = int(pc.sum(every).as_py() or 0)
    return {"changed": changed}


def main() -> None:
    root, command, *rest = sys.argv[1:]
    sys.path.insert(0, root)
    os.chdir(root)
    if command == "publish":
        result = publish()
    elif command == "previous":
        result = previous()
    else:
        result = perturb(Path(rest[0]), Path(rest[1]), rest[2:])
    print(json.dumps(result))


if __name__ == "__main__":
    main()
