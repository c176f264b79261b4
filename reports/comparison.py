"""The comparison with a published table as report blocks, CSV rows and shared cell texts.

Columns: our ACC and the published ACC as mean ± std (n); the difference ours - published with the
95% CI of Welch's t test (unequal variances, Welch-Satterthwaite df); the verdict "consistent" when
that CI contains 0; the acceptance criterion |difference| <= max(tolerance_pp, tolerance_std x
published std) as a separate column; per scenario, Spearman's rank correlation of the two orderings.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from reports.aggregate import ScenarioResult
from reports.document import Heading, Paragraph, Table, plain
from reports.labels import strategy_display
from reports.published import Comparison, ComparisonRow, PublishedTable, compare
from reports.stats import Summary, Welch

__all__ = [
    "acceptance_label",
    "ci_text",
    "comparison_blocks",
    "csv_number",
    "interval_text",
    "mean_std_n",
    "rho_text",
    "signed",
    "verdict_text",
    "within_text",
    "write_comparison_csv",
]

EXPLANATION = (
    "Columns: ACC in percent as mean ± std (n = number of runs); difference = ours − published in "
    "percentage points (pp) with its 95% confidence interval from Welch's t test (unequal variances; "
    "df = Welch–Satterthwaite degrees of freedom). Verdict: “consistent” when the CI contains 0, i.e. "
    "the difference is within what seed-to-seed noise on both sides explains; with a single run on "
    "either side, or no published std, the CI is undefined. Acceptance: the criterion "
    "|difference| ≤ max({pp:g} pp, {k:g} × published std), judged separately from the CI. "
    "Spearman ρ: rank correlation of our ordering of these methods with the published ordering "
    "(ties get average ranks)."
)


def mean_std_n(s: Summary, pm: str = " ± ") -> str:
    """ "99.40 ± 0.08 (n = 10)"; the std is left out when unknown and n when not given."""
    text = f"{s.mean:.2f}" + (f"{pm}{s.std:.2f}" if not math.isnan(s.std) else "")
    if s.n == 0:
        return text + " (std, n not given)" if math.isnan(s.std) else text + " (n not given)"
    return text + f" (n = {s.n})"


def signed(x: float) -> str:
    """+1.23 / −1.23 with a true minus sign."""
    return f"{x:+.2f}".replace("-", "−")


def ci_text(r: ComparisonRow) -> str:
    """ "[−0.51, +2.97]", or why the interval is undefined."""
    return interval_text(r.diff) if r.diff.defined else "undefined: " + _undefined_reason(r)


def interval_text(d: Welch) -> str:
    """ "[−0.51, +2.97]": a defined Welch interval with signed bounds."""
    return f"[{signed(d.low)}, {signed(d.high)}]"


def _undefined_reason(r: ComparisonRow) -> str:
    """Why Welch's CI cannot be computed for this row."""
    if r.ours.n < 2:
        return f"ours n = {r.ours.n}"
    if r.published.n < 2 or math.isnan(r.published.std):
        return "published std or n unknown"
    return "no spread"


def verdict_text(r: ComparisonRow) -> str:
    """ "consistent", "not consistent" or "undefined (...)"."""
    if r.consistent is None:
        return f"undefined ({_undefined_reason(r)})"
    return "consistent" if r.consistent else "not consistent"


def within_text(r: ComparisonRow) -> str:
    """ "yes (bound 2.00)" / "no (bound 4.02)"; "std unknown" when the bound is the floor only."""
    unknown = ", std unknown" if math.isnan(r.published.std) else ""
    return f"{'yes' if r.within else 'no'} (bound {r.bound_pp:.2f}{unknown})"


def acceptance_label(table: PublishedTable) -> str:
    """Column heading of the acceptance criterion."""
    return f"|diff| ≤ max({table.tolerance_pp:g} pp, {table.tolerance_std:g} × std)"


def rho_text(c: Comparison) -> str:
    """ "Spearman ρ = 0.952 over n = 12 methods" (or why it is undefined)."""
    if math.isnan(c.rho):
        return f"Spearman ρ undefined over n = {c.n_rank} methods (needs 2 or more with distinct values)"
    return f"Spearman ρ = {c.rho:.3f} over n = {c.n_rank} methods"


def _row(r: ComparisonRow, with_notes: bool) -> tuple[str, ...]:
    """One table row; failing verdicts in bold."""
    df = f"{r.diff.df:.1f}" if not math.isnan(r.diff.df) else "—"
    verdict = plain(verdict_text(r))
    within = plain(within_text(r))
    cells = (
        plain(r.method),
        plain(strategy_display(r.strategy)),
        mean_std_n(r.ours),
        plain(mean_std_n(r.published)),
        signed(r.diff_pp),
        plain(ci_text(r)),
        df,
        f"**{verdict}**" if r.consistent is False else verdict,
        f"**{within}**" if r.flagged else within,
    )
    return cells + ((plain(r.note) or "—",) if with_notes else ())


def _table(sc: ScenarioResult, c: Comparison) -> Table:
    """The comparison table of one scenario."""
    notes = any(r.note for r in c.rows)
    header = (
        "Method (paper)",
        "Strategy",
        "Ours ACC (%)",
        "Published ACC (%)",
        "Diff. (pp)",
        "95% CI (pp)",
        "df",
        "Verdict (CI)",
        plain(acceptance_label(c.table)),
    ) + (("Protocol",) if notes else ())
    return Table(
        header=header,
        rows=tuple(_row(r, notes) for r in c.rows),
        align=("l", "l", "r", "r", "r", "r", "r", "l", "l") + (("l",) if notes else ()),
        caption=plain(f"{sc.display}: our ACC vs {c.table.citation}"),
    )


def _summary(c: Comparison) -> tuple[str, bool]:
    """One sentence on the verdicts, the acceptance count and the rank agreement; True if any fails."""
    n = len(c.rows)
    off = sum(r.flagged for r in c.rows)
    bad = sum(r.consistent is False for r in c.rows)
    undefined = sum(r.consistent is None for r in c.rows)
    text = (
        f"{n - off} of {n} methods meet the acceptance criterion; {n - bad - undefined} of {n} are "
        f"consistent (95% CI of the difference contains 0)"
        + (f", {undefined} undefined" if undefined else "")
        + f". {rho_text(c)}."
    )
    return text, bool(off or bad)


def _coverage(c: Comparison) -> list:
    """Notes on published rows without a run here and on our strategies without a published row."""
    out = []
    if c.missing:
        names = [m + (f" ({c.table.protocol[m]})" if c.table.protocol.get(m) else "") for m in c.missing]
        out.append(Paragraph(plain(f"Published rows with no run in these results: {', '.join(names)}.")))
    if c.unmatched:
        names = ", ".join(strategy_display(s) for s in c.unmatched)
        out.append(
            Paragraph(
                plain(
                    f"Not compared (no row of the published table, see [methods] in "
                    f"reports/references/{c.table.key}.toml): {names}."
                )
            )
        )
    return out


def comparison_blocks(sc: ScenarioResult, table: PublishedTable) -> list:
    """Heading, table, verdict summary, column explanation and notes of one comparison."""
    heading = Heading(3, f"Comparison with {plain(table.short)}")
    c = compare(sc, table)
    if not c.rows:
        return [heading, Paragraph(f"No strategy of this scenario appears in {plain(table.citation)}.", kind="note")]
    text, failing = _summary(c)
    explanation = EXPLANATION.format(pp=table.tolerance_pp, k=table.tolerance_std)
    return [
        heading,
        _table(sc, c),
        Paragraph(plain(text), kind="warning" if failing else "note"),
        Paragraph(plain(explanation + (f" {table.note}" if table.note else ""))),
        *_coverage(c),
    ]


CSV_HEADER = (
    "scenario",
    "suite",
    "reference",
    "strategy",
    "method",
    "protocol_note",
    "ours_mean_pct",
    "ours_std_pct",
    "ours_n",
    "published_mean_pct",
    "published_std_pct",
    "published_n",
    "diff_pp",
    "ci95_low_pp",
    "ci95_high_pp",
    "welch_df",
    "consistent",
    "bound_pp",
    "within_bound",
    "spearman_rho",
    "spearman_n",
)


def csv_number(x: float) -> str:
    """Full precision; empty when undefined."""
    return "" if math.isnan(x) else repr(float(x))


def _flag(x: bool | None) -> str:
    """1 / 0, empty when undefined."""
    return "" if x is None else str(int(x))


def _csv_row(sc: ScenarioResult, c: Comparison, r: ComparisonRow) -> list[str]:
    """One comparison row in CSV form (percent, pp)."""
    d = r.diff
    return [
        sc.scenario,
        sc.suite or "",
        c.table.key,
        r.strategy,
        r.method,
        r.note,
        csv_number(r.ours.mean),
        csv_number(r.ours.std),
        str(r.ours.n),
        csv_number(r.published.mean),
        csv_number(r.published.std),
        str(r.published.n) if r.published.n else "",
        csv_number(d.diff),
        csv_number(d.low),
        csv_number(d.high),
        csv_number(d.df),
        _flag(r.consistent),
        csv_number(r.bound_pp),
        _flag(r.within),
        csv_number(c.rho),
        str(c.n_rank),
    ]


def write_comparison_csv(pairs: list[tuple[ScenarioResult, Comparison]], path: Path) -> None:
    """comparison.csv: one row per (scenario, published table, strategy) compared."""
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_HEADER)
        for sc, c in pairs:
            writer.writerows(_csv_row(sc, c, r) for r in c.rows)
