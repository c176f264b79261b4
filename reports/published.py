"""Published tables (reports/references/<key>.toml) and the comparison of our ACC with them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import tomllib

from reports.aggregate import ScenarioResult
from reports.stats import Summary

__all__ = ["REFERENCES_DIR", "ComparisonRow", "PublishedTable", "compare", "load_published"]

REFERENCES_DIR = Path(__file__).resolve().parent / "references"
DEFAULT_TOLERANCE_PP = 3.0


@dataclass(frozen=True)
class PublishedTable:
    """Published ACC (percent) per clbench scenario and strategy, with its citation."""

    key: str
    short: str  # e.g. "Hsu et al. 2018", for headings
    citation: str
    tolerance_pp: float
    note: str
    methods: dict[str, str]  # strategy -> method name in the paper
    acc_pct: dict[str, dict[str, float]]  # scenario -> strategy -> ACC (%)


@dataclass(frozen=True)
class ComparisonRow:
    """Our ACC next to the published one; ``diff_pp`` = ours - published (percentage points)."""

    strategy: str
    method: str
    ours: Summary  # fractions
    published_pct: float
    diff_pp: float
    flagged: bool


def load_published(key: str, folder: Path = REFERENCES_DIR) -> PublishedTable | None:
    """The published table ``key`` (e.g. "hsu2018"), or None if no such file exists."""
    path = Path(folder) / f"{key}.toml"
    if not path.is_file():
        return None
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    meta = data.get("meta", {})
    return PublishedTable(
        key=key,
        short=str(meta.get("short", meta.get("citation", key))),
        citation=str(meta.get("citation", key)),
        tolerance_pp=float(meta.get("tolerance_pp", DEFAULT_TOLERANCE_PP)),
        note=str(meta.get("note", "")),
        methods={str(k): str(v) for k, v in data.get("methods", {}).items()},
        acc_pct={s: {k: float(v) for k, v in row.items()} for s, row in data.get("acc_pct", {}).items()},
    )


def compare(scenario: ScenarioResult, table: PublishedTable) -> list[ComparisonRow]:
    """One row per strategy of ``scenario`` that has both our ACC and a published ACC."""
    published = table.acc_pct.get(scenario.scenario, {})
    rows = []
    for s in scenario.with_results:
        if s.strategy not in published:
            continue
        ours = s.stats["average_accuracy"]
        diff = 100.0 * ours.mean - published[s.strategy]
        rows.append(
            ComparisonRow(
                strategy=s.strategy,
                method=table.methods.get(s.strategy, s.strategy),
                ours=ours,
                published_pct=published[s.strategy],
                diff_pp=diff,
                flagged=not math.isnan(diff) and abs(diff) > table.tolerance_pp,
            )
        )
    return rows
