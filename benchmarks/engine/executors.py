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
import signal
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol

from benchmarks.config.spec import RunSpec
from benchmarks.engine.threads import limit_threads


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
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle: it stops the workers
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)  # libraries loaded later read these
    limit_threads(threads)


def _run(spec: RunSpec) -> dict:
    from benchmarks.engine.runner import run_one

    return run_one(spec)


def run_with_threads(spec: RunSpec, threads: int) -> dict:
    """``run_one(spec)`` with ``threads`` torch (and BLAS) threads; the caller's counts are restored after."""
    restore = limit_threads(threads)
    try:
        return _run(spec)
    finally:
        restore()


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


class WorkerDiedError(RuntimeError):
    """A worker process died while it ran a run (killed by a signal, the out-of-memory killer, a crash)."""


class ProcessExecutor:
    """Run ``jobs`` runs at a time in spawned worker processes.

    Specs are taken from the iterable only when a worker is free, so a run is claimed (see
    benchmarks.engine.claims) just before it starts. When a worker process dies, every run then in flight
    is retried in a fresh pool, up to ``max_retries`` times (which run killed the pool cannot be told), and
    then recorded as failed with ``WorkerDiedError``; finished results are never affected. Workers ignore
    SIGINT (Ctrl-C reaches the whole process group): the driver stops them when it is interrupted.

    Args:
        jobs: worker processes.
        threads: torch intra-op threads of each run (the same as a serial run's, for identical results).
        max_retries: how often a run whose worker died is run again.
        run_fn: what a worker executes for a spec (default benchmarks.engine.runner.run_one); it must be
            picklable (a module-level function, or a functools.partial of one).
    """

    def __init__(self, jobs: int, threads: int = DEFAULT_THREADS, max_retries: int = 1,
                 run_fn: Callable[[RunSpec], dict] | None = None) -> None:
        if jobs < 1:
            raise ValueError("--jobs must be >= 1")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.jobs, self.max_retries, self.run_fn = jobs, max_retries, run_fn
        self.threads = _check_threads(threads)
        cores = os.cpu_count() or 1
        if jobs * threads > cores:
            warnings.warn(f"--jobs {jobs} x --threads {threads} > {cores} cores: runs will compete for CPU",
                          stacklevel=2)

    def _pool(self) -> ProcessPoolExecutor:
        import multiprocessing as mp

        return ProcessPoolExecutor(self.jobs, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                                   initargs=(self.threads,))

    def submit_all(self, specs: Iterable[RunSpec]) -> Iterator[tuple[RunSpec, dict]]:
        source, retry = iter(specs), []  # retry: runs whose worker died, run again first
        attempts: dict[str, int] = {}
        pool, pending = self._pool(), {}
        try:
            while True:
                while len(pending) < self.jobs and (spec := retry.pop(0) if retry else next(source, None)):
                    attempts[spec.run_id] = attempts.get(spec.run_id, 0) + 1
                    pending[pool.submit(self.run_fn or _run, spec)] = spec
                if not pending:
                    pool.shutdown(wait=True)  # all done: let the idle workers exit
                    return
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                broken = False
                for fut in done:
                    spec = pending.pop(fut)
                    try:
                        result = fut.result()
                    except BrokenProcessPool:
                        broken = True
                        retry.append(spec)
                        continue
                    yield spec, result
                if broken:  # every run in flight is lost with the pool: a fresh pool runs them again
                    for fut, spec in pending.items():
                        if fut.done() and not fut.cancelled() and fut.exception() is None:
                            yield spec, fut.result()  # finished just before the pool broke
                        else:
                            retry.append(spec)
                    pending = {}
                    _stop(pool)
                    pool = self._pool()
                    for spec in [s for s in retry if attempts[s.run_id] > self.max_retries]:
                        retry.remove(spec)
                        yield spec, _died(spec, attempts[spec.run_id])
        finally:
            _stop(pool)


def _died(spec: RunSpec, attempts: int) -> dict:
    """The failed result of a run whose worker died on every attempt."""
    from benchmarks.engine.runner import failed_result

    return failed_result(spec, WorkerDiedError(
        f"the worker process died while running this run, on all {attempts} attempt(s) (killed by a signal, "
        "or by the out-of-memory killer?); finished runs are kept. Run the same command again to retry it, "
        "with fewer --jobs if memory is short"))


def _stop(pool: ProcessPoolExecutor) -> None:
    """Stop a pool now: queued runs cancelled, running workers terminated (their runs are discarded)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        if proc.is_alive():
            proc.terminate()
    for proc in processes:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()
            proc.join(timeout=10)


def make_executor(kind: str = "local", jobs: int = 1, threads: int = DEFAULT_THREADS, **options) -> Executor:
    """The executor for ``--executor`` / ``--jobs`` / ``--threads`` (Ray: ``num_cpus`` per task instead)."""
    if kind == "local":
        return SerialExecutor(threads) if jobs == 1 else ProcessExecutor(jobs, threads)
    if kind == "ray":
        from benchmarks.engine.ray_executor import RayExecutor

        return RayExecutor(**options)
    raise ValueError(f"unknown executor {kind!r}; use 'local' or 'ray'")
