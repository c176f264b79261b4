"""The [tune] table of a suite: protocol settings and search spaces, checked before any trial.

    [tune]
    k = 2                          # tune on the training data of the first k experiences only
    validation_fraction = 0.2      # per class, held out of that training data for the score
    trials = 12                    # per (scenario, strategy): the same budget for every method
    strategies = ["naive", "olora"]
    [tune.train]                   # searched for every tuned strategy (TrainConfig keys)
    lr = {log = [1e-4, 1e-2]}
    [tune.space.olora]             # a strategy's own parameters; its train = {...} replaces [tune.train] keys
    lambda_1 = {log = [0.01, 10.0]}
    r = {choice = [4, 8, 16]}

A dimension is one of ``{log = [lo, hi]}`` (float, log-uniform), ``{uniform = [lo, hi]}`` (float),
``{int = [lo, hi]}`` (integer; ``step`` optional) or ``{choice = [v, ...]}`` (scalars). Imports no optuna:
a suite with a [tune] table is validated by ``run`` and ``check`` too.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from benchmarks.core.typed import build, check, coerce

KINDS = ("log", "uniform", "int", "choice")


@dataclass(frozen=True)
class TuneConfig:
    """The protocol keys of [tune] (Chaudhry et al. 2019, "Efficient Lifelong Learning with A-GEM": choose
    hyper-parameters on the first k tasks, then run the stream).

    Args:
        k: the tuner sees the training data of the first k experiences only (their test data never).
        validation_fraction: share of each class of those experiences' training data held out for the score.
        trials: trials per (scenario, strategy), the same for every method.
        metric: "average_accuracy" (mean validation accuracy on the k experiences after training the k-th)
            or "average_incremental_accuracy" (its mean over the k steps).
        seeds: run seeds of one trial; its score is the mean over them.
        sampler: Optuna's "tpe" (TPESampler; random for its first startup_trials) or "random".
        startup_trials: random trials before TPE models the space.
        sampler_seed: seed of the sampler.
        split_seed: seed of the validation split (fixed: every trial scores on the same utterances).
        scenarios: the suite's scenarios to tune (default: all).
        strategies: strategies or variants to tune (default: every one run by those scenarios).
    """

    k: int = 1
    validation_fraction: float = 0.2
    trials: int = 10
    metric: Literal["average_accuracy", "average_incremental_accuracy"] = "average_accuracy"
    seeds: tuple[int, ...] = (0,)
    sampler: Literal["tpe", "random"] = "tpe"
    startup_trials: int = 5
    sampler_seed: int = 0
    split_seed: int = 0
    scenarios: tuple[str, ...] = ()
    strategies: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check(self.k >= 1, "k must be >= 1")
        check(0 < self.validation_fraction < 1, "validation_fraction must be in (0, 1)")
        check(self.trials >= 1, "trials must be >= 1")
        check(self.startup_trials >= 1, "startup_trials must be >= 1")
        check(len(self.seeds) > 0, "seeds must list at least one seed")


@dataclass(frozen=True)
class Dimension:
    """One searched key: ``name`` is a strategy parameter, or ``train.<key>`` for a TrainConfig key."""

    name: str
    kind: str
    values: tuple
    step: float | int | None = None

    def suggest(self, trial) -> Any:
        """The value an Optuna trial draws for this dimension."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.values))
        lo, hi = self.values
        if self.kind == "int":
            return trial.suggest_int(self.name, lo, hi, step=self.step or 1)
        return trial.suggest_float(self.name, lo, hi, log=self.kind == "log", step=self.step)

    def describe(self) -> str:
        return f"{self.name} {self.kind} {list(self.values)}" + (f" step {self.step}" if self.step else "")


@dataclass(frozen=True)
class TuneSetup:
    """A validated [tune] table: protocol, one search space per strategy, and the (scenario, strategy) pairs."""

    config: TuneConfig
    spaces: dict[str, tuple[Dimension, ...]]
    targets: tuple[tuple[str, str], ...]


def parse_dimension(name: str, spec: Any, cls: type, key: str, where: str, errors: list[str]) -> Dimension | None:
    """A dimension for field ``key`` of dataclass ``cls`` from ``{kind = values}``; problems go to ``errors``."""
    where = f"{where} {name}"
    fields = {f.name for f in dataclasses.fields(cls)}
    if key not in fields:
        errors.append(f"{where}: {cls.__name__} has no key {key!r}; valid keys: {', '.join(sorted(fields))}")
        return None
    kinds = [k for k in KINDS if isinstance(spec, Mapping) and k in spec]
    extra = sorted(set(spec) - set(KINDS) - {"step"}) if isinstance(spec, Mapping) else []
    if len(kinds) != 1 or extra:
        errors.append(f"{where}: must be one of {{log = [lo, hi]}}, {{uniform = [lo, hi]}}, {{int = [lo, hi]}}, "
                      f"{{choice = [...]}} (optional step), got {spec!r}")
        return None
    kind, values, step = kinds[0], spec[kinds[0]], spec.get("step")
    hint = typing.get_type_hints(cls)[key]
    n = len(errors)
    try:
        values = _values(kind, values, hint, step)
    except (TypeError, ValueError) as exc:
        errors.append(f"{where}: {exc}")
        return None
    for value in values:  # every endpoint / choice must be a valid value on its own
        build(cls, {key: value}, f"{where} = {value!r}", errors)
    return Dimension(name, kind, tuple(values), step) if len(errors) == n else None


def _values(kind: str, values: Any, hint: Any, step: Any) -> list:
    if not isinstance(values, list) or not values:
        raise TypeError(f"{kind} needs a non-empty list, got {values!r}")
    if kind == "choice":
        if step is not None:
            raise ValueError("step applies to uniform and int only")
        if not all(isinstance(v, (bool, int, float, str)) for v in values):
            raise TypeError(f"choices must be scalars (bool, int, float, str), got {values!r}")
        return [coerce(v, hint) for v in values]
    if len(values) != 2:
        raise ValueError(f"{kind} needs [lo, hi], got {values!r}")
    want = int if kind == "int" else float
    if coerce_type(hint) is not want:
        use = "int = [lo, hi]" if coerce_type(hint) is int else "log or uniform = [lo, hi]"
        raise TypeError(f"{kind} does not fit the {getattr(hint, '__name__', hint)} key; use {use} or choice")
    lo, hi = (coerce(v, want) for v in values)
    if not lo < hi:
        raise ValueError(f"needs lo < hi, got {values!r}")
    if kind == "log" and lo <= 0:
        raise ValueError(f"log needs lo > 0, got {lo!r}")
    if step is not None and (kind == "log" or not isinstance(step, (int, float)) or step <= 0):
        raise ValueError("step must be a positive number, for uniform and int only")
    if step is not None and kind == "int" and not isinstance(step, int):
        raise ValueError("an int dimension needs an integer step")
    if kind == "uniform" and step is not None and not math.isclose(((hi - lo) / step) % 1, 0, abs_tol=1e-9):
        raise ValueError(f"step {step} does not divide hi - lo = {hi - lo}")
    return [lo, hi]


def coerce_type(hint: Any) -> type | None:
    """float / int for numeric keys (Optional stripped), None for the rest."""
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    return args[0] if args[0] in (int, float) and len(args) == 1 else None


def parse_tune(table: Any, where: str, run_lists: Mapping[str, tuple[str, ...]],
               variants: Mapping[str, str]) -> tuple[TuneSetup | None, list[str]]:
    """(validated setup or None, problems) of a [tune] table.

    Args:
        table: the [tune] table.
        where: its location, for messages.
        run_lists: scenario -> strategies (or variants) that scenario runs.
        variants: variant name -> its registered strategy.
    """
    from strategies import STRATEGIES, TrainConfig

    errors: list[str] = []
    if not isinstance(table, Mapping):
        return None, [f"{where}: must be a table"]
    spaces_raw, common_raw = table.get("space", {}), table.get("train", {})
    config = build(TuneConfig, {k: v for k, v in table.items() if k not in ("space", "train")}, where, errors)
    common = _dims(common_raw, TrainConfig, "train.", f"{where[:-1]}.train]", errors)
    if config is None:
        return None, errors
    scenarios = config.scenarios or tuple(run_lists)
    for s in config.scenarios:
        if s not in run_lists:
            errors.append(f"{where}: scenarios lists {s!r}, which this suite does not have; known: "
                          f"{', '.join(run_lists)}")
    listed = config.strategies or tuple(dict.fromkeys(n for s in scenarios for n in run_lists.get(s, ())))
    spaces: dict[str, tuple[Dimension, ...]] = {}
    for name in sorted(set(spaces_raw) - set(listed)):  # a space kept for later (not tuned now) must still be valid
        if variants.get(name, name) not in STRATEGIES:
            errors.append(f"{where[:-1]}.space.{name}]: {name!r} is neither a registered strategy nor a variant")
    for name in listed:
        base = variants.get(name, name)
        if base not in STRATEGIES:
            errors.append(f"{where}: strategies lists {name!r}, which is neither a registered strategy nor a variant")
            continue
        own = dict(spaces_raw.get(name, {}))
        swhere = f"{where[:-1]}.space.{name}]"
        train = {d.name: d for d in common}
        train.update({d.name: d for d in _dims(own.pop("train", {}), TrainConfig, "train.", swhere, errors)})
        dims = (*train.values(), *_dims(own, STRATEGIES.get(base).params, "", swhere, errors))
        if not dims:
            errors.append(f"{swhere}: nothing to search for {name!r}; add [tune.train] keys or [tune.space.{name}]")
        spaces[name] = dims
        if not any(name in run_lists.get(s, ()) for s in scenarios):
            errors.append(f"{where}: {name!r} is run by none of the tuned scenarios ({', '.join(scenarios)})")
    targets = tuple((s, n) for s in scenarios for n in listed if n in run_lists.get(s, ()))
    return (None if errors else TuneSetup(config, spaces, targets)), errors


def _dims(table: Any, cls: type, prefix: str, where: str, errors: list[str]) -> list[Dimension]:
    if not isinstance(table, Mapping):
        errors.append(f"{where}: must be a table of dimensions, got {table!r}")
        return []
    dims = [parse_dimension(prefix + key, spec, cls, key, where, errors) for key, spec in table.items()]
    return [d for d in dims if d is not None]


def tune_problems(table: Any, where: str, run_lists: Mapping[str, tuple[str, ...]],
                  variants: Mapping[str, str]) -> list[str]:
    """The problems of a [tune] table (for the suite validation of ``run`` and ``check``)."""
    return parse_tune(table, where, run_lists, variants)[1]
