"""Per-run cost summary of a results folder, to check a suite against its time budget.

``python -m reports.run_costs RESULTS_DIR [--jobs N] [--budget-minutes M]`` prints (Markdown) one row
per (scenario, strategy): successful and failed runs, and the mean per run of wall seconds in all
(``total_time_s``), training, evaluation and cache fill, and of CPU seconds (``cpu_time_s``, recorded
by the runner since it was added; "—" for older files); then the folder's totals: the serial wall
sum and CPU sum over every run, failed ones included (they used the time too), and that sum divided
by N jobs, a lower bound on the suite's wall time with ``--jobs N`` (and, with ``--budget-minutes``,
whether it fits). On a loaded machine wall times stretch while CPU seconds much less so: compare both.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from reports.aggregate import ScenarioResult, aggregate
from reports.document import Document, Paragraph, Table, plain
from reports.labels import strategy_display
from reports.markdown import render_markdown
from reports.runs import ReportError, Run, load_runs

__all__ = ["budget_lines", "cost_table", "main", "totals"]

#: (label, Run attribute) of the per-run means shown
MEANS = (
    ("Wall (s)", "total_time_s"),
    ("Train (s)", "train_time_s"),
    ("Eval (s)", "eval_time_s"),
    ("Cache fill (s)", "cache_fill_s"),
    ("CPU (s)", "cpu_time_s"),
)


def _mean_cell(values: list[float]) -> str:
    """Mean of the recorded values, "—" when none is."""
    known = [v for v in values if not math.isnan(v)]
    return f"{sum(known) / len(known):.1f}" if known else "—"


def cost_table(scenarios: list[ScenarioResult]) -> Table:
    """One row per (scenario, strategy): runs ok / failed and per-run means (every run with a value)."""
    rows = []
    for sc in scenarios:
        for s in sc.strategies:
            runs = list(s.runs) + [r for r in sc.failed if r.strategy == s.strategy]
            means = (_mean_cell([getattr(r, key) for r in runs]) for _, key in MEANS)
            rows.append((plain(sc.display), plain(strategy_display(s.strategy)), str(s.n), str(s.n_failed), *means))
    header = ("Scenario", "Strategy", "Runs ok", "Failed", *(label for label, _ in MEANS))
    return Table(header, tuple(rows), align=("l", "l", "r", "r", *("r" for _ in MEANS)),
                 caption="Mean per run (failed runs included in the means of what they recorded)")


def totals(runs: list[Run]) -> tuple[float, float]:
    """(wall, CPU) seconds summed over every run; CPU NaN when no run recorded it."""
    wall = math.fsum(r.total_time_s for r in runs if not math.isnan(r.total_time_s))
    cpu = [r.cpu_time_s for r in runs if not math.isnan(r.cpu_time_s)]
    return wall, (math.fsum(cpu) if cpu else math.nan)


def budget_lines(runs: list[Run], jobs: int, budget_minutes: float | None) -> list[str]:
    """The totals as sentences, with the budget verdict when a budget is given."""
    wall, cpu = totals(runs)
    cpu_text = "not recorded" if math.isnan(cpu) else f"{cpu / 60:.1f} min"
    lines = [f"{len(runs)} runs: wall {wall / 60:.1f} min in all (serial), CPU {cpu_text}.",
             f"With --jobs {jobs}: at least {wall / 60 / jobs:.1f} min of wall time."]
    if budget_minutes is not None:
        fits = wall / 60 / jobs <= budget_minutes
        lines.append(f"Budget {budget_minutes:g} min: {'fits' if fits else 'exceeded'} (by this lower bound).")
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m reports.run_costs", description=__doc__.splitlines()[0])
    parser.add_argument("results_dir", type=Path, help="folder with the runner's results JSON files")
    parser.add_argument("--jobs", type=int, default=1, help="parallel runs the suite uses (default 1)")
    parser.add_argument("--budget-minutes", type=float, default=None, help="the suite's budget, to compare")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Print the cost summary; exit status 2 with a message on bad input."""
    args = parse_args(argv)
    try:
        runs = load_runs(args.results_dir)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    doc = Document(f"Run costs: {args.results_dir}")
    doc.add(cost_table(aggregate(runs)), *(Paragraph(plain(line)) for line in budget_lines(runs, args.jobs, args.budget_minutes)))
    print(render_markdown(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
