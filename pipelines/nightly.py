"""``cdcompact run``: the nightly chain once, now, on the instance in $DAGSTER_HOME.

The same jobs the schedule and sensors launch, executed one after the other in
this process and recorded in the instance's run storage: fetch (with the
reference data), the extraction of every dataset whose copy is not extracted yet
(ranges of dataset partitions, a run each, in a pool of processes), then the
transform, the checks and the release.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import dagster as dg

from assets.harmonise.store import tables_dir
from assets.iati.fetching import extract_ranges, last_run, plan, preflight, raw_store
from assets.pool import WorkerDied, map_in_processes
from assets.settings import ConfigError, Settings, load_settings
from assets.submissions.intake import pending, receive
from pipelines.alerts import alert_on_run
from pipelines.definitions import build_definitions
from pipelines.iati import EXTRACT_BATCH, IATI_DATASETS_NAME
from pipelines.resources import resources
from pipelines.schedules import RANGE_END, RANGE_START, register_datasets
from publish.summary import summary

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
    started = time.monotonic()
    try:
        settings = load_settings(config_file)
        preflight(settings)
        defs = build_definitions(settings)
    except ConfigError as exc:
        print(
            f"cdcompact: configuration error, nothing was fetched or published:\n{exc}",
            file=sys.stderr,
        )
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
    alert_on_run(instance, fetch)
    if fetch.success:  # as the daemon: iati_datasets_sensor registers the partitions
        register_datasets(instance, fetch, resources(settings)["compact"])
    if not fetch.success:
        failure = next(
            (e.message for e in fetch.all_events if e.is_failure and e.message), "see the run"
        )
        print(f"cdcompact: fetching failed: {failure}", file=sys.stderr)
        return 1
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
    to_extract = plan(settings, results)
    stages["fetch"], clock = time.monotonic() - clock, time.monotonic()
    if not to_extract:
        print("cdcompact: nothing to extract: every dataset's copy is extracted already")
    failed = _extract(settings, defs, instance, config_file, to_extract)
    stages["datasets"], clock = time.monotonic() - clock, time.monotonic()
    if failed:
        print(
            f"cdcompact: {len(failed)} datasets could not be extracted: {', '.join(failed)}",
            file=sys.stderr,
        )
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
        alert_on_run(instance, run)
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
    alert_on_run(instance, tables)
    if not tables.success:
        print(
            "cdcompact: combining, checking or publishing failed; see the run in Dagster",
            file=sys.stderr,
        )
        return 1
    stages["tables, checks and release"] = time.monotonic() - clock
    print(summary(settings, tables_dir(settings.data_dir)))
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


def _extract(
    settings: Settings,
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    config_file: str | os.PathLike[str] | None,
    to_extract: list[str],
) -> list[str]:
    """Run ``iati_extract_job`` over the datasets to extract, a range of partitions per run
    (:func:`extract_ranges`), in a pool of ``run.workers`` processes; the keys that failed.

    Every dataset is recorded as a materialised partition of its run. A run whose process
    dies is run again; if it dies again, its datasets run one per run, so that only a
    dataset that kills its own process fails."""
    if not to_extract:
        return []
    order = instance.get_dynamic_partitions(IATI_DATASETS_NAME)
    sizes = {k: r.bytes for k, r in raw_store(settings).records().items()}
    workers = min(settings.workers, len(to_extract))
    parallel = workers > 1 and not instance.is_ephemeral
    ranges = extract_ranges(
        order, to_extract, sizes, EXTRACT_BATCH, shares=workers if parallel else 1
    )
    where = f"{workers} processes" if parallel else "this process"
    print(f"cdcompact: extracting {len(to_extract)} datasets in {len(ranges)} runs, in {where}")
    planned = set(to_extract)
    position = {key: index for index, key in enumerate(order)}

    def members(span: tuple[str, str]) -> list[str]:
        first, last = position[span[0]], position[span[1]]
        return [k for k in order[first : last + 1] if k in planned]

    failed: list[str] = []
    if not parallel:
        _EXTRACT_WORKER.update(defs=defs, instance=instance)
        for index, span in enumerate(ranges, start=1):
            _, success, mark = _extract_run(span)
            _report(index, len(ranges), span, members(span), mark if success else "run FAILED")
            if not success:
                failed.extend(members(span))
        return failed
    died: list[str] = []
    outcomes = map_in_processes(
        _extract_run,
        ranges,
        workers,
        initializer=_start_extract_worker,
        initargs=(None if config_file is None else str(config_file),),
        on_restart=lambda n: print(
            f"cdcompact: a worker process stopped abruptly; {n} unfinished extraction runs "
            "run again",
            file=sys.stderr,
        ),
    )
    for index, outcome in outcomes:
        span = ranges[index]
        if isinstance(outcome, WorkerDied):
            _report(index + 1, len(ranges), span, members(span), f"run died ({outcome.message})")
            died.extend(members(span))
            continue
        _, success, mark = outcome
        _report(index + 1, len(ranges), span, members(span), mark if success else "run FAILED")
        if not success:
            failed.extend(members(span))
    if died:  # one dataset per run, so that only the one that kills its process fails
        print(f"cdcompact: {len(died)} datasets of runs that died run one per run")
        alone = [(key, key) for key in died]
        for index, outcome in map_in_processes(
            _extract_run,
            alone,
            workers,
            initializer=_start_extract_worker,
            initargs=(None if config_file is None else str(config_file),),
        ):
            key = died[index]
            if isinstance(outcome, WorkerDied):
                print(f"  {key}: run FAILED ({outcome.message})")
                failed.append(key)
            elif not outcome[1]:
                print(f"  {key}: run FAILED")
                failed.append(key)
    return failed


def _report(index: int, total: int, span: tuple[str, str], keys: list[str], mark: str) -> None:
    shown = span[0] if span[0] == span[1] else f"{span[0]} ... {span[1]}"
    print(f"  [{index}/{total}] {shown} ({len(keys)} datasets): {mark}")


_EXTRACT_WORKER: dict[str, Any] = {}


def _start_extract_worker(config_file: str | None) -> None:
    """Once per worker process: the definitions and the instance in $DAGSTER_HOME."""
    _EXTRACT_WORKER["defs"] = build_definitions(load_settings(config_file))
    _EXTRACT_WORKER["instance"] = dg.DagsterInstance.get()


def _extract_run(span: tuple[str, str]) -> tuple[tuple[str, str], bool, str]:
    """One run of ``iati_extract_job`` over a range of dataset partitions, recorded in the
    instance; the same code whether it runs here or in a worker process."""
    first, last = span
    job = _EXTRACT_WORKER["defs"].resolve_job_def("iati_extract_job")
    if first == last:
        run = job.execute_in_process(
            instance=_EXTRACT_WORKER["instance"],
            partition_key=first,
            raise_on_error=False,
            run_config=RUN_CONFIG,
        )
    else:
        run = job.execute_in_process(
            instance=_EXTRACT_WORKER["instance"],
            tags={RANGE_START: first, RANGE_END: last},
            raise_on_error=False,
            run_config=RUN_CONFIG,
        )
    alert_on_run(_EXTRACT_WORKER["instance"], run)
    metadata = _metadata(run, "iati_extract")
    if "datasets" in metadata:
        mark = f"{metadata.get('extracted', 0)} extracted, {metadata.get('rejected', 0)} rejected"
    else:
        mark = str(metadata.get("status", "done"))
    return span, run.success, mark
