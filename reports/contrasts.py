""""Does it help?" section: each strategy against the naive baseline, each combination against its parts.

Per scenario, every strategy S other than the baseline (``naive``, when the scenario has it) gets a row
S − naive; every combination named with ``+`` (``replay+attn_reg_10``) also gets a row against each of
its parts that the scenario has (``combination_parts``). A row shows S's ACC and forgetting (mean ± std
over seeds, n) and the difference of the mean ACCs in percentage points with the 95% CI of Welch's t
test (reports/stats.py ``welch``). Verdict: "helps" when the CI lies above 0, "hurts" when below,
"no significant difference" when it contains 0, "n/a" when either side has fewer than 2 seeds.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from reports.aggregate import ScenarioResult, StrategyResult
from reports.comparison import csv_number, interval_text, mean_std_n, signed
from reports.diagnostics import insert_before_definitions
from reports.document import Document, Heading, Paragraph, Table, code, plain, slug
from reports.labels import strategy_display
from reports.stats import Summary, Welch, welch

__all__ = [
    "BASELINE",
    "CSV_HEADER",
    "Contrast",
    "add_contrasts_section",
    "combination_parts",
    "contrasts_section",
    "percent",
    "scenario_contrasts",
    "write_contrasts_csv",
]

BASELINE = "naive"
TITLE = "Does it help? Differences with 95% confidence intervals"
_VARIANT = re.compile(r"_\d+(?:\.\d+)?$")  # "attn_reg_10" -> variant "_10" of "attn_reg"
CSV_HEADER = ("scenario", "strategy", "reference", "diff", "ci_low", "ci_high", "df", "n_a", "n_b", "verdict",
              "suite")
INTRO = (
    "Each strategy against " + code(BASELINE) + " in the same scenario, and each combination (a name with "
    + code("+") + ") against each of its parts the scenario has. ACC and forgetting of the strategy: mean ± std "
    "over seeds (n). Δ ACC: strategy − reference, in percentage points, with the 95% confidence interval of "
    "Welch's t test (unequal variances). Verdict: **helps** when the interval lies above 0, **hurts** when below, "
    "“no significant difference” when it contains 0, “n/a” with fewer than 2 seeds on either side. Seeds "
    "are treated as independent samples (no pairing); with 3 seeds a side the interval is wide."
)


@dataclass(frozen=True)
class Contrast:
    """Strategy ``a`` against reference ``b`` in one scenario; ``diff`` is mean ACC(a) − ACC(b) in pp."""

    a: StrategyResult
    b: StrategyResult
    diff: Welch

    @property
    def verdict(self) -> str:
        """ "helps", "hurts", "no significant difference", or "n/a" (CI undefined)."""
        if not self.diff.defined:
            return "n/a"
        if self.diff.low > 0.0:
            return "helps"
        return "hurts" if self.diff.high < 0.0 else "no significant difference"


def percent(s: Summary) -> Summary:
    """A summary of fractions in percent."""
    return Summary(s.n, 100.0 * s.mean, 100.0 * s.std, 100.0 * s.ci95)


def _acc(s: StrategyResult) -> Summary:
    return percent(s.stats["average_accuracy"])


def _cell(s: Summary) -> str:
    """ "62.00 ± 2.00 (n = 3)"; "—" when no seed has a value (e.g. forgetting of a single experience)."""
    return "—" if s.n == 0 else mean_std_n(s)


def combination_parts(name: str, present: Collection[str]) -> list[str]:
    """The strategies a ``+`` combination is made of, among ``present``; [] for a single strategy.

    Args:
        name: strategy name, e.g. ``replay+attn_reg_10``; parts are split on ``+``.
        present: the scenario's strategy names. A part matches itself if present, else its name
            without a trailing ``_<number>`` variant suffix (``attn_reg_10`` -> ``attn_reg``); parts
            with neither are left out.
    """
    if "+" not in name:
        return []
    out: list[str] = []
    for part in name.split("+"):
        match = next((c for c in (part, _VARIANT.sub("", part)) if c in present), None)
        if match is not None and match != name and match not in out:
            out.append(match)
    return out


def _contrast(a: StrategyResult, b: StrategyResult) -> Contrast:
    return Contrast(a, b, welch(_acc(a), _acc(b)))


def scenario_contrasts(sc: ScenarioResult) -> list[Contrast]:
    """Per strategy (best ACC first): vs the baseline when the scenario has it, then vs its parts."""
    by_name = {s.strategy: s for s in sc.with_results}
    base = by_name.get(BASELINE)
    out = []
    for s in sc.with_results:
        if s.strategy == BASELINE:
            continue
        refs = ([base] if base else []) + [by_name[p] for p in combination_parts(s.strategy, by_name)
                                           if p != BASELINE]
        out += [_contrast(s, ref) for ref in refs]
    return out


def _verdict_cell(c: Contrast) -> str:
    return f"**{c.verdict}**" if c.verdict in ("helps", "hurts") else c.verdict


def _row(c: Contrast) -> tuple[str, ...]:
    d = c.diff
    return (plain(strategy_display(c.a.strategy)), plain(strategy_display(c.b.strategy)), _cell(_acc(c.a)),
            _cell(percent(c.a.stats["forgetting"])), signed(d.diff) if not math.isnan(d.diff) else "—",
            interval_text(d) if d.defined else "—", _verdict_cell(c))


def _table(sc: ScenarioResult, contrasts: list[Contrast]) -> Table:
    base = next((c.b for c in contrasts if c.b.strategy == BASELINE), None)
    where = f"; {BASELINE} ACC {_cell(_acc(base))}" if base else f"; no {BASELINE} run"
    return Table(
        header=("Strategy", "Compared with", "ACC (%)", "Forgetting (%)", "Δ ACC (pp)", "95% CI (pp)", "Verdict"),
        rows=tuple(_row(c) for c in contrasts),
        align=("l", "l", "r", "r", "r", "r", "l"),
        caption=plain(f"{sc.display}: strategy − reference in ACC (Welch 95% CI){where}"),
    )


def contrasts_section(pairs: list[tuple[ScenarioResult, list[Contrast]]]) -> list:
    """The section's blocks, one table per scenario with contrasts (empty when there are none)."""
    blocks: list = []
    for sc, contrasts in pairs:
        if contrasts:
            blocks += [Heading(3, plain(sc.display), anchor=slug("contrasts " + sc.key)), _table(sc, contrasts)]
    return [Heading(2, TITLE), Paragraph(INTRO), *blocks] if blocks else []


def add_contrasts_section(doc: Document, pairs: list[tuple[ScenarioResult, list[Contrast]]]) -> None:
    """Insert the section before the metric definitions; no-op when nothing is compared."""
    insert_before_definitions(doc, contrasts_section(pairs))


def _csv_row(sc: ScenarioResult, c: Contrast) -> list[str]:
    d = c.diff
    return [sc.scenario, c.a.strategy, c.b.strategy, csv_number(d.diff), csv_number(d.low), csv_number(d.high),
            csv_number(d.df), str(c.a.stats["average_accuracy"].n), str(c.b.stats["average_accuracy"].n),
            c.verdict, sc.suite or ""]


def write_contrasts_csv(pairs: list[tuple[ScenarioResult, list[Contrast]]], path: Path) -> None:
    """contrasts.csv: one row per contrast; diff and CI in percentage points of ACC (empty when undefined)."""
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_HEADER)
        for sc, contrasts in pairs:
            writer.writerows(_csv_row(sc, c) for c in contrasts)
