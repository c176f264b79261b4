"""The one place that reads Avalanche's metric names: per-experience accuracies -> a row of R."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# e.g. "Top1_Acc_Exp/eval_phase/test_stream/Task001/Exp003"
_ACC_EXP = re.compile(r"^Top1_Acc_Exp/eval_phase/test_stream/Task\d+/Exp(\d+)$")


def make_evaluator(run_log=None):
    """An EvaluationPlugin that records per-experience accuracy on the test stream.

    Without ``run_log`` (the default) it has no loggers and no other metric, so the fast path's dispatch
    skips it at every training iteration. With a ``benchmarks.engine.run_log.RunLog`` its loggers are
    attached and the training loss per mini-batch and per epoch is measured for them.
    """
    from avalanche.evaluation.metrics import accuracy_metrics, loss_metrics
    from avalanche.training.plugins import EvaluationPlugin

    if run_log is None:
        return EvaluationPlugin(accuracy_metrics(experience=True), loggers=[])
    return EvaluationPlugin(accuracy_metrics(experience=True), loss_metrics(minibatch=True, epoch=True),
                            loggers=run_log.loggers)


def accuracy_row(metrics: Mapping[str, Any], n_experiences: int) -> list[float]:
    """Accuracies on experiences 0..T-1 from the dict ``strategy.eval(test_stream)`` returns.

    Raises ValueError when an experience is missing (the row would silently be wrong otherwise).
    """
    row: dict[int, float] = {}
    for key, value in metrics.items():
        match = _ACC_EXP.match(key)
        if match:
            row[int(match.group(1))] = float(value)
    missing = [j for j in range(n_experiences) if j not in row]
    if missing:
        raise ValueError(f"evaluation returned no accuracy for experiences {missing}; keys: {sorted(metrics)[:5]}")
    return [row[j] for j in range(n_experiences)]
