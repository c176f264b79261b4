"""Assemble the report's Document: checks, one section per scenario, definitions, failures, provenance."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.results.metrics import METRIC_INFO
from reports.aggregate import ScenarioResult
from reports.document import BulletList, Document, Figure, Heading, Paragraph, Table, code, plain, slug
from reports.figures import FigureFiles
from reports.labels import strategy_display
from reports.provenance import failed_table, package_table, provenance_items
from reports.published import ComparisonRow, PublishedTable, compare
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
        "time summed over all experiences (s). Right: memory the strategy keeps of past data (replay "
        "buffer, MB = 10⁶ bytes; 0 for strategies that store none)."
    ),
}
FILES = (
    (
        "`summary.csv`: one row per (scenario, strategy); metrics as fractions (`_frac_` columns) with "
        "mean, std and 95% CI half-width (Student t); training time in s, replay memory in bytes"
    ),
    "`tables.tex`: LaTeX tables (needs `booktabs`)",
    "`figures/`: every figure as PNG and SVG",
    "`index.md`, `index.html`: this report (the HTML is self-contained)",
)
ALT = {
    "curve": "accuracy curves",
    "final": "final accuracy and forgetting bars",
    "matrices": "accuracy matrix heatmaps",
    "cost": "accuracy versus time and memory",
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
    """Scenarios whose ACC differs from a published table beyond its tolerance."""
    out = []
    for sc in data.scenarios:
        for key in sc.references:
            table = data.published.get(key)
            rows = compare(sc, table) if table else []
            off = [plain(strategy_display(r.strategy)) for r in rows if r.flagged]
            if off:
                out.append(
                    f"{plain(sc.display)}: {len(off)} of {len(rows)} strategies differ from "
                    f"{plain(table.short)} by more than {table.tolerance_pp:g} pp "
                    f"({', '.join(off)})"
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


def _comparison_row(r: ComparisonRow) -> tuple[str, ...]:
    """Method, strategy, ours, published, difference, verdict."""
    ours = f"{100 * r.ours.mean:.2f}" + (f" ± {100 * r.ours.std:.2f}" if r.ours.n > 1 else "")
    verdict = f"**no, off by {abs(r.diff_pp):.1f} pp**" if r.flagged else "yes"
    return (
        plain(r.method),
        plain(strategy_display(r.strategy)),
        ours,
        f"{r.published_pct:.2f}",
        f"{r.diff_pp:+.2f}",
        verdict,
    )


def _comparison(sc: ScenarioResult, table: PublishedTable) -> list:
    """Our ACC next to a published table's, with the difference and the tolerance flag."""
    heading = Heading(3, f"Comparison with {plain(table.short)}")
    rows = compare(sc, table)
    if not rows:
        return [heading, Paragraph(f"No strategy of this scenario appears in {plain(table.citation)}.", kind="note")]
    tol = f"{table.tolerance_pp:g}"
    t = Table(
        header=(
            "Method (paper)",
            "Strategy",
            "Ours ACC (%)",
            "Published ACC (%)",
            "Difference (pp)",
            f"Within ±{tol} pp",
        ),
        rows=tuple(_comparison_row(r) for r in rows),
        align=("l", "l", "r", "r", "r", "l"),
        caption=plain(f"{sc.display}: our ACC (mean ± std) vs {table.citation}"),
    )
    flagged = sum(r.flagged for r in rows)
    note = (
        f"{flagged} of {len(rows)} strategies differ from the published ACC by more than {tol} "
        f"percentage points (difference = ours - published). {table.note}"
    )
    return [heading, t, Paragraph(plain(note), kind="warning" if flagged else "note")]


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
        Paragraph(f"Scenario {code(sc.scenario)}, setting {code(sc.setting)}" + (f", suite {code(sc.suite)}." if sc.suite else ".")),
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
            blocks += _comparison(sc, data.published[key])
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
