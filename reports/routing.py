"""Router forgetting section: how a mixture of experts' routing of earlier experiences moves.

Drawn only for runs whose results hold a ``routing`` block (moe_adapters; benchmarks/results/store.py).
Per run, from the final row (after the last experience, T experiences), averaged over adapted blocks:

- selection accuracy at the end: mean over j < T-1 of ``selection_accuracy[T-1][j]``, the fraction of
  experience j's test samples sent to j's router;
- router forgetting: mean over j < T-1 of ``changed[T-1][b][j]``, the fraction of experience j's test
  samples whose top-k expert set differs from the one they got right after training j;
- routing accuracy at the end of each experience (mean of the diagonal ``routing_accuracy[j][b][j]``)
  and after the last one (mean over j < T-1 of ``routing_accuracy[T-1][b][j]``): the share of top-k
  slots on the experts experience j's training used most (the ones frozen after it).

Values are averaged over seeds (± one standard deviation).
"""

from __future__ import annotations

import math

import numpy as np

from benchmarks.results.store import load_result
from reports.aggregate import ScenarioResult
from reports.diagnostics import fmt_summary, insert_before_definitions
from reports.document import Document, Heading, Paragraph, Table, code, plain
from reports.labels import strategy_display
from reports.stats import summarize

__all__ = ["add_routing_section", "routing_section", "routing_summary"]


def _final_mean(m: list, T: int) -> float:
    """Mean over blocks and j < T-1 of m[T-1][b][j] ([i][b][j] lists with None for not measured)."""
    vals = [v for row in m[T - 1] for v in row[: T - 1] if v is not None]
    return float(np.mean(vals)) if T >= 2 and vals else math.nan


def routing_summary(routing: dict) -> dict[str, float]:
    """One run's router forgetting, routing accuracy at the end of each experience and at the end."""
    changed, acc, sel = routing["changed"], routing["routing_accuracy"], routing.get("selection_accuracy")
    T = len(changed)
    diagonal = [v for i in range(T) for row in acc[i] for v in row[i : i + 1] if v is not None]
    return {
        "selection_final": _final_mean([[row] for row in sel], T) if sel else math.nan,
        "router_forgetting": _final_mean(changed, T),
        "accuracy_when_trained": float(np.mean(diagonal)) if diagonal else math.nan,
        "accuracy_final": _final_mean(acc, T),
    }


def _rows(sc: ScenarioResult) -> list[tuple[str, ...]]:
    rows = []
    for s in sc.with_results:
        runs = [load_result(r.path).get("routing") for r in s.runs]
        summaries = [routing_summary(d) for d in runs if d]
        if not summaries:
            continue
        cell = {k: summarize(x[k] for x in summaries) for k in summaries[0]}
        rows.append((plain(strategy_display(s.strategy)), str(len(summaries)), fmt_summary(cell["selection_final"]),
                     fmt_summary(cell["router_forgetting"]),
                     fmt_summary(cell["accuracy_when_trained"]), fmt_summary(cell["accuracy_final"])))
    return rows


def routing_section(scenarios: list[ScenarioResult]) -> list:
    """The section's blocks (empty when no run recorded routing)."""
    blocks: list = []
    for sc in scenarios:
        rows = _rows(sc)
        if rows:
            blocks += [Heading(3, plain(sc.display)), Table(
                header=("Strategy", "n", "Selection accuracy at the end (%)", "Router forgetting (%)", "Routing accuracy when trained (%)",
                        "Routing accuracy at the end (%)"),
                rows=tuple(rows), align=("l", "r", "r", "r", "r", "r"),
                caption=plain(f"{sc.display}: router forgetting of earlier experiences (mean ± std over seeds)"))]
    if not blocks:
        return []
    intro = (
        "Mixture-of-experts runs record their routing (" + code("routing") + " in the results): selection "
        "accuracy is the share of an earlier experience's test samples sent to that experience's router at "
        "the end of the stream; router forgetting is the share of an earlier experience's test samples whose top-k expert set changed "
        "between the end of that experience and the end of the stream (mean over earlier experiences and "
        "adapted blocks); routing accuracy is the share of top-k slots on the experts that experience's "
        "training picked most (frozen after it)."
    )
    return [Heading(2, "Router forgetting"), Paragraph(intro), *blocks]


def add_routing_section(doc: Document, scenarios: list[ScenarioResult]) -> None:
    """Insert the section before the metric definitions; no-op when no run recorded routing."""
    insert_before_definitions(doc, routing_section(scenarios))
