"""How the results were made (versions, device, commits, dates, compute) and which runs failed."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from reports.document import Table, code, plain
from reports.labels import scenario_display, strategy_display
from reports.runs import Run

__all__ = ["date_range", "failed_table", "format_duration", "package_table", "provenance_items"]

MAX_MESSAGE = 500


def format_duration(seconds: float) -> str:
    """Human-readable duration, e.g. 3725 -> "1 h 02 min 05 s"."""
    if math.isnan(seconds):
        return "unknown"
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min {s:02d} s" if h else f"{m} min {s:02d} s"


def _parse_time(value: Any) -> datetime | None:
    """An ISO timestamp, or None when missing or unreadable."""
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def date_range(runs: Iterable[Run]) -> str:
    """Earliest start to latest finish over all runs."""
    runs = list(runs)
    starts = [t for t in (_parse_time(r.provenance.get("started_at")) for r in runs) if t]
    ends = [t for t in (_parse_time(r.provenance.get("finished_at")) for r in runs) if t]
    if not starts and not ends:
        return "unknown"
    first, last = min(starts or ends), max(ends or starts)
    return f"{first.isoformat(timespec='seconds')} to {last.isoformat(timespec='seconds')}"


def _values(runs: list[Run], key: str) -> str:
    """Distinct values of a provenance field with their run counts when they differ."""
    counts = Counter(str(r.provenance.get(key, "unknown")) for r in runs)
    if len(counts) == 1:
        return code(next(iter(counts)))
    return ", ".join(f"{code(v)} ({c} runs)" for v, c in counts.most_common())


def provenance_items(runs: list[Run]) -> tuple[str, ...]:
    """Bullet items describing where and when the runs were made."""
    status = Counter(r.status for r in runs)
    total = math.fsum(r.total_time_s for r in runs if not math.isnan(r.total_time_s))
    dirty = sum(bool(r.provenance.get("git_dirty")) for r in runs)
    suites = sorted({str(r.suite) for r in runs if r.suite})
    return (
        f"Runs: {len(runs)} ({', '.join(f'{c} {s}' for s, c in sorted(status.items()))})"
        + (f"; suites: {', '.join(code(s) for s in suites)}" if suites else ""),
        f"Git commit: {_values(runs, 'git_commit')}" + (f" (uncommitted changes in {dirty} runs)" if dirty else ""),
        f"Device: {_values(runs, 'device')}; device name: {_values(runs, 'device_name')}",
        f"Python: {_values(runs, 'python')}; platform: {_values(runs, 'platform')}",
        f"Host: {_values(runs, 'hostname')}",
        f"Dates: {date_range(runs)}",
        f"Total compute time (sum of total_time_s over all runs, failed included): {format_duration(total)}",
    )


def package_table(runs: list[Run]) -> Table:
    """Package versions; a package with several versions across runs lists each with its count."""
    versions: dict[str, Counter] = defaultdict(Counter)
    for r in runs:
        for name, version in (r.provenance.get("packages") or {}).items():
            versions[str(name)][str(version)] += 1
    rows = tuple(
        (code(name), ", ".join(code(v) if len(c) == 1 else f"{code(v)} ({n} runs)" for v, n in c.most_common()))
        for name, c in sorted(versions.items())
    )
    return Table(header=("Package", "Version"), rows=rows, caption="Package versions recorded by the runs")


def _message(error: dict[str, Any]) -> str:
    """The error message, shortened (visibly) when very long."""
    text = " ".join(str(error.get("message") or "(no error recorded)").split())
    return plain(text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + " … (truncated)")


def _failed_row(r: Run) -> tuple[str, ...]:
    """One failed or invalid run."""
    error = r.error or {}
    exp = error.get("experience")
    rows = "0" if r.matrix is None else str(r.matrix.shape[0])
    return (
        plain(scenario_display(r.scenario, r.setting)),
        plain(strategy_display(r.strategy)),
        str(r.seed),
        f"{code(error.get('type') or 'unknown')}: {_message(error)}",
        "—" if exp is None else str(exp),
        rows,
        code(r.path.name),
    )


def failed_table(runs: list[Run]) -> Table:
    """Every run that did not succeed, with its error; these are excluded from the aggregates."""
    bad = sorted((r for r in runs if r.status != "ok"), key=lambda r: (r.scenario, r.strategy, r.seed))
    return Table(
        header=(
            "Scenario",
            "Strategy",
            "Seed",
            "Error (type: message)",
            "Failed at experience (0-based)",
            "Rows of R",
            "File",
        ),
        rows=tuple(_failed_row(r) for r in bad),
        align=("l", "l", "r", "l", "r", "r", "l"),
        caption="Failed runs (excluded from every table and figure, counted here)",
    )
