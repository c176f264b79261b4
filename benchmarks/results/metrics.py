"""Continual-learning metrics computed from an accuracy matrix (pure numpy).

R[i][j] is the accuracy on experience j after training experience i (T x T, values in [0, 1]).
Everything downstream of a run (report, tables, plots) uses these functions; none of them imports
torch or avalanche.

Definitions (see ../shared/REFERENCE_RESULTS.md and the report's "Metric definitions" section):
- average accuracy ACC = (1/T) sum_j R[T-1][j]                              (Lopez-Paz & Ranzato 2017)
- forgetting F = (1/(T-1)) sum_{j<T-1} (max_{l<T-1} R[l][j] - R[T-1][j])    (Chaudhry et al. 2018)
- BWT = (1/(T-1)) sum_{j<T-1} (R[T-1][j] - R[j][j])                        (Lopez-Paz & Ranzato 2017)
- FWT = (1/(T-1)) sum_{j>0} (R[j-1][j] - b[j]), b = accuracy of the initial model on experience j
  (Lopez-Paz & Ranzato 2017); defined only when b is known.
- average incremental accuracy = (1/T) sum_i mean_{j<=i} R[i][j]           (Rebuffi et al. 2017)
- Avalanche's "forgetting" = (1/(T-1)) sum_{j<T-1} (R[j][j] - R[T-1][j]) = -BWT (labelled as such).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "METRIC_INFO",
    "accuracy_curve",
    "all_metrics",
    "as_matrix",
    "avalanche_forgetting",
    "average_accuracy",
    "average_incremental_accuracy",
    "backward_transfer",
    "forgetting",
    "forward_transfer",
]

# name -> (label, definition, higher_is_better, citation)
METRIC_INFO: dict[str, tuple[str, str, bool, str]] = {
    "average_accuracy": (
        "ACC",
        "mean accuracy over all T experiences after training the last one: (1/T) sum_j R[T-1,j]",
        True,
        "Lopez-Paz & Ranzato, NeurIPS 2017",
    ),
    "forgetting": (
        "Forgetting",
        (
            "mean over j<T-1 of the best earlier accuracy on j minus the final one: "
            "max_{l<T-1} R[l,j] - R[T-1,j]"
        ),
        False,
        "Chaudhry et al., ECCV 2018",
    ),
    "bwt": (
        "BWT",
        "backward transfer, mean over j<T-1 of R[T-1,j] - R[j,j] (negative = forgetting)",
        True,
        "Lopez-Paz & Ranzato, NeurIPS 2017",
    ),
    "average_incremental_accuracy": (
        "Avg. inc. ACC",
        "mean over i of the average accuracy on experiences 0..i after training experience i",
        True,
        "Rebuffi et al., CVPR 2017",
    ),
    "fwt": (
        "FWT",
        "forward transfer, mean over j>0 of R[j-1,j] - b_j, b_j = accuracy of the untrained model",
        True,
        "Lopez-Paz & Ranzato, NeurIPS 2017",
    ),
    "avalanche_forgetting": (
        "Avalanche forgetting (= -BWT)",
        "Avalanche's definition: mean over j<T-1 of R[j,j] - R[T-1,j]; not Chaudhry's forgetting",
        False,
        "avalanche-lib forgetting_metrics",
    ),
}


def as_matrix(R: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """Validate and convert an accuracy matrix to a float array of shape (T, T).

    A row i < T-1 may be missing as a whole (None/NaN: not evaluated, e.g. ``joint`` with
    ``final_only``); the metrics that need it are then NaN (reported as "—"), ACC is not.

    Args:
        R: square matrix, row i = accuracies on every experience after training experience i.
    """
    M = np.asarray(R, dtype=float)
    if M.ndim != 2 or M.shape[0] != M.shape[1] or M.shape[0] == 0:
        raise ValueError(f"accuracy matrix must be square and non-empty, got shape {M.shape}")
    missing = np.isnan(M).all(axis=1)
    if missing[-1] or not np.all(np.isfinite(M[~missing])):
        raise ValueError("accuracy matrix contains NaN or inf (only whole rows before the last may be missing)")
    if M[~missing].min() < 0.0 or M[~missing].max() > 1.0:
        raise ValueError("accuracy matrix values must lie in [0, 1] (fractions, not percent)")
    return M


def average_accuracy(R) -> float:
    """Mean accuracy over all experiences after training the last one."""
    M = as_matrix(R)
    return float(M[-1].mean())


def average_incremental_accuracy(R) -> float:
    """Mean over steps i of the mean accuracy on the experiences seen so far (0..i)."""
    return float(np.mean(accuracy_curve(R)))


def accuracy_curve(R) -> list[float]:
    """Average accuracy on experiences 0..i after training experience i, for each i."""
    M = as_matrix(R)
    return [float(M[i, : i + 1].mean()) for i in range(M.shape[0])]


def forgetting(R) -> float:
    """Chaudhry et al. (2018) forgetting: best earlier accuracy minus final, mean over j < T-1.

    NaN when T == 1 (nothing can be forgotten).
    """
    M = as_matrix(R)
    T = M.shape[0]
    if T < 2:
        return math.nan
    best = M[: T - 1, : T - 1].max(axis=0)  # max_{l<T-1} R[l, j] for j < T-1
    return float((best - M[T - 1, : T - 1]).mean())


def backward_transfer(R) -> float:
    """BWT: mean over j < T-1 of R[T-1][j] - R[j][j]. NaN when T == 1."""
    M = as_matrix(R)
    T = M.shape[0]
    if T < 2:
        return math.nan
    return float((M[T - 1, : T - 1] - np.diag(M)[: T - 1]).mean())


def avalanche_forgetting(R) -> float:
    """Avalanche's 'forgetting' (first accuracy minus last) = -BWT. Labelled, never called forgetting."""
    bwt = backward_transfer(R)
    return -bwt if not math.isnan(bwt) else math.nan


def forward_transfer(R, initial: Sequence[float] | None) -> float:
    """FWT: mean over j > 0 of R[j-1][j] - b[j]; NaN when the initial accuracies b are unknown."""
    M = as_matrix(R)
    T = M.shape[0]
    if initial is None or T < 2:
        return math.nan
    b = np.asarray(initial, dtype=float)
    if b.shape != (T,):
        raise ValueError(f"initial accuracies must have length {T}, got shape {b.shape}")
    return float(np.mean([M[j - 1, j] - b[j] for j in range(1, T)]))


def all_metrics(R, initial: Sequence[float] | None = None) -> dict[str, float | None]:
    """Every metric above in one dict; NaN values become None (JSON null)."""
    out = {
        "average_accuracy": average_accuracy(R),
        "average_incremental_accuracy": average_incremental_accuracy(R),
        "forgetting": forgetting(R),
        "bwt": backward_transfer(R),
        "fwt": forward_transfer(R, initial),
        "avalanche_forgetting": avalanche_forgetting(R),
    }
    return {k: (None if v is None or math.isnan(v) else v) for k, v in out.items()}
