"""One results file -> one ``Run`` with its metrics recomputed from the accuracy matrix.

The stored ``metrics`` block is never used for the report: every number comes from
``accuracy_matrix`` through benchmarks.results.metrics, and the stored values are only compared with the
recomputed ones (a disagreement is reported, not hidden).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.results.metrics import all_metrics, as_matrix
from benchmarks.results.store import hparams_label, iter_result_files, load_result

__all__ = ["ReportError", "Run", "load_runs", "metric_mismatches", "parse_run"]

#: absolute tolerance when comparing stored metrics with recomputed ones
METRIC_ATOL = 1e-6


class ReportError(Exception):
    """A problem with the results folder that prevents writing a report (message says why)."""


@dataclass(frozen=True)
class Run:
    """One run as the report sees it. ``status`` is "ok", "failed" or "invalid" (unreadable matrix).

    ``metrics`` holds recomputed values (NaN where undefined); it is empty unless status is "ok".
    """

    path: Path
    scenario: str
    setting: str | None
    strategy: str
    seed: int
    status: str
    matrix: np.ndarray | None  # (T, T) fractions for ok runs; the partial rows for failed ones
    metrics: dict[str, float]
    train_time_s: float
    memory_bytes: float
    memory_samples: float
    total_time_s: float
    cache_fill_s: float  # one-off frozen-feature cache fill (s), NaN when the run did not record it
    reference: str | None
    suite: str | None
    error: dict[str, Any] | None
    provenance: dict[str, Any] = field(default_factory=dict)
    mismatches: tuple[str, ...] = ()
    eval_time_s: float = math.nan  # evaluation wall seconds, summed over experiences
    cpu_time_s: float = math.nan  # CPU seconds of the run (NaN: not recorded, older files)
    added_parameters: float = math.nan  # parameters added over all experiences; NaN = not recorded
    added_per_experience: float = math.nan  # their mean per experience; NaN = not recorded
    hparams: str | None = None  # "tuned (k=.., n trials)" / "hand-set" / "default"; None = not recorded


def _number(value: Any) -> float:
    """A float, or NaN for missing / non-numeric values."""
    try:
        return float(value) if value is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def _total(values: Any) -> float:
    """Sum of per-experience times; NaN when they were not recorded (unknown is not zero)."""
    return math.fsum(_number(v) for v in values) if values else math.nan


def _seconds(value: Any) -> float:
    """A duration recorded as one number or as per-experience numbers (summed); NaN if absent."""
    return _total(value) if isinstance(value, (list, tuple)) else _number(value)


def _partial_matrix(rows: Any) -> np.ndarray | None:
    """Rows of a (possibly partial) accuracy matrix as an array; None when unusable."""
    try:
        M = np.asarray(rows, dtype=float)
    except (TypeError, ValueError):
        return None
    return M if M.ndim == 2 and M.size else None


def metric_mismatches(stored: dict[str, Any] | None, recomputed: dict[str, float]) -> list[str]:
    """Descriptions of stored metrics that disagree with the recomputed ones (empty = agree)."""
    out = []
    for key, value in recomputed.items():
        old = (stored or {}).get(key)
        new_defined = not math.isnan(value)
        if old is None:
            if new_defined and stored and key in stored:
                out.append(f"{key}: stored null, recomputed {value:.6g}")
            continue
        if not new_defined or abs(float(old) - value) > METRIC_ATOL:
            out.append(f"{key}: stored {float(old):.6g}, recomputed {value:.6g}")
    return out


def _recompute(data: dict[str, Any]) -> tuple[str, np.ndarray | None, dict[str, float], dict | None]:
    """(status, matrix, recomputed metrics, error) of a run; unusable ok runs become "invalid"."""
    matrix = _partial_matrix(data.get("accuracy_matrix"))
    if data.get("status") != "ok":
        return str(data.get("status")), matrix, {}, data.get("error")
    try:
        M = as_matrix(data["accuracy_matrix"])
        values = all_metrics(M, data.get("initial_accuracy"))
    except (ValueError, TypeError) as exc:
        error = {"type": "InvalidResults", "message": f"status ok but {exc}", "experience": None}
        return "invalid", matrix, {}, error
    return "ok", M, {k: math.nan if v is None else v for k, v in values.items()}, None


def _added(values: Any) -> tuple[float, float]:
    """(total, mean per experience) of the recorded ``added_parameters``; NaN, NaN when the strategy
    records none (not zero: it may add parameters the runner does not count)."""
    if not isinstance(values, (list, tuple)) or not values:
        return math.nan, math.nan
    total = _total(values)
    return total, total / len(values)


def parse_run(data: dict[str, Any], path: Path) -> Run:
    """Turn one loaded results dict into a Run, recomputing its metrics."""
    status, matrix, metrics, error = _recompute(data)
    memory = data.get("replay_memory") or {}
    added, per_experience = _added(data.get("added_parameters"))
    return Run(
        path=Path(path),
        scenario=str(data["scenario"]),
        setting=data.get("setting"),
        strategy=str(data["strategy"]),
        seed=int(data["seed"]),
        status=status,
        matrix=matrix,
        metrics=metrics,
        train_time_s=_total(data.get("train_time_s")),
        memory_bytes=_number(memory.get("bytes")),
        memory_samples=_number(memory.get("samples")),
        total_time_s=_number(data.get("total_time_s")),
        cache_fill_s=_seconds(data.get("cache_fill_s")),
        reference=data.get("reference"),
        suite=data.get("suite"),
        error=error,
        provenance=dict(data.get("provenance") or {}),
        mismatches=tuple(metric_mismatches(data.get("metrics"), metrics)) if status == "ok" else (),
        eval_time_s=_total(data.get("eval_time_s")),
        cpu_time_s=_number(data.get("cpu_time_s")),
        added_parameters=added,
        added_per_experience=per_experience,
        hparams=hparams_label(data.get("hparams_provenance")),
    )


def load_runs(results_dir: Path) -> list[Run]:
    """Every run below ``results_dir`` (a ``report/`` subfolder is skipped); error if there are none."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise ReportError(f"results folder {results_dir} does not exist (run `make bench` first)")
    runs = []
    for path in iter_result_files(results_dir):
        try:
            runs.append(parse_run(load_result(path), path))
        except (ValueError, KeyError, TypeError) as exc:
            raise ReportError(f"cannot read results file {path}: {exc}") from exc
    if not runs:
        raise ReportError(
            f"no results files (*.json) found in {results_dir}; run `make bench` first "
            "or point the report at the folder the runner wrote"
        )
    return runs
