"""Coverage-guided fuzzing of the IATI parser and the submission readers, for a fixed time.

    .venv/bin/python fuzz/run.py [--seconds N] [--only NAME]

``make fuzz`` runs it as ``$(BIN)/python fuzz/run.py --seconds 120`` (target ``fuzz: venv``).

Each harness (a module of ``fuzz/`` with ``test_one_input(data: bytes) -> None``) runs in its
own process under atheris (libFuzzer), the project's modules instrumented for coverage as they
are imported, for ``--seconds`` (``-max_total_time``), with ``-rss_limit_mb=2048`` and
``-timeout=20`` (seconds per input), mutating inputs mostly through their structure (see
:mod:`fuzz.mutators`):

* ``iati_harmonise``: bytes as an IATI activity file through ``harmonise_file``;
* ``submission_read``: bytes as a submission upload through ``read_submission_bytes``, then
  ``check_submission`` and ``harmonise_submission`` when it is read.

Everything lives under ``var/fuzz/<harness>/`` (``var/`` is not versioned): ``seeds/`` is
rebuilt on every run from the shared fixtures, the templates, the demo data and the samples
of ``tests/submission_samples.py``, and so is ``dictionary`` (tokens the mutator inserts:
IATI element and attribute names, submission sheet and column names; see :mod:`fuzz.seeds`);
``corpus/`` keeps the inputs that gave the fuzzer new coverage, and grows from run to run;
crash, timeout and out-of-memory inputs are written beside them (``crash-<sha1>``,
``timeout-<sha1>``, ``oom-<sha1>``), and the fuzzer's output to ``fuzz.log``.

Printed per harness: seconds, executions, corpus size, and the crashes found with their
artifact paths. The exit code is 1 when any harness crashed. libFuzzer stops at the first
crash: fix it, keep it as a regression test in ``tests/unit/test_fuzz_regressions.py`` with
the input inline, and run again.

Other uses:

    fuzz/run.py --only NAME --reproduce FILE...   # run inputs through the harness, no atheris
    fuzz/run.py --only NAME --minimise FILE       # a smaller input failing the same way
                                                  # (for at most --seconds)
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

WORK = ROOT / "var" / "fuzz"
RSS_LIMIT_MB = 2048
TIMEOUT_SECONDS = 20
#: The folder a harness writes its input files to (see fuzz/iati_harmonise.py).
WORK_ENV = "CDCOMPACT_FUZZ_WORK"
#: Artifact file name prefixes that mean the harness failed.
FAILURES = ("crash-", "timeout-", "oom-", "leak-")


@dataclass(frozen=True)
class Harness:
    name: str
    #: Function of :mod:`fuzz.seeds` giving the seed inputs (name -> bytes).
    seeds: str
    #: Function of :mod:`fuzz.seeds` giving tokens for the mutator (libFuzzer ``-dict``).
    dictionary: str
    #: Packages instrumented for coverage when the harness is imported.
    instrument: tuple[str, ...]
    #: Modules the code under test imports only when first used: imported with the harness,
    #: so that they are instrumented too.
    preload: tuple[str, ...] = ()
    #: Longest input the fuzzer makes (libFuzzer ``-max_len``).
    max_len: int = 48 * 1024


HARNESSES = {
    h.name: h
    for h in (
        Harness(
            "iati_harmonise",
            "iati_seeds",
            "iati_dictionary",
            ("assets", "fuzz"),
            max_len=32 * 1024,
        ),
        Harness(
            "submission_read",
            "submission_seeds",
            "submission_dictionary",
            ("assets", "fuzz", "openpyxl", "et_xmlfile", "zipfile", "csv"),
            preload=("openpyxl", "assets.submissions.structure", "zipfile", "csv"),
        ),
    )
}


@dataclass
class Outcome:
    name: str
    seconds: float
    executions: int | None
    #: Inputs libFuzzer's corpus held at the end; files in ``corpus/`` (older, since
    #: reduced, entries stay there too) and how many this run added.
    corpus: int | None
    corpus_files: int
    new_entries: int
    failures: list[Path]
    slow: list[Path]
    returncode: int
    log: Path
    error: str | None = None

    @property
    def failed(self) -> bool:
        return bool(self.failures) or self.returncode != 0


def folder(name: str) -> Path:
    return WORK / name


def harness_function(name: str) -> Callable[[bytes], None]:
    module = importlib.import_module(f"fuzz.{name}")
    function: Callable[[bytes], None] = module.test_one_input
    return function


def write_inputs(harness: Harness) -> tuple[Path, Path]:
    """``var/fuzz/<harness>/seeds`` and ``dictionary``, rebuilt from the fixtures and the
    project's files."""
    seeds_module = importlib.import_module("fuzz.seeds")
    seeds: dict[str, bytes] = getattr(seeds_module, harness.seeds)()
    target = folder(harness.name) / "seeds"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for name, data in seeds.items():
        (target / name).write_bytes(data)
    dictionary = folder(harness.name) / "dictionary"
    tokens = getattr(seeds_module, harness.dictionary)()
    dictionary.write_text(seeds_module.dictionary_text(tokens), encoding="ascii")
    return target, dictionary


def libfuzzer_flags(harness: Harness, seconds: int, dictionary: Path) -> list[str]:
    return [
        f"-dict={dictionary}",
        f"-max_total_time={seconds}",
        f"-rss_limit_mb={RSS_LIMIT_MB}",
        f"-timeout={TIMEOUT_SECONDS}",
        f"-max_len={harness.max_len}",
        f"-artifact_prefix={folder(harness.name)}/",
        "-print_final_stats=1",
    ]


def _artifacts(where: Path) -> set[Path]:
    return {p for p in where.iterdir() if p.is_file() and p.name.startswith((*FAILURES, "slow-"))}


def _files(where: Path) -> int:
    return sum(1 for p in where.iterdir() if p.is_file()) if where.is_dir() else 0


def executions(log: str) -> int | None:
    """Inputs run, from libFuzzer's final statistics or else its last status line."""
    stats = re.findall(r"stat::number_of_executed_units:\s*(\d+)", log)
    if stats:
        return int(stats[-1])
    status = re.findall(r"^#(\d+)\s", log, flags=re.MULTILINE)
    return max(map(int, status)) if status else None


def corpus_in_memory(log: str) -> int | None:
    """Inputs in libFuzzer's corpus at the end (its last ``corp: N/...`` status)."""
    sizes = re.findall(r"\bcorp: (\d+)/", log)
    return int(sizes[-1]) if sizes else None


def python_error(log: str) -> str | None:
    """The last line of the uncaught Python exception atheris printed, if any."""
    block = log.split("=== Uncaught Python exception: ===", 1)
    if len(block) < 2:
        return None
    lines = [line for line in block[1].splitlines() if line.strip()]
    for line in lines:
        if not line.startswith((" ", "Traceback")):
            return line.strip()
    return None


def _child_command(harness: Harness, flags: Sequence[str]) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--child", harness.name, "--", *flags]


def _last_corpus_size(log: Path) -> int | None:
    try:
        return corpus_in_memory(log.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None


def compact_corpus(harness: Harness) -> None:
    """Replace ``corpus/`` by a libFuzzer ``-merge`` of it when it has grown well past what the
    fuzzer keeps: libFuzzer leaves the entries it later reduced or found redundant on disk,
    and runs every file of the corpus before it mutates anything, so a swollen corpus would
    eat the time budget of every run."""
    work = folder(harness.name)
    corpus = work / "corpus"
    kept = _last_corpus_size(work / "fuzz.log")
    files = _files(corpus)
    if kept is None or files <= max(2 * kept, kept + 200):
        return
    merged, old = work / "corpus.merged", work / "corpus.old"
    for stale in (merged, old):
        shutil.rmtree(stale, ignore_errors=True)
    merged.mkdir()
    flags = [
        "-merge=1",
        f"-rss_limit_mb={RSS_LIMIT_MB}",
        f"-timeout={TIMEOUT_SECONDS}",
        f"-max_len={harness.max_len}",
        str(merged),
        str(corpus),
    ]
    print(f"{harness.name}: compacting the corpus ({files} files, {kept} kept last run)")
    with (work / "merge.log").open("wb") as output:
        done = subprocess.run(
            _child_command(harness, flags),
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, WORK_ENV: str(work / "work")},
            check=False,
        )
    if done.returncode == 0 and _files(merged):
        corpus.rename(old)
        merged.rename(corpus)
        shutil.rmtree(old, ignore_errors=True)
    else:
        shutil.rmtree(merged, ignore_errors=True)
        print(f"  merge failed (exit code {done.returncode}); see {work / 'merge.log'}")


def fuzz(harness: Harness, seconds: int) -> Outcome:
    """One harness under atheris in its own process for ``seconds``."""
    work = folder(harness.name)
    corpus = work / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    compact_corpus(harness)
    seeds, dictionary = write_inputs(harness)
    before = _artifacts(work)
    corpus_before = _files(corpus)
    log = work / "fuzz.log"
    command = _child_command(
        harness, [*libfuzzer_flags(harness, seconds, dictionary), str(corpus), str(seeds)]
    )
    began = time.monotonic()
    error = None
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, WORK_ENV: str(work / "work")},
        )
        try:
            # libFuzzer stops itself; the margin covers loading the seeds and one slow input.
            returncode = process.wait(timeout=seconds + 10 * TIMEOUT_SECONDS + 120)
        except subprocess.TimeoutExpired:
            process.kill()
            returncode = process.wait()
            error = "the fuzzer did not stop in time and was killed"
    elapsed = time.monotonic() - began
    text = log.read_text(encoding="utf-8", errors="replace")
    new = sorted(_artifacts(work) - before)
    failures = [p for p in new if p.name.startswith(FAILURES)]
    if failures or returncode:
        error = error or python_error(text)
    return Outcome(
        harness.name,
        elapsed,
        executions(text),
        corpus_in_memory(text),
        _files(corpus),
        _files(corpus) - corpus_before,
        failures,
        [p for p in new if p.name.startswith("slow-")],
        returncode,
        log,
        error,
    )


def report(outcome: Outcome) -> None:
    execs = "?" if outcome.executions is None else f"{outcome.executions:,}"
    rate = (
        f" ({outcome.executions / outcome.seconds:,.1f}/s)"
        if outcome.executions and outcome.seconds
        else ""
    )
    print(
        f"{outcome.name}: {outcome.seconds:.0f} s, {execs} executions{rate}, "
        f"corpus {'?' if outcome.corpus is None else outcome.corpus} inputs "
        f"({outcome.corpus_files} files in corpus/, +{outcome.new_entries}), "
        f"crashes {len(outcome.failures)}",
        flush=True,
    )
    for path in outcome.failures:
        print(f"  CRASH {path.relative_to(ROOT)}")
    for path in outcome.slow:
        print(f"  slow input (not a failure) {path.relative_to(ROOT)}")
    if outcome.error:
        print(f"  {outcome.error}")
    if outcome.failed:
        print(f"  exit code {outcome.returncode}; fuzzer output in {outcome.log.relative_to(ROOT)}")


def child(name: str, flags: Sequence[str]) -> None:
    """In the fuzzing process: instrument the project's modules, then hand over to libFuzzer."""
    import atheris

    harness = HARNESSES[name]
    # Imported first, so that the mutator's own code is not instrumented.
    mutator = importlib.import_module("fuzz.mutators").MUTATORS.get(name)
    with atheris.instrument_imports(include=list(harness.instrument)):
        function = harness_function(name)
        for module in harness.preload:
            importlib.import_module(module)
    # libFuzzer's -merge runs argv[0] plus flags through the shell: make it this command.
    argv0 = shlex.join([sys.executable, str(Path(__file__).resolve()), "--child", name, "--"])
    if mutator is None:
        atheris.Setup([argv0, *flags], function)
    else:
        atheris.Setup([argv0, *flags], function, custom_mutator=mutator)
    atheris.Fuzz()


def reproduce(name: str, paths: Sequence[Path]) -> int:
    """Run inputs through a harness directly (no atheris); 1 if any raised."""
    function = harness_function(name)
    failed = 0
    for path in paths:
        try:
            function(path.read_bytes())
        except Exception:
            failed += 1
            print(f"{path}: FAILS")
            traceback.print_exc()
        else:
            print(f"{path}: ok")
    return 1 if failed else 0


def failure(function: Callable[[bytes], None], data: bytes) -> str | None:
    """How ``function`` fails on ``data``: exception type and the innermost frame; None: ok."""
    try:
        function(data)
    except Exception as exc:
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        return f"{type(exc).__name__} at {frame.filename}:{frame.lineno}"
    return None


def minimise(name: str, path: Path, seconds: int) -> int:
    """A smaller input failing the same way (same exception, same place), written beside
    ``path`` as ``<path>.min``: chunks of bytes are dropped while the failure stays.
    No atheris: unlike libFuzzer's ``-minimize_crash``, which keeps any crash, this keeps
    the failure the input was found with."""
    function = harness_function(name)
    data = path.read_bytes()
    wanted = failure(function, data)
    if wanted is None:
        print(f"{path}: does not fail")
        return 1
    deadline = time.monotonic() + seconds
    chunk = max(1, len(data) // 2)
    while chunk >= 1 and time.monotonic() < deadline:
        at, dropped = 0, False
        while at < len(data) and time.monotonic() < deadline:
            candidate = data[:at] + data[at + chunk :]
            if candidate and failure(function, candidate) == wanted:
                data, dropped = candidate, True
            else:
                at += chunk
        if not dropped:
            chunk //= 2
    target = path.with_name(path.name + ".min")
    target.write_bytes(data)
    print(f"{wanted}\n{path.stat().st_size} -> {len(data)} bytes: {target}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=120, help="fuzzing time per harness")
    parser.add_argument("--only", choices=sorted(HARNESSES), help="run this harness alone")
    parser.add_argument("--reproduce", type=Path, nargs="+", metavar="FILE")
    parser.add_argument("--minimise", type=Path, metavar="FILE")
    parser.add_argument("--child", choices=sorted(HARNESSES), help=argparse.SUPPRESS)
    parser.add_argument("flags", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.flags)
        return 0
    if args.flags:
        parser.error(f"unrecognised arguments: {' '.join(args.flags)}")
    if args.seconds < 1:
        parser.error("--seconds must be at least 1")
    if (args.reproduce or args.minimise) and not args.only:
        parser.error("--reproduce and --minimise need --only NAME")
    if args.reproduce:
        return reproduce(args.only, args.reproduce)
    if args.minimise:
        return minimise(args.only, args.minimise, args.seconds)
    names = [args.only] if args.only else list(HARNESSES)
    print(f"fuzzing {', '.join(names)} for {args.seconds} s each (output under var/fuzz/)")
    failed = False
    for name in names:
        outcome = fuzz(HARNESSES[name], args.seconds)
        report(outcome)
        failed = failed or outcome.failed
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
