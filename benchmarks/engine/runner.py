"""Execute one run: seed, build scenario/model/strategy, train on each experience, evaluate, record.

``run_one(spec)`` never raises for a failure inside the run: it returns a results dict with
``status = "failed"``, the error and the experience reached, plus whatever rows of R were finished.
"""

from __future__ import annotations

import contextlib
import random
import resource
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmarks.config.spec import RunSpec
from benchmarks.results.metrics import all_metrics
from benchmarks.results.provenance import provenance
from benchmarks.results.store import SCHEMA_VERSION


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) generators."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def resolve_device(requested: str):
    """'auto' -> CUDA when available, else CPU; 'cuda' without a GPU is an error that says so."""
    import torch

    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but torch sees no CUDA GPU; use --device cpu or auto")
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(requested)


@dataclass
class RunState:
    """What a run has produced so far (kept when it fails part-way)."""

    rows: list[list[float]] = field(default_factory=list)
    train_time: list[float] = field(default_factory=list)
    eval_time: list[float] = field(default_factory=list)
    initial: list[float] | None = None
    experience: int = -1  # experience being trained (-1 = setup)
    memory: dict[str, int] = field(default_factory=lambda: {"samples": 0, "bytes": 0})
    extra_state: dict[str, int] = field(default_factory=lambda: {"parameters": 0, "bytes": 0})
    added_parameters: list[int] | None = None  # per experience, for strategies that grow the model
    cache_fill: float = 0.0  # seconds filling frozen-feature caches, kept out of train/eval times
    cpu_time: float | None = None  # CPU seconds of the whole run (all threads of the process)
    device: str = "cpu"
    data_path: str | None = None
    diagnostics: dict[str, Any] | None = None  # benchmarks/diagnostics, when the scenario asks for it
    routing: dict[str, Any] | None = None  # routing record of a mixture of experts (moe_adapters)


def _build(spec: RunSpec, device, run_log=None):
    """Scenario, strategy and scenario info for a spec (seeded); ``run_log``'s loggers join the evaluator."""
    from benchmarks.engine.evaluation import make_evaluator
    from benchmarks.engine.guards import FiniteLossGuard
    from benchmarks.fastpath.template import fast_template
    from benchmarks.models import MODELS, build_model
    from benchmarks.scenarios import SCENARIOS, build_scenario
    from strategies import STRATEGIES, StrategyContext, TrainConfig

    sentry = SCENARIOS.get(spec.scenario_entry)
    scenario = build_scenario(spec.scenario_entry, sentry.params(**_tuples(spec.scenario_params)), seed=spec.seed)
    if spec.holdout is not None:  # a tuning trial: first k experiences' training data, split (never test data)
        from benchmarks.tuning.holdout import holdout_scenario

        scenario = holdout_scenario(scenario, **spec.holdout)
    mparams = {k: v for k, v in spec.model.items() if k != "name"}
    seed_everything(spec.seed)  # model init depends on the seed only, not on data loading
    model = build_model(spec.model["name"], MODELS.get(spec.model["name"]).params(**_tuples(mparams)), scenario.info)
    entry = STRATEGIES.get(spec.strategy_entry)
    train = TrainConfig(**spec.train)
    ctx = StrategyContext(
        model=model, info=scenario.info, train=train, device=device,
        evaluator=make_evaluator(run_log), plugins=[FiniteLossGuard()], seed=spec.seed,
        wrap_template=fast_template if train.fast_data else None,
    )
    strategy = entry.builder(ctx, entry.params(**_tuples(spec.strategy_params)))
    return scenario, strategy


def _tuples(d: dict[str, Any]) -> dict[str, Any]:
    """JSON lists back to the tuples frozen params use."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


def _train_and_evaluate(spec: RunSpec, state: RunState, run_log=None) -> None:
    """The experiment loop; fills ``state`` as it goes so a failure keeps finished rows."""
    from benchmarks.diagnostics.tracker import start_diagnostics
    from benchmarks.engine.evaluation import accuracy_row
    from benchmarks.engine.memory import extra_state, replay_memory

    device = resolve_device(spec.device)
    state.device = str(device)
    _reset_peak_memory(device)
    scenario, strategy = _build(spec, device, run_log)
    bench, T = scenario.benchmark, scenario.info.n_experiences
    state.initial, _ = _timed(state, _initial_accuracy, strategy, bench, scenario.info)
    diagnostics = start_diagnostics(spec, bench, strategy.model)
    seed_everything(spec.seed + 1)  # data order
    final_only = getattr(strategy, "final_only", False)  # e.g. joint: trains and evaluates at the last step only
    for i, experience in enumerate(bench.train_stream):
        state.experience = i
        _, seconds = _timed(state, strategy.train, experience)
        state.train_time.append(seconds)
        if final_only and i < T - 1:
            state.rows.append([None] * T)  # not evaluated: a missing row (benchmarks/results/metrics.py)
            state.eval_time.append(0.0)
            continue
        results, seconds = _timed(state, strategy.eval, bench.test_stream)
        state.rows.append(accuracy_row(results, T))
        state.eval_time.append(seconds)
        if run_log is not None:
            run_log.after_experience(i, state.rows[-1])
        if diagnostics is not None:
            state.diagnostics = diagnostics.after_experience(strategy.model)
    state.memory = replay_memory(strategy, scenario.info, len(experience.dataset))
    state.extra_state = extra_state(strategy)
    added = getattr(strategy, "added_parameters", None)  # e.g. modular_lora: a module per experience
    state.added_parameters = None if added is None else [int(n) for n in added]
    state.routing = getattr(strategy, "routing", None)  # e.g. moe_adapters: router forgetting
    state.data_path = getattr(strategy, "data_path", None)  # which loader fed training (fastdata table)


def _timed(state: RunState, fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """(fn(*args), its wall seconds less the frozen-feature cache fill during it); the fill goes to
    ``state.cache_fill`` (a one-off per process: charged to training it made the first run look slow)."""
    from benchmarks.models.feature_memo import fill_seconds

    fill0, t0 = fill_seconds(), time.perf_counter()
    out = fn(*args)
    seconds, fill = time.perf_counter() - t0, fill_seconds() - fill0
    state.cache_fill += fill
    return out, seconds - fill


def _initial_accuracy(strategy, bench, info) -> list[float] | None:
    """Accuracy of the untrained model on every test experience (the b of FWT), or None.

    Only for single-head settings: with one head per task, the heads of later tasks do not exist
    before training. Runs under a forked RNG so it cannot change the training that follows.
    """
    import torch

    from benchmarks.engine.evaluation import accuracy_row

    if info.multi_head or getattr(strategy, "model", None) is None:
        return None
    try:
        with torch.random.fork_rng(devices=[]):
            return accuracy_row(strategy.eval(bench.test_stream), info.n_experiences)
    except Exception:  # noqa: BLE001  strategies whose evaluation needs training state first (iCaRL's class means)
        return None


@contextlib.contextmanager
def quiet_avalanche():
    """Hide Avalanche 0.6.0's deprecation warnings (one per replay update) and the logger-less note.

    A filter is not enough: Avalanche's ``@deprecated`` wrapper calls ``warnings.simplefilter("once",
    DeprecationWarning)`` itself, which overrides an "ignore" filter, so every worker process printed
    them. The display hook is wrapped instead (restored on exit); other warnings are shown as usual.
    """
    with warnings.catch_warnings():
        show = warnings.showwarning

        def filtered(message, category, *args, **kwargs):
            if issubclass(category, DeprecationWarning) or "No loggers specified" in str(message):
                return
            show(message, category, *args, **kwargs)

        warnings.showwarning = filtered
        yield


def _reset_peak_memory(device) -> None:
    """Count this run's CUDA peak from zero: the counter is per process, and a serial or worker process
    executes many runs (without this, a run reported the largest peak of every earlier run too)."""
    import torch

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _release_device_memory(device: str) -> None:
    """After a CUDA run: collect the run's reference cycles (they hold its cached device tensors) and
    return the freed blocks to the driver, so the next run in this process starts from an empty GPU."""
    if device.startswith("cuda"):
        import gc

        import torch

        gc.collect()
        torch.cuda.empty_cache()


def _peak_memory(device: str) -> dict[str, float | None]:
    import torch

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB -> MiB on Linux
    cuda = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None
    return {"rss": rss, "cuda": cuda}


def run_one(spec: RunSpec) -> dict[str, Any]:
    """Execute a run and return its results dict (status "ok" or "failed"); never raises for run errors."""
    started, cpu_started = time.time(), time.process_time()
    state = RunState()
    error = run_log = None
    try:
        with quiet_avalanche():
            run_log = _open_run_log(spec)
            _train_and_evaluate(spec, state, run_log)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001  a failing run is recorded, the suite goes on
        error = {
            "type": type(exc).__name__,
            "message": str(exc),
            "traceback": traceback.format_exc(limit=20),
            "experience": state.experience,
        }
    _share_frozen_states()
    state.cpu_time = time.process_time() - cpu_started
    result = _result(spec, state, error, started)
    if run_log is not None:
        try:
            run_log.finish(result)
        except Exception as exc:  # noqa: BLE001  a logger that fails at the end must not lose the result
            warnings.warn(f"run logging of {spec.scenario}/{spec.strategy}/seed{spec.seed} failed: {exc!r}", stacklevel=1)
    _release_device_memory(state.device)
    return result


def _share_frozen_states() -> None:
    """Write the frozen-prefix states this run computed where the suite's other worker processes read
    them (benchmarks/models/prefix_cache.py); nothing to do in a process that never loaded it."""
    prefix_cache = sys.modules.get("benchmarks.models.prefix_cache")
    if prefix_cache is not None:
        prefix_cache.flush()


def _open_run_log(spec: RunSpec):
    """The run's loggers (benchmarks/engine/run_log.py), or None when logging is off (nothing attached)."""
    if not spec.log or spec.log_dir is None:
        return None
    from pathlib import Path

    from benchmarks.engine.run_log import RunLog
    from benchmarks.results.store import run_filename

    stem = Path(run_filename(spec.scenario, spec.strategy, spec.seed, spec.run_id)).stem
    return RunLog(kinds=spec.log, log_dir=Path(spec.log_dir), suite=spec.suite, stem=stem,
                  run_name=f"{spec.scenario}/{spec.strategy}/seed{spec.seed}", config=spec.config())


def failed_result(spec: RunSpec, exc: BaseException, *, traceback_text: str | None = None) -> dict[str, Any]:
    """The results dict of a run that returned nothing (e.g. its worker died), shaped like run_one's.

    Args:
        spec: the run.
        exc: why it failed; its type and message are recorded.
        traceback_text: the traceback to record when ``exc`` carries none (e.g. one raised remotely).
    """
    error = {
        "type": type(exc).__name__,
        "message": str(exc),
        "traceback": traceback_text or "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        "experience": None,  # unknown: the run's own state did not come back
    }
    return _result(spec, RunState(), error, time.time())


def _result(spec: RunSpec, state: RunState, error: dict | None, started: float) -> dict[str, Any]:
    complete = error is None and len(state.rows) > 0
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": spec.run_id,
        "suite": spec.suite,
        "reference": spec.reference,
        "scenario": spec.scenario,
        "setting": spec.setting,
        "strategy": spec.strategy,
        "seed": spec.seed,
        "status": "ok" if complete else "failed",
        "error": error,
        "accuracy_matrix": state.rows,
        "initial_accuracy": state.initial,
        "metrics": all_metrics(state.rows, state.initial) if complete else {},
        "train_time_s": state.train_time,
        "eval_time_s": state.eval_time,
        "cache_fill_s": state.cache_fill,
        "total_time_s": time.time() - started,
        **({"cpu_time_s": state.cpu_time} if state.cpu_time is not None else {}),
        "peak_memory_mb": _peak_memory(state.device),
        "replay_memory": state.memory,
        "extra_state": state.extra_state,
        **({"added_parameters": state.added_parameters} if state.added_parameters is not None else {}),
        "data_path": state.data_path,
        **({"diagnostics": state.diagnostics} if state.diagnostics is not None else {}),
        **({"routing": state.routing} if state.routing is not None else {}),
        "config": spec.config(),
        **({"hparams_provenance": spec.sources} if spec.sources is not None else {}),
        "seeds": {"global": spec.seed, "class_order": spec.seed, "model_init": spec.seed, "data_order": spec.seed + 1},
        "provenance": provenance(state.device, started),
    }
