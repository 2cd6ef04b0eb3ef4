"""Dagster asset ``data_release``: publish the harmonised tables as a versioned release
(:func:`publish.stage.publish_tables`)."""

import time

import dagster as dg
from dagster import AssetExecutionContext

from assets.harmonise.store import add_timings
from assets.metrics.stage import PUBLISHED_TABLES
from pipelines.resources import CompactConfig
from publish.stage import publish_tables, release_target

PUBLISH_GROUP = "publish"


@dg.asset(
    group_name=PUBLISH_GROUP,
    kinds={"csv", "parquet", "json"},
    deps=[dg.AssetKey(table) for table in PUBLISHED_TABLES],
    description="A versioned, immutable open data release of the harmonised tables "
    "(releases/<version>/ with datapackage.json, CSV, Parquet, README, CHANGELOG, "
    "quality report), published only when the data changed; catalog.json, latest.json, "
    "dcat.jsonld and index.html point to it.",
)
def data_release(context: AssetExecutionContext, compact: CompactConfig) -> dg.MaterializeResult:
    settings = compact.settings()
    began = time.perf_counter()
    outcome = publish_tables(settings, context.run.run_id)
    parts = {f"release: {part}": seconds for part, seconds in outcome.timings.items()}
    add_timings(settings.data_dir, {"release": time.perf_counter() - began, **parts})
    if outcome.status == "no_change":
        context.log.info(f"no change: the data equals release {outcome.version}")
    else:
        context.log.info(f"published release {outcome.version} at {outcome.location}")
    metadata: dict[str, dg.RawMetadataValue] = {
        "status": outcome.status,
        "version": outcome.version,
        "location": outcome.location,
        "content_hash": outcome.content_hash,
        "files": outcome.files,
        "row_counts": dg.MetadataValue.json(outcome.row_counts),
    }
    if outcome.changelog:
        metadata["changelog"] = dg.MetadataValue.md(outcome.changelog)
    if outcome.cleared_leftovers:
        metadata["cleared_leftovers"] = outcome.cleared_leftovers
    if outcome.quality is not None:
        metadata["quality"] = dg.MetadataValue.json(outcome.quality.summary)
        metadata["quality_report"] = release_target(settings).url("quality/index.html")
    return dg.MaterializeResult(metadata=metadata)
