"""IATI schema (XSD) and codelist conformance of one activity file, finding by finding.

What the official IATI activity XML Schema of the file's version and the IATI codelists of
that version say about a file as published, with the line each problem is on. The file is
read the way :mod:`assets.iati.xml` reads it (streaming, entities never resolved, nothing
fetched, DTDs refused) and checked one ``<iati-activity>`` at a time, so memory stays flat
however large the file is:

* XSD: each activity is moved, when it has been read, into a small wrapper document
  ``<iati-activities ...>`` carrying the root's own attributes, and the wrapper is validated.
  A moved element keeps its line, so libxml2's errors point into the original file. The
  root (its attributes, and elements of other namespaces beside the activities) is checked
  along with the activities, and each root error is reported once. libxml2 keeps line
  numbers in 16 bits and only estimates lines past 65,534; findings there get their exact
  line from a second, lightweight pass over the file (:func:`_exact_lines`).
* Codelists: the extractor reads every coded attribute a rule applies to
  (:class:`CodeReader`, with its exact line and path) and :func:`codelist_findings`
  checks them for every file at once, in DuckDB, against the codelist of the file's
  version (1.0x files against the newest 1.0x codelists loaded), so new codelists never
  make a file be read again. A code that is not in an embedded codelist
  (:data:`EMBEDDED_CODELISTS`) is an error; not in a non-embedded one, or withdrawn, a
  warning.

:func:`check_schema` (the XSD findings, kept with a file's extract) and
:func:`assets.iati.extract.check_conformance` (both, for one file on its own) never
raise: a file that cannot be checked gets a finding saying why (``xsd:not_checked``).
"""

from __future__ import annotations

import copy
import hashlib
import re
import threading
import xml.parsers.expat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import duckdb
import pyarrow as pa
from lxml import etree

from assets.harmonise.schema import arrow_schema, table_arrow
from assets.iati.codelists import VERSIONLESS, Codelists
from assets.iati.xml import SAFE_PARSE_OPTIONS, NotIatiActivities, local_name, sniff
from assets.warehouse import literal, temp_table

#: The activity schema of each version folder; it includes/imports its siblings.
SCHEMA_FILE = "iati-activities-schema.xsd"
XSD_NAMESPACE = "http://www.w3.org/2001/XMLSchema"
#: Version a file that states none is checked as (the first IATI version).
DEFAULT_VERSION = "1.01"
#: IATI's embedded codelists: changing them changes the standard, so a code outside one is
#: an error. :class:`~assets.iati.codelists.Codelists` does not record embedded-ness; this
#: is the set of lists with ``embedded="1"`` in the official codelists (the fixtures'
#: ``embedded/2.03`` and ``embedded/1.05`` folders). All others are non-embedded.
EMBEDDED_CODELISTS = frozenset(
    {
        "ActivityDateType",
        "ActivityStatus",
        "AidTypeFlag",
        "BudgetStatus",
        "BudgetType",
        "DocumentCategory",
        "GazetteerAgency",
        "OrganisationRole",
        "RelatedActivityType",
        "TransactionType",
        "Vocabulary",
    }
)
SEVERITIES = ("warning", "error")

_XML_NAMESPACE = "http://www.w3.org/XML/1998/namespace"
_XML_LANG = f"{{{_XML_NAMESPACE}}}lang"
_ACTIVITY = "iati-activity"
_ROOT = "iati-activities"
#: Early publishers wrote "1.0" (or "1") for the first version, 1.01.
_VERSION_ALIASES = {"1": "1.01", "1.0": "1.01", "1.00": "1.01"}
_VERSION = re.compile(r"^\s*(\d+)\.(\d+)\s*$")
#: libxml2 keeps line numbers in 16 bits: from this line on, lxml's are estimates.
_BIG_LINE = 65535
_PARSE_OPTIONS = SAFE_PARSE_OPTIONS


@dataclass(frozen=True)
class Finding:
    """One row of the ``conformance`` table (schema/conformance.json)."""

    source_file: str
    check: str  # "xsd" | "codelist"
    schema_version: str | None
    line: int | None
    path: str | None  # /iati-activities/iati-activity[3]/transaction[2]/transaction-type/@code
    activity_id: str | None
    rule: str  # "xsd:SCHEMAV_ELEMENT_CONTENT" | "codelist:Sector" | "xsd:not_checked" ...
    value: str | None
    message: str
    severity: str  # "error" | "warning"


def findings_arrow(findings: Sequence[Finding]) -> pa.Table:
    """The ``conformance`` table: exactly the fields of schema/conformance.json, in order."""
    return table_arrow("conformance", [dict(vars(finding)) for finding in findings])


# -- versions -------------------------------------------------------------------------------


def _version_key(version: str | None) -> tuple[int, int] | None:
    """(major, minor) of "2.03"; None for anything that is not a version number."""
    match = _VERSION.match(version or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def _sort_key(version: str) -> tuple[int, int]:
    return _version_key(version) or (-1, -1)


# -- schemas ------------------------------------------------------------------------------


class SchemaError(Exception):
    """An IATI schema folder whose schema cannot be read or compiled."""


class _FolderResolver(etree.Resolver):
    """Lets libxml2 read only files directly inside one folder (no network, no elsewhere)."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder.resolve()
        self.refused: list[str] = []

    def resolve(self, system_url: str | None, public_id: str | None, context: Any) -> Any:
        target = _local_file(system_url or "")
        if target is not None:
            try:
                real = target.resolve(strict=True)
            except (OSError, RuntimeError):
                real = None
            if real is not None and real.parent == self.folder and real.is_file():
                return self.resolve_filename(str(real), context)
        self.refused.append(system_url or "")
        # Raising (not returning None, which would let libxml2 load it) refuses the file.
        raise SchemaError(f"refused to read {system_url!r}: only files in {self.folder} are read")


def _local_file(url: str) -> Path | None:
    parts = urlsplit(url)
    if parts.scheme == "file" and parts.netloc in ("", "localhost"):
        return Path(unquote(parts.path))
    if parts.scheme == "" and url:
        return Path(url)
    return None  # http:, ftp:, ... are never read


def _schema_files(folder: Path) -> list[Path]:
    """The visible ``*.xsd`` files of one version folder (fetch sidecars are hidden)."""
    if not folder.is_dir():
        return []
    return sorted(
        path
        for path in folder.iterdir()
        if path.suffix == ".xsd" and not path.name.startswith(".") and path.is_file()
    )


def _folder_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in _schema_files(folder):
        data = path.read_bytes()
        digest.update(f"{path.name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def _compile(folder: Path) -> Any:
    resolver = _FolderResolver(folder)
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False
    )
    parser.resolvers.add(resolver)
    try:
        document = etree.parse(str(folder / SCHEMA_FILE), parser)
        root = document.getroot()
        if root.tag != f"{{{XSD_NAMESPACE}}}schema":
            raise SchemaError(f"{folder / SCHEMA_FILE} is not an XML Schema")
        return etree.XMLSchema(document)
    except (etree.LxmlError, OSError, SchemaError) as exc:
        refused = (
            f" (refused to read {', '.join(resolver.refused)}: only files in {folder} are read)"
            if resolver.refused
            else ""
        )
        raise SchemaError(f"the IATI schema in {folder} cannot be used: {exc}{refused}") from None


#: Compiled schemas by (folder, version, digest), per thread: an lxml validator keeps its
#: error log on itself, so it is not shared between threads.
_COMPILED = threading.local()


class IatiSchemas:
    """The official IATI activity schemas, one folder per version
    (``<folder>/<version>/iati-activities-schema.xsd`` with ``iati-common.xsd`` and
    ``xml.xsd`` beside it)."""

    def __init__(self, folder: Path, versions: Iterable[str]) -> None:
        self.folder = Path(folder)
        self.versions: tuple[str, ...] = tuple(
            sorted((v for v in versions if _version_key(v)), key=_sort_key)
        )
        self._digests: dict[str, str] = {}

    @classmethod
    def from_dir(cls, folder: Path) -> IatiSchemas:
        """Every ``<folder>/<version>/`` holding the activity schema; a missing folder has
        no versions (every file is then reported as not checked)."""
        folder = Path(folder)
        versions = (
            [
                child.name
                for child in folder.iterdir()
                if _version_key(child.name) and (child / SCHEMA_FILE).is_file()
            ]
            if folder.is_dir()
            else []
        )
        return cls(folder, versions)

    def resolve(self, version: str | None) -> str | None:
        """The available version for a file of ``version``: the same, else the nearest
        earlier one of the same major version ("1.02" -> "1.01", "2.04" -> "2.03"); None
        when there is none (a 1.0x schema never checks a 2.0x file, nor the reverse)."""
        key = _version_key(version)
        if key is None:
            return None
        earlier = [
            v for v in self.versions if (k := _version_key(v)) and k[0] == key[0] and k <= key
        ]
        return earlier[-1] if earlier else None

    def schema(self, version: str) -> Any:
        """The compiled ``etree.XMLSchema`` of an available version, compiled once per
        process (and thread); SchemaError when it cannot be read, KeyError when the version
        is not available."""
        if version not in self.versions:
            raise KeyError(f"no IATI schema for version {version} in {self.folder}")
        folder = self.folder / version
        digest = self._digests.get(version)
        if digest is None:
            digest = self._digests[version] = _folder_digest(folder)
        cache: dict[tuple[str, str, str], Any] | None = getattr(_COMPILED, "schemas", None)
        if cache is None:
            cache = _COMPILED.schemas = {}
        key = (str(folder.resolve()), version, digest)
        if key not in cache:
            try:
                cache[key] = _compile(folder)
            except SchemaError as exc:
                cache[key] = str(exc)  # a broken schema is not compiled again for every file
        found = cache[key]
        if isinstance(found, str):
            raise SchemaError(found)
        return found

    def fingerprint(self) -> str:
        """sha256 over every schema file of every version (names and bytes): it changes
        whenever a schema does, for invalidating cached conformance results."""
        digest = hashlib.sha256()
        for version in self.versions:
            for path in _schema_files(self.folder / version):
                data = path.read_bytes()
                digest.update(f"{version}/{path.name}\0{len(data)}\0".encode())
                digest.update(data)
        return digest.hexdigest()


# -- codelist rules -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rule:
    """``attribute`` of an element holds a code of ``codelist``; with ``vocabularies``, only
    when the element's ``@vocabulary`` is one of them (or absent, if ``default``)."""

    attribute: str
    codelist: str
    label: str
    vocabularies: frozenset[str] | None = None
    default: bool = False

    def applies(self, element: Any) -> bool:
        if self.vocabularies is None:
            return True
        vocabulary = element.get("vocabulary")
        if vocabulary is None:
            return self.default
        return vocabulary.strip() in self.vocabularies


def _rules(*rules: tuple[str, _Rule]) -> dict[str, tuple[_Rule, ...]]:
    table: dict[str, list[_Rule]] = {}
    for tag, rule in rules:
        table.setdefault(tag, []).append(rule)
    return {tag: tuple(found) for tag, found in table.items()}


def _org_type(tag: str) -> tuple[str, _Rule]:
    return tag, _Rule("type", "OrganisationType", f"{tag} type")


#: The same in every version (the codes differ by version: the codelist's version decides).
_COMMON_RULES: tuple[tuple[str, _Rule], ...] = (
    ("activity-status", _Rule("code", "ActivityStatus", "activity status")),
    ("activity-date", _Rule("type", "ActivityDateType", "activity date type")),
    ("activity-scope", _Rule("code", "ActivityScope", "activity scope")),
    ("budget", _Rule("type", "BudgetType", "budget type")),
    ("budget", _Rule("status", "BudgetStatus", "budget status")),
    ("collaboration-type", _Rule("code", "CollaborationType", "collaboration type")),
    ("recipient-country", _Rule("code", "Country", "recipient country code")),
    ("default-finance-type", _Rule("code", "FinanceType", "default finance type")),
    ("finance-type", _Rule("code", "FinanceType", "finance type")),
    ("default-flow-type", _Rule("code", "FlowType", "default flow type")),
    ("flow-type", _Rule("code", "FlowType", "flow type")),
    ("default-tied-status", _Rule("code", "TiedStatus", "default tied status")),
    ("tied-status", _Rule("code", "TiedStatus", "tied status")),
    ("transaction-type", _Rule("code", "TransactionType", "transaction type")),
    ("participating-org", _Rule("role", "OrganisationRole", "participating-org role")),
    _org_type("participating-org"),
    _org_type("reporting-org"),
    _org_type("provider-org"),
    _org_type("receiver-org"),
    ("category", _Rule("code", "DocumentCategory", "document category")),
    ("language", _Rule("code", "Language", "document language")),
    ("related-activity", _Rule("type", "RelatedActivityType", "related activity type")),
    ("result", _Rule("type", "ResultType", "result type")),
    ("indicator", _Rule("measure", "IndicatorMeasure", "indicator measure")),
    ("policy-marker", _Rule("significance", "PolicySignificance", "policy significance")),
)
_ONE = frozenset({"1"})
#: IATI 2.0x (mapping.xml of the 2.03 codelists).
RULES_2 = _rules(
    *_COMMON_RULES,
    ("planned-disbursement", _Rule("type", "BudgetType", "planned disbursement type")),
    ("sector", _Rule("code", "Sector", "sector code", _ONE, default=True)),
    ("sector", _Rule("code", "SectorCategory", "sector category code", frozenset({"2"}))),
    ("sector", _Rule("vocabulary", "SectorVocabulary", "sector vocabulary")),
    ("recipient-region", _Rule("code", "Region", "recipient region code", _ONE, default=True)),
    ("recipient-region", _Rule("vocabulary", "RegionVocabulary", "region vocabulary")),
    ("default-aid-type", _Rule("code", "AidType", "default aid type", _ONE, default=True)),
    ("default-aid-type", _Rule("vocabulary", "AidTypeVocabulary", "aid type vocabulary")),
    ("aid-type", _Rule("code", "AidType", "aid type", _ONE, default=True)),
    ("aid-type", _Rule("vocabulary", "AidTypeVocabulary", "aid type vocabulary")),
    ("policy-marker", _Rule("code", "PolicyMarker", "policy marker", _ONE, default=True)),
    ("humanitarian-scope", _Rule("type", "HumanitarianScopeType", "humanitarian scope type")),
)
#: IATI 1.0x: sector and policy-marker vocabularies are "DAC" / "DAC-3" from the embedded
#: Vocabulary codelist; aid types have no vocabulary.
RULES_1 = _rules(
    *_COMMON_RULES,
    ("sector", _Rule("code", "Sector", "sector code", frozenset({"DAC"}), default=True)),
    ("sector", _Rule("code", "SectorCategory", "sector category code", frozenset({"DAC-3"}))),
    ("sector", _Rule("vocabulary", "Vocabulary", "sector vocabulary")),
    ("recipient-region", _Rule("code", "Region", "recipient region code", _ONE, default=True)),
    ("recipient-region", _Rule("vocabulary", "RegionVocabulary", "region vocabulary")),
    ("default-aid-type", _Rule("code", "AidType", "default aid type")),
    ("aid-type", _Rule("code", "AidType", "aid type")),
    (
        "policy-marker",
        _Rule("code", "PolicyMarker", "policy marker", frozenset({"DAC", "1"}), default=True),
    ),
    ("policy-marker", _Rule("vocabulary", "Vocabulary", "policy marker vocabulary")),
)
#: Attributes coded wherever they are.
_ANY_ELEMENT_RULES = (
    _Rule("currency", "Currency", "currency"),
    _Rule("default-currency", "Currency", "default currency"),
    _Rule(_XML_LANG, "Language", "language (xml:lang)"),
)


_BY_TAG = {
    series: {tag: _ANY_ELEMENT_RULES + rules for tag, rules in table.items()}
    for series, table in ((1, RULES_1), (2, RULES_2))
}


def _shown(attribute: str) -> str:
    return "xml:lang" if attribute == _XML_LANG else attribute


# -- coded values, as the extractor reads them ----------------------------------------------

#: Every coded attribute of a file a codelist rule applies to, in document order: what the
#: codelist check reads (``value`` as published, ``code`` the same without surrounding
#: white space; ``line`` exact, also past 65,534).
CODE_SCHEMA = pa.schema(
    [
        ("rule", pa.int16()),  # CODE_RULES[rule]: (codelist, label, attribute as shown)
        ("value", pa.string()),
        ("code", pa.string()),  # the value without surrounding white space, where it differs
        ("line", pa.int64()),
        ("path", pa.string()),  # of the element; the attribute is /@<attribute> after it
        ("activity_id", pa.string()),
    ]
)
#: (codelist, label, attribute as shown) of every rule, the root's first: what ``rule`` in
#: :data:`CODE_SCHEMA` numbers.
CODE_RULES: tuple[tuple[str, str, str], ...] = tuple(
    dict.fromkeys(
        [
            ("Version", "version", "version"),
            ("Language", "language (xml:lang)", "xml:lang"),
            *(
                (rule.codelist, rule.label, _shown(rule.attribute))
                for table in _BY_TAG.values()
                for rules in (*table.values(), _ANY_ELEMENT_RULES)
                for rule in rules
            ),
        ]
    )
)
_RULE_IDS = {rule: number for number, rule in enumerate(CODE_RULES)}


def _numbered(rules: tuple[_Rule, ...]) -> tuple[tuple[_Rule, int], ...]:
    return tuple(
        (rule, _RULE_IDS[(rule.codelist, rule.label, _shown(rule.attribute))]) for rule in rules
    )


#: The rules of each series by tag, each with its number in CODE_RULES.
_NUMBERED = {
    series: {tag: _numbered(rules) for tag, rules in table.items()}
    for series, table in _BY_TAG.items()
}
_ANY_NUMBERED = _numbered(_ANY_ELEMENT_RULES)

#: What an attribute of an element may be coded as: (order among the element's rules,
#: rule number, the rule when it depends on the element's vocabulary, else None).
_Plan = dict[str, tuple[tuple[int, int, _Rule | None], ...]]


def _plan(rules: tuple[tuple[_Rule, int], ...]) -> _Plan:
    plan: dict[str, list[tuple[int, int, _Rule | None]]] = {}
    for order, (rule, number) in enumerate(rules):
        conditional = rule if rule.vocabularies is not None else None
        plan.setdefault(rule.attribute, []).append((order, number, conditional))
    return {attribute: tuple(found) for attribute, found in plan.items()}


#: :data:`_NUMBERED` by attribute name, for reading an element's attributes in one call.
_PLANS = {
    series: {tag: _plan(rules) for tag, rules in table.items()}
    for series, table in _NUMBERED.items()
}
_ANY_PLAN = _plan(_ANY_NUMBERED)


def activity_identifier(activity: Any) -> str | None:
    """The identifier findings name an activity by (its first ``iati-identifier``'s text)."""
    found = next(activity.iterchildren("iati-identifier"), None)
    return ((found.text if found is not None else None) or "").strip() or None


#: The version a file that states none is checked as when its content is IATI 2.0x.
NEWEST_2X = "2.03"


def code_version(bare: bool, stated: str | None, path: Path | None = None) -> str:
    """The version a file is checked as: the one it states (1.0 and 1 meaning 1.01), else,
    when ``path``'s content is IATI 2.0x (:func:`_has_narratives`), the newest 2.0x
    version, else the first IATI version; a lone ``<iati-activity>`` root states none."""
    stated = None if bare else stated
    if not stated and path is not None and _has_narratives(path):
        return NEWEST_2X
    return _VERSION_ALIASES.get(stated or "", stated) or DEFAULT_VERSION


class CodeReader:
    """Collects the coded attributes of one file (:data:`CODE_SCHEMA`) for the codelist
    rules of the version the file is checked as; nothing when that is not a version."""

    def __init__(self, version: str) -> None:
        self.version = version
        key = _version_key(version)
        self.rules = None if key is None else _NUMBERED[1 if key[0] == 1 else 2]
        self._plans = None if key is None else _PLANS[1 if key[0] == 1 else 2]
        # The rows, column by column (the code is found from the value in table): lists of
        # strings and numbers, which the garbage collector does not follow, unlike a tuple a
        # row.
        self._rules: list[int] = []
        self._values: list[str] = []
        self._lines: list[int | None] = []
        self._paths: list[str] = []
        self._activities: list[str | None] = []
        #: (row, element address) of the rows whose line libxml2 only estimated
        self._big: list[tuple[int, tuple[tuple[str, int], ...]]] = []
        self.position = 0  # activities read, as the XSD check counts them

    def root(self, version: str | None, language: str | None, line: int | None) -> None:
        """The coded attributes of an ``<iati-activities>`` root (its version and language,
        as published)."""
        if self.rules is None:
            return
        for value, rule in ((version, 0), (language, 1)):
            if value is not None:
                self._rules.append(rule)
                self._values.append(value)
                self._lines.append(line)
                self._paths.append(f"/{_ROOT}")
                self._activities.append(None)

    def activity(self, activity: Any, bare: bool) -> None:
        """Every coded attribute of one ``<iati-activity>`` (a child of the root, or the root
        itself), in document order."""
        if self.rules is None or activity.tag != _ACTIVITY:
            return  # a namespaced iati-activity is foreign to the codelists
        key: tuple[tuple[str, int], ...]
        if bare:
            pointer, key = f"/{_ACTIVITY}", ((_ACTIVITY, 1),)
        else:
            self.position += 1
            pointer = f"/{_ROOT}/{_ACTIVITY}[{self.position}]"
            key = ((_ROOT, 1), (_ACTIVITY, self.position))
        identifier = activity_identifier(activity)
        plans = self._plans
        assert plans is not None
        rules, values, lines, paths = self._rules, self._values, self._lines, self._paths
        activities = self._activities
        # An element's path is its parent's and one step: each parent's place is made once
        # (kept by id: a place keeps its element), with its children grouped by tag. Not
        # libxml2's getpath, which counts the same-named siblings of every ancestor again for
        # each element (quadratic in the transactions of an activity).
        places: dict[int, _Place] | None = None
        last = above = None
        address: tuple[tuple[str, int], ...] | None
        for element in activity.iter(etree.Element):  # elements in document order
            items = element.items()
            if not items:
                continue
            # the element's attributes read in one call, each looked up in its tag's plan
            tag = element.tag
            plan = plans.get(tag, _ANY_PLAN)
            found: list[tuple[int, int, str]] | None = None
            for name, value in items:
                hits = plan.get(name)
                if hits is not None:
                    for order, number, rule in hits:
                        if rule is None or rule.applies(element):
                            if found is None:
                                found = []
                            found.append((order, number, value))
            if found is None:
                continue
            if len(found) > 1:
                found.sort()  # in the order of the rules
            if element is activity:
                path, address = pointer, key
            else:
                parent = element.getparent()
                if parent is not last:
                    if places is None:
                        places = {id(activity): (activity, pointer, key, _group(activity))}
                    above = places.get(id(parent)) or _place(parent, places)
                    last = parent
                assert above is not None
                path, position = _step(above, element, tag)
                address = None
            line = element.sourceline
            if line is not None and line >= _BIG_LINE:
                if address is None:
                    assert above is not None
                    address = (*above[2], (tag, position))
                self._big.extend(
                    (row, address) for row in range(len(values), len(values) + len(found))
                )
            for _, number, value in found:
                rules.append(number)
                values.append(value)
                lines.append(line)
                paths.append(path)
                activities.append(identifier)

    def table(self, path: Path) -> pa.Table:
        """The rows read, with exact lines past 65,534 (read again with expat for those)."""
        if self._big:
            exact = _exact_lines(path, {key for _, key in self._big})
            for index, key in self._big:
                if key in exact:
                    self._lines[index] = exact[key]
        if not self._values:
            return CODE_SCHEMA.empty_table()
        codes = [None if (code := value.strip()) == value else code for value in self._values]
        columns = (self._rules, self._values, codes, self._lines, self._paths, self._activities)
        return pa.Table.from_arrays(
            [pa.array(c, type=f.type) for c, f in zip(columns, CODE_SCHEMA, strict=True)],
            schema=CODE_SCHEMA,
        )


#: How many children have each tag, each child's position among the children of its tag (by
#: id), and the children (kept, so that their ids stay theirs).
_Group = tuple[dict[Any, int], dict[int, int], list[Any]]
#: An element inside an activity, as the parent of elements with codes: itself, its path,
#: its address (tag, position among its same-tag siblings, from the root) and its children
#: grouped by tag (:func:`_group`).
_Place = tuple[Any, str, tuple[tuple[str, int], ...], _Group | None]


def _group(element: Any) -> _Group | None:
    """The children of an element grouped by tag; None when their tags all differ (comments,
    PIs and entities are children too, with tags that are not strings)."""
    children = element[:]
    tags = [child.tag for child in children]
    if len(set(tags)) == len(tags):
        return None
    counts: dict[Any, int] = {}
    numbers: dict[int, int] = {}
    for child, tag in zip(children, tags, strict=True):
        counts[tag] = numbers[id(child)] = counts.get(tag, 0) + 1
    return counts, numbers, children


def _step(above: _Place, child: Any, tag: str) -> tuple[str, int]:
    """The path of a child of ``above`` and its position among its same-tag siblings: named
    with its prefix, numbered where it has siblings of the same tag (as libxml2's getpath
    names elements without a namespace)."""
    _, path, _, group = above
    name = tag if tag[0] != "{" else _step_name(child)
    if group is not None and group[0][tag] > 1:
        number = group[1][id(child)]
        return f"{path}/{name}[{number}]", number
    return f"{path}/{name}", 1


def _place(element: Any, places: dict[int, _Place]) -> _Place:
    """The place of an element below an activity whose place is in ``places``, made from its
    parent's (made first where it is not there yet) and kept there."""
    parent = element.getparent()
    above = places.get(id(parent)) or _place(parent, places)
    tag = element.tag
    path, number = _step(above, element, tag)
    place = places[id(element)] = (element, path, (*above[2], (tag, number)), _group(element))
    return place


# -- the codelist check, for every file at once ---------------------------------------------

CONFORMANCE_FIELDS = arrow_schema("conformance")
_NOTE = "codes were not checked against the IATI codelists: "


def _resolve_codelists(codelists: Codelists, version: str) -> tuple[str | None, int, str | None]:
    """(codelist version, series, note): the codelists a file of ``version`` is checked
    against (the same version, else the newest of its series, else the version-less ones for
    2.0x), or why it is not checked."""
    key = _version_key(version)
    if key is None:
        return None, 2, f"version {version!r} is not an IATI version number"
    series = 1 if key[0] == 1 else 2
    loaded = {
        found: _version_key(found)
        for by_version in codelists.lists.values()
        for found in by_version
        if found != VERSIONLESS
    }
    same = [v for v, k in loaded.items() if k == key]
    ordered = sorted((v for v, k in loaded.items() if k and k[0] == key[0]), key=_sort_key)
    if same:
        return same[0], series, None
    if ordered:
        return ordered[-1], series, None
    if series == 2 and any(VERSIONLESS in by_version for by_version in codelists.lists.values()):
        return version, series, None  # the version-less (current) codelists
    return (
        None,
        series,
        f"no codelists of IATI version {key[0]}.0x are loaded for this {version} file",
    )


def codelist_findings(
    con: duckdb.DuckDBPyConnection,
    files: pa.Table | str,
    rows: pa.Table | str,
    codelists: Codelists | None,
    max_findings: int,
) -> pa.Table:
    """The codelist findings of many files at once: ``files`` (``file_key``, ``code_root``:
    the root was an IATI activity file's, ``code_version``: :func:`code_version`) and their
    coded attributes ``rows`` (``file_key``, ``seq`` and :data:`CODE_SCHEMA`), as Arrow
    tables or names of relations in ``con``. Membership is joined in DuckDB; only the
    findings are read into Python. Each file's findings come in its order (``_ord``): at
    most ``max_findings``, then one ``codelist:more`` counting the rest."""
    for name, given in (("code_files", files), ("code_occurrences", rows)):
        if isinstance(given, str):
            con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM {given}")
        else:
            temp_table(con, name, given)
    temp_table(
        con,
        "code_rules",
        pa.table(
            {
                "rule": pa.array(range(len(CODE_RULES)), pa.int16()),
                "codelist": [r[0] for r in CODE_RULES],
                "label": [r[1] for r in CODE_RULES],
                "attribute": [r[2] for r in CODE_RULES],
            }
        ),
    )
    con.execute(
        "CREATE OR REPLACE TEMP VIEW code_rows AS SELECT o.file_key, o.seq, r.codelist, "
        "r.label, o.value, coalesce(o.code, o.value) AS code, o.line, "
        "o.path || '/@' || r.attribute AS path, o.activity_id "
        "FROM code_occurrences o JOIN code_rules r ON r.rule = o.rule"
    )
    limit = max(0, max_findings)
    versions = [
        row[0]
        for row in con.execute(
            "SELECT DISTINCT code_version FROM code_files WHERE code_root ORDER BY 1"
        ).fetchall()
    ]
    resolved = {
        v: _resolve_codelists(codelists, v) if codelists is not None else (None, 2, None)
        for v in versions
    }
    lists = [
        row[0]
        for row in con.execute("SELECT DISTINCT codelist FROM code_rows ORDER BY 1").fetchall()
    ]
    usable: list[dict[str, Any]] = []
    sets: list[dict[str, Any]] = []
    if codelists is not None:
        for version, series in sorted({(cv, sr) for cv, sr, _ in resolved.values() if cv}):
            for name in lists:
                by_version = codelists.lists.get(name) or {}
                ok = version in by_version or (
                    VERSIONLESS in by_version and (series == 2 or name not in EMBEDDED_CODELISTS)
                )
                usable.append({"cv": version, "series": series, "codelist": name, "ok": ok})
                if ok:
                    active = codelists.codes(name, version, include_withdrawn=False)
                    for code in codelists.codes(name, version):
                        sets.append(
                            {
                                "cv": version,
                                "series": series,
                                "codelist": name,
                                "code": code,
                                "active": code in active,
                            }
                        )
    temp_table(
        con,
        "code_versions",
        pa.Table.from_pylist(
            [{"code_version": v, "cv": cv, "series": sr} for v, (cv, sr, _) in resolved.items()],
            schema=pa.schema(
                [("code_version", pa.string()), ("cv", pa.string()), ("series", pa.int64())]
            ),
        ),
    )
    temp_table(
        con,
        "code_usable",
        pa.Table.from_pylist(
            usable,
            schema=pa.schema(
                [
                    ("cv", pa.string()),
                    ("series", pa.int64()),
                    ("codelist", pa.string()),
                    ("ok", pa.bool_()),
                ]
            ),
        ),
    )
    temp_table(
        con,
        "code_sets",
        pa.Table.from_pylist(
            sets,
            schema=pa.schema(
                [
                    ("cv", pa.string()),
                    ("series", pa.int64()),
                    ("codelist", pa.string()),
                    ("code", pa.string()),
                    ("active", pa.bool_()),
                ]
            ),
        ),
    )
    embedded = ", ".join(literal(name) for name in sorted(EMBEDDED_CODELISTS))
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE code_checked AS
        SELECT r.file_key, r.seq, r.codelist, r.label, r.value, r.code, r.line, r.path,
            r.activity_id, v.cv, coalesce(u.ok, false) AS usable, s.code IS NOT NULL AS known,
            coalesce(s.active, false) AS active
        FROM code_rows r
        JOIN code_files f ON f.file_key = r.file_key AND f.code_root
        JOIN code_versions v ON v.code_version = f.code_version AND v.cv IS NOT NULL
        LEFT JOIN code_usable u ON u.cv = v.cv AND u.series = v.series AND u.codelist = r.codelist
        LEFT JOIN code_sets s ON s.cv = v.cv AND s.series = v.series
            AND s.codelist = r.codelist AND s.code = r.code
        WHERE NOT coalesce(u.ok, false) OR NOT coalesce(s.active, false)
        """
    )
    failing = con.execute(
        f"""
        WITH f AS (
            SELECT *, row_number() OVER (PARTITION BY file_key ORDER BY seq) AS n,
                CASE WHEN codelist IN ({embedded or "''"}) AND NOT known THEN 'error'
                    ELSE 'warning' END AS severity
            FROM code_checked WHERE usable
        )
        SELECT file_key, n, cv, line, path, activity_id, codelist, value, code, label, known,
            severity, count(*) OVER (PARTITION BY file_key) AS total,
            bool_or(severity = 'error' AND n > {limit}) OVER (PARTITION BY file_key) AS worse
        FROM f QUALIFY n <= {limit} OR n = {limit} + 1
        ORDER BY file_key, n
        """
    ).fetchall()
    unchecked = dict(
        con.execute(
            "SELECT file_key, string_agg(DISTINCT codelist, ', ' ORDER BY codelist) "
            "FROM code_checked WHERE NOT usable GROUP BY file_key"
        ).fetchall()
    )
    by_file: dict[str, list[tuple[Any, ...]]] = {}
    for row in failing:
        by_file.setdefault(row[0], []).append(row)
    out: list[dict[str, Any]] = []
    for file_key, version in con.execute(
        "SELECT file_key, code_version FROM code_files WHERE code_root ORDER BY file_key"
    ).fetchall():
        cv, _, note = resolved[version]
        found = by_file.get(file_key, [])
        drafts: list[tuple[Any, ...]] = []
        total = 0
        worse = False
        if codelists is None or note is not None:
            why = "no codelists are configured" if codelists is None else note
            drafts.append(
                (None, None, None, None, "codelist:not_checked", None, _NOTE + str(why), "warning")
            )
            total = 1
        else:
            for (
                _,
                n,
                _,
                line,
                path,
                activity,
                codelist,
                value,
                code,
                label,
                known,
                severity,
                count,
                worst,
            ) in found:
                total, worse = count, worst
                if n > limit:
                    continue
                text = (
                    f'{label} "{code}" is withdrawn from the IATI {codelist} codelist ({cv}); '
                    "use a current code"
                    if known
                    else f'{label} "{code}" is not in the IATI {codelist} codelist ({cv})'
                )
                drafts.append(
                    (cv, line, path, activity, f"codelist:{codelist}", value, text, severity)
                )
            names = unchecked.get(file_key)
            if names:
                total += 1
                drafts.append(
                    (
                        cv,
                        None,
                        None,
                        None,
                        "codelist:not_checked",
                        names,
                        "codes of these codelists were not checked, as the codelists are not "
                        f"loaded for version {cv}: {names}",
                        "warning",
                    )
                )
        listed = drafts[:limit]
        suppressed = total - len(listed)
        rows_out = [*listed]
        if suppressed > 0:
            rows_out.append(
                (
                    cv if note is None and codelists is not None else None,
                    None,
                    None,
                    None,
                    "codelist:more",
                    str(suppressed),
                    f"{suppressed} more codelist findings not listed (at most {limit} are listed "
                    "per check and file)",
                    "error" if worse else "warning",
                )
            )
        for order, (version_used, line, path, activity, rule, value, text, severity) in enumerate(
            rows_out
        ):
            out.append(
                {
                    "file_key": file_key,
                    "_ord": order,
                    "source_file": None,
                    "check": "codelist",
                    "schema_version": version_used,
                    "line": line,
                    "path": path,
                    "activity_id": activity,
                    "rule": rule,
                    "value": value,
                    "message": f"line {line}: {text}" if line else text,
                    "severity": severity,
                }
            )
    schema = pa.schema([("file_key", pa.string()), ("_ord", pa.int64()), *CONFORMANCE_FIELDS])
    return pa.Table.from_pylist(out, schema=schema).drop_columns(["source_file"])


# -- collecting findings --------------------------------------------------------------------


@dataclass
class _Draft:
    """A finding before its line is final (lines past 65,534 are made exact at the end)."""

    check: str
    schema_version: str | None
    line: int | None
    path: str | None
    activity_id: str | None
    rule: str
    value: str | None
    text: str  # the message without its "line N: " prefix
    severity: str
    key: tuple[tuple[str, int], ...] | None = None  # element address for _exact_lines


class _Collector:
    """The findings of one check, at most ``limit``; the rest are counted."""

    def __init__(self, check: str, limit: int) -> None:
        self.check = check
        self.limit = limit
        self.drafts: list[_Draft] = []
        self.suppressed = 0
        self.worst_suppressed = "warning"
        self.version: str | None = None

    def full(self) -> bool:
        return len(self.drafts) >= self.limit

    def count(self, severity: str) -> None:
        """One more finding that is not listed."""
        self.suppressed += 1
        if severity == "error":
            self.worst_suppressed = "error"

    def add(self, draft: _Draft) -> None:
        if self.full():
            self.count(draft.severity)
        else:
            self.drafts.append(draft)

    def more(self) -> _Draft | None:
        if not self.suppressed:
            return None
        return _Draft(
            self.check,
            self.version,
            None,
            None,
            None,
            f"{self.check}:more",
            str(self.suppressed),
            f"{self.suppressed} more {self.check} findings not listed "
            f"(at most {self.limit} are listed per check and file)",
            self.worst_suppressed,
        )


class _NotChecked(Exception):
    """The file cannot be checked at all; the message says why."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


# -- the check ------------------------------------------------------------------------------


def _has_narratives(path: Path) -> bool:
    """Whether the file holds a ``<narrative>`` element (IATI 2.01 introduced them: 1.0x
    files write text in the element itself), read as far as the first one."""
    try:
        for _event, _element in etree.iterparse(
            str(path), events=("start",), tag="narrative", **_PARSE_OPTIONS
        ):
            return True
    except (etree.XMLSyntaxError, OSError):
        return False
    return False


def check_schema(
    path: Path,
    source_file: str,
    *,
    schemas: IatiSchemas | None,
    max_findings: int = 1000,
    well_formed: bool = False,
) -> list[Finding]:
    """The XSD findings of one IATI activity file (empty: it is valid).

    At most ``max_findings`` findings; more end with one ``xsd:more`` finding counting
    them. Never raises: a file that cannot be checked gets an ``xsd:not_checked`` warning
    saying why, a file that stops being well-formed a finding at the place it breaks
    (after the findings before it). A file known to be ``well_formed`` (the extractor
    read all of it) that cannot be checked is read no further than its root.
    """
    check = _FileCheck(Path(path), source_file, schemas, max(0, max_findings), well_formed)
    try:
        check.run()
    except Exception as exc:  # any input, however broken, gets findings instead of an error
        check.not_checked(f"the check stopped with an internal error ({exc!r})")
    return check.result()


class _FileCheck:
    def __init__(
        self,
        path: Path,
        source_file: str,
        schemas: IatiSchemas | None,
        limit: int,
        well_formed: bool = False,
    ) -> None:
        self.path = path
        self.source_file = source_file
        self.schemas = schemas
        self.well_formed = well_formed
        self.xsd = _Collector("xsd", limit)
        # the root
        self.root: Any = None
        self.root_path = f"/{_ROOT}"
        self.bare = False  # the root is a lone <iati-activity>
        self.version: str | None = None
        # XSD
        self.schema: Any = None
        self.wrapper: Any = None
        self.stand_in: Any = None  # an empty activity standing for those already validated
        self.pending: list[tuple[Any, str, tuple[str, int]]] = []  # other root children
        self.root_errors: set[tuple[str, str]] = set()
        self.position = 0
        self.other_counts: dict[str, int] = {}

    # -- results ----------------------------------------------------------------------

    def result(self) -> list[Finding]:
        drafts = self.xsd.drafts
        big = {d.key for d in drafts if d.key is not None and (d.line or 0) >= _BIG_LINE}
        if big:
            exact = _exact_lines(self.path, big)
            for draft in drafts:
                if draft.key in exact:
                    draft.line = exact[draft.key]
        out = []
        for collector in (self.xsd,):
            more = collector.more()
            for draft in collector.drafts + ([more] if more else []):
                message = f"line {draft.line}: {draft.text}" if draft.line else draft.text
                out.append(
                    Finding(
                        self.source_file,
                        draft.check,
                        draft.schema_version,
                        draft.line,
                        draft.path,
                        draft.activity_id,
                        draft.rule,
                        draft.value,
                        message,
                        draft.severity,
                    )
                )
        return out

    def not_checked(self, why: str, line: int | None = None) -> None:
        self.xsd.add(_Draft("xsd", None, line, None, None, "xsd:not_checked", None, why, "warning"))

    def _xsd_note(self, text: str, value: str | None, path: str | None = None) -> None:
        line = self.root.sourceline if self.root is not None else None
        self.xsd.add(
            _Draft("xsd", self.xsd.version, line, path, None, "xsd:version", value, text, "warning")
        )

    # -- the pass ---------------------------------------------------------------------

    def run(self) -> None:
        try:
            sniff(self.path)
        except NotIatiActivities as exc:
            self.not_checked(f"the file was not checked: {exc}", exc.line)
            return
        except OSError as exc:
            self.not_checked(f"the file could not be read: {exc.strerror or exc}")
            return
        with self.path.open("rb") as handle:
            context = etree.iterparse(handle, events=("start", "end"), **_PARSE_OPTIONS)
            depth = 0
            try:
                for event, element in context:
                    if event == "start":
                        depth += 1
                        if depth == 1:
                            self._start(element)
                            if self.schema is None and self.well_formed:
                                return  # nothing more to find in the file
                        continue
                    depth -= 1
                    if depth == 1 and not self.bare:
                        self._root_child(element)
                    elif depth == 0:
                        if self.bare:
                            self._activity(element, "/" + _ACTIVITY, ((_ACTIVITY, 1),))
                        self._finish()
            except _NotChecked as exc:
                self.not_checked(str(exc), exc.line)
            except etree.XMLSyntaxError as exc:
                self._not_well_formed(exc, context)

    def _start(self, root: Any) -> None:
        """The root: refuse what is not an activity file, find the version, set up."""
        if root.getroottree().docinfo.doctype:
            raise _NotChecked(
                "the file was not checked: it declares a DTD (<!DOCTYPE ...>); IATI files "
                "have none and DTDs can hide entity-expansion attacks, so it is refused",
                1,
            )
        name = local_name(root.tag)
        namespace = root.tag[1:].split("}", 1)[0] if root.tag.startswith("{") else None
        if namespace is None and ":" in name:  # libxml2 only warns of an undeclared prefix
            raise _NotChecked(
                f"the file was not checked: it is not well-formed XML: the namespace prefix "
                f"{name.split(':', 1)[0]!r} of the root element <{name}> is not declared",
                root.sourceline,
            )
        if name == "iati-organisations" and namespace is None:
            raise _NotChecked(
                "the file was not checked: it is an IATI organisation file "
                "(<iati-organisations>), not an activity file",
                root.sourceline,
            )
        if name not in (_ROOT, _ACTIVITY) or namespace is not None:
            shown = f"<{root.prefix}:{name}>" if root.prefix else f"<{name}>"
            raise _NotChecked(
                f"the file was not checked: it is XML, but not IATI activities (the root "
                f"element is {shown}, expected <iati-activities>)",
                root.sourceline,
            )
        self.root = root
        self.bare = name == _ACTIVITY
        stated = None if self.bare else (root.get("version") or "").strip() or None
        self.version = _VERSION_ALIASES.get(stated or "", stated) or DEFAULT_VERSION
        self.inferred = False
        if stated is None and self.schemas is not None and _has_narratives(self.path):
            # no version stated, but 2.0x content: checked as the newest 2.0x version
            newest = self.schemas.resolve(NEWEST_2X)
            if newest is not None:
                self.version, self.inferred = newest, True
        self._set_up_schema(stated)
        if self.bare:
            self.root_path = ""
            self.xsd.add(
                _Draft(
                    "xsd",
                    self.xsd.version,
                    root.sourceline,
                    f"/{_ACTIVITY}",
                    None,
                    "xsd:root_element",
                    _ACTIVITY,
                    "the root element is <iati-activity>: an IATI activity file must wrap its "
                    'activities in <iati-activities version="...">; the activity was '
                    "checked as if it were",
                    "error",
                )
            )

    def _set_up_schema(self, stated: str | None) -> None:
        version = self.version or DEFAULT_VERSION
        if self.schemas is None:
            self.not_checked("not checked against the IATI XML Schema: no schemas are configured")
            return
        resolved = self.schemas.resolve(version)
        if resolved is None:
            why = (
                f"version {version!r} is not an IATI version number"
                if _version_key(version) is None
                else f"no IATI schema for version {version} or earlier is configured"
            )
            self.not_checked(f"not checked against the IATI XML Schema: {why}")
            return
        try:
            self.schema = self.schemas.schema(resolved)
        except (SchemaError, KeyError) as exc:
            self.not_checked(f"not checked against the IATI XML Schema: {exc}")
            return
        self.xsd.version = resolved
        where = f"{self.root_path}/@version" if not self.bare else None
        content = (
            "; its content is IATI 2.0x (it uses <narrative> elements, which IATI 2.01 "
            f"introduced), so it was checked as {version}, the newest 2.0x version"
        )
        if self.bare:
            self._xsd_note(
                "the file states no IATI version (it has no <iati-activities> root)"
                + (
                    content
                    if self.inferred
                    else f"; it was checked as {version}, the first IATI version"
                ),
                None,
            )
        elif stated is None and self.inferred:
            self._xsd_note(
                'the file states no IATI version (<iati-activities version="...">)' + content,
                None,
                where,
            )
        elif stated is None:
            self._xsd_note(
                f'the file states no IATI version (<iati-activities version="...">); it was '
                f"checked as {version}, the first IATI version",
                None,
                where,
            )
        elif stated != version:
            self._xsd_note(
                f'version "{stated}" is not an IATI version; it was checked as {version}',
                stated,
                where,
            )
        if _version_key(resolved) != _version_key(version):
            self._xsd_note(
                f"no IATI schema for version {version} is configured; the file was checked "
                f"against the schema of {resolved}, the nearest earlier version",
                stated,
                where,
            )
        if self.bare:
            self.wrapper = etree.Element(_ROOT, version=resolved)
        else:
            self.wrapper = etree.Element(
                self.root.tag, attrib=dict(self.root.attrib), nsmap=self.root.nsmap
            )

    def _root_child(self, element: Any) -> None:
        """An element directly under <iati-activities> has been read."""
        tag = element.tag
        if isinstance(tag, str) and tag == _ACTIVITY:
            self.position += 1
            self._activity(
                element,
                f"{self.root_path}/{_ACTIVITY}[{self.position}]",
                ((_ROOT, 1), (_ACTIVITY, self.position)),
            )
            return
        number = self.other_counts[tag] = self.other_counts.get(tag, 0) + 1
        if self.schema is None:
            self.root.remove(element)
        else:  # checked, in its place, with the next activity (or at the end)
            pointer = f"{self.root_path}/{_step_name(element)}[{number}]"
            self.pending.append((element, pointer, (tag, number)))

    def _activity(self, activity: Any, pointer: str, key: tuple[tuple[str, int], ...]) -> None:
        if self.schema is None:
            if not self.bare:
                self.root.remove(activity)
            return
        identifier = activity_identifier(activity)
        if self.bare:  # a document's root does not move; a lone activity is small
            activity = copy.deepcopy(activity)
        others = self.pending
        self.pending = []
        for element, _, _ in others:
            self.wrapper.append(element)
        self.wrapper.append(activity)
        context = _Context(activity, pointer, key, identifier, others)
        if not others:
            for located in self._errors(context):
                self._xsd_error(located, context)
        else:
            # libxml2 skips what follows an unexpected element, so the activity is checked
            # again on its own; from the first pass come the errors about the root-level
            # elements and about the activity's place among them.
            seen = set()
            for located in self._errors(context):
                if located.top is not activity or located.element is activity:
                    seen.add(located.signature())
                    self._xsd_error(located, context)
            for element, _, _ in others:
                self.wrapper.remove(element)
            context.others = []
            for located in self._errors(context):
                if located.top is activity and located.signature() not in seen:
                    self._xsd_error(located, context)
            others = []
        for element, _, _ in others:
            self.wrapper.remove(element)
        self.wrapper.remove(activity)
        if self.stand_in is None:
            self.stand_in = etree.SubElement(self.wrapper, _ACTIVITY)

    def _finish(self) -> None:
        """The root has ended: check what is left (root-level elements after the last
        activity, or a file without activities)."""
        if self.schema is None or self.bare:
            return
        if self.position and not self.pending:
            return
        others = self.pending
        self.pending = []
        for element, _, _ in others:
            self.wrapper.append(element)
        context = _Context(None, "", (), None, others)
        for located in self._errors(context):
            self._xsd_error(located, context)
        for element, _, _ in others:
            self.wrapper.remove(element)

    # -- XSD --------------------------------------------------------------------------

    def _errors(self, context: _Context) -> list[_Located]:
        """Validate the wrapper: its errors, placed in the file (dropping those about what
        is ours: the wrapper of a lone activity, the stand-in activity, repeated root errors)."""
        self.schema.validate(self.wrapper)
        located = []
        for error in self.schema.error_log:
            where = self._locate(error, context)
            if where is not None:
                located.append(where)
        return located

    def _locate(self, error: Any, context: _Context) -> _Located | None:
        steps = [s for s in (error.path or "").split("/") if s]
        if len(steps) <= 1:  # the wrapper's root stands for the file's root
            if self.bare:
                return None
            signature = (error.type_name, error.message)
            if signature in self.root_errors:
                return None
            self.root_errors.add(signature)
            return _Located(error, self.root, None, self.root_path, None)
        element = _walk(self.wrapper, steps[1:])
        if element is None:
            return None if not error.line else _Located(error, None, None, error.path, None)
        top = element
        while top.getparent() is not None and top.getparent() is not self.wrapper:
            top = top.getparent()
        if top is self.stand_in:
            return None
        if top is context.activity:
            return _Located(error, element, top, context.pointer, context.key)
        for other, pointer, key in context.others:
            if top is other:
                return _Located(error, element, top, pointer, ((_ROOT, 1), key))
        return None

    def _xsd_error(self, located: _Located, context: _Context) -> None:
        error, element, top = located.error, located.element, located.top
        severity = "warning" if error.level_name == "WARNING" else "error"
        if self.xsd.full():
            self.xsd.count(severity)
            return
        attribute = _attribute_of(error.message)
        path, key = located.pointer, None
        if element is None:
            line = error.line or None
        elif top is None:  # the root
            line = element.sourceline
        else:
            line = element.sourceline or error.line or None
            path += _inner_path(element, top)
            key = (*located.key, *_inner_key(element, top)) if located.key else None
        if attribute:
            path = f"{path}/@{attribute}"
        self.xsd.add(
            _Draft(
                "xsd",
                self.xsd.version,
                line,
                path,
                context.identifier if top is not None and top is context.activity else None,
                f"xsd:{error.type_name}",
                _xsd_value(error.message, element, attribute),
                _clean_message(error.message),
                severity,
                key,
            )
        )

    def _not_well_formed(self, exc: etree.XMLSyntaxError, context: Any) -> None:
        line, message = exc.lineno, str(exc.msg or exc)
        logged = [e for e in context.error_log if e.line > 0]
        entry = next((e for e in logged if e.line == line), logged[0] if logged else None)
        if entry is not None and (not line or message == "no element found"):
            line, message = entry.line, entry.message
        rule = f"xsd:{entry.type_name}" if entry is not None else "xsd:not_well_formed"
        done = self.position + (1 if self.bare else 0)
        if done == 1:
            after = "; the activity before it was checked, nothing after it"
        elif done:
            after = f"; the {done} activities before it were checked, nothing after it"
        else:
            after = "; nothing after it was checked"
        text = re.sub(r",?\s*line \d+, column \d+\s*(\(.*\))?$", "", message).strip()
        self.xsd.add(
            _Draft(
                "xsd",
                self.xsd.version,
                line or None,
                None,
                None,
                rule,
                None,
                f"the file is not well-formed XML here: {text}{after}",
                "error",
            )
        )


@dataclass
class _Context:
    """What one validation of the wrapper holds besides the stand-in activity."""

    activity: Any  # None when only root-level elements are checked
    pointer: str
    key: tuple[tuple[str, int], ...]
    identifier: str | None
    others: list[tuple[Any, str, tuple[str, int]]]


@dataclass
class _Located:
    """One libxml2 error and where it is: ``element`` under ``top`` (the wrapper's child
    it is in; None for the root) whose pointer and key are given."""

    error: Any
    element: Any
    top: Any
    pointer: str
    key: tuple[tuple[str, int], ...] | None

    def signature(self) -> tuple[str, str, int]:
        return (self.error.type_name, self.error.message, self.error.line)


# -- paths, keys and messages ---------------------------------------------------------------


def _step_name(element: Any) -> str:
    name = local_name(element.tag)
    return f"{element.prefix}:{name}" if element.prefix else name


def _inner_path(element: Any, top: Any) -> str:
    """XPath-like steps from ``top`` (exclusive) down to ``element``, with positions where
    an element has siblings of the same name: /transaction[2]/value."""
    steps: list[str] = []
    while element is not None and element is not top:
        parent = element.getparent()
        name = _step_name(element)
        if parent is not None:
            before = sum(1 for _ in element.itersiblings(element.tag, preceding=True))
            after = next(element.itersiblings(element.tag), None) is not None
            if before or after:
                name = f"{name}[{before + 1}]"
        steps.append(name)
        element = parent
    return "".join(f"/{step}" for step in reversed(steps))


def _inner_key(element: Any, top: Any) -> tuple[tuple[str, int], ...]:
    """(tag, position among same-tag siblings) from ``top`` (exclusive) to ``element``."""
    steps: list[tuple[str, int]] = []
    while element is not None and element is not top:
        before = sum(1 for _ in element.itersiblings(element.tag, preceding=True))
        steps.append((element.tag, before + 1))
        element = element.getparent()
    return tuple(reversed(steps))


_STEP = re.compile(r"^(?P<name>[^\[]+)(?:\[(?P<index>\d+)\])?$")


def _walk(root: Any, steps: list[str]) -> Any:
    """The element at libxml2's node path (``a/b[2]/p:c/*[3]``) under ``root``; None."""
    element = root
    for step in steps:
        match = _STEP.match(step)
        if match is None:
            return None
        name, index = match.group("name"), int(match.group("index") or 1)
        if name == "*":
            matching = [c for c in element if isinstance(c.tag, str)]
        elif ":" in name:
            prefix, local = name.split(":", 1)
            matching = [
                c
                for c in element
                if isinstance(c.tag, str) and c.prefix == prefix and local_name(c.tag) == local
            ]
        else:
            matching = [c for c in element if c.tag == name]
        if len(matching) < index:
            return None
        element = matching[index - 1]
    return element


_NAMESPACE_NOISE = re.compile(r"\{([^}]*)\}")
_ATTRIBUTE = re.compile(r"^Element '[^']*', attribute '([^']+)'|The attribute '([^']+)' is")
_VALUE = re.compile(r": '(.*)' is not (?:a valid value|facet-valid|accepted|an element)", re.S)


def _clean_name(name: str) -> str:
    return _NAMESPACE_NOISE.sub(lambda m: "xml:" if m.group(1) == _XML_NAMESPACE else "", name)


def _clean_message(message: str) -> str:
    """libxml2's message without namespace URIs in braces (xml: kept as a prefix)."""
    return _clean_name(message.strip())


def _attribute_of(message: str) -> str | None:
    match = _ATTRIBUTE.search(message)
    if match is None:
        return None
    return _clean_name(match.group(1) or match.group(2))


def _xsd_value(message: str, element: Any, attribute: str | None) -> str | None:
    if element is not None and attribute:
        found = element.get(
            attribute.replace("xml:", f"{{{_XML_NAMESPACE}}}") if "xml:" in attribute else attribute
        )
        if found is not None:
            return str(found)
    match = _VALUE.search(message)
    return match.group(1) if match else None


# -- exact lines past 65,534 ----------------------------------------------------------------


class _Found(Exception):
    pass


def _exact_lines(path: Path, keys: set[tuple[tuple[str, int], ...]]) -> dict[Any, int]:
    """The line of each element addressed by ``keys`` ((tag, position among same-tag
    siblings) from the root), read with expat, which counts lines without libxml2's 16-bit
    limit. Like libxml2, an element's line is where its start tag ends. Only files that the
    main pass accepted get here (no DTD); a file expat cannot read keeps the estimates."""
    parser = xml.parsers.expat.ParserCreate(namespace_separator="}")
    parser.SetParamEntityParsing(xml.parsers.expat.XML_PARAM_ENTITY_PARSING_NEVER)
    wanted = set(keys)
    #: The addresses some wanted element is below: any other element's subtree is only
    #: counted through (how deep the parser is in it), not addressed.
    above = {key[:size] for key in wanted for size in range(1, len(key))}
    found: dict[Any, int] = {}
    counts: list[dict[str, int]] = [{}]
    addresses: list[tuple[tuple[str, int], ...]] = [()]
    waiting: list[tuple[tuple[str, int], ...]] = []
    skipped = 0  # the depth inside a subtree with nothing wanted

    def settle(*_: object) -> None:
        if waiting:
            found[waiting.pop()] = parser.CurrentLineNumber
            parser.CharacterDataHandler = None
            if len(found) == len(wanted):
                raise _Found

    def start(name: str, _attributes: object) -> None:
        nonlocal skipped
        settle()
        tag = "{" + name if "}" in name else name
        siblings = counts[-1]
        number = siblings[tag] = siblings.get(tag, 0) + 1
        address = (*addresses[-1], (tag, number))
        if address in wanted:
            waiting.append(address)
            parser.CharacterDataHandler = settle
        if address not in above:
            skipped = 1
            parser.StartElementHandler = skip_start
            parser.EndElementHandler = skip_end
            return
        counts.append({})
        addresses.append(address)

    def end(_name: str) -> None:
        settle()
        counts.pop()
        addresses.pop()

    def skip_start(_name: str, _attributes: object) -> None:
        nonlocal skipped
        if waiting:
            settle()
        skipped += 1

    def skip_end(_name: str) -> None:
        nonlocal skipped
        if waiting:
            settle()
        skipped -= 1
        if not skipped:
            parser.StartElementHandler = start
            parser.EndElementHandler = end

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                parser.Parse(chunk, False)
            parser.Parse(b"", True)
    except (_Found, xml.parsers.expat.ExpatError, OSError, ValueError):
        pass
    return found
