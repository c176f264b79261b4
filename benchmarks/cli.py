"""Command line: ``python -m benchmarks run|check|list``."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description="clbench: continual-learning benchmarks")
    sub = p.add_subparsers(dest="command", required=True)
    for name, help_ in (("run", "run a suite and write one JSON per run"), ("check", "validate a suite, run nothing")):
        s = sub.add_parser(name, help=help_)
        s.add_argument("--suite", default="quick", help="suite name (benchmarks/suites/NAME.toml) or a .toml path")
        s.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a suite value, e.g. --set train.epochs=2 --set suite.seeds=[0]")
        s.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None, help="overrides [suite] device")
    r = sub.choices["run"]
    r.add_argument("--results", default="results", help="results folder (default: results)")
    r.add_argument("--jobs", type=int, default=1, help="runs in parallel (worker processes)")
    r.add_argument("--threads", type=int, default=1,
                   help="torch threads per run (default 1; results are bit-identical only for equal thread counts)")
    r.add_argument("--executor", choices=("local", "ray"), default="local")
    r.add_argument("--ray-address", default=None, help="Ray cluster to join ('auto' or host:port)")
    r.add_argument("--skip-failed", action="store_true", help="do not retry runs recorded as failed")
    r.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    sub.add_parser("list", help="list registered scenarios, models, strategies and suites")
    return p


def _list() -> int:
    from benchmarks.config.loader import SUITES_DIR
    from benchmarks.models import MODELS
    from benchmarks.scenarios import SCENARIOS
    from strategies import STRATEGIES

    for title, reg in (("scenarios", SCENARIOS), ("models", MODELS), ("strategies", STRATEGIES)):
        print(f"{title}:")
        for name in reg:
            entry = reg.get(name)
            where = entry.meta.get("settings")
            extra = f"  [{', '.join(where)}]" if where else ""
            print(f"  {name:28s} {entry.doc}{extra}")
    print("suites:", ", ".join(sorted(p.stem for p in SUITES_DIR.glob("*.toml"))))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (2 for configuration errors)."""
    args = _parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for the resume hint
    if args.command == "list":
        return _list()
    from benchmarks.config.loader import load_suite
    from benchmarks.core.typed import ConfigError

    try:
        specs = load_suite(args.suite, args.overrides, device=args.device)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "run":  # a bad results folder is refused before the (slower) data checks
        from benchmarks.results.store import ResultsFolderError, check_results_folder

        try:
            for suite in sorted({s.suite for s in specs}):
                check_results_folder(Path(args.results), suite)
        except ResultsFolderError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    from benchmarks.config.preflight import preflight

    problems = preflight(specs, local_gpu=getattr(args, "executor", "local") == "local")
    if problems:
        print("error: cannot start:\n  - " + "\n  - ".join(problems), file=sys.stderr)
        return 2
    if args.command == "check":
        print(f"suite {args.suite!r} is valid: {len(specs)} runs; data and devices are available")
        return 0
    return _run(args, specs)


def _run(args, specs) -> int:
    from benchmarks.engine.executors import make_executor
    from benchmarks.engine.suite import ResultsWriteError, SuiteInterrupted, run_suite, stop_on_signals
    from benchmarks.results.store import ResultsFolderError

    ray = {"address": args.ray_address, "num_cpus": args.threads}  # a Ray run reserves one CPU per thread
    options = ray if args.executor == "ray" else {"threads": args.threads}
    try:
        executor = make_executor(args.executor, args.jobs, **options)
    except ImportError as exc:  # e.g. --executor ray without Ray installed: the message says what to install
        print(f"error: {exc}", file=sys.stderr)
        return 2
    t0 = time.time()
    try:
        with stop_on_signals():
            summary = run_suite(specs, Path(args.results), executor, retry_failed=not args.skip_failed)
    except ResultsFolderError as exc:  # before any run
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ResultsWriteError as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 1
    except SuiteInterrupted as exc:
        command = shlex.join(["python", "-m", "benchmarks", *args.argv])
        print(f"\n{exc}; run the same command to resume ({command})", file=sys.stderr)
        return exc.exit_code
    print(f"{summary.line()} in {time.time() - t0:.0f} s; results in {args.results}/")
    if not args.no_report:
        _report(Path(args.results))
    return 0 if summary.failed + summary.elsewhere_failed == 0 else 1


def _report(results: Path) -> None:
    from reports import ReportError, build_report

    try:
        print(f"report: {build_report(results, results / 'report')}")
    except ReportError as exc:  # results stay; the report can be rebuilt with `make report`
        print(f"report not written: {exc}", file=sys.stderr)
