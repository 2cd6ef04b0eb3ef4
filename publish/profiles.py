"""Country and development-partner profiles: the figures behind the profile pages.

No Dagster, no pandas frames of whole tables: :func:`build_profiles` reads the release's
tables as views of a DuckDB connection, computes every figure in SQL (money, totals,
priorities, metrics, hotspots, pairs, sources, declarations) and brings into Python only
what the pages show: per country and per partner aggregates and bounded lists (the
results of country reports, alignment metrics, overlapping pairs). It gives one plain,
JSON-ready dict per country and per partner (only str, int, float, bool, None, list and
dict; never NaN), which :mod:`publish.profile_html` renders, and the CSV extracts of the
rows every figure comes from, so that a reader can go from a number on a page to the rows
of the data package behind it.

The contract (keys of a country profile; money rows are ``{key, label, year, usd}``):

- ``kind`` ("country"), ``code``, ``name``, ``slug`` (file stem), ``groups`` (peer-group
  kind -> group), ``years``, ``totals`` (``disbursement_usd``, ``cd_disbursement_usd``,
  ``cd_share``, ``cd_activities``, ``partners``);
- ``money``: ``by_partner``, ``by_modality``, ``by_sector`` (CD money per key and year);
- ``priorities``: ``priority_id``, ``title``, ``sector_code``, ``start_year``,
  ``end_year``, ``usd``, ``n_activities``, ``funded``, ``activities`` (``activity_id``,
  ``title``, ``partner``, ``partner_code``, ``basis``);
- ``results``: per indicator ``baseline_*``, ``target_*``, ``actuals`` (``period_end``,
  ``value``), ``latest_actual``, ``progress`` ((latest - baseline) / (target -
  baseline)), ``reference``;
- ``metrics``: the alignment metrics of all partners together, each country's latest
  year, with ``numerator``, ``denominator``, ``value``, ``n_activities``,
  ``n_activities_eligible``, ``coverage``;
- ``unmeasured``: where the country has metrics, the alignment metrics without a row
  (nothing to measure), each ``metric`` with its ``reason`` (``no_priorities``,
  ``no_priority_years``, ``no_incoming_funds``, ``no_known_value``);
- ``peers``: per metric ``value``, ``lower_is_better`` and ``comparisons`` (per group:
  ``group_kind``, ``group``, ``n``, ``rank`` (ties share the best), ``tied`` (how many
  share it, the page's own included), ``quantiles`` ``min``/``q25``/``median``/
  ``q75``/``max``, ``members`` with ``is_self``);
- ``shared_indicators``: ``reference``, ``title``, ``n``, ``rank``, ``tied``, ``quantiles``,
  ``members`` (``progress``, ``latest_actual``, ``target_value``, ``is_self``);
- ``hotspots`` (duplication metrics by sector, of the latest year with CD disbursements,
  ``hotspot_year``), ``pairs`` (overlapping
  effort: ``score``, ``a`` and ``b`` activities), ``quality`` (the sources behind the
  page), ``rows`` (table -> release-relative path of its extract).

A partner profile has ``kind`` ("partner"), ``code``, ``name``, ``slug``, ``years``,
``totals`` (``disbursement_usd``, ``cd_disbursement_usd``, ``cd_activities``,
``countries``, and ``cd_to_countries_usd``, ``cd_regional_usd`` and ``cd_unspecified_usd``,
which add up to ``cd_disbursement_usd``), ``money`` (``by_country``, ``by_sector``,
``by_modality``), ``alignment`` (its own metrics per country), ``overlaps`` (``own`` and ``other``
activity of each pair), ``declarations`` (``n_cd_activities``, ``n_declared``,
``share``, ``fields`` with ``known``/``total``/``share``), ``quality`` and ``rows``.

Money follows metrics.md and the release's headline figures
(:func:`publish.headline.disbursements`): CD disbursements (transaction types 3 and 4
that count toward totals, in USD), by the year of the transaction, to the country or
region the transaction names, else split across the activity's countries and regions by
their ``share`` (what no share covers, an activity with no recipient, is unspecified),
and across its DAC sectors by their ``share``. A partner is the activity's reporting
organisation; its money is all of it (to countries, regional and global, unspecified),
and its ``by_country`` money the part that went to countries.

Peer comparison never combines metrics into a score: for each alignment metric, a
country is ranked among all compact countries and among the peers of each group it
belongs to (``profiles.peer_groups`` in the configuration), with the quantiles of the
group beside the rank.

Row extracts: SQL selects which rows of each table belong to each page (their row
numbers), and one query per table writes each of those rows once as its line of the
release's CSV (the cells and quoting of :func:`publish.files.column_cells` and Python's
``csv`` module, as SQL) in the release's canonical row order (:mod:`publish.files`: the
primary key, every column when the key has ties, then the row's position), with the list
of pages it belongs to. The lines are streamed in batches and appended to one CSV file
per page and table, so every extract holds exactly the release's lines of its rows and no
table's CSV is ever held whole in memory.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import math
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from duckdb.sqltypes import DOUBLE, VARCHAR

from assets.harmonise.schema import arrow_schema, field_types, table_schema
from assets.metrics.alignment import METRICS
from assets.warehouse import ROW, duckdb_type, literal, ordered_parts, quote, temp_table
from publish.files import FORMULA_START
from publish.headline import recipient_split_sql

#: Alignment metrics where a lower value is the better one (ranks count from the lowest).
LOWER_IS_BETTER = frozenset({"parallel_piu_count"})
#: Columns of ``partner_declarations`` that are not declarations: the key, the list of
#: whom an activity is coordinated with (only meaningful when it is), and provenance.
_NOT_DECLARED = frozenset(
    {"activity_id", "partner_org_ref", "period", "coordinated_with", "source", "source_file",
     "source_sha256", "source_ref"}
)  # fmt: skip
#: Declaration fields whose completeness a partner page shows, in the schema's order.
DECLARATION_FIELDS = tuple(
    f["name"] for f in table_schema("partner_declarations")["fields"]
    if f["name"] not in _NOT_DECLARED
)  # fmt: skip
UNKNOWN = "unknown"
#: Where a partner's money went (``money.destination``), as its totals name them.
DESTINATIONS = {
    "country": "cd_to_countries_usd",
    "region": "cd_regional_usd",
    "unspecified": "cd_unspecified_usd",
}
#: The tables the profiles read.
TABLES = (
    "activities",
    "activity_countries",
    "activity_regions",
    "activity_sectors",
    "transactions",
    "cd_priorities",
    "alignment_links",
    "results",
    "alignment_metrics",
    "duplication_metrics",
    "duplication_pairs",
    "partner_declarations",
    "sources",
    "organisations",
)
#: Lines of an extract streamed at a time (bounds the memory of the largest extract).
BATCH_ROWS = 50_000
_PREFIX = "_profiles_"
#: SQL function for the sort text of a number that DuckDB's ``printf`` does not spell as
#: Python does (magnitudes from 10^20, infinities).
_NUMBER_KEY = f"{_PREFIX}number_key"
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: Text that is blank for Python's ``str.strip`` (an RE2 pattern: every ``isspace``).
_BLANK = r"[\t-\r\x{1c}-\x{1f}\x{85}\p{Z}]*"
#: A DAC 5-digit purpose code, as Python's ``re.match(r"^\d{5}$")`` finds it.
_DAC5 = r"\p{Nd}{5}\n?"
#: The first characters of a text cell that make the release put ``'`` before it (the
#: characters :data:`publish.files.FORMULA_START` matches), as SQL code points.
_FORMULA = ", ".join(str(i) for i in range(128) if re.match(FORMULA_START, chr(i)))


@dataclass(frozen=True)
class ProfileOptions:
    """What the profiles need besides the tables."""

    #: ISO 3166-1 alpha-2 code -> name (the Country codelist).
    country_names: Mapping[str, str] = field(default_factory=dict)
    #: DAC 5-digit purpose code -> name, for sectors the tables do not name.
    sector_names: Mapping[str, str] = field(default_factory=dict)
    #: Peer groups: kind (``region``, ``income``...) -> group name -> country codes.
    peer_groups: Mapping[str, Mapping[str, Sequence[str]]] = field(default_factory=dict)
    #: The compact's countries: each gets a page, and they are the peers. Empty: every
    #: country the data names.
    countries: tuple[str, ...] = ()


class RowExtracts(Mapping[str, bytes]):
    """The row extracts, as CSV files in a folder: release-relative path -> their bytes
    (read from the file when asked; :meth:`path` gives the file to stream instead)."""

    def __init__(self, folder: Path | None = None) -> None:
        #: A folder of our own, removed with this object, unless the caller gave one.
        self._own: tempfile.TemporaryDirectory[str] | None = None
        if folder is None:
            self._own = tempfile.TemporaryDirectory(prefix="cdcompact-profile-rows-")
            folder = Path(self._own.name)
        self.folder: Path = folder
        self._files: dict[str, Path] = {}

    def open(self, path: str, append: bool = False) -> IO[bytes]:
        """The file of the extract at release-relative ``path``: new, or to append to."""
        if append:
            return self._files[path].open("ab")
        local = self.folder.joinpath(*path.split("/"))
        local.parent.mkdir(parents=True, exist_ok=True)
        self._files[path] = local
        return local.open("wb")

    def path(self, path: str) -> Path:
        """The local file of the extract at release-relative ``path``."""
        return self._files[path]

    def __getitem__(self, path: str) -> bytes:
        return self._files[path].read_bytes()

    def __iter__(self) -> Iterator[str]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)


@dataclass
class Profiles:
    """Every profile, and the row extracts their pages link to."""

    countries: list[dict[str, Any]]
    partners: list[dict[str, Any]]
    #: Release-relative path -> CSV bytes (``countries/GH/rows/results.csv``...).
    rows: RowExtracts


def slug(code: str) -> str:
    """A file-name stem for a country code or an organisation identifier."""
    return _SAFE.sub("_", code).strip("._") or "_"


# --------------------------------------------------------------------------- helpers


def _plain(value: Any) -> Any:
    """A JSON-ready scalar: NaN becomes None, dates their ISO text."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _text(value: Any) -> str:
    value = _plain(value)
    return "" if value is None else str(value).strip()


def _number(value: Any) -> float | None:
    value = _plain(value)
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _int(value: Any) -> int | None:
    number = _number(value)
    return None if number is None else int(number)


def _usd(value: float | None) -> float:
    return round(float(value or 0.0), 2)


def _long(
    sums: Iterable[tuple[str, int, float]], labels: Mapping[str, str]
) -> list[dict[str, Any]]:
    """``[{key, label, year, usd}]`` from the sums by key and year, largest key first."""
    by_key_year = {(str(k), int(year)): float(usd) for k, year, usd in sums}
    totals: dict[str, float] = {}
    for (k, _), usd in by_key_year.items():
        totals[k] = totals.get(k, 0.0) + usd
    order = {k: i for i, k in enumerate(sorted(totals, key=lambda k: (-totals[k], k)))}
    return [
        {"key": k, "label": labels.get(k) or k, "year": year, "usd": _usd(usd)}
        for (k, year), usd in sorted(
            by_key_year.items(), key=lambda item: (order[item[0][0]], item[0][1])
        )
    ]


def _quantiles(values: Sequence[float]) -> dict[str, float]:
    """Min, quartiles and max (linear interpolation, as pandas and spreadsheets do: numpy's
    percentiles, which pandas' ``quantile`` computes)."""
    array = np.asarray(values, dtype="float64")
    q25, median, q75 = np.percentile(array, [25.0, 50.0, 75.0], method="linear")
    found = {"min": array.min(), "q25": q25, "median": median, "q75": q75, "max": array.max()}
    return {k: round(float(v), 6) for k, v in found.items()}


def _rank(value: float, values: Iterable[float], lower_is_better: bool) -> int:
    """1 for the best; ties share the best rank."""
    if lower_is_better:
        return 1 + sum(1 for v in values if v < value)
    return 1 + sum(1 for v in values if v > value)


def _tied(value: float, values: Iterable[float]) -> int:
    """How many of ``values`` (the page's own included) share its rank: 1 when none ties."""
    return sum(1 for v in values if v == value)


def _grouped(rows: Iterable[Sequence[Any]]) -> dict[str, list[tuple[Any, ...]]]:
    """Rows by their first value (the page's code), each without it, in the rows' order."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for first, *rest in rows:
        out.setdefault(str(first), []).append(tuple(rest))
    return out


def _view(table: str) -> str:
    """The name of this module's typed view of ``table``."""
    return quote(f"{_PREFIX}source_{table}")


def _name(what: str) -> str:
    """The name of one of this module's temporary tables."""
    return quote(f"{_PREFIX}{what}")


# --------------------------------------------------------------------------- SQL


def _typed_view(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """``table`` as a view with the schema's columns and types, NaN as NULL (empty, as the
    release writes it), and :data:`ROW`; a table the connection lacks is an empty one."""
    try:
        present = {d[0] for d in con.execute(f"SELECT * FROM {quote(table)} LIMIT 0").description}
    except duckdb.CatalogException:
        present = set()
    if present and ROW not in present:
        raise ValueError(f"{table}: the profiles need its rows numbered ({ROW})")
    columns = []
    for column in arrow_schema(table):
        kind = duckdb_type(column.type)
        value = f"CAST({quote(column.name) if column.name in present else 'NULL'} AS {kind})"
        if kind == "DOUBLE":
            value = f"CASE WHEN isnan({value}) THEN NULL ELSE {value} END"
        columns.append(f"{value} AS {quote(column.name)}")
    source = f"FROM {quote(table)}" if present else "WHERE false"
    row = quote(ROW) if present else "CAST(NULL AS BIGINT)"
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {_view(table)} AS "
        f"SELECT {', '.join(columns)}, {row} AS {quote(ROW)} {source}"
    )


def _prepare(con: duckdb.DuckDBPyConnection, options: ProfileOptions) -> None:
    """The typed views and the work tables every figure reads."""
    for table in TABLES:
        _typed_view(con, table)
    con.create_function(
        _NUMBER_KEY,
        lambda value: f"{value:+032.10f}",
        [DOUBLE],
        VARCHAR,
        side_effects=False,
    )
    # One row per activity (its first), as every figure sees activities.
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {_name("activities")} AS
        SELECT activity_id, title, reporting_org_ref, reporting_org_name,
               coalesce(is_cd, false) AS is_cd, modality, source_file, {ROW}
        FROM {_view("activities")}
        QUALIFY row_number() OVER (PARTITION BY activity_id ORDER BY {ROW}) = 1"""
    )
    # Disbursements per transaction and where they went (publish.headline.disbursements),
    # dated, with the activity's partner and modality: a partner's disbursements are its
    # money to countries + regional and global + unspecified.
    split = recipient_split_sql(_view("activity_countries"), _view("activity_regions"))
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {_name("money")} AS
        WITH counted AS (
            SELECT activity_id, recipient_country, recipient_region, value_usd AS usd,
                year(transaction_date) AS year
            FROM {_view("transactions")}
            WHERE transaction_type IN ('3', '4') AND coalesce(counts_toward_totals, false)
              AND value_usd IS NOT NULL
        ){split}
        SELECT m.activity_id, m.country_code, m.region_code,
               CASE WHEN m.country_code IS NOT NULL THEN 'country'
                   WHEN m.region_code IS NOT NULL THEN 'region'
                   ELSE 'unspecified' END AS destination,
               CAST(m.year AS BIGINT) AS year, m.usd,
               coalesce(a.is_cd, false) AS is_cd,
               coalesce(a.reporting_org_ref, '') AS partner,
               coalesce(nullif(a.modality, ''), {literal(UNKNOWN)}) AS modality
        FROM split m LEFT JOIN {_name("activities")} a USING (activity_id)
        WHERE m.year IS NOT NULL"""
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW {_name("dac")} AS
        SELECT activity_id, code AS sector_code, share AS sector_share, code_name, {ROW}
        FROM {_view("activity_sectors")}
        WHERE vocabulary = '1' AND regexp_full_match(code, {literal(_DAC5)})"""
    )
    # CD money over DAC sectors by their share; what no sector covers goes to "unknown"
    # (the shares summed over every CD disbursement row of the activity, as before).
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {_name("sectors")} AS
        WITH cd AS (SELECT * FROM {_name("money")} WHERE is_cd),
        joined AS (
            SELECT cd.*, d.sector_code, d.sector_share
            FROM cd LEFT JOIN {_name("dac")} d USING (activity_id)
        ), shares AS (
            SELECT activity_id, sum(coalesce(sector_share, 0)) AS share
            FROM joined GROUP BY activity_id
        )
        SELECT country_code, partner, year, sector_code, usd * coalesce(sector_share, 0) AS usd
        FROM joined WHERE sector_code IS NOT NULL
        UNION ALL
        SELECT * FROM (
            SELECT cd.country_code, cd.partner, cd.year, {literal(UNKNOWN)} AS sector_code,
                   cd.usd * (1 - least(greatest(coalesce(s.share, 0), 0), 1)) AS usd
            FROM cd LEFT JOIN shares s USING (activity_id)
        ) WHERE abs(usd) > 0.005"""
    )


def _pages_table(
    con: duckdb.DuckDBPyConnection, countries: Sequence[str], partners: Sequence[str]
) -> None:
    """Every page: its number, kind and code (countries first, then partners)."""
    kinds = ["country"] * len(countries) + ["partner"] * len(partners)
    temp_table(
        con,
        f"{_PREFIX}pages",
        pa.table(
            {
                "page": pa.array(range(len(kinds)), pa.int64()),
                "kind": pa.array(kinds, pa.string()),
                "code": pa.array([*countries, *partners], pa.string()),
            }
        ),
    )
    pages, activities = _name("pages"), _name("activities")
    # The files behind each page: its activities', and the country's own reports or the
    # partner's own declarations.
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {_name("page_files")} AS
        SELECT DISTINCT page, source_file FROM (
            SELECT p.page, a.source_file FROM {pages} p
            JOIN (SELECT DISTINCT activity_id, country_code FROM {_view("activity_countries")}) c
              ON p.kind = 'country' AND c.country_code = p.code
            JOIN {activities} a ON a.activity_id = c.activity_id
            UNION ALL
            SELECT p.page, t.source_file FROM {pages} p JOIN {_view("cd_priorities")} t
              ON p.kind = 'country' AND t.country_code = p.code
            UNION ALL
            SELECT p.page, t.source_file FROM {pages} p JOIN {_view("results")} t
              ON p.kind = 'country' AND t.country_code = p.code
            UNION ALL
            SELECT p.page, a.source_file FROM {pages} p JOIN {activities} a
              ON p.kind = 'partner' AND a.reporting_org_ref = p.code
            UNION ALL
            SELECT p.page, t.source_file FROM {pages} p JOIN {_view("partner_declarations")} t
              ON p.kind = 'partner' AND t.partner_org_ref = p.code
        ) WHERE source_file IS NOT NULL"""
    )


def _clean_up(con: duckdb.DuckDBPyConnection) -> None:
    for kind, names in (
        ("TABLE", ("activities", "money", "sectors", "pages", "page_files", "extract_order")),
        ("VIEW", ("dac", *(f"source_{t}" for t in TABLES))),
    ):
        for name in names:
            con.execute(f"DROP {kind} IF EXISTS {_name(name)}")
    with contextlib.suppress(duckdb.InvalidInputException):  # not registered yet
        con.remove_function(_NUMBER_KEY)


# --------------------------------------------------------------------------- figures


class _Data:
    """What every page needs, queried once: names, labels, and the pages' codes."""

    def __init__(self, con: duckdb.DuckDBPyConnection, options: ProfileOptions) -> None:
        self.con = con
        self.options = options
        activities, money = _name("activities"), _name("money")
        # the release's organisations table names every identifier the data reports
        # (publish.names): a partner is named there, whether it reports or is reported on
        self.partner_names: dict[str, str] = {}
        for ref, name in con.execute(
            f"""SELECT org_ref, name FROM {_view("organisations")}
                WHERE name IS NOT NULL ORDER BY org_ref"""
        ).fetchall():
            if _text(ref) and _text(name):
                self.partner_names[_text(ref)] = _text(name)
        self.sector_name_of: dict[str, str] = {}
        for code, name in con.execute(
            f"""SELECT sector_code, code_name FROM (
                SELECT sector_code, code_name, min({ROW}) AS first FROM {_name("dac")}
                WHERE code_name IS NOT NULL GROUP BY ALL) ORDER BY first"""
        ).fetchall():
            if _text(name):
                self.sector_name_of.setdefault(str(code), _text(name))
        if options.countries:
            self.countries = sorted(set(options.countries))
        else:
            found = [
                f"SELECT country_code FROM {_view(t)} WHERE country_code <> ''"
                for t in ("alignment_metrics", "cd_priorities", "results", "activity_countries")
            ]
            self.countries = sorted(
                str(c)
                for (c,) in con.execute(
                    f"SELECT country_code FROM {money} WHERE is_cd UNION " + " UNION ".join(found)
                ).fetchall()
            )
        self.partners = sorted(
            str(p)
            for (p,) in con.execute(
                f"""SELECT partner FROM {money} WHERE is_cd AND partner <> ''
                UNION SELECT reporting_org_ref FROM {activities}
                WHERE is_cd AND reporting_org_ref <> ''"""
            ).fetchall()
        )
        _pages_table(con, self.countries, self.partners)
        #: activity -> (title, partner) of the activities that priorities and pairs show.
        self.activities: dict[str, tuple[str, str]] = {}

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return self.con.execute(sql).fetchall()

    def by_page(self, kind: str, sql: str) -> dict[str, list[tuple[Any, ...]]]:
        """``sql``'s rows by their first column, a page's code; ``{pages}`` in ``sql``
        stands for the codes of the pages of ``kind``."""
        pages = f"(SELECT code FROM {_name('pages')} WHERE kind = {literal(kind)})"
        return _grouped(self.rows(sql.replace("{pages}", pages)))

    def learn_activities(self, ids: Iterable[str]) -> None:
        """Title and partner of these activities, for :meth:`activity`."""
        wanted = sorted(set(ids) - set(self.activities))
        if not wanted:
            return
        temp_table(self.con, f"{_PREFIX}wanted", pa.table({"activity_id": wanted}))
        for activity_id, title, partner in self.rows(
            f"""SELECT a.activity_id, a.title, coalesce(a.reporting_org_ref, '')
            FROM {_name("activities")} a JOIN {_name("wanted")} w USING (activity_id)"""
        ):
            self.activities[str(activity_id)] = (_text(title), str(partner))
        self.con.execute(f"DROP TABLE {_name('wanted')}")

    def sector_label(self, code: str) -> str:
        if code == UNKNOWN:
            return UNKNOWN
        return self.options.sector_names.get(code) or self.sector_name_of.get(code) or code

    def country_name(self, code: str) -> str:
        return self.options.country_names.get(code) or code

    def partner_name(self, code: str) -> str:
        return self.partner_names.get(code) or code

    def activity(self, activity_id: str) -> dict[str, Any]:
        title, partner = self.activities.get(activity_id, ("", ""))
        return {
            "activity_id": activity_id,
            "title": title,
            "partner": self.partner_name(partner) if partner else "",
            "partner_code": partner,
        }


def _money(data: _Data, kind: str, key: str) -> dict[str, list[tuple[str, int, float]]]:
    """CD money of each page of ``kind`` (its code in ``country_code`` or ``partner``) by
    ``key`` and year."""
    own = "country_code" if kind == "country" else "partner"
    source = _name("sectors") if key == "sector_code" else _name("money")
    where = "" if key == "sector_code" else "WHERE is_cd"
    if key == "country_code":  # a partner's money to countries (not to regions)
        where += " AND country_code IS NOT NULL"
    return data.by_page(
        kind,
        f"""SELECT {own}, {key}, year, fsum(usd) FROM (SELECT * FROM {source} {where})
        WHERE {own} IN {{pages}} GROUP BY ALL ORDER BY ALL""",
    )


def _totals(data: _Data, kind: str) -> dict[str, tuple[Any, ...]]:
    """Per page of ``kind``: all disbursements, CD disbursements, CD partners or countries,
    and (partners) CD disbursements to countries, regional and global, and unspecified."""
    own, other = ("country_code", "partner") if kind == "country" else ("partner", "country_code")
    # A country counts its partners that have a code; a partner all its countries.
    counted = "is_cd AND partner <> ''" if kind == "country" else "is_cd"
    where = ", ".join(
        f"coalesce(fsum(usd) FILTER (WHERE is_cd AND destination = {literal(d)}), 0.0)"
        for d in DESTINATIONS
    )
    found = data.by_page(
        kind,
        f"""SELECT {own}, fsum(usd), fsum(usd) FILTER (WHERE is_cd),
               count(DISTINCT {other}) FILTER (WHERE {counted}), {where}
        FROM {_name("money")} WHERE {own} IN {{pages}} GROUP BY ALL""",
    )
    return {code: rows[0] for code, rows in found.items()}


def _cd_activities(data: _Data, kind: str) -> dict[str, int]:
    """Per page of ``kind``: its CD activities (in the country; reported by the partner)."""
    if kind == "country":
        sql = f"""SELECT c.country_code, count(*) FROM (
            SELECT DISTINCT activity_id, country_code FROM {_view("activity_countries")}) c
            JOIN {_name("activities")} a USING (activity_id)
            WHERE a.is_cd AND c.country_code IN {{pages}} GROUP BY ALL"""
    else:
        sql = f"""SELECT reporting_org_ref, count(*) FROM {_name("activities")}
            WHERE is_cd AND reporting_org_ref IN {{pages}} GROUP BY ALL"""
    return {code: int(rows[0][0]) for code, rows in data.by_page(kind, sql).items()}


def _groups_of(code: str, options: ProfileOptions) -> dict[str, str]:
    found: dict[str, str] = {}
    for kind, groups in options.peer_groups.items():
        for group, members in groups.items():
            if code in members:
                found[kind] = group
                break
    return found


def _priorities(data: _Data) -> dict[str, list[dict[str, Any]]]:
    """Each compact country's CD priorities, with the activities linked to them."""
    pages = f"(SELECT code FROM {_name('pages')} WHERE kind = 'country')"
    links: dict[tuple[str, str], dict[str, list[str]]] = {}
    for country, priority, activity_id, basis in data.rows(
        f"""SELECT l.country_code, l.priority_id, l.activity_id, l.basis
        FROM {_view("alignment_links")} l SEMI JOIN {_name("activities")} a USING (activity_id)
        WHERE l.country_code IN {pages} ORDER BY l.{ROW}"""
    ):
        bases = links.setdefault((str(country), str(priority)), {})
        bases.setdefault(str(activity_id), []).append(str(basis))
    data.learn_activities(a for bases in links.values() for a in bases)
    money: dict[tuple[str, str], float] = {
        (str(country), str(activity_id)): float(usd)
        for country, activity_id, usd in data.rows(
            f"""SELECT country_code, activity_id, fsum(usd) FROM {_name("money")}
            WHERE is_cd AND country_code IN {pages} GROUP BY ALL"""
        )
    }
    out: dict[str, list[dict[str, Any]]] = {}
    for code, priority, title, sector, start, end in data.rows(
        f"""SELECT country_code, priority_id, title, sector_code, start_year, end_year
        FROM {_view("cd_priorities")} WHERE country_code IN {pages}
        ORDER BY country_code, priority_id NULLS LAST, {ROW}"""
    ):
        priority = str(priority)
        bases = links.get((str(code), priority), {})
        activity_ids = sorted(bases)
        out.setdefault(str(code), []).append(
            {
                "priority_id": priority,
                "title": _text(title),
                "sector_code": _text(sector) or None,
                "start_year": _int(start),
                "end_year": _int(end),
                "usd": _usd(sum(money.get((str(code), a), 0.0) for a in activity_ids)),
                "n_activities": len(activity_ids),
                "funded": bool(activity_ids),
                "activities": [
                    {**data.activity(a), "basis": ", ".join(sorted(set(bases[a])))}
                    for a in activity_ids
                ],
            }
        )
    return out


#: The columns of ``results`` that indicators are made of.
_RESULT_COLUMNS = (
    "result_id",
    "indicator_id",
    "activity_id",
    "period_end",
    "actual_value",
    "baseline_year",
    "baseline_value",
    "target_year",
    "target_value",
    "indicator_title",
    "result_title",
    "priority_id",
    "measure",
    "ascending",
    "reference_vocabulary",
    "reference_code",
)


def _results(data: _Data) -> dict[str, list[dict[str, Any]]]:
    """Indicators of every country that reports results (the compact's peers included)."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for code, *values in data.rows(
        f"""SELECT country_code, {", ".join(_RESULT_COLUMNS)} FROM {_view("results")}
        WHERE country_code <> '' ORDER BY {ROW}"""
    ):
        rows.setdefault(str(code), []).append(dict(zip(_RESULT_COLUMNS, values, strict=True)))
    return {code: _indicators(rows[code]) for code in sorted(rows)}


def _progress(baseline: float | None, target: float | None, actual: float | None) -> float | None:
    if baseline is None or target is None or actual is None or target == baseline:
        return None
    return round((actual - baseline) / (target - baseline), 4)


def _indicators(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Results rows grouped into indicators: baseline, target and the actuals over time."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for record in records:
        row = {k: _plain(v) for k, v in record.items()}
        key = _text(row.get("indicator_id")) or _text(row.get("result_id"))
        groups.setdefault((key, _text(row.get("activity_id"))), []).append(row)
    out = []
    for (key, activity), rows in sorted(groups.items()):
        rows.sort(key=lambda r: (r.get("period_end") or "", _text(r.get("result_id"))))

        def first(column: str, rows: list[dict[str, Any]] = rows) -> Any:
            return next((r[column] for r in rows if r.get(column) is not None), None)

        actuals = [
            {"period_end": r.get("period_end"), "value": _number(r.get("actual_value"))}
            for r in rows
            if _number(r.get("actual_value")) is not None
        ]
        baseline, target = _number(first("baseline_value")), _number(first("target_value"))
        latest = actuals[-1]["value"] if actuals else None
        ascending = first("ascending")
        out.append(
            {
                "result_id": _text(first("result_id")),
                "indicator_id": key,
                "indicator_title": _text(first("indicator_title")) or _text(first("result_title")),
                "priority_id": _text(first("priority_id")) or None,
                "activity_id": activity or None,
                "measure": _text(first("measure")) or None,
                "ascending": None if ascending is None else bool(ascending),
                "baseline_year": _int(first("baseline_year")),
                "baseline_value": baseline,
                "target_year": _int(first("target_year")),
                "target_value": target,
                "actuals": actuals,
                "latest_actual": latest,
                "progress": _progress(baseline, target, latest),
                "reference": _reference(first("reference_vocabulary"), first("reference_code")),
            }
        )
    return out


def _reference(vocabulary: Any, code: Any) -> str | None:
    code_text = _text(code)
    if not code_text:
        return None
    vocabulary_text = _text(vocabulary)
    return f"{vocabulary_text}:{code_text}" if vocabulary_text else code_text


_METRIC_COLUMNS = (
    "metric",
    "year",
    "numerator",
    "denominator",
    "value",
    "n_activities",
    "n_activities_eligible",
    "coverage",
)


def _latest_metrics(data: _Data, where: str, order: str) -> list[tuple[Any, ...]]:
    """Alignment metrics (``country_code``, ``partner_org_ref``, then :data:`_METRIC_COLUMNS`)
    of each (country, partner, metric)'s latest year with a row, filtered by ``where``."""
    columns = ", ".join(_METRIC_COLUMNS)
    return data.rows(
        f"""SELECT country_code, partner_org_ref, {columns} FROM (
            SELECT *, max(year) OVER (
                PARTITION BY country_code, coalesce(partner_org_ref, ''), metric) AS latest
            FROM {_view("alignment_metrics")}
            WHERE country_code IS NOT NULL AND metric IS NOT NULL AND ({where}))
        WHERE year = latest ORDER BY {order}"""
    )


def _unmeasured(
    metrics: Sequence[str], measured: Iterable[Mapping[str, Any]], has_priorities: bool
) -> list[dict[str, str]]:
    """The alignment metrics of ``metrics`` without a row for a country (nothing to
    measure), each with why: ``no_priorities`` (the country reported no CD priority),
    ``no_priority_years`` (none of its priorities covers a year with CD money),
    ``no_incoming_funds`` (no incoming funds to trace) or ``no_known_value`` (no activity
    the metric covers has a known declaration or indicator)."""
    present = {str(record["metric"]) for record in measured}
    reasons = {
        "priority_alignment": "no_priority_years" if has_priorities else "no_priorities",
        "traceability": "no_incoming_funds",
    }
    return [
        {"metric": metric, "reason": reasons.get(metric, "no_known_value")}
        for metric in metrics
        if metric not in present
    ]


def _metric_record(values: Sequence[Any]) -> dict[str, Any]:
    return {c: _plain(v) for c, v in zip(_METRIC_COLUMNS, values, strict=True)}


def _peers(
    data: _Data,
    code: str,
    own: list[dict[str, Any]],
    latest_values: Mapping[str, Mapping[str, tuple[float, int]]],
    countries: Sequence[str],
) -> list[dict[str, Any]]:
    options = data.options
    out = []
    for metric in own:
        value = _number(metric["value"])
        if value is None:
            continue
        values = latest_values.get(metric["metric"], {})
        lower = metric["metric"] in LOWER_IS_BETTER
        groups: list[tuple[str, str, Sequence[str]]] = [("all", "all", list(countries))]
        for kind, group in _groups_of(code, options).items():
            groups.append((kind, group, list(options.peer_groups[kind][group])))
        comparisons = []
        for kind, group, members in groups:
            present = {c: values[c] for c in members if c in values}
            if code not in present:
                continue
            ordered = sorted(
                present.items(), key=lambda item: (item[1][0] if lower else -item[1][0], item[0])
            )
            numbers = [v for v, _ in present.values()]
            comparisons.append(
                {
                    "group_kind": kind,
                    "group": group,
                    "n": len(present),
                    "rank": _rank(value, numbers, lower),
                    "tied": _tied(value, numbers),
                    "quantiles": _quantiles(numbers),
                    "members": [
                        {
                            "code": c,
                            "name": data.country_name(c),
                            "value": round(v, 4),
                            "year": y,
                            "is_self": c == code,
                        }
                        for c, (v, y) in ordered
                    ],
                }
            )
        out.append(
            {
                "metric": metric["metric"],
                "year": metric["year"],
                "value": value,
                "lower_is_better": lower,
                "comparisons": comparisons,
            }
        )
    return out


def _shared_indicators(
    data: _Data, code: str, by_country: Mapping[str, list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """Indicators with one reference reported by two countries or more, with progress."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for country, indicators in by_country.items():
        for indicator in indicators:
            reference = indicator.get("reference")
            if reference and indicator["progress"] is not None:
                found.setdefault(reference, {}).setdefault(country, indicator)
    out = []
    for reference, countries in sorted(found.items()):
        if code not in countries or len(countries) < 2:
            continue
        ordered = sorted(countries.items(), key=lambda item: (-item[1]["progress"], item[0]))
        progress = countries[code]["progress"]
        out.append(
            {
                "reference": reference,
                "title": countries[code]["indicator_title"],
                "n": len(countries),
                "rank": _rank(progress, [i["progress"] for i in countries.values()], False),
                "tied": _tied(progress, [i["progress"] for i in countries.values()]),
                "quantiles": _quantiles([i["progress"] for i in countries.values()]),
                "members": [
                    {
                        "code": c,
                        "name": data.country_name(c),
                        "progress": i["progress"],
                        "latest_actual": i["latest_actual"],
                        "target_value": i["target_value"],
                        "is_self": c == code,
                    }
                    for c, i in ordered
                ],
            }
        )
    return out


_HOTSPOT_COLUMNS = (
    "sector_code",
    "priority_id",
    "year",
    "n_partners",
    "n_activities",
    "cd_disbursement_usd",
    "hhi",
    "effective_partners",
    "fragmentation_ratio",
    "n_overlap_pairs",
    "overlap_value_share",
)


def _hotspots(data: _Data) -> dict[str, list[dict[str, Any]]]:
    """Duplication metrics by sector of each compact country's latest year with CD
    disbursements (a sector row of that year with a non-zero ``cd_disbursement_usd``),
    the sectors with the most partners first; none where no year has any."""
    found = data.by_page(
        "country",
        f"""SELECT country_code, {", ".join(_HOTSPOT_COLUMNS)} FROM (
            SELECT *, max(year) FILTER (WHERE cd_disbursement_usd <> 0)
                OVER (PARTITION BY country_code) AS latest
            FROM {_view("duplication_metrics")}
            WHERE sector_code IS NOT NULL AND country_code IN {{pages}})
        WHERE year = latest
        ORDER BY country_code, n_partners DESC NULLS LAST, cd_disbursement_usd DESC NULLS LAST,
                 sector_code NULLS LAST, {ROW}""",
    )
    out: dict[str, list[dict[str, Any]]] = {}
    for code, rows in found.items():
        for values in rows:
            record = {c: _plain(v) for c, v in zip(_HOTSPOT_COLUMNS, values, strict=True)}
            record["sector_name"] = data.sector_label(str(record["sector_code"]))
            out.setdefault(code, []).append(record)
    return out


def _pairs(data: _Data) -> list[tuple[str, dict[str, Any]]]:
    """Every pair of overlapping effort (with its country's code), the highest score first."""
    rows = data.rows(
        f"""SELECT pair_id, kind, country_code, score, sector_overlap, date_overlap,
               title_similarity, activity_id_a, activity_id_b
        FROM {_view("duplication_pairs")} WHERE kind = 'overlapping_effort'
        ORDER BY score DESC NULLS LAST, pair_id NULLS LAST, {ROW}"""
    )
    data.learn_activities(str(a) for r in rows for a in r[7:])
    return [
        (
            str(country),
            {
                "pair_id": str(pair_id),
                "kind": str(kind),
                "country_code": _text(country),
                "score": _number(score),
                "sector_overlap": _number(sector),
                "date_overlap": _number(date),
                "title_similarity": _number(title),
                "a": data.activity(str(a)),
                "b": data.activity(str(b)),
            },
        )
        for pair_id, kind, country, score, sector, date, title, a, b in rows
    ]


_SOURCE_COLUMNS = (
    "source_file",
    "source",
    "status",
    "n_records",
    "n_accepted",
    "n_quarantined",
    "reason",
)


def _quality(data: _Data) -> dict[int, list[dict[str, Any]]]:
    """Per page (its number): the sources behind it, by file name."""
    out: dict[int, list[dict[str, Any]]] = {}
    for page, *values in data.rows(
        f"""SELECT f.page, {", ".join(f"s.{c}" for c in _SOURCE_COLUMNS)}
        FROM {_name("page_files")} f JOIN {_view("sources")} s USING (source_file)
        ORDER BY f.page, s.source_file, s.{ROW}"""
    ):
        record = {c: _plain(v) for c, v in zip(_SOURCE_COLUMNS, values, strict=True)}
        out.setdefault(int(page), []).append(record)
    return out


def _declarations(data: _Data) -> dict[str, dict[str, Any]]:
    """Per partner: how many of its CD activities in compact countries declare each field."""
    pages = f"(SELECT code FROM {_name('pages')} WHERE kind = 'partner')"
    compact = f"(SELECT code FROM {_name('pages')} WHERE kind = 'country')"
    types = field_types("partner_declarations")
    known = ", ".join(
        f"count(DISTINCT d.activity_id) FILTER (WHERE d.{quote(name)} IS NOT NULL"
        + (
            f" AND NOT regexp_full_match(d.{quote(name)}, {literal(_BLANK)}))"
            if types[name] == "string"
            else ")"
        )
        for name in DECLARATION_FIELDS
    )
    in_compact = f"""SELECT DISTINCT a.reporting_org_ref AS partner, a.activity_id
        FROM {_name("activities")} a
        JOIN {_view("activity_countries")} c ON c.activity_id = a.activity_id
        WHERE a.is_cd AND a.reporting_org_ref IN {pages} AND c.country_code IN {compact}"""
    totals = {
        str(partner): int(n)
        for partner, n in data.rows(f"SELECT partner, count(*) FROM ({in_compact}) GROUP BY ALL")
    }
    declared = {
        str(partner): [int(n) for n in counts]
        for partner, *counts in data.rows(
            f"""SELECT d.partner_org_ref, count(DISTINCT d.activity_id), {known}
            FROM {_view("partner_declarations")} d JOIN ({in_compact}) i
              ON i.partner = d.partner_org_ref AND i.activity_id = d.activity_id
            GROUP BY ALL"""
        )
    }
    out = {}
    for code in data.partners:
        total = totals.get(code, 0)
        n_declared, *fields = declared.get(code, [0] * (1 + len(DECLARATION_FIELDS)))
        out[code] = {
            "n_cd_activities": total,
            "n_declared": n_declared,
            "share": round(n_declared / total, 4) if total else None,
            "fields": [
                {
                    "field": name,
                    "known": n,
                    "total": total,
                    "share": round(n / total, 4) if total else None,
                }
                for name, n in zip(DECLARATION_FIELDS, fields, strict=True)
            ],
        }
    return out


# --------------------------------------------------------------------------- pages


def _country_profiles(data: _Data) -> list[dict[str, Any]]:
    countries = data.countries
    by_partner = _money(data, "country", "partner")
    by_modality = _money(data, "country", "modality")
    by_sector = _money(data, "country", "sector_code")
    totals = _totals(data, "country")
    cd_activities = _cd_activities(data, "country")
    priorities = _priorities(data)
    indicators = _results(data)
    hotspots = _hotspots(data)
    pairs = _pairs(data)
    quality = _quality(data)
    compact = set(countries)
    metrics: dict[str, list[dict[str, Any]]] = {}
    latest_values: dict[str, dict[str, tuple[float, int]]] = {}
    for country, _, *values in _latest_metrics(
        data, "coalesce(partner_org_ref, '') = ''", f"country_code, metric, {ROW}"
    ):
        record = _metric_record(values)
        metrics.setdefault(str(country), []).append(record)
        number = _number(record["value"])
        if number is not None and str(country) in compact:
            latest_values.setdefault(str(record["metric"]), {})[str(country)] = (
                number,
                int(record["year"]),
            )
    out = []
    for page, code in enumerate(countries):
        total, cd_total, partners, *_ = totals.get(code, (0.0, 0.0, 0))
        total, cd_total = float(total or 0.0), float(cd_total or 0.0)
        own = metrics.get(code, [])
        out.append(
            {
                "kind": "country",
                "code": code,
                "name": data.country_name(code),
                "slug": slug(code),
                "groups": _groups_of(code, data.options),
                "years": sorted({int(y) for _, y, _ in by_partner.get(code, [])}),
                "totals": {
                    "disbursement_usd": _usd(total),
                    "cd_disbursement_usd": _usd(cd_total),
                    "cd_share": round(cd_total / total, 4) if total else None,
                    "cd_activities": cd_activities.get(code, 0),
                    "partners": int(partners),
                },
                "money": {
                    "by_partner": _long(by_partner.get(code, []), data.partner_names),
                    "by_modality": _long(by_modality.get(code, []), {}),
                    "by_sector": _long(
                        by_sector.get(code, []),
                        {str(k): data.sector_label(str(k)) for k, _, _ in by_sector.get(code, [])},
                    ),
                },
                "priorities": priorities.get(code, []),
                "results": indicators.get(code, []),
                "metrics": own,
                "unmeasured": _unmeasured(METRICS, own, bool(priorities.get(code))) if own else [],
                "peers": _peers(data, code, own, latest_values, countries),
                "shared_indicators": _shared_indicators(data, code, indicators),
                "hotspots": hotspots.get(code, []),
                "hotspot_year": next((h["year"] for h in hotspots.get(code, [])), None),
                "pairs": [p for country, p in pairs if country == code],
                "quality": quality.get(page, []),
            }
        )
    return out


def _partner_profiles(data: _Data) -> list[dict[str, Any]]:
    by_country = _money(data, "partner", "country_code")
    by_sector = _money(data, "partner", "sector_code")
    by_modality = _money(data, "partner", "modality")
    totals = _totals(data, "partner")
    # the years of all its CD money, to countries, regions or unspecified
    years = {
        code: [int(row[0]) for row in rows]
        for code, rows in data.by_page(
            "partner",
            f"""SELECT DISTINCT partner, year FROM {_name("money")}
            WHERE is_cd AND partner IN {{pages}} ORDER BY ALL""",
        ).items()
    }
    cd_activities = _cd_activities(data, "partner")
    declarations = _declarations(data)
    pairs = _pairs(data)
    quality = _quality(data)
    alignment: dict[str, list[dict[str, Any]]] = {}
    pages = f"(SELECT code FROM {_name('pages')} WHERE kind = 'partner')"
    for country, partner, *values in _latest_metrics(
        data, f"partner_org_ref IN {pages}", f"partner_org_ref, country_code, metric, {ROW}"
    ):
        record = {"country_code": _plain(country), **_metric_record(values)}
        record["country_name"] = data.country_name(str(country))
        alignment.setdefault(str(partner), []).append(record)
    out = []
    for page, code in enumerate(data.partners, start=len(data.countries)):
        total, cd_total, countries, *destinations = totals.get(
            code, (0.0, 0.0, 0, *(0.0 for _ in DESTINATIONS))
        )
        overlaps = []
        for _, pair in pairs:
            if code not in (pair["a"]["partner_code"], pair["b"]["partner_code"]):
                continue
            own, other = (
                (pair["a"], pair["b"])
                if pair["a"]["partner_code"] == code
                else (pair["b"], pair["a"])
            )
            overlaps.append(
                {
                    "pair_id": pair["pair_id"],
                    "country_code": pair["country_code"],
                    "country_name": data.country_name(pair["country_code"]),
                    "score": pair["score"],
                    "sector_overlap": pair["sector_overlap"],
                    "date_overlap": pair["date_overlap"],
                    "own": own,
                    "other": other,
                }
            )
        out.append(
            {
                "kind": "partner",
                "code": code,
                "name": data.partner_name(code),
                "slug": slug(code),
                "years": years.get(code, []),
                "totals": {
                    "disbursement_usd": _usd(total),
                    "cd_disbursement_usd": _usd(cd_total),
                    "cd_activities": cd_activities.get(code, 0),
                    "countries": int(countries),
                    **{
                        key: _usd(usd)
                        for key, usd in zip(DESTINATIONS.values(), destinations, strict=True)
                    },
                },
                "money": {
                    "by_country": _long(
                        by_country.get(code, []),
                        {str(k): data.country_name(str(k)) for k, _, _ in by_country.get(code, [])},
                    ),
                    "by_sector": _long(
                        by_sector.get(code, []),
                        {str(k): data.sector_label(str(k)) for k, _, _ in by_sector.get(code, [])},
                    ),
                    "by_modality": _long(by_modality.get(code, []), {}),
                },
                "alignment": alignment.get(code, []),
                "overlaps": overlaps,
                "declarations": declarations[code],
                "quality": quality.get(page, []),
            }
        )
    return out


# --------------------------------------------------------------------------- row extracts


def _pages_of_rows(table: str) -> str:
    """SQL relation of the rows of ``table`` behind some page: the view's rows (``t``) and
    ``pages``, the list of the numbers of the pages each belongs to."""
    if table == "transactions":  # every transaction of an activity the totals count: by
        # activity, so that the lists are joined by activity, not by row
        pages, money = _name("pages"), _name("money")
        return f"""{_view(table)} t JOIN (
            SELECT activity_id, list(page) AS pages FROM (
                SELECT DISTINCT p.page, m.activity_id FROM {pages} p JOIN {money} m
                  ON p.kind = 'country' AND m.country_code = p.code
                UNION
                SELECT DISTINCT p.page, m.activity_id FROM {pages} p JOIN {money} m
                  ON p.kind = 'partner' AND m.partner = p.code)
            GROUP BY activity_id) k ON k.activity_id = t.activity_id"""
    return f"""{_view(table)} t JOIN (
        SELECT row, list(page) AS pages FROM ({_members(table)}) GROUP BY row) k
        ON k.row = t.{ROW}"""


def _members(table: str) -> str:
    """SQL of the rows of ``table`` (not ``transactions``) behind each page: ``page`` and
    ``row`` (:data:`ROW`)."""
    pages, view = _name("pages"), _view(table)
    country = "p.kind = 'country' AND t.country_code = p.code"
    if table == "alignment_metrics":
        return f"""SELECT p.page AS page, t._row AS row FROM {pages} p JOIN {view} t ON {country}
            OR p.kind = 'partner' AND t.partner_org_ref = p.code"""
    if table == "partner_declarations":
        return f"""SELECT p.page AS page, t._row AS row FROM {pages} p JOIN {view} t
            ON p.kind = 'partner' AND t.partner_org_ref = p.code"""
    if table == "duplication_pairs":
        activities = _name("activities")
        return f"""SELECT p.page AS page, t._row AS row FROM {view} t
            LEFT JOIN {activities} a ON a.activity_id = t.activity_id_a
            LEFT JOIN {activities} b ON b.activity_id = t.activity_id_b
            JOIN {pages} p ON {country} OR p.kind = 'partner'
              AND (a.reporting_org_ref = p.code OR b.reporting_org_ref = p.code)
            WHERE t.kind = 'overlapping_effort'"""
    if table == "sources":
        return f"""SELECT f.page AS page, t._row AS row FROM {_name("page_files")} f
            JOIN {view} t USING (source_file)"""
    # cd_priorities, alignment_links, results, duplication_metrics: the country's rows
    return f"SELECT p.page AS page, t._row AS row FROM {pages} p JOIN {view} t ON {country}"


#: The tables with rows behind a page, in the order their extracts are written.
EXTRACT_TABLES = (
    "alignment_links",
    "alignment_metrics",
    "cd_priorities",
    "duplication_metrics",
    "duplication_pairs",
    "partner_declarations",
    "results",
    "sources",
    "transactions",
)


def _sort_key(kind: str, column: str) -> str:
    """An ``ORDER BY`` term (over the table's rows as ``t``) that sorts as the release's
    text sort key of the column does (:mod:`publish.files`: empty first, numbers as
    ``+032.10f``)."""
    c = f"t.{quote(column)}"
    if kind in {"integer", "year", "number"}:
        x = f"CAST({c} AS DOUBLE)"
        return (
            f"CASE WHEN {x} IS NULL THEN '' WHEN abs({x}) < 1e20 "
            f"THEN printf('%+032.10f', {x}) ELSE {_NUMBER_KEY}({x}) END"
        )
    if kind == "string":
        return f"coalesce({c}, '')"
    return f"{c} NULLS FIRST"  # ISO dates, timestamps and booleans sort as their text


def _canonical_order(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """``ORDER BY`` terms of the release's canonical order of ``table``: the primary key,
    then every other column when the whole table has ties on the key, then the row."""
    types = field_types(table)
    key = table_schema(table).get("primaryKey") or []
    columns = [key] if isinstance(key, str) else list(key)
    terms = [_sort_key(types[c], c) for c in columns]
    ties = True
    if columns:
        found = con.execute(
            f"SELECT EXISTS (SELECT 1 FROM {_view(table)} t "
            f"GROUP BY {', '.join(t.removesuffix(' NULLS FIRST') for t in terms)} "
            "HAVING count(*) > 1)"
        ).fetchone()
        ties = bool(found and found[0])
    if ties:
        terms += [_sort_key(kind, c) for c, kind in types.items() if c not in columns]
    return ", ".join([*terms, f"t.{quote(ROW)}"])


def _field_sql(kind: str, column: str) -> str:
    """SQL of a cell's CSV field (of the table's rows as ``t``) as the release writes it
    (:func:`publish.files.column_cells`: empty, ``true``/``false``, digits, Python's
    ``repr`` of a number that is not a whole one below 10^15, ISO dates, UTC timestamps
    ending in Z, text with a ``'`` before a formula; then quoted as Python's
    ``csv.QUOTE_MINIMAL`` does: only text can hold a comma, a quote or a line break)."""
    c = f"t.{quote(column)}"
    if kind == "boolean":
        return f"CASE WHEN {c} THEN 'true' WHEN NOT {c} THEN 'false' ELSE '' END"
    if kind in {"integer", "year"}:
        return f"coalesce(CAST({c} AS VARCHAR), '')"
    if kind == "number":  # DuckDB's text of a double is Python's repr
        return (
            f"CASE WHEN {c} IS NULL THEN '' WHEN abs({c}) < 1e15 AND {c} = floor({c}) "
            f"THEN CAST(CAST({c} AS BIGINT) AS VARCHAR) ELSE CAST({c} AS VARCHAR) END"
        )
    if kind == "date":
        return f"coalesce(strftime({c}, '%Y-%m-%d'), '')"
    if kind == "datetime":
        return (
            f"coalesce(strftime({c}, '%Y-%m-%dT%H:%M:%S') || CASE WHEN strftime({c}, '%f') "
            f"= '000000' THEN 'Z' ELSE strftime({c}, '.%fZ') END, '')"
        )
    apostrophe = literal("'")
    # a list, not IN: DuckDB turns each IN into a join, two per text column, and their
    # memory beside the sort of a part of the transactions broke the 10 GB release
    text = f"CASE WHEN list_contains([{_FORMULA}], ord({c})) THEN {apostrophe} || {c} ELSE {c} END"
    special = " OR ".join(f"contains({c}, chr({ord(x)}))" for x in ',"\r\n')
    quoted = f"""'"' || replace({text}, '"', '""') || '"'"""
    return f"coalesce(CASE WHEN {special} THEN {quoted} ELSE {text} END, '')"


def _line_sql(table: str) -> str:
    """SQL of a row's CSV line (with its CRLF) in the release's CSV of ``table``."""
    fields = [_field_sql(kind, name) for name, kind in field_types(table).items()]
    return "concat(" + ", ',', ".join(fields) + ", chr(13), chr(10))"


def _header(table: str) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(list(field_types(table)))
    return buffer.getvalue().encode("utf-8")


def _text_bytes(lines: pa.Array) -> memoryview:
    """The UTF-8 bytes of ``lines`` (text without NULLs) laid end to end."""
    width = np.int64 if pa.types.is_large_string(lines.type) else np.int32
    offsets = np.frombuffer(lines.buffers()[1], dtype=width)[lines.offset :]
    data = lines.buffers()[2]
    view = memoryview(data) if data is not None else memoryview(b"")
    return view[int(offsets[0]) : int(offsets[len(lines)])]


def _write_extracts(
    con: duckdb.DuckDBPyConnection, table: str, folders: Sequence[str], out: RowExtracts
) -> dict[int, str]:
    """Each page's rows of ``table`` as its CSV extract in ``out``: page -> path.

    The rows behind some page are numbered in the release's order with the pages each
    belongs to (keys and page lists alone are sorted); then their lines of the release's
    CSV are written by DuckDB in parts of consecutive numbers
    (:func:`assets.warehouse.ordered_parts`: a large table's lines are never sorted in one
    statement nor held at once), read back in batches of :data:`BATCH_ROWS` and each
    appended to its pages' files (so a row is formatted and sorted once, however many
    pages show it). A page without rows has no extract."""
    paths: dict[int, str] = {}
    header = _header(table)
    order = _name("extract_order")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {order} AS SELECT t.{quote(ROW)} AS row, k.pages, "
        f"row_number() OVER (ORDER BY {_canonical_order(con, table)}) AS n "
        f"FROM {_pages_of_rows(table)}"
    )
    out.folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{table}-", dir=out.folder) as folder:
        parts = ordered_parts(
            con,
            f"o.pages, {_line_sql(table)} AS line",
            f"{_view(table)} t JOIN {order} o ON o.row = t.{quote(ROW)}",
            "o.n",
            "o.n",
            Path(folder),
        )
        for part in parts:
            with pq.ParquetFile(part) as reader:
                for batch in reader.iter_batches(BATCH_ROWS):
                    _append_lines(batch, table, folders, out, paths, header)
    con.execute(f"DROP TABLE {order}")
    return paths


def _append_lines(
    batch: pa.RecordBatch,
    table: str,
    folders: Sequence[str],
    out: RowExtracts,
    paths: dict[int, str],
    header: bytes,
) -> None:
    """The lines of ``batch`` (``pages``, ``line``) appended to their pages' extracts."""
    pages = batch.column(0)
    page_of = np.asarray(pc.list_flatten(pages).to_numpy(zero_copy_only=False), np.int64)
    row_of = np.asarray(pc.list_parent_indices(pages).to_numpy(zero_copy_only=False))
    if not len(page_of):
        return
    order = np.lexsort((row_of, page_of))  # by page, each page's rows in order
    page_of, row_of = page_of[order], row_of[order]
    starts = [0, *(np.flatnonzero(np.diff(page_of)) + 1).tolist(), len(page_of)]
    for start, end in itertools.pairwise(starts):
        page = int(page_of[start])
        lines = batch.column(1).take(pa.array(row_of[start:end]))
        if page not in paths:
            paths[page] = f"{folders[page]}/rows/{table}.csv"
            with out.open(paths[page]) as handle:
                handle.write(header)
        with out.open(paths[page], append=True) as handle:
            handle.write(_text_bytes(lines))


# --------------------------------------------------------------------------- entry point


def build_profiles(
    con: duckdb.DuckDBPyConnection,
    options: ProfileOptions | None = None,
    folder: Path | None = None,
) -> Profiles:
    """Every country's and partner's profile, and the row extracts behind them.

    ``con`` holds the release's tables as views or tables named after them, each with its
    rows numbered (:data:`assets.warehouse.ROW`, as :func:`assets.warehouse.attach_tables`
    with ``row_numbers`` and :func:`assets.warehouse.register_frames` give); a table it
    lacks is an empty one. The extracts are written to ``folder`` (a temporary folder of
    the result's own when None). Everything this creates in ``con`` is removed again."""
    options = options or ProfileOptions()
    try:
        _prepare(con, options)
        data = _Data(con, options)
        countries = _country_profiles(data)
        partners = _partner_profiles(data)
        rows = RowExtracts(folder)
        folders = [
            *(f"countries/{p['slug']}" for p in countries),
            *(f"partners/{p['slug']}" for p in partners),
        ]
        extracts: dict[int, dict[str, str]] = {}
        for table in EXTRACT_TABLES:
            for page, path in _write_extracts(con, table, folders, rows).items():
                extracts.setdefault(page, {})[table] = path
    finally:
        _clean_up(con)
    for page, profile in enumerate([*countries, *partners]):
        profile["rows"] = extracts.get(page, {})
    return Profiles(countries=countries, partners=partners, rows=rows)
