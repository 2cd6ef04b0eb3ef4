"""Configuration: config/compact.yaml (or CDCOMPACT_CONFIG) read into typed settings.

The file is validated by pydantic models (:class:`ConfigFile`): an unknown key, a wrong
type or a value out of range is a :class:`ConfigError` naming the file and the key. A
chosen file is layered over config/compact.yaml key by key (:func:`merge`), and the
``CDCOMPACT_*`` variables (:data:`ENVIRONMENT`) over both. Paths are resolved against
the project root, never the current directory.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

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
    #: Languages of the pages (the catalogue, the quality report, the profiles): English
    #: always, without a suffix; the others get .<lang>.html, and each needs
    #: publish/locale/<lang>/LC_MESSAGES/messages.po.
    languages: tuple[str, ...] = ("en", "fr")


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
    #: Downloads at once, in all and from one host (``fetch.max_concurrent``,
    #: ``fetch.max_per_host``).
    max_concurrent: int = 8
    max_per_host: int = 2
    #: Nights a dataset missing from its source's listing keeps its last good copy before
    #: it is removed (``iati.keep_missing_nights``).
    keep_missing_nights: int = 3


@dataclass(frozen=True)
class SubmissionSettings:
    """Where country reports and partner submissions arrive (config ``submissions``)."""

    inbox_target: str  # local | s3
    inbox_dir: Path
    #: Submissions copied into an empty inbox on the first run (the demo's), or None.
    seed_dir: Path | None
    s3_bucket: str | None
    s3_prefix: str
    s3_endpoint_url: str | None
    s3_region: str | None


#: Update frequencies the freshness states know (HDX's list).
FrequencyName = Literal[
    "daily", "weekly", "fortnightly", "monthly", "quarterly", "semiannually", "annually"
]
#: Expected update frequency of each kind unless ``quality.freshness`` says otherwise.
DEFAULT_FRESHNESS = {"publisher": "quarterly", "country": "annually", "partner": "semiannually"}


@dataclass(frozen=True)
class Contact:
    """Whom the secretariat writes to about a contributor (config ``compact.contacts``)."""

    name: str
    email: str


@dataclass(frozen=True)
class QualitySettings:
    """How the data-quality report judges contributors (config ``quality``), and whom it
    expects data from (config ``compact``)."""

    #: Expected update frequency per kind of contributor (HDX freshness states).
    freshness: dict[str, str]
    #: Years of forward-looking budgets judged (the report's year and the next ones).
    forward_years: int
    #: Runs kept in the trend (quality/history.json).
    history_runs: int
    #: Conformance findings kept per file and check (xsd, codelist); the rest are counted.
    max_findings: int
    #: The compact's countries (ISO 3166-1 alpha-2) and IATI publishers (organisation
    #: identifiers): contributors of the report even when they sent nothing.
    countries: tuple[str, ...] = ()
    publishers: tuple[str, ...] = ()
    #: Contacts by country code or organisation identifier (publisher or partner).
    contacts: Mapping[str, Contact] = field(default_factory=dict)


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
class ExecutorSettings:
    """How the steps of a night's run are executed (config ``run.executor``, ``run.celery``).

    ``multiprocess``: each step in a process of its own on this machine, at most
    ``run.workers`` at once. ``celery``: each step a Celery task sent to ``queue`` on
    ``broker``, run by the workers that read it (``cdcompact worker``); results come
    back over ``backend``."""

    kind: str = "multiprocess"
    broker: str = "pyamqp://guest:guest@127.0.0.1:5672//"
    backend: str = "rpc://"
    #: The broker's queue the steps are sent to and the workers read.
    queue: str = "dagster"


@dataclass(frozen=True)
class ProfileSettings:
    """Country and partner profile pages of every release (config ``profiles``); their
    languages are ``publish.languages``."""

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
    executor: ExecutorSettings = field(default_factory=ExecutorSettings)
    profiles: ProfileSettings = field(default_factory=ProfileSettings)
    warehouse: WarehouseSettings = field(default_factory=WarehouseSettings)
    #: What each configuration file and variable set, in priority order (for
    #: :meth:`where`).
    origins: tuple[tuple[str, Mapping[str, Any]], ...] = field(
        default=(), compare=False, repr=False
    )

    def where(self, *loc: int | str) -> str:
        """The file (or variable) that set the key at ``loc``, for messages."""
        return _origin(self.origins, loc) if self.origins else str(self.config_file)

    @property
    def schema_dir(self) -> Path:
        return self.root / "schema"

    @property
    def duckdb_temp_directory(self) -> Path:
        """Where DuckDB spills: ``warehouse.temp_directory``, else ``<data_dir>/duckdb-tmp``."""
        return self.warehouse.temp_directory or self.data_dir / "duckdb-tmp"


#: IATI activity standard versions that have an official XML Schema.
IATI_VERSIONS = ("1.01", "1.03", "1.04", "1.05", "2.01", "2.02", "2.03")

# -- the configuration file, as typed models ------------------------------------------------
#
# Every section is a pydantic model that forbids keys it does not know, so a typo is an
# error naming the key instead of a setting silently left at its default. Values keep the
# YAML's types, except that numbers are read as text where text is expected (a sector
# code written 15110 is "15110").

_MEMORY = re.compile(r"^\s*\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$", re.IGNORECASE)
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


def _blank(value: Any) -> Any:
    """An empty YAML value (``key:`` or ``key: ""``) is the key not set."""
    return None if value == "" else value


class S3Section(_Section):
    """``s3`` of ``storage.raw``, ``submissions`` and ``publish``."""

    bucket: str | None = None
    prefix: str | None = None
    endpoint_url: str | None = None
    region: str | None = None

    _blanks = field_validator("bucket", "prefix", "endpoint_url", "region", mode="before")(_blank)


#: An e-mail address: one @, no spaces, a domain with a dot (what a mail client can send to).
_EMAIL = re.compile(r"^[^@\s<>(),;:\"]+@[^@\s<>(),;:\"]+\.[A-Za-z]{2,}$")


class ContactSection(_Section):
    """One ``compact.contacts`` entry."""

    name: str = Field(min_length=1)
    email: str

    @field_validator("name", "email", mode="before")
    @classmethod
    def _stripped(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not _EMAIL.match(value) or ".." in value.split("@", 1)[1]:
            raise ValueError(f"{value!r} is not an e-mail address such as name@example.org")
        return value


class CompactSection(_Section):
    name: str = "Capacity Development Compact"
    countries: list[str] = []
    publishers: list[str] = []
    contacts: dict[str, ContactSection] = {}

    @field_validator("countries", "publishers")
    @classmethod
    def _codes(cls, values: list[str]) -> list[str]:
        for value in values:
            if not value.strip() or value != value.strip():
                raise ValueError(f"{value!r} is not an identifier (blank or spaces around it)")
        return values


def _needs_bucket(target: str, s3: S3Section) -> None:
    if target == "s3" and not s3.bucket:
        raise PydanticCustomError("bucket", "target s3 needs s3.bucket")


class RawStorageSection(_Section):
    target: Literal["local", "s3"] = "local"
    s3: S3Section = S3Section()

    @model_validator(mode="after")
    def _bucket(self) -> RawStorageSection:
        _needs_bucket(self.target, self.s3)
        return self


class StorageSection(_Section):
    data_dir: str = "var/data"
    raw: RawStorageSection = RawStorageSection()


class WarehouseSection(_Section):
    memory_limit: str = "512MB"
    temp_directory: str | None = None
    threads: StrictInt = Field(default=0, ge=0)

    _blanks = field_validator("temp_directory", mode="before")(_blank)

    @field_validator("memory_limit")
    @classmethod
    def _memory(cls, value: str) -> str:
        if not _MEMORY.match(value):
            raise ValueError(f"must be an amount such as 1GB or 512MB, not {value!r}")
        return value.replace(" ", "")


class CelerySection(_Section):
    broker: str = ExecutorSettings.broker
    backend: str = ExecutorSettings.backend
    queue: str = Field(default=ExecutorSettings.queue, pattern=r"^[A-Za-z0-9_.-]+$")


class RunSection(_Section):
    #: 0 = one per CPU.
    workers: StrictInt = Field(default=0, ge=0)
    executor: Literal["multiprocess", "celery"] = "multiprocess"
    celery: CelerySection = CelerySection()


class SubmissionsSection(_Section):
    target: Literal["local", "s3"] = "local"
    inbox: str = "var/inbox"
    seed: str | None = None
    s3: S3Section = S3Section()

    _blanks = field_validator("seed", mode="before")(_blank)

    @model_validator(mode="after")
    def _bucket(self) -> SubmissionsSection:
        _needs_bucket(self.target, self.s3)
        return self


class FetchSection(_Section):
    connect_timeout: float = Field(default=10, gt=0)
    read_timeout: float = Field(default=60, gt=0)
    retries: StrictInt = Field(default=4, ge=0)
    max_file_mb: float = Field(default=100, gt=0)
    max_concurrent: StrictInt = Field(default=8, ge=1)
    max_per_host: StrictInt = Field(default=2, ge=1)


class PublishSection(_Section):
    target: Literal["local", "s3"] = "local"
    local_dir: str = "var/publish"
    s3: S3Section = S3Section()
    base_url: str | None = None
    title: str | None = None
    description: str | None = None
    license: str = "CC-BY-4.0"
    license_url: str = "https://creativecommons.org/licenses/by/4.0/"
    languages: list[str] = Field(default_factory=lambda: ["en", "fr"], min_length=1)

    _blanks = field_validator("base_url", "title", "description", mode="before")(_blank)

    @field_validator("languages")
    @classmethod
    def _languages(cls, value: list[str]) -> list[str]:
        for language in value:
            if not _LANGUAGE.match(language):
                raise ValueError(f"{language!r} is not a language code such as fr")
            catalogue = f"publish/locale/{language}/LC_MESSAGES/messages.po"
            if language != "en" and not (project_root() / catalogue).is_file():
                raise ValueError(
                    f"no translation for {language!r} (add {catalogue}, a translation of "
                    "the English messages such as publish/locale/fr/LC_MESSAGES/messages.po)"
                )
        return value

    @model_validator(mode="after")
    def _bucket(self) -> PublishSection:
        _needs_bucket(self.target, self.s3)
        return self


class ProfilesSection(_Section):
    peer_groups: dict[str, dict[str, list[str]]] = {}


class MetricsSection(_Section):
    overlap_threshold: float = Field(default=0.3, ge=0, le=1)
    overlap_use_text: StrictBool = True
    method_version: str = "1"


class QualitySection(_Section):
    freshness: dict[Literal["publisher", "country", "partner"], FrequencyName] = {}
    forward_years: StrictInt = Field(default=3, ge=1)
    history_runs: StrictInt = Field(default=400, ge=1)
    max_findings: StrictInt = Field(default=1000, ge=1)


class ScheduleSection(_Section):
    cron: str = "0 2 * * *"
    timezone: str = "UTC"


class SourceSection(BaseModel):
    """One ``iati.sources`` entry. The options beside ``name``, ``kind`` and ``paths``
    belong to the kind's adapter, which checks them (:mod:`assets.fetch.sources`)."""

    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)

    name: str | None = None
    kind: str
    paths: list[str] = []


class IatiSection(_Section):
    sources: list[SourceSection] = []
    preferred_languages: list[str] = ["en"]
    keep_missing_nights: StrictInt = Field(default=3, ge=0)


class ReferenceSection(_Section):
    codelists: str | None = None
    iati_schemas: str | None = None
    iati_schema_versions: list[str] = list(IATI_VERSIONS)
    exchange_rates: list[str] = []
    exchange_rates_credit: str | None = None
    rate_fallback_months: StrictInt = Field(default=12, ge=0)

    _blanks = field_validator("codelists", "iati_schemas", "exchange_rates_credit", mode="before")(
        _blank
    )

    @field_validator("iati_schemas")
    @classmethod
    def _schemas(cls, value: str | None) -> str | None:
        if value and _is_url(value) and "{version}" not in value:
            raise ValueError("must contain {version} when a URL")
        return value


class CdClassificationSection(_Section):
    technical_cooperation_aid_types: list[str] = []
    ftc_flag: StrictBool = True
    cd_sectors: list[str] = []
    keywords: dict[str, list[str]] = {}
    modalities: dict[str, list[str]] = {}


class ConfigFile(_Section):
    """The whole configuration file (config/compact.yaml documents every key)."""

    compact: CompactSection = CompactSection()
    storage: StorageSection = StorageSection()
    warehouse: WarehouseSection = WarehouseSection()
    run: RunSection = RunSection()
    submissions: SubmissionsSection = SubmissionsSection()
    fetch: FetchSection = FetchSection()
    publish: PublishSection = PublishSection()
    profiles: ProfilesSection = ProfilesSection()
    metrics: MetricsSection = MetricsSection()
    quality: QualitySection = QualitySection()
    schedule: ScheduleSection = ScheduleSection()
    iati: IatiSection = IatiSection()
    reference: ReferenceSection = ReferenceSection()
    cd_classification: CdClassificationSection = CdClassificationSection()

    @model_validator(mode="after")
    def _peer_groups(self) -> ConfigFile:
        countries = {c.upper() for c in self.compact.countries}
        for kind, named in self.profiles.peer_groups.items():
            seen: dict[str, str] = {}
            for name, members in named.items():
                for code in (c.upper() for c in members):
                    if countries and code not in countries:
                        raise PydanticCustomError(
                            "peer_group",
                            f"profiles.peer_groups.{kind}.{name}: {code} is not one of the "
                            "compact's countries (compact.countries)",
                        )
                    if code in seen:
                        raise PydanticCustomError(
                            "peer_group",
                            f"profiles.peer_groups.{kind}: {code} is in both {seen[code]!r} "
                            f"and {name!r}; a country belongs to one group of a kind",
                        )
                    seen[code] = name
        return self


#: Environment variables that override one key each: variable -> key path.
ENVIRONMENT: dict[str, tuple[str, ...]] = {
    "CDCOMPACT_DATA_DIR": ("storage", "data_dir"),
    "CDCOMPACT_WORKERS": ("run", "workers"),
    "CDCOMPACT_EXECUTOR": ("run", "executor"),
    "CDCOMPACT_CELERY_BROKER": ("run", "celery", "broker"),
    "CDCOMPACT_CELERY_QUEUE": ("run", "celery", "queue"),
    "CDCOMPACT_PUBLISH_TARGET": ("publish", "target"),
    "CDCOMPACT_PUBLISH_DIR": ("publish", "local_dir"),
    "CDCOMPACT_S3_ENDPOINT_URL": ("publish", "s3", "endpoint_url"),
    "CDCOMPACT_INBOX_DIR": ("submissions", "inbox"),
    "CDCOMPACT_SUBMISSIONS_SEED": ("submissions", "seed"),
    "CDCOMPACT_IATI_SCHEMAS": ("reference", "iati_schemas"),
    "CDCOMPACT_DUCKDB_MEMORY_LIMIT": ("warehouse", "memory_limit"),
    "CDCOMPACT_DUCKDB_TEMP_DIR": ("warehouse", "temp_directory"),
}
#: Those whose value is a whole number.
_WHOLE_NUMBERS = {"CDCOMPACT_WORKERS"}


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


#: Mappings that an override replaces whole: a compact's peer groups are one set, which
#: must not keep the default's groups of other countries, and so are the CD keywords
#: and modality phrases (a language left out is a language not searched).
WHOLE: frozenset[tuple[str, ...]] = frozenset(
    {
        ("profiles", "peer_groups"),
        ("cd_classification", "keywords"),
        ("cd_classification", "modalities"),
    }
)


def merge(
    base: Mapping[str, Any], override: Mapping[str, Any], at: tuple[str, ...] = ()
) -> dict[str, Any]:
    """``override`` layered over ``base`` key by key: mappings merge (except those in
    :data:`WHOLE`, and an empty one, which clears; a section with nothing under it is
    not set), everything else (text, numbers, lists) is replaced whole."""
    merged = dict(base)
    for key, value in override.items():
        where = (*at, key)
        if value is None and isinstance(merged.get(key), Mapping):
            continue  # a section written with nothing under it (`quality:`) is not set
        if (
            isinstance(value, Mapping)
            and value
            and isinstance(merged.get(key), Mapping)
            and where not in WHOLE
        ):
            merged[key] = merge(merged[key], value, where)
        else:
            merged[key] = value
    return merged


def _origin(origins: Sequence[tuple[str, Mapping[str, Any]]], loc: Sequence[int | str]) -> str:
    """Where the key at ``loc`` was set, following :func:`merge`: a variable beats the
    chosen file beats the default, mappings merge and anything else is owned whole by the
    origin that set it (a list of sources from the chosen file holds all its items)."""
    holders: list[tuple[str, Any]] = list(origins)
    for depth, part in enumerate(loc, start=1):
        having = [
            (origin, data[part])
            for origin, data in holders
            if isinstance(data, Mapping) and part in data
        ]
        if not having:
            break
        value = having[0][1]
        if not isinstance(value, Mapping) or not value or tuple(loc[:depth]) in WHOLE:
            return having[0][0]
        holders = [(origin, value) for origin, value in having if isinstance(value, Mapping)]
    return holders[0][0]


def _key(loc: Sequence[int | str]) -> str:
    shown = ""
    for part in loc:
        shown += f"[{part}]" if isinstance(part, int) else (f".{part}" if shown else str(part))
    return shown


def _known_keys(loc: Sequence[int | str]) -> list[str]:
    """The keys the model at ``loc`` (the mapping that holds an unknown key) accepts."""
    model: Any = ConfigFile
    for part in loc:
        if isinstance(part, int):
            (model,) = get_args(model) or (model,)
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
        field_info = model.model_fields.get(part)
        if field_info is None:
            return []
        model = field_info.annotation
    if isinstance(model, type) and issubclass(model, BaseModel):
        return sorted(model.model_fields)
    return []


def _problem(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        known = _known_keys(error["loc"][:-1])
        return "unknown key" + (f"; expected one of {', '.join(known)}" if known else "")
    if error["type"] == "literal_error":
        return f"{error['msg'][:1].lower()}{error['msg'][1:]}, not {error['input']!r}"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] in {"int_type", "int_parsing", "float_parsing", "bool_type", "string_type"}:
        message += f", not {error['input']!r}"
    return message[:1].lower() + message[1:]


def _config_error(
    exc: ValidationError, origins: Sequence[tuple[str, Mapping[str, Any]]]
) -> ConfigError:
    """One message per problem, each naming where the key was set and the key."""
    lines = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        if error["type"] == "peer_group":  # the message names its key itself
            where = _origin(origins, ("profiles", "peer_groups"))
            lines.append(f"{where}: {error['msg']}")
            continue
        lines.append(f"{_origin(origins, loc)}: {_key(loc)}: {_problem(error)}")
    return ConfigError("\n".join(lines))


def _environment(environ: Mapping[str, str]) -> list[tuple[str, dict[str, Any]]]:
    """The ``CDCOMPACT_*`` overrides that are set, each as a configuration mapping."""
    found = []
    for name, loc in ENVIRONMENT.items():
        value: Any = environ.get(name)
        if not value:
            continue
        if name in _WHOLE_NUMBERS:
            try:
                value = int(value)
            except ValueError:
                raise ConfigError(
                    f"environment variable {name}: {_key(loc)} must be a whole number, "
                    f"not {value!r}"
                ) from None
        nested = functools.reduce(lambda inner, key: {key: inner}, reversed(loc), value)
        found.append((f"environment variable {name}", nested))
    return found


def read_config(
    config_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[Path, ConfigFile, tuple[tuple[str, Mapping[str, Any]], ...]]:
    """The configuration file's path, its typed content and what each origin set: the
    default file, the chosen file layered over it key by key (:func:`merge`), then the
    ``CDCOMPACT_*`` variables.

    ConfigError names the file (or variable) and the key of every problem: an unknown
    key, a wrong type, a value out of range."""
    environ = os.environ if environ is None else environ
    root = project_root()
    default_path = root / DEFAULT_CONFIG
    chosen = config_file or environ.get("CDCOMPACT_CONFIG")
    path = _resolve(root, chosen) if chosen else default_path
    env = _environment(environ)
    origins: list[tuple[str, Mapping[str, Any]]] = list(env)
    data: dict[str, Any] = {}
    if path != default_path:
        override = _read_yaml(path)
        origins.append((str(path), override))
    else:
        override = {}
    if default_path.exists():
        default = _read_yaml(default_path)
        origins.append((str(default_path), default))
        data = default
    elif path == default_path:
        raise ConfigError(f"{path}: configuration file not found")
    data = merge(data, override)
    for _, variable in env:
        data = merge(data, variable)
    try:
        return path, ConfigFile.model_validate(data), tuple(origins)
    except ValidationError as exc:
        raise _config_error(exc, origins) from None


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Read the configuration (:func:`read_config`); ``config_file`` beats
    CDCOMPACT_CONFIG beats the default, and paths are resolved against the project root."""
    path, config, origins = read_config(config_file, environ)
    root = project_root()
    compact, reference, publish = config.compact, config.reference, config.publish
    raw_s3, inbox_s3, publish_s3 = config.storage.raw.s3, config.submissions.s3, publish.s3
    countries = tuple(c.upper() for c in compact.countries)
    schemas = reference.iati_schemas
    codelists = reference.codelists
    return Settings(
        config_file=path,
        root=root,
        compact_name=compact.name,
        countries=countries,
        data_dir=_resolve(root, config.storage.data_dir),
        schedule_cron=config.schedule.cron,
        schedule_timezone=config.schedule.timezone,
        iati_sources=tuple(
            IatiSource(
                name=source.name or f"source-{position}",
                kind=source.kind,
                paths=tuple(_resolve(root, p) for p in source.paths),
                options=dict(source.model_extra or {}),
            )
            for position, source in enumerate(config.iati.sources, start=1)
        ),
        preferred_languages=tuple(config.iati.preferred_languages),
        codelists_dir=_resolve(root, codelists) if codelists and not _is_url(codelists) else None,
        codelists_url=codelists if codelists and _is_url(codelists) else None,
        iati_schemas_dir=_resolve(root, schemas) if schemas and not _is_url(schemas) else None,
        iati_schemas_url=schemas if schemas and _is_url(schemas) else None,
        iati_schema_versions=tuple(reference.iati_schema_versions),
        exchange_rate_files=tuple(
            _resolve(root, p) for p in reference.exchange_rates if not _is_url(p)
        ),
        exchange_rate_urls=tuple(p for p in reference.exchange_rates if _is_url(p)),
        exchange_rates_credit=reference.exchange_rates_credit,
        rate_fallback_months=reference.rate_fallback_months,
        cd_rules=CdRules(
            technical_cooperation_aid_types=frozenset(
                config.cd_classification.technical_cooperation_aid_types
            ),
            ftc_flag=config.cd_classification.ftc_flag,
            cd_sectors=frozenset(config.cd_classification.cd_sectors),
            keywords={k: tuple(v) for k, v in config.cd_classification.keywords.items()},
            modalities={k: tuple(v) for k, v in config.cd_classification.modalities.items()},
        ),
        publish=PublishSettings(
            target=publish.target,
            local_dir=_resolve(root, publish.local_dir),
            s3_bucket=publish_s3.bucket,
            s3_prefix=publish_s3.prefix or "",
            s3_endpoint_url=publish_s3.endpoint_url,
            s3_region=publish_s3.region,
            title=publish.title or compact.name or "cdcompact",
            description=publish.description or "",
            license_name=publish.license,
            license_url=publish.license_url,
            base_url=publish.base_url,
            languages=tuple(publish.languages),
        ),
        fetch=FetchSettings(
            connect_timeout=config.fetch.connect_timeout,
            read_timeout=config.fetch.read_timeout,
            retries=config.fetch.retries,
            max_bytes=int(config.fetch.max_file_mb * 1024 * 1024),
            raw_target=config.storage.raw.target,
            raw_s3_bucket=raw_s3.bucket,
            raw_s3_prefix=raw_s3.prefix or "",
            raw_s3_endpoint_url=raw_s3.endpoint_url,
            raw_s3_region=raw_s3.region,
            max_concurrent=config.fetch.max_concurrent,
            max_per_host=config.fetch.max_per_host,
            keep_missing_nights=config.iati.keep_missing_nights,
        ),
        submissions=SubmissionSettings(
            inbox_target=config.submissions.target,
            inbox_dir=_resolve(root, config.submissions.inbox),
            seed_dir=_resolve(root, config.submissions.seed) if config.submissions.seed else None,
            s3_bucket=inbox_s3.bucket,
            s3_prefix=inbox_s3.prefix or "",
            s3_endpoint_url=inbox_s3.endpoint_url,
            s3_region=inbox_s3.region,
        ),
        quality=QualitySettings(
            freshness={
                **DEFAULT_FRESHNESS,
                **{str(k): str(v) for k, v in config.quality.freshness.items()},
            },
            forward_years=config.quality.forward_years,
            history_runs=config.quality.history_runs,
            max_findings=config.quality.max_findings,
            countries=countries,
            publishers=tuple(dict.fromkeys(compact.publishers)),
            contacts={
                (key.upper() if key.upper() in countries else key): Contact(c.name, c.email)
                for key, c in compact.contacts.items()
            },
        ),
        metrics=MetricsSettings(
            overlap_threshold=config.metrics.overlap_threshold,
            overlap_use_text=config.metrics.overlap_use_text,
            method_version=config.metrics.method_version,
        ),
        profiles=ProfileSettings(
            peer_groups={
                kind: {name: tuple(c.upper() for c in members) for name, members in named.items()}
                for kind, named in config.profiles.peer_groups.items()
            },
        ),
        workers=config.run.workers or max(1, os.cpu_count() or 1),
        executor=ExecutorSettings(
            kind=config.run.executor,
            broker=config.run.celery.broker,
            backend=config.run.celery.backend,
            queue=config.run.celery.queue,
        ),
        warehouse=WarehouseSettings(
            memory_limit=config.warehouse.memory_limit,
            temp_directory=_resolve(root, config.warehouse.temp_directory)
            if config.warehouse.temp_directory
            else None,
            threads=config.warehouse.threads,
        ),
        origins=origins,
    )
