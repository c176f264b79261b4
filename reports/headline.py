"""The lines ``make bench`` prints last: per scenario, the best continual learner with its ACC and forgetting.

Joint and Cumulative train on all data seen so far (upper bounds, not continual learners), so "best" is
taken among the other strategies and the joint bound is shown next to it when the scenario ran it.
"""

from __future__ import annotations

import math
from pathlib import Path

from reports.aggregate import ScenarioResult, StrategyResult, aggregate
from reports.labels import strategy_display
from reports.runs import load_runs

__all__ = ["BOUNDS", "headline", "headline_lines"]

#: strategies that are upper bounds, never "best"
BOUNDS = ("joint", "cumulative")


def _pct(value: float, std: float) -> str:
    spread = "" if math.isnan(std) else f" ± {100 * std:.1f}"
    return f"{100 * value:.1f}{spread}"


def _line(scenario: ScenarioResult, best: StrategyResult) -> str:
    acc, fgt = best.stats["average_accuracy"], best.stats["forgetting"]
    joint = next((s for s in scenario.with_results if s.strategy == "joint"), None)
    bound = f"; joint {100 * joint.stats['average_accuracy'].mean:.1f}" if joint else ""
    return (f"{scenario.display}: {strategy_display(best.strategy)}, ACC {_pct(acc.mean, acc.std)}%, "
            f"forgetting {_pct(fgt.mean, fgt.std)} pp (mean over {acc.n} seed{'s' * (acc.n != 1)}{bound})")


def headline(scenarios: list[ScenarioResult]) -> list[str]:
    """One line per scenario: its best strategy by mean final average accuracy, bounds excluded."""
    lines = []
    for scenario in scenarios:
        ranked = [s for s in scenario.with_results if s.strategy not in BOUNDS]  # sorted best first
        if ranked:
            lines.append(_line(scenario, ranked[0]))
    return lines


def headline_lines(results_dir: Path) -> list[str]:
    """``headline`` of a results folder (ReportError when it holds no results)."""
    return headline(aggregate(load_runs(Path(results_dir))))
