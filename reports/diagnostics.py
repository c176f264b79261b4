"""Per-layer diagnostics section: where a Transformer forgets (head or representation) and what drifts.

Drawn only for runs whose results hold a ``diagnostics`` block (benchmarks/results/store.py). Per
run, from the final row (after the last experience, T experiences, blocks b):

- head forgetting: Chaudhry et al.'s forgetting of the accuracy matrix R (what the model's head loses);
- representation forgetting of block b: the same formula on the probe matrix P[i][b][j] (what a
  freshly fitted linear probe on block b loses: Davari et al. 2022's representation forgetting);
- representation drift of block b: mean over j < T-1 of 1 - CKA(after T-1, after j);
- attention drift of block b: mean over j < T-1 of KL(A_after_j || A_after_T-1).

Values are averaged over seeds (± one standard deviation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure as MplFigure

from benchmarks.results.metrics import forgetting
from benchmarks.results.store import load_result
from reports.aggregate import ScenarioResult, StrategyResult
from reports.document import Document, Figure, Heading, Paragraph, Table, code, plain
from reports.figures import PNG_DPI, RC
from reports.labels import strategy_display, strategy_style
from reports.stats import Summary, summarize

__all__ = ["add_diagnostics_section", "diagnostics_section", "fmt_summary", "insert_before_definitions",
           "probe_forgetting", "run_summary"]

CAPTION = (
    "Where forgetting happens, per strategy (mean ± 1 std over seeds). Left: forgetting (Chaudhry et al. "
    "2018) of a linear probe fitted on each block's pooled output, per block, then of the model's own head "
    "(rightmost point, from R): a gap between the last block and the head is forgetting in the head only. "
    "Middle: representation drift per block, 1 − linear CKA between the final representations and those after "
    "each earlier experience (mean over experiences). Right: attention drift per block, mean KL between the "
    "maps after each earlier experience and the final maps, on a fixed probe set."
)
KEYS = ("probe_forgetting", "cka_drift", "attention_kl")


@dataclass(frozen=True)
class DiagSummary:
    """Per-strategy summaries over seeds: head forgetting and, per block, the three KEYS; cost ratio."""

    strategy: StrategyResult
    head: Summary
    blocks: dict[str, list[Summary]]
    cost: Summary  # diagnostics time / training time


def _final_mean(m: list, T: int, n_blocks: int, transform=lambda a: a) -> list[float]:
    """Per block, the mean over j < T-1 of transform(m[T-1][b][j]) ([i][b][j] lists; NaN when T < 2)."""
    if T < 2:
        return [math.nan] * n_blocks
    last = np.array([[np.nan if v is None else v for v in row[: T - 1]] for row in m[T - 1]], dtype=float)
    return [float(v) for v in np.nanmean(transform(last), axis=1)]


def probe_forgetting(P: np.ndarray) -> float:
    """Chaudhry et al.'s forgetting of a (T, T) probe matrix with NaN above the diagonal (not measured):
    mean over j < T-1 of max_{j <= l < T-1} P[l, j] - P[T-1, j]."""
    T = P.shape[0]
    if T < 2:
        return math.nan
    return float(np.mean(np.nanmax(P[: T - 1, : T - 1], axis=0) - P[T - 1, : T - 1]))


def run_summary(diag: dict, R: np.ndarray, train_time_s: float) -> dict[str, object]:
    """One run's head forgetting, per-block probe forgetting / CKA drift / attention KL, and cost ratio."""
    P = np.array([[[np.nan if v is None else v for v in row] for row in m] for m in diag["probe_accuracy"]])
    T = P.shape[0]  # P: (T, B, T)
    cost = (diag.get("setup_s", 0.0) + sum(diag.get("time_s", []))) / train_time_s if train_time_s else math.nan
    return {
        "head": forgetting(R),
        "probe_forgetting": [probe_forgetting(P[:, b, :]) for b in range(P.shape[1])],
        "cka_drift": _final_mean(diag["cka"], T, P.shape[1], lambda a: 1.0 - a),
        "attention_kl": _final_mean(diag["attention_kl"], T, P.shape[1]),
        "cost": cost,
    }


def _summaries(sc: ScenarioResult) -> list[DiagSummary]:
    """Summaries of the strategies whose successful runs recorded diagnostics."""
    out = []
    for s in sc.with_results:
        runs = [(r, load_result(r.path).get("diagnostics")) for r in s.runs]
        rows = [run_summary(d, r.matrix, r.train_time_s) for r, d in runs if d]
        if not rows:
            continue
        n_blocks = min(len(row["probe_forgetting"]) for row in rows)
        blocks = {k: [summarize(row[k][b] for row in rows) for b in range(n_blocks)] for k in KEYS}
        out.append(DiagSummary(s, summarize(row["head"] for row in rows), blocks,
                               summarize(row["cost"] for row in rows)))
    return out


def fmt_summary(x: Summary, scale: float = 100.0, digits: int = 1) -> str:
    """``scale * mean ± scale * std`` (std only with 2+ values); "–" when undefined."""
    if math.isnan(x.mean):
        return "–"
    std = f" ± {scale * x.std:.{digits}f}" if x.n > 1 and not math.isnan(x.std) else ""
    return f"{scale * x.mean:.{digits}f}{std}"


def _table(sc: ScenarioResult, rows: list[DiagSummary]) -> Table:
    """Strategy, seeds, head vs representation forgetting, drift per block, cost."""
    def per_block(xs: list[Summary], scale: float, digits: int) -> str:
        return " / ".join(fmt_summary(x, scale, digits) for x in xs)

    return Table(
        header=("Strategy", "n", "Head forgetting (%)", "Probe forgetting, last block (%)",
                "Probe forgetting by block (%)", "1 − CKA by block", "Attention KL by block", "Cost (% of training)"),
        rows=tuple(
            (plain(strategy_display(d.strategy.strategy)), str(d.head.n), fmt_summary(d.head),
             fmt_summary(d.blocks["probe_forgetting"][-1]), per_block(d.blocks["probe_forgetting"], 100.0, 1),
             per_block(d.blocks["cka_drift"], 1.0, 3), per_block(d.blocks["attention_kl"], 1.0, 3), fmt_summary(d.cost, 100.0, 0))
            for d in rows
        ),
        align=("l", "r", "r", "r", "l", "l", "l", "r"),
        caption=plain(f"{sc.display}: forgetting in the head vs in the representation, and drift per block "
                      "(blocks 0, 1, ... left to right; mean ± std over seeds)"),
    )


def _panel(ax, rows: list[DiagSummary], key: str, scale: float, ylabel: str, head: bool = False) -> None:
    """One line per strategy over the blocks (plus the head when ``head``), with std error bars."""
    for d in rows:
        st, xs = strategy_style(d.strategy.strategy), d.blocks[key] + ([d.head] if head else [])
        mean = np.array([scale * x.mean for x in xs])
        err = np.array([scale * x.std if x.n > 1 else 0.0 for x in xs])
        ax.errorbar(np.arange(len(xs)), mean, yerr=np.nan_to_num(err), color=st.color, marker=st.marker,
                    linestyle=st.linestyle, capsize=3, label=f"{strategy_display(d.strategy.strategy)} (n={d.head.n})")
    n_blocks = len(rows[0].blocks[key])
    ax.set_xticks(range(n_blocks + head), [str(b) for b in range(n_blocks)] + (["head"] if head else []))
    ax.set_ylim(bottom=min(0.0, ax.get_ylim()[0]))  # from 0: the size of a drift is read against none
    ax.set_xlabel("block")
    ax.set_ylabel(ylabel)


def plot_diagnostics(sc: ScenarioResult, rows: list[DiagSummary]) -> MplFigure:
    """Three panels: forgetting by depth (probes, then head), 1 − CKA per block, attention KL per block."""
    fig = MplFigure(figsize=(13.0, 4.2), layout="constrained")
    axes = fig.subplots(1, 3)
    _panel(axes[0], rows, "probe_forgetting", 100.0, "forgetting (%)", head=True)
    _panel(axes[1], rows, "cka_drift", 1.0, "1 − linear CKA")
    _panel(axes[2], rows, "attention_kl", 1.0, "attention KL")
    fig.suptitle(f"{sc.display}\nwhere it forgets: probes per block vs the head; drift per block", fontsize=11)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center", frameon=False)
    return fig


def _write(fig: MplFigure, root: Path, stem: str) -> tuple[Path, Path]:
    (root / "figures").mkdir(parents=True, exist_ok=True)
    png, svg = Path("figures") / f"{stem}.png", Path("figures") / f"{stem}.svg"
    fig.savefig(root / png, dpi=PNG_DPI, metadata={"Software": None})
    fig.set_layout_engine(None)
    fig.savefig(root / svg, metadata={"Date": None})
    return png, svg


def diagnostics_section(scenarios: list[ScenarioResult], out_dir: Path, first_figure: int = 1) -> list:
    """The section's blocks (empty when no run recorded diagnostics); figures go to out_dir/figures."""
    blocks: list = []
    for sc in scenarios:
        rows = _summaries(sc)
        if not rows:
            continue
        with matplotlib.rc_context(RC):
            png, svg = _write(plot_diagnostics(sc, rows), Path(out_dir), f"{sc.key}_diagnostics".replace("/", "-"))
        number = first_figure + len([b for b in blocks if isinstance(b, Figure)])
        blocks += [Heading(3, plain(sc.display)), _table(sc, rows),
                   Figure(png, svg, f"**Figure {number}.** {CAPTION}", "forgetting and drift per block")]
    if not blocks:
        return []
    intro = (
        "Runs of scenarios with " + code("diagnostics = true") + " measured, after each experience, a linear "
        "probe on every block's pooled output (fitted on a subsample of each experience's training data, "
        "scored on its test data, over that experience's classes), the attention maps and the representations "
        "on a fixed probe set (benchmarks/diagnostics). Probe forgetting far below head forgetting means the "
        "features still separate old classes and the head (or its calibration) is what forgets."
    )
    return [Heading(2, "Per-layer diagnostics"), Paragraph(intro), *blocks]


def add_diagnostics_section(doc: Document, scenarios: list[ScenarioResult], out_dir: Path) -> None:
    """Insert the section before the metric definitions (after the scenarios); no-op without diagnostics."""
    at = _definitions_at(doc)
    figures = sum(isinstance(b, Figure) for b in doc.blocks[:at])
    doc.blocks[at:at] = diagnostics_section(scenarios, out_dir, first_figure=figures + 1)


def _definitions_at(doc: Document) -> int:
    """Index of the "Metric definitions" heading (the end when there is none)."""
    return next((i for i, b in enumerate(doc.blocks) if isinstance(b, Heading) and b.text == "Metric definitions"),
                len(doc.blocks))


def insert_before_definitions(doc: Document, blocks: list) -> None:
    """Insert ``blocks`` (a section) before the metric definitions."""
    at = _definitions_at(doc)
    doc.blocks[at:at] = blocks
