"""``download_release`` and ``cdcompact download``: a hand-built release fetched and verified.

The release is written with hashlib into a local folder, then served from that
folder, over HTTP (a thread on 127.0.0.1) and from S3 (moto over HTTP).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import socket
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from assets.storage.s3 import S3Target
from assets.storage.targets import LocalTarget, Target
from pipelines.cli import add_download_arguments
from publish.download import (
    EXIT_BAD_ARGUMENTS,
    EXIT_FAILED,
    EXIT_OK,
    DownloadError,
    ReleaseNotFoundError,
    download_main,
    download_release,
)
from tests.s3 import S3Bucket, moto_endpoint_fixture, s3_bucket_fixture  # noqa: F401 - fixtures

OLD, NEW = "2026.11.27", "2026.11.28"
CSV = b"activity_id,title\nXM-DAC-1-A,Statistics training\nXM-DAC-1-B,Audit support\n"


def release_files(version: str) -> dict[str, bytes]:
    return {
        "data/activities.csv": CSV + version.encode(),
        "README.md": f"# cdcompact {version}\n".encode(),
    }


def publish_release(target: Target, version: str, files: Mapping[str, bytes]) -> None:
    """Write the files, then a catalogue entry and latest.json, as the release builder does."""
    path = f"releases/{version}/"
    for relpath, data in files.items():
        target.write_bytes(path + relpath, data)
    entry = {
        "version": version,
        "published": f"{version.replace('.', '-')}T04:20:00Z",
        "date": version.replace(".", "-"),
        "schema_version": "1.0.0",
        "content_hash": hashlib.sha256(b"".join(files.values())).hexdigest(),
        "path": path,
        "row_counts": {"activities": 2},
        "files": {
            relpath: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
            for relpath, data in files.items()
        },
    }
    existing = target.read_bytes("catalog.json")
    catalog = json.loads(existing) if existing else {"name": "cdcompact", "title": "CD Compact"}
    catalog["releases"] = [entry, *catalog.get("releases", [])]
    catalog["latest"] = version
    target.write_bytes("catalog.json", json.dumps(catalog, indent=2).encode())
    latest = {
        "version": version,
        "published": entry["published"],
        "schema_version": "1.0.0",
        "path": path,
        "datapackage": f"{path}datapackage.json",
        "content_hash": entry["content_hash"],
    }
    target.write_bytes("latest.json", json.dumps(latest).encode())


@pytest.fixture
def published(tmp_path: Path) -> Path:
    """A published folder with two releases; the newer one is the latest."""
    root = tmp_path / "published"
    target = LocalTarget(root)
    publish_release(target, OLD, release_files(OLD))
    publish_release(target, NEW, release_files(NEW))
    return root


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "downloads"


def assert_release_on_disk(out: Path, version: str) -> None:
    folder = out / version
    expected = release_files(version)
    on_disk = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert on_disk == set(expected)
    for relpath, data in expected.items():
        assert (folder / relpath).read_bytes() == data
    assert [p.name for p in out.iterdir()] == [version], "no staging folder left behind"


def assert_nothing_written(out: Path) -> None:
    assert not out.exists() or list(out.iterdir()) == []


# --- HTTP server --------------------------------------------------------------------------


@dataclass
class HttpServer:
    url: str
    requests: list[str]


class _QuietHandler(SimpleHTTPRequestHandler):
    failing_paths: frozenset[str] = frozenset()
    requests: list[str]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.requests.append(self.path)
        if self.path in self.failing_paths:
            self.send_error(500, "Internal Server Error")
            return
        super().do_GET()


@pytest.fixture
def serve() -> Iterator[Any]:
    """Start an HTTP server on 127.0.0.1 for a folder; ``failing`` paths answer 500."""
    servers: list[ThreadingHTTPServer] = []

    def start(root: Path, failing: frozenset[str] = frozenset()) -> HttpServer:
        requests: list[str] = []

        class Handler(_QuietHandler):
            failing_paths = failing

        Handler.requests = requests
        server = ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(root))
        )
        servers.append(server)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        host, port = server.server_address[:2]
        return HttpServer(f"http://{host!s}:{port}/", requests)

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


# --- sources ------------------------------------------------------------------------------


def test_download_latest_from_a_folder(published: Path, out: Path) -> None:
    release = download_release(str(published), out)
    assert release.version == NEW
    assert release.folder == out / NEW
    assert release.files == 2
    assert release.total_bytes == sum(len(d) for d in release_files(NEW).values())
    assert not release.already_present
    assert_release_on_disk(out, NEW)


def test_download_a_named_version_from_a_file_url(published: Path, out: Path) -> None:
    release = download_release(published.as_uri(), out, OLD)
    assert release.version == OLD
    assert_release_on_disk(out, OLD)


def test_source_may_name_the_catalogue_itself(published: Path, out: Path) -> None:
    assert download_release(str(published / "catalog.json"), out).version == NEW


def test_download_over_http(published: Path, out: Path, serve: Any) -> None:
    server = serve(published)
    release = download_release(server.url, out, timeout=5)
    assert release.version == NEW
    assert_release_on_disk(out, NEW)
    assert sorted(server.requests) == [
        "/catalog.json",
        f"/releases/{NEW}/README.md",
        f"/releases/{NEW}/data/activities.csv",
    ]


def test_download_from_s3_with_the_endpoint_from_the_environment(
    published: Path, out: Path, s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = S3Target(s3_bucket.name, "open-data/cdcompact", endpoint_url=s3_bucket.endpoint_url)
    local = LocalTarget(published)
    for key in local.list_keys():
        target.write_bytes(key, local.read_bytes(key) or b"")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_bucket.endpoint_url)

    release = download_release(f"s3://{s3_bucket.name}/open-data/cdcompact", out)
    assert release.version == NEW
    assert_release_on_disk(out, NEW)


def test_download_from_s3_with_an_explicit_endpoint(
    published: Path, out: Path, s3_bucket: S3Bucket
) -> None:
    target = S3Target(s3_bucket.name, "", endpoint_url=s3_bucket.endpoint_url)
    publish_release(target, OLD, release_files(OLD))
    release = download_release(
        f"s3://{s3_bucket.name}/", out, OLD, endpoint_url=s3_bucket.endpoint_url
    )
    assert release.version == OLD
    assert_release_on_disk(out, OLD)


def test_main_downloads_from_s3_with_the_configured_endpoint(
    out: Path, s3_bucket: S3Bucket, capsys: pytest.CaptureFixture[str]
) -> None:
    target = S3Target(s3_bucket.name, "cd", endpoint_url=s3_bucket.endpoint_url)
    publish_release(target, NEW, release_files(NEW))
    args = parse(["--out", str(out)])
    source = f"s3://{s3_bucket.name}/cd"
    assert download_main(args, source, endpoint_url=s3_bucket.endpoint_url) == EXIT_OK
    assert f"release {NEW} downloaded to" in capsys.readouterr().out
    assert_release_on_disk(out, NEW)


def test_s3_source_without_a_catalogue_is_not_found(out: Path, s3_bucket: S3Bucket) -> None:
    with pytest.raises(ReleaseNotFoundError, match=r"no catalog\.json at s3://"):
        download_release(f"s3://{s3_bucket.name}/empty", out, endpoint_url=s3_bucket.endpoint_url)


# --- verification -------------------------------------------------------------------------


def test_second_download_reports_already_present(published: Path, out: Path) -> None:
    download_release(str(published), out)
    again = download_release(str(published), out)
    assert again.already_present
    assert again.files == 2
    assert_release_on_disk(out, NEW)


def test_existing_folder_that_differs_is_an_error_and_left_alone(
    published: Path, out: Path
) -> None:
    download_release(str(published), out)
    tampered = out / NEW / "README.md"
    tampered.write_bytes(b"edited locally\n")
    with pytest.raises(DownloadError, match=r"README\.md does not match the catalogue"):
        download_release(str(published), out)
    assert tampered.read_bytes() == b"edited locally\n"


@pytest.mark.parametrize(
    "corrupt",
    [
        pytest.param(lambda data: data.replace(b"Audit", b"Audi!"), id="same-size"),
        pytest.param(lambda data: data + b"XM-DAC-1-C,Extra row\n", id="longer"),
        pytest.param(lambda data: data[:10], id="truncated"),
    ],
)
def test_corrupted_file_fails_and_leaves_nothing(published: Path, out: Path, corrupt: Any) -> None:
    csv = published / "releases" / NEW / "data" / "activities.csv"
    original = csv.read_bytes()
    csv.write_bytes(corrupt(original))
    actual = hashlib.sha256(csv.read_bytes()).hexdigest()

    with pytest.raises(DownloadError) as error:
        download_release(str(published), out)
    message = str(error.value)
    assert "data/activities.csv" in message
    assert hashlib.sha256(original).hexdigest() in message
    assert actual in message
    assert_nothing_written(out)


def test_missing_file_fails_and_leaves_nothing(published: Path, out: Path) -> None:
    (published / "releases" / NEW / "README.md").unlink()
    with pytest.raises(DownloadError, match=r"README\.md is listed in the catalogue but missing"):
        download_release(str(published), out)
    assert_nothing_written(out)


def test_unknown_version_lists_the_available_ones(published: Path, out: Path) -> None:
    with pytest.raises(ReleaseNotFoundError) as error:
        download_release(str(published), out, "2025.01.01")
    assert "no release 2025.01.01" in str(error.value)
    assert f"available: {NEW}, {OLD}" in str(error.value)
    assert_nothing_written(out)


@pytest.mark.parametrize("relpath", ["../../escape.txt", "/etc/passwd", "data\\..\\x"])
def test_catalogue_paths_cannot_escape_the_output_folder(
    tmp_path: Path, out: Path, relpath: str
) -> None:
    root = tmp_path / "hostile"
    publish_release(LocalTarget(root), NEW, {"README.md": b"ok\n"})
    catalog = json.loads((root / "catalog.json").read_text())
    catalog["releases"][0]["files"][relpath] = {"sha256": "0" * 64, "bytes": 1}
    (root / "catalog.json").write_text(json.dumps(catalog))
    with pytest.raises(DownloadError, match="unsafe key"):
        download_release(str(root), out)
    assert_nothing_written(out)
    assert not (tmp_path / "escape.txt").exists()


def test_unsafe_version_in_the_catalogue_is_refused(published: Path, out: Path) -> None:
    catalog = json.loads((published / "catalog.json").read_text())
    catalog["releases"][0]["version"] = catalog["latest"] = "../2026.11.28"
    (published / "catalog.json").write_text(json.dumps(catalog))
    with pytest.raises(DownloadError, match="unsafe version"):
        download_release(str(published), out)
    assert_nothing_written(out)


def test_folder_without_catalogue_is_not_found(tmp_path: Path, out: Path) -> None:
    with pytest.raises(ReleaseNotFoundError, match=r"no catalog\.json"):
        download_release(str(tmp_path), out)
    with pytest.raises(ReleaseNotFoundError, match="no such folder"):
        download_release(str(tmp_path / "nowhere"), out)


# --- HTTP failures ------------------------------------------------------------------------


def test_http_500_is_retried_a_bounded_number_of_times(
    published: Path, out: Path, serve: Any
) -> None:
    failing = f"/releases/{NEW}/data/activities.csv"
    server = serve(published, frozenset({failing}))
    with pytest.raises(DownloadError) as error:
        download_release(server.url, out, retries=2, backoff=0, timeout=5)
    assert f"{server.url}releases/{NEW}/data/activities.csv" in str(error.value)
    assert "HTTP 500" in str(error.value)
    assert server.requests.count(failing) == 3  # the first try and two retries
    assert_nothing_written(out)


def test_http_404_for_the_catalogue_is_not_found(tmp_path: Path, out: Path, serve: Any) -> None:
    server = serve(tmp_path)
    with pytest.raises(ReleaseNotFoundError, match=rf"no catalog\.json at {server.url}"):
        download_release(server.url, out, timeout=5)


def test_connection_refused_names_the_url(out: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    with pytest.raises(DownloadError, match=rf"cannot fetch {url}catalog\.json: ConnectionError"):
        download_release(url, out, retries=1, backoff=0, timeout=2)


# --- cdcompact download -------------------------------------------------------------------


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="cdcompact download")
    add_download_arguments(parser)
    return parser.parse_args(argv)


def test_main_downloads_from_the_default_source(
    published: Path, out: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert download_main(parse(["--out", str(out)]), default_source=str(published)) == EXIT_OK
    printed = capsys.readouterr()
    assert printed.out.count("\n") == 1
    assert f"release {NEW} downloaded to {out / NEW}: 2 files" in printed.out
    assert printed.err == ""

    argv = ["--out", str(out), "--version", NEW, "--from", str(published)]
    assert download_main(parse(argv), default_source="/nowhere") == EXIT_OK
    assert f"release {NEW} already present in" in capsys.readouterr().out


def test_main_exits_1_on_a_verification_failure(
    published: Path, out: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (published / "releases" / NEW / "README.md").write_bytes(b"changed\n")
    argv = ["--out", str(out), "--from", str(published)]
    assert download_main(parse(argv)) == EXIT_FAILED
    printed = capsys.readouterr()
    assert printed.out == ""
    assert printed.err.startswith("cdcompact: README.md")
    assert_nothing_written(out)


@pytest.mark.parametrize(
    "case",
    ["missing-folder", "unknown-version", "out-is-a-file", "no-source"],
)
def test_main_exits_2_on_bad_arguments(
    published: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    out = tmp_path / "downloads"
    source: str | None = str(published)
    argv = ["--out", str(out)]
    if case == "missing-folder":
        source = str(tmp_path / "nowhere")
    elif case == "unknown-version":
        argv += ["--version", "1999.01.01"]
    elif case == "out-is-a-file":
        out.write_text("not a folder")
    else:
        source = None
    assert download_main(parse(argv), default_source=source) == EXIT_BAD_ARGUMENTS
    assert capsys.readouterr().err.startswith("cdcompact: ")
