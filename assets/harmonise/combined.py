"""All inputs together: IATI datasets, country reports and partner submissions."""

from __future__ import annotations

import json

import pandas as pd

from assets.harmonise.reuse import inputs_fingerprint
from assets.harmonise.store import dataset_dir
from assets.iati.fetching import MARKER, dataset_files, last_run, reference_fingerprint
from assets.iati.harmonise import combine
from assets.settings import Settings
from assets.submissions.intake import MARKER as SUBMISSION_MARKER
from assets.submissions.intake import load_index, processed_submissions, submissions_dir


def harmonised_tables(settings: Settings) -> dict[str, pd.DataFrame]:
    """Every harmonised table, from every fetched dataset and every processed submission."""
    return combine([*dataset_files(settings), *processed_submissions(settings)])


def combined_fingerprint(settings: Settings) -> str:
    """What :func:`harmonised_tables` would combine tonight, as one digest
    (:func:`assets.harmonise.reuse.inputs_fingerprint`)."""

    def dataset_marker(key: str) -> str | None:
        path = dataset_dir(settings.data_dir, key) / MARKER
        return path.read_text(encoding="utf-8") if path.exists() else None

    folder = submissions_dir(settings.data_dir)
    index = load_index(settings.data_dir)
    submissions = [json.dumps(index, sort_keys=True)]
    for key in sorted(index):
        path = folder / key / SUBMISSION_MARKER
        submissions.append(path.read_text(encoding="utf-8") if path.exists() else f"{key}: -")
    return inputs_fingerprint(
        settings,
        last_run(settings.data_dir),
        reference_fingerprint(settings),
        dataset_marker,
        submissions,
    )
