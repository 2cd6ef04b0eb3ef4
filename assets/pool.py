"""A process pool that survives a worker dying.

When a worker process dies (killed, out of memory, a crash in a C library), Python's
``ProcessPoolExecutor`` fails every job it had not finished with ``BrokenProcessPool``.
:func:`map_in_processes` gives each of those jobs another chance: the unfinished jobs
run again in a fresh pool, and if a worker dies again, the rest run one process each,
so that only a job that kills its own process is reported, as :class:`WorkerDied`.
Everything else finishes.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, TypeVar

J = TypeVar("J")
R = TypeVar("R")

#: What a job that killed its process is told.
DIED = (
    "the worker process stopped abruptly while on it (killed, out of memory, or a crash); "
    "it was run again in a process of its own and stopped again"
)
#: Isolated jobs whose processes die one after another before the rest are given up.
GIVE_UP_AFTER = 3
GAVE_UP = (
    "not run: {n} worker processes in a row stopped abruptly (they may not start at all; "
    "see the log of the first)"
)


@dataclass(frozen=True)
class WorkerDied:
    """A job whose worker process died (in the place of its result)."""

    message: str


def map_in_processes(
    function: Callable[[J], R],
    jobs: Sequence[J],
    workers: int,
    *,
    initializer: Callable[..., object] | None = None,
    initargs: tuple[Any, ...] = (),
    on_restart: Callable[[int], None] | None = None,
) -> Iterator[tuple[int, R | WorkerDied]]:
    """``(index, result)`` of each job, in job order, from ``workers`` spawned processes.

    Jobs are handed out one at a time. An exception raised by ``function`` is raised here
    as from ``map``; only a dying process is caught. ``on_restart(n)`` is told each time
    ``n`` unfinished jobs are run again after a worker died.
    """
    if not jobs:
        return
    context = multiprocessing.get_context("spawn")
    results: dict[int, R | WorkerDied] = {}
    shown = 0

    def ready() -> Iterator[tuple[int, R | WorkerDied]]:
        nonlocal shown
        while shown in results:
            yield shown, results[shown]
            shown += 1

    pending = list(range(len(jobs)))
    for _attempt in range(2):
        broken = False
        pool = ProcessPoolExecutor(
            min(workers, len(pending)),
            mp_context=context,
            initializer=initializer,
            initargs=initargs,
        )
        try:
            futures: dict[int, Future[R]] = {}
            for index in pending:
                try:
                    futures[index] = pool.submit(function, jobs[index])
                except BrokenProcessPool:  # a worker died while jobs were still handed out
                    broken = True
                    break
            for index, future in futures.items():
                try:
                    results[index] = future.result()
                except BrokenProcessPool:
                    broken = True
                    continue
                yield from ready()
        finally:
            if broken:
                kill_workers(pool)
            pool.shutdown(wait=True, cancel_futures=True)
        pending = [i for i in pending if i not in results]
        if not broken or not pending:
            break
        if on_restart is not None:
            on_restart(len(pending))
    died_in_a_row = 0
    for index in pending:
        if died_in_a_row >= GIVE_UP_AFTER:
            results[index] = WorkerDied(GAVE_UP.format(n=died_in_a_row))
            yield from ready()
            continue
        with ProcessPoolExecutor(
            1, mp_context=context, initializer=initializer, initargs=initargs
        ) as single:
            try:
                results[index] = single.submit(function, jobs[index]).result()
                died_in_a_row = 0
            except BrokenProcessPool:
                results[index] = WorkerDied(DIED)
                died_in_a_row += 1
        yield from ready()
    yield from ready()


def kill_workers(pool: ProcessPoolExecutor) -> None:
    """Stop every process of a broken pool. Python stops them itself, except a worker it
    started while another was dying: that one waits for work forever, and shutting the
    pool down waited for it (a night hung so, after a worker was killed)."""
    processes: dict[int, Any] = getattr(pool, "_processes", None) or {}
    for process in list(processes.values()):
        if process.is_alive():
            process.kill()
