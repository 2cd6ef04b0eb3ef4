"""The publish stage: the harmonised tables of a night, with their checks, the quality
report and the profiles, as a versioned release on the configured target (what
``cdcompact publish`` and the ``data_release`` asset run)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from assets.harmonise.reuse import saved_schema_checks
from assets.harmonise.schema import schema_version
from assets.harmonise.store import tables_dir
from assets.iati.codelists import CodelistError, Codelists, load_codelists
from assets.iati.fetching import empty_publishers
from assets.metrics.stage import PUBLISHED_TABLES
from assets.settings import Settings
from assets.storage.targets import Target
from assets.storage.targets_config import make_target
from assets.warehouse import attach_tables, connection
from expectations.batch_cache import BatchCache
from expectations.store import (
    DATA_DOCS,
    GX_BATCHES,
    load_validations,
    quality_work_dir,
    save_validations,
)
from publish.profiles import ProfileOptions
from publish.provenance import (
    code_version,
    codelists_folder,
    private_strings,
    reference_inputs,
)
from publish.quality import QualityInputs
from publish.release import PublishOutcome, ReleaseError, ReleaseOptions, publish_release
from publish.tables import StoredTables


def release_target(settings: Settings) -> Target:
    publish = settings.publish
    return make_target(
        publish.target,
        publish.local_dir,
        publish.s3_bucket,
        publish.s3_prefix,
        publish.s3_endpoint_url,
        publish.s3_region,
    )


def release_options(
    settings: Settings, run_id: str | None, quality: QualityInputs | None = None
) -> ReleaseOptions:
    publish = settings.publish
    codelists = run_codelists(settings)
    return ReleaseOptions(
        title=publish.title,
        description=publish.description,
        schema_version=schema_version(settings.schema_dir),
        license_name=publish.license_name,
        license_url=publish.license_url,
        base_url=publish.base_url,
        run_id=run_id,
        code_version=code_version(settings.root),
        inputs=tuple(reference_inputs(settings)),
        credits=(settings.exchange_rates_credit,) if settings.exchange_rates_credit else (),
        dictionary=settings.root / "docs" / "data-dictionary.md",
        quality=quality,
        project_root=settings.root,
        private=private_strings(settings),
        profiles=profile_options(settings, codelists),
        languages=settings.publish.languages,
        warehouse=replace(settings.warehouse, temp_directory=settings.duckdb_temp_directory),
        work_dir=settings.data_dir / "release",
        codelists=codelists,
    )


def run_codelists(settings: Settings) -> Codelists | None:
    """The codelists the run read, in all their languages; None when there are none or
    they cannot be read (the quality report says so; the release's codes then have no
    names)."""
    folder = codelists_folder(settings)
    if folder is None or not folder.is_dir():
        return None
    try:
        return load_codelists(folder)
    except CodelistError:
        return None


def profile_options(settings: Settings, codelists: Codelists | None) -> ProfileOptions:
    """Names from the codelists the run read, and the peer groups of the configuration."""
    countries: dict[str, str] = {}
    sectors: dict[str, str] = {}
    if codelists is not None:
        for codelist, names in (("Country", countries), ("Sector", sectors)):
            if codelists.has(codelist):
                for code in codelists.codes(codelist):
                    name = codelists.name(codelist, code)
                    if name:
                        names[code] = name
    return ProfileOptions(
        country_names=countries,
        sector_names=sectors,
        peer_groups=settings.profiles.peer_groups,
        countries=settings.countries,
    )


def publish_tables(settings: Settings, run_id: str | None) -> PublishOutcome:
    """Publish what the harmonised tables hold now (the CLI and the asset share this)."""
    folder = tables_dir(settings.data_dir)
    if not (folder / "sources.parquet").exists():
        raise ReleaseError(f"no harmonised tables in {folder}: run `cdcompact run` first")
    stored = StoredTables(folder, PUBLISHED_TABLES)
    work = quality_work_dir(settings.data_dir)
    sizes = {table: range(stored.rows(table)) for table in stored.names}
    validations = load_validations(work, sizes)
    docs: Path | None = work / DATA_DOCS
    if validations is None:  # tables of an earlier run, or checked by other code: check now
        from expectations.runner import validate_tables  # Great Expectations: only when needed

        with connection(settings) as con:
            attach_tables(con, folder, PUBLISHED_TABLES, row_numbers=True)
            validations = validate_tables(
                con,
                PUBLISHED_TABLES,
                data_docs_dir=docs,
                cache=BatchCache(work / GX_BATCHES),
                workers=settings.workers,
            )
        save_validations(work, validations)
    quality = QualityInputs(
        validations=validations,
        settings=settings.quality,
        run_id=run_id,
        data_docs_dir=docs,
        schema_checks=saved_schema_checks(folder),
        publishers_without_datasets=tuple(
            sorted(
                {name for names in empty_publishers(settings.data_dir).values() for name in names}
            )
        ),
    )
    return publish_release(
        stored, release_target(settings), release_options(settings, run_id, quality)
    )
