"""IATI schema (XSD) and codelist conformance, file by file, with line numbers: against the
real fixture files, the official XSDs of every version and the official codelists."""

from __future__ import annotations

import os
import textwrap
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from lxml import etree

from assets.harmonise.schema import arrow_schema, field_names, frame_of_arrow
from assets.iati.codelists import Codelists, load_codelists
from assets.iati.conformance import (
    EMBEDDED_CODELISTS,
    CodeReader,
    Finding,
    IatiSchemas,
    SchemaError,
    code_version,
    findings_arrow,
)
from assets.iati.extract import check_conformance
from tests.conftest import CODELISTS, IATI_FIXTURES, IATI_SCHEMAS
from tests.http_fixture_server import FixtureServer, http_server_fixture  # noqa: F401

VALID = IATI_FIXTURES / "valid"
LEGACY = IATI_FIXTURES / "legacy"
INVALID = IATI_FIXTURES / "invalid"


@pytest.fixture(scope="module")
def schemas() -> IatiSchemas:
    return IatiSchemas.from_dir(IATI_SCHEMAS)


@pytest.fixture(scope="module")
def codelists() -> Codelists:
    return load_codelists(CODELISTS)


def check(
    path: Path,
    schemas: IatiSchemas | None,
    codelists: Codelists | None,
    max_findings: int = 100_000,
) -> list[Finding]:
    return check_conformance(
        path, path.name, schemas=schemas, codelists=codelists, max_findings=max_findings
    )


def counts(findings: list[Finding]) -> tuple[int, int, int]:
    """(xsd errors, codelist errors, codelist warnings)."""
    found = Counter((f.check, f.severity) for f in findings)
    return found["xsd", "error"], found["codelist", "error"], found["codelist", "warning"]


def rows(findings: list[Finding], check: str | None = None) -> list[tuple[object, ...]]:
    return [
        (f.rule, f.line, f.path, f.value, f.severity)
        for f in findings
        if check is None or f.check == check
    ]


def line_of(text: str, needle: str, start: int = 0) -> int:
    """1-based line of the first ``needle`` at or after line ``start`` (1-based)."""
    lines = text.split("\n")
    for number in range(max(start, 1), len(lines) + 1):
        if needle in lines[number - 1]:
            return number
    raise AssertionError(f"{needle!r} not found")


def write(tmp_path: Path, text: str, name: str = "file.xml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


# -- the schemas ----------------------------------------------------------------------------


def test_schema_versions_resolve_to_the_same_or_nearest_earlier(schemas: IatiSchemas) -> None:
    assert schemas.versions == ("1.01", "1.03", "1.04", "1.05", "2.01", "2.02", "2.03")
    assert schemas.resolve("2.03") == "2.03"
    assert schemas.resolve("1.02") == "1.01"
    assert schemas.resolve("2.04") == "2.03"
    assert schemas.resolve(" 2.02 ") == "2.02"
    # Never across major versions, and never for what is not a version number.
    assert schemas.resolve("3.0") is None
    assert schemas.resolve("1.0") is None
    assert schemas.resolve("latest") is None
    assert schemas.resolve(None) is None
    assert IatiSchemas.from_dir(IATI_SCHEMAS / "nowhere").versions == ()


def test_schemas_compile_once_and_fingerprint_their_files(
    schemas: IatiSchemas, tmp_path: Path
) -> None:
    compiled = schemas.schema("2.03")
    assert isinstance(compiled, etree.XMLSchema)
    assert schemas.schema("2.03") is compiled
    assert IatiSchemas.from_dir(IATI_SCHEMAS).schema("2.03") is compiled  # per process
    with pytest.raises(KeyError):
        schemas.schema("2.04")

    copy = tmp_path / "schemas"
    for version in ("1.01", "2.03"):
        (copy / version).mkdir(parents=True)
        for source in (IATI_SCHEMAS / version).glob("*.xsd"):
            (copy / version / source.name).write_bytes(source.read_bytes())
    before = IatiSchemas.from_dir(copy).fingerprint()
    assert len(before) == 64
    assert IatiSchemas.from_dir(copy).fingerprint() == before
    common = copy / "2.03" / "iati-common.xsd"
    common.write_bytes(common.read_bytes() + b"\n")
    assert IatiSchemas.from_dir(copy).fingerprint() != before


def test_embedded_codelists_are_those_the_official_metadata_marks_embedded() -> None:
    marked = {}
    for path in CODELISTS.rglob("*.xml"):
        root = etree.parse(str(path), etree.XMLParser(resolve_entities=False)).getroot()
        if root.tag == "codelist":
            marked[root.get("name")] = root.get("embedded") == "1"
    assert {name for name, embedded in marked.items() if embedded} == EMBEDDED_CODELISTS


# -- the real fixture files -----------------------------------------------------------------

#: (xsd errors, codelist errors, codelist warnings) of every fixture file, all findings listed.
EXPECTED = {
    "valid/CAF-ActivityFile-2025-10-10.xml": (0, 0, 1),
    "valid/MAEC_IATI_INDONESIA.xml": (0, 0, 534),
    "valid/acfspain-ph.xml": (0, 0, 0),
    "valid/default_currency.xml": (13, 6, 12),
    "valid/iati-activities-am-armenia.xml": (0, 0, 1),
    "valid/multiple_locales_descriptions.xml": (0, 0, 0),
    "valid/provider-activity-id.xml": (3, 0, 0),
    "valid/who-arg.xml": (0, 0, 54),
    "valid/worldbank-sv.xml": (0, 0, 1218),
    "valid/wri-521257057-strategic-plan-2023-2027.xml": (0, 0, 1),
    "legacy/dfid-AF-1.01.xml": (0, 0, 101),
    "legacy/dfid-CD-1.01.xml": (0, 442, 25),
    "legacy/usgov-big-value-1.0.xml": (0, 594, 9),
    "invalid/iati-act-schema-errors.xml": (1, 3, 1),
    "invalid/not-xml.xml": (0, 0, 0),
    "invalid/organisation-file-not-activities.xml": (0, 0, 0),
    "invalid/truncated.xml": (1, 0, 0),
    "invalid/xml-but-not-iati.xml": (0, 0, 0),
}


def test_every_fixture_file_is_in_the_table() -> None:
    files = {str(p.relative_to(IATI_FIXTURES)) for p in IATI_FIXTURES.glob("*/*.xml")}
    assert files == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_findings_of_each_fixture_file(
    name: str, schemas: IatiSchemas, codelists: Codelists
) -> None:
    findings = check(IATI_FIXTURES / name, schemas, codelists)
    assert counts(findings) == EXPECTED[name]
    for finding in findings:
        assert finding.source_file == Path(name).name
        assert finding.check in ("xsd", "codelist")
        assert finding.severity in ("error", "warning")
        assert finding.rule.startswith(f"{finding.check}:")
        assert finding.line is None or finding.line >= 1
        if finding.line is not None:
            assert finding.message.startswith(f"line {finding.line}: ")


@pytest.mark.parametrize("name", ["iati-activities-am-armenia.xml", "who-arg.xml"])
def test_adb_armenia_and_who_argentina_are_schema_valid_without_codelist_errors(
    name: str, schemas: IatiSchemas, codelists: Codelists
) -> None:
    findings = check(VALID / name, schemas, codelists)
    assert [f for f in findings if f.check == "xsd"] == []  # timezone-suffixed dates included
    assert [f for f in findings if f.severity == "error"] == []
    assert {f.schema_version for f in findings} <= {"2.03"}


def test_who_argentina_uses_withdrawn_flow_types(
    schemas: IatiSchemas, codelists: Codelists
) -> None:
    findings = check(VALID / "who-arg.xml", schemas, codelists)
    flow = [f for f in findings if f.rule == "codelist:FlowType"]
    assert Counter((f.value, f.severity) for f in flow) == {
        ("20", "warning"): 52,
        ("35", "warning"): 1,
    }
    assert (flow[0].line, flow[0].path, flow[0].activity_id) == (
        141,
        "/iati-activities/iati-activity[1]/transaction[2]/flow-type/@code",
        "XM-DAC-928-AR-2016-17-01.001.AM01.ARG01",
    )
    assert flow[0].message == (
        'line 141: flow type "20" is withdrawn from the IATI FlowType codelist (2.03); '
        "use a current code"
    )
    (unchecked,) = [f for f in findings if f.rule == "codelist:not_checked"]
    assert unchecked.value == "HumanitarianScopeType"
    assert unchecked.severity == "warning"


def test_the_schema_errors_fixture(schemas: IatiSchemas, codelists: Codelists) -> None:
    findings = check(INVALID / "iati-act-schema-errors.xml", schemas, codelists)
    activity = "/iati-activities/iati-activity[1]"
    assert rows(findings) == [
        (
            "xsd:SCHEMAV_CVC_DATATYPE_VALID_1_2_1",
            18,  # <activity-date type="" iso-date="">
            f"{activity}/activity-date/@iso-date",
            "",
            "error",
        ),
        ("codelist:OrganisationType", 5, f"{activity}/reporting-org/@type", "", "warning"),
        ("codelist:OrganisationRole", 14, f"{activity}/participating-org/@role", "", "error"),
        ("codelist:ActivityStatus", 16, f"{activity}/activity-status/@code", "", "error"),
        ("codelist:ActivityDateType", 18, f"{activity}/activity-date/@type", "", "error"),
    ]
    assert findings[0].message == (
        "line 18: Element 'activity-date', attribute 'iso-date': '' is not a valid value of "
        "the atomic type 'xs:date'."
    )
    assert {f.schema_version for f in findings} == {"2.03"}
    assert {f.activity_id for f in findings} == {None}  # its iati-identifier is empty


def test_legacy_files_are_valid_against_1_01_but_break_the_1_0x_codelists(
    schemas: IatiSchemas, codelists: Codelists
) -> None:
    # DFID's <ir:registry-record> is in another namespace, which the 1.01 schema allows
    # anywhere among the activities: these files are schema-valid.
    dfid_cd = check(LEGACY / "dfid-CD-1.01.xml", schemas, codelists)
    assert [f for f in dfid_cd if f.check == "xsd"] == []
    assert {f.schema_version for f in dfid_cd} == {"1.05"}  # the newest 1.0x codelists
    budget = [f for f in dfid_cd if f.rule == "codelist:BudgetType"]
    assert (budget[0].line, budget[0].path, budget[0].value, budget[0].severity) == (
        71,
        "/iati-activities/iati-activity[2]/budget[1]/@type",
        "Original",  # the name of code 1
        "error",
    )
    assert budget[0].message == (
        'line 71: budget type "Original" is not in the IATI BudgetType codelist (1.05)'
    )
    collaboration = [f for f in dfid_cd if f.rule == "codelist:CollaborationType"]
    assert (collaboration[0].line, collaboration[0].value, collaboration[0].severity) == (
        2060,
        "5",
        "warning",
    )
    # Letter transaction codes and "Funding" roles are right in 1.0x.
    assert not {"codelist:TransactionType", "codelist:OrganisationRole"} & {f.rule for f in dfid_cd}

    dfid_af = check(LEGACY / "dfid-AF-1.01.xml", schemas, codelists)  # nearly all on line 1
    assert Counter(f.line for f in dfid_af) == {1: 99, 2: 2}
    assert rows(dfid_af)[0] == (
        "codelist:Sector",
        1,
        "/iati-activities/iati-activity[8]/sector[3]/@code",
        "15120",
        "warning",
    )
    assert "withdrawn" in dfid_af[0].message

    usgov = check(LEGACY / "usgov-big-value-1.0.xml", schemas, codelists)
    assert rows(usgov)[:3] == [
        ("xsd:version", 2, "/iati-activities/@version", "1.0", "warning"),
        ("codelist:Version", 2, "/iati-activities/@version", "1.0", "warning"),
        (
            "codelist:OrganisationRole",
            17,
            "/iati-activities/iati-activity[1]/participating-org[1]/@role",
            "funding",  # the 1.0x code is "Funding"
            "error",
        ),
    ]
    assert (
        usgov[0].message == 'line 2: version "1.0" is not an IATI version; it was checked as 1.01'
    )
    assert usgov[0].schema_version == "1.01"


def test_a_lone_activity_root_is_checked_inside_a_wrapper(
    schemas: IatiSchemas, codelists: Codelists
) -> None:
    findings = check(VALID / "provider-activity-id.xml", schemas, codelists)
    assert rows(findings) == [
        ("xsd:version", 2, None, None, "warning"),
        ("xsd:root_element", 2, "/iati-activity", "iati-activity", "error"),
        (
            "xsd:SCHEMAV_CVC_COMPLEX_TYPE_4",
            50,
            "/iati-activity/transaction[1]/tied-status/@code",
            None,
            "error",
        ),
        (
            "xsd:SCHEMAV_ELEMENT_CONTENT",
            147,
            "/iati-activity/document-link/language",
            None,
            "error",
        ),
    ]
    assert findings[3].message == (
        "line 147: Element 'language': This element is not expected. Expected is one of "
        "( title, category, ##other* )."
    )
    assert {f.activity_id for f in findings[2:]} == {"GB-CHC-1068839-dfid_ag_11-13"}


# -- a hand-written 2.03 file ---------------------------------------------------------------

HAND_WRITTEN = """
    <?xml version="1.0" encoding="UTF-8"?>
    <iati-activities version="2.03" generated-datetime="2024-01-01T00:00:00+02:00">
      <iati-activity xml:lang="en" default-currency="BYR">
        <iati-identifier>XM-EXAMPLE-1</iati-identifier>
        <reporting-org ref="XM-EXAMPLE" type="10"><narrative>Example</narrative></reporting-org>
        <description><narrative>The title is missing</narrative></description>
        <participating-org role="1" type="10"/>
        <activity-status code="2"/>
        <activity-date type="1" iso-date="2024-01-01"/>
        <sector code="99999" vocabulary="1"/>
        <sector code="111"/>
        <sector code="999" vocabulary="2"/>
        <sector code="ANYTHING" vocabulary="99"/>
        <transaction>
          <transaction-type code="99"/>
          <transaction-date iso-date="2024-02-01"/>
          <value currency="ABC" value-date="2024-02-01">100</value>
        </transaction>
      </iati-activity>
      <iati-activity>
        <iati-identifier>XM-EXAMPLE-2</iati-identifier>
        <reporting-org ref="XM-EXAMPLE" type="10"><narrative>Example</narrative></reporting-org>
        <title><narrative xml:lang="english">Two</narrative></title>
        <description><narrative>Complete but for its transaction</narrative></description>
        <participating-org role="1"/>
        <activity-status code="2"/>
        <activity-date type="1" iso-date="2024-01-01"/>
        <transaction>
          <transaction-type code="3"/>
          <value value-date="2024-02-01">100</value>
        </transaction>
      </iati-activity>
    </iati-activities>
"""


def test_a_hand_written_2_03_file(
    tmp_path: Path, schemas: IatiSchemas, codelists: Codelists
) -> None:
    path = write(tmp_path, HAND_WRITTEN)
    text = path.read_text(encoding="utf-8")
    findings = check(path, schemas, codelists)
    first, second = "/iati-activities/iati-activity[1]", "/iati-activities/iati-activity[2]"
    two = line_of(text, "XM-EXAMPLE-2")
    assert rows(findings) == [
        # The missing <title>: libxml2 names the element found where it was expected.
        (
            "xsd:SCHEMAV_ELEMENT_CONTENT",
            line_of(text, "<description>"),
            f"{first}/description",
            None,
            "error",
        ),
        # The transaction without a date.
        (
            "xsd:SCHEMAV_ELEMENT_CONTENT",
            line_of(text, '<value value-date="2024-02-01">100', two),
            f"{second}/transaction/value",
            None,
            "error",
        ),
        (
            "codelist:Currency",  # withdrawn
            line_of(text, 'default-currency="BYR"'),
            f"{first}/@default-currency",
            "BYR",
            "warning",
        ),
        (
            "codelist:Sector",
            line_of(text, '"99999"'),
            f"{first}/sector[1]/@code",
            "99999",
            "warning",
        ),
        ("codelist:Sector", line_of(text, '"111"'), f"{first}/sector[2]/@code", "111", "warning"),
        (
            "codelist:SectorCategory",
            line_of(text, '"999"'),
            f"{first}/sector[3]/@code",
            "999",
            "warning",
        ),
        (
            "codelist:TransactionType",  # embedded: an error
            line_of(text, 'transaction-type code="99"'),
            f"{first}/transaction/transaction-type/@code",
            "99",
            "error",
        ),
        (
            "codelist:Currency",
            line_of(text, '"ABC"'),
            f"{first}/transaction/value/@currency",
            "ABC",
            "warning",
        ),
        (
            "codelist:Language",
            line_of(text, '"english"'),
            f"{second}/title/narrative/@xml:lang",
            "english",
            "warning",
        ),
    ]
    assert findings[0].message == (
        f"line {line_of(text, '<description>')}: Element 'description': This element is not "
        "expected. Expected is ( title )."
    )
    assert findings[1].message.endswith(
        ": Element 'value': This element is not expected. Expected is ( transaction-date )."
    )
    assert [f.activity_id for f in findings[:2]] == ["XM-EXAMPLE-1", "XM-EXAMPLE-2"]
    by_rule = {f.rule: f for f in findings}
    assert findings[2].message == (
        'line 3: default currency "BYR" is withdrawn from the IATI Currency codelist (2.03); '
        "use a current code"
    )
    assert by_rule["codelist:TransactionType"].message == (
        f'line {line_of(text, "transaction-type code=")}: transaction type "99" is not in '
        "the IATI TransactionType codelist (2.03)"
    )


def test_finding_paths_number_an_element_among_its_same_named_siblings(
    tmp_path: Path, codelists: Codelists
) -> None:
    """As libxml2's getpath names elements without a namespace; elements in another namespace
    by their prefix (none for a default namespace), counted apart from the IATI ones."""
    transactions = "".join(
        f'<transaction><transaction-type code="{"99" if n == 11 else "1"}"/>'
        f'<value currency="{"ABC" if n == 11 else "EUR"}">1</value></transaction>\n'
        for n in range(1, 13)
    )
    path = write(
        tmp_path,
        '<iati-activities version="2.03" xmlns:x="urn:x">\n'
        "<iati-activity><iati-identifier>XM-EXAMPLE-1</iati-identifier></iati-activity>\n"
        "<iati-activity><iati-identifier>XM-EXAMPLE-2</iati-identifier>\n"
        '<sector code="99999"/><x:sector xml:lang="zz"/>\n'
        f'{transactions}<sector code="111"/>\n'
        '<x:note xml:lang="zz"/><x:note xml:lang="zz"/><note xmlns="urn:y" xml:lang="zz"/>\n'
        "</iati-activity>\n</iati-activities>\n",
    )
    findings = [f for f in check(path, None, codelists) if f.check == "codelist"]
    second = "/iati-activities/iati-activity[2]"
    assert [(f.rule, f.line, f.path) for f in findings] == [
        ("codelist:Sector", 4, f"{second}/sector[1]/@code"),
        ("codelist:Language", 4, f"{second}/x:sector/@xml:lang"),
        ("codelist:TransactionType", 15, f"{second}/transaction[11]/transaction-type/@code"),
        ("codelist:Currency", 15, f"{second}/transaction[11]/value/@currency"),
        ("codelist:Sector", 17, f"{second}/sector[2]/@code"),
        ("codelist:Language", 18, f"{second}/x:note[1]/@xml:lang"),
        ("codelist:Language", 18, f"{second}/x:note[2]/@xml:lang"),
        ("codelist:Language", 18, f"{second}/note/@xml:lang"),
    ]


def test_root_errors_are_reported_once_and_foreign_root_elements_in_place(
    tmp_path: Path, schemas: IatiSchemas
) -> None:
    activity = """
      <iati-activity>
        <iati-identifier>XM-EXAMPLE-{n}</iati-identifier>
        <reporting-org ref="XM-EXAMPLE" type="10"><narrative>Example</narrative></reporting-org>
        <title><narrative>Title</narrative></title>
        <description><narrative>Description</narrative></description>
        <participating-org role="1"/>
        <activity-status code="2"/>
        <activity-date type="1" iso-date="{date}"/>
      </iati-activity>"""
    activities = "".join(
        activity.format(n=n, date="2024-13-01" if n == 3 else "2024-01-01") for n in (1, 2, 3)
    )
    path = write(
        tmp_path,
        f"""<iati-activities version="2.03" generated-datetime="yesterday" xmlns:ir="urn:ir">
        <ir:registry-record file-id="x"/>{activities}
        <ir:registry-record file-id="y"/>
        </iati-activities>
        """,
    )
    text = path.read_text(encoding="utf-8")
    findings = check(path, schemas, None)
    assert rows(findings, "xsd") == [
        (
            "xsd:SCHEMAV_CVC_DATATYPE_VALID_1_2_1",
            1,
            "/iati-activities/@generated-datetime",
            "yesterday",
            "error",
        ),
        # In 2.0x, elements of other namespaces may only follow the activities.
        (
            "xsd:SCHEMAV_ELEMENT_CONTENT",
            line_of(text, 'file-id="x"'),
            "/iati-activities/ir:registry-record[1]",
            None,
            "error",
        ),
        # ... and the activity after it is still checked.
        (
            "xsd:SCHEMAV_CVC_DATATYPE_VALID_1_2_1",
            line_of(text, "2024-13-01"),
            "/iati-activities/iati-activity[3]/activity-date/@iso-date",
            "2024-13-01",
            "error",
        ),
    ]
    assert findings[2].activity_id == "XM-EXAMPLE-3"


def test_a_file_without_activities(tmp_path: Path, schemas: IatiSchemas) -> None:
    path = write(tmp_path, '<iati-activities version="2.03"/>\n')
    assert rows(check(path, schemas, None), "xsd") == [
        ("xsd:SCHEMAV_ELEMENT_CONTENT", 1, "/iati-activities", None, "error")
    ]
    old = write(tmp_path, '<iati-activities version="1.01"></iati-activities>\n', "old.xml")
    assert [f for f in check(old, schemas, None) if f.check == "xsd"] == []  # 1.01 allows none


# -- versions -------------------------------------------------------------------------------

MINIMAL_2 = """
    <iati-activities{version}>
      <iati-activity>
        <iati-identifier>XM-EXAMPLE-1</iati-identifier>
        <reporting-org ref="XM-EXAMPLE" type="10"><narrative>Example</narrative></reporting-org>
        <title><narrative>Title</narrative></title>
        <description><narrative>Description</narrative></description>
        <participating-org role="1"/>
        <activity-status code="2"/>
        <activity-date type="1" iso-date="2024-01-01"/>
        <transaction>
          <transaction-type code="3"/>
          <transaction-date iso-date="2024-02-01"/>
          <value value-date="2024-02-01" currency="EUR">100</value>
        </transaction>
      </iati-activity>
    </iati-activities>
"""


def test_a_version_without_its_schema_uses_the_nearest_earlier_and_says_so(
    tmp_path: Path, schemas: IatiSchemas, codelists: Codelists
) -> None:
    path = write(tmp_path, MINIMAL_2.format(version=' version="2.04"'))
    findings = check(path, schemas, codelists)
    assert rows(findings) == [
        ("xsd:version", 1, "/iati-activities/@version", "2.04", "warning"),
        ("codelist:Version", 1, "/iati-activities/@version", "2.04", "warning"),
    ]
    assert findings[0].schema_version == "2.03"
    assert findings[0].message == (
        "line 1: no IATI schema for version 2.04 is configured; the file was checked against "
        "the schema of 2.03, the nearest earlier version"
    )

    later = write(tmp_path, MINIMAL_2.format(version=' version="3.01"'), "later.xml")
    (not_checked,) = [f for f in check(later, schemas, codelists) if f.check == "xsd"]
    assert (not_checked.rule, not_checked.severity, not_checked.schema_version) == (
        "xsd:not_checked",
        "warning",
        None,
    )
    assert not_checked.message == (
        "not checked against the IATI XML Schema: no IATI schema for version 3.01 or earlier "
        "is configured"
    )


def test_a_file_without_a_version_is_checked_by_its_content(
    tmp_path: Path, schemas: IatiSchemas, codelists: Codelists
) -> None:
    """No version stated: 2.0x content (``<narrative>`` elements) is checked as the newest
    2.0x version, 1.0x content as 1.01, and the file is told which and why."""
    path = write(tmp_path, MINIMAL_2.format(version=""))
    findings = check(path, schemas, codelists)
    note = findings[0]
    assert (note.rule, note.severity, note.schema_version, note.line, note.path) == (
        "xsd:version",
        "warning",
        "2.03",
        1,
        "/iati-activities/@version",
    )
    assert note.message == (
        'line 1: the file states no IATI version (<iati-activities version="...">); its '
        "content is IATI 2.0x (it uses <narrative> elements, which IATI 2.01 introduced), "
        "so it was checked as 2.03, the newest 2.0x version"
    )
    # read as 2.03, the one error is the missing version itself (as 1.01, the 2.0x
    # activity would break the schema element after element)
    assert [(f.rule, f.message) for f in findings if f.check == "xsd"][1:] == [
        (
            "xsd:SCHEMAV_CVC_COMPLEX_TYPE_4",
            "line 1: Element 'iati-activities': The attribute 'version' is required but missing.",
        )
    ]
    # its codes are checked against the 2.03 codelists too (read as 1.01: the 1.05 ones),
    # and every one of them is in them
    assert [f for f in findings if f.check == "codelist"] == []
    reader = CodeReader(code_version(False, None, path))
    assert reader.version == "2.03"

    bare = write(tmp_path, textwrap.dedent(MINIMAL_2).split("\n", 2)[2].rsplit("</iati", 1)[0])
    (bare_note,) = [f for f in check(bare, schemas, None) if f.rule == "xsd:version"]
    assert bare_note.schema_version == "2.03"
    assert "it has no <iati-activities> root); its content is IATI 2.0x" in bare_note.message

    old = write(tmp_path, "<iati-activities><iati-activity/></iati-activities>", "old.xml")
    (old_note,) = [f for f in check(old, schemas, None) if f.rule == "xsd:version"]
    assert old_note.schema_version == "1.01"
    assert "it was checked as 1.01, the first IATI version" in old_note.message


def test_without_schemas_or_codelists_nothing_is_claimed(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL_2.format(version=' version="2.03"'))
    assert rows(check(path, None, None)) == [
        ("xsd:not_checked", None, None, None, "warning"),
        ("codelist:not_checked", None, None, None, "warning"),
    ]


def test_a_file_read_whole_already_that_cannot_be_checked_is_read_to_its_root_only(
    tmp_path: Path,
) -> None:
    """The pipeline checks a file after the extractor has read all of it: without schemas
    (or without one for its version) the findings are those of reading the whole file."""
    from assets.iati.conformance import check_schema

    files = sorted(p for folder in (VALID, LEGACY) for p in folder.glob("*.xml"))
    files.append(write(tmp_path, MINIMAL_2.format(version=' version="9.99"')))
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "2.03").symlink_to(IATI_SCHEMAS / "2.03")
    one = IatiSchemas.from_dir(tmp_path / "schemas")  # no schema for 1.0x, 2.01, 2.02
    compared = 0
    for path in files:
        for given in (None, one):
            whole = check_schema(path, path.name, schemas=given)
            if any(f.rule == "xsd:not_checked" for f in whole):
                compared += 1
                assert check_schema(path, path.name, schemas=given, well_formed=True) == whole
    assert compared > len(files)  # all without schemas, and some without their version's


def test_codelists_of_the_wrong_series_are_not_used(tmp_path: Path) -> None:
    current_only = load_codelists(CODELISTS / "non-embedded")  # version-less: current lists
    old = check(LEGACY / "dfid-CD-1.01.xml", None, current_only)
    (warning,) = [f for f in old if f.check == "codelist"]
    assert warning.rule == "codelist:not_checked"
    assert warning.message == (
        "codes were not checked against the IATI codelists: no codelists of IATI version 1.0x "
        "are loaded for this 1.01 file"
    )

    path = write(tmp_path, MINIMAL_2.format(version=' version="2.03"').replace('"EUR"', '"XYZ"'))
    new = [f for f in check(path, None, current_only) if f.check == "codelist"]
    assert rows(new) == [
        (
            "codelist:Currency",
            line_of(path.read_text(), "XYZ"),
            "/iati-activities/iati-activity[1]/transaction/value/@currency",
            "XYZ",
            "warning",
        ),
        (
            "codelist:not_checked",
            None,
            None,
            "ActivityDateType, ActivityStatus, OrganisationRole, TransactionType",
            "warning",
        ),
    ]


# -- limits ---------------------------------------------------------------------------------


def test_at_most_max_findings_per_check_then_one_more(
    schemas: IatiSchemas, codelists: Codelists
) -> None:
    findings = check(INVALID / "iati-act-schema-errors.xml", schemas, codelists, max_findings=2)
    codes = [f for f in findings if f.check == "codelist"]
    assert [f.rule for f in codes] == [
        "codelist:OrganisationType",
        "codelist:OrganisationRole",
        "codelist:more",
    ]
    more = codes[-1]
    assert (more.value, more.severity, more.line, more.schema_version) == (
        "2",
        "error",  # the worst of the two not listed (ActivityStatus, ActivityDateType)
        None,
        "2.03",
    )
    assert (
        more.message
        == "2 more codelist findings not listed (at most 2 are listed per check and file)"
    )

    xsd = [
        f for f in check(VALID / "default_currency.xml", schemas, codelists, 2) if f.check == "xsd"
    ]
    assert [(f.rule, f.value, f.severity) for f in xsd] == [
        ("xsd:version", None, "warning"),
        ("xsd:root_element", "iati-activity", "error"),
        ("xsd:more", "12", "error"),
    ]
    warnings = check(VALID / "worldbank-sv.xml", schemas, codelists, max_findings=1000)
    assert len(warnings) == 1001
    assert (warnings[-1].rule, warnings[-1].value, warnings[-1].severity) == (
        "codelist:more",
        "218",
        "warning",
    )


def test_lines_past_65535_are_exact(
    tmp_path: Path, schemas: IatiSchemas, codelists: Codelists
) -> None:
    """libxml2 only estimates lines past 65,534; the findings there are still exact."""
    lines = (VALID / "iati-activities-am-armenia.xml").read_bytes().split(b"\n")
    assert len(lines) > 80_000

    def first_after(start: int, needle: bytes) -> int:
        return next(i for i in range(start, len(lines)) if needle in lines[i])

    sector = first_after(74_000, b'<sector code="')
    lines[sector] = lines[sector].replace(b'<sector code="', b'<sector code="0', 1)
    kind = first_after(75_000, b"<transaction-type code=")
    lines[kind] = lines[kind].replace(b'code="', b'code="7', 1)
    date = first_after(78_000, b'<value value-date="')
    lines[date] = lines[date].replace(b'value-date="', b'value-date="x', 1)
    bogus = first_after(65_535, b"</provider-org>")
    lines[bogus] = b"<bogus/>" + lines[bogus]
    path = tmp_path / "big.xml"
    path.write_bytes(b"\n".join(lines))

    findings = check(path, schemas, codelists)
    assert [(f.rule, f.line) for f in findings if f.rule != "codelist:not_checked"] == [
        ("xsd:SCHEMAV_ELEMENT_CONTENT", bogus + 1),
        ("xsd:SCHEMAV_CVC_DATATYPE_VALID_1_2_1", date + 1),
        ("codelist:Sector", sector + 1),
        ("codelist:TransactionType", kind + 1),
    ]
    assert all(f.message.startswith(f"line {f.line}: ") for f in findings if f.line)


# -- what is not an activity file, or hostile ------------------------------------------------


def test_files_that_are_not_activity_files(schemas: IatiSchemas, codelists: Codelists) -> None:
    def only(name: str) -> Finding:
        (finding,) = check(INVALID / name, schemas, codelists)
        return finding

    assert only("not-xml.xml").message == (
        "the file was not checked: the file is not XML: it starts with 'This is not XML'"
    )
    organisation = only("organisation-file-not-activities.xml")
    assert (organisation.rule, organisation.line, organisation.severity) == (
        "xsd:not_checked",
        2,
        "warning",
    )
    assert "organisation file" in organisation.message
    other = only("xml-but-not-iati.xml")
    assert other.rule == "xsd:not_checked"
    assert "the root element is <tag>" in other.message
    truncated = only("truncated.xml")
    assert (truncated.rule, truncated.line, truncated.severity, truncated.schema_version) == (
        "xsd:ERR_TAG_NOT_FINISHED",
        4,  # the end of the file
        "error",
        "1.01",
    )
    assert truncated.message == (
        "line 4: the file is not well-formed XML here: Premature end of data in tag "
        "iati-activities line 2; nothing after it was checked"
    )


def test_a_file_cut_short_keeps_the_findings_before_the_cut(
    tmp_path: Path, schemas: IatiSchemas, codelists: Codelists
) -> None:
    text = (VALID / "who-arg.xml").read_text(encoding="utf-8")
    second_end = text.index("</iati-activity>", text.index("</iati-activity>") + 1)
    cut = text[: second_end + 200]  # in the middle of the third activity's identifier
    path = tmp_path / "cut.xml"
    path.write_text(cut, encoding="utf-8")
    findings = check(path, schemas, codelists)
    activities = "/iati-activities/iati-activity"
    assert rows(findings) == [
        ("xsd:ERR_GT_REQUIRED", cut.count("\n") + 1, None, None, "error"),
        (
            "codelist:FlowType",
            141,
            f"{activities}[1]/transaction[2]/flow-type/@code",
            "20",
            "warning",
        ),
        (
            "codelist:FlowType",
            371,
            f"{activities}[2]/transaction[2]/flow-type/@code",
            "20",
            "warning",
        ),
    ]
    assert findings[0].message == (
        f"line {cut.count(chr(10)) + 1}: the file is not well-formed XML here: expected '>'; "
        "the 2 activities before it were checked, nothing after it"
    )


def test_entities_and_dtds_are_never_resolved(
    tmp_path: Path, http_server: FixtureServer, schemas: IatiSchemas, codelists: Codelists
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT", encoding="utf-8")
    remote = http_server.url("/steal")
    path = write(
        tmp_path,
        f"""
        <?xml version="1.0"?>
        <!DOCTYPE iati-activities SYSTEM "{http_server.url("/dtd")}" [
          <!ENTITY local SYSTEM "file://{secret}">
          <!ENTITY remote SYSTEM "{remote}">
          <!ENTITY a "aaaaaaaaaa">
          <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
          <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
        ]>
        <iati-activities version="2.03">
          <iati-activity>
            <iati-identifier>&local;</iati-identifier>
            <reporting-org ref="&remote;" type="&c;"/>
          </iati-activity>
        </iati-activities>
        """,
    )
    (finding,) = check(path, schemas, codelists)
    assert (finding.rule, finding.severity) == ("xsd:not_checked", "warning")
    assert "declares a DTD" in finding.message
    assert "TOP-SECRET" not in repr(finding)
    assert http_server.requests() == []

    undeclared = write(
        tmp_path,
        MINIMAL_2.format(version=' version="2.03"').replace("XM-EXAMPLE-1", "&local;"),
        "undeclared.xml",
    )
    (broken,) = [f for f in check(undeclared, schemas, codelists) if f.check == "xsd"]
    assert (broken.rule, broken.line) == ("xsd:ERR_UNDECLARED_ENTITY", 3)


def _schema_folder(root: Path, version: str, include: str) -> None:
    folder = root / version
    folder.mkdir(parents=True)
    (folder / "iati-activities-schema.xsd").write_text(
        f"""<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema">
          <xsd:include schemaLocation="{include}"/>
          <xsd:element name="iati-activities" type="xsd:anyType"/>
        </xsd:schema>""",
        encoding="utf-8",
    )


def test_schemas_read_nothing_outside_their_version_folder(
    tmp_path: Path, http_server: FixtureServer
) -> None:
    outside = tmp_path / "outside.xsd"
    outside.write_text(
        '<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema">'
        '<xsd:element name="stolen" type="xsd:string"/></xsd:schema>',
        encoding="utf-8",
    )
    root = tmp_path / "schemas"
    _schema_folder(root, "2.03", "../../outside.xsd")
    _schema_folder(root, "2.02", http_server.url("/remote.xsd"))
    _schema_folder(root, "2.01", "common.xsd")
    os.symlink(outside, root / "2.01" / "common.xsd")
    _schema_folder(root, "1.01", "common.xsd")
    (root / "1.01" / "common.xsd").write_text(outside.read_text(), encoding="utf-8")

    schemas = IatiSchemas.from_dir(root)
    assert schemas.schema("1.01") is not None  # a sibling file is fine
    for version, refused in (
        ("2.03", "outside.xsd"),
        ("2.02", http_server.url("/remote.xsd")),
        ("2.01", str(root / "2.01" / "common.xsd")),
    ):
        with pytest.raises(SchemaError, match="refused to read") as raised:
            schemas.schema(version)
        assert refused in str(raised.value)
    assert http_server.requests() == []

    path = write(tmp_path, MINIMAL_2.format(version=' version="2.03"'))
    (finding,) = [f for f in check(path, schemas, None) if f.check == "xsd"]
    assert (finding.rule, finding.severity) == ("xsd:not_checked", "warning")
    assert "refused to read" in finding.message


# -- the table ------------------------------------------------------------------------------


def test_findings_table_has_the_published_columns(
    schemas: IatiSchemas, codelists: Codelists
) -> None:
    findings = check(INVALID / "iati-act-schema-errors.xml", schemas, codelists)
    arrow = findings_arrow(findings)
    assert arrow.schema == arrow_schema("conformance")
    frame = frame_of_arrow(arrow)
    assert list(frame.columns) == field_names("conformance")
    assert len(frame) == len(findings)
    assert str(frame["line"].dtype) == "Int64"
    assert frame.loc[0, "rule"] == "xsd:SCHEMAV_CVC_DATATYPE_VALID_1_2_1"
    assert frame.loc[0, "line"] == 18
    assert findings_arrow([]).schema.names == field_names("conformance")


def test_every_file_of_a_night_says_whether_and_how_its_schema_was_checked(
    tmp_path: Path, schemas: IatiSchemas
) -> None:
    """A rejected file is no longer silent: the check ran and found what is wrong (a file
    of no activities breaks the 2.03 schema; a file cut short is not well-formed where it
    stops), or one ``xsd:not_checked`` row says why it could not run, a file refused
    unread included."""
    from assets.iati.harmonise import HarmoniseOptions, harmonise_paths
    from assets.settings import load_settings

    folder = tmp_path / "night"
    folder.mkdir()
    write(folder, '<?xml version="1.0"?>\n<iati-activities version="2.03"/>\n', "empty.xml")
    big = "<iati-activities>" + "<!-- padding -->" * 100_000 + "</iati-activities>"
    write(folder, big, "big.xml")
    for name in ("not-xml.xml", "truncated.xml", "organisation-file-not-activities.xml"):
        (folder / name).write_bytes((IATI_FIXTURES / "invalid" / name).read_bytes())
    options = HarmoniseOptions(
        rules=load_settings().cd_rules, schemas=schemas, max_file_bytes=2**20
    )
    _, tables = harmonise_paths([folder], options)
    assert set(tables["sources"]["status"]) == {"rejected"}
    found = {
        (r.source_file, r.rule, r.schema_version, None if r.line is pd.NA else r.line): r.message
        for r in tables["conformance"].itertuples()
    }
    assert found == {
        ("big.xml", "xsd:not_checked", pd.NA, None): "the file was not checked: the file is "
        "1.5 MB, over the limit of 1 MB (fetch.max_file_mb); it was not read",
        ("empty.xml", "xsd:SCHEMAV_ELEMENT_CONTENT", "2.03", 2): "line 2: Element "
        "'iati-activities': Missing child element(s). Expected is ( iati-activity ).",
        ("not-xml.xml", "xsd:not_checked", pd.NA, None): "the file was not checked: the file "
        "is not XML: it starts with 'This is not XML'",
        ("organisation-file-not-activities.xml", "xsd:not_checked", pd.NA, 2): "line 2: the "
        "file was not checked: it is an IATI organisation file (<iati-organisations>), not an "
        "activity file",
        ("truncated.xml", "xsd:ERR_TAG_NOT_FINISHED", "1.01", 4): "line 4: the file is not "
        "well-formed XML here: Premature end of data in tag iati-activities line 2; nothing "
        "after it was checked",
    }
