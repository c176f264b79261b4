"""Group runs by (scenario, strategy) and aggregate over seeds.

Only runs with status "ok" enter the aggregates; failed and invalid runs are counted per group.
A strategy with fewer successful seeds than the best-covered strategy of its scenario is flagged.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from benchmarks.results.metrics import METRIC_INFO, accuracy_curve
from reports.labels import SETTING_ORDER, family_of, scenario_display
from reports.runs import Run
from reports.stats import Summary, summarize

__all__ = ["COST_KEYS", "ScenarioResult", "StrategyResult", "aggregate"]

#: per-run cost quantities aggregated next to the metrics (Run attribute names)
COST_KEYS = ("train_time_s", "cache_fill_s", "memory_bytes", "memory_samples", "total_time_s",
             "eval_time_s", "cpu_time_s", "added_parameters", "added_per_experience")


@dataclass(frozen=True)
class StrategyResult:
    """One strategy in one scenario, aggregated over its successful seeds.

    ``matrix_mean``/``curves`` use the runs whose matrix has the most common size T
    (all of them unless the group mixes configurations, which ``warnings`` reports).
    """

    strategy: str
    runs: tuple[Run, ...]  # successful runs only
    n_failed: int
    stats: dict[str, Summary]  # metric or cost key -> summary over seeds
    matrix_mean: np.ndarray | None  # (T, T)
    curves: np.ndarray | None  # (n_seeds, T) accuracy_curve of each seed
    expected_seeds: int
    warnings: tuple[str, ...]

    @property
    def n(self) -> int:
        """Number of successful seeds."""
        return len(self.runs)

    @property
    def seeds(self) -> list[int]:
        """Seeds of the successful runs, sorted."""
        return sorted(r.seed for r in self.runs)

    @property
    def fewer_seeds(self) -> bool:
        """True when this strategy has fewer successful seeds than others in the scenario."""
        return self.n < self.expected_seeds


@dataclass(frozen=True)
class ScenarioResult:
    """All strategies of one scenario, sorted by mean final average accuracy (best first)."""

    scenario: str
    setting: str | None
    strategies: tuple[StrategyResult, ...]
    failed: tuple[Run, ...]  # failed and invalid runs
    references: tuple[str, ...]  # published tables the runs declare (e.g. "hsu2018")
    suite: str | None = None  # set when the results folder mixes suites (configs may differ)

    @property
    def key(self) -> str:
        """Unique id of this section (file names, anchors): the scenario, prefixed by its suite if set."""
        return f"{self.suite}__{self.scenario}" if self.suite else self.scenario

    @property
    def display(self) -> str:
        """Human-readable scenario name (with the suite when several suites are shown)."""
        name = scenario_display(self.scenario, self.setting)
        return f"{name} [suite {self.suite}]" if self.suite else name

    @property
    def with_results(self) -> tuple[StrategyResult, ...]:
        """Strategies with at least one successful seed."""
        return tuple(s for s in self.strategies if s.n > 0)


def _modal_runs(runs: list[Run]) -> tuple[list[Run], list[str]]:
    """Runs whose matrix has the most common size, and a warning if some were left out."""
    if not runs:
        return [], []
    sizes = Counter(r.matrix.shape[0] for r in runs)
    T = sizes.most_common(1)[0][0]
    kept = [r for r in runs if r.matrix.shape[0] == T]
    if len(kept) == len(runs):
        return kept, []
    return kept, [f"runs with different numbers of experiences {dict(sizes)}; plots use T={T}"]


def _duplicate_seed_warnings(runs: list[Run]) -> list[str]:
    """Warnings for seeds that occur more than once (e.g. two configs under one strategy name)."""
    counts = Counter(r.seed for r in runs)
    return [f"seed {s} appears {c} times" for s, c in sorted(counts.items()) if c > 1]


def _strategy_result(strategy: str, runs: list[Run], expected: int) -> StrategyResult:
    """Aggregate the runs of one (scenario, strategy) group."""
    ok = [r for r in runs if r.status == "ok"]
    stats = {m: summarize(r.metrics.get(m, math.nan) for r in ok) for m in METRIC_INFO}
    stats.update({k: summarize(getattr(r, k) for r in ok) for k in COST_KEYS})
    kept, warnings = _modal_runs(ok)
    mean = np.mean([r.matrix for r in kept], axis=0) if kept else None
    curves = np.array([accuracy_curve(r.matrix) for r in kept]) if kept else None
    return StrategyResult(
        strategy=strategy,
        runs=tuple(sorted(ok, key=lambda r: r.seed)),
        n_failed=len(runs) - len(ok),
        stats=stats,
        matrix_mean=mean,
        curves=curves,
        expected_seeds=expected,
        warnings=tuple(warnings + _duplicate_seed_warnings(ok)),
    )


def _acc_key(s: StrategyResult) -> tuple[int, float, str]:
    """Sort key: strategies with results first, then by decreasing mean ACC, then by name."""
    acc = s.stats["average_accuracy"].mean
    return (s.n == 0, -acc if not math.isnan(acc) else math.inf, s.strategy)


def _scenario_result(scenario: str, runs: list[Run], suite: str | None = None) -> ScenarioResult:
    """Aggregate every strategy of one scenario."""
    by_strategy: dict[str, list[Run]] = {}
    for r in runs:
        by_strategy.setdefault(r.strategy, []).append(r)
    expected = max(sum(r.status == "ok" for r in rs) for rs in by_strategy.values())
    strategies = [_strategy_result(name, rs, expected) for name, rs in by_strategy.items()]
    settings = Counter(r.setting for r in runs)
    return ScenarioResult(
        scenario=scenario,
        setting=settings.most_common(1)[0][0],
        strategies=tuple(sorted(strategies, key=_acc_key)),
        failed=tuple(r for r in runs if r.status != "ok"),
        references=tuple(sorted({r.reference for r in runs if r.reference})),
        suite=suite,
    )


def _scenario_order(s: ScenarioResult) -> tuple[str, str, int, str]:
    """Family first, then task-, domain-, class-incremental."""
    rank = SETTING_ORDER.index(s.setting) if s.setting in SETTING_ORDER else len(SETTING_ORDER)
    return (s.suite or "", family_of(s.scenario, s.setting), rank, s.scenario)


def aggregate(runs: Iterable[Run]) -> list[ScenarioResult]:
    """Group runs by scenario and strategy; scenarios ordered by family and setting.

    Runs of different suites are never pooled (the same scenario may have other settings there):
    when the folder holds several suites, each (suite, scenario) is its own section.
    """
    runs = list(runs)
    several = len({r.suite for r in runs}) > 1
    groups: dict[tuple[str | None, str], list[Run]] = {}
    for r in runs:
        groups.setdefault((r.suite if several else None, r.scenario), []).append(r)
    results = (_scenario_result(sc, rs, suite) for (suite, sc), rs in groups.items())
    return sorted(results, key=_scenario_order)
