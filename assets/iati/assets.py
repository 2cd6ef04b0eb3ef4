"""Dagster assets of the IATI stage: thin wrappers over the pure modules beside them.

- ``iati_exchange_rates`` and ``iati_codelists``: reference data, stored as Parquet.
- ``iati_dataset``: one dynamic partition per IATI dataset file, harmonised on its own.
- ``iati_harmonised``: the harmonised tables (activities ... quarantine) combined
  from every dataset partition the configuration names.
"""

from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
from dagster import AssetExecutionContext

from assets.harmonise.store import (
    dataset_dir,
    markdown_table,
    read_tables,
    reference_dir,
    tables_dir,
    write_table,
    write_tables,
)
from assets.iati.codelists import Codelists, load_codelists
from assets.iati.harmonise import (
    ALL_TABLES,
    HarmonisedFile,
    HarmoniseOptions,
    combine,
    harmonise_file,
)
from assets.iati.rates import ExchangeRates, load_exchange_rates
from assets.iati.sources import discover_datasets
from assets.settings import Settings, load_settings
from expectations.asset_checks import schema_check_results, schema_check_specs
from publish.provenance import file_sha256

IATI_DATASETS = dg.DynamicPartitionsDefinition(name="iati_datasets")
REFERENCE_GROUP = "reference"
IATI_GROUP = "iati"
HARMONISED_GROUP = "harmonised"
PREVIEW_ROWS = 5


class CompactConfig(dg.ConfigurableResource):
    """The compact's configuration file (empty: $CDCOMPACT_CONFIG or config/compact.yaml)."""

    config_file: str = ""

    def settings(self) -> Settings:
        return load_settings(self.config_file or None)


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
    rates = load_exchange_rates(list(settings.exchange_rate_files))
    frame = rates.to_frame()
    write_table_plain(frame, reference_dir(settings.data_dir) / "exchange_rates.parquet")
    for warning in rates.warnings[:20]:
        context.log.warning(warning)
    coverage = rates.coverage()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(frame),
            "currencies": len(coverage),
            "files": dg.MetadataValue.json(
                {str(p): file_sha256(p) for p in settings.exchange_rate_files}
            ),
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
    codelists = load_codelists(settings.codelists_dir) if settings.codelists_dir else Codelists()
    frame = codelists.to_frame()
    write_table_plain(frame, reference_dir(settings.data_dir) / "codelists.parquet")
    per_list = frame.groupby("codelist").size().to_dict() if len(frame) else {}
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(frame),
            "codelists": dg.MetadataValue.json({k: int(v) for k, v in per_list.items()}),
            "folder": str(settings.codelists_dir) if settings.codelists_dir else "none",
        },
    )


def write_table_plain(frame: pd.DataFrame, path: Path) -> None:
    """Reference data is not a schema table: write it as it is, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    frame.to_parquet(temporary, index=False)
    temporary.replace(path)


def load_reference(settings: Settings) -> tuple[ExchangeRates, Codelists]:
    """The reference data the reference assets stored for this run."""
    folder = reference_dir(settings.data_dir)
    rates = ExchangeRates.from_frame(pd.read_parquet(folder / "exchange_rates.parquet"))
    codelists = Codelists.from_frame(pd.read_parquet(folder / "codelists.parquet"))
    return rates, codelists


@dg.asset(
    group_name=IATI_GROUP,
    kinds={"pandas", "parquet"},
    partitions_def=IATI_DATASETS,
    deps=[iati_exchange_rates, iati_codelists],
    description="One IATI dataset file harmonised on its own (a partition per file).",
)
def iati_dataset(context: AssetExecutionContext, compact: CompactConfig) -> dg.MaterializeResult:
    settings = compact.settings()
    key = context.partition_key
    datasets = {d.key: d for d in discover_datasets(settings)}
    if key not in datasets:
        raise dg.Failure(
            description=f"dataset {key!r} is no longer named by the configured IATI sources "
            f"({settings.config_file})"
        )
    dataset = datasets[key]
    rates, codelists = load_reference(settings)
    options = HarmoniseOptions(
        rules=settings.cd_rules,
        rates=rates,
        codelists=codelists,
        preferred_languages=settings.preferred_languages,
        rate_fallback_months=settings.rate_fallback_months,
    )
    harmonised = harmonise_file(
        dataset.path, options, source_file=dataset.source_file, uri=dataset.uri
    )
    write_tables(harmonised.tables, dataset_dir(settings.data_dir, key))
    source = harmonised.source
    if source["status"] == "rejected":
        context.log.warning(f"{dataset.source_file} rejected: {source['reason']}")
    return dg.MaterializeResult(
        metadata={
            "status": str(source["status"]),
            "reason": str(source["reason"] or ""),
            "sha256": str(source["sha256"] or ""),
            "n_records": int(source["n_records"]),
            "n_accepted": int(source["n_accepted"]),
            "n_quarantined": int(source["n_quarantined"]),
            **{
                f"rows/{table}": len(frame)
                for table, frame in harmonised.tables.items()
                if table != "sources"
            },
        },
        data_version=dg.DataVersion(str(source["sha256"] or "rejected")),
    )


HARMONISED_SPECS = [
    dg.AssetSpec(
        table,
        group_name=HARMONISED_GROUP,
        kinds={"pandas", "parquet"},
        deps=[iati_dataset],
        description=f"Harmonised `{table}` table (schema/{table}.json), from every IATI dataset.",
    )
    for table in ALL_TABLES
]


@dg.multi_asset(
    specs=HARMONISED_SPECS, check_specs=schema_check_specs(ALL_TABLES), can_subset=False
)
def iati_harmonised(context: AssetExecutionContext, compact: CompactConfig) -> Any:
    """Combine every configured dataset's partition into the harmonised tables."""
    settings = compact.settings()
    datasets = discover_datasets(settings)
    missing = [
        d.key
        for d in datasets
        if not (dataset_dir(settings.data_dir, d.key) / "sources.parquet").exists()
    ]
    if missing:
        raise dg.Failure(
            description="these dataset partitions have not been harmonised yet: "
            + ", ".join(missing)
        )
    files = [
        HarmonisedFile(
            d.source_file, read_tables(dataset_dir(settings.data_dir, d.key), ALL_TABLES)
        )
        for d in datasets
    ]
    tables = combine(files)
    out = tables_dir(settings.data_dir)
    sources = tables["sources"]
    rejected = sources.loc[sources["status"] == "rejected", ["source_file", "reason"]]
    for table in ALL_TABLES:
        frame = tables[table]
        write_table(table, frame, out / f"{table}.parquet")
        metadata: dict[str, Any] = {
            "dagster/row_count": len(frame),
            "path": str(out / f"{table}.parquet"),
            "preview": _preview(frame),
        }
        if table == "sources":
            metadata["rejected_files"] = dg.MetadataValue.md(
                markdown_table(rejected, len(rejected)) if len(rejected) else "none"
            )
            metadata["status_counts"] = dg.MetadataValue.json(
                {str(k): int(v) for k, v in sources["status"].value_counts().items()}
            )
        if table == "activities":
            metadata["cd_activities"] = int(frame["is_cd"].fillna(False).sum())
        context.log.info(f"{table}: {len(frame)} rows")
        yield dg.MaterializeResult(asset_key=table, metadata=metadata)
    yield from schema_check_results(tables)
