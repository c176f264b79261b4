"""build_report: results folder in, report folder out (index.md/html, figures, CSV, LaTeX)."""

from __future__ import annotations

from pathlib import Path

from reports.aggregate import ScenarioResult, aggregate
from reports.comparison import write_comparison_csv
from reports.contrasts import Contrast, add_contrasts_section, scenario_contrasts, write_contrasts_csv
from reports.diagnostics import add_diagnostics_section
from reports.figures import write_scenario_figures
from reports.html import render_html
from reports.latex import latex_comparison_table, latex_contrast_table, latex_document, latex_summary_table
from reports.literature import (
    LiteratureComparison,
    add_literature_section,
    latex_literature_table,
    write_literature_csv,
)
from reports.markdown import render_markdown
from reports.published import Comparison, load_published, scenario_comparisons
from reports.routing import add_routing_section
from reports.runs import load_runs
from reports.sections import ReportData, build_document
from reports.tables import write_summary_csv

__all__ = ["build_report", "default_out_dir"]


def default_out_dir(results_dir: Path) -> Path:
    """Where the report goes unless told otherwise: RESULTS_DIR/report."""
    return Path(results_dir) / "report"


def _latex(data: ReportData, contrasts: list[tuple[ScenarioResult, list[Contrast]]],
           literature: list[LiteratureComparison]) -> str:
    """Every summary table, then every published-table comparison, then every contrast table, then the
    literature protocols' published-vs-clbench tables."""
    parts = [latex_summary_table(sc) for sc in data.scenarios if sc.strategies]
    parts += [latex_comparison_table(sc, c) for sc, c in _comparisons(data)]
    parts += [latex_contrast_table(sc, cs) for sc, cs in contrasts if cs]
    parts += [latex_literature_table(c) for c in literature]
    return latex_document(parts)


def _comparisons(data: ReportData) -> list[tuple[ScenarioResult, Comparison]]:
    """Every (scenario, comparison with a published table it declares) that has rows."""
    return [(sc, c) for sc in data.scenarios for c in scenario_comparisons(sc, data.published)]


def _collect(results_dir: Path, out_dir: Path) -> ReportData:
    """Load and aggregate the runs, draw the figures, load the published tables they declare."""
    runs = load_runs(results_dir)  # first: a missing or empty folder must not get a report/ folder
    scenarios = aggregate(runs)
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = {sc.key: write_scenario_figures(sc, out_dir) for sc in scenarios}
    keys = sorted({k for sc in scenarios for k in sc.references})
    return ReportData(results_dir, runs, scenarios, figures, {k: load_published(k) for k in keys})


def build_report(results_dir: Path | str, out_dir: Path | str | None = None) -> Path:
    """Write the report of every run below ``results_dir`` into ``out_dir``; return index.html.

    Args:
        results_dir: folder holding the runner's JSON files (any depth; ``report/`` is skipped).
        out_dir: report folder, created if needed; default ``results_dir/report``.

    Raises:
        ReportError: the folder is missing, holds no results, or holds an unreadable results file.
    """
    results_dir = Path(results_dir)
    out = Path(out_dir) if out_dir is not None else default_out_dir(results_dir)
    data = _collect(results_dir, out)
    doc = build_document(data)
    contrasts = [(sc, scenario_contrasts(sc)) for sc in data.scenarios]
    add_contrasts_section(doc, contrasts)  # each strategy vs naive, each combination vs its parts
    add_diagnostics_section(doc, data.scenarios, out)  # per-layer diagnostics, when runs recorded them
    add_routing_section(doc, data.scenarios)  # router forgetting, when mixture-of-experts runs recorded it
    literature = add_literature_section(doc, data.scenarios)  # published numbers of the literature's protocols
    (out / "index.md").write_text(render_markdown(doc), encoding="utf-8")
    (out / "index.html").write_text(render_html(doc, out), encoding="utf-8")
    write_summary_csv(data.scenarios, out / "summary.csv")
    (out / "tables.tex").write_text(_latex(data, contrasts, literature), encoding="utf-8")
    pairs = _comparisons(data)
    if pairs:
        write_comparison_csv(pairs, out / "comparison.csv")
    if literature:
        write_literature_csv(literature, out / "literature.csv")
    if any(cs for _, cs in contrasts):
        write_contrasts_csv(contrasts, out / "contrasts.csv")
    return out / "index.html"
