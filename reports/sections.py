"""Assemble the report's Document: checks, one section per scenario, definitions, failures, provenance."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.results.metrics import METRIC_INFO
from reports.aggregate import ScenarioResult
from reports.comparison import acceptance_label, comparison_blocks
from reports.document import BulletList, Document, Figure, Heading, Paragraph, Table, code, plain, slug
from reports.figures import FigureFiles
from reports.labels import strategy_display
from reports.provenance import failed_table, package_table, provenance_items
from reports.published import PublishedTable, scenario_comparisons
from reports.runs import Run
from reports.tables import summary_table

__all__ = ["ReportData", "build_document"]

TITLE = "clbench report"

CAPTIONS = {
    "curve": (
        "Average accuracy on the experiences trained so far, after each experience: point i is the mean "
        "of R[i, j] over j ≤ i, so the last point is ACC. Lines: mean over seeds; shaded band: ± 1 "
        "standard deviation over seeds."
    ),
    "final": (
        "Final average accuracy ACC (higher is better) and forgetting (Chaudhry et al. 2018, lower is "
        "better) per strategy; bars: mean over seeds, error bars: ± 1 standard deviation; sorted by ACC. "
        "† fewer successful seeds than the other strategies."
    ),
    "matrices": (
        "Accuracy matrix R per strategy (percent, mean over seeds): row i = after training experience i, "
        "column j = test accuracy on experience j. The diagonal is the accuracy right after learning an "
        "experience, cells below it show how much is retained later, cells above it are experiences not "
        "trained yet."
    ),
    "cost": (
        "ACC against cost, one point per strategy (mean ± 1 standard deviation over seeds). Left: training "
        "time summed over all experiences (s). Right: bytes of past data the strategy stores, in the form "
        "a real buffer keeps it (see Costs under Metric definitions), on a log scale (decimal units, "
        "1 MB = 10⁶ bytes); strategies that store none sit in the narrow “none” panel. Where a "
        "strategy records the parameters it adds to the model (a module, expert or prompt per "
        "experience), a last panel places it by their total after the last experience; strategies "
        "that record none are not drawn there."
    ),
}
COSTS = (
    "**Train time**: wall-clock seconds of training, summed over all experiences (evaluation excluded).",
    (
        "**Cache fill**: one-off seconds spent filling a frozen-feature cache before training, recorded "
        "separately from train time; shown only when the runs record it."
    ),
    (
        "**Memory**: bytes of stored past data in the form a real buffer keeps it (images as uint8, token "
        "ids in the smallest integer type that holds the vocabulary), as counted by the runner from the "
        "strategy's buffers (results key `replay_memory`). Joint (offline) and Cumulative count the "
        "training data of earlier experiences they keep. Model copies and per-parameter weights "
        "(EWC's Fisher, SI/MAS importances, LwF's old model) are not counted."
    ),
    (
        "**Added params**: parameters a strategy adds to the model (results key `added_parameters`, "
        "one count per experience, e.g. modular LoRA's adapter and head per experience), in thousands: "
        "the total after the last experience and the mean per experience. Shown only for strategies "
        "that record it (“—” otherwise: not recorded, not zero)."
    ),
)
FILES = (
    (
        "`summary.csv`: one row per (scenario, strategy); metrics as fractions (`_frac_` columns) with "
        "mean, std and 95% CI half-width (Student t); training time in s, replay memory in bytes, "
        "parameters added (total and per experience; empty when not recorded)"
    ),
    "`tables.tex`: LaTeX tables (needs `booktabs`)",
    (
        "`comparison.csv` (when the results declare a published table): each compared cell with our and "
        "the published mean, std and n (percent), the difference with its Welch 95% CI and df, the "
        "verdict, the acceptance bound and Spearman's rho of the scenario"
    ),
    (
        "`contrasts.csv` (when a strategy is compared with naive or a combination with its parts): one row "
        "per contrast: scenario, strategy, reference, the ACC difference strategy − reference in percentage "
        "points with its Welch 95% CI and df, the seeds on each side (n_a, n_b), the verdict, the suite"
    ),
    (
        "`literature.csv` (when runs of a literature protocol meet published numbers of it, "
        "reports/references/text_literature.toml): one row per (scenario, published table, method, metric) "
        "with the published value, backbone, source file, clbench's mean, std and n, and Spearman's rho"
    ),
    "`figures/`: every figure as PNG and SVG",
    "`index.md`, `index.html`: this report (the HTML is self-contained)",
)
ALT = {
    "curve": "accuracy curves",
    "final": "final accuracy and forgetting bars",
    "matrices": "accuracy matrix heatmaps",
    "cost": "accuracy versus time, memory and added parameters",
}


@dataclass(frozen=True)
class ReportData:
    """Everything the document is built from."""

    results_dir: Path
    runs: list[Run]
    scenarios: list[ScenarioResult]
    figures: dict[str, list[FigureFiles]]  # scenario -> its figures
    published: dict[str, PublishedTable | None]  # reference key -> table (None: unknown key)


def _intro(data: ReportData) -> list:
    """What this report covers."""
    ok = sum(r.status == "ok" for r in data.runs)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    text = (
        f"Results folder {code(data.results_dir)}: {len(data.runs)} runs, {ok} successful, "
        f"{len(data.runs) - ok} failed or invalid (listed under Failed runs, excluded from "
        f"aggregates); {len(data.scenarios)} scenarios. Generated {now}. All numbers are recomputed "
        "from each run's accuracy matrix R; accuracies are in percent, ± is one standard "
        "deviation over seeds (ddof = 1); summary.csv also gives 95% confidence intervals."
    )
    return [Paragraph(text)]


def _metric_warnings(runs: list[Run]) -> list[str]:
    """Runs whose stored metrics disagree with the recomputed ones."""
    return [
        f"{code(r.path.name)}: stored metrics disagree with values recomputed from R "
        f"(report uses recomputed): {plain('; '.join(r.mismatches))}"
        for r in runs
        if r.mismatches
    ]


def _group_warnings(scenarios: list[ScenarioResult]) -> list[str]:
    """Fewer seeds, mixed configurations, duplicate seeds."""
    out = []
    for sc in scenarios:
        for s in sc.strategies:
            name = f"{plain(sc.display)} / {plain(strategy_display(s.strategy))}"
            if s.fewer_seeds:
                out.append(
                    f"{name}: only {s.n} of {s.expected_seeds} seeds succeeded "
                    f"({s.n_failed} failed) — marked † in tables and figures"
                )
            out += [f"{name}: {plain(w)}" for w in s.warnings]
    return out


def _runs(n: int) -> str:
    """Run count in words: "1 run", "3 runs"."""
    return f"{n} run" if n == 1 else f"{n} runs"


def _reference_warnings(data: ReportData) -> list[str]:
    """Scenarios whose ACC fails a published table's acceptance criterion or its 95% CI check."""
    out = []
    for sc in data.scenarios:
        for c in scenario_comparisons(sc, data.published):
            off = [plain(strategy_display(r.strategy)) for r in c.rows if r.flagged]
            bad = [plain(strategy_display(r.strategy)) for r in c.rows if r.consistent is False]
            where = f"{plain(sc.display)} vs {plain(c.table.short)}"
            if off:
                out.append(
                    f"{where}: {len(off)} of {len(c.rows)} strategies fail "
                    f"{plain(acceptance_label(c.table))} ({', '.join(off)})"
                )
            if bad:
                out.append(
                    f"{where}: {len(bad)} of {len(c.rows)} strategies not consistent with the published "
                    f"mean (95% CI of the difference excludes 0: {', '.join(bad)})"
                )
    return out


def _checks(data: ReportData) -> list:
    """A section listing everything a reader should know before trusting the numbers."""
    items = _metric_warnings(data.runs) + _group_warnings(data.scenarios)
    failed = sum(r.status != "ok" for r in data.runs)
    if failed:
        items.append(f"{_runs(failed)} failed or invalid, excluded from the aggregates; see Failed runs")
    items += _reference_warnings(data)
    items += [
        f"results declare reference {code(k)} but reports/references/{plain(k)}.toml does not exist"
        for k, t in sorted(data.published.items())
        if t is None
    ]
    blocks: list = [Heading(2, "Checks")]
    if not items:
        return blocks + [
            Paragraph(
                "All checks passed: stored metrics agree with the recomputed ones, "
                "every run succeeded and every strategy has the same number of seeds.",
                kind="note",
            )
        ]
    return blocks + [BulletList(tuple(items), kind="warning")]


def _figures(files: list[FigureFiles], counter: list[int]) -> list:
    """Figure blocks with numbered captions."""
    out = []
    for f in files:
        counter[0] += 1
        out.append(Figure(f.png, f.svg, f"**Figure {counter[0]}.** {CAPTIONS[f.kind]}", ALT[f.kind]))
    return out


def _scenario(sc: ScenarioResult, data: ReportData, counter: list[int]) -> list:
    """One scenario: table, notes, figures, comparisons."""
    blocks: list = [
        Heading(2, plain(sc.display), anchor=slug(sc.key)),
        Paragraph(
            f"Scenario {code(sc.scenario)}, setting {code(sc.setting)}"
            + (f", suite {code(sc.suite)}." if sc.suite else ".")
        ),
    ]
    if not sc.with_results:
        return blocks + [
            Paragraph(f"No successful run: all {len(sc.failed)} runs failed (see Failed runs).", kind="warning")
        ]
    blocks.append(summary_table(sc))
    if any(s.fewer_seeds for s in sc.strategies):
        blocks.append(
            Paragraph(
                "† fewer successful seeds than the other strategies of this scenario; compare its mean with care.",
                kind="warning",
            )
        )
    blocks += _figures(data.figures.get(sc.key, []), counter)
    for key in sc.references:
        if data.published.get(key) is not None:
            blocks += comparison_blocks(sc, data.published[key])
    return blocks


def _definitions() -> list:
    """Every metric's definition and source (benchmarks.results.metrics.METRIC_INFO)."""
    rows = tuple(
        (plain(label), plain(definition), "higher" if hib else "lower", plain(cite))
        for label, definition, hib, cite in METRIC_INFO.values()
    )
    intro = (
        "R[i, j] is the test accuracy on experience j after training experience i "
        "(T experiences, 0-based indices). Forgetting is Chaudhry et al.'s; Avalanche's own "
        "“forgetting” equals −BWT and is reported only under the label “Avalanche forgetting (= -BWT)”."
    )
    return [
        Heading(2, "Metric definitions"),
        Paragraph(plain(intro)),
        Table(("Metric", "Definition", "Better", "Reference"), rows),
        Paragraph("**Costs**"),
        BulletList(COSTS),
    ]


def _failures(runs: list[Run]) -> list:
    """The failed-runs table, or a sentence saying there are none."""
    blocks: list = [Heading(2, "Failed runs")]
    if all(r.status == "ok" for r in runs):
        return blocks + [Paragraph("None: every run succeeded.")]
    return blocks + [failed_table(runs)]


def build_document(data: ReportData) -> Document:
    """The full report."""
    doc = Document(TITLE)
    doc.add(*_intro(data), *_checks(data))
    counter = [0]
    for sc in data.scenarios:
        doc.add(*_scenario(sc, data, counter))
    doc.add(*_definitions(), *_failures(data.runs))
    doc.add(Heading(2, "Provenance"), BulletList(provenance_items(data.runs)), package_table(data.runs))
    doc.add(Heading(2, "Files"), BulletList(FILES))
    return doc
