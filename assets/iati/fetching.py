"""The nightly IATI flow without Dagster: fetch, decide what to harmonise, combine.

- :func:`fetch_datasets` runs every configured source adapter into the raw store
  and writes this run's results to ``<data_dir>/fetch/last_run.json``.
- :func:`plan` names the datasets whose last good copy (or the reference data
  and rules) changed since they were harmonised; only those are parsed again.
- :func:`harmonise_dataset` harmonises one dataset's last good copy.
- :func:`dataset_files` gives every listed dataset's tables, with what the
  fetch said written into ``sources``: ``unchanged`` datasets, failed
  downloads that kept their last good copy, and failures with no copy at all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from assets.fetch.http import HttpClient
from assets.fetch.rawstore import RawStore, StateRecord
from assets.fetch.reference import fetch_codelists, fetch_exchange_rates, fetch_iati_schemas
from assets.fetch.sources import FetchResult, adapters_from_settings, fetch_all
from assets.harmonise.schema import table_frame
from assets.harmonise.store import dataset_dir, read_tables, reference_dir, write_tables
from assets.iati.conformance import IatiSchemas
from assets.iati.harmonise import (
    ALL_TABLES,
    HarmonisedFile,
    HarmoniseOptions,
    harmonise_file,
)
from assets.settings import Settings, project_root
from publish.targets_config import make_target

LAST_RUN = "last_run.json"
MARKER = "harmonised.json"
#: Which IATI schema folder this run checks files against, and its fingerprint.
SCHEMAS_MARKER = "iati_schemas.json"


def fetch_dir(data_dir: Path) -> Path:
    return data_dir / "fetch"


def raw_store(settings: Settings) -> RawStore:
    """The content-addressed raw store the configuration names (``<data_dir>/raw`` by default)."""
    fetch = settings.fetch
    if fetch.raw_target == "local":
        return RawStore.local(settings.data_dir)
    target = make_target(
        fetch.raw_target,
        settings.data_dir,
        fetch.raw_s3_bucket,
        fetch.raw_s3_prefix,
        fetch.raw_s3_endpoint_url,
        fetch.raw_s3_region,
    )
    return RawStore(target, settings.data_dir / "raw-cache")


def http_client(settings: Settings) -> HttpClient:
    fetch = settings.fetch
    return HttpClient(
        timeout=(fetch.connect_timeout, fetch.read_timeout),
        retries=fetch.retries,
        max_bytes=fetch.max_bytes,
    )


def _result_record(result: FetchResult) -> dict[str, Any]:
    return {
        "key": result.ref.key,
        "source": result.ref.source_name,
        "kind": result.ref.kind,
        "uri": result.ref.uri,
        "publisher": result.ref.publisher,
        "status": result.status,
        "sha256": result.sha256,
        "error": result.error,
        "fetched_at": result.fetched_at,
        "etag": result.etag,
        "http_status": result.http_status,
        "warnings": list(result.warnings),
    }


def fetch_datasets(
    settings: Settings, progress: Callable[[FetchResult], None] | None = None
) -> list[dict[str, Any]]:
    """Fetch every configured dataset; this run's results (also saved for the combine step)."""
    with http_client(settings) as client:
        adapters = adapters_from_settings(settings, client)
        results = fetch_all(adapters, raw_store(settings), progress=progress)
    records = [_result_record(r) for r in results]
    folder = fetch_dir(settings.data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{LAST_RUN}.tmp"
    temporary.write_text(json.dumps(records, indent=2) + "\n", encoding="utf-8")
    temporary.replace(folder / LAST_RUN)
    return records


def last_run(data_dir: Path) -> list[dict[str, Any]]:
    path = fetch_dir(data_dir) / LAST_RUN
    if not path.exists():
        return []
    value: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return value


def reference_fingerprint(settings: Settings) -> str:
    """What harmonisation depends on besides the file: reference data and rules."""
    digest = hashlib.sha256()
    folder = reference_dir(settings.data_dir)
    for name in ("exchange_rates.parquet", "codelists.parquet", SCHEMAS_MARKER):
        path = folder / name
        digest.update(path.read_bytes() if path.exists() else b"-")
    rules = settings.cd_rules
    digest.update(
        json.dumps(
            {
                "tc": sorted(rules.technical_cooperation_aid_types),
                "ftc": rules.ftc_flag,
                "sectors": sorted(rules.cd_sectors),
                "keywords": rules.keywords,
                "modalities": rules.modalities,
                "languages": settings.preferred_languages,
                "fallback": settings.rate_fallback_months,
                "max_findings": settings.quality.max_findings,
            },
            sort_keys=True,
        ).encode()
    )
    return digest.hexdigest()


def _marker(data_dir: Path, key: str) -> dict[str, Any]:
    path = dataset_dir(data_dir, key) / MARKER
    if not path.exists():
        return {}
    value: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return value


def plan(settings: Settings, results: list[dict[str, Any]]) -> list[str]:
    """Datasets to harmonise: a good copy that differs from what was last harmonised."""
    fingerprint = reference_fingerprint(settings)
    to_harmonise = []
    for result in results:
        if not result["sha256"]:
            continue
        marker = _marker(settings.data_dir, result["key"])
        if marker.get("sha256") != result["sha256"] or marker.get("reference") != fingerprint:
            to_harmonise.append(result["key"])
    return to_harmonise


def shown_uri(uri: str) -> str:
    """A file inside the project as a relative path: no machine paths in published data."""
    prefix = project_root().as_uri() + "/"
    return uri[len(prefix) :] if uri.startswith(prefix) else uri


def harmonise_dataset(settings: Settings, key: str, options: HarmoniseOptions) -> HarmonisedFile:
    """Harmonise one dataset's last good copy and remember which copy that was."""
    store = raw_store(settings)
    record = store.last_good(key)
    if record is None or not record.sha256:
        raise LookupError(f"dataset {key!r} has no good copy in {store.location}")
    path = store.local_path(record.sha256)
    harmonised = harmonise_file(path, options, source_file=key, uri=shown_uri(record.uri))
    folder = dataset_dir(settings.data_dir, key)
    write_tables(harmonised.tables, folder)
    marker = {"sha256": record.sha256, "reference": reference_fingerprint(settings)}
    (folder / MARKER).write_text(json.dumps(marker) + "\n", encoding="utf-8")
    return harmonised


def _failed_without_copy(result: Mapping[str, Any]) -> HarmonisedFile:
    """A dataset that could not be fetched and has never had a good copy."""
    key = result["key"]
    tables = {t: table_frame(t, []) for t in ALL_TABLES}
    tables["sources"] = table_frame(
        "sources",
        [
            {
                "source_file": key,
                "source": "iati",
                "uri": shown_uri(result["uri"]),
                "status": "rejected",
                "reason": f"could not be fetched: {result['error']}",
                "n_records": 0,
                "n_accepted": 0,
                "n_quarantined": 0,
            }
        ],
    )
    tables["quarantine"] = table_frame(
        "quarantine",
        [
            {
                "source_file": key,
                "source_ref": "/",
                "table": "sources",
                "rule": "fetch_failed",
                "message": f"not fetched and no earlier copy: {result['error']}",
                "severity": "error",
            }
        ],
    )
    return HarmonisedFile(key, tables)


def _with_fetch_state(
    harmonised: HarmonisedFile, result: Mapping[str, Any], record: StateRecord | None
) -> HarmonisedFile:
    tables = dict(harmonised.tables)
    key = harmonised.source_file
    tables["sources"] = apply_fetch_state(
        harmonised.tables["sources"], {key: result}, {key: record} if record else {}
    )
    return HarmonisedFile(harmonised.source_file, tables)


def apply_fetch_state(
    sources: pd.DataFrame,
    results: Mapping[str, Mapping[str, Any]],
    records: Mapping[str, StateRecord],
) -> pd.DataFrame:
    """Datasets' ``sources`` rows (``source_file`` = dataset key) with tonight's fetch
    outcome: when and where from the copy was fetched, ``unchanged`` when it was
    fetched again without change, and a note when the fetch failed and the last good
    copy stands in. Rows of other keys are left as they are."""
    sources = sources.copy()
    keys = sources["source_file"].astype("string")
    with_record = keys.isin(list(records)).fillna(False).to_numpy()
    if with_record.any():
        picked = keys[with_record]
        sources.loc[with_record, "fetched_at"] = [records[k].fetched_at for k in picked]
        sources.loc[with_record, "http_etag"] = [records[k].etag for k in picked]
        sources.loc[with_record, "uri"] = [shown_uri(records[k].uri) for k in picked]
    status = keys.map(lambda k: results[k]["status"] if k in results else None)
    sources.loc[(status == "unchanged").fillna(False).to_numpy(), "status"] = "unchanged"
    failed = (status == "failed").fillna(False).to_numpy()
    if failed.any():
        reasons = []
        for key, reason in zip(keys[failed], sources.loc[failed, "reason"], strict=True):
            record = records.get(key)
            note = (
                f"fetch failed ({results[key]['error']}); the last good copy, fetched "
                f"{record.fetched_at if record else 'earlier'}, was used"
            )
            reasons.append(f"{reason}; {note}" if isinstance(reason, str) and reason else note)
        sources.loc[failed, "reason"] = reasons
    return table_frame("sources", sources)


def refresh_fetch_state(settings: Settings, sources: pd.DataFrame) -> pd.DataFrame:
    """The combined ``sources`` table of an earlier night with tonight's fetch outcome
    (used when the inputs did not change, so nothing else in the tables can have).

    The combining step marks a file ``rejected`` when every activity of it was also
    published in another file; that mark stands, as it does after a full combine."""
    results = {r["key"]: r for r in last_run(settings.data_dir) if r["sha256"]}
    iati = (sources["source"].astype("string") == "iati").fillna(False).to_numpy()
    rejected_as_copy = (
        (
            (sources["status"].astype("string") == "rejected")
            & (sources["n_accepted"] == 0)
            & sources["reason"].astype("string").str.contains("also published in another file")
        )
        .fillna(False)
        .to_numpy()
    )
    refreshed = apply_fetch_state(sources.loc[iati], results, raw_store(settings).records())
    out = sources.copy()
    for column in ("fetched_at", "http_etag", "uri", "status", "reason"):
        out.loc[iati, column] = refreshed[column].to_numpy()
    out.loc[rejected_as_copy, "status"] = "rejected"
    return table_frame("sources", out)


def dataset_files(settings: Settings) -> list[HarmonisedFile]:
    """Every dataset of the last fetch, with the fetch outcome in its ``sources`` row."""
    results = last_run(settings.data_dir)
    records = raw_store(settings).records()
    files = []
    for result in results:
        key = result["key"]
        folder = dataset_dir(settings.data_dir, key)
        if not result["sha256"]:
            files.append(_failed_without_copy(result))
            continue
        if not (folder / "sources.parquet").exists():
            raise LookupError(f"dataset {key!r} has not been harmonised yet")
        harmonised = HarmonisedFile(key, read_tables(folder, ALL_TABLES))
        files.append(_with_fetch_state(harmonised, result, records.get(key)))
    return files


def reference_cache(data_dir: Path) -> Path:
    """Fetched reference files (codelists, exchange rates), with their validators."""
    return reference_dir(data_dir) / "cache"


def rate_files(settings: Settings) -> tuple[list[Path], list[dict[str, Any]]]:
    """Exchange-rate files to load: configured files, then fetched URLs (last good kept).

    Returns the files and, for fetched ones, the version record of each download.
    """
    files = list(settings.exchange_rate_files)
    versions: list[dict[str, Any]] = []
    if settings.exchange_rate_urls:
        with http_client(settings) as client:
            for index, url in enumerate(settings.exchange_rate_urls, start=1):
                destination = reference_cache(settings.data_dir) / f"exchange-rates-{index}.csv"
                version = fetch_exchange_rates(client, destination, url)
                versions.append(version.to_dict())
                if version.path is None:
                    raise FileNotFoundError(
                        f"exchange rates {url} could not be fetched and there is no earlier "
                        f"copy: {version.error}"
                    )
                files.append(version.path)
    return files, versions


def codelists_folder(settings: Settings) -> tuple[Path | None, list[dict[str, Any]]]:
    """The codelists folder to load: configured, or fetched from the configured URL."""
    if settings.codelists_url is None:
        return settings.codelists_dir, []
    folder = reference_cache(settings.data_dir) / "codelists"
    with http_client(settings) as client:
        versions = [v.to_dict() for v in fetch_codelists(client, folder, settings.codelists_url)]
    missing = [v["name"] for v in versions if v["path"] is None]
    if missing:
        raise FileNotFoundError(
            f"codelists {', '.join(missing)} could not be fetched from {settings.codelists_url} "
            "and there is no earlier copy"
        )
    return folder, versions


def schemas_folder(settings: Settings) -> tuple[Path | None, list[dict[str, Any]]]:
    """The IATI schema folder to check files against: configured, or fetched from the
    configured URL template (a version that cannot be fetched keeps its last good copy;
    one never fetched is missing, and files of that version say which schema they got)."""
    if settings.iati_schemas_url is None:
        return settings.iati_schemas_dir, []
    folder = reference_cache(settings.data_dir) / "iati-schemas"
    with http_client(settings) as client:
        versions = fetch_iati_schemas(
            client, settings.iati_schemas_url, settings.iati_schema_versions, folder
        )
    return folder, [v.to_dict() for v in versions]


def record_schemas(settings: Settings, folder: Path | None, fingerprint: str | None) -> None:
    """Remember the schema folder of this run (read by :func:`load_schemas`)."""
    path = reference_dir(settings.data_dir) / SCHEMAS_MARKER
    path.parent.mkdir(parents=True, exist_ok=True)
    marker = {"folder": str(folder) if folder else None, "fingerprint": fingerprint}
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(marker, sort_keys=True) + "\n", encoding="utf-8")
    temporary.replace(path)


def load_schemas(settings: Settings) -> IatiSchemas | None:
    """The IATI schemas the reference step recorded; None when none are configured."""
    path = reference_dir(settings.data_dir) / SCHEMAS_MARKER
    if not path.exists():
        return None
    folder = json.loads(path.read_text(encoding="utf-8")).get("folder")
    return IatiSchemas.from_dir(Path(folder)) if folder else None
