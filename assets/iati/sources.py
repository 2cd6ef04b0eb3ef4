"""Where the configured IATI datasets are: one dataset (and Dagster partition) per file."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from assets.iati.harmonise import discover_files, unique_source_names
from assets.settings import Settings, project_root

#: Source kinds this build can read; the network adapters arrive with the fetchers.
SUPPORTED_KINDS = frozenset({"local"})


class SourceError(ValueError):
    """A configured source cannot be used as configured."""


@dataclass(frozen=True)
class Dataset:
    """One IATI dataset file: its partition key, file and configured source."""

    key: str
    source_file: str
    path: Path
    source_name: str

    @property
    def uri(self) -> str:
        """The file relative to the project root when inside it (no machine paths
        in published data), else its file:// URI."""
        try:
            return self.path.relative_to(project_root()).as_posix()
        except ValueError:
            return self.path.as_uri()


def partition_key(source_file: str) -> str:
    """A Dagster partition key for a ``source_file`` name (letters, digits, ``._-`` only)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", source_file)


def discover_datasets(settings: Settings) -> list[Dataset]:
    """Every dataset file the configured sources name, in a stable order."""
    unsupported = [s for s in settings.iati_sources if s.kind not in SUPPORTED_KINDS]
    if unsupported:
        names = ", ".join(f"{s.name} (kind {s.kind})" for s in unsupported)
        raise SourceError(
            f"{settings.config_file}: IATI sources of these kinds cannot be read by this "
            f"build yet: {names}; supported kinds: {', '.join(sorted(SUPPORTED_KINDS))}"
        )
    located: list[tuple[Path, str]] = []
    for source in settings.iati_sources:
        missing = [p for p in source.paths if not p.exists()]
        if missing:
            raise SourceError(
                f"{settings.config_file}: source {source.name!r}: no such file or folder: "
                + ", ".join(str(p) for p in missing)
            )
        located.extend((path, source.name) for path in discover_files(list(source.paths)))
    file_names = unique_source_names([path for path, _ in located])
    datasets = [
        Dataset(partition_key(file_names[path]), file_names[path], path, source_name)
        for path, source_name in located
    ]
    seen: dict[str, Path] = {}
    for dataset in datasets:
        if dataset.key in seen and seen[dataset.key] != dataset.path:
            raise SourceError(
                f"two dataset files map to the same name {dataset.key!r}: "
                f"{seen[dataset.key]} and {dataset.path}"
            )
        seen[dataset.key] = dataset.path
    return sorted(datasets, key=lambda d: d.key)
