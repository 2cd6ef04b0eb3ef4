"""config/compact.yaml and config/live.yaml as the pipeline reads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from assets.harmonise.schema import table_schema
from assets.iati.codelists import load_codelists
from assets.settings import ConfigError, load_settings
from tests.conftest import CODELISTS, PROJECT_ROOT

MODALITIES = set(
    next(f for f in table_schema("activities")["fields"] if f["name"] == "modality")["constraints"][
        "enum"
    ]
)


def test_default_config_is_the_offline_demo() -> None:
    settings = load_settings()
    assert settings.config_file == PROJECT_ROOT / "config" / "compact.yaml"
    assert settings.data_dir == PROJECT_ROOT / "var" / "data"
    assert [(s.name, s.kind) for s in settings.iati_sources] == [("demo", "local")]
    assert settings.iati_sources[0].paths == (PROJECT_ROOT / "demo" / "iati",)
    assert settings.exchange_rate_files == (PROJECT_ROOT / "demo" / "exchange-rates.csv",)
    assert settings.codelists_dir == PROJECT_ROOT / "demo" / "codelists"
    assert settings.schedule_cron == "0 2 * * *"
    assert settings.preferred_languages[0] == "en"
    assert len(settings.countries) >= 3
    # Every compact country is in one region and one income group.
    assert settings.publish.languages == ("en", "fr")
    for kind in ("region", "income"):
        groups = settings.profiles.peer_groups[kind]
        assert sorted(c for members in groups.values() for c in members) == sorted(
            settings.countries
        )


def test_live_config_layers_over_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDCOMPACT_CONFIG", "config/live.yaml")
    settings = load_settings()
    assert settings.config_file == PROJECT_ROOT / "config" / "live.yaml"
    assert [s.kind for s in settings.iati_sources] == ["registry", "datastore"]
    assert settings.iati_sources[1].options == {
        "api_key_env": "IATI_API_KEY",
        "base_url": "https://api.iatistandard.org/datastore",
    }
    assert settings.exchange_rate_urls == (
        "https://codeforiati.org/imf-exchangerates/imf_exchangerates.csv",
    )
    assert settings.codelists_url == "https://codelists.codeforiati.org/api/json/en/"
    assert settings.publish.target == "s3"
    # sections live.yaml does not set come from compact.yaml
    assert settings.cd_rules == load_settings(PROJECT_ROOT / "config" / "compact.yaml").cd_rules
    assert settings.schedule_cron == "0 2 * * *"


def test_data_dir_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CDCOMPACT_DATA_DIR", str(tmp_path / "elsewhere"))
    assert load_settings().data_dir == tmp_path / "elsewhere"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("iati: [unclosed", "not valid YAML"),
        ("- a list\n- not sections\n", "top level must be a mapping"),
        ("iati:\n  sources:\n    - name: x\n", "iati.sources[0].kind: field required"),
        ("reference:\n  rate_fallback_months: -1\n", "rate_fallback_months"),
        ("cd_classification:\n  keywords: [a, b]\n", "cd_classification.keywords"),
        ("run:\n  workers: many\n", "run.workers: input should be a valid integer, not 'many'"),
        ("run:\n  workers: -2\n", "run.workers: input should be greater than or equal to 0"),
        ("publish:\n  languages: en\n", "publish.languages: input should be a valid list"),
        ("profiles:\n  languages: [en]\n", "profiles.languages: unknown key"),
        (
            "publish:\n  languages: [en, de]\n",
            "publish.languages: no translation for 'de' "
            "(add publish/locale/de/LC_MESSAGES/messages.po",
        ),
        ("publish:\n  languages: [EN]\n", "'EN' is not a language code such as fr"),
        (
            "profiles:\n  peer_groups:\n    region:\n      Africa: [GH, ZZ]\n",
            "profiles.peer_groups.region.Africa: ZZ is not one of the compact's countries",
        ),
        (
            "profiles:\n  peer_groups:\n    income:\n      Low: [GH]\n      High: [gh]\n",
            "profiles.peer_groups.income: GH is in both 'Low' and 'High'",
        ),
        (
            "profiles:\n  peer_groups: [GH]\n",
            "profiles.peer_groups: input should be a valid dictionary",
        ),
        (
            "fetch:\n  retrys: 3\n",
            "fetch.retrys: unknown key; expected one of connect_timeout, max_concurrent, "
            "max_file_mb, max_per_host, read_timeout, retries",
        ),
        ("storage:\n  raw:\n    s3:\n      secret: x\n", "storage.raw.s3.secret: unknown key"),
        ("warehous:\n  threads: 2\n", "warehous: unknown key; expected one of cd_classification"),
        ("publish:\n  target: ftp\n", "publish.target: input should be 'local' or 's3', not 'ftp'"),
        ("metrics:\n  overlap_use_text: maybe\n", "metrics.overlap_use_text: input should be a"),
        ("fetch:\n  read_timeout: soon\n", "fetch.read_timeout: input should be a valid number"),
        (
            "quality:\n  freshness:\n    country: hourly\n",
            "quality.freshness.country: input should be 'daily'",
        ),
        ("reference:\n  iati_schemas: https://e.org/\n", "must contain {version} when a URL"),
        (
            "run:\n  executor: kubernetes\n",
            "run.executor: input should be 'multiprocess' or 'celery', not 'kubernetes'",
        ),
        ("run:\n  celery:\n    queue: a b\n", "run.celery.queue: string should match pattern"),
        ("run:\n  celery:\n    brokr: x\n", "run.celery.brokr: unknown key"),
    ],
)
def test_bad_config_names_the_file_and_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    assert str(path) in str(error.value)
    assert message in str(error.value)


def test_workers_default_to_one_per_cpu_and_follow_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CDCOMPACT_WORKERS", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 6)
    assert load_settings().workers == 6  # compact.yaml: run.workers 0
    monkeypatch.setenv("CDCOMPACT_WORKERS", "3")
    assert load_settings().workers == 3


def test_the_executor_follows_the_file_and_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("CDCOMPACT_EXECUTOR", "CDCOMPACT_CELERY_BROKER", "CDCOMPACT_CELERY_QUEUE"):
        monkeypatch.delenv(name, raising=False)
    default = load_settings().executor
    assert (default.kind, default.queue) == ("multiprocess", "dagster")
    path = tmp_path / "celery.yaml"
    path.write_text("run:\n  executor: celery\n  celery:\n    queue: nights\n")
    chosen = load_settings(path).executor
    assert (chosen.kind, chosen.queue, chosen.backend) == ("celery", "nights", "rpc://")
    monkeypatch.setenv("CDCOMPACT_CELERY_BROKER", "pyamqp://cd:secret@mq.example.org//")
    monkeypatch.setenv("CDCOMPACT_CELERY_QUEUE", "other")
    chosen = load_settings(path).executor
    assert (chosen.broker, chosen.queue) == ("pyamqp://cd:secret@mq.example.org//", "other")
    monkeypatch.setenv("CDCOMPACT_EXECUTOR", "threads")
    with pytest.raises(ConfigError, match=r"CDCOMPACT_EXECUTOR: run\.executor: input should be"):
        load_settings(path)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read configuration"):
        load_settings(tmp_path / "nope.yaml")


def test_cd_sectors_are_active_official_dac_codes() -> None:
    rules = load_settings().cd_rules
    codelists = load_codelists(CODELISTS)
    sectors = codelists.codes("Sector")
    assert rules.cd_sectors <= sectors
    for code in rules.cd_sectors:
        assert codelists.status("Sector", code) == "active", code
    assert rules.technical_cooperation_aid_types <= codelists.codes("AidType")


def test_keywords_in_four_languages_and_known_modalities() -> None:
    rules = load_settings().cd_rules
    assert set(rules.keywords) == {"en", "fr", "es", "pt"}
    assert all(len(phrases) >= 5 for phrases in rules.keywords.values())
    assert set(rules.modalities) <= MODALITIES


def test_an_override_file_merges_key_by_key(tmp_path: Path) -> None:
    """A file that sets only iati.sources keeps the default's preferred languages, and one
    that sets publish.s3.bucket keeps the default's prefix; lists are replaced whole."""
    default = load_settings()
    path = tmp_path / "override.yaml"
    path.write_text(
        "iati:\n  sources:\n    - {name: mine, kind: local, paths: [demo/iati]}\n"
        "publish:\n  target: s3\n  s3:\n    bucket: open-data\n"
        "compact:\n  countries: [GH, KE]\n"
        "profiles:\n  peer_groups:\n    region:\n      Africa: [GH, KE]\n",
        encoding="utf-8",
    )
    settings = load_settings(path)
    assert [s.name for s in settings.iati_sources] == ["mine"]
    assert settings.preferred_languages == default.preferred_languages == ("en", "fr", "es", "pt")
    assert (settings.publish.target, settings.publish.s3_bucket) == ("s3", "open-data")
    assert settings.publish.s3_prefix == default.publish.s3_prefix == "cdcompact/"
    assert settings.countries == ("GH", "KE")
    # peer groups are one set: the default's groups of other countries are not kept
    assert settings.profiles.peer_groups == {"region": {"Africa": ("GH", "KE")}}
    assert settings.cd_rules == default.cd_rules
    # keywords are one set too, and an empty mapping clears what the default had
    path.write_text(
        "cd_classification:\n  keywords:\n    en: [capacity]\n  modalities: {}\n",
        encoding="utf-8",
    )
    rules = load_settings(path).cd_rules
    assert rules.keywords == {"en": ("capacity",)}
    assert rules.modalities == {}
    assert rules.cd_sectors == default.cd_rules.cd_sectors
    # a section left empty (its keys commented out) is a section not set
    path.write_text("quality:\nwarehouse:\n  # memory_limit: 2GB\n", encoding="utf-8")
    empty = load_settings(path)
    assert (empty.quality, empty.warehouse) == (default.quality, default.warehouse)


def test_a_problem_names_where_its_key_was_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "override.yaml"
    path.write_text("iati:\n  sources:\n    - name: x\n", encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    # the list of sources is the override's, so its missing kind is the override's
    assert str(error.value) == f"{path}: iati.sources[0].kind: field required"
    monkeypatch.setenv("CDCOMPACT_PUBLISH_TARGET", "ftp")
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert str(error.value) == (
        "environment variable CDCOMPACT_PUBLISH_TARGET: publish.target: input should be "
        "'local' or 's3', not 'ftp'"
    )
    monkeypatch.setenv("CDCOMPACT_PUBLISH_TARGET", "local")
    monkeypatch.setenv("CDCOMPACT_WORKERS", "many")
    with pytest.raises(ConfigError, match=r"CDCOMPACT_WORKERS: run\.workers must be a whole"):
        load_settings()


def test_every_problem_of_a_file_is_named_at_once(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("fetch:\n  retries: -1\n  max_file_mb: 0\nrun:\n  worker: 2\n")
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    assert str(error.value).splitlines() == [
        f"{path}: run.worker: unknown key; expected one of celery, executor, workers",
        f"{path}: fetch.retries: input should be greater than or equal to 0",
        f"{path}: fetch.max_file_mb: input should be greater than 0",
    ]
