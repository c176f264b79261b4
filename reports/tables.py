"""Result tables: per-scenario summary (document / LaTeX) and summary.csv.

Tables show mean ± std over seeds in percent (accuracies) with the best mean of each column in
bold; summary.csv is machine-readable and keeps fractions (columns suffixed ``_frac``).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from benchmarks.results.metrics import METRIC_INFO
from reports.aggregate import ScenarioResult, StrategyResult
from reports.document import Table, plain
from reports.labels import strategy_display
from reports.stats import Summary

__all__ = [
    "ADDED_COLUMNS",
    "CACHE_COLUMN",
    "COLUMNS",
    "CSV_COSTS",
    "Column",
    "best_rows",
    "columns_for",
    "format_summary",
    "seeds_cell",
    "summary_table",
    "write_summary_csv",
]


@dataclass(frozen=True)
class Column:
    """One numeric table column: which statistic, how to scale and print it, which way is better."""

    key: str
    label: str
    latex: str
    scale: float
    decimals: int
    higher_is_better: bool


COLUMNS = (
    Column("average_accuracy", "ACC (%) ↑", r"ACC (\%) $\uparrow$", 100.0, 2, True),
    Column("forgetting", "Forgetting (%) ↓", r"Forgetting (\%) $\downarrow$", 100.0, 2, False),
    Column("bwt", "BWT (%) ↑", r"BWT (\%) $\uparrow$", 100.0, 2, True),
    Column("train_time_s", "Train time (s) ↓", r"Train time (s) $\downarrow$", 1.0, 1, False),
    Column("memory_bytes", "Memory (MB) ↓", r"Memory (MB) $\downarrow$", 1e-6, 2, False),
)
#: shown after "Train time" only in scenarios whose runs record a frozen-feature cache fill
CACHE_COLUMN = Column("cache_fill_s", "Cache fill (s) ↓", r"Cache fill (s) $\downarrow$", 1.0, 1, False)
#: shown last only in scenarios where a strategy records the parameters it adds (results key
#: ``added_parameters``, per experience): the total after the last experience and the mean per experience
ADDED_COLUMNS = (
    Column("added_parameters", "Added params (k) ↓", r"Added params (k) $\downarrow$", 1e-3, 1, False),
    Column("added_per_experience", "Added params / exp. (k) ↓", r"Added / exp.\ (k) $\downarrow$", 1e-3, 1, False),
)


def _recorded(sc: ScenarioResult, key: str) -> bool:
    """True when some strategy of the scenario has a value for ``key``."""
    return any(not math.isnan(s.stats[key].mean) for s in sc.strategies)


def columns_for(sc: ScenarioResult) -> tuple[Column, ...]:
    """The numeric columns of a scenario's table: COLUMNS, plus cache fill time and added parameters
    where recorded (strategies without a record show "—", not 0)."""
    at = [c.key for c in COLUMNS].index("train_time_s") + 1
    cache = (CACHE_COLUMN,) if _recorded(sc, "cache_fill_s") else ()
    added = ADDED_COLUMNS if _recorded(sc, "added_parameters") else ()
    return COLUMNS[:at] + cache + COLUMNS[at:] + added


def best_rows(rows: list[StrategyResult], col: Column) -> set[int]:
    """Indices of the rows holding the best mean (as printed); empty when there is nothing to rank."""
    shown = {
        i: round(s.stats[col.key].mean * col.scale, col.decimals)
        for i, s in enumerate(rows)
        if not math.isnan(s.stats[col.key].mean)
    }
    if len(shown) < 2 or len(set(shown.values())) == 1:
        return set()
    best = max(shown.values()) if col.higher_is_better else min(shown.values())
    return {i for i, v in shown.items() if v == best}


def format_summary(summ: Summary, col: Column, pm: str = " ± ") -> tuple[str, str] | None:
    """(mean, std) as printed for a column, std "" when n == 1; None when there is no value."""
    if math.isnan(summ.mean):
        return None
    mean = f"{summ.mean * col.scale:.{col.decimals}f}"
    std = f"{summ.std * col.scale:.{col.decimals}f}" if not math.isnan(summ.std) else ""
    return mean, std


def _cell(summ: Summary, col: Column, bold: bool) -> str:
    """A document (Markdown/HTML) cell: "mean ± std", bold when best."""
    parts = format_summary(summ, col)
    if parts is None:
        return "—"
    text = f"{parts[0]} ± {parts[1]}" if parts[1] else parts[0]
    return f"**{text}**" if bold else text


def seeds_cell(s: StrategyResult) -> str:
    """Number of successful seeds; "2 of 3 †" when the strategy has fewer than the others."""
    return f"{s.n} of {s.expected_seeds} †" if s.fewer_seeds else str(s.n)


def hparams_cell(s: StrategyResult) -> str:
    """Where the strategy's hyper-parameters came from (benchmarks/config/sources.py), over its runs."""
    labels = sorted({r.hparams for r in s.runs if r.hparams})
    return " / ".join(labels) if labels else "—"


def summary_table(sc: ScenarioResult) -> Table:
    """Strategies as rows, ACC / forgetting / BWT / time / memory (/ added parameters) as mean ± std columns;
    a "Hyper-parameters" column (tuned / hand-set / default) when the runs record where theirs came from."""
    rows, columns = list(sc.strategies), columns_for(sc)
    best = {c.key: best_rows(rows, c) for c in columns}
    origin = any(r.hparams for s in rows for r in s.runs)
    body = tuple(
        (
            plain(strategy_display(s.strategy)),
            *((plain(hparams_cell(s)),) if origin else ()),
            seeds_cell(s),
            *(_cell(s.stats[c.key], c, i in best[c.key]) for c in columns),
        )
        for i, s in enumerate(rows)
    )
    return Table(
        header=("Strategy", *(("Hyper-parameters",) if origin else ()), "Seeds (n)", *(c.label for c in columns)),
        rows=body,
        align=("l", *(("l",) if origin else ()), "r", *("r" for _ in columns)),
        caption=plain(f"{sc.display}: mean ± std over seeds (best mean per column in bold)"),
    )


#: Run attribute -> CSV column stem (units in the name)
CSV_COSTS = {
    "train_time_s": "train_time_s",
    "cache_fill_s": "cache_fill_s",
    "memory_bytes": "replay_memory_bytes",
    "memory_samples": "replay_memory_samples",
    "total_time_s": "total_time_s",
    "eval_time_s": "eval_time_s",
    "cpu_time_s": "cpu_time_s",
    "added_parameters": "added_parameters",
    "added_per_experience": "added_parameters_per_experience",
}
_ID_COLUMNS = (
    "scenario",
    "scenario_name",
    "setting",
    "strategy",
    "strategy_name",
    "n_seeds",
    "n_failed",
    "expected_seeds",
    "fewer_seeds",
    "seeds",
    "reference",
    "hparams",
)


def _csv_header() -> list[str]:
    """Column names: metrics are fractions (``_frac_``), costs carry their unit."""
    stems = [f"{m}_frac" for m in METRIC_INFO] + list(CSV_COSTS.values())
    return list(_ID_COLUMNS) + [f"{stem}_{stat}" for stem in stems for stat in ("mean", "std", "ci95")]


def _num(x: float) -> str:
    """Full-precision number; empty for undefined values."""
    return "" if math.isnan(x) else repr(float(x))


def _csv_row(sc: ScenarioResult, s: StrategyResult) -> list[str]:
    """One (scenario, strategy) row."""
    ident = [
        sc.scenario,
        sc.display,
        sc.setting or "",
        s.strategy,
        strategy_display(s.strategy),
        s.n,
        s.n_failed,
        s.expected_seeds,
        int(s.fewer_seeds),
        " ".join(map(str, s.seeds)),
        " ".join(sc.references),
        hparams_cell(s).replace("—", ""),
    ]
    keys = list(METRIC_INFO) + list(CSV_COSTS)
    stats = [_num(getattr(s.stats[k], stat)) for k in keys for stat in ("mean", "std", "ci95")]
    return [str(v) for v in ident] + stats


def write_summary_csv(scenarios: list[ScenarioResult], path: Path) -> None:
    """summary.csv: one row per (scenario, strategy), fractions not percent."""
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(_csv_header())
        for sc in scenarios:
            for s in sc.strategies:
                writer.writerow(_csv_row(sc, s))
