"""The nightly IATI flow without Dagster: fetch, decide what to extract, list the inputs.

- :func:`fetch_datasets` runs every configured source adapter into the raw store
  and writes this run's results to ``<data_dir>/fetch/last_run.json``.
- :func:`plan` names the datasets whose last good copy has not been extracted yet
  (or not checked against tonight's IATI XML Schemas); only those are read.
- :func:`extract_datasets` extracts datasets' last good copies;
  :func:`extract_batches` shares the planned ones out into steps.
- :func:`dataset_inputs` gives every listed dataset as the transform reads it, and
  what tonight's fetch said of each (downloaded, revalidated, the last good copy kept
  after a failure or while missing from its source, removed, or failed with no copy).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from assets.fetch.http import HttpClient
from assets.fetch.rawstore import RawStore, StateRecord
from assets.fetch.reference import fetch_codelists, fetch_exchange_rates, fetch_iati_schemas
from assets.fetch.sources import (
    FetchResult,
    Limits,
    SourceConfigError,
    adapters_from_settings,
    fetch_all,
)
from assets.harmonise.combine import FetchOutcome
from assets.harmonise.store import reference_dir
from assets.iati.conformance import IatiSchemas
from assets.iati.extract import extract_dir, is_extracted, read_summary
from assets.iati.harmonise import (
    HarmoniseOptions,
    conformance_path,
    prepare_file,
    schema_check_key,
)
from assets.iati.transform import IatiInput, Rejection
from assets.settings import ConfigError, Settings, over_size_limit, project_root
from assets.storage.targets_config import make_target

LAST_RUN = "last_run.json"
#: Configured publishers each source's listing found no dataset of, this run.
EMPTY_PUBLISHERS = "empty_publishers.json"
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


def preflight(settings: Settings, environ: Mapping[str, str] | None = None) -> None:
    """Check what the configuration points at before anything is fetched or published:
    every IATI source can be built from its options, every local source folder and
    every configured reference file or folder exists. ConfigError lists each problem
    with the file (or variable) that set the key, and the key.

    Secrets are not checked here: a source whose secret is missing is reported by the
    fetch, and the other sources still run."""
    problems: list[str] = []
    with http_client(settings) as client:
        for index, source in enumerate(settings.iati_sources):
            key = f"iati.sources[{index}]"
            try:
                adapters_from_settings(
                    dataclasses.replace(settings, iati_sources=(source,)), client, environ=environ
                )
            except SourceConfigError as exc:
                problems.append(f"{settings.where('iati', 'sources', index)}: {key}: {exc}")
                continue
            if source.kind != "local":
                continue
            for position, path in enumerate(source.paths):
                # a named .xml file that is missing fails at fetch and keeps its last good
                # copy; anything else names a folder that must be there
                if not path.exists() and path.suffix.lower() != ".xml":
                    where = settings.where("iati", "sources", index, "paths", position)
                    problems.append(f"{where}: {key}.paths[{position}]: no such folder: {path}")
    names = [source.name for source in settings.iati_sources]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(
            f"{settings.where('iati', 'sources')}: iati.sources: two are named {name!r}"
        )
    for path in settings.exchange_rate_files:
        if not path.is_file():
            where = settings.where("reference", "exchange_rates")
            problems.append(f"{where}: reference.exchange_rates: no such file: {path}")
    for key, folder in (
        ("codelists", settings.codelists_dir),
        ("iati_schemas", settings.iati_schemas_dir),
    ):
        if folder is not None and not folder.is_dir():
            where = settings.where("reference", key)
            problems.append(f"{where}: reference.{key}: no such folder: {folder}")
    seed = settings.submissions.seed_dir
    if seed is not None and not seed.is_dir():
        where = settings.where("submissions", "seed")
        problems.append(f"{where}: submissions.seed: no such folder: {seed}")
    if problems:
        raise ConfigError("\n".join(problems))


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
        "checked_at": result.checked_at,
        "download": result.download,
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
        results = fetch_all(
            adapters, raw_store(settings), progress=progress, limits=Limits.from_settings(settings)
        )
    records = [_result_record(r) for r in results]
    empty = {a.name: list(a.empty_publishers) for a in adapters if a.empty_publishers}
    folder = fetch_dir(settings.data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for name, value in ((EMPTY_PUBLISHERS, empty), (LAST_RUN, records)):
        temporary = folder / f".{name}.tmp"
        temporary.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
        temporary.replace(folder / name)
    return records


def empty_publishers(data_dir: Path) -> dict[str, list[str]]:
    """The configured publishers of each source that had no activity dataset in the last
    fetch's listing (``{source: [publisher, ...]}``)."""
    path = fetch_dir(data_dir) / EMPTY_PUBLISHERS
    if not path.exists():
        return {}
    value: dict[str, list[str]] = json.loads(path.read_text(encoding="utf-8"))
    return value


def last_run(data_dir: Path) -> list[dict[str, Any]]:
    path = fetch_dir(data_dir) / LAST_RUN
    if not path.exists():
        return []
    value: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return value


def reference_fingerprint(settings: Settings, with_rates: bool = True) -> str:
    """What the transform depends on besides the extracted files: reference data and rules
    (without the exchange rates unless ``with_rates``)."""
    digest = hashlib.sha256()
    folder = reference_dir(settings.data_dir)
    names = ("exchange_rates.parquet", "codelists.parquet", SCHEMAS_MARKER)
    for name in names if with_rates else names[1:]:
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
                # how rates are looked up belongs with them (only money depends on it)
                "fallback": settings.rate_fallback_months if with_rates else None,
                "max_findings": settings.quality.max_findings,
                "max_bytes": settings.fetch.max_bytes,
            },
            sort_keys=True,
        ).encode()
    )
    return digest.hexdigest()


def conformance_key(settings: Settings) -> str:
    """What a file's XML Schema findings depend on besides its bytes: the IATI schemas this
    run stored and how many findings are listed. Exchange rates, codelists and the CD
    rules are not in it: they never make a file be read again."""
    path = reference_dir(settings.data_dir) / SCHEMAS_MARKER
    fingerprint = (
        json.loads(path.read_text(encoding="utf-8")).get("fingerprint") if (path.exists()) else None
    )
    return schema_check_key(fingerprint or "-", settings.quality.max_findings)


def iati_dir(data_dir: Path) -> Path:
    """Extracted IATI files (``extract/``) and their conformance findings (``conformance/``),
    content-addressed by sha256: a file is read again only when its bytes, the extractor or
    (for conformance alone) the IATI schemas and codelists change."""
    return data_dir / "iati"


def _needs_work(settings: Settings, record: StateRecord, key: str) -> bool:
    sha256 = record.sha256 or ""
    if record.bytes is not None and record.bytes > settings.fetch.max_bytes:
        return False  # refused as too large by the transform, never read
    root = iati_dir(settings.data_dir)
    if conformance_path(root / "conformance", key, sha256).exists():
        return False  # checked, so extracted
    if not is_extracted(root / "extract", sha256):
        return True
    summary = read_summary(extract_dir(root / "extract", sha256))
    return summary.get("rejected_rule") is None  # nothing to check in an unreadable file


def plan(settings: Settings, results: list[dict[str, Any]]) -> list[str]:
    """Datasets to extract: a good copy not extracted yet (or not checked against tonight's
    IATI XML Schemas). New exchange rates, codelists or CD rules plan nothing."""
    key = conformance_key(settings)
    records = raw_store(settings).records()
    to_extract = []
    for result in results:
        record = records.get(result["key"])
        if not result["sha256"] or record is None or not record.sha256:
            continue
        if _needs_work(settings, record, key):
            to_extract.append(result["key"])
    return to_extract


def shown_uri(uri: str) -> str:
    """A file inside the project as a relative path: no machine paths in published data."""
    prefix = project_root().as_uri() + "/"
    return uri[len(prefix) :] if uri.startswith(prefix) else uri


def extract_datasets(
    settings: Settings, keys: Sequence[str], options: HarmoniseOptions
) -> Iterator[tuple[str, IatiInput | Exception]]:
    """Extract each dataset's last good copy and check its conformance (each only when not
    done already for these bytes): what the transform will read of it, or why it failed.
    The raw store's state is read once, however many datasets there are."""
    store = raw_store(settings)
    records = store.records()
    key = conformance_key(settings)
    root = iati_dir(settings.data_dir)
    for name in keys:
        record = records.get(name)
        try:
            if record is None or not record.sha256:
                raise LookupError(f"dataset {name!r} has no good copy in {store.location}")
            yield (
                name,
                prepare_file(
                    store.local_path(record.sha256),
                    options,
                    root,
                    source_file=name,
                    uri=shown_uri(record.uri),
                    sha256=record.sha256,
                    conformance_key=key,
                ),
            )
        except Exception as exc:  # the caller says which dataset failed, and goes on
            yield name, exc


def extract_batches(
    planned: Sequence[str],
    sizes: Mapping[str, int | None],
    max_datasets: int,
    max_bytes: int = 64 * 2**20,
    shares: int = 1,
) -> list[list[str]]:
    """The planned datasets, in order, as batches of at most ``max_datasets`` and at most
    ``max_bytes`` of them, or a ``shares``-th of all (so that ``shares`` processes each
    get work; a larger file is a batch of its own)."""
    total = sum(sizes.get(name) or 0 for name in planned)
    if shares > 1:
        max_bytes = min(max_bytes, max(1, -(-total // shares)))
        max_datasets = min(max_datasets, max(1, -(-len(planned) // shares)))
    batches: list[list[str]] = []
    size = 0
    for name in planned:
        weight = sizes.get(name) or 0
        if batches and len(batches[-1]) < max_datasets and size + weight <= max_bytes:
            batches[-1].append(name)
            size += weight
        else:
            batches.append([name])
            size = weight
    return batches


def fetch_outcome(key: str, result: Mapping[str, Any], record: StateRecord | None) -> FetchOutcome:
    """What tonight's fetch says about a dataset's ``sources`` row: when its bytes were
    downloaded and where from, when the source was last asked, what happened on the wire
    (``download``), and a note when the last good copy stood in (the fetch failed, or the
    dataset is missing from its source)."""
    note = None
    fetched = record.fetched_at if record else "earlier"
    if result.get("status") == "failed":
        note = f"fetch failed ({result['error']}); the last good copy, fetched {fetched}, was used"
    elif result.get("status") == "missing":
        note = f"{result['error']}; the last good copy, fetched {fetched}, was used"
    return FetchOutcome(
        source_file=key,
        with_record=record is not None,
        fetched_at=record.fetched_at if record else None,
        checked_at=record.checked_at if record else None,
        http_etag=record.etag if record else None,
        uri=shown_uri(record.uri) if record else None,
        download=result.get("download"),
        note=note,
    )


def dataset_inputs(settings: Settings) -> tuple[list[IatiInput], list[FetchOutcome]]:
    """Every dataset of the last fetch as the transform reads it (its extracted folder and
    conformance findings, or why it has none), and tonight's fetch outcome of each."""
    root = iati_dir(settings.data_dir)
    key = conformance_key(settings)
    store = raw_store(settings)
    records = store.records()
    inputs: list[IatiInput] = []
    outcomes: list[FetchOutcome] = []
    for result in last_run(settings.data_dir):
        name = result["key"]
        if result["status"] == "removed":
            reason = str(result["error"])
            inputs.append(
                IatiInput(
                    name,
                    shown_uri(result["uri"]),
                    rejection=Rejection("removed_from_source", reason, f"not used: {reason}"),
                )
            )
            continue
        if not result["sha256"]:
            error = result["error"]
            inputs.append(
                IatiInput(
                    name,
                    shown_uri(result["uri"]),
                    rejection=Rejection(
                        "fetch_failed",
                        f"could not be fetched: {error}",
                        f"not fetched and no earlier copy: {error}",
                    ),
                )
            )
            continue
        record = records.get(name)
        outcomes.append(fetch_outcome(name, result, record))
        sha256 = record.sha256 if record and record.sha256 else result["sha256"]
        uri = shown_uri(record.uri if record else result["uri"])
        size = record.bytes if record and record.bytes is not None else None
        if size is None and not is_extracted(root / "extract", sha256):
            size = store.local_path(sha256).stat().st_size
        limit = settings.fetch.max_bytes
        if size is not None and size > limit:
            message = f"{over_size_limit(size, limit)}; it was not read"
            rejection = Rejection("too_large", message, f"file rejected: {message}", bytes=size)
            inputs.append(IatiInput(name, uri, rejection=rejection))
            continue
        if not is_extracted(root / "extract", sha256):
            raise LookupError(f"dataset {name!r} has not been extracted yet")
        folder = extract_dir(root / "extract", sha256)
        findings = conformance_path(root / "conformance", key, sha256)
        inputs.append(
            IatiInput(
                name, uri, extract=folder, conformance=findings if findings.exists() else None
            )
        )
    return inputs, outcomes


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
