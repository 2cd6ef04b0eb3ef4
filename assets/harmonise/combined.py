"""All inputs together: IATI datasets, country reports and partner submissions."""

from __future__ import annotations

import pandas as pd

from assets.iati.fetching import dataset_files
from assets.iati.harmonise import combine
from assets.settings import Settings
from assets.submissions.intake import processed_submissions


def harmonised_tables(settings: Settings) -> dict[str, pd.DataFrame]:
    """Every harmonised table, from every fetched dataset and every processed submission."""
    return combine([*dataset_files(settings), *processed_submissions(settings)])
