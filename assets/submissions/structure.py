"""The structural check with Frictionless: every sheet against its Table Schema.

The checker reads and normalises what people wrote; this pass then validates
the normalised sheets with Frictionless against the Table Schema the CSV
templates publish (types, required values, codes, unique keys), so the rules a
submitter is given and the rules the pipeline applies are the same ones. Any
problem Frictionless finds that the checker did not already report on that
cell becomes an error of its own.
"""

from __future__ import annotations

from typing import Any

import frictionless
import pandas as pd

from assets.submissions.model import SubmissionType
from assets.submissions.templates import datapackage_descriptor


def _cell(value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    return value


def structure_problems(
    kind: SubmissionType, frames: dict[str, pd.DataFrame]
) -> list[tuple[str, int | None, str | None, str, str]]:
    """(sheet, submitter's row, column, rule, message) for every Frictionless error."""
    resources = {
        r["path"].removesuffix(".csv"): r for r in datapackage_descriptor(kind)["resources"]
    }
    found = []
    for sheet in kind.sheets:
        frame = frames.get(sheet.name)
        if frame is None or frame.empty:
            continue
        names = [c.name for c in sheet.columns]
        schema = dict(resources[sheet.name]["schema"])
        if sheet.key:
            schema["primaryKey"] = list(sheet.key)
        rows = [[_cell(v) for v in row] for row in frame[names].itertuples(index=False)]
        resource = frictionless.Resource(
            data=[names, *rows], schema=frictionless.Schema.from_descriptor(schema)
        )
        report = frictionless.validate(resource)
        submitter_rows = frame["_row"].tolist() if "_row" in frame.columns else None
        for error in report.flatten(["rowNumber", "fieldName", "type", "note"]):
            number, field, kind_of, note = error
            row = None
            if number and submitter_rows is not None and 2 <= number <= len(rows) + 1:
                row = int(submitter_rows[number - 2])
            found.append((sheet.name, row, field or None, f"structure_{kind_of}", str(note)))
    return found
