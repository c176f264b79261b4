"""Where runs execute. One interface, ``submit_all(specs) -> iterator of (spec, result)``.

- SerialExecutor: in this process, one run after the other.
- ProcessExecutor: ``jobs`` worker processes (spawned).
The driver (benchmarks.engine.suite) owns the results folder: executors only return results.

Determinism: each run seeds itself, so a CPU run gives the same accuracy matrix wherever it executes,
provided it uses the same number of torch intra-op threads (on CUDA, runs are seeded but some backward
kernels accumulate with atomic adds, e.g. embedding gradients, so GPU runs agree statistically, not
bit for bit; CUDA results also differ from CPU ones in the last bits): torch splits float reductions (sums in
matmul backward, ``tensor.sum()``) across threads, and 1 vs 2 threads change parameters in the
last bits (measured here: MLP weights differ by 3e-8 after 50 Adam steps, a small Transformer by
4e-5), which can flip predictions in longer runs. So the thread count per run is an explicit
setting, ``threads`` (CLI ``--threads``, default 1), the same for serial and parallel execution and
independent of ``--jobs`` and of the machine's core count; every results file records it
(``provenance.torch_threads``). ``--jobs N`` with ``threads`` t uses N x t cores (a warning says
when that exceeds the machine). One thread per run and one run per core is also the fastest way
to run a suite of small models (no intra-op synchronisation).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Protocol

from benchmarks.config.spec import RunSpec


class Executor(Protocol):
    """Runs specs and yields (spec, result) as each finishes, in any order."""

    def submit_all(self, specs: Iterable[RunSpec]) -> Iterator[tuple[RunSpec, dict]]: ...


#: torch intra-op threads of one run unless told otherwise (see the module docstring).
DEFAULT_THREADS = 1


def _check_threads(threads: int) -> int:
    if threads < 1:
        raise ValueError("--threads must be >= 1")
    return threads


def _init_worker(threads: int) -> None:
    import torch

    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)


def _run(spec: RunSpec) -> dict:
    from benchmarks.engine.runner import run_one

    return run_one(spec)


def run_with_threads(spec: RunSpec, threads: int) -> dict:
    """``run_one(spec)`` with ``threads`` torch threads; the caller's thread count is restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _run(spec)
    finally:
        torch.set_num_threads(before)


class SerialExecutor:
    """Run in the calling process (the default; easiest to debug).

    Args:
        threads: torch intra-op threads of each run.
    """

    def __init__(self, threads: int = DEFAULT_THREADS) -> None:
        self.threads = _check_threads(threads)

    def submit_all(self, specs: Iterable[RunSpec]) -> Iterator[tuple[RunSpec, dict]]:
        for spec in specs:
            yield spec, run_with_threads(spec, self.threads)


class ProcessExecutor:
    """Run ``jobs`` runs at a time in spawned worker processes.

    Args:
        jobs: worker processes.
        threads: torch intra-op threads of each run (the same as a serial run's, for identical results).
    """

    def __init__(self, jobs: int, threads: int = DEFAULT_THREADS) -> None:
        if jobs < 1:
            raise ValueError("--jobs must be >= 1")
        self.jobs = jobs
        self.threads = _check_threads(threads)
        cores = os.cpu_count() or 1
        if jobs * threads > cores:
            warnings.warn(f"--jobs {jobs} x --threads {threads} > {cores} cores: runs will compete for CPU",
                          stacklevel=2)

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


def make_executor(kind: str = "local", jobs: int = 1, threads: int = DEFAULT_THREADS, **options) -> Executor:
    """The executor for ``--executor`` / ``--jobs`` / ``--threads`` (Ray: ``num_cpus`` per task instead)."""
    if kind == "local":
        return SerialExecutor(threads) if jobs == 1 else ProcessExecutor(jobs, threads)
    if kind == "ray":
        from benchmarks.engine.ray_executor import RayExecutor

        return RayExecutor(**options)
    raise ValueError(f"unknown executor {kind!r}; use 'local' or 'ray'")
