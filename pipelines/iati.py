"""Dagster assets of the IATI stage: thin wrappers over the pure modules of
:mod:`assets.iati`, :mod:`assets.harmonise` and :mod:`assets.metrics`.

- ``iati_exchange_rates``, ``iati_codelists``, ``iati_schemas``: reference data.
- ``iati_fetch``: every configured dataset into the raw store, a partition each.
- ``iati_extract``: one dynamic partition per IATI dataset file, extracted once.
- ``iati_transform``: the harmonised tables (activities ... quarantine) transformed in
  DuckDB from every extracted dataset and submission, with the metrics and the
  blocking checks of every table.
"""

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pandas as pd
import pyarrow.parquet as pq
from dagster import AssetExecutionContext, OpExecutionContext
from dagster_duckdb import DuckDBResource

from assets.harmonise.combined import (
    MONEY_TABLES,
    combined_fingerprint,
    refresh_money,
    refreshed_sources,
    save_flags,
    transform,
)
from assets.harmonise.reuse import (
    first_future_disbursement,
    forget_state,
    rates_only_state,
    reusable_state,
    save_state,
    still_valid,
)
from assets.harmonise.schema import field_names, frame_of_arrow
from assets.harmonise.store import (
    copy_table,
    markdown_table,
    read_table,
    reference_dir,
    tables_dir,
    timings_path,
)
from assets.hashing import file_sha256
from assets.iati.codelists import Codelists, load_codelists
from assets.iati.conformance import IatiSchemas
from assets.iati.extract import EXTRACT_TABLES, read_summary
from assets.iati.fetching import (
    codelists_folder,
    conformance_key,
    extract_batches,
    extract_datasets,
    fetch_datasets,
    last_run,
    load_schemas,
    plan,
    preflight,
    rate_files,
    raw_store,
    record_schemas,
    schemas_folder,
)
from assets.iati.harmonise import ALL_TABLES, HarmoniseOptions
from assets.iati.rates import ExchangeRates, load_exchange_rates
from assets.iati.transform import IatiInput
from assets.metrics.sql import table_order as combined_order
from assets.metrics.stage import METRIC_TABLES, PUBLISHED_TABLES, add_metrics, table_order
from assets.settings import ConfigError, Settings
from assets.warehouse import attach_tables, quote, set_up
from expectations.batch_cache import BatchCache
from expectations.outcomes import TableValidation
from expectations.store import (
    DATA_DOCS,
    GX_BATCHES,
    load_validations,
    quality_work_dir,
    save_validations,
)
from pipelines.checks import (
    expectation_check_results,
    expectation_check_specs,
    schema_check_results_from,
    schema_check_specs,
    schema_check_summaries,
)
from pipelines.resources import CompactConfig

IATI_DATASETS_NAME = "iati_datasets"
IATI_DATASETS = dg.DynamicPartitionsDefinition(name=IATI_DATASETS_NAME)
#: The asset a partition of which records one dataset's extraction.
IATI_DATASET = "iati_dataset"
#: At most this many datasets are extracted in one step: Dagster's bookkeeping of a step
#: costs about as much as extracting a typical file.
EXTRACT_BATCH = 64
#: With Celery, the batches a night's datasets are at least shared into (the workers
#: are not known to the run).
EXTRACT_SHARES = 8
FETCH_STATUSES = ("updated", "unchanged", "failed", "missing", "removed")
REFERENCE_GROUP = "reference"
IATI_GROUP = "iati"
HARMONISED_GROUP = "harmonised"
METRICS_GROUP = "metrics"
PREVIEW_ROWS = 5


def _preview(frame: pd.DataFrame, columns: list[str] | None = None) -> dg.MetadataValue:
    shown = frame[columns] if columns else frame
    return dg.MetadataValue.md(markdown_table(shown, PREVIEW_ROWS))


@dg.asset(
    group_name=REFERENCE_GROUP,
    kinds={"pandas", "parquet"},
    description="IMF monthly exchange rates (currency units per USD) the run converts with.",
)
def iati_exchange_rates(
    context: AssetExecutionContext, compact: CompactConfig
) -> dg.MaterializeResult:
    settings = compact.settings()
    files, fetched = rate_files(settings)
    rates = load_exchange_rates(files)
    frame = rates.to_frame()
    write_table_plain(frame, reference_dir(settings.data_dir) / "exchange_rates.parquet")
    for warning in rates.warnings[:20]:
        context.log.warning(warning)
    coverage = rates.coverage()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(frame),
            "currencies": len(coverage),
            "files": dg.MetadataValue.json({str(p): file_sha256(p) for p in files}),
            "fetched": dg.MetadataValue.json(fetched),
            "coverage": dg.MetadataValue.json({c: list(v) for c, v in sorted(coverage.items())}),
            "warnings": len(rates.warnings),
        },
    )


@dg.asset(
    group_name=REFERENCE_GROUP,
    kinds={"pandas", "parquet"},
    description="IATI codelists (code, name, status, version) used for names and checks.",
)
def iati_codelists(compact: CompactConfig) -> dg.MaterializeResult:
    settings = compact.settings()
    folder, fetched = codelists_folder(settings)
    codelists = load_codelists(folder) if folder else Codelists()
    frame = codelists.to_frame()
    write_table_plain(frame, reference_dir(settings.data_dir) / "codelists.parquet")
    per_list = frame.groupby("codelist").size().to_dict() if len(frame) else {}
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(frame),
            "codelists": dg.MetadataValue.json({k: int(v) for k, v in per_list.items()}),
            "folder": str(folder) if folder else "none",
            "fetched": dg.MetadataValue.json(fetched),
        },
    )


@dg.asset(
    group_name=REFERENCE_GROUP,
    kinds={"xml"},
    description="The official IATI activity XML Schemas (one per version) every IATI file "
    "is checked against; fetched and cached like the codelists when configured as a URL.",
)
def iati_schemas(context: AssetExecutionContext, compact: CompactConfig) -> dg.MaterializeResult:
    settings = compact.settings()
    folder, fetched = schemas_folder(settings)
    schemas = IatiSchemas.from_dir(folder) if folder else None
    fingerprint = schemas.fingerprint() if schemas else None
    record_schemas(settings, folder, fingerprint)
    for version in fetched:
        if version.get("error"):
            context.log.warning(f"IATI schema {version.get('name')}: {version['error']}")
    if schemas is None:
        context.log.warning(
            "no IATI schemas configured (reference.iati_schemas): files are not checked "
            "against the IATI XML Schema"
        )
    return dg.MaterializeResult(
        metadata={
            "folder": str(folder) if folder else "none",
            "versions": dg.MetadataValue.json(list(schemas.versions) if schemas else []),
            "fingerprint": fingerprint or "none",
            "fetched": dg.MetadataValue.json(fetched),
        }
    )


def write_table_plain(frame: pd.DataFrame, path: Path) -> None:
    """Reference data is not a schema table: write it as it is, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    frame.to_parquet(temporary, index=False)
    temporary.replace(path)


def load_reference(settings: Settings) -> tuple[ExchangeRates, Codelists]:
    """The reference data the reference assets stored last; before the first night has
    stored any (a submission received first), read from the configured sources as those
    assets read them."""
    folder = reference_dir(settings.data_dir)
    rates_file, codelists_file = folder / "exchange_rates.parquet", folder / "codelists.parquet"
    if rates_file.exists():
        rates = ExchangeRates.from_frame(pd.read_parquet(rates_file))
    else:
        rates = load_exchange_rates(rate_files(settings)[0])
    if codelists_file.exists():
        codelists = Codelists.from_frame(pd.read_parquet(codelists_file))
    else:
        lists_folder = codelists_folder(settings)[0]
        codelists = load_codelists(lists_folder) if lists_folder else Codelists()
    return rates, codelists


@dg.asset(
    group_name=IATI_GROUP,
    kinds={"python"},
    description="Fetch every configured IATI dataset into the raw store (conditional "
    "requests, sha256, last good copy kept on failure); iati_datasets_sensor then "
    "registers a partition for each.",
)
def iati_fetch(context: AssetExecutionContext, compact: CompactConfig) -> dg.MaterializeResult:
    settings = compact.settings()
    try:
        preflight(settings)
    except ConfigError as exc:
        raise dg.Failure(
            description=f"configuration error, nothing was fetched:\n{exc}",
            allow_retries=False,
        ) from exc
    results = fetch_datasets(settings)
    to_harmonise = plan(settings, results)
    counts = {s: sum(1 for r in results if r["status"] == s) for s in FETCH_STATUSES}
    for result in results:
        if result["status"] == "failed":
            kept = "the last good copy is kept" if result["sha256"] else "no earlier copy"
            context.log.warning(f"{result['key']}: {result['error']} ({kept})")
        elif result["status"] in ("missing", "removed"):
            context.log.warning(f"{result['key']} {result['status']}: {result['error']}")
    gone = counts["missing"] + counts["removed"]
    if not to_harmonise and not gone:
        context.log.info(f"nothing changed: {len(results)} datasets, none to harmonise again")
    elif not to_harmonise:
        context.log.info(
            f"no dataset to harmonise again, but {counts['missing']} missing and "
            f"{counts['removed']} removed from their sources"
        )
    failures = [
        {"key": r["key"], "error": r["error"], "last_good_kept": bool(r["sha256"])}
        for r in results
        if r["status"] == "failed"
    ]
    return dg.MaterializeResult(
        metadata={
            "datasets": len(results),
            **{f"fetch/{status}": count for status, count in counts.items()},
            "to_harmonise": dg.MetadataValue.json(to_harmonise),
            "failures": dg.MetadataValue.json(failures),
            "missing": dg.MetadataValue.json(
                {r["key"]: r["error"] for r in results if r["status"] in ("missing", "removed")}
            ),
        }
    )


_OPTIONS: dict[tuple[str, str], HarmoniseOptions] = {}


def extract_options(settings: Settings) -> HarmoniseOptions:
    """What extracting needs of this run's reference data (the codelists and schemas the
    conformance check reads), loaded once per process: a worker that runs many dataset
    partitions reads them again only when they change."""
    key = (str(settings.data_dir), conformance_key(settings))
    options = _OPTIONS.get(key)
    if options is None:
        folder = reference_dir(settings.data_dir)
        codelists = Codelists.from_frame(pd.read_parquet(folder / "codelists.parquet"))
        options = HarmoniseOptions.from_settings(settings, None, codelists, load_schemas(settings))
        _OPTIONS.clear()
        _OPTIONS[key] = options
    return options


def extract_metadata(extracted: IatiInput) -> dict[str, Any]:
    """Dagster metadata of one extracted dataset: what was read, or why it was not."""
    if extracted.rejection is not None:
        return {
            "status": "rejected",
            "rule": extracted.rejection.rule,
            "reason": extracted.rejection.reason,
        }
    assert extracted.extract is not None
    summary = read_summary(extracted.extract)
    metadata: dict[str, Any] = {
        "status": "rejected" if summary["rejected_rule"] else "extracted",
        "sha256": str(summary["sha256"]),
        "extractor_version": int(summary["extractor_version"]),
        **{
            name: int(summary[name] or 0)
            for name in ("n_records", "n_accepted", "n_quarantined", "rejected_parts")
        },
    }
    if summary["rejected_rule"]:
        metadata["rule"] = str(summary["rejected_rule"])
        metadata["reason"] = str(summary["rejected_message"])
    written = summary["tables"] or []
    for table in EXTRACT_TABLES:
        if table != "file":
            path = extracted.extract / f"{table}.parquet"
            metadata[f"rows/{table}"] = pq.read_metadata(path).num_rows if table in written else 0
    if extracted.conformance is not None and extracted.conformance.exists():
        metadata["rows/conformance"] = pq.read_metadata(extracted.conformance).num_rows
    return metadata


iati_dataset = dg.AssetSpec(
    IATI_DATASET,
    group_name=IATI_GROUP,
    kinds={"parquet"},
    partitions_def=IATI_DATASETS,
    deps=[iati_fetch],
    description="One IATI dataset's extraction, a partition per dataset: recorded by the "
    "step of iati_extract that extracted it (rows per table, or the rule that rejected "
    "the file and why). iati_datasets_sensor registers the partitions.",
)


@dg.op(
    ins={"fetched": dg.In(dg.Nothing)},
    out=dg.DynamicOut(list),
    description="The datasets whose copy is not extracted yet, shared out into batches: "
    "a step each.",
)
def extract_plan(context: OpExecutionContext, compact: CompactConfig) -> Any:
    settings = compact.settings()
    to_extract = plan(settings, last_run(settings.data_dir))
    sizes = {k: r.bytes for k, r in raw_store(settings).records().items()}
    shares = settings.workers if settings.executor.kind == "multiprocess" else EXTRACT_SHARES
    batches = extract_batches(to_extract, sizes, EXTRACT_BATCH, shares=shares)
    if to_extract:
        context.log.info(f"extracting {len(to_extract)} datasets in {len(batches)} steps")
    else:
        context.log.info("nothing to extract: every dataset's copy is extracted already")
    width = len(str(len(batches)))
    for index, batch in enumerate(batches, start=1):
        yield dg.DynamicOutput(batch, mapping_key=f"batch_{index:0{width}d}")


@dg.op(
    retry_policy=dg.RetryPolicy(max_retries=1),
    description="Extract a batch of datasets (each once per copy and extractor version), "
    "recording each as a partition of iati_dataset. A step whose process dies is retried "
    "once; what it extracted before is not extracted again.",
)
def extract_batch(
    context: OpExecutionContext, compact: CompactConfig, batch: list[str]
) -> dict[str, int]:
    settings = compact.settings()
    options = extract_options(settings)
    counts = {"extracted": 0, "rejected": 0}
    failed: dict[str, str] = {}
    for key, outcome in extract_datasets(settings, batch, options):
        if isinstance(outcome, Exception):  # one dataset's failure must not hide the others'
            failed[key] = f"{type(outcome).__name__}: {outcome}"
            context.log.error(f"{key}: {failed[key]}")
            continue
        metadata = extract_metadata(outcome)
        counts[metadata["status"]] += 1
        if metadata["status"] == "rejected":
            context.log.warning(f"{key} rejected: {metadata['reason']}")
        context.log_event(
            dg.AssetMaterialization(asset_key=IATI_DATASET, partition=key, metadata=metadata)
        )
    if failed:
        raise dg.Failure(
            description=f"{len(failed)} of {len(batch)} datasets could not be extracted: "
            + "; ".join(f"{key}: {why}" for key, why in failed.items()),
            metadata={"failed": dg.MetadataValue.json(failed)},
            allow_retries=False,
        )
    shown = batch[0] if len(batch) == 1 else f"{batch[0]} ... {batch[-1]}"
    context.log.info(
        f"{shown} ({len(batch)} datasets): {counts['extracted']} extracted, "
        f"{counts['rejected']} rejected"
    )
    return counts


@dg.op(
    out=dg.Out(dg.Nothing),
    description="Once every batch is extracted: the night's counts.",
)
def extract_collect(counts: list[dict[str, int]]) -> dg.Output[None]:
    totals = {status: sum(c[status] for c in counts) for status in ("extracted", "rejected")}
    return dg.Output(
        None, metadata={"datasets": sum(totals.values()), "batches": len(counts), **totals}
    )


@dg.graph_asset(
    group_name=IATI_GROUP,
    kinds={"python", "parquet"},
    ins={
        "codelists": dg.AssetIn(key=iati_codelists.key, dagster_type=dg.Nothing),
        "schemas": dg.AssetIn(key=iati_schemas.key, dagster_type=dg.Nothing),
        "fetched": dg.AssetIn(key=iati_fetch.key, dagster_type=dg.Nothing),
    },
    description="Every IATI dataset whose last good copy is not extracted yet, extracted "
    "(values as published, a Parquet file per table with rows, keyed by the file's sha256 "
    "and the extractor's version) and checked against the IATI schema and codelists: "
    "batches of datasets fanned out as steps, which the run's executor spreads over "
    "processes or Celery workers; new exchange rates or CD rules never extract a file "
    "again.",
)
def iati_extract(codelists: Any, schemas: Any, fetched: Any) -> Any:
    return extract_collect(extract_plan([codelists, schemas, fetched]).map(extract_batch).collect())


HARMONISED_SPECS = [
    dg.AssetSpec(
        table,
        group_name=HARMONISED_GROUP,
        kinds={"duckdb", "parquet"},
        deps=[iati_extract, iati_exchange_rates, dg.AssetKey("submission")],
        description=f"Harmonised `{table}` table (schema/{table}.json), transformed in DuckDB "
        "from every extracted IATI dataset and every submission.",
    )
    for table in ALL_TABLES
] + [
    dg.AssetSpec(
        table,
        group_name=METRICS_GROUP,
        kinds={"duckdb", "parquet"},
        deps=[iati_extract, iati_exchange_rates, dg.AssetKey("submission")],
        description=f"`{table}` (schema/{table}.json): alignment and duplication metrics "
        "computed from the harmonised tables (../shared/docs/metrics.md).",
    )
    for table in METRIC_TABLES
]


def _table_metadata(
    con: duckdb.DuckDBPyConnection, relation: str, out: Path, table: str, order: str
) -> dict[str, Any]:
    """A published table's Dagster metadata, from the relation it was written from."""
    name = quote(relation)
    rows = con.execute(f"SELECT count(*) FROM {name}").fetchone()
    metadata: dict[str, Any] = {
        "dagster/row_count": int(rows[0]) if rows else 0,
        "path": str(out / f"{table}.parquet"),
        "preview": _preview(
            frame_of_arrow(
                con.sql(
                    f"SELECT {', '.join(quote(c) for c in field_names(table))} FROM {name} "
                    f"ORDER BY {order} LIMIT {PREVIEW_ROWS}"
                ).to_arrow_table()
            )
        ),
    }
    if table == "sources":
        rejected = con.sql(f"SELECT source_file, reason FROM {name} WHERE status = 'rejected'").df()
        metadata["rejected_files"] = dg.MetadataValue.md(
            markdown_table(rejected, len(rejected)) if len(rejected) else "none"
        )
        counts = con.execute(
            f"SELECT status, count(*) FROM {name} GROUP BY status ORDER BY count(*) DESC, status"
        ).fetchall()
        metadata["status_counts"] = dg.MetadataValue.json({str(k): int(v) for k, v in counts})
    if table == "activities":
        cd = con.execute(f"SELECT count(*) FILTER (WHERE is_cd) FROM {name}").fetchone()
        metadata["cd_activities"] = int(cd[0]) if cd else 0
    return metadata


def _reusable(
    settings: Settings, state: dict[str, Any]
) -> tuple[dict[str, int], dict[str, TableValidation]] | None:
    """Row counts and saved validations of the tables on disk, when every table and
    every result is there; else None (the tables are combined again)."""
    out = tables_dir(settings.data_dir)
    paths = {table: out / f"{table}.parquet" for table in PUBLISHED_TABLES}
    if not all(path.exists() for path in paths.values()):
        return None
    if set(state.get("schema_checks") or {}) != set(PUBLISHED_TABLES):
        return None
    rows = {table: pq.read_metadata(path).num_rows for table, path in paths.items()}
    validations = load_validations(
        quality_work_dir(settings.data_dir), {t: range(n) for t, n in rows.items()}
    )
    return None if validations is None else (rows, validations)


def _reused_results(
    context: AssetExecutionContext,
    settings: Settings,
    con: duckdb.DuckDBPyConnection,
    state: dict[str, Any],
    rows: dict[str, int],
    validations: dict[str, TableValidation],
    what: str = "no input changed",
) -> Any:
    out = tables_dir(settings.data_dir)
    sources = refreshed_sources(settings, read_table("sources", out / "sources.parquet"))
    con.register("refreshed_sources", sources)
    order = combined_order("sources")
    copy_table(con, "sources", "refreshed_sources", out / "sources.parquet", order)
    context.log.info(
        f"{what} since the tables were combined on {state['validated_on']}: "
        "the tables and their check results are reused; sources has tonight's fetch outcome"
    )
    for table in PUBLISHED_TABLES:
        if table == "sources":
            metadata = _table_metadata(con, "refreshed_sources", out, table, order)
        else:
            metadata = {"dagster/row_count": rows[table], "path": str(out / f"{table}.parquet")}
        metadata["reused"] = True
        yield dg.MaterializeResult(asset_key=table, metadata=metadata)
    yield from schema_check_results_from(state["schema_checks"])
    yield from expectation_check_results(validations)


@dg.multi_asset(
    specs=HARMONISED_SPECS,
    check_specs=[
        *schema_check_specs(PUBLISHED_TABLES),
        *expectation_check_specs(PUBLISHED_TABLES),
    ],
    can_subset=False,
)
def iati_transform(
    context: AssetExecutionContext, compact: CompactConfig, warehouse: DuckDBResource
) -> Any:
    """Combine every fetched dataset and processed submission into the harmonised tables,
    flag double counting and compute the alignment and duplication metrics, all in one
    DuckDB connection, and write each table from there; then check the tables as written.
    On a night when no input changed, reuse the tables and check results of the last one."""
    # Great Expectations is loaded here, not with the code location: a process that only
    # fetches or extracts never pays for it (about 2.5 s of the code location's 4 s)
    from expectations.runner import validate_tables

    settings = compact.settings()
    out = tables_dir(settings.data_dir)
    work = quality_work_dir(settings.data_dir)
    today = dt.date.today()
    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    with warehouse.get_connection() as con:
        set_up(con)
        try:
            fingerprint = combined_fingerprint(settings)
            state = reusable_state(out, fingerprint, today)
            reuse = _reusable(settings, state) if state is not None else None
            if state is not None and reuse is not None:
                seconds["reuse"] = time.perf_counter() - clock
                yield from _reused_results(context, settings, con, state, *reuse)
                timings_path(settings.data_dir).write_text(json.dumps(seconds) + "\n")
                return
            apart_from_rates = combined_fingerprint(settings, with_rates=False)
            prior = rates_only_state(out, apart_from_rates)
            moved = refresh_money(con, settings, out) if prior is not None else None
            unchanged: tuple[str, ...] = ()
            if prior is not None and moved is not None:
                seconds["money"], clock = time.perf_counter() - clock, time.perf_counter()
                why = (
                    "only the exchange rates changed"
                    if prior["fingerprint"] != fingerprint
                    else "a disbursement has fallen due"
                )
                context.log.info(
                    f"{why} since the tables were combined on {prior['validated_on']}: the "
                    f"money is converted again ({moved} values or warnings changed)"
                )
                reuse = _reusable(settings, prior) if not moved else None
                if reuse is not None and still_valid(prior, today):
                    yield from _reused_results(
                        context, settings, con, prior, *reuse, what="no figure changed"
                    )
                    save_state(
                        out,
                        fingerprint,
                        dt.date.fromisoformat(prior["validated_on"]),
                        prior.get("valid_until"),
                        prior["schema_checks"],
                        apart_from_rates,
                    )
                    timings_path(settings.data_dir).write_text(json.dumps(seconds) + "\n")
                    return
                # the tables that only the money could change are rewritten
                unchanged = tuple(t for t in ALL_TABLES if t not in MONEY_TABLES)
                forget_state(out)
            else:
                forget_state(out)
                transform(con, settings)
                save_flags(con, out)
                seconds["combine"], clock = time.perf_counter() - clock, time.perf_counter()
            add_metrics(con, settings.metrics)
            seconds["metrics"], clock = time.perf_counter() - clock, time.perf_counter()
        except LookupError as exc:
            raise dg.Failure(description=str(exc)) from exc
        for table in PUBLISHED_TABLES:
            relation = f"c_{table}"
            # in the order the rows were combined in (sorted by key, then file and place)
            order = table_order(con, table)
            if table not in unchanged:
                rows = copy_table(con, table, relation, out / f"{table}.parquet", order)
                context.log.info(f"{table}: {rows} rows")
            yield dg.MaterializeResult(
                asset_key=table, metadata=_table_metadata(con, relation, out, table, order)
            )
        valid_until = first_future_disbursement(con, "c_transactions", today)
        for table in PUBLISHED_TABLES:
            con.execute(f"DROP TABLE IF EXISTS {quote('c_' + table)}")
        seconds["write"], clock = time.perf_counter() - clock, time.perf_counter()
        batches = BatchCache(work / GX_BATCHES)
        # The checks read the tables as written, each row by its number in the file.
        attach_tables(con, out, PUBLISHED_TABLES, row_numbers=True)
        summaries = schema_check_summaries(con, PUBLISHED_TABLES)
        seconds["schema checks"], clock = time.perf_counter() - clock, time.perf_counter()
        validations = validate_tables(
            con,
            PUBLISHED_TABLES,
            today=today,
            data_docs_dir=work / DATA_DOCS,
            cache=batches,
            workers=settings.workers,
        )
    save_validations(work, validations)
    seconds["great expectations"] = time.perf_counter() - clock
    context.log.info(
        f"Great Expectations: {sum(batches.validated.values())} batches validated, "
        f"{sum(batches.reused.values())} unchanged since the last run"
    )
    yield from schema_check_results_from(summaries)
    yield from expectation_check_results(validations)
    save_state(out, fingerprint, today, valid_until, summaries, apart_from_rates)
    timings = " · ".join(f"{name} {value:.1f} s" for name, value in seconds.items())
    context.log.info(f"iati_transform stages: {timings}")
    timings_path(settings.data_dir).write_text(json.dumps(seconds) + "\n", encoding="utf-8")
