"""The ``cdcompact`` command line.

``cdcompact iati harmonise PATH... --out DIR`` harmonises IATI files without
Dagster; ``cdcompact run`` runs the night once on the Dagster instance in
$DAGSTER_HOME (default: .dagster_home of the cdcompact home); ``cdcompact schema
dictionary`` regenerates the data dictionary from schema/. ``--config`` and
``--verbose`` go before or after any command. docs/command-line.md holds every
command's help (tools/cli_reference.py writes it).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

if TYPE_CHECKING:
    from assets.settings import Settings

# Every subcommand imports what it needs when it runs: building the parser (``--help``)
# imports the standard library alone (no pandas, DuckDB, Dagster, Great Expectations or
# page renderers; tests/unit/test_cli.py checks it).

#: Exit codes of ``cdcompact iati harmonise``.
EXIT_OK, EXIT_NOTHING_HARMONISED, EXIT_BAD_ARGUMENTS = 0, 1, 2


class _Progress:
    """A one-line progress bar on a terminal; silent when output is not one."""

    def __init__(self, stream: TextIO, enabled: bool) -> None:
        self.stream = stream
        self.enabled = enabled

    def __call__(self, index: int, total: int, path: Path) -> None:
        if not self.enabled:
            return
        width = 30
        done = int(width * (index - 1) / max(total, 1))
        name = path.name if len(path.name) <= 40 else path.name[:37] + "..."
        self.stream.write(f"\r[{'#' * done}{'.' * (width - done)}] {index}/{total} {name:<40}")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * 90 + "\r")
            self.stream.flush()


def _settings(args: argparse.Namespace) -> Settings | None:
    """The configuration, or None after printing why it cannot be read."""
    from assets.settings import ConfigError, load_settings

    try:
        return load_settings(args.config)
    except ConfigError as exc:
        print(f"cdcompact: {exc}", file=sys.stderr)
        return None


def _harmonise(args: argparse.Namespace) -> int:
    from assets.harmonise.combined import combine_inputs
    from assets.harmonise.store import copy_table
    from assets.iati.codelists import CodelistError, load_codelists
    from assets.iati.conformance import IatiSchemas
    from assets.iati.harmonise import HarmoniseOptions, discover_files, prepare_paths
    from assets.iati.rates import RatesError, load_exchange_rates
    from assets.metrics.stage import PUBLISHED_TABLES, add_metrics, table_order
    from assets.warehouse import connection
    from publish.summary import summary

    settings = _settings(args)
    if settings is None:
        return EXIT_BAD_ARGUMENTS
    if args.out.exists() and not args.out.is_dir():
        print(f"cdcompact: --out {args.out} exists and is not a folder", file=sys.stderr)
        return EXIT_BAD_ARGUMENTS
    missing = [p for p in args.paths if not p.exists()]
    if missing:
        print(f"cdcompact: no such file or folder: {', '.join(map(str, missing))}", file=sys.stderr)
        return EXIT_BAD_ARGUMENTS
    if not discover_files(args.paths):
        print("cdcompact: no .xml files in the given folders", file=sys.stderr)
        return EXIT_BAD_ARGUMENTS
    if args.workers is not None and args.workers < 1:
        print(f"cdcompact: --workers must be 1 or more, not {args.workers}", file=sys.stderr)
        return EXIT_BAD_ARGUMENTS
    workers = args.workers or settings.workers
    rate_files = list(args.rates or settings.exchange_rate_files)
    try:
        rates = load_exchange_rates(rate_files) if rate_files else None
    except RatesError as exc:
        print(f"cdcompact: {exc}", file=sys.stderr)
        return EXIT_BAD_ARGUMENTS
    codelists_dir = args.codelists or settings.codelists_dir
    try:
        codelists = load_codelists(codelists_dir) if codelists_dir else None
    except CodelistError as exc:
        print(f"cdcompact: {exc}", file=sys.stderr)
        return EXIT_BAD_ARGUMENTS
    schemas_dir = args.schemas or settings.iati_schemas_dir
    if schemas_dir is not None and not schemas_dir.is_dir():
        print(f"cdcompact: IATI schemas folder {schemas_dir} does not exist", file=sys.stderr)
        return EXIT_BAD_ARGUMENTS
    schemas = IatiSchemas.from_dir(schemas_dir) if schemas_dir else None
    options = HarmoniseOptions.from_settings(settings, rates, codelists, schemas)
    progress = _Progress(sys.stderr, sys.stderr.isatty() and not args.quiet)
    with tempfile.TemporaryDirectory(prefix="cdcompact-harmonise-") as work:
        try:
            inputs = prepare_paths(args.paths, options, Path(work), workers, progress)
        finally:
            progress.close()
        # as the nightly job's iati_transform: one DuckDB connection from the extracted
        # files to every published table, each written by DuckDB's COPY
        with connection(settings) as con:
            combine_inputs(con, inputs, options.transform_options())
            add_metrics(con, settings.metrics)
            for table in PUBLISHED_TABLES:
                order = table_order(con, table)
                copy_table(con, table, f"c_{table}", args.out / f"{table}.parquet", order)
            found = con.execute(
                "SELECT count(*) FROM c_sources WHERE status IN ('ok', 'partial')"
            ).fetchone()
    harmonised = int(found[0]) if found else 0
    print(summary(settings, args.out))
    return EXIT_OK if harmonised else EXIT_NOTHING_HARMONISED


def _run(args: argparse.Namespace) -> int:
    from assets.settings import project_root
    from pipelines.dagster_home import ensure_dagster_home

    # said before Dagster is imported and the configuration read (seconds)
    _, line = ensure_dagster_home(project_root())
    print(line, flush=True)
    from pipelines.nightly import run_nightly

    return run_nightly(config_file=args.config, verbose=args.verbose, announce_home=False)


def _worker(args: argparse.Namespace) -> int:
    """A Celery worker for the steps of the night's runs (``run.executor: celery``): it
    reads the configured broker and queue, one step at a time per process."""
    import shutil

    from assets.settings import ConfigError, load_settings

    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"cdcompact: configuration error:\n{exc}", file=sys.stderr)
        return 2
    celery = shutil.which("celery", path=str(Path(sys.executable).parent)) or "celery"
    command = [
        celery,
        "-A",
        "pipelines.celery_app",
        "worker",
        "--queues",
        settings.executor.queue,
        "--concurrency",
        str(args.concurrency),
        "--prefetch-multiplier=1",
        "--loglevel",
        "INFO",
        "--hostname",
        f"{args.name}@%h",
    ]
    if args.config:  # the app and every step it runs read the same configuration
        os.environ["CDCOMPACT_CONFIG"] = str(Path(args.config).resolve())
    sys.stdout.flush()
    os.execv(command[0], command)  # noqa: S606 (the worker replaces this process)


def _download(args: argparse.Namespace) -> int:
    from publish.download import download_main

    settings = _settings(args)
    if settings is None:
        return EXIT_BAD_ARGUMENTS
    publish = settings.publish
    default = (
        f"s3://{publish.s3_bucket}/{publish.s3_prefix}"
        if publish.target == "s3" and publish.s3_bucket
        else str(publish.local_dir)
    )
    return download_main(args, default_source=default, endpoint_url=publish.s3_endpoint_url)


def _check(args: argparse.Namespace) -> int:
    from assets.submissions.check import check_main

    return check_main(args)


def _templates(args: argparse.Namespace) -> int:
    from assets.submissions.templates import templates_main

    return templates_main(args)


def _publish(args: argparse.Namespace) -> int:
    from assets.storage.targets import TargetError
    from publish.release import ReleaseError
    from publish.stage import publish_tables

    settings = _settings(args)
    if settings is None:
        return EXIT_BAD_ARGUMENTS
    try:
        outcome = publish_tables(settings, run_id=None)
    except (ReleaseError, TargetError, FileNotFoundError) as exc:
        print(f"cdcompact: {exc}", file=sys.stderr)
        return 1
    if outcome.status == "published":
        print(f"published release {outcome.version}: {outcome.location}")
    else:
        print(f"no change since release {outcome.version}: nothing published")
    return 0


def _dictionary(args: argparse.Namespace) -> int:
    from assets.settings import project_root
    from publish.dictionary import check_data_dictionary, write_data_dictionary

    root = project_root()
    out = root / "docs" / "data-dictionary.md"
    if args.check:
        if check_data_dictionary(root / "schema", out):
            print(f"{out} is up to date")
            return 0
        print(f"{out} is stale: run `make dictionary`", file=sys.stderr)
        return 1
    changed = write_data_dictionary(root / "schema", out)
    print(f"{out} {'written' if changed else 'already up to date'}")
    return 0


def add_download_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``cdcompact download`` (read by :func:`publish.download.download_main`)."""
    parser.add_argument("--version", help="the release to fetch (default: the latest)")
    parser.add_argument("--out", type=Path, required=True, help="folder to write <version>/ into")
    parser.add_argument(
        "--from",
        dest="source",
        metavar="URL_OR_PATH",
        help="folder, file://, http(s):// or s3:// location of catalog.json "
        "(default: the configured publish folder)",
    )


def add_check_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``cdcompact check`` (read by
    :func:`assets.submissions.check.check_main`; ``--config`` is a global option)."""
    parser.add_argument(
        "file", type=Path, help="the submission: .xlsx, a .zip or folder of CSV files, or .json"
    )
    parser.add_argument(
        "--iati-ids",
        type=Path,
        help="text file of IATI activity identifiers (one a line) to check `in_iati` "
        "against; default: the harmonised activities table when there is one",
    )


def add_templates_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``cdcompact templates`` (read by
    :func:`assets.submissions.templates.templates_main`)."""
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="folder for the templates (XLSX workbooks, CSV folders, README.md)",
    )


#: The options every command takes, before or after its name: (flags, argparse keywords).
#: Their default is set in :func:`main`, not here: a subcommand's parser would otherwise
#: overwrite a value given before the subcommand with its own default.
GLOBAL_OPTIONS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (
        ("--config",),
        {
            "type": Path,
            "metavar": "FILE",
            "help": "configuration file (default: $CDCOMPACT_CONFIG, else config/compact.yaml "
            "of the cdcompact home)",
        },
    ),
    (
        ("-v", "--verbose"),
        {
            "action": "store_true",
            "help": "also show the log lines of the libraries (for `run`: Dagster's own, "
            "with run ids and every event)",
        },
    ),
)
GLOBAL_DEFAULTS: dict[str, Any] = {"config": None, "verbose": False}

EPILOG = """\
environment:
  CDCOMPACT_HOME    the folder holding config/, schema/, demo/ and dagster.yaml
                    (default: the checkout cdcompact is installed from)
  CDCOMPACT_CONFIG  the configuration file when --config is not given
  CDCOMPACT_*       settings over the configuration file (docs/command-line.md)
  DAGSTER_HOME      the Dagster instance of `run` (default: <home>/.dagster_home)

exit codes: 0 done, 1 the command ran and found a failure (each command's help
says which), 2 bad arguments or configuration."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors name an unknown option and the closest known one."""

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        command = _leaf(self, parsed)
        if extras:
            command.error(_unrecognized(command, extras))
        if not hasattr(parsed, "handler"):  # a command with subcommands, without one
            command.error(f"choose a command: {', '.join(_subcommands(command))}")
        for name, default in GLOBAL_DEFAULTS.items():
            if not hasattr(parsed, name):
                setattr(parsed, name, default)
        return parsed

    def error(self, message: str) -> NoReturn:
        """argparse's message, with the closest command to a misspelt one."""
        import difflib

        wrong = re.search(r"invalid choice: '([^']*)'", message)
        if wrong:
            close = difflib.get_close_matches(wrong[1], _subcommands(self), n=1, cutoff=0.6)
            if close:
                message += f"; did you mean {close[0]}?"
        super().error(message)


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _subcommands(parser: argparse.ArgumentParser) -> list[str]:
    return list(_subparsers(parser))


def _leaf(parser: argparse.ArgumentParser, parsed: argparse.Namespace) -> argparse.ArgumentParser:
    """The parser of the (sub)command that ``parsed`` chose."""
    for dest in ("command", "iati_command", "schema_command"):
        name = getattr(parsed, dest, None)
        children = _subparsers(parser)
        if name in children:
            parser = children[name]
    return parser


def _unrecognized(parser: argparse.ArgumentParser, extras: list[str]) -> str:
    import difflib

    known = [o for action in parser._actions for o in action.option_strings]
    problems = []
    for extra in extras:
        if extra.startswith("-"):
            option = extra.split("=", 1)[0]
            close = difflib.get_close_matches(option, known, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(f"unknown option {option}{hint}")
        else:
            problems.append(f"unexpected argument {extra!r}")
    return "; ".join(problems)


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    for flags, keywords in GLOBAL_OPTIONS:
        common.add_argument(*flags, default=argparse.SUPPRESS, **keywords)
    parents = [common]
    parser = _Parser(
        prog="cdcompact",
        description="Open data pipeline of a Capacity Development Compact: harmonise IATI "
        "files,\ncheck submissions, run the night (Dagster) and publish releases.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=parents,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(
        group: argparse._SubParsersAction[_Parser],
        name: str,
        summary: str,
        description: str,
    ) -> _Parser:
        sub: _Parser = group.add_parser(
            name, help=summary, description=description, parents=parents
        )
        return sub

    iati = command(
        commands,
        "iati",
        "IATI activity files, without Dagster",
        "Work on IATI activity files on this machine, without Dagster: see `cdcompact iati "
        "harmonise --help`.",
    )
    iati_commands = iati.add_subparsers(dest="iati_command", metavar="COMMAND")
    harmonise = command(
        iati_commands,
        "harmonise",
        "harmonise IATI files into Parquet tables",
        "Harmonise IATI activity files (1.0x-2.03) into the CD results tables. Needs: the "
        "files; the configuration for the defaults of --rates, --codelists, --schemas and "
        "--workers; no network, no Dagster. Writes: one Parquet file per table in --out. "
        "Exit 0 when at least one file was harmonised, 1 when none was, 2 on bad arguments.",
    )
    harmonise.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="IATI activity files, or folders of *.xml files",
    )
    harmonise.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="folder for <table>.parquet"
    )
    harmonise.add_argument(
        "--rates",
        type=Path,
        action="append",
        default=None,
        metavar="FILE",
        help="exchange rates (IMF CSV or SDR-per-unit JSON); repeat for "
        "several, earlier ones win; default from config",
    )
    harmonise.add_argument(
        "--codelists",
        type=Path,
        default=None,
        metavar="DIR",
        help="IATI codelists folder; default from config",
    )
    harmonise.add_argument(
        "--schemas",
        type=Path,
        default=None,
        metavar="DIR",
        help="official IATI schemas folder (<version>/iati-activities-schema.xsd) to check "
        "every file against; default from config (reference.iati_schemas, when a folder)",
    )
    harmonise.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="processes that harmonise files side by side; default from config "
        "(run.workers: 0 = one per CPU)",
    )
    harmonise.add_argument("--quiet", action="store_true", help="no progress bar")
    harmonise.set_defaults(handler=_harmonise)

    download = command(
        commands,
        "download",
        "fetch a published release and verify every checksum",
        "Fetch a release (default: the latest) from a folder, an http(s):// URL or "
        "s3://bucket/prefix and verify the sha256 of every file. Needs: the network for a "
        "URL (S3: AWS credentials in the environment); the configuration for the default "
        "--from (publish.local_dir, or publish.s3). Writes: --out/<version>/. Exit 0 when "
        "verified, 1 when a download or checksum failed, 2 on bad arguments.",
    )
    add_download_arguments(download)
    download.set_defaults(handler=_download)

    check = command(
        commands,
        "check",
        "check a country report or partner submission before sending it",
        "Check a submission file (XLSX, a folder or ZIP of CSV files, JSON) the way the "
        "pipeline will: every problem in plain language with sheet, row, column and the fix. "
        "Needs: the file; the configuration (countries, codelists; the harmonised "
        "activities table of storage.data_dir, if any, for `in_iati`); no network, no "
        "Dagster. Writes nothing. Exit 0 when there are no errors, 1 when there are, 2 when "
        "the file cannot be read as a submission.",
    )
    add_check_arguments(check)
    check.set_defaults(handler=_check)

    templates = command(
        commands,
        "templates",
        "write the blank submission templates (XLSX and CSV)",
        "Write the blank templates that countries and partners fill in: an XLSX workbook "
        "and a folder of CSV files per kind of submission, and a README.md. Needs: the "
        "configuration (countries, codelists for the drop-down lists); no network. Writes: "
        "--out. Exit 0 when written, 2 on bad arguments or configuration.",
    )
    add_templates_arguments(templates)
    templates.set_defaults(handler=_templates)

    publish = command(
        commands,
        "publish",
        "publish the current harmonised tables as a release (if changed)",
        "Publish the harmonised tables of the last run (storage.data_dir/tables) as a new "
        "release, unless nothing changed since the latest one. Needs: the configuration and "
        "those tables (from `cdcompact run`); no Dagster; the network and AWS credentials "
        "when publish.target is s3. Writes: the release, its pages and catalog.json to "
        "publish.local_dir or the S3 bucket. Exit 0 when published or unchanged, 1 when "
        "publishing failed, 2 on bad configuration.",
    )
    publish.set_defaults(handler=_publish)

    run = command(
        commands,
        "run",
        "run the night once now: submissions, fetch, tables, checks, release (Dagster)",
        "Run the night once, now, and wait for it: the new submissions of the inbox are "
        "checked (a run of submission_job each), then one run of nightly_job fetches the "
        "IATI datasets, extracts what changed, builds and checks the tables and publishes a "
        "release when they changed. Progress is shown a step at a time. Needs: the "
        "configuration; a Dagster instance: $DAGSTER_HOME, by default <home>/.dagster_home "
        "(created with the home's dagster.yaml when missing); the network for the "
        "configured IATI sources and reference downloads (the demo needs none); Celery "
        "workers when run.executor is celery. Writes: storage.data_dir, the inbox, the "
        "release (publish.local_dir or S3) and the runs in the Dagster instance. Exit 0 "
        "when every run succeeded, 1 when one failed, 2 on bad configuration.",
    )
    run.set_defaults(handler=_run)

    worker = command(
        commands,
        "worker",
        "start a Celery worker for the night's steps (run.executor: celery)",
        "Start a Celery worker that executes the steps of the night's runs, one step at a "
        "time per process, until stopped. Needs: the configuration (run.celery's broker "
        "and queue, reachable over the network) and the same data folders as `cdcompact "
        "run`. Writes: what the steps write (storage.data_dir). Exit 2 on bad "
        "configuration; otherwise Celery's.",
    )
    worker.add_argument(
        "--concurrency", type=int, default=1, help="steps this worker runs at once (default 1)"
    )
    worker.add_argument(
        "--name", default="cdcompact", help="the worker's name, before @host (default cdcompact)"
    )
    worker.set_defaults(handler=_worker)

    schema = command(
        commands,
        "schema",
        "the CD results schema",
        "Work on the CD results schema (schema/ of the cdcompact home): see `cdcompact "
        "schema dictionary --help`.",
    )
    schema_commands = schema.add_subparsers(dest="schema_command", metavar="COMMAND")
    dictionary = command(
        schema_commands,
        "dictionary",
        "regenerate docs/data-dictionary.md from schema/",
        "Regenerate the data dictionary, docs/data-dictionary.md, from the table schemas of "
        "schema/ (both in the cdcompact home). Needs: nothing else; no configuration, no "
        "network. Writes: docs/data-dictionary.md (nothing with --check). Exit 0 when "
        "written or up to date, 1 with --check when it is stale.",
    )
    dictionary.add_argument(
        "--check", action="store_true", help="only check that it is up to date (exit 1 if stale)"
    )
    dictionary.set_defaults(handler=_dictionary)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose:
        import logging

        logging.basicConfig(level=logging.INFO, format="%(name)s %(levelname)s: %(message)s")
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
