"""``cdcompact run``: the nightly chain once, now, on the instance in $DAGSTER_HOME.

The same jobs the schedule and sensors launch, executed one after the other in
this process and recorded in the instance's run storage: fetch (with the
reference data), one run per dataset whose copy or reference data changed,
then the tables, their checks and the release.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import dagster as dg

from assets.fetch.sources import SourceConfigError
from assets.harmonise.store import read_tables, tables_dir
from assets.iati.fetching import last_run, plan
from assets.metrics.stage import PUBLISHED_TABLES
from assets.pool import WorkerDied, map_in_processes
from assets.settings import ConfigError, load_settings
from assets.submissions.intake import pending, receive
from pipelines.definitions import build_definitions

#: Console log level of the runs (Dagster's default, DEBUG, prints every event).
RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def _metadata(result: dg.ExecuteInProcessResult, node: str) -> dict[str, Any]:
    events = result.asset_materializations_for_node(node)
    if not events:
        return {}
    return {k: getattr(v, "value", v) for k, v in events[0].metadata.items()}


def run_nightly(
    config_file: str | os.PathLike[str] | None = None,
    instance: dg.DagsterInstance | None = None,
) -> int:
    """Fetch, harmonise what changed, combine, check and publish; 0 when all succeeded."""
    from pipelines.cli import summary

    started = time.monotonic()
    try:
        settings = load_settings(config_file)
        defs = build_definitions(settings)
    except ConfigError as exc:
        print(f"cdcompact: {exc}", file=sys.stderr)
        return 2
    if instance is None:
        if not os.environ.get("DAGSTER_HOME"):
            print("cdcompact: DAGSTER_HOME is not set (make run sets it)", file=sys.stderr)
            return 2
        Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
        instance = dg.DagsterInstance.get()
    print(f"cdcompact: configuration {settings.config_file}")
    print(f"cdcompact: Dagster instance {instance.root_directory or '(in memory)'}")

    stages: dict[str, float] = {}
    clock = time.monotonic()
    fetch = defs.resolve_job_def("iati_fetch_job").execute_in_process(
        instance=instance, raise_on_error=False, run_config=RUN_CONFIG
    )
    if not fetch.success:
        failure = next(
            (e.message for e in fetch.all_events if e.is_failure and e.message), "see the run"
        )
        print(f"cdcompact: fetching failed: {failure}", file=sys.stderr)
        return 2 if _config_failure(fetch) else 1
    results = last_run(settings.data_dir)
    counts = {
        s: sum(1 for r in results if r["status"] == s) for s in ("updated", "unchanged", "failed")
    }
    print(
        f"cdcompact: {len(results)} IATI datasets: {counts['updated']} updated, "
        f"{counts['unchanged']} unchanged, {counts['failed']} failed"
    )
    for record in results:
        if record["status"] == "failed":
            kept = "last good copy kept" if record["sha256"] else "no earlier copy"
            print(f"  failed  {record['key']}: {record['error']} ({kept})")
    to_harmonise = plan(settings, results)
    stages["fetch"], clock = time.monotonic() - clock, time.monotonic()
    if not to_harmonise:
        print("cdcompact: nothing changed: no dataset is harmonised again")

    failed: list[str] = []
    workers = min(settings.workers, len(to_harmonise))
    if workers > 1 and not instance.is_ephemeral:
        print(f"cdcompact: harmonising {len(to_harmonise)} datasets in {workers} processes")
        outcomes = map_in_processes(
            _dataset_run,
            to_harmonise,
            workers,
            initializer=_start_dataset_worker,
            initargs=(None if config_file is None else str(config_file),),
            on_restart=lambda n: print(
                f"cdcompact: a worker process stopped abruptly; {n} unfinished datasets run again",
                file=sys.stderr,
            ),
        )
        for index, outcome in outcomes:
            key = to_harmonise[index]
            if isinstance(outcome, WorkerDied):
                print(f"  [{index + 1}/{len(to_harmonise)}] {key}: run FAILED ({outcome.message})")
                failed.append(key)
                continue
            _, success, mark = outcome
            print(f"  [{index + 1}/{len(to_harmonise)}] {key}: {mark if success else 'run FAILED'}")
            if not success:
                failed.append(key)
    else:
        _DATASET_WORKER.update(defs=defs, instance=instance)
        for index, key in enumerate(to_harmonise, start=1):
            key, success, mark = _dataset_run(key)
            print(f"  [{index}/{len(to_harmonise)}] {key}: {mark if success else 'run FAILED'}")
            if not success:
                failed.append(key)
    stages["datasets"], clock = time.monotonic() - clock, time.monotonic()
    if failed:
        print(f"cdcompact: {len(failed)} dataset runs failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    new = receive(settings)
    waiting = pending(settings)
    known = set(instance.get_dynamic_partitions("submissions"))
    missing = [k for k in waiting if k not in known]
    if missing:
        instance.add_dynamic_partitions("submissions", missing)
    if new or waiting:
        print(f"cdcompact: submissions: {len(new)} new in the inbox, {len(waiting)} to check")
    submission_job = defs.resolve_job_def("submission_job")
    for key in waiting:
        run = submission_job.execute_in_process(
            instance=instance, partition_key=key, raise_on_error=False, run_config=RUN_CONFIG
        )
        meta = _metadata(run, "submission")
        shown = f"{meta.get('status')}: {meta.get('n_accepted')} of {meta.get('n_records')} rows"
        print(f"  {meta.get('source_file', key)}: {shown if run.success else 'run FAILED'}")
        if not run.success:
            failed.append(key)
    if failed:
        print(f"cdcompact: {len(failed)} submission runs failed", file=sys.stderr)
        return 1
    stages["submissions"], clock = time.monotonic() - clock, time.monotonic()
    tables = defs.resolve_job_def("iati_tables_job").execute_in_process(
        instance=instance, raise_on_error=False, run_config=RUN_CONFIG
    )
    if not tables.success:
        print(
            "cdcompact: combining, checking or publishing failed; see the run in Dagster",
            file=sys.stderr,
        )
        return 1
    stages["tables, checks and release"] = time.monotonic() - clock
    out = tables_dir(settings.data_dir)
    print(summary(read_tables(out, PUBLISHED_TABLES), out))
    release = _metadata(tables, "data_release")
    if release.get("status") == "published":
        print(f"published release {release['version']}: {release['location']}")
    elif release:
        print(f"no change since release {release['version']}: nothing published")
    if release.get("quality_report"):
        print(f"data-quality report: {release['quality_report']}")
    shown = " · ".join(f"{name} {seconds:.1f} s" for name, seconds in stages.items())
    print(f"cdcompact: stages: {shown}")
    print(f"cdcompact: nightly job finished in {time.monotonic() - started:.1f} s")
    return 0


_DATASET_WORKER: dict[str, Any] = {}


def _start_dataset_worker(config_file: str | None) -> None:
    """Once per worker process: the definitions and the instance in $DAGSTER_HOME."""
    _DATASET_WORKER["defs"] = build_definitions(load_settings(config_file))
    _DATASET_WORKER["instance"] = dg.DagsterInstance.get()


def _dataset_run(key: str) -> tuple[str, bool, str]:
    """One dataset partition's run (``iati_dataset_job``), recorded in the instance; the
    same code whether it runs here or in a worker process."""
    run = (
        _DATASET_WORKER["defs"]
        .resolve_job_def("iati_dataset_job")
        .execute_in_process(
            instance=_DATASET_WORKER["instance"],
            partition_key=key,
            raise_on_error=False,
            run_config=RUN_CONFIG,
        )
    )
    return key, run.success, str(_metadata(run, "iati_dataset").get("status", "done"))


def _config_failure(result: dg.ExecuteInProcessResult) -> bool:
    return any(
        SourceConfigError.__name__ in (e.message or "") for e in result.all_events if e.is_failure
    )
