"""The four figures of each scenario, saved as PNG and SVG.

Uses matplotlib's object API (``matplotlib.figure.Figure`` renders with Agg when saved), so no
pyplot state or GUI backend is touched: safe to call at the end of a benchmark run.
Accuracies are drawn in percent; bands and error bars are +-1 standard deviation over seeds.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator

from reports.aggregate import ScenarioResult, StrategyResult
from reports.labels import strategy_display, strategy_style

__all__ = [
    "FIGURE_KINDS",
    "FigureFiles",
    "bytes_label",
    "count_label",
    "plot_accuracy_curves",
    "plot_cost",
    "plot_final_bars",
    "plot_matrices",
    "write_scenario_figures",
]

FIGURE_KINDS = ("curve", "final", "matrices", "cost")
RC = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "svg.hashsalt": "clbench",
    "hatch.linewidth": 0.8,
}
PNG_DPI = 150


@dataclass(frozen=True)
class FigureFiles:
    """Where one figure was written, relative to the report folder."""

    kind: str
    png: Path
    svg: Path


def _label(s: StrategyResult) -> str:
    """Legend entry: display name and number of seeds († when fewer than the others)."""
    return f"{strategy_display(s.strategy)} (n={s.n}{' †' if s.fewer_seeds else ''})"


def _legend_right(fig: Figure, ax) -> None:
    """One legend for the whole figure, right of the axes, in the order the lines were drawn."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center", frameon=False, handlelength=3.2)


def _title(fig: Figure, sc: ScenarioResult, what: str) -> None:
    """Two-line title: the scenario's display name, then what the figure shows (long names fit)."""
    fig.suptitle(f"{sc.display}\n{what}", fontsize=11, linespacing=1.4)


def _accuracy_floor(values_pct: list[float]) -> float:
    """Lower y limit for accuracies in percent: zoomed in to the data, on a multiple of 10."""
    finite = [v for v in values_pct if not math.isnan(v)] or [0.0]
    return max(0.0, 10.0 * math.floor((min(finite) - 5.0) / 10.0))


def plot_accuracy_curves(sc: ScenarioResult) -> Figure:
    """Average accuracy on the experiences seen so far after each experience, one line per strategy."""
    fig = Figure(figsize=(9.0, 4.6), layout="constrained")
    ax = fig.add_subplot()
    for s in sc.with_results:
        st, curves = strategy_style(s.strategy), 100.0 * s.curves  # (n_seeds, T)
        x, mean = np.arange(1, curves.shape[1] + 1), curves.mean(axis=0)
        ax.plot(
            x, mean, color=st.color, marker=st.marker, linestyle=st.linestyle, lw=1.8, markersize=6, label=_label(s)
        )
        if len(curves) > 1:
            std = curves.std(axis=0, ddof=1)
            ax.fill_between(x, mean - std, mean + std, color=st.color, alpha=0.15, lw=0)
    T = max(s.curves.shape[1] for s in sc.with_results)
    ax.set_xticks(np.arange(1, T + 1))
    ax.set_ylim(_accuracy_floor([100.0 * float(np.nanmin(s.curves)) for s in sc.with_results]), 101)
    ax.set_xlabel("Number of experiences trained")
    ax.set_ylabel("Avg. accuracy on experiences seen so far (%)")
    _title(fig, sc, "accuracy during training (mean ± std over seeds)")
    _legend_right(fig, ax)
    return fig


def _bar_panel(ax, rows: list[StrategyResult], metric: str, xlabel: str) -> None:
    """Horizontal bars of one metric (percent) with std error bars and value labels."""
    y = np.arange(len(rows))
    for i, s in enumerate(rows):
        st, summ = strategy_style(s.strategy), s.stats[metric]
        if math.isnan(summ.mean):  # e.g. forgetting with a single experience: no bar, no label
            continue
        err = 100 * summ.std if not math.isnan(summ.std) else 0.0
        ax.barh(
            i,
            100 * summ.mean,
            xerr=err,
            color=st.color,
            hatch=st.hatch,
            edgecolor="black",
            linewidth=0.6,
            capsize=3,
            alpha=0.85,
        )
        ax.annotate(
            f"{100 * summ.mean:.1f}",
            (max(100 * summ.mean, 0) + err, i),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=8.5,
        )
    ax.set_yticks(y, [strategy_display(s.strategy) + ("†" if s.fewer_seeds else "") for s in rows])
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel(xlabel)
    ax.grid(axis="y", visible=False)


def plot_final_bars(sc: ScenarioResult) -> Figure:
    """Final average accuracy and forgetting per strategy side by side, sorted by ACC."""
    rows = list(sc.with_results)
    fig = Figure(figsize=(9.0, 1.4 + 0.42 * len(rows)), layout="constrained")
    left, right = fig.subplots(1, 2, sharey=True)
    _bar_panel(left, rows, "average_accuracy", "ACC: final average accuracy (%)  ↑ better")
    _bar_panel(right, rows, "forgetting", "Forgetting, Chaudhry et al. (%)  ↓ better")
    left.set_xlim(0, 112)
    left.invert_yaxis()  # best ACC at the top (the y axis is shared: invert it once)
    forgetting = [100 * s.stats["forgetting"].mean for s in rows]
    finite = [f for f in forgetting if not math.isnan(f)] or [0.0]
    right.set_xlim(min(0.0, min(finite) * 1.2), max(10.0, max(finite) * 1.25))
    _title(fig, sc, "after the last experience (mean ± std over seeds; sorted by ACC)")
    return fig


def _heatmap(ax, s: StrategyResult, annotate: bool):
    """The mean accuracy matrix of one strategy, in percent, optionally annotated."""
    M = 100.0 * s.matrix_mean  # (T, T)
    T = M.shape[0]
    image = ax.imshow(M, vmin=0, vmax=100, cmap="viridis")
    ticks = np.arange(T)
    ax.set_xticks(ticks, [str(t + 1) for t in ticks])
    ax.set_yticks(ticks, [str(t + 1) for t in ticks])
    ax.grid(False)
    ax.set_title(_label(s), fontsize=10)
    if annotate:
        size = 8 if T <= 6 else 6.5
        for (i, j), v in np.ndenumerate(M):
            if np.isnan(v):  # a row not evaluated (joint with final_only)
                ax.text(j, i, "–", ha="center", va="center", fontsize=size, color="0.5")
                continue
            ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=size, color="white" if v < 60 else "black")
    return image


def plot_matrices(sc: ScenarioResult) -> Figure:
    """Accuracy matrix R (mean over seeds) of every strategy as small-multiple heatmaps."""
    rows = list(sc.with_results)
    nrows = math.ceil(len(rows) / 4)  # at most 4 per row, rows filled evenly
    ncols = math.ceil(len(rows) / nrows)
    # at least 7 in wide so that the title fits when there are only one or two strategies
    fig = Figure(figsize=(max(7.0, 2.6 * ncols + 1.0), 2.6 * nrows + 0.9), layout="constrained")
    same_T = len({s.matrix_mean.shape[0] for s in rows}) == 1  # share axes only if all T agree
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=same_T, sharey=same_T).ravel()
    image = None
    for ax, s in zip(axes, rows):
        image = _heatmap(ax, s, annotate=s.matrix_mean.shape[0] <= 10)
    for i, ax in enumerate(axes if same_T else []):
        ax.label_outer()  # tick labels only on the left column and the last axes of each column
        if len(rows) - ncols <= i < len(rows):
            ax.xaxis.set_tick_params(labelbottom=True)
    for ax in axes[len(rows) :]:
        ax.set_visible(False)
    fig.supxlabel("Evaluated on experience j")
    fig.supylabel("After training experience i")
    fig.colorbar(image, ax=axes.tolist(), shrink=0.8, label="Accuracy R[i, j] (%)")
    _title(fig, sc, "accuracy matrix R (mean over seeds)")
    return fig


def _cost_limits(ax, rows: list[StrategyResult], key: str, scale: float) -> None:
    """x from (just left of) 0 to the largest cost: costs are never negative, 0 stays visible."""
    ends = [(s.stats[key].mean + np.nan_to_num(s.stats[key].std)) / scale for s in rows]
    top = max([e for e in ends if not math.isnan(e)], default=0.0) or 1.0
    ax.set_xlim(-0.05 * top, 1.08 * top)


def _point(ax, s: StrategyResult, x: float, xerr: float) -> None:
    """One strategy's ACC (mean ± std) at cost ``x`` (± ``xerr``), in its fixed style."""
    st, acc = strategy_style(s.strategy), s.stats["average_accuracy"]
    edge = "black" if st.marker in Line2D.filled_markers else st.color  # x, + have no fill
    ax.errorbar(
        x,
        100 * acc.mean,
        xerr=np.nan_to_num(xerr),
        yerr=np.nan_to_num(100 * acc.std),
        fmt=st.marker,
        color=st.color,
        markersize=9,
        markeredgecolor=edge,
        capsize=3,
    )


def _legend_entries(ax, rows: list[StrategyResult]) -> None:
    """Legend handles for every strategy, without the error-bar glyph."""
    for s in rows:
        st = strategy_style(s.strategy)
        edge = "black" if st.marker in Line2D.filled_markers else st.color
        ax.plot([], [], st.marker, color=st.color, markersize=9, markeredgecolor=edge, label=_label(s))


def _time_panel(ax, rows: list[StrategyResult]) -> None:
    """Final ACC against training time (linear axis from 0)."""
    _cost_limits(ax, rows, "train_time_s", 1.0)
    for s in rows:
        cost = s.stats["train_time_s"]
        if not (math.isnan(cost.mean) or math.isnan(s.stats["average_accuracy"].mean)):
            _point(ax, s, cost.mean, cost.std)
    ax.set_xlabel("Training time, all experiences (s)")


def _decimal(value: float, suffixes: tuple[str, str, str], sep: str, base: str) -> str:
    """``value`` with a decimal suffix for 10⁹ / 10⁶ / 10³ (3 significant digits), else ``base``."""
    for unit, size in zip(suffixes, (1e9, 1e6, 1e3)):
        if abs(value) >= size:
            return f"{value / size:.3g}{sep}{unit}"
    return f"{value:.3g}{base}"


def bytes_label(value: float, _pos: object = None) -> str:
    """Bytes with a decimal unit: 1 kB = 10³ B, 1 MB = 10⁶ B, 1 GB = 10⁹ B (e.g. "3.4 MB")."""
    return _decimal(value, ("GB", "MB", "kB"), " ", " B")


def _memory(s: StrategyResult) -> float:
    """Mean replay memory in bytes (NaN when not recorded or ACC undefined)."""
    return math.nan if math.isnan(s.stats["average_accuracy"].mean) else s.stats["memory_bytes"].mean


def _none_panel(ax, rows: list[StrategyResult]) -> None:
    """Strategies that store no past data, spread a little sideways so that equal ACCs stay visible."""
    offsets = np.linspace(-0.5, 0.5, len(rows)) if len(rows) > 1 else [0.0]
    for s, dx in zip(rows, offsets):
        _point(ax, s, dx, math.nan)
    ax.set_xlim(-1.0, 1.0)
    ax.set_xticks([0.0], ["none"])
    ax.grid(axis="x", visible=False)
    ax.set_xlabel("no past\ndata stored")


def _log_memory_panel(ax, rows: list[StrategyResult], empty: str) -> None:
    """Strategies that store past data, on a log axis labelled in bytes (decimal units)."""
    ax.set_xscale("log")
    for s in rows:
        _point(ax, s, _memory(s), s.stats["memory_bytes"].std)
    if rows:
        values = [_memory(s) for s in rows]
        lo, hi = 10 ** math.floor(math.log10(min(values) / 2)), 10 ** math.ceil(math.log10(max(values) * 2))
        ax.set_xlim(lo, hi)
    else:
        ax.text(0.5, 0.5, empty, transform=ax.transAxes, ha="center", va="center")
        ax.set_xlim(1e3, 1e9)
    ax.xaxis.set_major_locator(LogLocator(base=10))
    ax.xaxis.set_major_formatter(FuncFormatter(bytes_label))
    ax.set_xlabel("Stored past data (bytes, log scale)")


def count_label(value: float, _pos: object = None) -> str:
    """A parameter count with a decimal suffix: 18063 -> "18.1k", 2.5e6 -> "2.5M"."""
    return _decimal(value, ("G", "M", "k"), "", "")


def _added_panel(ax, rows: list[StrategyResult]) -> None:
    """Final ACC against the parameters a strategy added over all experiences (results key
    ``added_parameters``), linear from 0; only strategies that record it are drawn."""
    _cost_limits(ax, rows, "added_parameters", 1.0)
    for s in rows:
        _point(ax, s, s.stats["added_parameters"].mean, s.stats["added_parameters"].std)
    ax.xaxis.set_major_formatter(FuncFormatter(count_label))
    ax.set_xlabel("Parameters added, all experiences")


def _adds_parameters(s: StrategyResult) -> bool:
    """True when the strategy records added parameters and has an ACC to plot against them."""
    return not (math.isnan(s.stats["added_parameters"].mean) or math.isnan(s.stats["average_accuracy"].mean))


def plot_cost(sc: ScenarioResult) -> Figure:
    """Final ACC against training time, against the bytes of past data kept (log axis) and, when some
    strategy records it, against the parameters it added.

    Strategies that store nothing get their own narrow panel: 0 has no place on a log axis, and a
    linear axis squashes buffers of a few MB against 0 next to a joint learner's whole data set.
    """
    rows = list(sc.with_results)
    none = [s for s in rows if _memory(s) == 0]
    stored = [s for s in rows if _memory(s) > 0]
    adding = [s for s in rows if _adds_parameters(s)]
    ratios = [4.0] + ([0.9] if none else []) + [3.6] + ([3.6] if adding else [])
    fig = Figure(figsize=(11.5 + (4.5 if adding else 0.0), 4.6), layout="constrained")
    axes = fig.subplots(1, len(ratios), sharey=True, gridspec_kw={"width_ratios": ratios})
    _time_panel(axes[0], rows)
    if none:
        _none_panel(axes[1], none)
    if adding:
        _added_panel(axes[-1], adding)
    recorded = any(not math.isnan(_memory(s)) for s in rows)
    memory_ax = axes[-2] if adding else axes[-1]
    _log_memory_panel(memory_ax, stored, "no strategy stores past data" if recorded else "memory not recorded")
    axes[0].set_ylabel("ACC: final average accuracy (%)")
    acc = [100.0 * (s.stats["average_accuracy"].mean - np.nan_to_num(s.stats["average_accuracy"].std)) for s in rows]
    axes[0].set_ylim(_accuracy_floor(acc), 101)
    _title(fig, sc, "accuracy vs cost (mean ± std over seeds)")
    _legend_entries(axes[0], rows)
    _legend_right(fig, axes[0])
    return fig


PLOTTERS = {"curve": plot_accuracy_curves, "final": plot_final_bars, "matrices": plot_matrices, "cost": plot_cost}


def _stem(scenario: str, kind: str) -> str:
    """File-name stem, safe on every file system."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", f"{scenario}_{kind}")


def write_scenario_figures(sc: ScenarioResult, root: Path, folder: str = "figures") -> list[FigureFiles]:
    """Draw and save the figures of one scenario under ``root/folder``; [] if nothing succeeded."""
    if not sc.with_results:
        return []
    (Path(root) / folder).mkdir(parents=True, exist_ok=True)
    out = []
    with matplotlib.rc_context(RC):
        for kind in FIGURE_KINDS:
            fig = PLOTTERS[kind](sc)
            stem = _stem(sc.key, kind)
            png, svg = Path(folder) / f"{stem}.png", Path(folder) / f"{stem}.svg"
            fig.savefig(Path(root) / png, dpi=PNG_DPI, metadata={"Software": None})
            fig.set_layout_engine(None)  # keep the layout just computed: no second layout pass
            fig.savefig(Path(root) / svg, metadata={"Date": None})
            out.append(FigureFiles(kind, png, svg))
    return out
