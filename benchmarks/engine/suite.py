"""Run a suite: skip finished runs, execute the rest, write each result atomically as it arrives."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.config.spec import RunSpec
from benchmarks.engine.executors import Executor, SerialExecutor
from benchmarks.results.store import run_filename, write_json_atomic


def result_path(results_dir: Path, spec: RunSpec) -> Path:
    """Where a run's results file lives: <results>/<suite>/<scenario>__<strategy>__seed<k>__<id>.json."""
    return Path(results_dir) / spec.suite / run_filename(spec.scenario, spec.strategy, spec.seed, spec.run_id)


def with_log_dir(results_dir: Path, spec: RunSpec) -> RunSpec:
    """The spec with its run logs under ``<results>/logs`` when it asks for logging (same run id)."""
    from dataclasses import replace

    from benchmarks.results.store import LOG_FOLDER

    return replace(spec, log_dir=str(Path(results_dir).resolve() / LOG_FOLDER)) if spec.log else spec


def is_done(path: Path, retry_failed: bool = True) -> bool:
    """True when a results file exists and is ok (or failed, when failures are not retried)."""
    import json

    if not path.is_file():
        return False
    try:
        status = json.loads(path.read_text()).get("status")
    except (OSError, ValueError):
        return False  # unreadable: run it again
    return status == "ok" or (status == "failed" and not retry_failed)


@dataclass
class SuiteSummary:
    """Counts of a suite execution."""

    total: int
    skipped: int
    ok: int
    failed: int

    def line(self) -> str:
        return f"{self.total} runs: {self.skipped} already done, {self.ok} ok, {self.failed} failed"


def run_suite(
    specs: list[RunSpec], results_dir: Path, executor: Executor | None = None,
    retry_failed: bool = True, progress: bool = True,
) -> SuiteSummary:
    """Execute the runs not yet done; each result is written as soon as it arrives."""
    from tqdm import tqdm

    executor = executor or SerialExecutor()
    todo = [with_log_dir(results_dir, s) for s in specs if not is_done(result_path(results_dir, s), retry_failed)]
    summary = SuiteSummary(total=len(specs), skipped=len(specs) - len(todo), ok=0, failed=0)
    bar = tqdm(total=len(todo), desc="runs", unit="run", disable=not progress, file=sys.stderr, dynamic_ncols=True)
    try:
        for spec, result in executor.submit_all(todo):
            write_json_atomic(result_path(results_dir, spec), result)
            if result["status"] == "ok":
                summary.ok += 1
            else:
                summary.failed += 1
                err = result["error"] or {}
                bar.write(f"FAILED {spec.scenario}/{spec.strategy}/seed{spec.seed}: {err.get('type')}: {err.get('message')}")
            acc = result["metrics"].get("average_accuracy")
            bar.set_postfix_str(f"last: {spec.strategy} {'' if acc is None else f'ACC={acc:.3f}'}")
            bar.update(1)
    finally:
        bar.close()
    return summary
