"""``cdcompact iati harmonise``: exit codes, the summary and the Parquet tables it writes;
the run summary (``cdcompact run`` prints it too) against the pandas code it replaced
(tests/legacy/summary.py).

Most cases call ``pipelines.cli.main`` in-process; one runs the installed
``cdcompact`` script as a subprocess, from another working directory.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from assets.harmonise.schema import table_frame
from assets.harmonise.store import read_tables, write_tables
from assets.metrics.stage import PUBLISHED_TABLES
from assets.settings import ENVIRONMENT, load_settings
from pipelines.cli import (
    EXIT_BAD_ARGUMENTS,
    EXIT_NOTHING_HARMONISED,
    EXIT_OK,
    build_parser,
    main,
)
from pipelines.dagster_home import ensure_dagster_home
from publish.summary import summary
from tests.conftest import CODELISTS, IATI_FIXTURES, RATES
from tests.legacy.summary import summary as legacy_summary
from tests.unit.test_release import demo_tables
from tests.unit.test_release_figures import CASES, stored
from tools.cli_reference import PAGE, commands, documented, help_text

WHO_ARG = IATI_FIXTURES / "valid" / "who-arg.xml"
XDR_FILE = IATI_FIXTURES / "valid" / "multiple_locales_descriptions.xml"
SMALL_FILE = IATI_FIXTURES / "valid" / "default_currency.xml"
INVALID = IATI_FIXTURES / "invalid"
NOT_XML = INVALID / "not-xml.xml"
MONTHLY_CSV = RATES / "imf-monthly-subset.csv"
SDR_JSON = RATES / "monthly-average-sdr-per-unit.json"
CDCOMPACT = Path(sys.executable).parent / "cdcompact"

#: Rows written for who-arg.xml plus one rejected file.
WHO_ARG_ROWS = {
    "activities": 157,
    "activity_countries": 157,
    "activity_sectors": 341,
    "participating_orgs": 549,
    "transactions": 871,
    "budgets": 1256,
    "results": 0,
    "sources": 2,
}


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str
    tables: Path


def harmonise(out: Path, *args: str | Path) -> Run:
    """``cdcompact iati harmonise ARGS --out OUT --quiet`` in-process."""
    stdout, stderr = io.StringIO(), io.StringIO()
    argv = ["iati", "harmonise", *map(str, args), "--out", str(out), "--quiet"]
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(argv)
    return Run(code, stdout.getvalue(), stderr.getvalue(), out)


def read(run: Run, table: str) -> pd.DataFrame:
    return pd.read_parquet(run.tables / f"{table}.parquet")


def parquet_names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


@pytest.fixture(scope="module")
def who_arg_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("who-arg") / "tables"
    return harmonise(
        out, WHO_ARG, NOT_XML, "--rates", MONTHLY_CSV, "--codelists", CODELISTS / "non-embedded"
    )


# -- a good file and a bad one --------------------------------------------------------
def test_one_good_file_is_enough_for_exit_0(who_arg_run: Run) -> None:
    assert who_arg_run.code == EXIT_OK
    assert who_arg_run.err == ""


def test_summary_lists_files_counts_and_the_rejected_reason(who_arg_run: Run) -> None:
    lines = who_arg_run.out.splitlines()
    assert lines[0].split() == ["files", "2", "ok", "1", "·", "partial", "0", "·", "rejected", "1"]
    assert lines[1].split()[:2] == ["activities", "157"]
    assert lines[2].split() == ["transactions", "871"]
    assert lines[3].split() == ["budgets", "1,256"]
    rejected = [line.strip() for line in lines if line.strip().startswith("rejected")]
    assert rejected == [
        "rejected not-xml.xml: the file is not XML: it starts with 'This is not XML'"
    ]
    assert lines[-1] == f"tables written to {who_arg_run.tables}"


def test_the_summary_is_the_pandas_summary_of_the_tables_written(who_arg_run: Run) -> None:
    """Counted in SQL over the Parquet files, as the pandas code counted the frames."""
    written = read_tables(who_arg_run.tables, PUBLISHED_TABLES)
    assert who_arg_run.out.rstrip("\n") == legacy_summary(written, who_arg_run.tables)


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_run_summary_equals_the_pandas_one(case: str, tmp_path: Path) -> None:
    stored(case, tmp_path)
    shown = summary(load_settings(), tmp_path)
    assert shown == legacy_summary(read_tables(tmp_path, PUBLISHED_TABLES), tmp_path)
    assert shown.splitlines()[-1] == f"tables written to {tmp_path}"


def test_the_run_summary_of_revalidated_kept_rejected_and_partial_files(tmp_path: Path) -> None:
    tables = demo_tables()
    sources = tables["sources"].copy()
    sources.loc[0, "download"] = "revalidated"
    sources.loc[3, ["status", "download", "reason"]] = ["ok", "kept", "fetch failed (HTTP 503)"]
    rejected = ["rejected", "revalidated", "the file is not XML"]
    sources.loc[1, ["status", "download", "reason"]] = rejected
    sources.loc[2, ["status", "reason"]] = ["partial", None]
    write_tables({**tables, "sources": table_frame("sources", sources)}, tmp_path)
    shown = summary(load_settings(), tmp_path)
    assert shown == legacy_summary(read_tables(tmp_path, PUBLISHED_TABLES), tmp_path)
    # a rejected file stays rejected when it was not downloaded again
    assert shown.splitlines()[0].endswith(
        " · rejected 1 · not downloaded again 2 · last good copy kept 1"
    )
    kept = sources.loc[3, "source_file"]
    assert shown.splitlines()[-4:-1] == [
        "  rejected gb-demo-2002.xml: the file is not XML",
        "  partial  se-demo-4004.xml: <NA>",
        f"  kept     {kept}: fetch failed (HTTP 503)",
    ]


def test_every_table_is_written_and_readable(who_arg_run: Run) -> None:
    assert parquet_names(who_arg_run.tables) == sorted(f"{t}.parquet" for t in PUBLISHED_TABLES)
    for table, rows in WHO_ARG_ROWS.items():
        assert len(read(who_arg_run, table)) == rows, table
    quarantine = read(who_arg_run, "quarantine")
    errors = quarantine[quarantine["severity"] == "error"]
    assert list(errors["rule"]) == ["not_xml"]
    assert list(errors["source_file"]) == ["not-xml.xml"]
    warnings = int((quarantine["severity"] == "warning").sum())
    assert f"records not accepted (+ {warnings:,} warnings)" in who_arg_run.out


def test_sources_table_accounts_for_every_record(who_arg_run: Run) -> None:
    sources = read(who_arg_run, "sources").set_index("source_file")
    assert sources.loc["who-arg.xml", "status"] == "ok"
    assert sources.loc["who-arg.xml", "n_accepted"] == 157
    assert sources.loc["not-xml.xml", "status"] == "rejected"
    assert sources.loc["not-xml.xml", "reason"].startswith("the file is not XML")
    assert (sources["n_records"] == sources["n_accepted"] + sources["n_quarantined"]).all()
    activities = read(who_arg_run, "activities")
    assert set(activities["source_file"]) == {"who-arg.xml"}
    assert activities["activity_id"].is_unique


# -- nothing harmonised --------------------------------------------------------------
def test_only_invalid_files_exit_1(tmp_path: Path) -> None:
    run = harmonise(tmp_path / "out", INVALID)
    assert run.code == EXIT_NOTHING_HARMONISED
    assert run.out.splitlines()[0].split()[-1] == "5"  # rejected 5
    sources = read(run, "sources")
    assert len(sources) == 5
    assert set(sources["status"]) == {"rejected"}
    assert sources["reason"].notna().all()
    for name in sorted(p.name for p in INVALID.glob("*.xml")):
        assert f"rejected {name}: " in run.out
    assert parquet_names(run.tables) == sorted(f"{t}.parquet" for t in PUBLISHED_TABLES)


# -- bad arguments ----------------------------------------------------------------------
def test_missing_path_exits_2_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.xml"
    run = harmonise(tmp_path / "out", SMALL_FILE, missing)
    assert run.code == EXIT_BAD_ARGUMENTS
    assert str(missing) in run.err
    assert not (tmp_path / "out").exists()


def test_no_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in ([], ["iati"], ["iati", "harmonise"], ["iati", "harmonise", str(SMALL_FILE)]):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == EXIT_BAD_ARGUMENTS, argv
        assert "usage: cdcompact" in capsys.readouterr().err


def test_folder_without_xml_files_exits_2(tmp_path: Path) -> None:
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "notes.txt").write_text("not an activity file\n", encoding="utf-8")
    (folder / "nested").mkdir()
    (folder / "nested" / "a.xml").write_text("<iati-activities/>", encoding="utf-8")
    run = harmonise(tmp_path / "out", folder)
    assert run.code == EXIT_BAD_ARGUMENTS
    assert "no .xml files" in run.err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("rates.csv", "Date,Rate\n2020-01-31,1.0\n", "missing columns"),
        ("rates.json", "[{", "not valid JSON"),
        ("missing.csv", None, "not found"),
    ],
)
def test_broken_rates_file_exits_2_naming_it(
    name: str, content: str | None, problem: str, tmp_path: Path
) -> None:
    rates = tmp_path / name
    if content is not None:
        rates.write_text(content, encoding="utf-8")
    run = harmonise(tmp_path / "out", SMALL_FILE, "--rates", MONTHLY_CSV, "--rates", rates)
    assert run.code == EXIT_BAD_ARGUMENTS
    assert run.err.startswith("cdcompact: ")
    assert name in run.err
    assert problem in run.err
    assert not (tmp_path / "out").exists()


def test_out_that_is_a_file_exits_2(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.write_text("a file, not a folder\n", encoding="utf-8")
    run = harmonise(out, SMALL_FILE)
    assert run.code == EXIT_BAD_ARGUMENTS
    assert str(out) in run.err


# -- exchange rates ---------------------------------------------------------------------
def test_two_rates_files_convert_xdr_to_usd(tmp_path: Path) -> None:
    run = harmonise(tmp_path / "out", XDR_FILE, "--rates", MONTHLY_CSV, "--rates", SDR_JSON)
    assert run.code == EXIT_OK
    transactions = read(run, "transactions")
    assert list(transactions["currency"]) == ["XDR", "XDR"]
    assert transactions["value_usd"].notna().all()
    assert list(transactions["usd_rate_period"]) == ["2002-05", "2002-12"]
    assert set(transactions["usd_rate_source"]) == {
        "IMF SDR rates (monthly-average-sdr-per-unit.json)"
    }
    # monthly-average-sdr-per-unit.json: 2002-05 USD 0.7830189565 SDR per dollar
    assert transactions["value_usd"].iloc[0] == pytest.approx(325928.24 / 0.7830189565)
    budgets = read(run, "budgets")
    assert budgets["value_usd"].notna().all()
    assert list(budgets["usd_rate_period"]) == ["2002-05", "2002-08"]
    quarantine = read(run, "quarantine")
    assert not quarantine["rule"].isin(["no_exchange_rate", "no_exchange_rates"]).any()


def test_without_the_sdr_file_xdr_values_stay_unconverted(tmp_path: Path) -> None:
    run = harmonise(tmp_path / "out", XDR_FILE, "--rates", MONTHLY_CSV)
    assert run.code == EXIT_OK
    transactions = read(run, "transactions")
    assert transactions["value_usd"].isna().all()
    quarantine = read(run, "quarantine")
    missing = quarantine[quarantine["rule"] == "no_exchange_rate"]
    assert len(missing) == 4  # 2 transactions + 2 budgets
    assert set(missing["severity"]) == {"warning"}


# -- the installed script ---------------------------------------------------------------
def test_installed_script_runs_from_anywhere(tmp_path: Path) -> None:
    assert CDCOMPACT.exists(), f"{CDCOMPACT} is not installed (pip install -e .)"
    out = tmp_path / "out"
    done = subprocess.run(
        [str(CDCOMPACT), "iati", "harmonise", str(SMALL_FILE), str(NOT_XML), "--out", "out"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == EXIT_OK, done.stderr
    assert "rejected not-xml.xml: the file is not XML" in done.stdout
    assert "Traceback" not in done.stderr
    assert parquet_names(out) == sorted(f"{t}.parquet" for t in PUBLISHED_TABLES)
    sources = pd.read_parquet(out / "sources.parquet")
    assert sorted(sources["status"]) == ["ok", "rejected"]


#: What the command line must not import before a subcommand needs it (issue 20: it
#: starts fast); a module or any of its submodules.
HEAVY_MODULES = (
    "dagster",
    "great_expectations",
    "pandas",
    "duckdb",
    "publish.site",
    "publish.profile_html",
    "publish.quality_html",
)


def imported_modules(argv: list[str]) -> set[str]:
    """The modules the ``cdcompact`` entry point imports for ``argv``, in a new interpreter
    (``python -X importtime``)."""
    done = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-c",
            "import sys; from pipelines.cli import main; sys.exit(main(sys.argv[1:]))",
            *argv,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("usage: cdcompact"), done.stdout
    return {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


@pytest.mark.parametrize("argv", [["iati", "harmonise", "--help"], ["check", "--help"]])
def test_the_command_line_starts_without_heavy_imports(argv: list[str]) -> None:
    modules = imported_modules(argv)
    assert "pipelines.cli" in modules
    heavy = sorted(
        module
        for module in modules
        if any(module == name or module.startswith(name + ".") for name in HEAVY_MODULES)
    )
    assert heavy == [], f"`cdcompact {' '.join(argv)}` imports {heavy[:10]}"


def test_publish_without_harmonised_tables_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CDCOMPACT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CDCOMPACT_PUBLISH_DIR", str(tmp_path / "publish"))
    assert main(["publish"]) == 1
    assert "no harmonised tables in" in capsys.readouterr().err
    assert not (tmp_path / "publish").exists()


# -- the help, the global options and bad options (issue 24) ------------------------------
def every_command() -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    return list(commands())


def test_every_command_says_what_it_does_needs_and_writes() -> None:
    for path, parser in every_command():
        name = " ".join(("cdcompact", *path))
        assert parser.description, f"`{name} --help` has no description"
        if not path or parser.get_default("handler") is None:
            continue  # cdcompact itself, iati, schema: a list of commands
        text = help_text(parser)
        for word in ("Needs:", "Writes", "Exit"):
            assert word in text, f"`{name} --help` does not say what it {word.lower()}"


def test_run_help_names_the_dagster_instance_it_needs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["run", "--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "$DAGSTER_HOME, by default <home>/.dagster_home" in text
    assert "the network for the configured IATI sources" in text


def test_the_reference_page_shows_every_commands_help() -> None:
    """docs/command-line.md: a block per command, each the command's --help as it is."""
    shown = documented(PAGE.read_text(encoding="utf-8"))
    for path, parser in every_command():
        command = " ".join(path)
        assert command in shown, f"docs/command-line.md has no help of `cdcompact {command}`"
        assert shown[command] == help_text(parser), (
            f"the help of `cdcompact {command}` in docs/command-line.md is stale: "
            "run .venv/bin/python tools/cli_reference.py"
        )


def test_the_reference_page_names_every_environment_variable() -> None:
    page = PAGE.read_text(encoding="utf-8")
    for name in (*ENVIRONMENT, "CDCOMPACT_HOME", "CDCOMPACT_CONFIG", "DAGSTER_HOME"):
        assert f"`{name}`" in page, name


#: A command line per command, ``{}`` where the global options go in turn.
COMMAND_LINES = {
    "iati harmonise": ["iati", "harmonise", "a.xml", "--out", "out"],
    "download": ["download", "--out", "out"],
    "check": ["check", "report.xlsx"],
    "templates": ["templates", "--out", "out"],
    "publish": ["publish"],
    "run": ["run"],
    "worker": ["worker"],
    "schema dictionary": ["schema", "dictionary"],
}


@pytest.mark.parametrize("command", sorted(COMMAND_LINES))
def test_global_options_work_before_and_after_every_command(command: str) -> None:
    words = COMMAND_LINES[command]
    depth = len(command.split())
    places = {0, len(words)} | set(range(1, depth + 1))  # before, between, after
    for place in sorted(places):
        for options in (["--config", "x.yaml", "--verbose"], ["-v", "--config=x.yaml"]):
            argv = [*words[:place], *options, *words[place:]]
            args = build_parser().parse_args(argv)
            assert (args.config, args.verbose) == (Path("x.yaml"), True), argv
    args = build_parser().parse_args(words)
    assert (args.config, args.verbose) == (None, False)


def test_config_given_before_check_is_the_one_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given before the command, --config used to be replaced by check's own default."""
    missing = tmp_path / "nowhere.yaml"
    report = Path(__file__).resolve().parents[2] / "templates" / "country_report.xlsx"
    assert main(["--config", str(missing), "check", str(report)]) == 2
    assert str(missing) in capsys.readouterr().err


def test_config_after_run_is_read_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    missing = tmp_path / "nowhere.yaml"
    assert main(["run", "--config", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "configuration error, nothing was fetched or published" in err
    assert str(missing) in err


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--frobnicate"], "unknown option --frobnicate"),
        (["run", "--frobnicate"], "unknown option --frobnicate"),
        (["run", "--confg", "x.yaml"], "unknown option --confg (did you mean --config?)"),
        (["--verbse", "publish"], "unknown option --verbse (did you mean --verbose?)"),
        (
            ["iati", "harmonise", "a.xml", "--out", "o", "--wrokers=2"],
            "unknown option --wrokers (did you mean --workers?)",
        ),
        (["schema"], "choose a command: dictionary"),
        (["rnu"], "invalid choice: 'rnu' (choose from"),
        (["rnu"], "; did you mean run?"),
        (["schema", "dictonary"], "; did you mean dictionary?"),
    ],
)
def test_a_bad_option_is_named_with_the_closest_one(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == EXIT_BAD_ARGUMENTS
    err = capsys.readouterr().err
    assert err.startswith("usage: cdcompact")
    assert named in err


# -- the Dagster instance of `cdcompact run` (issue 24) ----------------------------------
def test_without_dagster_home_the_cdcompact_homes_instance_is_made(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    environ: dict[str, str] = {}
    folder, line = ensure_dagster_home(home, environ)
    assert folder == home / ".dagster_home"
    assert environ["DAGSTER_HOME"] == str(folder)
    assert (folder / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"
    assert line == (
        f"cdcompact: Dagster instance {folder} (DAGSTER_HOME is not set: the default of the "
        f"cdcompact home; {home / 'dagster.yaml'} copied in)"
    )
    # the next time: the same folder, its own dagster.yaml kept
    (folder / "dagster.yaml").write_text("telemetry:\n  enabled: true\n", encoding="utf-8")
    again, line = ensure_dagster_home(home, {})
    assert again == folder
    assert (folder / "dagster.yaml").read_text() == "telemetry:\n  enabled: true\n"
    assert line.endswith("(DAGSTER_HOME is not set: the default of the cdcompact home)")
    # DAGSTER_HOME wins
    chosen = tmp_path / "elsewhere"
    folder, line = ensure_dagster_home(home, {"DAGSTER_HOME": str(chosen)})
    assert folder == chosen
    assert (chosen / "dagster.yaml").is_file()
    assert line.startswith(f"cdcompact: Dagster instance {chosen} ($DAGSTER_HOME; ")
