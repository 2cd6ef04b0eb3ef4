"""The ``bulk`` IATI source against a real local HTTP server: ZIP archives built here
from the shared IATI fixtures (read from ../shared/fixtures, never copied), normal and
hostile. Every test checks outcomes: statuses, reasons, and the bytes in the raw store."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import logging
import re
import stat
import struct
import time
import tracemalloc
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from assets.fetch.http import HttpClient
from assets.fetch.rawstore import RawStore
from assets.fetch.sources import (
    BulkSource,
    FetchResult,
    SourceConfigError,
    adapters_from_settings,
    fetch_all,
)
from assets.settings import IatiSource, load_settings
from tests.conftest import IATI_FIXTURES
from tests.http_fixture_server import (  # noqa: F401 - fixture
    FixtureServer,
    Reply,
    http_server_fixture,
)

VALID = IATI_FIXTURES / "valid"
MIB = 1024 * 1024
HTML = b"<!DOCTYPE html>\n<html><body><h1>Down for maintenance</h1></body></html>\n"
#: The IATI data dump's layout: data/<publisher>/<Registry dataset name>.xml
DUMP = {
    "data/acfspain/acfspain-ph.xml": "acfspain-ph.xml",
    "data/worldbank/worldbank-sv.xml": "worldbank-sv.xml",
    "data/testpub/testpub-currency.xml": "default_currency.xml",
    "data/testpub/testpub-locales.xml": "multiple_locales_descriptions.xml",
}
BOMB_HEAD = b'<?xml version="1.0" encoding="UTF-8"?>\n<iati-activities version="2.03">\n'
BOMB_BYTES = 200 * MIB


# -- building archives --------------------------------------------------------------------


def fixture(name: str) -> bytes:
    return (VALID / name).read_bytes()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build_zip(
    members: Iterable[tuple[str | zipfile.ZipInfo, bytes]], method: int = zipfile.ZIP_DEFLATED
) -> bytes:
    """The archive's bytes: the same members give the same bytes, whenever they are built
    (the dump's own time stamp, not the clock's: a test that builds the same archive twice
    must get the same ETag)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, content in members:
            if isinstance(name, str):  # as ZipFile.writestr makes it, at a fixed time
                info = zipfile.ZipInfo(name, date_time=(2026, 11, 28, 0, 0, 0))
                info.compress_type = method
                info.external_attr = (0o40775 << 16 | 0x10) if name.endswith("/") else 0o600 << 16
                name = info
            archive.writestr(name, content)
    return buffer.getvalue()


def dump_members(**replace: bytes) -> list[tuple[str | zipfile.ZipInfo, bytes]]:
    """The four dump members plus what a real dump also holds (folders, metadata)."""
    members: list[tuple[str | zipfile.ZipInfo, bytes]] = [
        ("iati-data-main/", b""),
        ("iati-data-main/metadata.json", b'{"created_at": "2026-11-28T00:00:00Z"}'),
        ("data/", b""),
    ]
    for member, file in DUMP.items():
        members.append((member, replace.get(member, fixture(file))))
        json_name = member.replace("data/", "metadata/", 1).replace(".xml", ".json")
        members.append((json_name, b'{"name": "x"}'))
    return members


def central_entries(data: bytes) -> dict[str, int]:
    """Where each member's central-directory entry starts, by name."""
    end = data.rindex(b"PK\x05\x06")
    count, _, offset = struct.unpack_from("<HLL", data, end + 10)
    entries: dict[str, int] = {}
    position = offset
    for _ in range(count):
        assert data[position : position + 4] == b"PK\x01\x02"
        name_length, extra_length, comment_length = struct.unpack_from("<3H", data, position + 28)
        name = data[position + 46 : position + 46 + name_length].decode("utf-8")
        entries[name] = position
        position += 46 + name_length + extra_length + comment_length
    return entries


def patch(
    data: bytes,
    name: str,
    *,
    file_size: int | None = None,
    flags: int = 0,
    local_flags: int = 0,
    header_offset_of: str | None = None,
) -> bytes:
    """The archive with one member's headers changed by hand, as a hostile tool would."""
    buffer = bytearray(data)
    entries = central_entries(data)
    central = entries[name]
    (local,) = struct.unpack_from("<L", buffer, central + 42)
    if file_size is not None:
        struct.pack_into("<L", buffer, central + 24, file_size)
        struct.pack_into("<L", buffer, local + 22, file_size)
    for position, bits in ((central + 8, flags), (local + 6, flags | local_flags)):
        (value,) = struct.unpack_from("<H", buffer, position)
        struct.pack_into("<H", buffer, position, value | bits)
    if header_offset_of is not None:
        (other,) = struct.unpack_from("<L", buffer, entries[header_offset_of] + 42)
        struct.pack_into("<L", buffer, central + 42, other)
    return bytes(buffer)


def data_offset(data: bytes, name: str) -> int:
    """Where a member's (compressed) bytes start in the archive."""
    (local,) = struct.unpack_from("<L", data, central_entries(data)[name] + 42)
    name_length, extra_length = struct.unpack_from("<HH", data, local + 26)
    return int(local + 30 + name_length + extra_length)


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """200 MiB that look like IATI XML for 72 bytes, then spaces: about 200 KB deflated."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("data/bomb/bomb-zeros.xml", "w") as out:
            out.write(BOMB_HEAD)
            block = b" " * MIB
            for _ in range(BOMB_BYTES // MIB - 1):
                out.write(block)
            out.write(b" " * (MIB - len(BOMB_HEAD)))
        archive.writestr("data/acfspain/acfspain-ph.xml", fixture("acfspain-ph.xml"))
    return buffer.getvalue()


# -- running the source ---------------------------------------------------------------------


@pytest.fixture
def client() -> HttpClient:
    return HttpClient(timeout=(2, 5), retries=2, backoff=0, sleep=lambda _: None)


@pytest.fixture
def store(tmp_path: Path) -> RawStore:
    return RawStore.local(tmp_path / "data")


def configured(client: HttpClient, options: dict[str, Any], max_file_mb: float = 100) -> BulkSource:
    """The source as configuration builds it (``iati.sources`` entry named ``dump``)."""
    base = load_settings()
    settings = dataclasses.replace(
        base,
        iati_sources=(IatiSource("dump", "bulk", options=options),),
        fetch=dataclasses.replace(base.fetch, max_bytes=int(max_file_mb * MIB)),
    )
    (adapter,) = adapters_from_settings(settings, client, environ={})
    assert isinstance(adapter, BulkSource)
    return adapter


def bulk_source(
    client: HttpClient, url: str, *, max_file_mb: float = 100, **options: Any
) -> BulkSource:
    return configured(client, {"url": url, **options}, max_file_mb)


def by_key(results: list[FetchResult]) -> dict[str, FetchResult]:
    return {r.ref.key: r for r in results}


def by_member(results: list[FetchResult]) -> dict[str, FetchResult]:
    """Results of archive members, by member path (from ``<url>#<member>``)."""
    return {unquote(r.ref.uri.split("#", 1)[1]): r for r in results if "#" in r.ref.uri}


def statuses(results: list[FetchResult]) -> dict[str, str]:
    return {r.ref.key: r.status for r in results}


def stored_objects(store: RawStore) -> dict[str, bytes]:
    """Every object in the raw store, by sha256."""
    folder = store.cache_dir.parent / "raw" / "sha256"
    return {p.stem: p.read_bytes() for p in folder.rglob("*.xml")} if folder.is_dir() else {}


def assert_only_store_files(root: Path) -> None:
    """Nothing but the raw store's own files anywhere: no member was written under its
    name, no staging file is left behind."""
    allowed = re.compile(r"^(?:[0-9a-f]{64}\.xml|state\.json|\.state\.lock|dump\.json)$")
    unexpected = [p for p in root.rglob("*") if p.is_file() and not allowed.match(p.name)]
    assert unexpected == []
    assert list((root / "data" / "raw-cache" / "incoming").glob("*")) == []


# -- a normal archive -----------------------------------------------------------------------


def test_a_dump_archive_gives_one_dataset_per_xml_member_then_unchanged_then_updated(
    http_server: FixtureServer, client: HttpClient, store: RawStore, tmp_path: Path
) -> None:
    members = dump_members()
    members += [
        ("README.md", b"# IATI data\n"),
        ("DATA/Upper/UPPER-CASE.XML", fixture("provider-activity-id.xml")),
        ("extra/2024/activities.xml", fixture("who-arg.xml")),
    ]
    url = http_server.file("/download/dump.zip", build_zip(members))
    source = bulk_source(client, url)

    first = fetch_all([source], store)
    assert statuses(first) == {
        "acfspain-ph": "updated",
        "worldbank-sv": "updated",
        "testpub-currency": "updated",
        "testpub-locales": "updated",
        "UPPER-CASE": "updated",
        "extra-2024-activities": "updated",
    }
    assert [r.ref.key for r in first] == sorted(r.ref.key for r in first)
    results = by_key(first)
    for member, file in DUMP.items():
        result = by_member(first)[member]
        assert result.ref.uri == f"{url}#{member}"
        assert result.ref.kind == "bulk"
        assert result.ref.publisher == member.split("/")[1]
        assert result.sha256 == sha256(fixture(file))
        assert result.path is not None
        assert result.path.read_bytes() == fixture(file)
        assert result.bytes == len(fixture(file))
        assert (result.http_status, result.error) == (200, None)
        assert result.etag
    assert results["UPPER-CASE"].ref.publisher == "Upper"  # patterns ignore case
    assert results["extra-2024-activities"].ref.publisher == "2024"
    assert stored_objects(store).keys() == {r.sha256 for r in first}
    # New: one attempt in each record's history.
    assert all(len(store.records()[r.ref.key].history) == 1 for r in first)
    assert_only_store_files(tmp_path)

    # Second run: the server answers 304 to the archive's ETag; nothing is read again.
    second = fetch_all([source], store)
    assert set(statuses(second).values()) == {"unchanged"}
    for result in second:
        assert result.http_status == 304
        assert result.sha256 == results[result.ref.key].sha256
        assert result.path == results[result.ref.key].path
    requests = http_server.requests("/download/dump.zip")
    assert len(requests) == 2
    assert "if-none-match" not in requests[0].headers
    assert requests[1].headers["if-none-match"] == first[0].etag
    assert_only_store_files(tmp_path)

    # The dump changes: one file edited, one gone, one new.
    changed = fixture("acfspain-ph.xml").replace(b"typhoon", b"Typhoon")
    assert changed != fixture("acfspain-ph.xml")
    new_members = [
        (name, content)
        for name, content in dump_members(**{"data/acfspain/acfspain-ph.xml": changed})
        if not str(name).startswith(("data/worldbank/", "metadata/worldbank/"))
    ]
    new_members.append(("data/wri/wri-strategy.xml", fixture("provider-activity-id.xml")))
    http_server.file("/download/dump.zip", build_zip(new_members))
    third = by_key(fetch_all([source], store))
    assert statuses(list(third.values())) == {
        "acfspain-ph": "updated",
        "testpub-currency": "unchanged",
        "testpub-locales": "unchanged",
        "wri-strategy": "updated",
        # no longer in the archive: missing, their last good copy kept (3 nights by default)
        "worldbank-sv": "missing",
        "UPPER-CASE": "missing",
        "extra-2024-activities": "missing",
    }
    assert third["acfspain-ph"].sha256 == sha256(changed)
    assert third["acfspain-ph"].path is not None
    assert third["acfspain-ph"].path.read_bytes() == changed
    assert third["testpub-currency"].http_status == 200
    # Gone from the archive, like a dataset gone from the Registry: named, its record and
    # last good copy kept in the state and still used.
    today = dt.datetime.now(dt.UTC).date().isoformat()
    assert third["worldbank-sv"].error == (
        f"not in the bulk archive since {today}, kept 1 of 3 nights"
    )
    assert third["worldbank-sv"].sha256 == sha256(fixture("worldbank-sv.xml"))
    gone = store.records()["worldbank-sv"]
    assert (gone.sha256, gone.status) == (sha256(fixture("worldbank-sv.xml")), "missing")
    assert len(gone.history) == 3
    assert_only_store_files(tmp_path)


def test_the_same_archive_without_validators_is_unchanged_through_its_sha256(
    http_server: FixtureServer, client: HttpClient, store: RawStore
) -> None:
    url = http_server.route("/dump.zip", Reply(200, build_zip(dump_members())))
    source = bulk_source(client, url)
    first = by_key(fetch_all([source], store))
    second = fetch_all([source], store)
    assert {r.status for r in second} == {"unchanged"}
    assert all(r.sha256 == first[r.ref.key].sha256 for r in second)
    assert all(r.http_status == 200 for r in second)
    assert len(http_server.requests("/dump.zip")) == 2


def test_a_not_modified_archive_repeats_each_members_verdict_without_reading_it(
    http_server: FixtureServer, client: HttpClient, store: RawStore
) -> None:
    members = [
        ("data/acfspain/acfspain-ph.xml", fixture("acfspain-ph.xml")),
        ("data/testpub/testpub-page.xml", HTML),
    ]
    url = http_server.file("/dump.zip", build_zip(members))
    source = bulk_source(client, url)
    first = by_key(fetch_all([source], store))
    page_error = (
        f"{url}: member 'data/testpub/testpub-page.xml': the member is an HTML page, not IATI XML"
    )
    assert first["testpub-page"].status == "failed"
    assert first["testpub-page"].error == page_error

    second = by_key(fetch_all([source], store))
    assert (second["acfspain-ph"].status, second["acfspain-ph"].http_status) == ("unchanged", 304)
    assert second["acfspain-ph"].sha256 == sha256(fixture("acfspain-ph.xml"))
    assert (second["testpub-page"].status, second["testpub-page"].error) == ("failed", page_error)
    assert second["testpub-page"].sha256 is None
    assert [r.headers.get("if-none-match") for r in http_server.requests("/dump.zip")] == [
        None,
        first["acfspain-ph"].etag,
    ]
    history = store.records()["acfspain-ph"].history
    assert [h["status"] for h in history] == ["updated", "unchanged"]


# -- zip bombs and lying headers ------------------------------------------------------------


def test_a_zip_bomb_member_is_refused_unread_and_the_rest_of_the_archive_goes_through(
    http_server: FixtureServer, client: HttpClient, store: RawStore, bomb: bytes
) -> None:
    url = http_server.file("/dump.zip", bomb)
    member = "data/bomb/bomb-zeros.xml"

    started = time.monotonic()
    results = by_member(fetch_all([bulk_source(client, url, max_file_mb=1)], store))
    assert time.monotonic() - started < 5
    assert results[member].status == "failed"
    assert results[member].error == (
        f"{url}: member {member!r}: its header declares 200.0 MB unpacked, over the "
        "limit of 1 MB (fetch.max_file_mb); not read"
    )
    assert results[member].sha256 is None
    assert results["data/acfspain/acfspain-ph.xml"].status == "updated"

    # Under a limit it fits in, the compression ratio gives it away.
    results = by_member(fetch_all([bulk_source(client, url, max_file_mb=500)], store))
    error = results[member].error or ""
    assert error.startswith(f"{url}: member {member!r}: its header declares a compression ratio")
    assert "(200.0 MB from 0.2 MB), over 200:1: a likely ZIP bomb; not read" in error
    assert results["data/acfspain/acfspain-ph.xml"].status == "unchanged"
    assert stored_objects(store).keys() == {sha256(fixture("acfspain-ph.xml"))}


def test_a_bomb_whose_header_lies_is_stopped_at_the_limit_while_reading_in_chunks(
    http_server: FixtureServer, client: HttpClient, store: RawStore, bomb: bytes
) -> None:
    member = "data/bomb/bomb-zeros.xml"
    # The header says 1 MiB (the limit: accepted as declared); 200 MiB come out.
    url = http_server.file("/dump.zip", patch(bomb, member, file_size=MIB))
    source = bulk_source(client, url, max_file_mb=1)

    tracemalloc.start()
    started = time.monotonic()
    try:
        results = by_member(fetch_all([source], store))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 5
    assert peak < 16 * MIB  # the archive is 0.2 MB, the member 200 MB: read 64 KiB at a time
    assert results[member].status == "failed"
    assert results[member].error == (
        f"{url}: member {member!r}: it unpacks to more than the limit of 1 MB "
        "(fetch.max_file_mb); reading stopped at 1.1 MB (its header declares 1,048,576 bytes)"
    )
    assert results["data/acfspain/acfspain-ph.xml"].status == "updated"
    assert stored_objects(store).keys() == {sha256(fixture("acfspain-ph.xml"))}

    # Under a large limit, a header within 200:1 of the compressed size is no cover either.
    compressed = zipfile.ZipFile(io.BytesIO(bomb)).getinfo(member).compress_size
    url = http_server.file("/dump2.zip", patch(bomb, member, file_size=200 * compressed))
    results = by_member(fetch_all([bulk_source(client, url, max_file_mb=500)], store))
    error = results[member].error or ""
    assert error.startswith(f"{url}: member {member!r}: it unpacks to more than 200 times")
    assert error.endswith("a likely ZIP bomb; reading stopped")


def test_members_whose_headers_lie_about_their_size_are_refused(
    http_server: FixtureServer, client: HttpClient, store: RawStore
) -> None:
    acf, currency = fixture("acfspain-ph.xml"), fixture("default_currency.xml")
    data = build_zip(
        [
            ("data/pub/pub-smaller.xml", acf),
            ("data/pub/pub-larger.xml", currency),
            ("data/pub/pub-honest.xml", fixture("provider-activity-id.xml")),
        ]
    )
    data = patch(data, "data/pub/pub-smaller.xml", file_size=1000)
    data = patch(data, "data/pub/pub-larger.xml", file_size=len(currency) + 100)
    url = http_server.file("/dump.zip", data)
    results = by_key(fetch_all([bulk_source(client, url)], store))

    assert statuses(list(results.values())) == {
        "pub-smaller": "failed",
        "pub-larger": "failed",
        "pub-honest": "updated",
    }
    assert results["pub-smaller"].error == (
        f"{url}: member 'data/pub/pub-smaller.xml': it holds more than the 1,000 bytes its "
        "header declares (a damaged or hostile archive); reading stopped"
    )
    assert results["pub-larger"].error == (
        f"{url}: member 'data/pub/pub-larger.xml': it holds {len(currency):,} bytes but its "
        f"header declares {len(currency) + 100:,} (a damaged or hostile archive)"
    )
    assert stored_objects(store).keys() == {sha256(fixture("provider-activity-id.xml"))}


def test_the_members_together_are_bounded_by_max_total_mb(
    http_server: FixtureServer, client: HttpClient, store: RawStore
) -> None:
    files = ["acfspain-ph.xml", "default_currency.xml", "multiple_locales_descriptions.xml"]
    files.append("provider-activity-id.xml")
    data = build_zip([(f"data/pub/pub-{n}.xml", fixture(f)) for n, f in enumerate(files)])
    url = http_server.file("/dump.zip", data)
    results = by_key(fetch_all([bulk_source(client, url, max_total_mb=0.02)], store))

    # 11,804 + 7,628 bytes fit in 0.02 MiB (20,971 bytes); the third crosses it.
    assert statuses(list(results.values())) == {
        "pub-0": "updated",
        "pub-1": "updated",
        "pub-2": "failed",
        "pub-3": "failed",
    }
    for key, member in (("pub-2", "data/pub/pub-2.xml"), ("pub-3", "data/pub/pub-3.xml")):
        assert results[key].error == (
            f"{url}: member {member!r}: the archive's members unpack to more than 0.02 MB "
            "in total (max_total_mb); the rest of the archive is not read"
        )


def test_members_sharing_their_data_are_refused(
    http_server: FixtureServer, client: HttpClient, store: RawStore
) -> None:
    data = build_zip(
        [
            ("data/pub/pub-a.xml", fixture("acfspain-ph.xml")),
            ("data/pub/pub-b.xml", fixture("default_currency.xml")),
            ("data/pub/pub-c.xml", fixture("provider-activity-id.xml")),
        ]
    )
    data = patch(data, "data/pub/pub-b.xml", header_offset_of="data/pub/pub-a.xml")
    url = http_server.file("/dump.zip", data)
    results = by_key(fetch_all([bulk_source(client, url)], store))
    assert statuses(list(results.values())) == {
        "pub-a": "failed",
        "pub-b": "failed",
        "pub-c": "updated",
    }
    assert results["pub-b"].error == (
        f"{url}: member 'data/pub/pub-b.xml': its data is shared with another member "
        "(overlapping members: a ZIP-bomb trick); not read"
    )


# -- hostile names and member types ---------------------------------------------------------


def test_path_traversal_and_absolute_member_names_are_refused_and_never_used_as_paths(
    http_server: FixtureServer, client: HttpClient, store: RawStore, tmp_path: Path
) -> None:
    acf = fixture("acfspain-ph.xml")
    climbing = ["../../evil.xml", "data/pub/../../../../evil-deep.xml", "..\\..\\evil-win.xml"]
    absolute = ["/tmp/evil-absolute.xml", "C:\\Windows\\evil-drive.xml", "//server/evil-unc.xml"]
    members = [(name, acf) for name in climbing + absolute]
    members.append(("data/pub/pub-good.xml", fixture("default_currency.xml")))
    url = http_server.file("/dump.zip", build_zip(members))
    results = by_member(fetch_all([bulk_source(client, url)], store))

    for name in climbing:
        assert results[name].status == "failed"
        assert results[name].error == (
            f"{url}: member {name!r}: its name climbs out of the archive (..)"
        )
    for name in absolute:
        assert results[name].status == "failed"
        assert results[name].error == f"{url}: member {name!r}: its name is an absolute path"
    good = results["data/pub/pub-good.xml"]
    assert (good.ref.key, good.status) == ("pub-good", "updated")
    # Refused members get keys after the good ones, and safe ones.
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", r.ref.key) for r in results.values())
    assert stored_objects(store).keys() == {sha256(fixture("default_currency.xml"))}
    assert not list(Path("/tmp").glob("evil-absolute.xml"))
    assert not list(tmp_path.parent.glob("evil*.xml"))
    assert_only_store_files(tmp_path)


def test_a_symbolic_link_member_is_refused_and_not_followed(
    http_server: FixtureServer, client: HttpClient, store: RawStore, tmp_path: Path
) -> None:
    link = zipfile.ZipInfo("data/pub/pub-link.xml")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    sibling = zipfile.ZipInfo("data/pub/pub-sibling.xml")
    sibling.external_attr = (stat.S_IFLNK | 0o777) << 16
    fifo = zipfile.ZipInfo("data/pub/pub-fifo.xml")
    fifo.external_attr = (stat.S_IFIFO | 0o644) << 16
    plain = zipfile.ZipInfo("data/pub/pub-plain.xml")
    plain.external_attr = (stat.S_IFREG | 0o644) << 16
    members: list[tuple[str | zipfile.ZipInfo, bytes]] = [
        (link, b"/etc/passwd"),
        (sibling, b"pub-plain.xml"),
        (fifo, fixture("acfspain-ph.xml")),
        (plain, fixture("default_currency.xml")),
    ]
    url = http_server.file("/dump.zip", build_zip(members))
    results = by_key(fetch_all([bulk_source(client, url)], store))

    assert statuses(list(results.values())) == {
        "pub-link": "failed",
        "pub-sibling": "failed",
        "pub-fifo": "failed",
        "pub-plain": "updated",
    }
    for key in ("pub-link", "pub-sibling"):
        member = f"data/pub/{key}.xml"
        assert results[key].error == f"{url}: member {member!r}: it is a symbolic link, not a file"
    assert results["pub-fifo"].error == (
        f"{url}: member 'data/pub/pub-fifo.xml': it is not a regular file "
        "(a device, pipe or folder)"
    )
    assert stored_objects(store).keys() == {sha256(fixture("default_currency.xml"))}
    assert_only_store_files(tmp_path)


def test_nested_archives_are_never_opened(
    http_server: FixtureServer,
    client: HttpClient,
    store: RawStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    inner = build_zip([("data/inner/inner-file.xml", fixture("worldbank-sv.xml"))])
    members: list[tuple[str | zipfile.ZipInfo, bytes]] = [
        ("data/pub/pub-more.zip", inner),
        ("data/pub/pub-disguised.xml", inner),
        ("data/pub/pub-good.xml", fixture("acfspain-ph.xml")),
    ]
    url = http_server.file("/dump.zip", build_zip(members))
    source = bulk_source(client, url)
    caplog.set_level(logging.INFO)
    results = by_key(fetch_all([source], store))

    assert statuses(list(results.values())) == {"pub-disguised": "failed", "pub-good": "updated"}
    assert results["pub-disguised"].error == (
        f"{url}: member 'data/pub/pub-disguised.xml': the member is a ZIP archive "
        "(or an XLSX/DOCX Office file), not IATI XML"
    )
    assert source.skipped == [("data/pub/pub-more.zip", "a nested archive; not opened")]
    assert f"nested archive(s) in {url} not opened: 'data/pub/pub-more.zip'" in caplog.text

    # Even when the patterns take it in, a nested archive is refused unread.
    source = bulk_source(client, url, members=["*.xml", "*.ZIP"])
    results = by_key(fetch_all([source], store))
    assert results["pub-more.zip"].status == "failed"
    assert results["pub-more.zip"].error == (
        f"{url}: member 'data/pub/pub-more.zip': it is an archive inside the archive; "
        "nested archives are not opened"
    )
    assert sha256(fixture("worldbank-sv.xml")) not in stored_objects(store)


def test_an_encrypted_member_is_refused(
    http_server: FixtureServer, client: HttpClient, store: RawStore
) -> None:
    data = build_zip(
        [
            ("data/pub/pub-secret.xml", fixture("acfspain-ph.xml")),
            ("data/pub/pub-local-secret.xml", fixture("default_currency.xml")),
            ("data/pub/pub-open.xml", fixture("provider-activity-id.xml")),
        ],
        method=zipfile.ZIP_STORED,
    )
    data = patch(data, "data/pub/pub-secret.xml", flags=0x1)  # both headers
    data = patch(data, "data/pub/pub-local-secret.xml", local_flags=0x1)  # local header only
    url = http_server.file("/dump.zip", data)
    results = by_key(fetch_all([bulk_source(client, url)], store))

    assert statuses(list(results.values())) == {
        "pub-secret": "failed",
        "pub-local-secret": "failed",
        "pub-open": "updated",
    }
    for key in ("pub-secret", "pub-local-secret"):
        member = f"data/pub/{key}.xml"
        assert (
            results[key].error == f"{url}: member {member!r}: it is encrypted (password-protected)"
        )
    assert stored_objects(store).keys() == {sha256(fixture("provider-activity-id.xml"))}


# -- archives that cannot be used -----------------------------------------------------------


def first_run(
    http_server: FixtureServer, client: HttpClient, store: RawStore
) -> tuple[BulkSource, str, dict[str, FetchResult]]:
    url = http_server.file("/download", build_zip(dump_members()))
    source = bulk_source(client, url)
    results = by_key(fetch_all([source], store))
    assert set(statuses(list(results.values())).values()) == {"updated"}
    return source, url, results


def assert_kept(results: dict[str, FetchResult], good: dict[str, FetchResult]) -> str:
    """Every dataset failed with its last good copy kept; the listing's error."""
    listing = results.pop("dump-listing")
    assert listing.status == "failed"
    error = listing.error or ""
    assert results.keys() == good.keys()
    for key, result in results.items():
        assert result.status == "failed"
        assert result.error == f"not refreshed: {error}"
        assert result.sha256 == good[key].sha256
        assert result.path is not None
        assert result.path.read_bytes() == (good[key].path or Path("/")).read_bytes()
    return error


def test_an_html_page_instead_of_the_archive_fails_the_source_and_keeps_last_good_copies(
    http_server: FixtureServer, client: HttpClient, store: RawStore, tmp_path: Path
) -> None:
    source, url, good = first_run(http_server, client, store)
    http_server.route("/download", Reply(200, HTML, {"Content-Type": "text/html"}))
    results = by_key(fetch_all([source], store))
    assert assert_kept(results, good) == (
        "listing the datasets of source 'dump' failed: "
        f"GET {url} failed: the server returned an HTML page, not a ZIP archive"
    )
    assert_only_store_files(tmp_path)


def test_a_truncated_archive_fails_the_source_and_keeps_last_good_copies(
    http_server: FixtureServer, client: HttpClient, store: RawStore, tmp_path: Path
) -> None:
    source, url, good = first_run(http_server, client, store)
    whole = build_zip(dump_members())

    # Served whole by HTTP, but the file itself was cut (a half-written upload).
    http_server.route("/download", Reply(200, whole[: len(whole) // 2]))
    results = by_key(fetch_all([source], store))
    assert assert_kept(results, good) == (
        "listing the datasets of source 'dump' failed: "
        f"{url}: the archive cannot be read: it has no end-of-archive record: it is "
        "truncated, damaged or not a ZIP archive"
    )

    # The connection dropped halfway (fewer bytes than Content-Length), every attempt.
    http_server.route("/download", Reply(200, whole, truncate_to=len(whole) // 2))
    results = by_key(fetch_all([source], store))
    error = assert_kept(results, good)
    assert error.startswith(f"listing the datasets of source 'dump' failed: GET {url} failed")
    assert "after 3 attempts" in error
    assert "cut short" in error
    assert len(http_server.requests("/download")) == 2 + 3
    assert_only_store_files(tmp_path)

    # The validators of the last archive read in full survived: the good one is a 304.
    http_server.file("/download", whole)
    results = by_key(fetch_all([source], store))
    assert {(r.status, r.http_status) for r in results.values()} == {("unchanged", 304)}


def test_a_member_with_a_bad_crc_fails_alone(
    http_server: FixtureServer, client: HttpClient, store: RawStore
) -> None:
    data = bytearray(build_zip(dump_members(), method=zipfile.ZIP_STORED))
    at = data_offset(bytes(data), "data/worldbank/worldbank-sv.xml") + 100_000
    data[at] ^= 0x20  # one letter's case: still XML, no longer the recorded bytes
    url = http_server.file("/dump.zip", bytes(data))
    results = by_key(fetch_all([bulk_source(client, url)], store))

    assert results["worldbank-sv"].status == "failed"
    assert results["worldbank-sv"].error == (
        f"{url}: member 'data/worldbank/worldbank-sv.xml': its CRC-32 does not match the one "
        "the archive records: the archive is damaged"
    )
    assert {results[k].status for k in ("acfspain-ph", "testpub-currency", "testpub-locales")} == {
        "updated"
    }
    assert sha256(fixture("worldbank-sv.xml")) not in stored_objects(store)


def test_limits_on_the_archive_itself_fail_the_listing(
    http_server: FixtureServer, client: HttpClient, store: RawStore
) -> None:
    data = build_zip(dump_members())
    url = http_server.file("/dump.zip", data)

    (listing,) = fetch_all([bulk_source(client, url, max_archive_mb=0.01)], store)
    assert listing.ref.key == "dump-listing"
    assert listing.error == (
        "listing the datasets of source 'dump' failed: "
        f"GET {url} failed: the response is {len(data)} bytes, over the limit of 10485 bytes"
    )

    (listing,) = fetch_all([bulk_source(client, url, max_members=5)], store)
    assert listing.error == (
        "listing the datasets of source 'dump' failed: "
        f"{url}: the archive cannot be read: it holds 11 entries, over the limit of 5 "
        "(max_members)"
    )

    (listing,) = fetch_all([bulk_source(client, url, members=["*.csv"])], store)
    assert listing.error == (
        "listing the datasets of source 'dump' failed: "
        f"{url}: the archive holds no member matching *.csv (9 files)"
    )
    assert store.records() == {}


def test_a_zip64_archive_of_more_than_65535_entries_is_bounded_by_its_end_record(
    http_server: FixtureServer, client: HttpClient, store: RawStore
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for number in range(66_000):  # a ZIP64 end record: over 0xFFFF entries
            archive.writestr(f"metadata/{number}.json", b"{}")
        archive.writestr("data/acfspain/acfspain-ph.xml", fixture("acfspain-ph.xml"))
    url = http_server.file("/dump.zip", buffer.getvalue())

    (listing,) = fetch_all([bulk_source(client, url, max_members=50_000)], store)
    assert listing.error == (
        "listing the datasets of source 'dump' failed: "
        f"{url}: the archive cannot be read: it holds 66,001 entries, over the limit of "
        "50,000 (max_members)"
    )
    source = bulk_source(client, url)
    (result,) = fetch_all([source], store)
    assert (result.ref.key, result.status) == ("acfspain-ph", "updated")
    assert result.sha256 == sha256(fixture("acfspain-ph.xml"))
    assert len(source.skipped) == 66_000


# -- configuration --------------------------------------------------------------------------


def test_configuration_defaults_and_mistakes(client: HttpClient) -> None:
    url = "https://iati-data-dump.codeforiati.org/download"
    source = bulk_source(client, url)
    assert source.patterns == ["*.xml"]
    assert (source.max_members, source.max_archive_bytes) == (100_000, 4096 * MIB)
    assert (source.max_member_bytes, source.max_total_bytes) == (100 * MIB, None)
    assert source.uri == url

    mistakes: dict[str, dict[str, Any]] = {
        "needs url": {"url": None},
        "url must be an http(s) URL": {"url": "ftp://example.org/dump.zip"},
        "members must be a list of strings": {"members": [1, 2]},
        "max_members must be a whole number above 0": {"max_members": 0},
        "max_archive_mb must be a number above 0": {"max_archive_mb": "big"},
        "max_total_mb must be a number above 0": {"max_total_mb": -1},
        "unknown option(s) urls": {"urls": [url]},
    }
    for message, options in mistakes.items():
        with pytest.raises(SourceConfigError, match=re.escape(message)):
            configured(client, {"url": url, **options})
