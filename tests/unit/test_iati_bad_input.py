"""Hostile and broken IATI input: refused or quarantined with a clear reason, never lost.

Every file here is a small IATI 2.03 snippet written into ``tmp_path``. The
rule under test: a file that cannot be read as IATI activities is ``rejected``
in ``sources`` with a reason naming the problem (and the line, when there is
one); a bad record is quarantined with its rule and place; everything good in
the same file and in every other file still goes through; for each source
``n_records = n_accepted + n_quarantined``; external entities are never
resolved and submitters' file names are never trusted.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pandas as pd
import pytest

from assets.iati.harmonise import (
    IATI_TABLES,
    HarmonisedFile,
    HarmoniseOptions,
    harmonise_file,
    harmonise_paths,
)
from assets.metrics.stage import PUBLISHED_TABLES
from assets.settings import load_settings
from pipelines.cli import main

XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
ROOT = '<iati-activities version="2.03">\n'
END = "</iati-activities>\n"
REJECTED_BY_DTD = "the file declares a DTD"


@pytest.fixture(scope="module")
def options() -> HarmoniseOptions:
    return HarmoniseOptions(rules=load_settings().cd_rules)


# -- building small IATI files --------------------------------------------------
def transaction(value: str | None, *, date: str = "2020-01-01") -> str:
    """One disbursement; ``value=None`` leaves the <value> element out."""
    value_element = "" if value is None else f'<value value-date="{date}">{value}</value>'
    return (
        '    <transaction><transaction-type code="3"/>'
        f'<transaction-date iso-date="{date}"/>{value_element}</transaction>\n'
    )


def activity(
    identifier: str | None, body: str = "", *, title: str = "Activity", currency: str = "USD"
) -> str:
    """One <iati-activity>; ``identifier=None`` leaves <iati-identifier> out.

    The activity spans ``4 + lines of body`` lines (opening tag, identifier,
    title, body, closing tag), so tests can say which line an element is on:
    the body starts three lines below the opening tag.
    """
    id_line = "" if identifier is None else f"<iati-identifier>{identifier}</iati-identifier>"
    return (
        f'  <iati-activity default-currency="{currency}">\n'
        f"    {id_line}\n"
        f"    <title><narrative>{title}</narrative></title>\n"
        f"{body}"
        "  </iati-activity>\n"
    )


def document(*activities: str, prolog: str = "") -> str:
    """A whole activity file: declaration (line 1), prolog, root (line 2 without a prolog)."""
    return XML_DECLARATION + prolog + ROOT + "".join(activities) + END


def write(directory: Path, name: str, content: str | bytes) -> Path:
    path = directory / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


# -- checking what came out -------------------------------------------------------
def check_counts(result: HarmonisedFile) -> dict[str, object]:
    """The one ``sources`` row, after checking it accounts for every record."""
    sources = result.tables["sources"]
    assert len(sources) == 1
    source = result.source
    assert source["n_records"] == source["n_accepted"] + source["n_quarantined"]
    assert source["n_accepted"] == len(result.tables["activities"])
    return source


def check_rejected(result: HarmonisedFile, rule: str) -> dict[str, object]:
    """A rejected file: no rows in any IATI table, one quarantine row saying why."""
    source = check_counts(result)
    assert source["status"] == "rejected"
    assert source["n_accepted"] == 0
    assert isinstance(source["reason"], str)
    assert source["reason"]
    for table in IATI_TABLES:
        assert result.tables[table].empty, table
    quarantine = result.tables["quarantine"]
    assert list(quarantine["rule"]) == [rule]
    row = quarantine.iloc[0]
    assert row["table"] == "sources"
    assert row["severity"] == "error"
    assert row["source_file"] == result.source_file
    assert source["reason"] in row["message"]
    return source


def errors(result: HarmonisedFile) -> pd.DataFrame:
    quarantine = result.tables["quarantine"]
    return quarantine[quarantine["severity"] == "error"].reset_index(drop=True)


def cells(tables: Mapping[str, pd.DataFrame]) -> Iterator[str]:
    """Every non-empty cell of every table, as text (column names too)."""
    for frame in tables.values():
        yield from (str(column) for column in frame.columns)
        for column in frame.columns:
            for value in frame[column]:
                if value is not None and not (isinstance(value, float) and pd.isna(value)):
                    yield str(value)


# -- entity expansion and external entities ------------------------------------------
def _billion_laughs(reference_in: str) -> str:
    entities = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
    )
    prolog = f"<!DOCTYPE iati-activities [{entities}]>\n"
    if reference_in == "attribute":
        return (
            XML_DECLARATION
            + prolog
            + '<iati-activities version="&lol9;">\n'
            + activity("XM-TEST-1")
            + END
        )
    return document(activity("XM-TEST-1", title="&lol9;"), prolog=prolog)


def test_billion_laughs_is_refused_as_a_dtd_and_quickly(
    tmp_path: Path, options: HarmoniseOptions
) -> None:
    path = write(tmp_path, "laughs.xml", _billion_laughs("title"))
    started = time.monotonic()
    result = harmonise_file(path, options)
    assert time.monotonic() - started < 2.0
    source = check_rejected(result, "doctype_not_allowed")
    assert REJECTED_BY_DTD in str(source["reason"])
    assert result.tables["quarantine"]["source_ref"].iloc[0] == "line 1"
    assert not any("lollol" in cell for cell in cells(result.tables))


def test_billion_laughs_in_a_root_attribute_is_refused_quickly(
    tmp_path: Path, options: HarmoniseOptions
) -> None:
    # libxml2 expands attribute entities before the root's start event, so the
    # amplification guard (not the DTD check) is what stops this one.
    path = write(tmp_path, "laughs-attribute.xml", _billion_laughs("attribute"))
    started = time.monotonic()
    result = harmonise_file(path, options)
    assert time.monotonic() - started < 2.0
    assert result.status == "rejected"
    assert result.tables["activities"].empty
    assert not any("lollol" in cell for cell in cells(result.tables))


def _passwd_lines() -> list[str]:
    try:
        text = Path("/etc/passwd").read_text(encoding="utf-8", errors="replace")
    except OSError:
        pytest.skip("/etc/passwd is not readable here")
    return [line for line in text.splitlines() if line.strip()]


XXE_FILES = {
    "entity-in-title": document(
        activity("XM-TEST-1", title="&x;"),
        prolog='<!DOCTYPE iati-activities [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n',
    ),
    "entity-in-attribute": XML_DECLARATION
    + '<!DOCTYPE iati-activities [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
    + '<iati-activities version="&x;">\n'
    + activity("XM-TEST-1")
    + END,
    "parameter-entity": document(
        activity("XM-TEST-1"),
        prolog='<!DOCTYPE iati-activities [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>\n',
    ),
    "external-dtd": document(
        activity("XM-TEST-1"), prolog='<!DOCTYPE iati-activities SYSTEM "file:///etc/passwd">\n'
    ),
}


@pytest.mark.parametrize("case", sorted(XXE_FILES))
def test_external_entities_are_never_resolved(
    case: str, tmp_path: Path, options: HarmoniseOptions
) -> None:
    passwd = _passwd_lines()
    path = write(tmp_path, f"{case}.xml", XXE_FILES[case])
    result = harmonise_file(path, options)
    check_counts(result)
    assert result.status == "rejected"
    assert result.tables["activities"].empty
    if case != "entity-in-attribute":
        check_rejected(result, "doctype_not_allowed")
    leaked = [cell for cell in cells(result.tables) if any(line in cell for line in passwd)]
    assert leaked == []


def test_xinclude_is_not_processed(tmp_path: Path, options: HarmoniseOptions) -> None:
    passwd = _passwd_lines()
    body = (
        '    <description xmlns:xi="http://www.w3.org/2001/XInclude"><narrative>'
        '<xi:include href="file:///etc/passwd" parse="text"/></narrative></description>\n'
    )
    result = harmonise_file(
        write(tmp_path, "xinclude.xml", document(activity("XM-TEST-1", body))), options
    )
    assert check_counts(result)["status"] == "ok"
    assert [cell for cell in cells(result.tables) if any(line in cell for line in passwd)] == []


# -- files that are not (readable) XML ---------------------------------------------------
def test_spreadsheet_renamed_xml_is_rejected_as_a_zip(
    tmp_path: Path, options: HarmoniseOptions
) -> None:
    content = b"PK\x03\x04\x14\x00\x06\x00" + b"[Content_Types].xml" + bytes(range(256))
    result = harmonise_file(write(tmp_path, "activities.xml", content), options)
    reason = str(check_rejected(result, "not_xml")["reason"])
    assert "ZIP" in reason
    assert "spreadsheet" in reason.lower()


def test_an_undeclared_namespace_prefix_is_not_well_formed_not_foreign_xml(
    tmp_path: Path, options: HarmoniseOptions
) -> None:
    """``<a:iati-activities>`` with no ``xmlns:a`` breaks the XML namespaces rules (libxml2
    only warns): it is said as not well-formed, not as "XML, but not IATI"; the same root
    with its prefix declared is well-formed XML of another vocabulary."""
    broken = write(
        tmp_path, "prefixed.xml", '<a:iati-activities version="2.03"></a:iati-activities>'
    )
    reason = check_rejected(harmonise_file(broken, options), "not_well_formed")["reason"]
    assert reason == (
        "not well-formed XML at line 1: the namespace prefix 'a' of the root element "
        "<a:iati-activities> is not declared"
    )
    declared = write(
        tmp_path,
        "declared.xml",
        '<a:iati-activities xmlns:a="urn:example" version="2.03"></a:iati-activities>',
    )
    reason = check_rejected(harmonise_file(declared, options), "not_iati_activities")["reason"]
    assert str(reason).startswith("XML, but not IATI activities: the root element is ")
    assert "(namespace urn:example)" in str(reason)


@pytest.mark.parametrize("content", [b"", b"  \n\t\r\n  \n"], ids=["empty", "whitespace"])
def test_empty_file_is_rejected(content: bytes, tmp_path: Path, options: HarmoniseOptions) -> None:
    result = harmonise_file(write(tmp_path, "empty.xml", content), options)
    source = check_rejected(result, "empty_file")
    assert "empty" in str(source["reason"])
    assert source["n_records"] == 0
    assert source["bytes"] == len(content)


def test_utf8_bom_is_accepted(tmp_path: Path, options: HarmoniseOptions) -> None:
    content = b"\xef\xbb\xbf" + document(activity("XM-TEST-1", title="Café")).encode("utf-8")
    result = harmonise_file(write(tmp_path, "bom.xml", content), options)
    assert check_counts(result)["status"] == "ok"
    assert list(result.tables["activities"]["title"]) == ["Café"]


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_file_with_declaration_is_accepted(
    codec: str, tmp_path: Path, options: HarmoniseOptions
) -> None:
    title = "Évaluation à Niamey — ñandú 中文"
    text = document(activity("XM-TEST-1", transaction("100"), title=title)).replace(
        'encoding="UTF-8"', 'encoding="UTF-16"'
    )
    content = ("\ufeff" + text).encode(codec)
    result = harmonise_file(write(tmp_path, "utf16.xml", content), options)
    assert check_counts(result)["status"] == "ok"
    assert list(result.tables["activities"]["title"]) == [title]
    assert list(result.tables["transactions"]["value"]) == [100.0]


def test_latin1_bytes_in_a_utf8_file_are_rejected_with_the_line(
    tmp_path: Path, options: HarmoniseOptions
) -> None:
    # line 1 declaration, 2 root, 3 <iati-activity>, 4 identifier, 5 title
    text = document(activity("XM-TEST-1", title="Activité à Niamey"))
    result = harmonise_file(write(tmp_path, "latin1.xml", text.encode("latin-1")), options)
    reason = str(check_rejected(result, "not_well_formed")["reason"])
    assert "line 5" in reason
    assert "encoding" in reason
    assert result.tables["quarantine"]["source_ref"].iloc[0] == "line 5"


def test_file_truncated_in_the_third_activity_is_rejected(
    tmp_path: Path, options: HarmoniseOptions
) -> None:
    whole = document(
        activity("XM-TEST-1", transaction("1")),
        activity("XM-TEST-2", transaction("2")),
        activity("XM-TEST-3", transaction("3")),
    )
    cut = whole.index("XM-TEST-3") + len("XM-TEST-3")  # inside the third <iati-identifier>
    result = harmonise_file(write(tmp_path, "truncated.xml", whole[:cut]), options)
    source = check_rejected(result, "not_well_formed")
    reason = str(source["reason"])
    # line 2 root; activities 1 and 2 take lines 3-7 and 8-12; the cut is on line 14
    assert "line 14" in reason
    assert "2 complete activities" in reason
    assert "not used" in reason
    assert (source["n_records"], source["n_quarantined"]) == (2, 2)


def test_undefined_entity_is_rejected_naming_the_line_and_the_entity(
    tmp_path: Path, options: HarmoniseOptions
) -> None:
    text = document(activity("XM-TEST-1", title="Water&nbsp;and sanitation"))
    result = harmonise_file(write(tmp_path, "nbsp.xml", text), options)
    check_rejected(result, "not_well_formed")
    reason = str(result.source["reason"])
    assert "line 5" in reason
    assert "nbsp" in reason


# -- XML, but not IATI activities ---------------------------------------------------------
def test_organisation_file_is_rejected(tmp_path: Path, options: HarmoniseOptions) -> None:
    text = (
        XML_DECLARATION
        + '<iati-organisations version="2.03">\n'
        + "  <iati-organisation><organisation-identifier>XM-ORG</organisation-identifier>"
        + "</iati-organisation>\n</iati-organisations>\n"
    )
    result = harmonise_file(write(tmp_path, "org.xml", text), options)
    reason = str(check_rejected(result, "organisation_file")["reason"])
    assert "organisation file" in reason
    assert result.tables["quarantine"]["source_ref"].iloc[0] == "line 2"


def test_namespaced_root_is_not_iati_activities(tmp_path: Path, options: HarmoniseOptions) -> None:
    text = (
        XML_DECLARATION
        + '<x:iati-activities xmlns:x="urn:x" version="2.03">\n'
        + "  <x:iati-activity><x:iati-identifier>XM-TEST-1</x:iati-identifier></x:iati-activity>\n"
        + "</x:iati-activities>\n"
    )
    result = harmonise_file(write(tmp_path, "namespaced.xml", text), options)
    reason = str(check_rejected(result, "not_iati_activities")["reason"])
    assert "urn:x" in reason
    assert "expected <iati-activities>" in reason


def test_root_without_activities_is_rejected(tmp_path: Path, options: HarmoniseOptions) -> None:
    result = harmonise_file(write(tmp_path, "zero.xml", document()), options)
    reason = str(check_rejected(result, "no_activities")["reason"])
    assert "no iati-activity" in reason


# -- bad records inside a good file ---------------------------------------------------------
def test_activities_without_identifier_are_quarantined_the_rest_accepted(
    tmp_path: Path, options: HarmoniseOptions
) -> None:
    text = document(
        activity("XM-TEST-1", transaction("1")),  # lines 3-7
        activity(None, transaction("2")),  # lines 8-12: no <iati-identifier>
        activity("   ", transaction("3")),  # lines 13-17: an empty one
        activity("XM-TEST-4", transaction("4")),  # lines 18-22
    )
    result = harmonise_file(write(tmp_path, "no-id.xml", text), options)
    source = check_counts(result)
    assert source["status"] == "partial"
    assert (source["n_records"], source["n_accepted"], source["n_quarantined"]) == (4, 2, 2)
    assert "2 of 4 activities not accepted" in str(source["reason"])
    assert list(result.tables["activities"]["activity_id"]) == ["XM-TEST-1", "XM-TEST-4"]
    assert list(result.tables["transactions"]["value"]) == [1.0, 4.0]
    bad = errors(result)
    assert list(bad["rule"]) == ["missing_identifier", "missing_identifier"]
    assert list(bad["source_ref"]) == [
        "/iati-activities/iati-activity[2]",
        "/iati-activities/iati-activity[3]",
    ]
    assert set(bad["table"]) == {"activities"}
    assert bad["message"].iloc[0].startswith("line 8: ")
    assert bad["message"].iloc[1].startswith("line 13: ")


def test_duplicate_identifier_keeps_the_first_and_names_it(
    tmp_path: Path, options: HarmoniseOptions
) -> None:
    text = document(
        activity("XM-TEST-1", transaction("1"), title="First"),  # lines 3-7
        activity("XM-TEST-2", transaction("2")),  # lines 8-12
        activity("XM-TEST-1", transaction("3"), title="Second"),  # lines 13-17
    )
    result = harmonise_file(write(tmp_path, "dup.xml", text), options)
    source = check_counts(result)
    assert source["status"] == "partial"
    assert (source["n_records"], source["n_accepted"], source["n_quarantined"]) == (3, 2, 1)
    activities = result.tables["activities"]
    assert list(activities["activity_id"]) == ["XM-TEST-1", "XM-TEST-2"]
    assert activities.loc[activities["activity_id"] == "XM-TEST-1", "title"].item() == "First"
    assert list(result.tables["transactions"]["value"]) == [1.0, 2.0]
    bad = errors(result)
    assert len(bad) == 1
    row = bad.iloc[0]
    assert (row["rule"], row["field"], row["value"]) == (
        "duplicate_identifier",
        "activity_id",
        "XM-TEST-1",
    )
    assert row["source_ref"] == "/iati-activities/iati-activity[3]"
    assert row["message"].startswith("line 13: ")
    assert "/iati-activities/iati-activity[1]" in row["message"]


@pytest.mark.parametrize(
    ("raw", "element", "rule", "value"),
    [
        ("12,000", "12,000", "not_a_number", "12,000"),
        ("abc", "abc", "not_a_number", "abc"),
        ("huge", "9" * 400, "not_a_number", "9" * 400),
        ("exponent", "1e400", "not_a_number", "1e400"),
        ("empty", "", "missing_value", None),
        ("no-value-element", None, "missing_value", None),
    ],
)
def test_bad_transaction_value_quarantines_only_that_transaction(
    raw: str,
    element: str | None,
    rule: str,
    value: str | None,
    tmp_path: Path,
    options: HarmoniseOptions,
) -> None:
    body = transaction("10") + transaction(element) + transaction("20")  # lines 6, 7, 8
    text = document(activity("XM-TEST-1", body), activity("XM-TEST-2", transaction("5")))
    result = harmonise_file(write(tmp_path, f"{raw}.xml", text), options)
    source = check_counts(result)
    assert source["status"] == "partial"
    assert (source["n_records"], source["n_accepted"], source["n_quarantined"]) == (2, 2, 0)
    assert "1 transactions or budgets not accepted" in str(source["reason"])
    assert list(result.tables["activities"]["activity_id"]) == ["XM-TEST-1", "XM-TEST-2"]
    transactions = result.tables["transactions"]
    assert list(zip(transactions["activity_id"], transactions["value"], strict=True)) == [
        ("XM-TEST-1", 10.0),
        ("XM-TEST-1", 20.0),
        ("XM-TEST-2", 5.0),
    ]
    bad = errors(result)
    assert len(bad) == 1
    row = bad.iloc[0]
    assert (row["rule"], row["table"], row["field"], row["severity"]) == (
        rule,
        "transactions",
        "value",
        "error",
    )
    assert row["source_ref"] == "/iati-activities/iati-activity[1]/transaction[2]"
    assert row["message"].startswith("line 7: ")
    assert (None if pd.isna(row["value"]) else row["value"]) == value
    if rule == "not_a_number" and raw in ("huge", "exponent"):
        assert f"{value!r} is too large a number to hold; record not accepted" in row["message"]
    elif rule == "not_a_number":
        assert f"{value!r} is not a number" in row["message"]


def test_country_percentage_that_is_not_a_number_is_a_warning_and_the_share_is_split(
    tmp_path: Path, options: HarmoniseOptions
) -> None:
    first = (
        '    <recipient-country code="KE" percentage="60"/>\n'  # line 6
        '    <recipient-country code="GH" percentage="sixty"/>\n'  # line 7
    )
    second = (
        '    <recipient-country code="KE" percentage="abc"/>\n'  # line 12
        '    <recipient-country code="NP" percentage="n/a"/>\n'  # line 13
    )
    text = document(activity("XM-TEST-1", first), activity("XM-TEST-2", second))
    result = harmonise_file(write(tmp_path, "pct.xml", text), options)
    source = check_counts(result)
    assert source["status"] == "ok"
    assert source["n_accepted"] == 2
    assert errors(result).empty
    countries = result.tables["activity_countries"]
    shares = {
        (a, c): s
        for a, c, s in zip(
            countries["activity_id"], countries["country_code"], countries["share"], strict=True
        )
    }
    assert shares == pytest.approx(
        {
            ("XM-TEST-1", "KE"): 0.6,
            ("XM-TEST-1", "GH"): 0.4,
            ("XM-TEST-2", "KE"): 0.5,
            ("XM-TEST-2", "NP"): 0.5,
        }
    )
    quarantine = result.tables["quarantine"]
    not_numbers = quarantine[quarantine["rule"] == "not_a_number"]
    assert set(not_numbers["severity"]) == {"warning"}
    assert list(not_numbers["value"]) == ["sixty", "abc", "n/a"]
    assert list(not_numbers["source_ref"]) == [
        "/iati-activities/iati-activity[1]/recipient-country[2]",
        "/iati-activities/iati-activity[2]/recipient-country[1]",
        "/iati-activities/iati-activity[2]/recipient-country[2]",
    ]
    assert [m.split(":")[0] for m in not_numbers["message"]] == ["line 7", "line 12", "line 13"]
    split = quarantine[quarantine["rule"] == "percentage_missing"]
    assert set(split["severity"]) == {"warning"}
    assert len(split) == 2


def test_foreign_namespace_element_is_ignored(tmp_path: Path, options: HarmoniseOptions) -> None:
    extra = (
        '    <afdb:extra xmlns:afdb="http://afdb.org/iati/" afdb:code="x">'
        "<afdb:note>internal</afdb:note>"
        "<transaction><value>not a number</value></transaction></afdb:extra>\n"
    )
    text = document(activity("XM-TEST-1", extra + transaction("7")))
    result = harmonise_file(write(tmp_path, "foreign.xml", text), options)
    source = check_counts(result)
    assert source["status"] == "ok"
    assert errors(result).empty
    assert list(result.tables["activities"]["title"]) == ["Activity"]
    assert list(result.tables["transactions"]["value"]) == [7.0]
    assert not any("internal" in cell for cell in cells(result.tables))


def test_foreign_namespace_narrative_is_not_taken_as_the_title(
    tmp_path: Path, options: HarmoniseOptions
) -> None:
    text = document(
        '  <iati-activity xmlns:afdb="http://afdb.org/iati/">\n'
        "    <iati-identifier>XM-TEST-1</iati-identifier>\n"
        '    <title><afdb:narrative xml:lang="en">Internal code</afdb:narrative>'
        '<narrative xml:lang="fr">Titre réel</narrative></title>\n'
        "  </iati-activity>\n"
    )
    result = harmonise_file(write(tmp_path, "foreign-title.xml", text), options)
    assert list(result.tables["activities"]["title"]) == ["Titre réel"]


# -- file names and several files ---------------------------------------------------------
def test_hostile_file_names_never_write_outside_out(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    folder = inbox / "folder"
    folder.mkdir()
    evil = write(inbox, "..evil.xml", document(activity("XM-TEST-1", transaction("1"))))
    write(folder, "..\\..\\evil2.xml", document(activity("XM-TEST-2", transaction("2"))))
    write(folder, "..evil.xml", document(activity("XM-TEST-3", transaction("3"))))
    out = tmp_path / "work" / "out"
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))

    assert main(["iati", "harmonise", str(evil), str(folder), "--out", str(out), "--quiet"]) == 0

    written = sorted(f"{t}.parquet" for t in PUBLISHED_TABLES)
    assert sorted(p.name for p in out.iterdir()) == written
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    created = sorted(set(after) - set(before))
    assert created == [
        Path("work"),
        Path("work/out"),
        *sorted(Path("work/out") / f"{t}.parquet" for t in PUBLISHED_TABLES),
    ]
    sources = pd.read_parquet(out / "sources.parquet")
    assert sorted(sources["source_file"]) == sorted(
        ["inbox/..evil.xml", "folder/..evil.xml", "..\\..\\evil2.xml"]
    )
    assert set(sources["status"]) == {"ok"}
    activities = pd.read_parquet(out / "activities.parquet")
    assert sorted(activities["activity_id"]) == ["XM-TEST-1", "XM-TEST-2", "XM-TEST-3"]


def test_a_broken_file_does_not_stop_a_good_one(tmp_path: Path, options: HarmoniseOptions) -> None:
    good = write(
        tmp_path,
        "good.xml",
        document(
            activity("XM-GOOD-1", transaction("1") + transaction("2")),
            activity("XM-GOOD-2", transaction("3")),
            activity("XM-GOOD-3", transaction("4") + transaction("5") + transaction("6")),
        ),
    )
    broken = write(tmp_path, "broken.xml", document(activity("XM-BAD-1"))[:-40])
    files, tables = harmonise_paths([broken, good], options)
    assert {f.source_file: f.status for f in files} == {"broken.xml": "rejected", "good.xml": "ok"}
    for file in files:
        check_counts(file)
    assert list(tables["activities"]["activity_id"]) == ["XM-GOOD-1", "XM-GOOD-2", "XM-GOOD-3"]
    assert len(tables["transactions"]) == 6
    assert sorted(tables["transactions"]["value"]) == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    sources = tables["sources"].set_index("source_file")
    assert list(sources.index) == ["broken.xml", "good.xml"]
    assert sources.loc["good.xml", "n_accepted"] == 3
    assert sources.loc["broken.xml", "status"] == "rejected"
    assert "not well-formed" in sources.loc["broken.xml", "reason"]
    for row in sources.itertuples():
        assert row.n_records == row.n_accepted + row.n_quarantined
    quarantine = tables["quarantine"]
    bad = quarantine[quarantine["severity"] == "error"]
    assert list(bad["source_file"]) == ["broken.xml"]
    assert list(bad["rule"]) == ["not_well_formed"]


def test_unreadable_last_updated_is_a_warning_not_a_silent_gap(
    tmp_path: Path, options: HarmoniseOptions
) -> None:
    text = document(activity("XM-TEST-1")).replace(
        '<iati-activity default-currency="USD">',
        '<iati-activity default-currency="USD" last-updated-datetime="yesterday">',
    )
    result = harmonise_file(write(tmp_path, "updated.xml", text), options)
    assert result.status == "ok"
    assert result.tables["activities"]["last_updated"].isna().all()
    quarantine = result.tables["quarantine"]
    warning = quarantine[quarantine["field"] == "last_updated"]
    assert warning["rule"].tolist() == ["invalid_date"]
    assert warning["severity"].tolist() == ["warning"]
    assert warning["value"].tolist() == ["yesterday"]


# -- resource limits: depth, huge texts, huge files ------------------------------------------
def test_deeply_nested_elements_are_rejected_with_the_place_and_the_limit(
    tmp_path: Path, options: HarmoniseOptions
) -> None:
    nested = "<description>" + "<x>" * 5000 + "</x>" * 5000 + "</description>\n"
    path = write(tmp_path, "deep.xml", document(activity("XM-TEST-1", nested)))
    source = check_rejected(harmonise_file(path, options), "not_well_formed")
    assert source["reason"] == (
        "not well-formed XML at line 6, column 774: elements are nested more than 256 levels "
        "deep, over the parser's safety limit (IATI activities nest a few levels)"
    )


def test_a_text_of_eleven_million_characters_is_rejected_not_read_into_memory(
    tmp_path: Path, options: HarmoniseOptions
) -> None:
    path = write(tmp_path, "huge.xml", document(activity("XM-TEST-1", title="a" * 11_000_000)))
    source = check_rejected(harmonise_file(path, options), "not_well_formed")
    assert str(source["reason"]).startswith("not well-formed XML at line 5, column ")
    assert str(source["reason"]).endswith(
        "a text is longer than 10,000,000 characters, over the parser's safety limit"
    )
    assert not any("aaaa" in cell for cell in cells(harmonise_file(path, options).tables))


def test_quadratic_blowup_entities_are_refused_as_a_dtd(
    tmp_path: Path, options: HarmoniseOptions
) -> None:
    prolog = '<!DOCTYPE iati-activities [<!ENTITY a "' + "x" * 50_000 + '">]>\n'
    content = document(activity("XM-TEST-1", title="&a;" * 50_000), prolog=prolog)
    source = check_rejected(harmonise_file(write(tmp_path, "blowup.xml", content), options),
                            "doctype_not_allowed")  # fmt: skip
    assert REJECTED_BY_DTD in str(source["reason"])


def test_a_two_gigabyte_file_is_rejected_before_any_of_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.xml"
    with path.open("wb") as handle:  # sparse: 2 GiB long, nothing on disk
        handle.write(XML_DECLARATION.encode() + ROOT.encode())
        handle.truncate(2 * 2**30 + 1)
    options = HarmoniseOptions.from_settings(load_settings(), None, None, None)
    assert options.max_file_bytes == 100 * 2**20  # config/compact.yaml: fetch.max_file_mb
    result = harmonise_file(path, options)
    source = check_rejected(result, "too_large")
    assert source["reason"] == (
        "the file is 2,048.0 MB, over the limit of 100 MB (fetch.max_file_mb); it was not read"
    )
    assert source["sha256"] is None  # not even hashed
    assert source["bytes"] == 2 * 2**30 + 1
