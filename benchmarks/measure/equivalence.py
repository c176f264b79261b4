"""Does the fast data path change results? Same hyper-parameters, fast_data true vs false, over seeds.

``python -m benchmarks.measure.speed --check-accuracy [--seeds 5] [--train-fraction 0.2] [--jobs 2]`` runs
naive, replay and ewc on split-MNIST class-IL and task-IL (a training subset, 1 epoch) once per seed
with ``train.fast_data = true`` and once with ``false``, and compares the final average accuracy
(mean of the last row of R) with Welch's t-test. The two paths draw different random batches from
the same seed, so runs are not paired: the question is whether the two distributions differ.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

STRATEGIES = ("naive", "replay", "ewc")
SCENARIOS = ("split_mnist_class_il", "split_mnist_task_il")


def welch(a: list[float], b: list[float]) -> tuple[float, float, float | None]:
    """Welch's t statistic of mean(a) - mean(b), its degrees of freedom, and the two-sided p-value.

    p is None when SciPy is not installed; t is 0 when both samples are constant and equal.
    """
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    diff = statistics.fmean(a) - statistics.fmean(b)
    if va + vb == 0:
        return (0.0 if diff == 0 else math.copysign(math.inf, diff)), float(len(a) + len(b) - 2), None
    t = diff / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    try:
        from scipy import stats
    except ImportError:
        return t, df, None
    return t, df, float(2 * stats.t.sf(abs(t), df))


def specs(seeds: int, train_fraction: float, device: str) -> list:
    """Run specs: STRATEGIES x SCENARIOS x seeds x (fast, avalanche)."""
    from benchmarks.config.loader import expand

    out = []
    for fast in (True, False):
        doc = {
            "suite": {"seeds": list(range(seeds)), "strategies": list(STRATEGIES), "device": device},
            "train": {"epochs": 1, "batch_size": 128, "optimizer": "adam", "lr": 1e-3, "fast_data": fast},
            "scenarios": {s: {"train_fraction": train_fraction, "test_fraction": 0.5} for s in SCENARIOS},
        }
        out += expand(doc, name="equivalence", where="benchmarks.measure.equivalence")
    return out


def compare(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (scenario, strategy): mean, std of final ACC per path, Welch t, df, p."""
    cells: dict[tuple[str, str], dict[bool, list[float]]] = {}
    for r in results:
        if r["status"] != "ok":
            raise RuntimeError(f"{r['scenario']}/{r['strategy']}/seed{r['seed']} failed: {r['error']['message']}")
        key = (r["scenario"], r["strategy"])
        cells.setdefault(key, {True: [], False: []})[r["config"]["train"]["fast_data"]].append(
            r["metrics"]["average_accuracy"])
    rows = []
    for (scenario, strategy), acc in sorted(cells.items()):
        t, df, p = welch(acc[True], acc[False])
        rows.append({"scenario": scenario, "strategy": strategy, "n": len(acc[True]),
                     "fast": (statistics.fmean(acc[True]), statistics.stdev(acc[True])),
                     "avalanche": (statistics.fmean(acc[False]), statistics.stdev(acc[False])),
                     "t": t, "df": df, "p": p})
    return rows


def format_rows(rows: list[dict[str, Any]]) -> str:
    """A plain-text table of ``compare``'s rows."""
    lines = [(f"{'scenario':22s} {'strategy':8s} {'n':>3s}  {'fast ACC mean±std':>18s}  "
              f"{'avalanche ACC mean±std':>22s}  {'Welch t':>8s} {'df':>5s} {'p':>6s}")]
    for r in rows:
        p = "n/a" if r["p"] is None else f"{r['p']:.3f}"
        lines.append(f"{r['scenario']:22s} {r['strategy']:8s} {r['n']:3d}  {r['fast'][0]:10.4f}±{r['fast'][1]:.4f}  "
                     f"{r['avalanche'][0]:14.4f}±{r['avalanche'][1]:.4f}  {r['t']:8.2f} {r['df']:5.1f} {p:>6s}")
    return "\n".join(lines)


def main(*, seeds: int, train_fraction: float, device: str, jobs: int, threads: int) -> int:
    """Run the check and print the table; returns 0."""
    from benchmarks.engine.executors import make_executor

    if seeds < 2:
        raise SystemExit("--check-accuracy needs --seeds >= 2 (a standard deviation per path)")
    todo = specs(seeds, train_fraction, device)
    print(f"accuracy equivalence: {len(todo)} runs ({', '.join(STRATEGIES)} x {', '.join(SCENARIOS)} x "
          f"{seeds} seeds x fast/avalanche), train_fraction {train_fraction}, 1 epoch", flush=True)
    results = [r for _, r in make_executor("local", jobs, threads).submit_all(todo)]
    print(format_rows(compare(results)))
    return 0
