"""Published tables (reports/references/<key>.toml) and the comparison of our ACC with them.

A reference file holds, per clbench scenario, the published cells of one table as
``row = { mean, std, n }`` in percent (``[cells.<scenario>]``), a map from clbench strategy (or
suite variant) to the row it reproduces (``[methods]``) and notes on rows whose numbers follow
another protocol (``[protocol]``). The older format ``[acc_pct.<scenario>] strategy = mean`` still
loads: its spread is unknown, so no confidence interval can be computed and the report says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomllib

from reports.aggregate import ScenarioResult
from reports.runs import ReportError
from reports.stats import Summary, Welch, spearman, welch

__all__ = [
    "REFERENCES_DIR",
    "Comparison",
    "ComparisonRow",
    "PublishedTable",
    "compare",
    "load_published",
    "published_cell",
    "scenario_comparisons",
]

REFERENCES_DIR = Path(__file__).resolve().parent / "references"
DEFAULT_TOLERANCE_PP = 2.0
DEFAULT_TOLERANCE_STD = 2.0


@dataclass(frozen=True)
class PublishedTable:
    """Published ACC cells (percent, mean ± std over n runs) per clbench scenario, with the citation."""

    key: str
    short: str  # e.g. "Hsu et al. 2018", for headings
    citation: str
    tolerance_pp: float  # acceptance: |diff| <= max(tolerance_pp, tolerance_std x published std)
    tolerance_std: float
    note: str
    methods: dict[str, str]  # strategy -> row name in the paper
    protocol: dict[str, str]  # row -> note on its protocol ("" / absent: the reference protocol)
    cells: dict[str, dict[str, Summary]]  # scenario -> row -> published cell (percent; ci95 NaN)

    def bound_pp(self, cell: Summary) -> float:
        """Acceptance bound in pp: max(tolerance_pp, tolerance_std x std); tolerance_pp if std unknown."""
        return self.tolerance_pp if math.isnan(cell.std) else max(self.tolerance_pp, self.tolerance_std * cell.std)


@dataclass(frozen=True)
class ComparisonRow:
    """Our ACC next to the published one (percent); ``diff`` = ours - published with Welch's 95% CI."""

    strategy: str
    method: str  # row name in the paper
    note: str  # protocol note of that row ("" when it follows the reference protocol)
    ours: Summary  # percent
    published: Summary  # percent; std NaN and n 0 when the table does not give them
    diff: Welch  # percentage points
    bound_pp: float  # acceptance bound (percentage points)

    @property
    def diff_pp(self) -> float:
        """ours - published, percentage points."""
        return self.diff.diff

    @property
    def within(self) -> bool:
        """The acceptance criterion: |ours - published| <= bound_pp."""
        return not math.isnan(self.diff.diff) and abs(self.diff.diff) <= self.bound_pp

    @property
    def flagged(self) -> bool:
        """True when the difference is beyond the acceptance bound."""
        return not math.isnan(self.diff.diff) and not self.within

    @property
    def consistent(self) -> bool | None:
        """Whether the 95% CI of the difference contains 0 (None: CI undefined)."""
        return self.diff.contains_zero


@dataclass(frozen=True)
class Comparison:
    """One scenario against one published table: rows, rank agreement, published rows not run here."""

    table: PublishedTable
    rows: tuple[ComparisonRow, ...]
    rho: float  # Spearman rank correlation of our means and the published means over ``rows``
    missing: tuple[str, ...]  # published rows of this scenario without a run of ours
    unmatched: tuple[str, ...] = ()  # our strategies that map to no published row of this scenario

    @property
    def n_rank(self) -> int:
        """Number of methods the rank correlation is computed over."""
        return len(self.rows)


def published_cell(value: Any, where: str) -> Summary:
    """A cell ``{mean, std, n}`` (std, n optional) or a bare mean, as a Summary in percent.

    Args:
        value: the TOML value.
        where: file and table, for the error message.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Summary(0, float(value), math.nan, math.nan)
    if not isinstance(value, dict) or not isinstance(value.get("mean"), (int, float)):
        raise ReportError(f"{where}: expected a number or {{ mean = ..., std = ..., n = ... }}, got {value!r}")
    unknown = set(value) - {"mean", "std", "n"}
    if unknown:
        raise ReportError(f"{where}: unknown keys {sorted(unknown)}; a cell has mean, std, n")
    n = value.get("n", 0)
    if not isinstance(n, int) or n < 0:
        raise ReportError(f"{where}: n must be a non-negative integer (runs behind the mean), got {n!r}")
    return Summary(n, float(value["mean"]), float(value.get("std", math.nan)), math.nan)


def _cells(data: dict[str, Any], methods: dict[str, str], path: Path) -> dict[str, dict[str, Summary]]:
    """``[cells]`` (row -> cell), or the older ``[acc_pct]`` (strategy -> mean) turned into rows."""
    cells = {
        sc: {str(row): published_cell(v, f"{path} [cells.{sc}] {row!r}") for row, v in rows.items()}
        for sc, rows in data.get("cells", {}).items()
    }
    for sc, by_strategy in data.get("acc_pct", {}).items():
        for strategy, v in by_strategy.items():
            row = methods.setdefault(str(strategy), str(strategy))
            cell = published_cell(v, f"{path} [acc_pct.{sc}] {strategy!r}")
            old = cells.setdefault(sc, {}).setdefault(row, cell)
            if old != cell:
                raise ReportError(f"{path} [acc_pct.{sc}]: {row!r} has two different values; give one per row")
    return cells


def load_published(key: str, folder: Path = REFERENCES_DIR) -> PublishedTable | None:
    """The published table ``key`` (e.g. "hsu2018"), or None if no such file exists.

    Raises:
        ReportError: the file exists but a cell is malformed (the message names file and cell).
    """
    path = Path(folder) / f"{key}.toml"
    if not path.is_file():
        return None
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    meta = data.get("meta", {})
    methods = {str(k): str(v) for k, v in data.get("methods", {}).items()}
    cells = _cells(data, methods, path)
    return PublishedTable(
        key=key,
        short=str(meta.get("short", meta.get("citation", key))),
        citation=str(meta.get("citation", key)),
        tolerance_pp=float(meta.get("tolerance_pp", DEFAULT_TOLERANCE_PP)),
        tolerance_std=float(meta.get("tolerance_std", DEFAULT_TOLERANCE_STD)),
        note=str(meta.get("note", "")),
        methods=methods,
        protocol={str(k): str(v) for k, v in data.get("protocol", {}).items()},
        cells=cells,
    )


def _percent(s: Summary) -> Summary:
    """A summary of fractions in percent."""
    return Summary(s.n, 100.0 * s.mean, 100.0 * s.std, 100.0 * s.ci95)


def compare(scenario: ScenarioResult, table: PublishedTable) -> Comparison:
    """One row per strategy of ``scenario`` with both our ACC and a published cell, in the paper's row order."""
    published = table.cells.get(scenario.scenario, {})
    rows = []
    order = {row: i for i, row in enumerate(published)}  # the paper's row order
    for s in sorted(scenario.with_results, key=lambda s: order.get(table.methods.get(s.strategy), len(order))):
        row = table.methods.get(s.strategy)
        if row not in published or math.isnan(s.stats["average_accuracy"].mean):
            continue
        ours, cell = _percent(s.stats["average_accuracy"]), published[row]
        rows.append(
            ComparisonRow(
                strategy=s.strategy,
                method=row,
                note=table.protocol.get(row, ""),
                ours=ours,
                published=cell,
                diff=welch(ours, cell),
                bound_pp=table.bound_pp(cell),
            )
        )
    rho = spearman([r.ours.mean for r in rows], [r.published.mean for r in rows])
    done = {r.method for r in rows}
    missing = tuple(r for r in published if r not in done)
    unmatched = tuple(s.strategy for s in scenario.with_results if table.methods.get(s.strategy) not in published)
    return Comparison(table, tuple(rows), rho, missing, unmatched)


def scenario_comparisons(sc: ScenarioResult, published: dict[str, PublishedTable | None]) -> list[Comparison]:
    """Comparisons of ``sc`` with every published table it declares that exists and covers it."""
    tables = [published.get(key) for key in sc.references]
    return [c for c in (compare(sc, t) for t in tables if t is not None) if c.rows]
