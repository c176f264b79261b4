"""``python -m benchmarks tune``: one Optuna study per (scenario, strategy), trials run through the runner.

A trial is the suite's own run (same scenario, model, strategy, train settings) with the sampled values
and a ``holdout`` (benchmarks/tuning/holdout.py): it trains on the first k experiences' training data less
a validation split and is scored on that split (``[tune] metric``, mean over ``[tune] seeds``). The main
process asks Optuna for trials (ask-and-tell) and runs them in ``jobs`` worker processes (in itself when
jobs = 1), so only it writes the study database: ``<results>/tune/<suite>.db`` (SQLite). Run the
same command again to continue: finished trials are kept, trials cut off by an interrupt are marked failed
and run again, and each study stops at ``[tune] trials``. Then the best values go to the fragment.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import sys
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from benchmarks.config.spec import RunSpec
from benchmarks.core.typed import ConfigError, build, to_dict
from benchmarks.tuning.fragment import PROTOCOL, entry, write_fragment
from benchmarks.tuning.space import TuneSetup, parse_tune

INTERRUPTED = "interrupted"


@dataclass
class Target:
    """One (scenario, strategy) study and the suite run its trials start from."""

    scenario: str
    strategy: str
    base: RunSpec
    study: Any  # optuna.Study
    remaining: int
    seconds: list[float] = field(default_factory=list)  # run seconds of each trial finished now


def plan(suite: str, overrides: list[str], device: str | None) -> tuple[Path, TuneSetup, list[RunSpec]]:
    """(suite path, validated [tune] setup, the suite's run specs without tuned fragments)."""
    from benchmarks.config.loader import load_suite, suite_document

    path, doc = suite_document(suite, overrides, device)
    if "tune" not in doc:
        raise ConfigError([f"{path}: no [tune] table; add one (k, trials, search spaces: docs/tuning.md)"])
    specs = load_suite(suite, overrides, device, include=False)  # validates [tune] with everything else
    run_lists: dict[str, tuple[str, ...]] = {}
    for s in specs:
        run_lists[s.scenario] = tuple(dict.fromkeys((*run_lists.get(s.scenario, ()), s.strategy)))
    variants = {v: t.get("strategy") for v, t in doc.get("variants", {}).items()}
    setup, problems = parse_tune(doc["tune"], f"{path} [tune]", run_lists, variants)
    if problems or setup is None:
        raise ConfigError(problems)
    return path, setup, specs


def trial_spec(base: RunSpec, params: dict[str, Any], setup: TuneSetup, seed: int) -> RunSpec:
    """The run of one trial and seed; ValueError when the sampled values are not valid together."""
    from strategies import STRATEGIES, TrainConfig

    errors: list[str] = []
    hp = {**base.strategy_params, **{k: v for k, v in params.items() if not k.startswith("train.")}}
    train = {**base.train, **{k[6:]: v for k, v in params.items() if k.startswith("train.")}}
    sparams = build(STRATEGIES.get(base.strategy_entry).params, _tuples(hp), "trial", errors)
    tparams = build(TrainConfig, train, "trial", errors)
    if errors:
        raise ValueError("; ".join(errors))
    cfg = setup.config
    holdout = {"experiences": cfg.k, "validation_fraction": cfg.validation_fraction, "seed": cfg.split_seed}
    return replace(base, suite=f"{base.suite}-tune", seed=seed, strategy_params=to_dict(sparams),
                   train=to_dict(tparams), holdout=holdout, sources=None)


def _tuples(d: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


def _protocol(setup: TuneSetup, target: tuple[str, str], base: RunSpec) -> str:
    """What a study's trials depend on; a study made under another protocol or base run is not continued."""
    cfg = setup.config
    searched = {d.name for d in setup.spaces[target[1]]}
    base_cfg = {k: v for k, v in base.config().items() if k not in ("seed", "device")}  # CPU and GPU trials mix
    base_cfg["strategy"] = {k: v for k, v in base_cfg["strategy"].items() if k not in searched}
    base_cfg["train"] = {k: v for k, v in base_cfg["train"].items() if f"train.{k}" not in searched}
    return json.dumps({
        "protocol": PROTOCOL, "k": cfg.k, "validation_fraction": cfg.validation_fraction, "metric": cfg.metric,
        "seeds": list(cfg.seeds), "split_seed": cfg.split_seed,
        "space": [d.describe() for d in setup.spaces[target[1]]],
        "base": hashlib.sha256(json.dumps(base_cfg, sort_keys=True).encode()).hexdigest()[:16],
    }, sort_keys=True)


def open_study(storage: str, setup: TuneSetup, target: tuple[str, str], base: RunSpec) -> Target:
    """Create or load the study of ``target``; mark trials left running by a killed process as failed."""
    import optuna

    name = "/".join(target)
    protocol = _protocol(setup, target, base)
    study = optuna.create_study(storage=storage, study_name=name, direction="maximize", load_if_exists=True)
    recorded = study.user_attrs.get("protocol")
    if recorded is None:
        study.set_user_attr("protocol", protocol)
    elif recorded != protocol:
        raise ConfigError([(f"study {name!r} in {storage} was made with another [tune] protocol, space or base run "
                           f"({recorded}); use another --results folder, or delete the study to start over")])
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study._storage.set_trial_user_attr(t._trial_id, INTERRUPTED, True)
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)
    done = finished_trials(study)
    study.sampler = _sampler(setup, seed=setup.config.sampler_seed + len(study.trials))
    return Target(target[0], target[1], base, study, max(setup.config.trials - done, 0))


def finished_trials(study) -> int:
    """Trials that count against the budget: complete or failed (not those cut off by an interrupt)."""
    from optuna.trial import TrialState

    return sum(t.state in (TrialState.COMPLETE, TrialState.FAIL) and not t.user_attrs.get(INTERRUPTED)
               for t in study.get_trials(deepcopy=False))


def _sampler(setup: TuneSetup, seed: int):
    """The configured sampler; seeded by the trials already made, so a resumed study draws new points."""
    import optuna

    if setup.config.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(n_startup_trials=setup.config.startup_trials, seed=seed, constant_liar=True)


class InlinePool:
    """jobs = 1: each run executes in this process when submitted (Ctrl-C stops it at once)."""

    def submit(self, fn, *args) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(*args))
        except Exception as exc:  # noqa: BLE001  handed to the caller through the future, as a pool does
            fut.set_exception(exc)
        return fut

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        return None


def _pool(jobs: int):
    """Where trial runs execute: in this process when jobs = 1, else in ``jobs`` spawned processes."""
    import multiprocessing as mp

    if jobs < 1:
        raise ValueError("--jobs must be >= 1")
    return InlinePool() if jobs == 1 else ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn"))


def _score(result: dict, metric: str) -> float | None:
    value = (result.get("metrics") or {}).get(metric) if result.get("status") == "ok" else None
    return None if value is None else float(value)


@dataclass
class Trial:
    """A trial in flight: the runs of its seeds and their scores as they come back."""

    target: Target
    trial: Any  # optuna.Trial
    waiting: int
    scores: list[float | None] = field(default_factory=list)
    seconds: float = 0.0  # wall seconds of its runs (total_time_s, the one-off cache fill included)
    cpu_seconds: float = 0.0
    cache_fill: float = 0.0  # of which filling the frozen-feature caches (the first run of a process)
    errors: list[str] = field(default_factory=list)


def run_trials(targets: list[Target], setup: TuneSetup, jobs: int, threads: int, log=print) -> None:
    """Ask, run and tell until every study has its budget; ``log`` gets one line per finished trial."""
    from benchmarks.engine.executors import run_with_threads

    queue = _round_robin(targets)
    in_flight: dict[Future, Trial] = {}
    pool = _pool(jobs)
    try:
        while True:
            while len(in_flight) < jobs and (target := next(queue, None)) is not None:
                _submit(pool, target, setup, in_flight, run_with_threads, threads)
            if not in_flight:
                break
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for fut in done:
                item = in_flight.pop(fut)
                _collect(item, fut, setup, log)
    except BaseException:  # Ctrl-C: do not wait for the trials in flight (they are run again on resume)
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


def _round_robin(targets: list[Target]) -> Iterator[Target]:
    """One target per trial to ask, taking the studies in turn until each has its budget."""
    while any(t.remaining > 0 for t in targets):
        for t in targets:
            if t.remaining > 0:
                t.remaining -= 1
                yield t


def _submit(pool, target: Target, setup: TuneSetup, in_flight: dict, fn, threads: int) -> None:
    trial = target.study.ask()
    params = {d.name: d.suggest(trial) for d in setup.spaces[target.strategy]}
    item = Trial(target, trial, waiting=len(setup.config.seeds))
    try:
        specs = [trial_spec(target.base, params, setup, seed) for seed in setup.config.seeds]
    except ValueError as exc:  # the sampled values are invalid together: a failed trial, within the budget
        item.waiting, item.errors = 0, [str(exc)]
        _tell(item, setup)
        return
    for spec in specs:
        in_flight[pool.submit(fn, spec, threads)] = item


def _collect(item: Trial, fut: Future, setup: TuneSetup, log) -> None:
    """One seed's run of ``item`` came back; the trial is told once all its seeds have."""
    result = fut.result()
    item.waiting -= 1
    item.seconds += float(result.get("total_time_s") or 0.0)
    item.cpu_seconds += float(result.get("cpu_time_s") or 0.0)
    item.cache_fill += float(result.get("cache_fill_s") or 0.0)
    item.scores.append(_score(result, setup.config.metric))
    if result.get("status") != "ok":
        err = result.get("error") or {}
        item.errors.append(f"{err.get('type')}: {err.get('message')}")
    if item.waiting == 0:
        value = _tell(item, setup)
        t = item.target
        shown = "failed: " + item.errors[0][:120] if value is None else f"{setup.config.metric} {value:.4f}"
        log(f"{t.scenario}/{t.strategy} trial {item.trial.number}: {shown} ({item.seconds:.1f} s wall, "
            f"{item.cpu_seconds:.1f} s CPU, {item.cache_fill:.1f} s cache fill) {item.trial.params}")


def _tell(item: Trial, setup: TuneSetup) -> float | None:
    from optuna.trial import TrialState

    item.trial.set_user_attr("seconds", item.seconds)
    item.trial.set_user_attr("cpu_seconds", item.cpu_seconds)
    item.trial.set_user_attr("cache_fill_seconds", item.cache_fill)
    item.trial.set_user_attr("scores", item.scores)
    if item.errors:
        item.trial.set_user_attr("errors", item.errors[:3])
    item.target.seconds.append(item.seconds)
    if item.errors or any(s is None for s in item.scores):
        item.target.study.tell(item.trial, state=TrialState.FAIL)
        return None
    value = sum(item.scores) / len(item.scores)
    item.target.study.tell(item.trial, value)
    return value


def check_experiences(setup: TuneSetup, targets: list[Target]) -> None:
    """Every tuned scenario has at least k experiences (checked on the built scenario, before any trial)."""
    from benchmarks.scenarios import SCENARIOS, build_scenario

    errors, seen = [], set()
    for t in targets:
        if t.scenario in seen:
            continue
        seen.add(t.scenario)
        b = t.base
        params = SCENARIOS.get(b.scenario_entry).params(**_tuples(b.scenario_params))
        n = build_scenario(b.scenario_entry, params, seed=setup.config.seeds[0]).info.n_experiences
        if setup.config.k > n:
            errors.append(f"[tune] k = {setup.config.k}, but scenario {t.scenario!r} has {n} experiences; "
                          f"set k to 1..{n}")
    if errors:
        raise ConfigError(errors)


def best_entries(targets: list[Target], setup: TuneSetup, storage: str) -> dict[tuple[str, str], dict]:
    """The fragment entries: each study's best complete trial (studies without one are left out)."""
    from optuna.trial import TrialState

    out = {}
    cfg = setup.config
    for t in targets:
        complete = [tr for tr in t.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
        if not complete:
            continue
        best = max(complete, key=lambda tr: tr.value)
        out[(t.scenario, t.strategy)] = entry(
            best.params, k=cfg.k, validation_fraction=cfg.validation_fraction, trials=finished_trials(t.study),
            metric=cfg.metric, score=float(best.value), study=f"{storage} :: {t.study.study_name}")
    return out


def tune(suite: str, overrides: list[str], device: str | None, *, results: Path, out: Path | None = None,
         jobs: int = 1, threads: int = 1, log=print) -> tuple[Path, dict[tuple[str, str], dict]]:
    """Run (or continue) every study of the suite's [tune] table and write the fragment.

    Returns (fragment path, its entries). Raises ConfigError for invalid [tune] tables, before any trial.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path, setup, specs = plan(suite, overrides, device)
    db = Path(results) / "tune" / f"{path.stem}.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{db}"
    bases = {(s.scenario, s.strategy): s for s in reversed(specs)}  # the first seed's spec of each pair
    from benchmarks.config.preflight import preflight

    problems = preflight([bases[target] for target in setup.targets])  # data present, devices available
    if problems:
        raise ConfigError(problems)
    targets = [open_study(storage, setup, target, bases[target]) for target in setup.targets]
    check_experiences(setup, targets)
    todo = sum(t.remaining for t in targets)
    log(f"tune {path.stem}: {len(targets)} studies, {setup.config.trials} trials each, {todo} to run "
        f"(k = {setup.config.k}, validation {setup.config.validation_fraction:g}, {len(setup.config.seeds)} seed(s) "
        f"per trial, {jobs} job(s)); study database {db}")
    t0 = time.time()
    run_trials(targets, setup, jobs, threads, log)
    entries = best_entries(targets, setup, storage)
    out = Path(out) if out else path.parent / "tuned" / f"{path.stem}.toml"
    entries = {**kept_entries(out, set(setup.targets)), **entries}
    log(f"ran {sum(len(t.seconds) for t in targets)} trials in {time.time() - t0:.0f} s")
    return write_fragment(out, entries, _header(path, out, setup, targets, entries)), entries


def kept_entries(out: Path, tuned_now: set[tuple[str, str]]) -> dict[tuple[str, str], dict]:
    """The entries of an existing fragment at ``out`` for pairs not tuned in this invocation (so that
    tuning one method at a time, ``--set tune.strategies=[...]``, does not drop the others)."""
    from benchmarks.config.loader import read_toml

    if not Path(out).is_file():
        return {}
    tables = read_toml(Path(out)).get("tuned", {})
    return {(s, x): e for s, table in tables.items() for x, e in table.items() if (s, x) not in tuned_now}


def _command() -> str:
    """This process's command line, as typed (``python -m benchmarks ...``)."""
    argv = sys.argv
    if argv and argv[0].endswith("__main__.py"):
        argv = ["python", "-m", "benchmarks", *argv[1:]]
    return shlex.join(argv)


def _header(path: Path, out: Path, setup: TuneSetup, targets: list[Target], entries: dict) -> list[str]:
    cfg = setup.config
    per_trial = [s for t in targets for s in t.seconds]
    mean = f"{sum(per_trial) / len(per_trial):.1f} s run time per trial (this invocation)" if per_trial else ""
    include = os.path.relpath(Path(out).resolve(), path.parent.resolve())
    lines = [
        f"clbench tuned hyper-parameters for suite {path.stem!r}, written by `{_command()}`",
        (f"protocol {PROTOCOL} (Chaudhry et al. 2019): chosen on a validation split ({cfg.validation_fraction:g} "
        f"of each class) of the training data of the first k = {cfg.k} experiences; test data never seen"),
        (f"{cfg.trials} trials per (scenario, strategy), metric {cfg.metric}, seeds {list(cfg.seeds)}, "
        f"sampler {cfg.sampler}; {len(entries)} of {len(targets)} studies have a best trial"),
        f"date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {mean}".rstrip("; "),
        f"include it with [suite] include = [{json.dumps(include)}] (docs/tuning.md)",
    ]
    return lines
