"""A whole nightly run with secrets configured leaks none of them, anywhere.

Secrets come from the environment only: the S3 credentials (read by boto3's standard
chain), an IATI API key, and secret query parameters in configured download URLs (one
of which fails, so its error message is written). After the run, every byte it left
is scanned for each secret value: what it printed (stdout and stderr, the pool's
worker processes included), every file under DAGSTER_HOME (run and event storage,
Dagster metadata, compute logs), the data folder, and every object published to S3.
The published objects must also not hold this machine's folders.
"""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import pytest
import yaml

from pipelines.nightly import run_nightly
from tests.conftest import CODELISTS, IATI_FIXTURES, RATES
from tests.http_fixture_server import FixtureServer, http_server_fixture  # noqa: F401
from tests.s3 import REGION, S3Bucket, moto_endpoint_fixture  # noqa: F401

SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIACDCOMPACTSECRETID7",
    "AWS_SECRET_ACCESS_KEY": "cdc/Secret+Access+Key/0123456789abcdefXYZ",
    "IATI_API_KEY": "iati-api-key-5f4dcc3b5aa765d61d8327deb882cf99",
}
TOKEN = "url-token-9b74c9897bac770ffc029102a200c5de"
SIGNATURE = "url-signature-e99a18c428cb38d5f260853678922e03"


def _scan(where: str, data: bytes, found: list[str]) -> None:
    for name, value in [*SECRETS.items(), ("token", TOKEN), ("signature", SIGNATURE)]:
        if value.encode() in data:
            found.append(f"{name} in {where}")


def test_no_secret_reaches_logs_dagster_storage_data_or_published_files(
    tmp_path: Path,
    http_server: FixtureServer,
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    missing = tmp_path / "no-aws-config"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(missing))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(missing))
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    bucket = S3Bucket(moto_endpoint, "secrets-test")
    bucket.client().create_bucket(Bucket=bucket.name)

    http_server.file(
        "/feeds/acfspain-ph.xml", (IATI_FIXTURES / "valid/acfspain-ph.xml").read_bytes()
    )
    config = {
        "storage": {"data_dir": str(tmp_path / "data")},
        "iati": {
            "sources": [
                {"name": "files", "kind": "local",
                 "paths": [str(IATI_FIXTURES / "valid/who-arg.xml")]},
                {
                    "name": "feeds",
                    "kind": "url",
                    "urls": [
                        http_server.url(f"/feeds/acfspain-ph.xml?token={TOKEN}"),
                        http_server.url(f"/feeds/gone.xml?signature={SIGNATURE}"),
                    ],
                },
            ]
        },
        "reference": {
            "codelists": str(CODELISTS),
            "exchange_rates": [str(RATES / "imf-monthly-subset.csv")],
        },
        "publish": {
            "target": "s3",
            "s3": {"bucket": bucket.name, "prefix": "open/", "endpoint_url": moto_endpoint},
        },
    }  # fmt: skip
    path = tmp_path / "compact.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")

    (tmp_path / "dagster").mkdir()
    with dg.DagsterInstance.get() as instance:
        status = run_nightly(path, instance=instance)
    printed = capfd.readouterr()
    assert status == 0, printed.out + printed.err  # the gone URL failed; the rest went on
    assert "failed  gone: GET http://127.0.0.1:" in printed.out
    assert re.search(
        r"\] (\S+ \.\.\. )?acfspain-ph \(\d datasets\): (extracted|\d extracted)", printed.out
    )

    found: list[str] = []
    _scan("stdout", printed.out.encode(), found)
    _scan("stderr", printed.err.encode(), found)
    scanned = 0
    for folder in (tmp_path / "dagster", tmp_path / "data"):
        for file in folder.rglob("*"):
            if file.is_file():
                _scan(str(file.relative_to(tmp_path)), file.read_bytes(), found)
                scanned += 1
    client = bucket.client()
    keys = [
        item["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket.name)
        for item in page.get("Contents", [])
    ]
    assert any(k.endswith("datapackage.json") for k in keys)
    for key in keys:
        data = client.get_object(Bucket=bucket.name, Key=key)["Body"].read()
        _scan(f"s3://{bucket.name}/{key}", data, found)
        if not key.endswith((".parquet", ".png", ".gif", ".otf", ".ttf", ".woff", ".woff2")):
            assert str(tmp_path).encode() not in data, key
            assert str(IATI_FIXTURES).encode() not in data, key
    assert scanned > 10
    assert found == []
