"""What the fuzzer (``fuzz/run.py``, ``make fuzz``) found, kept as regression tests.

Each crash input is inline, as the fuzzer wrote it (minimised where that helped) or as the
smallest file that fails the same way (the fuzzer's ZIP inputs shrink badly: their offsets
and checksums break), with the outcome a submitter or a publisher sees:
a rejected file with a rule and a reason naming the problem, or an error on the cell.
Also here: every seed the fuzzer starts from goes through each harness directly (no
atheris), so that the harnesses themselves are kept working by the test suite.
"""

from __future__ import annotations

import json
import random
import time

import pytest
from lxml import etree

from assets.submissions.read import SubmissionRejected, read_submission_bytes
from fuzz import iati_harmonise, mutators, seeds, submission_read
from fuzz.run import corpus_in_memory, executions, python_error

# -- the harnesses over their seeds ---------------------------------------------------


@pytest.fixture(scope="module")
def iati_seeds() -> dict[str, bytes]:
    return seeds.iati_seeds()


@pytest.fixture(scope="module")
def submission_seeds() -> dict[str, bytes]:
    return seeds.submission_seeds()


def test_iati_seeds_come_from_the_fixtures_and_are_small(iati_seeds: dict[str, bytes]) -> None:
    names = set(iati_seeds)
    assert {"iati__valid__acfspain-ph.xml", "iati__invalid__truncated.xml"} <= names
    assert any(name.startswith("iati__legacy__") for name in names)
    assert all(len(data) <= seeds.MAX_SEED_BYTES for data in iati_seeds.values())
    # A large file is cut after whole activities and stays well-formed.
    armenia = iati_seeds["iati__valid__iati-activities-am-armenia.xml"]
    assert etree.fromstring(armenia).find("iati-activity") is not None


def test_every_iati_seed_passes_the_harness(iati_seeds: dict[str, bytes]) -> None:
    began = time.monotonic()
    for data in iati_seeds.values():
        iati_harmonise.test_one_input(data)
    assert time.monotonic() - began < 20
    ok = iati_harmonise.harmonise(iati_seeds["iati__valid__acfspain-ph.xml"])
    assert iati_harmonise.check(ok)["status"] == "ok"
    rejected = iati_harmonise.harmonise(iati_seeds["iati__invalid__not-xml.xml"])
    assert iati_harmonise.check(rejected)["reason"].startswith("the file is not XML")


def test_every_submission_seed_passes_the_harness(submission_seeds: dict[str, bytes]) -> None:
    assert "templates__partner_submission.xlsx" in submission_seeds
    assert "sample__zip_bomb.zip" in submission_seeds
    outcomes = {}
    for name, data in submission_seeds.items():
        submission_read.test_one_input(data)
        outcomes[name] = submission_read.process(data)
    assert isinstance(outcomes["sample__zip_bomb.zip"], SubmissionRejected)
    clean = outcomes["sample__clean_partner_submission.as.json"]
    assert not isinstance(clean, SubmissionRejected)
    assert clean[0].ok


def test_the_harness_fails_on_a_broken_invariant() -> None:
    harmonised = iati_harmonise.harmonise_file(
        iati_harmonise._PATH.with_name("missing.xml"), iati_harmonise.OPTIONS
    )
    iati_harmonise.check(harmonised)  # unreadable: rejected with a reason
    sources = harmonised.tables["sources"]
    sources.loc[0, "n_quarantined"] = 5
    with pytest.raises(iati_harmonise.InvariantBroken, match="n_records"):
        iati_harmonise.check(harmonised)


def test_structural_mutations_keep_inputs_parseable(
    iati_seeds: dict[str, bytes], submission_seeds: dict[str, bytes]
) -> None:
    rng = random.Random(7)
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    root = etree.fromstring(iati_seeds["iati__valid__provider-activity-id.xml"], parser)
    for _ in range(200):
        try:
            mutators.mutate_xml_tree(root, rng)
        except ValueError:
            continue
    etree.fromstring(etree.tostring(root), parser)
    submission = json.loads(submission_seeds["sample__partner_json.json"])
    for _ in range(200):
        mutators.mutate_submission(submission, rng)
    json.loads(json.dumps(submission))


def test_run_reads_libfuzzer_output() -> None:
    log = (
        "#512\tpulse  cov: 10 ft: 20 corp: 3/1Kb exec/s: 9 rss: 100Mb\n"
        "=== Uncaught Python exception: ===\n"
        "ValueError: year 0 is out of range\n"
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in f\n'
        "stat::number_of_executed_units: 777\n"
    )
    assert executions(log) == 777
    assert executions("#5\tINITED cov: 1\n#9\tNEW cov: 2\n") == 9
    assert python_error(log) == "ValueError: year 0 is out of range"
    assert corpus_in_memory(log) == 3
    assert corpus_in_memory("no status yet") is None


# -- IATI: a last-updated-datetime that is no day ---------------------------------------

#: Found by the fuzzer in the ACF Spain fixture with one digit changed (minimised by hand to
#: the activity that matters): ``dt.datetime(2018, 10, 90)`` raised ValueError out of
#: ``harmonise_file``, so the whole file failed.
IATI_IMPOSSIBLE_UPDATE = (
    b'<?xml version="1.0"?>\n<iati-activities version="2.02">\n'
    b'  <iati-activity last-updated-datetime="2018-10-90T09:33:43+00:00" '
    b'default-currency="EUR">\n'
    b"    <iati-identifier>ES-CIF-G81164105-PHF5AC</iati-identifier>\n"
    b"    <title><narrative>Integrated emergency response</narrative></title>\n"
    b"  </iati-activity>\n</iati-activities>\n"
)


@pytest.mark.parametrize(
    "stamp",
    [
        "2018-10-90T09:33:43+00:00",  # the fuzzer's
        "2018-13-01T00:00:00",
        "0000-01-01T00:00:00",
        "0001-01-01T00:00:00+14:00",  # valid, but before year 1 in UTC (OverflowError)
        "9999-12-31T23:00:00-05:00",  # after 9999 in UTC
    ],
)
def test_an_impossible_last_updated_datetime_is_left_empty_with_a_warning(stamp: str) -> None:
    data = IATI_IMPOSSIBLE_UPDATE.replace(b"2018-10-90T09:33:43+00:00", stamp.encode())
    harmonised = iati_harmonise.harmonise(data)
    source = iati_harmonise.check(harmonised)
    assert (source["status"], source["n_accepted"]) == ("ok", 1)
    assert harmonised.tables["activities"]["last_updated"].isna().all()
    quarantine = harmonised.tables["quarantine"].to_dict("records")
    assert [(q["rule"], q["field"], q["severity"], q["value"]) for q in quarantine] == [
        ("invalid_date", "last_updated", "warning", stamp)
    ]
    assert quarantine[0]["message"] == (
        f"line 3: last-updated-datetime {stamp!r} is not a date-time; left empty"
    )


# -- IATI: a hierarchy too large for the table ------------------------------------------

#: Found by the fuzzer (minimised by hand): a 40-digit ``hierarchy`` passed ``str.isdigit``
#: and overflowed the activities table's 64-bit integer column (OverflowError out of
#: ``harmonise_file``). "²" passes ``isdigit`` too, and ``int("²")`` raised ValueError.
IATI_HUGE_HIERARCHY = (
    b'<iati-activities version="2.03">\n'
    b'  <iati-activity hierarchy="9999999999999999999999999999999999999999">\n'
    b"    <iati-identifier>XM-DAC-1-A</iati-identifier>\n"
    b"  </iati-activity>\n</iati-activities>\n"
)


@pytest.mark.parametrize(
    "hierarchy", ["9999999999999999999999999999999999999999", "9223372036854775808", "²"]
)
def test_a_hierarchy_that_is_no_64_bit_number_is_left_empty_with_a_warning(
    hierarchy: str,
) -> None:
    data = IATI_HUGE_HIERARCHY.replace(b"9" * 40, hierarchy.encode())
    harmonised = iati_harmonise.harmonise(data)
    source = iati_harmonise.check(harmonised)
    assert (source["status"], source["n_accepted"]) == ("ok", 1)
    assert harmonised.tables["activities"]["hierarchy"].isna().all()
    [warning] = [
        q for q in harmonised.tables["quarantine"].to_dict("records") if q["field"] == "hierarchy"
    ]
    assert (warning["rule"], warning["severity"], warning["value"]) == (
        "not_a_number",
        "warning",
        hierarchy,
    )
    assert f"hierarchy {hierarchy!r} is not a whole number" in warning["message"]


def test_a_hierarchy_of_18_digits_is_kept() -> None:
    data = IATI_HUGE_HIERARCHY.replace(b"9" * 40, b"9" * 18)
    harmonised = iati_harmonise.harmonise(data)
    assert harmonised.tables["activities"]["hierarchy"].tolist() == [10**18 - 1]


# -- submissions: ZIP members that cannot be decompressed -----------------------------

#: An XLSX-like ZIP whose worksheet's deflate stream starts with an invalid block type:
#: zlib.error escaped the formula scan (``_has_formulas``).
XLSX_BAD_DEFLATE = (
    b"PK\x03\x04\x14\x00\x00\x00\x00\x00\x00\x00!Z\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    b"\x00\x00\x0f\x00\x00\x00xl/workbook.xmlPK\x03\x04\x14\x00\x00\x00\x08\x00\x00\x00!Z+"
    b"\x84&\x12\x06\x00\x00\x00\x04\x00\x00\x00\x13\x00\x00\x00xl/worksheets/s.xml\xff\xa9"
    b"\xd0\xb7\x03\x00PK\x01\x02\x14\x03\x14\x00\x00\x00\x00\x00\x00\x00!Z\x00\x00\x00\x00"
    b"\x00\x00\x00\x00\x00\x00\x00\x00\x0f\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80"
    b"\x01\x00\x00\x00\x00xl/workbook.xmlPK\x01\x02\x14\x03\x14\x00\x00\x00\x08\x00\x00\x00"
    b"!Z+\x84&\x12\x06\x00\x00\x00\x04\x00\x00\x00\x13\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    b"\x00\x00\x80\x01-\x00\x00\x00xl/worksheets/s.xmlPK\x05\x06\x00\x00\x00\x00\x02\x00\x02"
    b"\x00~\x00\x00\x00d\x00\x00\x00\x00\x00"
)
#: A ZIP of CSV files whose only member has a broken deflate stream (``_member_bytes``).
CSV_ZIP_BAD_DEFLATE = (
    b"PK\x03\x04\x14\x00\x00\x00\x08\x00\x00\x00!Z\x00$\xc1\x89\x06\x00\x00\x00\x04\x00\x00"
    b"\x00\x05\x00\x00\x00a.csv\xff\xe42\xe4\x02\x00PK\x01\x02\x14\x03\x14\x00\x00\x00\x08"
    b"\x00\x00\x00!Z\x00$\xc1\x89\x06\x00\x00\x00\x04\x00\x00\x00\x05\x00\x00\x00\x00\x00"
    b"\x00\x00\x00\x00\x00\x00\x80\x01\x00\x00\x00\x00a.csvPK\x05\x06\x00\x00\x00\x00\x01"
    b"\x00\x01\x003\x00\x00\x00)\x00\x00\x00\x00\x00"
)
#: The same with LZMA, its properties damaged: lzma.LZMAError.
CSV_ZIP_BAD_LZMA = (
    b"PK\x03\x04?\x00\x02\x00\x0e\x00\x00\x00!Z\x00$\xc1\x89\x17\x00\x00\x00\x04\x00\x00\x00"
    b"\x05\x00\x00\x00a.csv\t\x04\x04\x00]\x00\x00\x80\x00\x000\x82\x82\x1f S\xdf\xff\xff"
    b"\xfc!\x00\x00PK\x01\x02?\x03?\x00\x02\x00\x0e\x00\x00\x00!Z\x00$\xc1\x89\x17\x00\x00"
    b"\x00\x04\x00\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x01\x00\x00"
    b"\x00\x00a.csvPK\x05\x06\x00\x00\x00\x00\x01\x00\x01\x003\x00\x00\x00:\x00\x00\x00\x00"
    b"\x00"
)
#: A worksheet stored with compression method 99 (AES): NotImplementedError in the scan.
XLSX_UNKNOWN_METHOD = (
    b"PK\x03\x04\x14\x00\x00\x00\x00\x00\x00\x00!Z\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    b"\x00\x00\x0f\x00\x00\x00xl/workbook.xmlPK\x03\x04\x14\x00\x00\x00c\x00\x00\x00!Z+\x84"
    b"&\x12\x04\x00\x00\x00\x04\x00\x00\x00\x13\x00\x00\x00xl/worksheets/s.xml<x/>PK\x01\x02"
    b"\x14\x03\x14\x00\x00\x00\x00\x00\x00\x00!Z\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    b"\x00\x0f\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x01\x00\x00\x00\x00xl/workbo"
    b"ok.xmlPK\x01\x02\x14\x03\x14\x00\x00\x00c\x00\x00\x00!Z+\x84&\x12\x04\x00\x00\x00\x04"
    b"\x00\x00\x00\x13\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x01-\x00\x00\x00xl/wo"
    b"rksheets/s.xmlPK\x05\x06\x00\x00\x00\x00\x02\x00\x02\x00~\x00\x00\x00b\x00\x00\x00\x00"
    b"\x00"
)
#: A central directory saying "version 11.5 needed to extract": NotImplementedError when
#: the archive is opened.
ZIP_VERSION_11_5 = (
    b"PK\x03\x04\x14\x00\x00\x00\x00\x00\x00\x00!Z\x00$\xc1\x89\x04\x00\x00\x00\x04\x00\x00"
    b"\x00\x05\x00\x00\x00a.csva\n1\nPK\x01\x02\x14\x03s\x00\x00\x00\x00\x00\x00\x00!Z\x00$"
    b"\xc1\x89\x04\x00\x00\x00\x04\x00\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    b"\x00\x80\x01\x00\x00\x00\x00a.csvPK\x05\x06\x00\x00\x00\x00\x01\x00\x01\x003\x00\x00"
    b"\x00'\x00\x00\x00\x00\x00"
)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        pytest.param(
            XLSX_BAD_DEFLATE,
            "the workbook part 'xl/worksheets/s.xml' cannot be read (Error -3",
            id="xlsx-deflate",
        ),
        pytest.param(
            CSV_ZIP_BAD_DEFLATE,
            "the archive member 'a.csv' cannot be read (Error -3",
            id="csv-zip-deflate",
        ),
        pytest.param(
            CSV_ZIP_BAD_LZMA,
            "the archive member 'a.csv' cannot be read (Invalid or unsupported options)",
            id="csv-zip-lzma",
        ),
        pytest.param(
            XLSX_UNKNOWN_METHOD,
            "the workbook part 'xl/worksheets/s.xml' cannot be read (That compression method",
            id="xlsx-method-99",
        ),
        pytest.param(
            ZIP_VERSION_11_5,
            "a damaged ZIP/XLSX file (zip file version 11.5)",
            id="zip-version",
        ),
    ],
)
def test_an_archive_that_cannot_be_decompressed_is_rejected_as_corrupt(
    data: bytes, reason: str
) -> None:
    with pytest.raises(SubmissionRejected) as caught:
        read_submission_bytes(data, "upload.xlsx")
    assert caught.value.rule == "corrupt"
    assert str(caught.value).startswith(reason)
    submission_read.test_one_input(data)


# -- submissions: a ZIP member without a name -------------------------------------------

#: Members named "" and "a.csv": ZipInfo.is_dir() raised IndexError on the empty name.
CSV_ZIP_NAMELESS_MEMBER = (
    b"PK\x03\x04\x14\x00\x00\x00\x00\x00\x00\x00!Z\x83\x16\xdc\x8c\x01\x00\x00\x00\x01\x00"
    b"\x00\x00\x00\x00\x00\x00xPK\x03\x04\x14\x00\x00\x00\x00\x00\x00\x00!Z\x00$\xc1\x89\x04"
    b"\x00\x00\x00\x04\x00\x00\x00\x05\x00\x00\x00a.csva\n1\nPK\x01\x02\x14\x03\x14\x00\x00"
    b"\x00\x00\x00\x00\x00!Z\x83\x16\xdc\x8c\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00"
    b"\x00\x00\x00\x00\x00\x00\x00\x00\x80\x01\x00\x00\x00\x00PK\x01\x02\x14\x03\x14\x00\x00"
    b"\x00\x00\x00\x00\x00!Z\x00$\xc1\x89\x04\x00\x00\x00\x04\x00\x00\x00\x05\x00\x00\x00"
    b"\x00\x00\x00\x00\x00\x00\x00\x00\x80\x01\x1f\x00\x00\x00a.csvPK\x05\x06\x00\x00\x00"
    b"\x00\x02\x00\x02\x00a\x00\x00\x00F\x00\x00\x00\x00\x00"
)


def test_a_zip_member_without_a_name_is_skipped_with_a_note() -> None:
    raw = read_submission_bytes(CSV_ZIP_NAMELESS_MEMBER, "upload.zip")
    assert raw.format == "csv_zip"
    assert list(raw.sheets) == ["a"]
    assert raw.sheets["a"].rows == [["1"]]
    assert "'' in the archive is not a file name; skipped" in raw.notes
    submission_read.test_one_input(CSV_ZIP_NAMELESS_MEMBER)


def test_a_zip_with_only_a_nameless_member_holds_no_sheets() -> None:
    only_nameless = (
        b"PK\x03\x04\x14\x00\x00\x00\x00\x00\x00\x00!Z\x83\x16\xdc\x8c\x01\x00\x00\x00\x01\x00"
        b"\x00\x00\x00\x00\x00\x00xPK\x01\x02\x14\x03\x14\x00\x00\x00\x00\x00\x00\x00!Z\x83"
        b"\x16\xdc\x8c\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
        b"\x00\x00\x80\x01\x00\x00\x00\x00PK\x05\x06\x00\x00\x00\x00\x01\x00\x01\x00.\x00\x00"
        b"\x00\x1f\x00\x00\x00\x00\x00"
    )
    with pytest.raises(SubmissionRejected) as caught:
        read_submission_bytes(only_nameless, "upload.zip")
    assert caught.value.rule == "empty"


# -- submissions: JSON numbers beyond float's range, years that are not years ----------

#: Found by the fuzzer (minimised): a JSON integer of 310 digits in a number column
#: (``et_value``, read as ``target_value``): OverflowError in ``float()`` in the checker.
JSON_HUGE_INTEGER = (
    b'{"":{"":"","":""},"activities":[{"":"","":"","":"","":true,"":false,"":""}],'
    b'"sults":[{"":"","et_value":1' + b"0" * 309 + b"}]}"
)


def test_a_json_number_beyond_float_range_is_an_error_on_its_cell() -> None:
    outcome = submission_read.process(JSON_HUGE_INTEGER)
    assert not isinstance(outcome, SubmissionRejected)
    checked, harmonised = outcome
    errors = [
        p for p in checked.errors if (p.sheet, p.row, p.column) == ("results", 1, "target_value")
    ]
    assert [p.rule for p in errors] == ["type"]
    assert errors[0].message == "1" + "0" * 309 + " is too large a number"
    assert harmonised.tables["results"].empty


#: Found by the fuzzer (minimised): a partner submission whose reporting period is "0000"
#: and whose activity reports a disbursement: ``dt.date(0, 12, 31)`` raised ValueError when
#: the disbursement was dated by the end of the period.
JSON_PERIOD_0000 = (
    b'{"tadata":[{"er_org_ref":"1","ting_period":"0000","":""}],"activities":[{"ivity_id":'
    b'"s","itle":"t","coy_code":"GH","":"","":"","":0,"bursed":0,"rrency":"USD","":"","":""}'
    b',{"":""},{"":"","":"","":"","":"","":"","":""},{"":"","":"","":"","":""},{"":"","":"",'
    b'"":"","":"","":"","":"","":"","":2,"":""}]}'
)


def test_a_reporting_period_without_a_real_year_leaves_the_disbursement_undated() -> None:
    outcome = submission_read.process(JSON_PERIOD_0000)
    assert not isinstance(outcome, SubmissionRejected)
    checked, harmonised = outcome
    assert checked.metadata["reporting_period"] == "0000"
    transactions = harmonised.tables["transactions"]
    assert transactions["value"].tolist() == [0.0]
    # No year to take the period's end from, and no end date on the activity.
    assert transactions["transaction_date"].isna().all()


def test_a_json_integer_too_long_to_read_is_rejected_as_not_valid_json() -> None:
    # Python refuses to read integers of more than 4,300 digits (ValueError, not a
    # JSONDecodeError); found by probing the JSON reader's edges, not by the fuzzer.
    data = b'{"activities": [{"disbursed": ' + b"1" * 5000 + b"}]}"
    with pytest.raises(SubmissionRejected) as caught:
        read_submission_bytes(data, "upload.json")
    assert caught.value.rule == "corrupt"
    assert str(caught.value).startswith("not valid JSON (Exceeds the limit (4300 digits)")
    submission_read.test_one_input(data)
