"""Published numbers of the text literature's protocols next to clbench's runs of the same protocols.

The published side is ``reports/references/text_literature.toml`` (each table with its protocol,
setting, backbone, citation and the repository file + commit it was read from). A scenario of the
results folder takes part when its runs were built by a registered protocol scenario
(``<protocol>_class_il`` / ``<protocol>_task_il``, benchmarks/scenarios/text_protocols.py; read from
each results file's ``config.scenario.registered`` and ``task_order``) that a published table covers.

Per (scenario, published table): one row per published method and metric with the published value,
its backbone and source, clbench's mean ± std over seeds of the strategy the method maps to
(``[methods]``; "not run" when that strategy has no successful run here, "—" when clbench has no
counterpart) and an "other backbone" flag (every backbone that is not all-MiniLM-L6-v2); and, per
metric, Spearman's rho between clbench's and the published ordering over the methods both have.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import tomllib

from benchmarks.results.store import load_result
from reports.aggregate import ScenarioResult
from reports.diagnostics import insert_before_definitions
from reports.document import BulletList, Document, Heading, Paragraph, Table, code, plain
from reports.labels import metric_label, strategy_display
from reports.latex import latex_escape, wrap_table
from reports.published import REFERENCES_DIR
from reports.runs import ReportError
from reports.stats import Summary, spearman

__all__ = [
    "LITERATURE_FILE",
    "Literature",
    "LiteratureComparison",
    "LiteratureRow",
    "PublishedSource",
    "add_literature_section",
    "compare_source",
    "latex_literature_table",
    "literature_comparisons",
    "load_literature",
    "scenario_protocol",
    "write_literature_csv",
]

LITERATURE_FILE = REFERENCES_DIR / "text_literature.toml"
METRICS = ("average_accuracy", "average_incremental_accuracy", "forgetting")  # keys a published cell may hold
SETTINGS = ("class_il", "task_il")
NOT_RUN = "not run"
NO_COUNTERPART = "—"


@dataclass(frozen=True)
class PublishedSource:
    """One published table of one protocol (values in percent)."""

    key: str
    protocol: str  # benchmarks/scenarios/protocols/<protocol>.json
    setting: str  # "class_il" | "task_il"
    task_order: int
    backbone: str
    short: str  # label for table cells, e.g. "Zheng et al. 2024, Table 7"
    citation: str
    repository: str
    commit: str
    file: str
    verified: bool
    runs: int  # runs behind each number; 0 = not stated
    note: str
    cells: dict[str, dict[str, float]]  # method -> metric -> percent, in the table's order

    @property
    def other_backbone(self) -> bool:
        """True unless the published runs used clbench's encoder, all-MiniLM-L6-v2."""
        return "minilm" not in self.backbone.lower()

    @property
    def where(self) -> str:
        """ "owner/repo @ abc1234, path" """
        return f"{self.repository} @ {self.commit[:7]}, {self.file}"


@dataclass(frozen=True)
class Literature:
    """The references file: published tables, method -> strategy map, what was left out and why."""

    short: str
    citation: str
    note: str
    methods: dict[str, str]  # published method -> clbench strategy
    sources: tuple[PublishedSource, ...]
    not_included: tuple[tuple[str, str], ...]  # (what, why)


def _source(d: dict, where: str) -> PublishedSource:
    """One ``[[sources]]`` table, checked (setting, metric keys, numbers)."""
    missing = [k for k in ("key", "protocol", "setting", "backbone", "citation", "cells") if k not in d]
    if missing:
        raise ReportError(f"{where}: missing {', '.join(missing)}")
    if d["setting"] not in SETTINGS:
        raise ReportError(f"{where}: setting {d['setting']!r} must be one of {', '.join(SETTINGS)}")
    cells: dict[str, dict[str, float]] = {}
    for method, values in d["cells"].items():
        bad = sorted(set(values) - set(METRICS)) if isinstance(values, dict) else ["(not a table)"]
        if bad or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values.values()):
            raise ReportError(f"{where} cells {method!r}: expected {{ metric = percent }} with metrics from "
                              f"{', '.join(METRICS)}; got {values!r}")
        cells[str(method)] = {m: float(v) for m, v in values.items()}
    return PublishedSource(
        key=str(d["key"]), protocol=str(d["protocol"]), setting=str(d["setting"]),
        task_order=int(d.get("task_order", 0)), backbone=str(d["backbone"]), short=str(d.get("short", d["key"])),
        citation=str(d["citation"]), repository=str(d.get("repository", "")), commit=str(d.get("commit", "")),
        file=str(d.get("file", "")), verified=bool(d.get("verified", False)), runs=int(d.get("runs", 0)),
        note=str(d.get("note", "")), cells=cells,
    )


def load_literature(path: Path | None = None) -> Literature:
    """Read the references file (``LITERATURE_FILE``, reports/references/text_literature.toml, by default).

    Raises:
        ReportError: a table is malformed (the message names the file and the table).
    """
    path = LITERATURE_FILE if path is None else Path(path)
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    meta = data.get("meta", {})
    sources = tuple(_source(d, f"{path} [[sources]] #{i}") for i, d in enumerate(data.get("sources", [])))
    keys = [s.key for s in sources]
    if len(set(keys)) != len(keys):
        raise ReportError(f"{path}: source keys must be unique, got {keys}")
    return Literature(
        short=str(meta.get("short", "literature")), citation=str(meta.get("citation", "")),
        note=str(meta.get("note", "")), methods={str(k): str(v) for k, v in data.get("methods", {}).items()},
        sources=sources,
        not_included=tuple((str(d.get("what", "")), str(d.get("why", ""))) for d in data.get("not_included", [])),
    )


def scenario_protocol(sc: ScenarioResult, protocols: set[str]) -> tuple[str, int] | None:
    """(protocol, task order) the scenario's runs were built with, or None if not one of ``protocols``."""
    for s in sc.with_results:
        config = load_result(s.runs[0].path).get("config") or {}
        scenario = config.get("scenario") or {}
        registered = str(scenario.get("registered", ""))
        for setting in SETTINGS:
            stem = registered.removesuffix(f"_{setting}")
            if registered.endswith(f"_{setting}") and stem in protocols:
                return stem, int(scenario.get("task_order", 0))
        return None
    return None


@dataclass(frozen=True)
class LiteratureRow:
    """One published method and metric beside clbench's value (percent)."""

    method: str
    strategy: str  # clbench strategy ("" = no counterpart)
    metric: str
    published: float
    ours: Summary | None  # None: no counterpart or not run

    @property
    def status(self) -> str:
        """"ok", "not run" or "no counterpart"."""
        return "no counterpart" if not self.strategy else ("ok" if self.ours is not None else NOT_RUN)


@dataclass(frozen=True)
class LiteratureComparison:
    """One scenario of the results against one published table of its protocol."""

    scenario: ScenarioResult
    protocol: str
    task_order: int
    source: PublishedSource
    rows: tuple[LiteratureRow, ...]
    rho: dict[str, tuple[float, int]]  # metric -> (Spearman's rho, methods it is computed over)


def _percent(s: Summary) -> Summary:
    return Summary(s.n, 100.0 * s.mean, 100.0 * s.std, 100.0 * s.ci95)


def compare_source(sc: ScenarioResult, source: PublishedSource, methods: dict[str, str],
                   protocol: str = "", task_order: int = 0) -> LiteratureComparison:
    """Rows in the published table's order; rho per metric over rows with both values."""
    ours = {s.strategy: s for s in sc.with_results}
    rows = []
    for method, values in source.cells.items():
        strategy = methods.get(method, "")
        for metric, value in values.items():
            mine = ours.get(strategy)
            summary = _percent(mine.stats[metric]) if mine is not None and metric in mine.stats else None
            if summary is not None and math.isnan(summary.mean):
                summary = None
            rows.append(LiteratureRow(method, strategy, metric, value, summary))
    rho = {}
    for metric in dict.fromkeys(r.metric for r in rows):
        both = [r for r in rows if r.metric == metric and r.ours is not None]
        rho[metric] = (spearman([r.ours.mean for r in both], [r.published for r in both]), len(both))
    return LiteratureComparison(sc, protocol or source.protocol, task_order, source, tuple(rows), rho)


def literature_comparisons(scenarios: list[ScenarioResult], lit: Literature) -> list[LiteratureComparison]:
    """Every (scenario, published table) pair whose protocol, setting and task order agree."""
    protocols = {s.protocol for s in lit.sources}
    out = []
    for sc in scenarios:
        found = scenario_protocol(sc, protocols)
        if found is None:
            continue
        protocol, order = found
        for source in lit.sources:
            if (source.protocol, source.setting, source.task_order) == (protocol, sc.setting, order):
                out.append(compare_source(sc, source, lit.methods, protocol, order))
    return out


# -- rendering -----------------------------------------------------------------------------------------
def _ours_text(r: LiteratureRow) -> str:
    """ "91.23 ± 0.45 (n = 3)", "not run" or "—"."""
    if r.ours is None:
        return NOT_RUN if r.strategy else NO_COUNTERPART
    std = f" ± {r.ours.std:.2f}" if r.ours.n > 1 and not math.isnan(r.ours.std) else ""
    return f"{r.ours.mean:.2f}{std} (n = {r.ours.n})"


def rho_sentence(c: LiteratureComparison) -> str:
    """Spearman's rho per metric, with the methods it is computed over."""
    parts = []
    for metric, (rho, n) in c.rho.items():
        names = ", ".join(f"{r.method} = {strategy_display(r.strategy)}" for r in c.rows
                          if r.metric == metric and r.ours is not None)
        value = f"{rho:.3f}" if not math.isnan(rho) else "undefined (needs 2 or more methods with distinct values)"
        parts.append(f"{metric_label(metric)}: ρ = {value} over n = {n} methods" + (f" ({names})" if names else ""))
    return "Spearman's rank correlation of clbench's and the published ordering — " + "; ".join(parts) + "."


def _by_method(c: LiteratureComparison) -> tuple[list[str], dict[str, dict[str, LiteratureRow]]]:
    """(metrics in order of appearance, method -> metric -> row), methods in the published table's order."""
    metrics = list(dict.fromkeys(r.metric for r in c.rows))
    rows: dict[str, dict[str, LiteratureRow]] = {}
    for r in c.rows:
        rows.setdefault(r.method, {})[r.metric] = r
    return metrics, rows


def _method_rows(c: LiteratureComparison, ours, missing: str):
    """(method, clbench strategy, [published, clbench] per metric) for each published method of ``c``;
    ``ours(row)`` formats clbench's value, ``missing`` fills both cells of a metric the method lacks."""
    metrics, by_method = _by_method(c)
    for method, cells in by_method.items():
        values = []
        for m in metrics:
            r = cells.get(m)
            values += [f"{r.published:.2f}", ours(r)] if r else [missing, missing]
        yield method, next(iter(cells.values())).strategy, values


def _table(c: LiteratureComparison) -> Table:
    """One row per published method: published and clbench value per metric, backbone, source, flag."""
    src = c.source
    metrics, _ = _by_method(c)
    body = []
    for method, strategy, values in _method_rows(c, lambda r: plain(_ours_text(r)), "–"):
        body.append((plain(method), plain(strategy_display(strategy)) if strategy else NO_COUNTERPART, *values,
                     plain(src.backbone), plain(src.short), "yes" if src.other_backbone else "no"))
    header = ["Method (published)", "clbench strategy"]
    for m in metrics:
        header += [plain(f"{metric_label(m)} published (%)"), plain(f"{metric_label(m)} clbench (%)")]
    return Table(
        header=(*header, "Backbone", "Source", "Other backbone"), rows=tuple(body),
        align=("l", "l", *("r",) * (2 * len(metrics)), "l", "l", "l"),
        caption=plain(f"{c.scenario.display}: published ({src.short}) vs clbench, protocol {c.protocol}, "
                      f"task order {c.task_order}"),
    )


def _source_paragraph(src: PublishedSource) -> str:
    runs = f"{src.runs} run(s) per number" if src.runs else "runs per number not stated"
    verified = "verified against the repository file" if src.verified else "NOT verified"
    return (f"Source: {plain(src.citation)}; read from {code(src.where)} ({verified}; {runs}). "
            f"{plain(src.note)}")


def literature_section(comparisons: list[LiteratureComparison], lit: Literature) -> list:
    """The section's blocks (empty when no scenario runs a protocol with published numbers)."""
    if not comparisons:
        return []
    intro = (
        "Scenarios built by a literature protocol (" + code("benchmarks/scenarios/text_protocols.py") + ") "
        "beside the published numbers of that protocol (" + code("reports/references/text_literature.toml")
        + "). clbench: mean ± std over seeds of the strategy the published method maps to; “not run”: that "
        "strategy has no successful run here; “—”: clbench has no counterpart. " + plain(lit.note)
    )
    blocks: list = [Heading(2, "Published results of these protocols"), Paragraph(intro)]
    for c in comparisons:
        blocks += [Heading(3, plain(f"{c.scenario.display} vs {c.source.short}")), _table(c),
                   Paragraph(plain(rho_sentence(c)), kind="note"), Paragraph(_source_paragraph(c.source))]
    if lit.not_included:
        blocks += [Paragraph("Published numbers not included:"),
                   BulletList(tuple(f"{plain(what)}: {plain(why)}" for what, why in lit.not_included))]
    return blocks


def add_literature_section(doc: Document, scenarios: list[ScenarioResult],
                           lit: Literature | None = None) -> list[LiteratureComparison]:
    """Insert the section before the metric definitions (no-op without protocol runs); return the comparisons."""
    lit = load_literature() if lit is None else lit
    comparisons = literature_comparisons(scenarios, lit)
    insert_before_definitions(doc, literature_section(comparisons, lit))
    return comparisons


def latex_literature_table(c: LiteratureComparison) -> str:
    """A booktabs table of one comparison (for tables.tex): one row per published method."""

    def cell(r: LiteratureRow | None) -> str:
        if r is None:
            return "--"
        if r.ours is None:
            return NOT_RUN if r.strategy else "--"
        std = f" \\pm {r.ours.std:.2f}" if r.ours.n > 1 and not math.isnan(r.ours.std) else ""
        return f"${r.ours.mean:.2f}{std}$ ({r.ours.n})"

    src = c.source
    metrics, _ = _by_method(c)
    body = []
    for method, strategy, values in _method_rows(c, cell, "--"):
        body.append(" & ".join([latex_escape(method), latex_escape(strategy_display(strategy)) if strategy else "--",
                                *values]))
    rhos = "; ".join(f"{latex_escape(metric_label(m))}: $\\rho = {rho:.3f}$ ($n = {n}$)" if not math.isnan(rho)
                     else f"{latex_escape(metric_label(m))}: $\\rho$ undefined ($n = {n}$)"
                     for m, (rho, n) in c.rho.items())
    caption = (f"{latex_escape(c.scenario.display)} (protocol {latex_escape(c.protocol)}, task order {c.task_order}) "
               f"vs {latex_escape(src.citation)}, backbone {latex_escape(src.backbone)}"
               + (" (other backbone)" if src.other_backbone else "")
               + f"; source {latex_escape(src.where)}. Published and clbench values in \\%; clbench: mean $\\pm$ "
               f"std over seeds (n). Spearman: {rhos}.")
    label = "tab:literature-" + "".join(ch if ch.isalnum() else "-" for ch in f"{c.scenario.key}-{src.key}".lower())
    header = " & ".join(["Method (published)", "clbench"]
                        + [f"{latex_escape(metric_label(m))} {side}" for m in metrics for side in ("publ.", "clbench")])
    return wrap_table(caption, label, "l l " + "r" * (2 * len(metrics)), header, body)


CSV_HEADER = ("scenario", "suite", "protocol", "task_order", "setting", "source", "method", "strategy", "metric",
              "published_pct", "backbone", "other_backbone", "verified", "clbench_mean_pct", "clbench_std_pct",
              "clbench_n", "status", "spearman_rho", "spearman_n", "source_file")


def write_literature_csv(comparisons: list[LiteratureComparison], path: Path) -> None:
    """literature.csv: one row per (scenario, published table, method, metric)."""
    def num(x: float) -> str:
        return "" if math.isnan(x) else repr(float(x))

    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_HEADER)
        for c in comparisons:
            for r in c.rows:
                rho, n = c.rho[r.metric]
                ours = r.ours or Summary(0, math.nan, math.nan, math.nan)
                writer.writerow([c.scenario.scenario, c.scenario.suite or "", c.protocol, c.task_order,
                                 c.source.setting, c.source.key, r.method, r.strategy, r.metric, num(r.published),
                                 c.source.backbone, int(c.source.other_backbone), int(c.source.verified),
                                 num(ours.mean), num(ours.std), ours.n or "", r.status, num(rho), n,
                                 c.source.where])

