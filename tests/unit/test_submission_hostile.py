"""Submissions that try to escape, to exhaust, or to be read as what they are not.

Each is refused with the rule and the words the submitter sees, or read with a note
saying what the reader decided; nothing is read from outside the submission and no
value is changed without a word.
"""

from __future__ import annotations

import io
import os
import stat
import zipfile
from pathlib import Path

import pytest

from assets.submissions.read import SubmissionRejected, read_submission, read_submission_bytes
from tests.submission_samples import PARTNER_META, _csv_bytes

ACTIVITY_HEADER = ("activity_id", "title", "country_code")


def _zip(members: dict[str, bytes], *, links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return buffer.getvalue()


META = _csv_bytes(PARTNER_META, [("XM-DEMO-9001", "2025", "", "")])


@pytest.mark.parametrize("name", ["/etc/passwd", "C:/Windows/win.ini", "\\\\server\\share\\x.csv"])
def test_absolute_paths_inside_a_zip_are_refused(name: str) -> None:
    with pytest.raises(SubmissionRejected) as caught:
        read_submission_bytes(_zip({"metadata.csv": META, name: b"a,b\n1,2\n"}), "partner.zip")
    assert caught.value.rule == "unsafe_path"
    assert repr(name) in caught.value.message


def test_a_symbolic_link_inside_a_zip_is_refused_not_followed() -> None:
    archive = _zip({"metadata.csv": META}, links={"activities.csv": "/etc/passwd"})
    with pytest.raises(SubmissionRejected) as caught:
        read_submission_bytes(archive, "partner.zip")
    assert caught.value.rule == "unsafe_path"
    assert caught.value.message == (
        "the archive holds a symbolic link ('activities.csv'); archives must hold plain files"
    )


def test_a_symbolic_link_in_a_submitted_folder_is_skipped_not_read(tmp_path: Path) -> None:
    folder = tmp_path / "partner"
    folder.mkdir()
    (folder / "metadata.csv").write_bytes(META)
    secret = tmp_path / "outside.csv"
    secret.write_text("activity_id,title\nSECRET-1,read from outside\n", encoding="utf-8")
    os.symlink(secret, folder / "activities.csv")
    raw = read_submission(folder)
    assert set(raw.sheets) == {"metadata"}
    assert "'activities.csv' is not a regular file; skipped" in raw.notes


def test_a_million_row_sheet_is_refused_at_the_limit_naming_the_row() -> None:
    rows = "".join(f"XM-{i},Activity {i},KE\r\n" for i in range(1_000_000))
    data = ",".join(ACTIVITY_HEADER).encode() + b"\r\n" + rows.encode()
    with pytest.raises(SubmissionRejected) as caught:
        read_submission_bytes(_zip({"metadata.csv": META, "activities.csv": data}), "big.zip")
    assert caught.value.rule == "too_many_rows"
    assert caught.value.message.startswith(
        "sheet 'activities' has more than 100,000 rows (row 100001 and beyond)"
    )


def test_a_windows_1252_file_is_read_as_such_and_said_so() -> None:
    data = ",".join(ACTIVITY_HEADER).encode() + "\r\nXM-1,Côte d’Ivoire – formation,CI\r\n".encode(
        "cp1252"
    )
    raw = read_submission_bytes(_zip({"metadata.csv": META, "activities.csv": data}), "p.zip")
    assert "'activities.csv' is not UTF-8; read as Windows-1252 (cp1252)" in raw.notes
    sheet = raw.sheets["activities"]
    assert sheet.rows[0][1] == "Côte d’Ivoire – formation"


def test_a_file_mixing_utf8_and_another_encoding_is_refused_naming_both_lines() -> None:
    data = (
        ",".join(ACTIVITY_HEADER).encode()
        + "\r\nXM-1,Côte d'Ivoire,CI\r\n".encode()  # line 2: UTF-8
        + "XM-2,Bénin,BJ\r\n".encode("cp1252")  # line 3: Windows-1252
    )
    with pytest.raises(SubmissionRejected) as caught:
        read_submission_bytes(_zip({"metadata.csv": META, "activities.csv": data}), "p.zip")
    assert caught.value.rule == "mixed_encoding"
    assert caught.value.message == (
        "'activities.csv' mixes encodings: line 2 is UTF-8 but line 3 is not; "
        "save the file as UTF-8 (CSV UTF-8 in Excel)"
    )


def test_bytes_that_no_encoding_explains_are_refused_not_replaced() -> None:
    data = ",".join(ACTIVITY_HEADER).encode() + b"\r\nXM-1,Caf\x81 \x8d,CI\r\n"
    with pytest.raises(SubmissionRejected) as caught:
        read_submission_bytes(_zip({"metadata.csv": META, "activities.csv": data}), "p.zip")
    assert caught.value.rule == "bad_encoding"
    assert caught.value.message == (
        "'activities.csv' line 2 holds bytes that are neither UTF-8 nor Windows-1252 "
        "(0x81); save the file as UTF-8 (CSV UTF-8 in Excel)"
    )
