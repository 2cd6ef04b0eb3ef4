"""The metrics stage: from the harmonised tables to the four metrics tables.

In order: double counting (transactions that must not count toward totals are
flagged with the reason; record-level duplication pairs), alignment links and
metrics, overlapping-effort pairs (blocked on country and CD sector), then the
duplication metrics. Pure: the Dagster asset and the CLI call :func:`add_metrics`.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from assets.harmonise.schema import table_frame
from assets.iati.harmonise import ALL_TABLES
from assets.metrics.alignment import alignment_links, alignment_metrics
from assets.metrics.double_counting import flag_double_counting
from assets.metrics.duplication import OverlapSettings, duplication_metrics, overlapping_pairs
from assets.settings import MetricsSettings

#: The tables this stage adds to the harmonised ones.
METRIC_TABLES = ("alignment_links", "alignment_metrics", "duplication_pairs", "duplication_metrics")
#: Every table a release publishes.
PUBLISHED_TABLES = (*ALL_TABLES, *METRIC_TABLES)


def add_metrics(
    tables: Mapping[str, pd.DataFrame], settings: MetricsSettings
) -> dict[str, pd.DataFrame]:
    """The harmonised tables (transactions flagged for double counting) plus the metrics."""
    result = dict(tables)
    # The metrics read one activity per identifier (the schema's key). A broken
    # table with repeated identifiers is still returned as it is, so that its
    # blocking check fails and stops publishing, rather than the metrics crashing.
    view = dict(result)
    if "activities" in view:
        view["activities"] = view["activities"].drop_duplicates("activity_id")
    transactions, record_pairs = flag_double_counting(view)
    result["transactions"] = view["transactions"] = transactions
    links = alignment_links(view)
    result["alignment_links"] = links
    result["alignment_metrics"] = alignment_metrics(view, links, settings.method_version)
    overlap = overlapping_pairs(
        view,
        OverlapSettings(
            threshold=settings.overlap_threshold,
            use_text=settings.overlap_use_text,
            method_version=settings.method_version,
        ),
    )
    view["alignment_links"] = links
    result["duplication_metrics"] = duplication_metrics(view, overlap, settings.method_version)
    pairs = [frame for frame in (record_pairs, overlap) if len(frame)]
    result["duplication_pairs"] = (
        table_frame("duplication_pairs", pd.concat(pairs, ignore_index=True))
        .sort_values(["kind", "activity_id_a", "activity_id_b", "pair_id"])
        .reset_index(drop=True)
        if pairs
        else table_frame("duplication_pairs", [])
    )
    return result
