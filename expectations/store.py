"""Where a run keeps its Great Expectations results between steps.

The asset checks validate the harmonised tables once (and build the Data Docs);
the release step reads the same results for the quality report instead of
validating again. Results are kept with the row count of every table they were
computed on, so results of other tables are never taken for these.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sized
from pathlib import Path

from expectations.outcomes import TableValidation

VALIDATIONS = "validations.json"
DATA_DOCS = "data-docs"
#: The outcomes of the last run's GX batches (:class:`expectations.batch_cache.BatchCache`).
GX_BATCHES = "gx-batches"


def quality_work_dir(data_dir: Path) -> Path:
    """The run's quality working folder: GX results, their batches and Data Docs."""
    return data_dir / "quality"


def save_validations(folder: Path, validations: Mapping[str, TableValidation]) -> Path:
    path = folder / VALIDATIONS
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {table: validation.to_dict() for table, validation in sorted(validations.items())}
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(payload, sort_keys=True) + "\n", encoding="utf-8")
    temporary.replace(path)
    return path


def load_validations(
    folder: Path, tables: Mapping[str, Sized]
) -> dict[str, TableValidation] | None:
    """The saved results when they were computed on tables of these sizes (frames, or
    anything with the tables' lengths); else None."""
    path = folder / VALIDATIONS
    if not path.exists():
        return None
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        validations = {table: TableValidation.from_dict(data) for table, data in payload.items()}
    except (ValueError, KeyError, TypeError):
        return None
    for table, validation in validations.items():
        frame = tables.get(table)
        if frame is None or len(frame) != validation.n_rows:
            return None
    return validations
