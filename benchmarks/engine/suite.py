"""Run a suite: skip finished runs, claim each run before it starts, write each result atomically as it arrives.

Faults (docs/faults.md): the results folder is checked before the first run
(benchmarks.results.store.check_results_folder); a run is claimed in the results folder just before it
starts (benchmarks.engine.claims), so a second invocation on the same folder skips it, waits for the other
process to finish it and counts it as "run by another process"; an interrupt (Ctrl-C, SIGTERM) stops the
workers, discards the runs in flight, keeps every finished result and raises ``SuiteInterrupted``.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from benchmarks.config.spec import RunSpec
from benchmarks.engine.claims import Claim, Claims
from benchmarks.engine.executors import Executor, SerialExecutor
from benchmarks.results.store import check_results_folder, run_filename, write_json_atomic

#: seconds between two looks at runs held by another process.
WAIT_POLL_S = 2.0


def result_path(results_dir: Path, spec: RunSpec) -> Path:
    """Where a run's results file lives: <results>/<suite>/<scenario>__<strategy>__seed<k>__<id>.json."""
    return Path(results_dir) / spec.suite / run_filename(spec.scenario, spec.strategy, spec.seed, spec.run_id)


def with_log_dir(results_dir: Path, spec: RunSpec) -> RunSpec:
    """The spec with its run logs under ``<results>/logs`` when it asks for logging (same run id)."""
    from dataclasses import replace

    from benchmarks.results.store import LOG_FOLDER

    return replace(spec, log_dir=str(Path(results_dir).resolve() / LOG_FOLDER)) if spec.log else spec


def _status(path: Path) -> str | None:
    """The status of a results file; None when there is none or it is unreadable (e.g. truncated)."""
    import json

    try:
        return json.loads(path.read_text()).get("status")
    except (OSError, ValueError, AttributeError):
        return None


def is_done(path: Path, retry_failed: bool = True) -> bool:
    """True when a results file exists and is ok (or failed, when failures are not retried)."""
    status = _status(path)  # unreadable: run it again
    return status == "ok" or (status == "failed" and not retry_failed)


def _stamp(path: Path) -> int | None:
    """mtime (ns) of a results file, None when absent: a changed stamp = written by another process."""
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


@dataclass
class SuiteSummary:
    """Counts of a suite execution (``elsewhere``: runs another process finished meanwhile)."""

    total: int
    skipped: int
    ok: int
    failed: int
    elsewhere: int = 0
    elsewhere_failed: int = 0

    def line(self) -> str:
        base = f"{self.total} runs: {self.skipped} already done, {self.ok} ok, {self.failed} failed"
        if self.elsewhere:
            base += f", {self.elsewhere} run by another process ({self.elsewhere_failed} failed)"
        return base


class Stop(KeyboardInterrupt):
    """Raised in the main thread by SIGINT or SIGTERM inside ``stop_on_signals``."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class SuiteInterrupted(KeyboardInterrupt):
    """The suite stopped on a signal: workers stopped, runs in flight discarded, finished results kept.

    Attributes:
        signum: the signal (SIGINT for Ctrl-C).
        finished: runs finished (results written) by this invocation.
        in_flight: runs that were running and were discarded.
    """

    def __init__(self, signum: int, finished: int, in_flight: int) -> None:
        super().__init__(f"interrupted: {finished} runs finished, {in_flight} in flight discarded")
        self.signum, self.finished, self.in_flight = signum, finished, in_flight

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as shells report it: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + self.signum


class ResultsWriteError(RuntimeError):
    """A results file could not be written (disk full, folder removed...); the suite stopped, finished runs kept."""


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise ``Stop`` in the main thread (once: a second signal during clean-up is ignored);
    a signal this process was started ignoring stays ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stopping = False

    def handler(signum, frame):
        nonlocal stopping
        if not stopping:
            stopping = True
            raise Stop(signum)

    # A signal ignored on purpose (``nohup``, a background job of a script: SIGINT) stays ignored.
    wanted = [s for s in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(s) is not signal.SIG_IGN]
    old = {s: signal.signal(s, handler) for s in wanted}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


class _Progress:
    """A run's bookkeeping: counts, the progress bar and the messages."""

    def __init__(self, summary: SuiteSummary, bar) -> None:
        self.summary, self.bar = summary, bar
        self.announced: set[str] = set()

    def finished(self, spec: RunSpec, result: dict) -> None:
        if result["status"] == "ok":
            self.summary.ok += 1
        else:
            self.summary.failed += 1
            err = result["error"] or {}
            self.bar.write(f"FAILED {_name(spec)}: {err.get('type')}: {err.get('message')}")
        acc = result["metrics"].get("average_accuracy")
        self.bar.set_postfix_str(f"last: {spec.strategy} {'' if acc is None else f'ACC={acc:.3f}'}")
        self.bar.update(1)

    def elsewhere(self, spec: RunSpec, status: str | None) -> None:
        self.summary.elsewhere += 1
        if status != "ok":
            self.summary.elsewhere_failed += 1
            self.bar.write(f"FAILED (in another process) {_name(spec)}")
        self.bar.update(1)

    def held(self, spec: RunSpec, claim: Claim) -> None:
        if spec.run_id not in self.announced:
            self.announced.add(spec.run_id)
            self.bar.write(f"skipped {_name(spec)}: held by another process ({claim.holder()})")


def _name(spec: RunSpec) -> str:
    return f"{spec.scenario}/{spec.strategy}/seed{spec.seed}"


def run_suite(
    specs: list[RunSpec], results_dir: Path, executor: Executor | None = None,
    retry_failed: bool = True, progress: bool = True, *, claims: Claims | None = None, poll_s: float = WAIT_POLL_S,
) -> SuiteSummary:
    """Execute the runs not yet done; each result is written as soon as it arrives.

    Args:
        specs: the suite's runs.
        results_dir: the results folder (checked first: ``check_results_folder``).
        executor: where runs execute (default: serially, in this process).
        retry_failed: run again runs recorded as failed.
        progress: show a progress bar.
        claims: the claims of this process (default: new ones, benchmarks.engine.claims defaults).
        poll_s: seconds between looks at runs another process holds.

    Raises:
        ResultsFolderError: before any run, when ``results_dir`` cannot hold the suite's results.
        SuiteInterrupted: on Ctrl-C (or SIGTERM under ``stop_on_signals``); finished results are kept.
        ResultsWriteError: a results file could not be written; finished results are kept.
    """
    from tqdm import tqdm

    results_dir = Path(results_dir)
    for suite in sorted({s.suite for s in specs}):
        check_results_folder(results_dir, suite)
    executor = executor or SerialExecutor()
    todo = [with_log_dir(results_dir, s) for s in specs if not is_done(result_path(results_dir, s), retry_failed)]
    stamps = {s.run_id: _stamp(result_path(results_dir, s)) for s in todo}
    summary = SuiteSummary(total=len(specs), skipped=len(specs) - len(todo), ok=0, failed=0)
    bar = tqdm(total=len(todo), desc="runs", unit="run", disable=not progress, file=sys.stderr, dynamic_ncols=True)
    log = _Progress(summary, bar)
    claims = claims or Claims(results_dir)
    try:
        with claims:
            try:
                while todo:
                    held: dict[str, RunSpec] = {}
                    _execute(executor, _claimed(todo, claims, held, stamps, results_dir, log), claims, results_dir, log)
                    todo = _wait_for_others(held, claims, stamps, results_dir, log, poll_s)
            except KeyboardInterrupt as exc:
                signum = getattr(exc, "signum", signal.SIGINT)
                raise SuiteInterrupted(signum, summary.ok + summary.failed, len(claims.held)) from None
    finally:
        bar.close()
    return summary


def _claimed(todo: list[RunSpec], claims: Claims, held: dict[str, RunSpec], stamps: dict[str, int | None],
             results_dir: Path, log: _Progress) -> Iterator[RunSpec]:
    """The runs of ``todo`` this process claims, as the executor asks for them; others' runs go to ``held``."""
    for spec in todo:
        other = claims.acquire(spec)
        if other is not None:
            held[spec.run_id] = spec
            log.held(spec, other)
            continue
        path = result_path(results_dir, spec)
        if _stamp(path) != stamps[spec.run_id]:  # another process finished it since we started: final
            claims.release(spec)
            log.elsewhere(spec, _status(path))
            continue
        yield spec


def _execute(executor: Executor, specs: Iterator[RunSpec], claims: Claims, results_dir: Path, log: _Progress) -> None:
    """Run the claimed specs; write each result, then give its claim back."""
    with contextlib.closing(executor.submit_all(specs)) as results:  # closing: an interrupt stops the workers
        for spec, result in results:
            path = result_path(results_dir, spec)
            try:
                write_json_atomic(path, result)
            except OSError as exc:
                done = log.summary.ok + log.summary.failed
                raise ResultsWriteError(
                    f"cannot write the results file {path} ({exc.strerror or exc}): free disk space (or fix the "
                    f"folder), then run the same command to resume; the {done} run(s) finished before are kept, "
                    "this run and the ones in flight will run again") from exc
            claims.release(spec)
            log.finished(spec, result)


def _wait_for_others(held: dict[str, RunSpec], claims: Claims, stamps: dict[str, int | None], results_dir: Path,
                     log: _Progress, poll_s: float) -> list[RunSpec]:
    """Wait until each run another process held is finished there (counted) or free again (returned, to run)."""
    if held:
        log.bar.write(f"waiting for {len(held)} run(s) held by another process to finish (their results go to "
                      f"{results_dir}); Ctrl-C stops waiting, finished runs are kept")
    while held:
        free = False
        for run_id, spec in list(held.items()):
            path = result_path(results_dir, spec)
            if _stamp(path) != stamps[run_id]:
                log.elsewhere(spec, _status(path))
                del held[run_id]
                continue
            claim = claims.read(claims.path(spec))
            free = free or claim is None or claims.is_stale(claim)
        if free:  # released without a result (the other was interrupted) or stale: ours to run
            return list(held.values())
        if held:
            time.sleep(poll_s)
    return []
