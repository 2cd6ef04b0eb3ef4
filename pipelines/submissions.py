"""Dagster side of submissions: a partition per received file, the inbox sensor."""

import json

import dagster as dg
import pandas as pd
from dagster import AssetExecutionContext, SensorEvaluationContext

from assets.harmonise.store import tables_dir
from assets.submissions.intake import load_index, process, receive_changed
from pipelines.iati import iati_codelists, iati_exchange_rates, load_reference
from pipelines.resources import CompactConfig

SUBMISSIONS_NAME = "submissions"
SUBMISSIONS = dg.DynamicPartitionsDefinition(name=SUBMISSIONS_NAME)


def iati_activity_ids(data_dir_tables: str) -> set[str] | None:
    """Activity identifiers of the last harmonised IATI data (to check partner references);
    None before the first night harmonised any (nothing to check them against yet)."""
    try:
        frame = pd.read_parquet(
            f"{data_dir_tables}/activities.parquet", columns=["activity_id", "source"]
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return set()
    return set(frame.loc[frame["source"] == "iati", "activity_id"].dropna())


@dg.asset(
    group_name="submissions",
    kinds={"pandas", "parquet"},
    partitions_def=SUBMISSIONS,
    deps=[iati_exchange_rates, iati_codelists],
    description="One country results report or partner submission from the inbox: read "
    "safely, checked (structure, codes, cross-table rules) and harmonised; bad rows to "
    "quarantine. A partition per received file (by sha256).",
)
def submission(context: AssetExecutionContext, compact: CompactConfig) -> dg.MaterializeResult:
    settings = compact.settings()
    rates, codelists = load_reference(settings)
    harmonised = process(
        settings,
        context.partition_key,
        rates,
        codelists,
        iati_activity_ids(str(tables_dir(settings.data_dir))),
    )
    source = harmonised.source
    quarantine = harmonised.tables["quarantine"]
    return dg.MaterializeResult(
        metadata={
            "source_file": str(source["source_file"]),
            "type": str(source["source"]),
            "status": str(source["status"]),
            "reason": str(source["reason"] or ""),
            "n_records": int(source["n_records"]),
            "n_accepted": int(source["n_accepted"]),
            "errors": int((quarantine["severity"] == "error").sum()),
            "warnings": int((quarantine["severity"] == "warning").sum()),
        }
    )


submission_job = dg.define_asset_job(
    "submission_job",
    selection=dg.AssetSelection.assets(submission),
    description="Check and harmonise one received submission.",
)


@dg.sensor(
    job=submission_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Watches the submissions inbox: every new file (by sha256) becomes a "
    "partition and a run. The cursor keeps each inbox object's version (size and time, "
    "or S3 ETag): an object as it was is not read again.",
)
def submissions_sensor(context: SensorEvaluationContext, compact: CompactConfig) -> dg.SensorResult:
    settings = compact.settings()
    cursor = json.loads(context.cursor) if context.cursor else {}
    received = len(load_index(settings.data_dir))
    # the cursor stands only for the index it was written with (a wiped data folder, or
    # a cursor of an older format, means every object is read again; nothing is lost,
    # the same bytes are the same submission)
    seen = cursor.get("objects", {}) if cursor.get("received") == received else {}
    new, versions = receive_changed(settings, seen)
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=key, run_key=key) for key in new],
        dynamic_partitions_requests=(
            [dg.AddDynamicPartitionsRequest(SUBMISSIONS_NAME, new)] if new else []
        ),
        cursor=json.dumps({"received": received + len(new), "objects": versions}),
    )
