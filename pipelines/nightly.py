"""``cdcompact run``: the nightly chain once, now, on the instance in $DAGSTER_HOME.

The same jobs the schedule and sensors launch, executed one after the other in
this process and recorded in the instance's run storage.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import dagster as dg

from assets.harmonise.store import read_tables, tables_dir
from assets.iati.harmonise import ALL_TABLES
from assets.iati.sources import SourceError, discover_datasets
from assets.settings import ConfigError, load_settings
from pipelines.definitions import build_definitions

#: Console log level of the runs (Dagster's default, DEBUG, prints every event).
RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def run_nightly(
    config_file: str | os.PathLike[str] | None = None,
    instance: dg.DagsterInstance | None = None,
) -> int:
    """Run reference data, every dataset partition and the tables; 0 when all succeeded."""
    from pipelines.cli import summary

    started = time.monotonic()
    try:
        settings = load_settings(config_file)
        datasets = discover_datasets(settings)
    except (ConfigError, SourceError) as exc:
        print(f"cdcompact: {exc}", file=sys.stderr)
        return 2
    if instance is None:
        if not os.environ.get("DAGSTER_HOME"):
            print("cdcompact: DAGSTER_HOME is not set (make run sets it)", file=sys.stderr)
            return 2
        Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
        instance = dg.DagsterInstance.get()
    defs = build_definitions(settings)
    print(f"cdcompact: {len(datasets)} IATI datasets from {settings.config_file}")
    print(f"cdcompact: Dagster instance {instance.root_directory or '(in memory)'}")

    known = set(instance.get_dynamic_partitions("iati_datasets"))
    new = [d.key for d in datasets if d.key not in known]
    if new:
        instance.add_dynamic_partitions("iati_datasets", new)

    failed: list[str] = []
    reference = defs.resolve_job_def("iati_reference_job").execute_in_process(
        instance=instance, raise_on_error=False, run_config=RUN_CONFIG
    )
    if not reference.success:
        print("cdcompact: reference data failed; see the run in Dagster", file=sys.stderr)
        return 1
    dataset_job = defs.resolve_job_def("iati_dataset_job")
    for index, dataset in enumerate(datasets, start=1):
        result = dataset_job.execute_in_process(
            instance=instance,
            partition_key=dataset.key,
            raise_on_error=False,
            run_config=RUN_CONFIG,
        )
        mark = "run FAILED"
        if result.success:
            events = result.asset_materializations_for_node("iati_dataset")
            status = events[0].metadata.get("status") if events else None
            mark = str(getattr(status, "value", status) or "done")
        print(f"  [{index}/{len(datasets)}] {dataset.key}: {mark}")
        if not result.success:
            failed.append(dataset.key)
    if failed:
        print(f"cdcompact: {len(failed)} dataset runs failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    tables = defs.resolve_job_def("iati_tables_job").execute_in_process(
        instance=instance, raise_on_error=False, run_config=RUN_CONFIG
    )
    if not tables.success:
        print("cdcompact: combining the tables failed; see the run in Dagster", file=sys.stderr)
        return 1
    out = tables_dir(settings.data_dir)
    print(summary(read_tables(out, ALL_TABLES), out))
    releases = tables.asset_materializations_for_node("data_release")
    if releases:
        release = {k: getattr(v, "value", v) for k, v in releases[0].metadata.items()}
        if release["status"] == "published":
            print(f"published release {release['version']}: {release['location']}")
        else:
            print(f"no change since release {release['version']}: nothing published")
    print(f"cdcompact: nightly job finished in {time.monotonic() - started:.1f} s")
    return 0
