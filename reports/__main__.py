"""Command line: ``python -m reports RESULTS_DIR [--out DIR]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from reports.build import build_report
from reports.runs import ReportError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments."""
    parser = argparse.ArgumentParser(
        prog="python -m reports",
        description="Build the clbench report (index.md, index.html, figures, summary.csv, tables.tex) "
        "from a folder of results files.",
    )
    parser.add_argument("results_dir", type=Path, help="folder with the runner's results JSON files")
    parser.add_argument("--out", type=Path, default=None, help="report folder (default: RESULTS_DIR/report)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Build the report and print where it is; exit status 2 with a message on bad input."""
    args = parse_args(argv)
    try:
        index = build_report(args.results_dir, args.out)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = index.parent
    print(f"report written to {out}/ (open {index}; Markdown: {out / 'index.md'})")
    from reports.headline import headline_lines

    print("best strategy per scenario (final average accuracy, Chaudhry forgetting):")
    for line in headline_lines(args.results_dir):
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
