"""Configuration: config/compact.yaml (or CDCOMPACT_CONFIG) read into typed settings.

Paths are resolved against the project root, never the current directory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_CONFIG = "config/compact.yaml"


class ConfigError(ValueError):
    """The configuration file is missing, unreadable or says something impossible."""


def project_root() -> Path:
    """The checkout holding config/, schema/ and demo/ (CDCOMPACT_HOME overrides)."""
    env = os.environ.get("CDCOMPACT_HOME")
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class IatiSource:
    """One configured IATI source adapter (``kind`` says which)."""

    name: str
    kind: str
    paths: tuple[Path, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CdRules:
    """Capacity-development classification rules (config ``cd_classification``)."""

    technical_cooperation_aid_types: frozenset[str]
    ftc_flag: bool
    cd_sectors: frozenset[str]
    keywords: dict[str, tuple[str, ...]]
    modalities: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class PublishSettings:
    """Where and how releases are published (config ``publish``)."""

    target: str  # local | s3
    local_dir: Path
    s3_bucket: str | None
    s3_prefix: str
    s3_endpoint_url: str | None
    s3_region: str | None
    title: str
    description: str
    license_name: str
    license_url: str
    base_url: str | None


def over_size_limit(size: int, limit: int) -> str:
    """How a file over ``fetch.max_file_mb`` is described, wherever it is refused."""
    return (
        f"the file is {size / 2**20:,.1f} MB, over the limit of {limit / 2**20:,.0f} MB "
        "(fetch.max_file_mb)"
    )


@dataclass(frozen=True)
class FetchSettings:
    """How downloads behave (config ``fetch``) and where raw files are kept (``storage.raw``)."""

    connect_timeout: float
    read_timeout: float
    retries: int
    max_bytes: int
    raw_target: str  # local | s3
    raw_s3_bucket: str | None
    raw_s3_prefix: str
    raw_s3_endpoint_url: str | None
    raw_s3_region: str | None


@dataclass(frozen=True)
class SubmissionSettings:
    """Where country reports and partner submissions arrive (config ``submissions``)."""

    inbox_target: str  # local | s3
    inbox_dir: Path
    s3_bucket: str | None
    s3_prefix: str
    s3_endpoint_url: str | None
    s3_region: str | None


#: Update frequencies the freshness states know (HDX's list).
FREQUENCIES = ("daily", "weekly", "fortnightly", "monthly", "quarterly", "semiannually", "annually")
#: Kinds of contributor the quality report judges.
CONTRIBUTOR_KINDS = ("publisher", "country", "partner")


@dataclass(frozen=True)
class QualitySettings:
    """How the data-quality report judges contributors (config ``quality``)."""

    #: Expected update frequency per kind of contributor (HDX freshness states).
    freshness: dict[str, str]
    #: Years of forward-looking budgets judged (the report's year and the next ones).
    forward_years: int
    #: Runs kept in the trend (quality/history.json).
    history_runs: int
    #: Conformance findings kept per file and check (xsd, codelist); the rest are counted.
    max_findings: int


@dataclass(frozen=True)
class MetricsSettings:
    """Alignment and duplication metrics (config ``metrics``)."""

    #: Minimum score (sector overlap x date overlap x text similarity) of an
    #: ``overlapping_effort`` pair.
    overlap_threshold: float
    #: Multiply the score by the similarity of titles and descriptions.
    overlap_use_text: bool
    #: Published in every metrics row: bump it when a definition changes.
    method_version: str


@dataclass(frozen=True)
class WarehouseSettings:
    """DuckDB, the engine of everything after parsing (config ``warehouse``)."""

    #: DuckDB's own memory (``memory_limit``): past it, joins, sorts and aggregates
    #: spill to ``temp_directory`` instead of failing.
    memory_limit: str = "512MB"
    #: Where DuckDB spills (``temp_directory``); default ``<data_dir>/duckdb-tmp``.
    temp_directory: Path | None = None
    #: DuckDB's threads; 0 = one per CPU.
    threads: int = 0


@dataclass(frozen=True)
class ProfileSettings:
    """Country and partner profile pages of every release (config ``profiles``)."""

    #: Languages of the pages (English always, without a suffix; the others get
    #: .<lang>.html); each needs publish/i18n/<lang>.json.
    languages: tuple[str, ...] = ("en", "fr")
    #: Peer groups: kind (region, income...) -> group name -> country codes.
    peer_groups: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)


@dataclass(frozen=True)
class Settings:
    """Everything the pipeline reads from configuration."""

    config_file: Path
    root: Path
    compact_name: str
    countries: tuple[str, ...]
    data_dir: Path
    schedule_cron: str
    schedule_timezone: str
    iati_sources: tuple[IatiSource, ...]
    preferred_languages: tuple[str, ...]
    codelists_dir: Path | None
    codelists_url: str | None
    #: Official IATI activity XML Schemas: a folder with <version>/iati-activities-schema.xsd,
    #: or a URL template with {version}; None = files are not checked against the schema.
    iati_schemas_dir: Path | None
    iati_schemas_url: str | None
    iati_schema_versions: tuple[str, ...]
    exchange_rate_files: tuple[Path, ...]
    exchange_rate_urls: tuple[str, ...]
    exchange_rates_credit: str | None
    rate_fallback_months: int
    cd_rules: CdRules
    publish: PublishSettings
    fetch: FetchSettings
    submissions: SubmissionSettings
    quality: QualitySettings
    metrics: MetricsSettings
    #: Processes that extract IATI datasets side by side, and that validate batches
    #: with Great Expectations (config ``run.workers``, env CDCOMPACT_WORKERS; 0 = one
    #: per CPU).
    workers: int = 1
    profiles: ProfileSettings = field(default_factory=ProfileSettings)
    warehouse: WarehouseSettings = field(default_factory=WarehouseSettings)

    @property
    def schema_dir(self) -> Path:
        return self.root / "schema"

    @property
    def duckdb_temp_directory(self) -> Path:
        """Where DuckDB spills: ``warehouse.temp_directory``, else ``<data_dir>/duckdb-tmp``."""
        return self.warehouse.temp_directory or self.data_dir / "duckdb-tmp"


def _resolve(root: Path, value: str | os.PathLike[str]) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (root / path).resolve()


def _is_url(value: object) -> bool:
    return str(value).startswith(("http://", "https://"))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read configuration: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return data


def _workers(run: dict[str, Any], path: Path) -> int:
    raw = os.environ.get("CDCOMPACT_WORKERS") or run.get("workers", 0)
    try:
        workers = int(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{path}: run.workers must be a whole number, not {raw!r}") from None
    if workers < 0:
        raise ConfigError(f"{path}: run.workers must be 0 (one per CPU) or more, not {workers}")
    return workers or max(1, os.cpu_count() or 1)


def _section(data: dict[str, Any], name: str, path: Path) -> dict[str, Any]:
    value = data.get(name) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: section '{name}' must be a mapping")
    return value


def _phrases(value: Any, where: str, path: Path) -> dict[str, tuple[str, ...]]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, list) for v in value.values()):
        raise ConfigError(f"{path}: {where} must map a name to a list of phrases")
    return {str(k): tuple(str(p) for p in v) for k, v in value.items()}


def load_settings(config_file: str | os.PathLike[str] | None = None) -> Settings:
    """Read the configuration; ``config_file`` beats CDCOMPACT_CONFIG beats the default.

    A file other than the default is layered over the default section by
    section, so config/live.yaml only says what differs.
    """
    root = project_root()
    default_path = root / DEFAULT_CONFIG
    chosen = config_file or os.environ.get("CDCOMPACT_CONFIG")
    path = _resolve(root, chosen) if chosen else default_path
    data = _read_yaml(default_path) if default_path.exists() else {}
    if path != default_path:
        data.update(_read_yaml(path))
    elif not default_path.exists():
        raise ConfigError(f"{path}: configuration file not found")

    compact = _section(data, "compact", path)
    storage = _section(data, "storage", path)
    schedule = _section(data, "schedule", path)
    iati = _section(data, "iati", path)
    reference = _section(data, "reference", path)
    rules = _section(data, "cd_classification", path)
    publish = _section(data, "publish", path)
    fetch = _section(data, "fetch", path)
    submissions = _section(data, "submissions", path)
    quality = _quality(_section(data, "quality", path), path)
    metrics = _metrics(_section(data, "metrics", path), path)
    workers = _workers(_section(data, "run", path), path)
    inbox_s3 = submissions.get("s3") or {}
    if not isinstance(inbox_s3, dict):
        raise ConfigError(f"{path}: submissions.s3 must be a mapping")
    raw = storage.get("raw") or {}
    raw_s3 = raw.get("s3") or {} if isinstance(raw, dict) else {}
    if not isinstance(raw, dict) or not isinstance(raw_s3, dict):
        raise ConfigError(f"{path}: storage.raw and storage.raw.s3 must be mappings")
    try:
        fetch_settings = FetchSettings(
            connect_timeout=float(fetch.get("connect_timeout", 10)),
            read_timeout=float(fetch.get("read_timeout", 60)),
            retries=int(fetch.get("retries", 4)),
            max_bytes=int(float(fetch.get("max_file_mb", 100)) * 1024 * 1024),
            raw_target=str(raw.get("target", "local")),
            raw_s3_bucket=str(raw_s3["bucket"]) if raw_s3.get("bucket") else None,
            raw_s3_prefix=str(raw_s3.get("prefix") or ""),
            raw_s3_endpoint_url=str(raw_s3["endpoint_url"]) if raw_s3.get("endpoint_url") else None,
            raw_s3_region=str(raw_s3["region"]) if raw_s3.get("region") else None,
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: fetch settings must be numbers: {exc}") from exc
    s3 = publish.get("s3") or {}
    if not isinstance(s3, dict):
        raise ConfigError(f"{path}: publish.s3 must be a mapping")
    publish_dir = os.environ.get("CDCOMPACT_PUBLISH_DIR") or publish.get("local_dir", "var/publish")

    data_dir_value = os.environ.get("CDCOMPACT_DATA_DIR") or storage.get("data_dir", "var/data")

    sources: list[IatiSource] = []
    for position, raw in enumerate(iati.get("sources") or [], start=1):
        if not isinstance(raw, dict) or "kind" not in raw:
            raise ConfigError(f"{path}: iati.sources item {position} needs a 'kind'")
        options = {k: v for k, v in raw.items() if k not in {"name", "kind", "paths"}}
        sources.append(
            IatiSource(
                name=str(raw.get("name") or f"source-{position}"),
                kind=str(raw["kind"]),
                paths=tuple(_resolve(root, p) for p in raw.get("paths") or []),
                options=options,
            )
        )

    codelists = reference.get("codelists")
    schemas = os.environ.get("CDCOMPACT_IATI_SCHEMAS") or reference.get("iati_schemas")
    if schemas and _is_url(schemas) and "{version}" not in str(schemas):
        raise ConfigError(f"{path}: reference.iati_schemas must contain {{version}} when a URL")
    schema_versions = reference.get("iati_schema_versions") or list(IATI_VERSIONS)
    rates = reference.get("exchange_rates") or []
    fallback = reference.get("rate_fallback_months", 12)
    if not isinstance(fallback, int) or fallback < 0:
        raise ConfigError(f"{path}: reference.rate_fallback_months must be a whole number >= 0")

    countries = tuple(str(c).upper() for c in compact.get("countries") or [])
    return Settings(
        config_file=path,
        root=root,
        compact_name=str(compact.get("name", "Capacity Development Compact")),
        countries=countries,
        data_dir=_resolve(root, data_dir_value),
        schedule_cron=str(schedule.get("cron", "0 2 * * *")),
        schedule_timezone=str(schedule.get("timezone", "UTC")),
        iati_sources=tuple(sources),
        preferred_languages=tuple(str(x) for x in iati.get("preferred_languages") or ["en"]),
        codelists_dir=_resolve(root, codelists) if codelists and not _is_url(codelists) else None,
        codelists_url=str(codelists) if codelists and _is_url(codelists) else None,
        iati_schemas_dir=_resolve(root, schemas) if schemas and not _is_url(schemas) else None,
        iati_schemas_url=str(schemas) if schemas and _is_url(schemas) else None,
        iati_schema_versions=tuple(str(v) for v in schema_versions),
        exchange_rate_files=tuple(_resolve(root, p) for p in rates if not _is_url(p)),
        exchange_rate_urls=tuple(str(p) for p in rates if _is_url(p)),
        exchange_rates_credit=str(reference["exchange_rates_credit"])
        if reference.get("exchange_rates_credit")
        else None,
        rate_fallback_months=fallback,
        cd_rules=CdRules(
            technical_cooperation_aid_types=frozenset(
                str(x) for x in rules.get("technical_cooperation_aid_types") or []
            ),
            ftc_flag=bool(rules.get("ftc_flag", True)),
            cd_sectors=frozenset(str(x) for x in rules.get("cd_sectors") or []),
            keywords=_phrases(rules.get("keywords"), "cd_classification.keywords", path),
            modalities=_phrases(rules.get("modalities"), "cd_classification.modalities", path),
        ),
        publish=PublishSettings(
            target=str(
                os.environ.get("CDCOMPACT_PUBLISH_TARGET") or publish.get("target", "local")
            ),
            local_dir=_resolve(root, publish_dir),
            s3_bucket=str(s3["bucket"]) if s3.get("bucket") else None,
            s3_prefix=str(s3.get("prefix") or ""),
            s3_endpoint_url=os.environ.get("CDCOMPACT_S3_ENDPOINT_URL")
            or (str(s3["endpoint_url"]) if s3.get("endpoint_url") else None),
            s3_region=str(s3["region"]) if s3.get("region") else None,
            title=str(publish.get("title") or compact.get("name") or "cdcompact"),
            description=str(publish.get("description") or ""),
            license_name=str(publish.get("license", "CC-BY-4.0")),
            license_url=str(
                publish.get("license_url", "https://creativecommons.org/licenses/by/4.0/")
            ),
            base_url=str(publish["base_url"]) if publish.get("base_url") else None,
        ),
        fetch=fetch_settings,
        submissions=SubmissionSettings(
            inbox_target=str(submissions.get("target", "local")),
            inbox_dir=_resolve(
                root, os.environ.get("CDCOMPACT_INBOX_DIR") or submissions.get("inbox", "var/inbox")
            ),
            s3_bucket=str(inbox_s3["bucket"]) if inbox_s3.get("bucket") else None,
            s3_prefix=str(inbox_s3.get("prefix") or ""),
            s3_endpoint_url=str(inbox_s3["endpoint_url"]) if inbox_s3.get("endpoint_url") else None,
            s3_region=str(inbox_s3["region"]) if inbox_s3.get("region") else None,
        ),
        quality=quality,
        metrics=metrics,
        profiles=_profiles(_section(data, "profiles", path), path, root, countries),
        workers=workers,
        warehouse=_warehouse(_section(data, "warehouse", path), path, root),
    )


_MEMORY = re.compile(r"^\s*\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$", re.IGNORECASE)


def _warehouse(section: dict[str, Any], path: Path, root: Path) -> WarehouseSettings:
    memory = str(
        os.environ.get("CDCOMPACT_DUCKDB_MEMORY_LIMIT") or section.get("memory_limit") or "512MB"
    )
    if not _MEMORY.match(memory):
        raise ConfigError(
            f"{path}: warehouse.memory_limit must be an amount such as 1GB or 512MB, not {memory!r}"
        )
    threads = section.get("threads", 0)
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 0:
        raise ConfigError(f"{path}: warehouse.threads must be 0 (one per CPU) or more")
    temp = os.environ.get("CDCOMPACT_DUCKDB_TEMP_DIR") or section.get("temp_directory")
    return WarehouseSettings(
        memory_limit=memory.replace(" ", ""),
        temp_directory=_resolve(root, temp) if temp else None,
        threads=threads,
    )


_LANGUAGE = re.compile(r"^[a-z]{2,3}$")


def _profiles(
    section: dict[str, Any], path: Path, root: Path, countries: tuple[str, ...]
) -> ProfileSettings:
    languages = section.get("languages", ["en", "fr"])
    if not isinstance(languages, list) or not languages:
        raise ConfigError(f"{path}: profiles.languages must be a list such as [en, fr]")
    for language in languages:
        if not isinstance(language, str) or not _LANGUAGE.match(language):
            raise ConfigError(
                f"{path}: profiles.languages: {language!r} is not a language code such as fr"
            )
        if not (root / "publish" / "i18n" / f"{language}.json").is_file():
            raise ConfigError(
                f"{path}: profiles.languages: no labels for {language!r} "
                f"(add publish/i18n/{language}.json, a copy of en.json translated)"
            )
    raw_groups = section.get("peer_groups") or {}
    if not isinstance(raw_groups, dict):
        raise ConfigError(f"{path}: profiles.peer_groups must map a kind to its groups")
    groups: dict[str, dict[str, tuple[str, ...]]] = {}
    for kind, named in raw_groups.items():
        if not isinstance(named, dict):
            raise ConfigError(
                f"{path}: profiles.peer_groups.{kind} must map a group name to country codes"
            )
        seen: dict[str, str] = {}
        groups[str(kind)] = {}
        for name, members in named.items():
            if not isinstance(members, list):
                raise ConfigError(
                    f"{path}: profiles.peer_groups.{kind}.{name} must be a list of country codes"
                )
            codes = tuple(str(c).upper() for c in members)
            for code in codes:
                if countries and code not in countries:
                    raise ConfigError(
                        f"{path}: profiles.peer_groups.{kind}.{name}: {code} is not one of "
                        f"the compact's countries (compact.countries)"
                    )
                if code in seen:
                    raise ConfigError(
                        f"{path}: profiles.peer_groups.{kind}: {code} is in both "
                        f"{seen[code]!r} and {name!r}; a country belongs to one group of a kind"
                    )
                seen[code] = str(name)
            groups[str(kind)][str(name)] = codes
    return ProfileSettings(languages=tuple(languages), peer_groups=groups)


def _metrics(section: dict[str, Any], path: Path) -> MetricsSettings:
    threshold = section.get("overlap_threshold", 0.3)
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise ConfigError(f"{path}: metrics.overlap_threshold must be a number between 0 and 1")
    if not 0 <= threshold <= 1:
        raise ConfigError(f"{path}: metrics.overlap_threshold must be between 0 and 1")
    use_text = section.get("overlap_use_text", True)
    if not isinstance(use_text, bool):
        raise ConfigError(f"{path}: metrics.overlap_use_text must be true or false")
    return MetricsSettings(
        overlap_threshold=float(threshold),
        overlap_use_text=use_text,
        method_version=str(section.get("method_version", "1")),
    )


#: IATI activity standard versions that have an official XML Schema.
IATI_VERSIONS = ("1.01", "1.03", "1.04", "1.05", "2.01", "2.02", "2.03")


def _quality(section: dict[str, Any], path: Path) -> QualitySettings:
    freshness_value = section.get("freshness") or {}
    if not isinstance(freshness_value, dict):
        raise ConfigError(f"{path}: quality.freshness must map contributor kinds to frequencies")
    freshness = {"publisher": "quarterly", "country": "annually", "partner": "semiannually"}
    for kind, frequency in freshness_value.items():
        if kind not in CONTRIBUTOR_KINDS:
            raise ConfigError(
                f"{path}: quality.freshness: unknown contributor kind {kind!r} "
                f"(one of {', '.join(CONTRIBUTOR_KINDS)})"
            )
        if frequency not in FREQUENCIES:
            raise ConfigError(
                f"{path}: quality.freshness.{kind}: unknown frequency {frequency!r} "
                f"(one of {', '.join(FREQUENCIES)})"
            )
        freshness[kind] = str(frequency)
    numbers = {}
    for name, default, low in (
        ("forward_years", 3, 1),
        ("history_runs", 400, 1),
        ("max_findings", 1000, 1),
    ):
        value = section.get(name, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ConfigError(f"{path}: quality.{name} must be a whole number >= {low}")
        numbers[name] = value
    return QualitySettings(freshness=freshness, **numbers)
