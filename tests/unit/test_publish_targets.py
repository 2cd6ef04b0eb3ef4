"""Publishing targets: one contract for a local folder and S3 (moto over HTTP), then S3 details."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from assets.storage.s3 import S3Target, normalise_prefix
from assets.storage.targets import LocalTarget, Target, TargetError
from assets.storage.targets_config import make_target
from tests.s3 import S3Bucket, moto_endpoint_fixture, s3_bucket_fixture  # noqa: F401 - fixtures

UNSAFE_KEYS = ["", "../escape.txt", "a/../../b", "/absolute", "a\\b"]


@pytest.fixture(params=["local", "s3"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    """An empty target of each kind; the S3 one sits under a prefix in a shared bucket."""
    if request.param == "local":
        return LocalTarget(tmp_path / "published")
    bucket: S3Bucket = request.getfixturevalue("s3_bucket")
    return S3Target(bucket.name, "open-data/cdcompact", endpoint_url=bucket.endpoint_url)


def test_write_then_read_returns_the_same_bytes(target: Target) -> None:
    target.write_bytes("releases/2026.11.28/data/activities.csv", b"id\nA-1\n", "text/csv")
    assert target.read_bytes("releases/2026.11.28/data/activities.csv") == b"id\nA-1\n"


def test_overwrite_replaces_the_object(target: Target) -> None:
    target.write_bytes("catalog.json", b'{"latest": "2026.11.27"}')
    target.write_bytes("catalog.json", b'{"latest": "2026.11.28"}')
    assert target.read_bytes("catalog.json") == b'{"latest": "2026.11.28"}'
    assert list(target.list_keys()) == ["catalog.json"]


def test_missing_key_reads_as_none(target: Target) -> None:
    assert target.read_bytes("catalog.json") is None
    assert target.read_bytes("releases/2026.11.28/README.md") is None


def test_empty_object_round_trips(target: Target) -> None:
    target.write_bytes("empty.txt", b"")
    assert target.read_bytes("empty.txt") == b""


def test_list_keys_returns_relative_keys_under_a_prefix(target: Target) -> None:
    keys = {
        "catalog.json",
        "latest.json",
        "releases/2026.11.27/README.md",
        "releases/2026.11.28/README.md",
        "releases/2026.11.28/data/activities.csv",
    }
    for key in keys:
        target.write_bytes(key, key.encode())
    assert set(target.list_keys()) == keys
    assert set(target.list_keys("releases/2026.11.28/")) == {
        "releases/2026.11.28/README.md",
        "releases/2026.11.28/data/activities.csv",
    }
    assert list(target.list_keys("releases/2026.12.01/")) == []


def test_versions_change_with_the_bytes_and_only_then(target: Target) -> None:
    """What the inbox sensor keeps in its cursor: a version per object, read from the
    listing, that changes when the object is written again and not otherwise."""
    target.write_bytes("inbox/a.xlsx", b"first")
    target.write_bytes("inbox/b/c.csv", b"x,y")
    before = dict(target.list_versions("inbox/"))
    assert set(before) == {"inbox/a.xlsx", "inbox/b/c.csv"}
    assert all(before.values())
    assert dict(target.list_versions("inbox/")) == before
    target.write_bytes("inbox/a.xlsx", b"second, longer")
    after = dict(target.list_versions("inbox/"))
    assert after["inbox/a.xlsx"] != before["inbox/a.xlsx"]
    assert after["inbox/b/c.csv"] == before["inbox/b/c.csv"]


def test_delete_removes_and_tolerates_missing(target: Target) -> None:
    target.write_bytes("latest.json", b"{}")
    target.delete("latest.json")
    assert target.read_bytes("latest.json") is None
    assert list(target.list_keys()) == []
    target.delete("latest.json")  # already gone: not an error


def test_delete_prefix_removes_only_that_release(target: Target) -> None:
    for key in ("releases/2026.11.27/a.csv", "releases/2026.11.28/a.csv", "releases/2026.11.28/b"):
        target.write_bytes(key, b"x")
    assert target.delete_prefix("releases/2026.11.28/") == 2
    assert list(target.list_keys()) == ["releases/2026.11.27/a.csv"]


def test_delete_prefix_also_clears_what_a_killed_write_left_behind(tmp_path: Path) -> None:
    target = LocalTarget(tmp_path)
    target.write_bytes("releases/2026.11.28/data/a.csv", b"x")
    target.write_bytes("releases/2026.11.27/a.csv", b"y")
    # A write killed between the temporary file and the rename leaves this behind.
    (tmp_path / "releases/2026.11.28/data/.b.csv.k2j3h4").write_bytes(b"half")
    (tmp_path / "releases/2026.11.27/.c.csv.x8y9").write_bytes(b"other release")
    assert target.delete_prefix("releases/2026.11.28/") == 1
    assert [p.name for p in (tmp_path / "releases/2026.11.28").rglob("*") if p.is_file()] == []
    assert (tmp_path / "releases/2026.11.27/.c.csv.x8y9").exists()
    assert list(target.list_keys()) == ["releases/2026.11.27/a.csv"]


@pytest.mark.parametrize("key", UNSAFE_KEYS)
def test_unsafe_keys_are_refused(target: Target, key: str) -> None:
    with pytest.raises(TargetError, match="unsafe key"):
        target.write_bytes(key, b"x")
    with pytest.raises(TargetError, match="unsafe key"):
        target.read_bytes(key)
    with pytest.raises(TargetError, match="unsafe key"):
        target.delete(key)
    assert list(target.list_keys()) == []


# --- S3 specifics --------------------------------------------------------------------------


def _s3(bucket: S3Bucket, prefix: str = "") -> S3Target:
    return S3Target(bucket.name, prefix, endpoint_url=bucket.endpoint_url)


@pytest.mark.parametrize("key", ["./a", "a/./b", "a//b", "a/"])
def test_s3_refuses_keys_that_name_a_different_object_than_they_seem(
    s3_bucket: S3Bucket, key: str
) -> None:
    target = _s3(s3_bucket, "pub")
    with pytest.raises(TargetError, match="unsafe key"):
        target.write_bytes(key, b"x")
    with pytest.raises(TargetError, match="unsafe key"):
        target.url(key)


def test_s3_stores_content_type_and_sha256_checksum(s3_bucket: S3Bucket) -> None:
    data = b"id,title\nA-1,Training\n"
    _s3(s3_bucket, "pub").write_bytes("data/activities.csv", data, "text/csv; charset=utf-8")
    head = s3_bucket.client().head_object(
        Bucket=s3_bucket.name, Key="pub/data/activities.csv", ChecksumMode="ENABLED"
    )
    assert head["ContentType"] == "text/csv; charset=utf-8"
    assert head["ContentLength"] == len(data)
    # moto stores the checksum we send (real S3 also recomputes it and refuses a mismatch).
    assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_s3_targets_with_different_prefixes_do_not_see_each_other(s3_bucket: S3Bucket) -> None:
    staging, production = _s3(s3_bucket, "staging/"), _s3(s3_bucket, "production")
    staging.write_bytes("catalog.json", b"staging")
    production.write_bytes("catalog.json", b"production")
    production.write_bytes("releases/2026.11.28/README.md", b"readme")
    assert staging.read_bytes("catalog.json") == b"staging"
    assert production.read_bytes("catalog.json") == b"production"
    assert list(staging.list_keys()) == ["catalog.json"]
    assert staging.read_bytes("releases/2026.11.28/README.md") is None
    assert staging.delete_prefix("") == 1
    assert sorted(production.list_keys()) == ["catalog.json", "releases/2026.11.28/README.md"]
    # The unprefixed view sees both, with their full keys.
    assert sorted(_s3(s3_bucket).list_keys()) == [
        "production/catalog.json",
        "production/releases/2026.11.28/README.md",
    ]


def test_s3_list_keys_follows_pagination(s3_bucket: S3Bucket) -> None:
    target = _s3(s3_bucket, "paged")
    keys = {f"releases/2026.11.28/data/part-{n}.csv" for n in range(7)}
    for key in keys:
        target.write_bytes(key, b"x")
    requests: list[dict[str, Any]] = []

    def two_per_page(params: dict[str, Any], **_: Any) -> None:
        params["MaxKeys"] = 2
        requests.append(params)

    target.client.meta.events.register("provide-client-params.s3.ListObjectsV2", two_per_page)
    assert set(target.list_keys()) == keys
    assert len(requests) == 4


def test_s3_errors_name_location_key_and_code(s3_bucket: S3Bucket) -> None:
    target = S3Target("no-such-bucket-here", "pub", endpoint_url=s3_bucket.endpoint_url)
    with pytest.raises(TargetError) as read_error:
        target.read_bytes("catalog.json")
    message = str(read_error.value)
    assert "s3://no-such-bucket-here/pub" in message
    assert "catalog.json" in message
    assert "NoSuchBucket" in message
    with pytest.raises(TargetError, match=r"cannot write latest\.json: NoSuchBucket"):
        target.write_bytes("latest.json", b"{}")
    with pytest.raises(TargetError, match=r"cannot list .*NoSuchBucket"):
        list(target.list_keys())


def test_s3_endpoint_comes_from_the_environment(
    s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_bucket.endpoint_url)
    target = S3Target(s3_bucket.name, "pub")
    target.write_bytes("latest.json", b"{}")
    assert _s3(s3_bucket, "pub").read_bytes("latest.json") == b"{}"
    assert target.url("latest.json") == f"{s3_bucket.endpoint_url}/{s3_bucket.name}/pub/latest.json"


@pytest.mark.parametrize(
    ("prefix", "normalised"),
    [("", ""), ("/", ""), ("a/b", "a/b/"), ("a/b/", "a/b/"), ("/a/b/", "a/b/")],
)
def test_prefix_normalisation(prefix: str, normalised: str) -> None:
    assert normalise_prefix(prefix) == normalised


@pytest.mark.parametrize("prefix", ["../up", "a/../../b", "a\\b", "a//b", "./a"])
def test_unsafe_prefix_is_refused(prefix: str) -> None:
    with pytest.raises(TargetError, match="unsafe S3 prefix"):
        normalise_prefix(prefix)


def test_s3_location_and_urls() -> None:
    aws_client = SimpleNamespace(meta=SimpleNamespace(endpoint_url="https://s3.amazonaws.com"))
    target = S3Target("open-data", "cd/compact", client=aws_client)
    assert target.location == "s3://open-data/cd/compact"
    assert target.url("releases/2026.11.28/datapackage.json") == (
        "https://open-data.s3.amazonaws.com/cd/compact/releases/2026.11.28/datapackage.json"
    )
    assert S3Target("open-data", client=aws_client).location == "s3://open-data"
    assert S3Target("open-data", client=aws_client).url("catalog.json") == (
        "https://open-data.s3.amazonaws.com/catalog.json"
    )
    minio = S3Target("open-data", "cd/", endpoint_url="http://minio.local:9000/", client=aws_client)
    assert minio.url("a file.csv") == "http://minio.local:9000/open-data/cd/a%20file.csv"
    with pytest.raises(TargetError, match="unsafe key"):
        minio.url("../catalog.json")


def test_local_target_url_is_a_file_uri(tmp_path: Path) -> None:
    target = LocalTarget(tmp_path)
    assert target.url("catalog.json") == (tmp_path.resolve() / "catalog.json").as_uri()


# --- make_target ----------------------------------------------------------------------------


def test_make_target_local(tmp_path: Path) -> None:
    target = make_target("local", tmp_path / "publish", None, "", None, None)
    assert isinstance(target, LocalTarget)
    assert target.location == str((tmp_path / "publish").resolve())


def test_make_target_s3(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    target = make_target("s3", tmp_path, s3_bucket.name, "cd", s3_bucket.endpoint_url, "us-east-1")
    assert isinstance(target, S3Target)
    assert target.location == f"s3://{s3_bucket.name}/cd"
    target.write_bytes("catalog.json", b"{}")
    assert _s3(s3_bucket, "cd/").read_bytes("catalog.json") == b"{}"


def test_make_target_s3_needs_a_bucket(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match=r"needs a bucket.*publish\.s3\.bucket"):
        make_target("s3", tmp_path, None, "", None, None)


def test_make_target_refuses_unknown_kinds(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match=r"unknown publish target 'ftp'.*local, s3"):
        make_target("ftp", tmp_path, "bucket", "", None, None)
