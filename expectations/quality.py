"""The data-quality report: figures for the compact and for every contributor.

No Dagster and no pandas: :func:`build_quality_report` computes the content of
``quality/report.json`` (as ``docs/quality-report.md`` describes it) with SQL over
the harmonised tables as views of a DuckDB connection, each row with its
number in the table (:func:`assets.warehouse.attach_tables` with ``row_numbers``,
or :func:`assets.warehouse.register_frames`), plus the Great Expectations results
of the run and the trend of earlier runs. Only figures and the short lists the
report shows (the first example of each rule, the first problems, one entry per
input file) come back to Python, so the report holds no table in memory: DuckDB
works within the connection's ``memory_limit`` and spills to its
``temp_directory``. :func:`history_entry` is the run's compact line of
``quality/history.json``.

Every figure is computed once for the whole compact and once per contributor,
over each table's rows labelled with the contributor(s) they belong to (``_who``;
the compact is ``''``):

- IATI activities by their ``reporting_org_ref`` (publisher); the rows of the
  other IATI tables through their ``activity_id`` (a ``conformance`` finding
  through its activity in that file);
- rows of submissions, ``sources``, ``quarantine`` and findings that name no
  known activity through their ``source_file`` (the contributors whose rows that
  file holds);
- ``partner_declarations`` by their ``partner_org_ref``.

Where the report shows one row of a group as its example, it is the group's
first row in table order, rows labelled directly before rows labelled through
their file. The result is deterministic (everything sorted) and JSON-safe (only
str, int, float, bool, None, list and dict; NaN becomes None, dates ISO strings).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import duckdb
import pyarrow as pa
from babel import Locale

from assets.harmonise.schema import arrow_schema, table_schemas
from assets.harmonise.sql import SPACE, py_strip
from assets.iati.harmonise import IATI_TABLES
from assets.warehouse import ROW, duckdb_type, empty_table_sql, literal, quote
from expectations.outcomes import ExpectationOutcome, TableValidation
from expectations.schema_checks import check_foreign_keys, check_table, table_columns

REPORT_FORMAT = "cdcompact-quality/1"

#: HDX data freshness: update frequency -> (due from, overdue from, delinquent from), in days.
FREQUENCIES: dict[str, tuple[int, int, int]] = {
    "daily": (1, 2, 3),
    "weekly": (7, 14, 21),
    "fortnightly": (14, 21, 28),
    "monthly": (30, 44, 60),
    "quarterly": (90, 120, 150),
    "semiannually": (180, 210, 240),
    "annually": (365, 425, 455),
}

#: Contributor kinds, as in the report's ids (``publisher:XM-DAC-46004``).
KINDS = ("publisher", "country", "partner")
#: Validity states of a contributor (``nothing_received``: expected, but no file of its).
STATES = ("valid", "invalid", "rejected", "nothing_received")
#: The publisher ref of IATI activities that name no reporting organisation.
UNKNOWN_REF = "(unknown)"
#: Transaction types of incoming funds (incoming funds, incoming commitment, incoming pledge).
INCOMING_TYPES = ("1", "11", "13")
#: Activity statuses of current activities (pipeline, implementation); empty counts too.
CURRENT_STATUSES = ("1", "2")

#: The ``_who`` label of the whole compact.
OVERALL = ""
_WHO = "_who"
#: How a row got its contributor: 0 directly, 1 through its file, 2 the compact (every row).
_PART = "_part"
#: Tables whose rows belong to an activity (attributed through ``activity_id``).
_ACTIVITY_TABLES = tuple(table for table in IATI_TABLES if table != "activities")
#: The tables the figures read (a table the caller does not have counts as empty).
_NEEDED = (
    "activities",
    *_ACTIVITY_TABLES,
    "cd_priorities",
    "partner_declarations",
    "sources",
    "quarantine",
    "conformance",
)
_SLUG_MAX = 60
_HASH_LEN = 10
#: Temporary views and tables of the report in the caller's connection start so.
_PREFIX = "__quality_"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_NOT_SPACE = literal(f"[^{SPACE[1:]}")


# -- freshness and slugs ---------------------------------------------------------------------


def freshness_state(age_days: int | None, frequency: str) -> str:
    """HDX freshness: ``up_to_date``, ``due``, ``overdue``, ``delinquent`` or ``unknown``.

    ``unknown`` when there is no date (``age_days`` None); a date in the future is up to date.
    """
    try:
        due, overdue, delinquent = FREQUENCIES[frequency]
    except KeyError:
        raise ValueError(
            f"unknown update frequency {frequency!r} (one of {', '.join(FREQUENCIES)})"
        ) from None
    if age_days is None:
        return "unknown"
    if age_days >= delinquent:
        return "delinquent"
    if age_days >= overdue:
        return "overdue"
    if age_days >= due:
        return "due"
    return "up_to_date"


def _clean(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def contributor_slug(kind: str, ref: str) -> str:
    """A file- and URL-safe name for a contributor's page: ``publisher-xm-dac-46004``.

    Only ``[a-z0-9-]``; deterministic; unique per (kind, ref). A ref that is
    upper-case letters and digits separated by single hyphens (IATI organisation
    identifiers, ISO country codes) is kept as it is, lowercased; any other ref
    (lowercase letters, dots, slashes, spaces, unicode, more than 60 characters)
    lost information in cleaning and gets ``--`` and a short hash of (kind, ref).
    Clean slugs never contain ``--``, so they cannot meet a hashed one.
    """
    kind_clean = _clean(kind) or "contributor"
    ref_clean = _clean(ref)[:_SLUG_MAX].strip("-")
    lossless = (
        re.fullmatch(r"[a-z0-9]+", kind) is not None
        and re.fullmatch(r"[A-Z0-9]+(-[A-Z0-9]+)*", ref) is not None
        and len(ref) <= _SLUG_MAX
    )
    base = f"{kind_clean}-{ref_clean}" if ref_clean else kind_clean
    if lossless:
        return base
    digest = hashlib.sha256(f"{kind}\x00{ref}".encode()).hexdigest()[:_HASH_LEN]
    return f"{base}--{digest}"


# -- small helpers ---------------------------------------------------------------------------


def _share(numerator: float, denominator: float) -> float | None:
    return None if not denominator else numerator / denominator


def _item(numerator: int, denominator: int) -> dict[str, Any]:
    return {
        "numerator": int(numerator),
        "denominator": int(denominator),
        "share": _share(numerator, denominator),
    }


def _usd(value: Any) -> float:
    number = float(value) if value is not None and not _nan(value) else 0.0
    return round(number, 2) + 0.0  # + 0.0: never -0.0


def _nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _text(value: Any) -> str | None:
    if value is None or _nan(value):
        return None
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return str(value)


def _plain(value: Any) -> Any:
    """JSON-safe: NaN as None, dates as ISO strings, anything else unknown as text."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else float(value)
    return str(value)


def _timestamp(micros: int | None) -> dt.datetime | None:
    """A UTC time from microseconds since the epoch (DuckDB's ``epoch_us``)."""
    return None if micros is None else _EPOCH + dt.timedelta(microseconds=int(micros))


# -- SQL pieces --------------------------------------------------------------------------------


def _filled(column: str) -> str:
    """SQL: the text is there (not null, not blank)."""
    return f"coalesce(regexp_matches(CAST({column} AS VARCHAR), {_NOT_SPACE}), false)"


def _stripped_is(column: str, *values: str) -> str:
    """SQL: the text, stripped, is one of ``values`` (null: false)."""
    pattern = f"{SPACE}*(?:{'|'.join(re.escape(v) for v in values)}){SPACE}*"
    return f"coalesce(regexp_full_match(CAST({column} AS VARCHAR), {literal(pattern)}), false)"


def _number(column: str) -> str:
    """SQL: the number is there (not null, not NaN)."""
    return f"coalesce(NOT isnan({column}), false)"


def _is(column: str, *values: str) -> str:
    """SQL: the value is one of ``values`` (null: false)."""
    return f"coalesce({column} IN ({', '.join(literal(v) for v in values)}), false)"


def _publisher(alias: str) -> str:
    """SQL: the contributor id of an IATI activity's publisher."""
    ref = py_strip(f"{alias}.reporting_org_ref")
    return f"'publisher:' || coalesce(nullif({ref}, ''), {literal(UNKNOWN_REF)})"


def _ends(column: str, suffix: str) -> str:
    return f"coalesce(ends_with({column}, {literal(suffix)}), false)"


#: SQL over ``conformance``: how many findings a row stands for (``xsd:more`` and
#: ``codelist:more`` rows count those left out, their ``value``; every other row one).
_WEIGHT = (
    f"CASE WHEN {_ends('rule', ':more')} AND coalesce(isfinite(TRY_CAST(value AS DOUBLE)), false)"
    " THEN CAST(trunc(TRY_CAST(value AS DOUBLE)) AS BIGINT) ELSE 1 END"
)
#: SQL over ``conformance``: the finding says a file could not be checked.
_NOT_CHECKED = _ends("rule", ":not_checked")
#: SQL over ``conformance``: of those, the ones the compact's own setup caused (no schema or
#: codelist configured or loaded for the file's version), not the file ("the file was not
#: checked: it declares a DTD", "the file could not be read": its rejection says so).
_SETUP = f"{_NOT_CHECKED} AND NOT coalesce(starts_with(message, 'the file '), false)"


def _place_sql(source_file: str, line: str, place: str) -> str:
    """SQL of :func:`_place`."""
    named = f"coalesce({source_file} <> '', false)"
    return (
        f"CASE WHEN {named} AND {line} IS NOT NULL "
        f"THEN {source_file} || ' line ' || CAST({line} AS VARCHAR) "
        f"WHEN {named} AND coalesce({place} <> '', false) THEN {source_file} || ' ' || {place} "
        f"WHEN {named} THEN {source_file} ELSE {place} END"
    )


def _most_frequent(relation: str, key: str, value: str, where: str = "true") -> str:
    """SQL: the most frequent ``value`` per ``key`` (ties: the smallest value), as (k, v)."""
    return (
        f"SELECT k, v FROM (SELECT {key} AS k, CAST({value} AS VARCHAR) AS v, count(*) AS n "
        f"FROM {relation} AS x WHERE ({where}) AND {key} IS NOT NULL AND {value} IS NOT NULL "
        "GROUP BY ALL) QUALIFY row_number() OVER (PARTITION BY k ORDER BY n DESC, v) = 1"
    )


class _Db:
    """The report's SQL on the caller's connection: each table as a temporary view with
    its schema's columns (a table the caller does not have is empty), the contributors of
    its rows (:meth:`scoped`), and the other temporary objects, all dropped by
    :meth:`close`."""

    def __init__(self, con: duckdb.DuckDBPyConnection, tables: Collection[str]) -> None:
        self.con = con
        self.given = frozenset(tables)
        self.known = table_schemas()
        self._objects: list[tuple[str, str]] = []
        self._relations: dict[str, str] = {}
        self._scoped: dict[str, str] = {}
        #: Figures more than one section reads, computed once.
        self.cache: dict[str, Any] = {}
        #: The columns of each table the caller has (without the row number).
        self.columns = {table: table_columns(con, table) for table in sorted(self.given)}

    # -- objects and queries

    def create(self, kind: str, name: str, sql: str) -> str:
        """A temporary ``kind`` (VIEW or TABLE) of the report; its quoted name."""
        full = quote(_PREFIX + name)
        self.con.execute(f"CREATE OR REPLACE TEMP {kind} {full} AS {sql}")
        self._objects.append((kind, full))
        return full

    def register(self, name: str, rows: pa.Table) -> str:
        full = _PREFIX + name
        self.con.register(full, rows)
        self._objects.append(("ARROW", full))
        return quote(full)

    def close(self) -> None:
        for kind, name in reversed(self._objects):
            if kind == "ARROW":
                self.con.unregister(name)
            else:
                self.con.execute(f"DROP {kind} IF EXISTS {name}")
        self._objects.clear()

    def rows(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.con.execute(sql, list(parameters)).fetchall()

    def records(self, sql: str) -> list[dict[str, Any]]:
        cursor = self.con.execute(sql)
        names = [column[0] for column in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def by_who(self, sql: str) -> dict[str, dict[str, Any]]:
        """The rows of ``sql`` (its first column ``_who``) by contributor."""
        return {str(record.pop(_WHO)): record for record in self.records(sql)}

    # -- the tables

    def relation(self, table: str) -> str:
        """The table with exactly its schema's columns (those the caller's view lacks are
        null) and :data:`ROW`; an empty one when the caller has no such table."""
        if table not in self._relations:
            if table not in self.given:
                body = empty_table_sql(table, [f"CAST(NULL AS BIGINT) AS {ROW}"])
            elif table in self.known:
                have = set(self.columns[table])
                columns = [
                    quote(field.name)
                    if field.name in have
                    else f"CAST(NULL AS {duckdb_type(field.type)}) AS {quote(field.name)}"
                    for field in arrow_schema(table)
                ]
                body = f"SELECT {', '.join([*columns, ROW])} FROM {quote(table)}"
            else:
                body = f"SELECT * FROM {quote(table)}"
            self._relations[table] = self.create("VIEW", f"t_{table}", body)
        return self._relations[table]

    def has(self, table: str, column: str) -> bool:
        if table in self.known:
            return column in {field.name for field in arrow_schema(table)}
        return column in self.columns.get(table, [])

    def set_up(self) -> None:
        """The contributors of each file and the publisher of each IATI activity."""
        activities = self.relation("activities")
        declarations = self.relation("partner_declarations")
        countries = [
            f"SELECT source_file, 'country:' || {py_strip('country_code')} AS who "
            f"FROM {self.relation(table)} WHERE {_is('source', 'country_report')} "
            f"AND {_filled('country_code')}"
            for table in ("cd_priorities", "results")
        ]
        parts = [
            f"SELECT source_file, {_publisher('x')} AS who FROM {activities} AS x "
            f"WHERE {_is('x.source', 'iati')}",
            *countries,
            f"SELECT source_file, 'partner:' || {py_strip('partner_org_ref')} FROM {declarations} "
            f"WHERE {_filled('partner_org_ref')}",
            f"SELECT source_file, 'partner:' || {py_strip('reporting_org_ref')} FROM {activities} "
            f"WHERE {_is('source', 'partner_submission')} AND {_filled('reporting_org_ref')}",
        ]
        self.files = self.create(
            "TABLE",
            "files",
            "SELECT DISTINCT source_file, who FROM ("
            + " UNION ALL ".join(parts)
            + ") WHERE source_file IS NOT NULL AND who IS NOT NULL",
        )
        # The publisher of each activity identifier: its first IATI row's.
        self.owners = self.create(
            "TABLE",
            "owners",
            f"SELECT activity_id, arg_min({_publisher('x')}, x.{ROW}) AS who FROM {activities} "
            f"AS x WHERE {_is('x.source', 'iati')} AND x.activity_id IS NOT NULL "
            "GROUP BY activity_id",
        )
        # The publisher of each activity in each file (a finding belongs to its activity there).
        self.keyed = self.create(
            "TABLE",
            "keyed",
            f"SELECT DISTINCT activity_id, source_file, {_publisher('x')} AS who "
            f"FROM {activities} AS x WHERE {_is('x.source', 'iati')}",
        )
        # IATI files holding the activities of more than one publisher: their figures are
        # given per publisher, from its own activities (``parts``), never the whole file's.
        self.shared = self.create(
            "TABLE",
            "shared",
            f"SELECT source_file FROM {self.keyed} WHERE source_file IS NOT NULL "
            "GROUP BY source_file HAVING count(DISTINCT who) > 1",
        )
        # Where each activity of a shared file is (its pointer), and whose it is.
        self.places = self.create(
            "TABLE",
            "places",
            f"SELECT DISTINCT x.source_file, x.source_ref, {_publisher('x')} AS who "
            f"FROM {activities} AS x JOIN {self.shared} AS s ON s.source_file = x.source_file "
            f"WHERE {_is('x.source', 'iati')} AND x.source_ref IS NOT NULL",
        )
        # Each publisher's part of each shared file: its accepted activities.
        self.parts = self.create(
            "TABLE",
            "parts",
            f"SELECT k.source_file, k.who, count(*) AS n_accepted FROM {self.keyed} AS k "
            f"JOIN {self.shared} AS s ON s.source_file = k.source_file GROUP BY ALL",
        )

    def scoped(self, table: str, grouped: str | None = None) -> str:
        """A view of the table's rows once per contributor (``_who``, and ``_part``: 0
        labelled directly, 1 through the file) and once more for the compact (``''``, 2).
        ``grouped``: a relation of the table's rows grouped by the columns that decide whom
        they belong to (``source``, ``activity_id``, ``source_file``...), labelled instead
        (a subquery, not a view)."""
        if grouped is None and table in self._scoped:
            return self._scoped[table]
        rel = self.relation(table) if grouped is None else grouped
        # (who, part, joins and conditions) of each way a row gets its contributor
        files = f"JOIN {self.files} AS f ON x.source_file = f.source_file"
        parts: list[tuple[str, int | str, str]] = []
        if table == "activities":
            iati = _is("x.source", "iati")
            parts = [
                (_publisher("x"), 0, f"WHERE {iati}"),
                ("f.who", 1, f"{files} WHERE NOT {iati}"),
            ]
        elif table == "conformance":
            # a finding belongs to its activity in that file; the others to the file's
            match = (
                "x.activity_id IS NOT DISTINCT FROM k.activity_id "
                "AND x.source_file IS NOT DISTINCT FROM k.source_file"
            )
            parts = [
                ("k.who", 0, f"JOIN {self.keyed} AS k ON {match}"),
                (
                    "f.who",
                    1,
                    f"{files} WHERE NOT EXISTS (SELECT 1 FROM {self.keyed} AS k WHERE {match})",
                ),
            ]
        elif table in _ACTIVITY_TABLES:
            key = f"CASE WHEN {_is('x.source', 'iati')} THEN x.activity_id END"
            owner = f"{self.owners} AS o ON o.activity_id = {key}"
            parts = [
                ("o.who", 0, f"JOIN {owner}"),
                ("f.who", 1, f"LEFT JOIN {owner} {files} WHERE o.who IS NULL"),
            ]
        elif table == "quarantine":
            # a row of a shared file about one activity (its pointer starts the row's place)
            # belongs to that activity's publisher; any other row to the file's contributors
            pointer = (
                "regexp_extract(x.source_ref, "
                "'^(/iati-activities/iati-activity\\[[0-9]+\\]|/iati-activity)(/|$)', 1)"
            )
            match = f"p.source_file = x.source_file AND p.source_ref = {pointer}"
            parts = [
                ("p.who", 1, f"JOIN {self.places} AS p ON {match}"),
                (
                    "f.who",
                    1,
                    f"{files} WHERE NOT EXISTS (SELECT 1 FROM {self.places} AS p WHERE {match})",
                ),
            ]
        elif table == "partner_declarations":
            known = _filled("x.partner_org_ref")
            parts = [
                (f"'partner:' || {py_strip('x.partner_org_ref')}", 0, f"WHERE {known}"),
                ("f.who", 1, f"{files} WHERE NOT {known}"),
            ]
        elif self.has(table, "source_file"):
            parts = [("f.who", 1, files)]

        def select(who: str, part: int | str, rest: str, columns: str = "x.*") -> str:
            return f"SELECT {who} AS {_WHO}, {part} AS {_PART}, {columns} FROM {rel} AS x {rest}"

        every = select(literal(OVERALL), 2, "")
        if grouped is not None:
            return "(" + " UNION ALL ".join([*(select(*p) for p in parts), every]) + ")"
        if table in ("conformance", "quarantine"):  # matched once, read by several figures
            members = self.create(
                "TABLE",
                f"m_{table}",
                " UNION ALL ".join(select(*p, columns=f"x.{ROW}") for p in parts),
            )
            parts = [(f"m.{_WHO}", f"m.{_PART}", f"JOIN {members} AS m ON x.{ROW} = m.{ROW}")]
        body = " UNION ALL ".join([*(select(*p) for p in parts), every])
        self._scoped[table] = self.create("VIEW", f"s_{table}", body)
        return self._scoped[table]


# -- the figures -----------------------------------------------------------------------------


def _weighted(conformance: str) -> str:
    """SQL: ``conformance`` rows with ``w``, the findings each stands for, and ``nc``, the
    row says a file could not be checked."""
    return f"(SELECT *, {_WEIGHT} AS w, {_NOT_CHECKED} AS nc FROM {conformance})"


def _findings(schema: str) -> str:
    """SQL aggregates over ``conformance`` rows with their weight ``w`` and ``nc`` (the row
    says a file was not checked): findings per check and severity, ``<schema>_errors``,
    ``<schema>_warnings``, ``codelist_errors`` and ``codelist_warnings``."""
    return ", ".join(
        f"sum(CASE WHEN NOT nc AND \"check\" = '{kind}' AND severity = '{level}' THEN w "
        f"ELSE 0 END) AS {name}_{level}s"
        for name, kind in ((schema, "xsd"), ("codelist", "codelist"))
        for level in ("error", "warning")
    )


def _file_facts(db: _Db, conformance_checked: bool) -> str:
    """Per source file (its first row in ``sources``): the conformance counts, whether the
    file was checked against the IATI schema and codelists, its IATI and schema version;
    a temporary table of ``db``."""
    conformance = db.relation("conformance")
    counts = _findings("xsd")
    names = [
        f"{name}_{level}s" for name in ("xsd", "codelist") for level in ("error", "warning")
    ] + ["xsd_rows", "codelist_rows", "xsd_not_checked", "codelist_not_checked"]
    filled = ", ".join(f"coalesce(c.{name}, 0) AS {name}" for name in names)
    checked = (
        "iati AND {kind}_not_checked = 0 AND (NOT rejected OR {kind}_rows > 0) AS {kind}_checked"
    )
    versions = _most_frequent(db.relation("activities"), "source_file", "iati_version")
    schemas = _most_frequent(conformance, "source_file", "schema_version", "\"check\" = 'xsd'")
    return db.create(
        "TABLE",
        "facts",
        f"""
        WITH files AS (
            SELECT source_file, source, status FROM {db.relation("sources")}
            QUALIFY row_number() OVER (PARTITION BY source_file ORDER BY {ROW}) = 1
        ), findings AS (
            SELECT source_file, {counts},
                count(*) FILTER (WHERE "check" = 'xsd') AS xsd_rows,
                count(*) FILTER (WHERE "check" = 'codelist') AS codelist_rows,
                count(*) FILTER (WHERE rule = 'xsd:not_checked') AS xsd_not_checked,
                -- with a value it names the few codelists not loaded: the others were checked
                count(*) FILTER (WHERE rule = 'codelist:not_checked' AND NOT {_filled("value")})
                    AS codelist_not_checked
            FROM {_weighted(conformance)} WHERE source_file IS NOT NULL GROUP BY source_file
        ), counted AS (
            SELECT f.source_file, f.source, f.status, {filled},
                v.v AS iati_version, s.v AS declared_schema,
                {"true" if conformance_checked else "false"} AND {_is("f.source", "iati")} AS iati,
                {_is("f.status", "rejected")} AS rejected
            FROM files AS f
            LEFT JOIN findings AS c ON f.source_file = c.source_file
            LEFT JOIN ({versions}) AS v ON f.source_file = v.k
            LEFT JOIN ({schemas}) AS s ON f.source_file = s.k
        ), flagged AS (
            SELECT *, {checked.format(kind="xsd")}, {checked.format(kind="codelist")}
            FROM counted
        )
        SELECT *, CASE WHEN xsd_checked THEN coalesce(declared_schema, iati_version) END
            AS schema_version
        FROM flagged
        """,
    )


def _validity(
    db: _Db,
    facts: str,
    expectation_counts: Mapping[str, Mapping[str, int]],
    whos: Sequence[str],
) -> dict[str, dict[str, Any]]:
    by_status = ", ".join(
        [
            *(
                f"count(*) FILTER (WHERE s.status = '{status}') AS files_{status}"
                for status in ("ok", "partial", "rejected")
            ),
            # not downloaded again; the last good copy stood in (``sources.download``)
            "count(*) FILTER (WHERE s.download = 'revalidated') AS files_unchanged",
            "count(*) FILTER (WHERE s.download = 'kept') AS files_stale",
        ]
    )
    files = db.by_who(
        f"""
        SELECT s.{_WHO}, count(*) AS files, {by_status},
            sum(CASE WHEN p.who IS NULL THEN coalesce(s.n_records, 0) ELSE p.n_accepted END)
                AS records,
            sum(CASE WHEN p.who IS NULL THEN coalesce(s.n_accepted, 0) ELSE p.n_accepted END)
                AS records_accepted,
            sum(CASE WHEN p.who IS NULL THEN coalesce(s.n_quarantined, 0) ELSE 0 END)
                AS records_quarantined,
            count(*) FILTER (WHERE coalesce(f.xsd_checked, false)) AS schema_checked_files,
            count(*) FILTER (WHERE coalesce(f.xsd_checked, false) AND f.xsd_errors = 0)
                AS schema_valid_files
        FROM {db.scoped("sources")} AS s LEFT JOIN {facts} AS f ON s.source_file = f.source_file
        -- a publisher's part of a shared file: its own accepted activities, not the file's
        LEFT JOIN {db.parts} AS p ON p.source_file = s.source_file AND p.who = s.{_WHO}
        GROUP BY s.{_WHO}
        """
    )
    warnings = db.by_who(
        f"SELECT {_WHO}, count(*) AS warnings FROM {db.scoped('quarantine')} "
        f"WHERE severity = 'warning' GROUP BY {_WHO}"
    )
    findings = db.by_who(
        f"SELECT {_WHO}, {_findings('schema')} FROM {_weighted(db.scoped('conformance'))} "
        f"GROUP BY {_WHO}"
    )
    result: dict[str, dict[str, Any]] = {}
    for who in whos:
        counted = {**files.get(who, {}), **warnings.get(who, {}), **findings.get(who, {})}

        def n(name: str, counted: Mapping[str, Any] = counted) -> int:
            return int(counted.get(name) or 0)

        figures: dict[str, Any] = {
            "files": n("files"),
            "files_ok": n("files_ok"),
            "files_partial": n("files_partial"),
            "files_rejected": n("files_rejected"),
            "files_unchanged": n("files_unchanged"),
            "files_stale": n("files_stale"),
            "records": n("records"),
            "records_accepted": n("records_accepted"),
            "records_quarantined": n("records_quarantined"),
            "warnings": n("warnings"),
            "schema_checked_files": n("schema_checked_files"),
            "schema_valid_files": n("schema_valid_files"),
            "schema_errors": n("schema_errors"),
            "schema_warnings": n("schema_warnings"),
            "codelist_errors": n("codelist_errors"),
            "codelist_warnings": n("codelist_warnings"),
            "expectation_errors": int(expectation_counts.get(who, {}).get("error", 0)),
            "expectation_warnings": int(expectation_counts.get(who, {}).get("warning", 0)),
        }
        figures["state"] = _state(figures)
        result[who] = figures
    return result


def _state(v: Mapping[str, int]) -> str:
    """valid, invalid (something breaks an error rule, some accepted) or rejected."""
    if v["files"] and v["files_rejected"] == v["files"]:
        return "rejected"
    broken = (
        v["files_rejected"]
        or v["records_quarantined"]
        or v["schema_errors"]
        or v["codelist_errors"]
        or v["expectation_errors"]
    )
    return "invalid" if broken else "valid"


#: Completeness items counted in activities: the report names the activities that lack it.
_WITHOUT = {
    "activities_with_sector": "s.activity_id IS NULL",
    "activities_with_recipient": "c.activity_id IS NULL",
    "cd_activities_with_declaration": "a.cd AND d.activity_id IS NULL",
    "cd_activities_with_results": "a.cd AND m.activity_id IS NULL",
}


def _completeness(db: _Db, whos: Sequence[str], max_examples: int) -> dict[str, dict[str, Any]]:
    """Each item's numerator and denominator; an item counted in activities also names the
    first ``max_examples`` activities without it (``missing``, by identifier)."""
    without = ", ".join(
        f"list(DISTINCT a.activity_id ORDER BY a.activity_id) FILTER (WHERE {where} "
        f"AND a.activity_id IS NOT NULL)[1:{int(max_examples)}] AS {quote('no_' + key)}"
        for key, where in _WITHOUT.items()
    )

    def ids(table: str, where: str = "true") -> str:
        return (
            f"(SELECT DISTINCT activity_id FROM {db.relation(table)} "
            f"WHERE activity_id IS NOT NULL AND {where})"
        )

    both = f"{_number('baseline_value')} AND {_number('target_value')}"
    counts = db.by_who(
        f"""
        SELECT a.{_WHO}, count(*) AS activities,
            count(s.activity_id) AS with_sector,
            count(c.activity_id) AS with_recipient,
            count(*) FILTER (WHERE a.cd) AS cd,
            count(*) FILTER (WHERE a.cd AND d.activity_id IS NOT NULL) AS cd_declared,
            count(*) FILTER (WHERE a.cd AND m.activity_id IS NOT NULL) AS cd_results,
            {without}
        FROM (SELECT {_WHO}, activity_id, coalesce(CAST(is_cd AS BOOLEAN), false) AS cd
              FROM {db.scoped("activities")}) AS a
        LEFT JOIN {ids("activity_sectors")} AS s ON a.activity_id = s.activity_id
        LEFT JOIN (SELECT activity_id FROM {ids("activity_countries")}
            UNION SELECT activity_id FROM {ids("activity_regions")}) AS c
            ON a.activity_id = c.activity_id
        LEFT JOIN {ids("partner_declarations")} AS d ON a.activity_id = d.activity_id
        LEFT JOIN {ids("results", both)} AS m ON a.activity_id = m.activity_id
        GROUP BY a.{_WHO}
        """
    )
    results = db.by_who(
        f"SELECT {_WHO}, count(*) AS results, count(*) FILTER (WHERE {both}) AS results_both "
        f"FROM {db.scoped('results')} GROUP BY {_WHO}"
    )
    transactions = _transaction_counts(db)

    def n(name: str, who: str) -> int:
        for found in (counts, results, transactions):
            if name in found.get(who, {}):
                return int(found[who][name] or 0)
        return 0

    def named(key: str, numerator: int, denominator: int, who: str) -> dict[str, Any]:
        missing = counts.get(who, {}).get("no_" + key) or []
        return {**_item(numerator, denominator), "missing": [str(i) for i in missing]}

    return {
        who: {
            "activities_with_sector": named(
                "activities_with_sector", n("with_sector", who), n("activities", who), who
            ),
            "activities_with_recipient": named(
                "activities_with_recipient", n("with_recipient", who), n("activities", who), who
            ),
            "cd_activities_with_declaration": named(
                "cd_activities_with_declaration", n("cd_declared", who), n("cd", who), who
            ),
            "cd_activities_with_results": named(
                "cd_activities_with_results", n("cd_results", who), n("cd", who), who
            ),
            "results_with_baseline_and_target": _item(n("results_both", who), n("results", who)),
            "transactions_with_value_date": _item(
                n("with_value_date", who), n("transactions", who)
            ),
            "transactions_with_usd": _item(n("with_usd", who), n("transactions", who)),
        }
        for who in whos
    }


def _transaction_counts(db: _Db) -> dict[str, dict[str, Any]]:
    """Per contributor: transactions, with a value date, in USD; incoming funds, traced to
    the funder's activity, and their USD (Kahan sums: the order of rows does not matter)."""
    if "transactions" not in db.cache:
        usd = f"CASE WHEN {_number('value_usd')} THEN value_usd ELSE 0 END"
        incoming = _stripped_is("transaction_type", *INCOMING_TYPES)
        traced = f"{incoming} AND {_filled('provider_activity_id')}"
        counts = {
            "transactions": "count(*)",
            "with_value_date": "count(*) FILTER (WHERE value_date IS NOT NULL)",
            "with_usd": f"count(*) FILTER (WHERE {_number('value_usd')})",
            "incoming": f"count(*) FILTER (WHERE {incoming})",
            "traced": f"count(*) FILTER (WHERE {traced})",
        }
        sums = {
            "incoming_value": f"fsum(CASE WHEN {incoming} THEN {usd} ELSE 0 END)",
            "traced_value": f"fsum(CASE WHEN {traced} THEN {usd} ELSE 0 END)",
        }
        grouped = (
            "(SELECT source, activity_id, source_file, "
            + ", ".join(f"{sql} AS {name}" for name, sql in {**counts, **sums}.items())
            + f" FROM {db.relation('transactions')} GROUP BY ALL)"
        )
        totals = [f"sum({name}) AS {name}" for name in counts] + [
            f"fsum({name}) AS {name}" for name in sums
        ]
        db.cache["transactions"] = db.by_who(
            f"SELECT {_WHO}, {', '.join(totals)} FROM {db.scoped('transactions', grouped)} "
            f"GROUP BY {_WHO}"
        )
    result: dict[str, dict[str, Any]] = db.cache["transactions"]
    return result


def _latest(db: _Db, table: str, column: str) -> dict[str, dt.datetime | None]:
    found = db.rows(
        f"SELECT {_WHO}, epoch_us(max({quote(column)})) FROM {db.scoped(table)} GROUP BY {_WHO}"
    )
    return {str(who): _timestamp(micros) for who, micros in found if micros is not None}


def _timeliness(
    db: _Db,
    whos: Sequence[str],
    kinds: Mapping[str, str],
    freshness: Mapping[str, str],
    as_of: dt.date,
) -> dict[str, dict[str, Any]]:
    updated = _latest(db, "activities", "last_updated")
    received = _latest(db, "sources", "fetched_at")
    result: dict[str, dict[str, Any]] = {}
    for who in whos:
        kind = kinds.get(who)
        last_received = received.get(who)
        # Countries and partners: when their latest submission came in.
        last_updated = updated.get(who) if kind in (None, "publisher") else received.get(who)
        when = last_updated if last_updated is not None else last_received
        age = None if when is None else (as_of - when.date()).days
        frequency = freshness.get(kind) if kind else None
        result[who] = {
            "last_updated": None if last_updated is None else last_updated.isoformat(),
            "last_received": None if last_received is None else last_received.isoformat(),
            "age_days": age,
            "frequency": frequency,
            "state": freshness_state(age, frequency) if frequency else None,
        }
    return result


def _forward_budgets(
    db: _Db, whos: Sequence[str], as_of: dt.date, years: int
) -> dict[str, dict[str, Any]]:
    first_day = literal(dt.date(as_of.year, 1, 1).isoformat())
    current = (
        f"SELECT DISTINCT {_WHO}, activity_id FROM {db.scoped('activities')} "
        f"WHERE activity_id IS NOT NULL "
        f"AND (activity_status IS NULL OR {_stripped_is('activity_status', *CURRENT_STATUSES)}) "
        f"AND (end_date IS NULL OR end_date >= CAST({first_day} AS DATE))"
    )
    n_current = {
        str(who): int(n)
        for who, n in db.rows(f"SELECT {_WHO}, count(*) FROM ({current}) GROUP BY {_WHO}")
    }
    found = db.rows(
        f"""
        WITH budget AS (
            SELECT activity_id, {_stripped_is("budget_type", "2")} AS revised, value_usd,
                coalesce(period_start, period_end) AS first_day,
                coalesce(period_end, period_start) AS last_day
            FROM {db.relation("budgets")}
        ), spans AS (
            SELECT c.{_WHO}, b.activity_id, b.revised, b.value_usd, b.first_day,
                CASE WHEN b.last_day >= b.first_day THEN b.last_day ELSE b.first_day END
                    AS last_day
            FROM budget AS b JOIN ({current}) AS c ON b.activity_id = c.activity_id
            WHERE b.first_day IS NOT NULL
        ), overlap AS (
            SELECT y.year, s.{_WHO}, s.activity_id, s.revised,
                s.value_usd * (date_diff('day', greatest(s.first_day, make_date(y.year, 1, 1)),
                    least(s.last_day, make_date(y.year, 12, 31))) + 1)
                / (date_diff('day', s.first_day, s.last_day) + 1) AS part
            FROM spans AS s, range({as_of.year}, {as_of.year + years}) AS y(year)
            WHERE s.first_day <= make_date(y.year, 12, 31) AND s.last_day >= make_date(y.year, 1, 1)
        ), activities AS (
            -- where an activity has a revised budget for the year, its original ones do not count
            SELECT year, {_WHO}, CASE WHEN bool_or(revised)
                THEN fsum(CASE WHEN revised THEN coalesce(part, 0) ELSE 0 END)
                ELSE fsum(coalesce(part, 0)) END AS value
            FROM overlap GROUP BY year, {_WHO}, activity_id
        )
        SELECT year, {_WHO}, count(*), fsum(value) FROM activities GROUP BY year, {_WHO}
        """
    )
    per_year = {(int(year), str(who)): (int(n), value) for year, who, n, value in found}
    return {
        who: {
            "current_activities": n_current.get(who, 0),
            "years": [
                {
                    "year": year,
                    "activities_with_budget": per_year.get((year, who), (0, 0.0))[0],
                    "current_activities": n_current.get(who, 0),
                    "share": _share(per_year.get((year, who), (0, 0.0))[0], n_current.get(who, 0)),
                    "value_usd": _usd(per_year.get((year, who), (0, 0.0))[1]),
                }
                for year in range(as_of.year, as_of.year + years)
            ],
        }
        for who in whos
    }


def _traceability(db: _Db, whos: Sequence[str]) -> dict[str, dict[str, Any]]:
    counts = _transaction_counts(db)
    result = {}
    for who in whos:
        found = counts.get(who, {})
        incoming, traced = int(found.get("incoming") or 0), int(found.get("traced") or 0)
        incoming_value = _usd(found.get("incoming_value"))
        traced_value = _usd(found.get("traced_value"))
        result[who] = {
            "incoming_transactions": incoming,
            "traced_transactions": traced,
            "share": _share(traced, incoming),
            "incoming_value_usd": incoming_value,
            "traced_value_usd": traced_value,
            "value_share": _share(traced_value, incoming_value),
        }
    return result


def _quarantine(db: _Db, whos: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per contributor, rule and severity: the rows and the first of them as the example."""
    fields = ("source_file", "source_ref", "table", "field", "value", "message")
    found = db.records(
        f"""
        SELECT {_WHO}, coalesce(rule, '') AS rule, coalesce(severity, '') AS severity,
            count(*) AS rows, {_first(fields, [_PART, ROW])} AS first
        FROM {db.scoped("quarantine")} GROUP BY ALL
        """
    )
    places = [(row["first"]["source_file"], row["first"]["source_ref"]) for row in found]
    activities = _activity_ids(db, places)
    result: dict[str, list[dict[str, Any]]] = {who: [] for who in whos}
    for row in sorted(found, key=lambda r: (r[_WHO], r["rule"], r["severity"])):
        if row[_WHO] not in result:
            continue
        first = row["first"]
        result[row[_WHO]].append(
            {
                "rule": row["rule"],
                "severity": row["severity"],
                "rows": int(row["rows"]),
                "example": {
                    **{name: _text(first[name]) for name in fields},
                    # the accepted IATI activity the example is in, where known
                    "activity_id": activities.get((first["source_file"], first["source_ref"])),
                },
            }
        )
    return {who: {"by_rule": rules} for who, rules in result.items()}


# -- expectations ------------------------------------------------------------------------------


def _outcome_count(outcome: ExpectationOutcome) -> int:
    """Failing rows of a failed expectation (1 when GX could not evaluate it)."""
    if outcome.unexpected_count is not None:
        return int(outcome.unexpected_count)
    return len(outcome.rows) or 1


def _failed(
    validations: Mapping[str, TableValidation] | None,
) -> list[tuple[str, ExpectationOutcome]]:
    if not validations:
        return []
    failed = [
        (table, outcome)
        for table, validation in validations.items()
        for outcome in validation.outcomes
        if not outcome.success
    ]
    return sorted(failed, key=lambda item: (item[0], item[1].rule, item[1].severity))


def _expectation_rows(db: _Db, failed: Sequence[tuple[str, ExpectationOutcome]]) -> str | None:
    """A view of (table, rule, severity, _who, _row, position, outcome): every failing row
    once per contributor it belongs to (not the compact); None when no row failed."""
    parts = [
        (index, table, outcome)
        for index, (table, outcome) in enumerate(failed)
        if outcome.rows and (table in db.given or table in _NEEDED)
    ]
    if not parts:
        return None
    rows = pa.table(
        {
            "outcome": pa.array([index for index, _, o in parts for _ in o.rows], pa.int64()),
            ROW: pa.array([row for _, _, o in parts for row in o.rows], pa.int64()),
            "position": pa.array([p for _, _, o in parts for p in range(len(o.rows))], pa.int64()),
        }
    )
    failing = db.register("failing", rows)
    outcomes = db.register(
        "outcomes",
        pa.table(
            {
                "outcome": pa.array([index for index, _, _ in parts], pa.int64()),
                "table": pa.array([table for _, table, _ in parts], pa.string()),
                "rule": pa.array([o.rule for _, _, o in parts], pa.string()),
                "severity": pa.array([o.severity for _, _, o in parts], pa.string()),
            }
        ),
    )
    selects = [
        f'SELECT o."table", o.rule, o.severity, s.{_WHO}, f.{ROW}, f.position, f.outcome '
        f"FROM {failing} AS f JOIN {outcomes} AS o ON f.outcome = o.outcome "
        f"JOIN {db.scoped(table)} AS s ON s.{ROW} = f.{ROW} "
        f'WHERE o."table" = {literal(table)} AND s.{_PART} < 2'
        for table in sorted({table for _, table, _ in parts})
    ]
    return db.create("VIEW", "expectation_rows", " UNION ALL ".join(selects))


def _expectation_counts(
    db: _Db, failed: Sequence[tuple[str, ExpectationOutcome]], rows: str | None
) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {OVERALL: {}}
    for _, outcome in failed:
        overall = counts[OVERALL]
        overall[outcome.severity] = overall.get(outcome.severity, 0) + _outcome_count(outcome)
    if rows is not None:
        for who, severity, n in db.rows(
            f"SELECT {_WHO}, severity, count(*) FROM {rows} GROUP BY ALL"
        ):
            counts.setdefault(str(who), {})[str(severity)] = int(n)
    return counts


class _Rows:
    """Single rows (by row number) of the caller's tables: where a failing row comes from
    and its failing value; one pass per table reads every row asked for."""

    def __init__(
        self,
        db: _Db,
        failed: Sequence[tuple[str, ExpectationOutcome]],
        wanted: Mapping[str, Collection[int]],
    ) -> None:
        self.columns = {table: set(columns) for table, columns in db.columns.items()}
        self.values: dict[str, dict[int, dict[str, Any]]] = {}
        for table, rows in sorted(wanted.items()):
            if table not in db.given or not rows:
                continue
            read = {"source_file", "source_ref", "activity_id"}
            for name, outcome in failed:
                if name == table and ":" in outcome.rule:
                    read.update(outcome.rule.split(":", 1)[1].split(","))
            columns = sorted(read & self.columns[table])
            found = db.rows(
                f"SELECT {', '.join([ROW, *(quote(c) for c in columns)])} FROM {quote(table)} "
                f"WHERE {ROW} IN (SELECT unnest(?))",
                [sorted({int(row) for row in rows})],
            )
            self.values[table] = {
                int(row[0]): dict(zip(columns, row[1:], strict=True)) for row in found
            }

    def _get(self, table: str, row: Any) -> dict[str, Any] | None:
        if row is None:
            return None
        return self.values.get(table, {}).get(int(row))

    def place(self, table: str, row: Any) -> tuple[str | None, str | None, str | None]:
        """The row's file, place in it and activity (IATI rows only)."""
        values = self._get(table, row)
        if values is None:
            return None, None, None
        activity = _text(values.get("activity_id")) if table in IATI_TABLES else None
        return _text(values.get("source_file")), _text(values.get("source_ref")), activity

    def value(self, table: str, outcome: ExpectationOutcome, row: Any) -> str | None:
        """The failing value of ``row``: from GX's examples, else the rule's field."""
        for example in outcome.examples:
            if example.row == row:
                return example.value
        values = self._get(table, row)
        if ":" not in outcome.rule or values is None:
            return None
        fields = outcome.rule.split(":", 1)[1].split(",")
        if not all(f in self.columns[table] for f in fields):
            return None
        texts = [_text(values.get(f)) for f in fields]
        if all(v is None for v in texts):
            return None
        return "|".join(v or "" for v in texts)


def _violations(
    db: _Db, schema_checks: Mapping[str, Mapping[str, Any]] | None
) -> dict[str, dict[str, int]]:
    """Per table of ``db`` with a schema: its schema conformance violations by rule, from
    ``schema_checks`` where they hold a summary of a table of that many rows, else checked
    here (:mod:`expectations.schema_checks`)."""
    checkable = sorted(name for name in db.given if name in db.known)
    found: dict[str, dict[str, int]] = {}
    for name in checkable:
        summary = (schema_checks or {}).get(name)
        if (
            isinstance(summary, Mapping)
            and isinstance(summary.get("by_rule"), Mapping)
            and summary.get("rows") == db.rows(f"SELECT count(*) FROM {quote(name)}")[0][0]
        ):
            found[name] = {str(rule): int(n) for rule, n in summary["by_rule"].items() if n > 0}
    unchecked = [name for name in checkable if name not in found]
    if unchecked:
        foreign = check_foreign_keys(db.con, checkable)
        for name in unchecked:
            counts = check_table(db.con, name).counts + foreign[name].counts
            found[name] = {rule: int(n) for rule, n in counts.items()}
    return found


def _tables_section(
    db: _Db,
    rows: _Rows,
    validations: Mapping[str, TableValidation] | None,
    schema_checks: Mapping[str, Mapping[str, Any]] | None,
    max_examples: int,
) -> dict[str, Any]:
    violations = _violations(db, schema_checks)
    section: dict[str, Any] = {}
    for name in sorted(db.given | set(validations or {})):
        entry: dict[str, Any] = {
            "rows": db.rows(f"SELECT count(*) FROM {quote(name)}")[0][0]
            if name in db.given
            else (validations or {})[name].n_rows
        }
        if name in violations:
            counts = violations[name]
            entry["schema_conformance"] = {
                "passed": not counts,
                "violations": dict(sorted(counts.items())),
            }
        else:
            entry["schema_conformance"] = {"passed": True, "violations": {}, "checked": False}
        validation = (validations or {}).get(name)
        if validation is not None:
            failed = sorted(validation.failed(), key=lambda o: (o.rule, o.severity))
            entry["expectations"] = {
                "passed_errors": validation.passed_errors,
                "evaluated": len(validation.outcomes),
                "failed": [
                    {
                        "rule": outcome.rule,
                        "severity": outcome.severity,
                        "unexpected": _outcome_count(outcome),
                        **({"error": outcome.error} if outcome.error else {}),
                        "examples": [
                            {
                                "row": example.row,
                                "value": example.value,
                                **dict(
                                    zip(
                                        ("source_file", "source_ref"),
                                        rows.place(name, example.row)[:2],
                                        strict=True,
                                    )
                                ),
                            }
                            for example in outcome.examples[:max_examples]
                        ],
                    }
                    for outcome in failed
                ],
            }
        section[name] = entry
    return section


#: Order of problems, worst first.
_RANK = {
    ("rejected_file", "error"): 0,
    ("schema", "error"): 1,
    ("codelist", "error"): 2,
    ("expectation", "error"): 3,
    ("quarantine", "error"): 4,
    ("freshness", "delinquent"): 5,
    ("freshness", "overdue"): 6,
    ("schema", "warning"): 7,
    ("codelist", "warning"): 8,
    ("expectation", "warning"): 9,
    ("quarantine", "warning"): 10,
}
#: Messages that start with their line ("line 141: flow type ...").
_LINE_PREFIX = re.compile(r"^line (\d+):\s*")


def _problem(
    who: str,
    rank: int,
    severity: str,
    kind: str,
    rule: str | None,
    count: int,
    message: str,
    where: str | None,
) -> dict[str, Any]:
    return {
        _WHO: who,
        "_rank": rank,
        "severity": severity,
        "kind": kind,
        "rule": rule,
        "count": int(count),
        "message": message,
        "where": where,
    }


def _more(count: int, what: str) -> str:
    return f" ({count - 1:,} more {what})" if count > 1 else ""


def _place(
    source_file: str | None, line: Any = None, place: str | None = None, activity: Any = None
) -> str | None:
    """Where something is: the file and its line, else its place in the file (a pointer);
    the activity by its identifier where known, instead of its pointer."""
    line_text, activity_text = _text(line), _text(activity)
    if source_file and activity_text:
        return (f"{source_file} line {line_text}" if line_text else source_file) + (
            f", activity {activity_text}"
        )
    if source_file and line_text:
        return f"{source_file} line {line_text}"
    if source_file and place:
        return f"{source_file} {place}"
    return source_file or place


def _candidates(db: _Db, sql: str, order: str, max_examples: int) -> list[dict[str, Any]]:
    """The rows of ``sql`` (one per possible problem, with ``_who``, ``_rank``, ``n``,
    ``place`` and ``rule``) that can be among a contributor's first ``max_examples``
    problems (the final order only breaks their ties, by message), in the order of
    ``order`` where they tie."""
    return db.records(
        f"""
        SELECT * FROM ({sql})
        QUALIFY rank() OVER (PARTITION BY {_WHO}
            ORDER BY _rank, n DESC, place NULLS LAST, rule NULLS LAST) <= {int(max_examples)}
        ORDER BY {_WHO}, _rank, n DESC, place NULLS LAST, rule NULLS LAST, {order}
        """
    )


def _first(columns: Sequence[str], order: Sequence[str]) -> str:
    """SQL aggregate: ``columns`` of the group's first row by ``order`` (never null)."""
    packed = ", ".join(f"{quote(c)} := {quote(c)}" for c in columns)
    return f"arg_min(struct_pack({packed}), ({', '.join(order)}))"


def _rejected_problems(db: _Db, max_examples: int) -> list[dict[str, Any]]:
    quarantine = db.relation("quarantine")
    rank = _RANK[("rejected_file", "error")]
    ref = "CASE WHEN r.source_ref <> '/' THEN r.source_ref END"
    found = _candidates(
        db,
        f"""
        WITH rejection AS (
            SELECT source_file, {_first(["rule", "source_ref"], [ROW])} AS first
            FROM {quarantine} WHERE "table" = 'sources' AND severity = 'error'
            GROUP BY source_file
        )
        SELECT s.{_WHO}, s.{_PART}, s.{ROW}, {rank} AS _rank, 1 AS n,
            {_place_sql("s.source_file", "NULL", ref)} AS place,
            coalesce(nullif(r.rule, ''), 'rejected') AS rule, s.reason
        FROM {db.scoped("sources")} AS s
        LEFT JOIN (SELECT source_file, first.rule, first.source_ref FROM rejection) AS r
            ON s.source_file = r.source_file
        WHERE s.status = 'rejected'
        """,
        f"{_PART}, {ROW}, {_WHO}",
        max_examples,
    )
    return [
        _problem(
            row[_WHO],
            rank,
            "error",
            "rejected_file",
            row["rule"],
            1,
            f"{row['place']}: file rejected: {_text(row['reason']) or 'no reason recorded'}",
            row["place"],
        )
        for row in found
    ]


def _conformance_problems(db: _Db, max_examples: int) -> list[dict[str, Any]]:
    """One problem per file and rule, the first finding (by line) as the example."""
    severity = "coalesce(nullif(severity, ''), 'error')"
    kind = "CASE WHEN \"check\" = 'xsd' THEN 'schema' ELSE 'codelist' END"
    ranks = " ".join(
        f"WHEN {kind} = {literal(k)} AND {severity} = {literal(s)} THEN {rank}"
        for (k, s), rank in _RANK.items()
        if k in ("schema", "codelist")
    )
    first = _first(
        ["line", "path", "message", "activity_id"],
        ["line IS NULL", "coalesce(line, 0)", "path IS NULL", "coalesce(path, '')", _PART, ROW],
    )
    found = _candidates(
        db,
        f"""
        SELECT {_WHO}, source_file, "check", {kind} AS kind, {severity} AS severity, rule, n,
            first.line AS line, first.message AS message, first.activity_id AS activity_id,
            {_place_sql("source_file", "first.line", "first.path")} AS place,
            CASE {ranks} ELSE 10 END AS _rank,
            severity AS _severity
        FROM (
            SELECT {_WHO}, source_file, "check", severity, rule, sum({_WEIGHT}) AS n,
                {first} AS first
            FROM {db.scoped("conformance")}
            -- what the pipeline could not check is the compact's setup (_setup_section)
            WHERE NOT {_NOT_CHECKED}
            GROUP BY {_WHO}, source_file, "check", severity, rule
        )
        """,
        'source_file, "check", _severity, rule',
        max_examples,
    )
    problems = []
    for row in found:
        rule, where = _text(row["rule"]), row["place"]
        if _text(row["activity_id"]):
            where = _place(_text(row["source_file"]), row["line"], None, row["activity_id"])
        message = _text(row["message"]) or ""
        if row["line"] is not None:
            message = _LINE_PREFIX.sub("", message)
        prefix = f"{where}: " if where and not message.startswith(where) else ""
        more = "" if str(rule).endswith(":more") else _more(int(row["n"]), "like this in the file")
        problems.append(
            _problem(
                row[_WHO],
                row["_rank"],
                row["severity"],
                row["kind"],
                rule,
                row["n"],
                prefix + message + more,
                where,
            )
        )
    return problems


def _quarantine_problems(db: _Db, max_examples: int) -> list[dict[str, Any]]:
    """One problem per file, rule and severity (file rejections are problems of their own)."""
    severity = "coalesce(nullif(severity, ''), 'error')"
    rejected = f"SELECT source_file FROM {db.relation('sources')} WHERE status = 'rejected'"
    warning, error = _RANK[("quarantine", "warning")], _RANK[("quarantine", "error")]
    found = _candidates(
        db,
        f"""
        SELECT {_WHO}, source_file, {severity} AS severity, rule, n, first.message AS message,
            {_place_sql("source_file", "NULL", "first.source_ref")} AS place,
            first.source_ref AS source_ref,
            CASE WHEN {severity} = 'warning' THEN {warning} ELSE {error} END AS _rank,
            first.{_PART} AS _first_part, first.{ROW} AS _first_row
        FROM (
            SELECT {_WHO}, source_file, severity, rule, count(*) AS n,
                {_first(["message", "source_ref", _PART, ROW], [_PART, ROW])} AS first
            FROM {db.scoped("quarantine")}
            WHERE NOT coalesce("table" = 'sources' AND source_file IN ({rejected}), false)
            GROUP BY {_WHO}, source_file, severity, rule
        )
        """,
        f"_first_part, _first_row, {_WHO}",
        max_examples,
    )
    activities = _activity_ids(db, [(row["source_file"], row["source_ref"]) for row in found])
    problems = []
    for row in found:
        where = row["place"]
        message = _text(row["message"]) or _text(row["rule"]) or ""
        line = _LINE_PREFIX.match(message)
        activity = activities.get((row["source_file"], row["source_ref"]))
        if activity:  # "f.xml, activity XM-1" (with its line, when the message has it)
            where = _place(row["source_file"], line.group(1) if line else None, None, activity)
            message = message[line.end() :] if line else message
            message = f"{where}: {message}"
        elif line and row["source_file"] is not None:  # "line 12: ..." -> "f.xml line 12: ..."
            message = f"{row['source_file']} line {line.group(1)}: {message[line.end() :]}"
        else:
            message = f"{where}: {message}"
        problems.append(
            _problem(
                row[_WHO],
                row["_rank"],
                row["severity"],
                "quarantine",
                _text(row["rule"]),
                row["n"],
                message + _more(int(row["n"]), "rows like this"),
                where,
            )
        )
    return problems


#: The activity's own pointer at the start of a place in an IATI file.
_ACTIVITY_POINTER = re.compile(r"^(/iati-activities/iati-activity\[[0-9]+\]|/iati-activity)(?=/|$)")


def _activity_ids(db: _Db, places: Sequence[tuple[Any, Any]]) -> dict[tuple[Any, Any], str]:
    """The identifier of the accepted IATI activity each (file, place) is in, where known."""
    pointers = {
        (source_file, place): f"{source_file}\x00{found.group(1)}"
        for source_file, place in places
        if source_file is not None
        and place is not None
        and (found := _ACTIVITY_POINTER.match(str(place)))
    }
    if not pointers:
        return {}
    activities = db.relation("activities")
    known = dict(
        db.rows(
            f"SELECT source_file || chr(0) || source_ref, min(activity_id) FROM {activities} "
            f"WHERE {_is('source', 'iati')} AND activity_id IS NOT NULL "
            "AND list_contains(?, source_file || chr(0) || source_ref) GROUP BY ALL",
            [sorted(set(pointers.values()))],
        )
    )
    return {key: str(known[pointer]) for key, pointer in pointers.items() if pointer in known}


def _expectation_problems(
    db: _Db,
    rows: _Rows,
    failed: Sequence[tuple[str, ExpectationOutcome]],
    first: Sequence[tuple[str, str, str, str, int, int]],
) -> list[dict[str, Any]]:
    """Per table and rule: overall, and per contributor with its first failing row."""
    found = [
        _expectation_problem(
            rows,
            OVERALL,
            table,
            outcome,
            _outcome_count(outcome),
            outcome.rows[0] if outcome.rows else None,
        )
        for table, outcome in failed
    ]
    by_rule = {(table, o.rule, o.severity): o for table, o in failed}
    for who, table, rule, severity, n, row in first:
        outcome = by_rule[(table, rule, severity)]
        found.append(_expectation_problem(rows, who, table, outcome, n, row))
    return found


def _first_failing_rows(
    db: _Db, expectation_rows: str | None
) -> list[tuple[str, str, str, str, int, int]]:
    """(who, table, rule, severity, failing rows, first failing row) per contributor."""
    if expectation_rows is None:
        return []
    keys = f'{_WHO}, "table", rule, severity'
    return [
        (str(who), str(table), str(rule), str(severity), int(n), int(row))
        for who, table, rule, severity, n, row in db.rows(
            f"""
            SELECT {keys}, count(*), arg_min({ROW}, (position, outcome))
            FROM {expectation_rows} GROUP BY {keys} ORDER BY {keys}
            """
        )
    ]


def _expectation_problem(
    rows: _Rows,
    who: str,
    table: str,
    outcome: ExpectationOutcome,
    count: int,
    row: Any,
) -> dict[str, Any]:
    severity = "warning" if outcome.severity == "warning" else "error"
    source_file, source_ref, activity = rows.place(table, row)
    where = _place(source_file, None, source_ref, activity) or (
        f"{table} row {row}" if row is not None else table
    )
    if outcome.error:
        message = f"{table}: the expectation {outcome.rule} could not be evaluated: {outcome.error}"
    else:
        value = rows.value(table, outcome, row) if row is not None else None
        example = f"; first at {where}" + (f" (value {value!r})" if value is not None else "")
        message = f"{table}: {int(count):,} rows fail {outcome.rule}" + (
            example if row is not None else ""
        )
    return _problem(
        who,
        _RANK[("expectation", severity)],
        outcome.severity,
        "expectation",
        outcome.rule,
        count,
        message,
        where,
    )


def _freshness_problems(
    timeliness: Mapping[str, Mapping[str, Any]],
    names: Mapping[str, str],
    whos: Sequence[str],
    as_of: dt.date,
) -> list[dict[str, Any]]:
    found = []
    for who in whos:
        state = timeliness[who]["state"]
        if state not in ("overdue", "delinquent"):
            continue
        figures = timeliness[who]
        where = f"last updated {figures['last_updated'] or figures['last_received']}"
        message = (
            f"{names.get(who, who)}: {state}: last updated {figures['age_days']} days "
            f"before {as_of.isoformat()}, expected {figures['frequency']}"
        )
        for scope in (who, OVERALL):
            found.append(
                _problem(
                    scope,
                    _RANK[("freshness", state)],
                    "warning",
                    "freshness",
                    state,
                    1,
                    message,
                    where,
                )
            )
    return found


def _first_problems(
    found: Sequence[dict[str, Any]], whos: Sequence[str], max_examples: int
) -> dict[str, list[dict[str, Any]]]:
    """Each contributor's first ``max_examples`` problems: worst first, then the most rows,
    then by place, rule and message (missing ones last)."""

    def order(problem: Mapping[str, Any]) -> tuple[Any, ...]:
        return (
            problem[_WHO],
            problem["_rank"],
            -problem["count"],
            *(
                (problem[name] is None, problem[name] or "")
                for name in ("where", "rule", "message")
            ),
        )

    result: dict[str, list[dict[str, Any]]] = {who: [] for who in whos}
    for problem in sorted(found, key=order):
        who = problem[_WHO]
        if who in result and len(result[who]) < max_examples:
            result[who].append({k: v for k, v in problem.items() if k not in (_WHO, "_rank")})
    return result


# -- the compact's setup ----------------------------------------------------------------------


def is_setup_finding(finding: Mapping[str, Any]) -> bool:
    """A finding (a ``conformance`` row) that the compact's own setup caused (:data:`_SETUP`)."""
    rule, message = _text(finding.get("rule")) or "", _text(finding.get("message")) or ""
    return rule.endswith(":not_checked") and not message.startswith("the file ")


def _setup_section(db: _Db, max_examples: int) -> list[dict[str, Any]]:
    """What the compact's own setup left unchecked (:data:`_SETUP`), once per rule and
    message, with the number of files and the first ``max_examples`` of them: for the
    secretariat and the operators, never a contributor's problem."""
    return [
        {
            "rule": str(rule),
            "message": str(message),
            "value": _text(value),
            "files": int(n),
            "examples": [str(name) for name in examples],
        }
        for rule, message, value, n, examples in db.rows(
            f"""
            SELECT rule, coalesce(message, rule), any_value(value),
                count(DISTINCT source_file),
                list(DISTINCT source_file ORDER BY source_file)[1:{int(max_examples)}]
            FROM {db.relation("conformance")}
            WHERE {_SETUP} AND source_file IS NOT NULL
            GROUP BY ALL ORDER BY rule, 2
            """
        )
    ]


# -- files -------------------------------------------------------------------------------------


def _files_section(db: _Db, facts: str, max_examples: int) -> list[dict[str, Any]]:
    contributors: dict[str, list[str]] = {}
    for source_file, who in db.rows(f"SELECT source_file, who FROM {db.files} ORDER BY ALL"):
        contributors.setdefault(str(source_file), []).append(str(who))
    by_rule: dict[str, list[dict[str, Any]]] = {}
    for source_file, severity, rule, n in db.rows(
        f"SELECT source_file, severity, rule, count(*) FROM {db.relation('quarantine')} "
        "WHERE source_file IS NOT NULL AND severity IS NOT NULL AND rule IS NOT NULL "
        "GROUP BY ALL ORDER BY ALL"
    ):
        by_rule.setdefault(str(source_file), []).append(
            {"severity": severity, "rule": rule, "rows": int(n)}
        )
    fields = ["check", "line", "path", "activity_id", "rule", "value", "message", "severity"]
    order = [
        "severity IS DISTINCT FROM 'error'",
        *(
            f"{c} IS NULL, coalesce({c}, {d})"
            for c, d in (("line", 0), ("path", "''"), ("rule", "''"))
        ),
        ROW,
    ]
    findings: dict[str, list[dict[str, Any]]] = {}
    if max_examples > 0:  # errors first, then by line
        for source_file, first in db.rows(
            f"SELECT source_file, {_first(fields, order)[:-1]}, {int(max_examples)}) "
            f"FROM {db.relation('conformance')} WHERE source_file IS NOT NULL GROUP BY ALL"
        ):
            findings[str(source_file)] = [{f: _plain(row[f]) for f in fields} for row in first]
    facts_by_file = {
        str(row["source_file"]): row
        for row in db.records(f"SELECT * FROM {facts} WHERE source_file IS NOT NULL")
    }
    parts = _file_parts(db, fields, order, max_examples)
    result = []
    for row in db.records(
        "SELECT source_file, source, status, reason, n_records, n_accepted, n_quarantined "
        f"FROM {db.relation('sources')} ORDER BY source_file NULLS LAST, {ROW}"
    ):
        name = str(row["source_file"])
        fact = facts_by_file.get(name)
        result.append(
            {
                "source_file": name,
                "source": _text(row["source"]),
                "status": _text(row["status"]),
                "reason": _text(row["reason"]),
                "contributors": contributors.get(name, []),
                "n_records": int(row["n_records"] or 0),
                "n_accepted": int(row["n_accepted"] or 0),
                "n_quarantined": int(row["n_quarantined"] or 0),
                "iati_version": _text(fact["iati_version"]) if fact else None,
                "schema": {
                    "checked": bool(fact["xsd_checked"]) if fact else False,
                    "schema_version": _text(fact["schema_version"]) if fact else None,
                    "errors": int(fact["xsd_errors"]) if fact else 0,
                    "warnings": int(fact["xsd_warnings"]) if fact else 0,
                },
                "codelists": {
                    "checked": bool(fact["codelist_checked"]) if fact else False,
                    "errors": int(fact["codelist_errors"]) if fact else 0,
                    "warnings": int(fact["codelist_warnings"]) if fact else 0,
                },
                "quarantine": by_rule.get(name, []),
                "findings": findings.get(name, []),
                **({"parts": parts[name]} if name in parts else {}),
            }
        )
    return result


def _file_parts(
    db: _Db, fields: Sequence[str], order: Sequence[str], max_examples: int
) -> dict[str, list[dict[str, Any]]]:
    """Per IATI file holding several publishers' activities: each publisher's part, from
    its own activities (accepted ones, the quarantine rows and findings about them) and
    what is about the file as a whole (found in every part)."""
    rules: dict[tuple[str, str], list[dict[str, Any]]] = {}
    scoped = db.scoped("quarantine")
    for source_file, who, severity, rule, n in db.rows(
        f"SELECT q.source_file, q.{_WHO}, q.severity, q.rule, count(*) FROM {scoped} AS q "
        f"JOIN {db.parts} AS p ON p.source_file = q.source_file AND p.who = q.{_WHO} "
        "WHERE q.severity IS NOT NULL AND q.rule IS NOT NULL GROUP BY ALL ORDER BY ALL"
    ):
        rules.setdefault((str(source_file), str(who)), []).append(
            {"severity": severity, "rule": rule, "rows": int(n)}
        )
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    if max_examples > 0:
        scoped = db.scoped("conformance")
        for source_file, who, first in db.rows(
            f"SELECT c.source_file, c.{_WHO}, {_first(fields, order)[:-1]}, "
            f"{int(max_examples)}) FROM {scoped} AS c "
            f"JOIN {db.parts} AS p ON p.source_file = c.source_file AND p.who = c.{_WHO} "
            "GROUP BY ALL"
        ):
            found[(str(source_file), str(who))] = [
                {f: _plain(row[f]) for f in fields} for row in first
            ]
    checked = db.scoped("conformance")
    counts = {
        (str(row.pop("source_file")), str(row.pop(_WHO))): row
        for row in db.records(
            f"SELECT c.source_file, c.{_WHO}, {_findings('xsd')} FROM {_weighted(checked)} AS c "
            f"JOIN {db.parts} AS p ON p.source_file = c.source_file AND p.who = c.{_WHO} "
            "GROUP BY ALL"
        )
    }
    parts: dict[str, list[dict[str, Any]]] = {}
    for source_file, who, accepted in db.rows(
        f"SELECT source_file, who, n_accepted FROM {db.parts} ORDER BY ALL"
    ):
        key = (str(source_file), str(who))
        count = counts.get(key, {})
        parts.setdefault(str(source_file), []).append(
            {
                "contributor": str(who),
                "n_accepted": int(accepted),
                "schema": {
                    "errors": int(count.get("xsd_errors") or 0),
                    "warnings": int(count.get("xsd_warnings") or 0),
                },
                "codelists": {
                    "errors": int(count.get("codelist_errors") or 0),
                    "warnings": int(count.get("codelist_warnings") or 0),
                },
                "quarantine": rules.get(key, []),
                "findings": found.get(key, []),
            }
        )
    return parts


# -- the report --------------------------------------------------------------------------------


def build_quality_report(
    con: duckdb.DuckDBPyConnection,
    tables: Collection[str],
    *,
    validations: Mapping[str, TableValidation] | None,
    as_of: dt.date,
    generated_at: dt.datetime,
    freshness: Mapping[str, str],
    forward_years: int = 3,
    history: Sequence[Mapping[str, Any]] = (),
    history_runs: int = 400,
    release: str | None = None,
    run_id: str | None = None,
    max_examples: int = 20,
    schema_checks: Mapping[str, Mapping[str, Any]] | None = None,
    expected: Collection[str] = (),
    contacts: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    """The content of ``quality/report.json`` (docs/quality-report.md) for the ``tables``
    of ``con``: views with each row's number (:data:`assets.warehouse.ROW`), as
    :func:`assets.warehouse.attach_tables` with ``row_numbers`` gives them. A table the
    report reads that is not among ``tables`` counts as empty; without ``conformance`` no
    file was checked against the IATI schema and codelists. ``schema_checks``: what the
    run's schema checks found in these tables (per table ``rows`` and ``by_rule``, as the
    combining step saves them), so the report does not check them again; a table without
    one is checked here. ``expected``: the contributors the compact expects data from
    (``publisher:<org ref>``, ``country:<ISO2>``), in the report even when they sent
    nothing (state ``nothing_received``); ``contacts``: whom to write to, by country code
    or organisation identifier (``{"name", "email"}``). The connection is left as it was
    (the report's temporary views and tables are dropped)."""
    for who in expected:
        if who.split(":", 1)[0] not in KINDS or not who.split(":", 1)[-1]:
            raise ValueError(f"expected contributor {who!r}: not <kind>:<identifier>")
    for kind, frequency in freshness.items():
        if frequency not in FREQUENCIES:
            raise ValueError(f"quality.freshness.{kind}: unknown frequency {frequency!r}")
    if generated_at.tzinfo is None:
        raise ValueError("generated_at must be timezone-aware")
    db = _Db(con, tables)
    try:
        db.set_up()
        report = _report(
            db,
            validations=validations,
            as_of=as_of,
            freshness=freshness,
            forward_years=forward_years,
            max_examples=max_examples,
            schema_checks=schema_checks,
            expected=expected,
            contacts=contacts or {},
        )
    finally:
        db.close()
    report = _plain(
        {
            "report_format": REPORT_FORMAT,
            "generated_at": generated_at.astimezone(dt.UTC).isoformat(),
            "as_of": as_of.isoformat(),
            "release": release,
            "run_id": run_id,
            "settings": {
                "freshness": dict(sorted(freshness.items())),
                "forward_years": forward_years,
            },
            **report,
        }
    )
    entry = history_entry(report)
    earlier = [_plain(dict(item)) for item in history]
    trend = [*earlier, entry]
    report["trend"] = trend[-history_runs:] if history_runs > 0 else []
    return report


def _report(
    db: _Db,
    *,
    validations: Mapping[str, TableValidation] | None,
    as_of: dt.date,
    freshness: Mapping[str, str],
    forward_years: int,
    max_examples: int,
    schema_checks: Mapping[str, Mapping[str, Any]] | None,
    expected: Collection[str],
    contacts: Mapping[str, Mapping[str, str]],
) -> dict[str, Any]:
    """The figures, problems, files and tables of the report (in the report's order)."""
    activities = db.relation("activities")
    # Contributors: everyone some row belongs to.
    ids = {
        str(who)
        for (who,) in db.rows(
            f"SELECT who FROM {db.files} "
            f"UNION SELECT {_publisher('x')} FROM {activities} AS x "
            f"WHERE {_is('x.source', 'iati')} "
            f"UNION SELECT 'partner:' || {py_strip('partner_org_ref')} "
            f"FROM {db.relation('partner_declarations')} WHERE {_filled('partner_org_ref')}"
        )
    }
    ids.discard(OVERALL)
    ids.update(expected)  # whoever sent nothing is a contributor too: the one to chase
    contributors = sorted(
        (who.split(":", 1)[0], who.split(":", 1)[1], who) for who in ids if ":" in who
    )
    whos = [OVERALL, *(who for _, _, who in contributors)]
    kinds = {who: kind for kind, _, who in contributors}
    publisher_names = dict(
        db.rows(
            _most_frequent(
                activities, _publisher("x"), "x.reporting_org_name", _is("x.source", "iati")
            )
        )
    )
    # a release's organisations table (publish.names) names the partners; the run's own
    # report, made before there is one, shows their identifiers
    partner_names = (
        dict(
            db.rows(
                f"SELECT org_ref, name FROM {db.relation('organisations')} WHERE name IS NOT NULL"
            )
        )
        if "organisations" in db.given
        else {}
    )
    # a country by the name of the release's countries table (the IATI codelist), else by
    # CLDR's English name of the territory (Babel), else by its code
    country_names = (
        dict(
            db.rows(
                f"SELECT code, name_en FROM {db.relation('countries')} WHERE name_en IS NOT NULL"
            )
        )
        if "countries" in db.given
        else {}
    )
    territories = Locale("en").territories
    names = {
        who: (publisher_names.get(who) or ref)
        if kind == "publisher"
        else (partner_names.get(ref) or ref)
        if kind == "partner"
        else (country_names.get(ref) or territories.get(ref) or ref)
        if kind == "country"
        else ref
        for kind, ref, who in contributors
    }

    facts = _file_facts(db, "conformance" in db.given)
    failed = _failed(validations)
    expectation_rows = _expectation_rows(db, failed)
    expectation_counts = _expectation_counts(db, failed, expectation_rows)
    first_rows = _first_failing_rows(db, expectation_rows)
    wanted: dict[str, set[int]] = {}
    for table, outcome in failed:
        if outcome.rows:
            wanted.setdefault(table, set()).add(outcome.rows[0])
        wanted.setdefault(table, set()).update(
            e.row for e in outcome.examples[:max_examples] if e.row is not None
        )
    for _, table, _, _, _, row in first_rows:
        wanted.setdefault(table, set()).add(row)
    rows = _Rows(db, failed, wanted)

    validity = _validity(db, facts, expectation_counts, whos)
    for who in expected:
        if not validity[who]["files"] and not validity[who]["records"]:
            validity[who]["state"] = "nothing_received"
    completeness = _completeness(db, whos, max_examples)
    timeliness = _timeliness(db, whos, kinds, freshness, as_of)
    forward = _forward_budgets(db, whos, as_of, forward_years)
    traceability = _traceability(db, whos)
    quarantine = _quarantine(db, whos)
    problems = _first_problems(
        [
            *_rejected_problems(db, max_examples),
            *_conformance_problems(db, max_examples),
            *_quarantine_problems(db, max_examples),
            *_expectation_problems(db, rows, failed, first_rows),
            *_freshness_problems(timeliness, names, whos, as_of),
        ],
        whos,
        max_examples,
    )
    states = [timeliness[who]["state"] for who in whos if who != OVERALL]
    timeliness[OVERALL]["contributors_by_state"] = {
        state: states.count(state)
        for state in ("up_to_date", "due", "overdue", "delinquent", "unknown")
    }

    def figures(who: str) -> dict[str, Any]:
        return {
            "validity": validity[who],
            "completeness": completeness[who],
            "timeliness": timeliness[who],
            "forward_budgets": forward[who],
            "traceability": traceability[who],
            "quarantine": quarantine[who],
        }

    contributor_files: dict[str, list[str]] = {}
    for source_file, who in db.rows(f"SELECT source_file, who FROM {db.files} ORDER BY ALL"):
        contributor_files.setdefault(str(who), []).append(str(source_file))
    return {
        "overall": figures(OVERALL),
        "problems": problems[OVERALL],
        "contributors": [
            {
                "id": who,
                "kind": kind,
                "ref": ref,
                "name": names[who],
                "slug": contributor_slug(kind, ref),
                "expected": who in expected,
                "contact": dict(contacts[ref]) if ref in contacts else None,
                "files": contributor_files.get(who, []),
                "figures": figures(who),
                "problems": problems[who],
            }
            for kind, ref, who in contributors
        ],
        "setup": _setup_section(db, max_examples),
        "files": _files_section(db, facts, max_examples),
        "tables": _tables_section(db, rows, validations, schema_checks, max_examples),
    }


def history_entry(report: Mapping[str, Any]) -> dict[str, Any]:
    """The run's line of ``history.json``: headline figures overall and per contributor."""
    overall = report["overall"]
    validity = overall["validity"]
    states = [c["figures"]["validity"]["state"] for c in report["contributors"]]
    years = overall["forward_budgets"]["years"]
    return _plain(
        {
            "generated_at": report["generated_at"],
            "as_of": report["as_of"],
            "release": report.get("release"),
            "overall": {
                "state_counts": {s: states.count(s) for s in STATES},
                "files": validity["files"],
                "files_rejected": validity["files_rejected"],
                "records": validity["records"],
                "records_quarantined": validity["records_quarantined"],
                "schema_errors": validity["schema_errors"],
                "codelist_errors": validity["codelist_errors"],
                "expectation_errors": validity["expectation_errors"],
                "completeness": {
                    item: value["share"] for item, value in overall["completeness"].items()
                },
                "traceability": overall["traceability"]["share"],
                "forward_budgets": years[0]["share"] if years else None,
            },
            "contributors": {
                c["id"]: {
                    "state": c["figures"]["validity"]["state"],
                    "freshness": c["figures"]["timeliness"]["state"],
                    "records": c["figures"]["validity"]["records"],
                    "records_quarantined": c["figures"]["validity"]["records_quarantined"],
                    "schema_errors": c["figures"]["validity"]["schema_errors"],
                    "codelist_errors": c["figures"]["validity"]["codelist_errors"],
                    "expectation_errors": c["figures"]["validity"]["expectation_errors"],
                }
                for c in report["contributors"]
            },
        }
    )
