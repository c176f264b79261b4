"""Command line: ``python -m benchmarks run|check|tune|list``."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path


def _parser(prog: str = "python -m benchmarks") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="clbench: continual-learning benchmarks")
    sub = p.add_subparsers(dest="command", required=True)
    commands = (("run", "run a suite and write one JSON per run"), ("check", "validate a suite, run nothing"),
                ("tune", "choose hyper-parameters by the suite's [tune] protocol (docs/tuning.md)"))
    for name, help_ in commands:
        s = sub.add_parser(name, help=help_)
        s.add_argument("--suite", default="quick", help="suite name (benchmarks/suites/NAME.toml) or a .toml path")
        s.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a suite value, e.g. --set train.epochs=2 --set suite.seeds=[0]")
        s.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None, help="overrides [suite] device")
    for name in ("run", "check"):  # tune's trials are not logged runs
        sub.choices[name].add_argument(
            "--log", type=_log_list, default=None, metavar="LOGGERS",
            help="log each run to tensorboard and/or wandb under RESULTS/logs, e.g. --log tensorboard,wandb "
                 "('none': off); overrides [suite] log")
    r = sub.choices["run"]
    r.add_argument("--results", default="results", help="results folder (default: results)")
    r.add_argument("--jobs", type=int, default=1, help="runs in parallel (worker processes)")
    r.add_argument("--threads", type=int, default=1,
                   help="torch threads per run (default 1; results are bit-identical only for equal thread counts)")
    r.add_argument("--executor", choices=("local", "ray"), default="local")
    r.add_argument("--ray-address", default=None, help="Ray cluster to join ('auto' or host:port)")
    r.add_argument("--skip-failed", action="store_true", help="do not retry runs recorded as failed")
    r.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    t = sub.choices["tune"]
    t.add_argument("--results", default="results",
                   help="results folder; the study database is RESULTS/tune/SUITE.db (default: results)")
    t.add_argument("--out", default=None,
                   help="fragment to write (default: tuned/SUITE.toml next to the suite file)")
    t.add_argument("--jobs", type=int, default=1, help="trial runs in parallel (worker processes)")
    t.add_argument("--threads", type=int, default=1, help="torch threads per trial run (default 1)")
    sub.add_parser("list", help="list registered scenarios, models, strategies and suites")
    return p


def _log_list(text: str) -> list[str]:
    """``"tensorboard,wandb"`` -> ["tensorboard", "wandb"]; "none" or "" -> [] (validated with the suite)."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    return [] if names == ["none"] else names


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


def main(argv: list[str] | None = None, prog: str = "python -m benchmarks") -> int:
    """Entry point; returns the process exit code (2 for configuration errors)."""
    args = _parser(prog).parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for the resume hint
    if args.command == "list":
        return _list()
    if args.command == "tune":
        return _tune(args)
    from benchmarks.config.loader import load_suite
    from benchmarks.core.typed import ConfigError

    try:
        specs = load_suite(args.suite, args.overrides, device=args.device, log=args.log)
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
    """Write the report, then print where it is and the best strategy of each scenario."""
    from reports import ReportError, build_report
    from reports.headline import headline_lines

    try:
        index = build_report(results, results / "report")
    except ReportError as exc:  # results stay; the report can be rebuilt with `make report`
        print(f"report not written: {exc}", file=sys.stderr)
        return
    print(f"report: {index} (Markdown: {index.parent / 'index.md'})")
    print("best strategy per scenario (final average accuracy, Chaudhry forgetting):")
    for line in headline_lines(results):
        print(f"  {line}")


def _tune(args) -> int:
    from benchmarks.core.typed import ConfigError
    from benchmarks.tuning.study import tune

    try:
        import optuna  # noqa: F401
    except ImportError:
        print("error: `tune` needs Optuna: pip install -e '.[tune]' (or `make setup`)", file=sys.stderr)
        return 2
    t0 = time.time()
    try:
        path, entries = tune(args.suite, args.overrides, args.device, results=Path(args.results),
                             out=Path(args.out) if args.out else None, jobs=args.jobs, threads=args.threads)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: finished trials are saved; run the same command again to continue", file=sys.stderr)
        return 130
    for (scenario, strategy), e in entries.items():
        print(f"{scenario}/{strategy}: {e['metric']} {e['score']:.4f} after {e['trials']} trials: "
              f"{ {**e['hparams'], **{'train.' + k: v for k, v in e['train'].items()}} }")
    print(f"tuned in {time.time() - t0:.0f} s; fragment: {path} (include it: [suite] include = [...])")
    return 0
