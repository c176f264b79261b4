"""Where runs execute. One interface, ``submit_all(specs) -> iterator of (spec, result)``.

- SerialExecutor: in this process, one run after the other.
- ProcessExecutor: ``jobs`` worker processes (spawned), each limited to cores/jobs torch threads so
  the machine is not oversubscribed; results are identical to a serial run (each run seeds itself).
The driver (benchmarks.suite) owns the results folder: executors only return results.
"""

from __future__ import annotations

import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Iterable, Iterator, Protocol

from benchmarks.config import RunSpec


class Executor(Protocol):
    """Runs specs and yields (spec, result) as each finishes, in any order."""

    def submit_all(self, specs: Iterable[RunSpec]) -> Iterator[tuple[RunSpec, dict]]: ...


def _init_worker(threads: int) -> None:
    import torch

    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)


def _run(spec: RunSpec) -> dict:
    from benchmarks.runner import run_one

    return run_one(spec)


class SerialExecutor:
    """Run in the calling process (the default; easiest to debug)."""

    def submit_all(self, specs: Iterable[RunSpec]) -> Iterator[tuple[RunSpec, dict]]:
        for spec in specs:
            yield spec, _run(spec)


class ProcessExecutor:
    """Run ``jobs`` runs at a time in spawned worker processes."""

    def __init__(self, jobs: int) -> None:
        if jobs < 1:
            raise ValueError("--jobs must be >= 1")
        self.jobs = jobs
        self.threads = max(1, (os.cpu_count() or 1) // jobs)

    def submit_all(self, specs: Iterable[RunSpec]) -> Iterator[tuple[RunSpec, dict]]:
        import multiprocessing as mp

        with ProcessPoolExecutor(
            self.jobs, mp_context=mp.get_context("spawn"), initializer=_init_worker, initargs=(self.threads,)
        ) as pool:
            pending = {pool.submit(_run, s): s for s in specs}
            try:
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        yield pending.pop(fut), fut.result()
            except BaseException:
                for fut in pending:
                    fut.cancel()
                raise


def make_executor(kind: str = "local", jobs: int = 1, **options) -> Executor:
    """The executor for ``--executor`` / ``--jobs``."""
    if kind == "local":
        return SerialExecutor() if jobs == 1 else ProcessExecutor(jobs)
    if kind == "ray":
        from benchmarks.ray_executor import RayExecutor

        return RayExecutor(**options)
    raise ValueError(f"unknown executor {kind!r}; use 'local' or 'ray'")
