"""The ``clbench`` command (pyproject ``[project.scripts]``): ``clbench run|check|list|report|... ARGS``.

Every subcommand of ``python -m benchmarks`` (benchmarks/cli.py) is a clbench subcommand with the same
arguments, dispatched to that parser, so a subcommand added there appears here with no change;
``clbench report`` is ``python -m reports`` (reports/__main__.py). ``python -m benchmarks`` keeps working.
"""

from __future__ import annotations

import argparse
import sys

from benchmarks import cli

PROG = "clbench"
REPORT_HELP = "build the report of a results folder: clbench report RESULTS [--out DIR] (= python -m reports)"


def parser() -> argparse.ArgumentParser:
    """benchmarks.cli's parser under the name clbench, with ``report`` listed among its subcommands."""
    p = cli._parser(PROG)
    subcommands = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    subcommands.add_parser("report", help=REPORT_HELP, add_help=False)  # its arguments: reports/__main__.py
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["report"]:
        from reports.__main__ import main as report_main

        return report_main(argv[1:])
    if not argv or argv[0] in ("-h", "--help"):
        parser().print_help(sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    return cli.main(argv, prog=PROG)


if __name__ == "__main__":
    sys.exit(main())
