"""What one run is (RunSpec, hashed into its run id) and the [suite] table of a suite file."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

#: the run loggers ``[suite] log`` / ``--log`` accept (benchmarks/engine/run_log.py)
LOGGERS = ("tensorboard", "wandb")
_SCENARIO_RESERVED = {"scenario", "strategies", "seeds", "train", "model", "hparams", "diagnostics"}


@dataclass(frozen=True)
class SuiteMeta:
    """The [suite] table.

    Args:
        description: one paragraph shown in the report.
        seeds: seeds every scenario runs (unless it sets its own).
        strategies: strategies or variants every scenario runs (unless it sets its own).
        device: "auto" (CUDA when present), "cpu" or "cuda".
        reference: published table the report compares with (e.g. "hsu2018"), or "".
        budget_minutes: expected wall time on 2 CPU cores (informational, shown by the runner).
        log: run loggers, any of "tensorboard", "wandb" (benchmarks/engine/run_log.py); () = none (default).
        include: tuned-hyper-parameter fragments written by ``python -m benchmarks tune`` (paths relative
            to the suite file, e.g. ["tuned/text.toml"]); their [tuned.<scenario>.<strategy>] values
            take precedence over the suite's own (docs/tuning.md).
    """

    description: str = ""
    seeds: tuple[int, ...] = (0,)
    strategies: tuple[str, ...] = ()
    device: str = "auto"
    reference: str = ""
    budget_minutes: float = 0.0
    include: tuple[str, ...] = ()
    log: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        from benchmarks.core.typed import check

        check(self.device in ("auto", "cpu", "cuda"), "device must be 'auto', 'cpu' or 'cuda'")
        check(len(self.seeds) > 0, "seeds must list at least one seed")
        unknown = [name for name in self.log if name not in LOGGERS]
        check(not unknown, f"log = {list(self.log)}: unknown logger(s) {unknown}; use any of {list(LOGGERS)}, or [] for none")
        for key in ("seeds", "strategies", "include", "log"):
            twice = duplicates(getattr(self, key))
            check(not twice, f"{key} = {list(getattr(self, key))} lists {twice} more than once; "
                             "each would run twice with one run id: list each once")


def duplicates(values: tuple) -> list:
    """The values that occur more than once, in order of first appearance."""
    return [v for v in dict.fromkeys(values) if values.count(v) > 1]


#: scenario options whose default is left out of config() and the run id: the tokenizer ("" = all-MiniLM-L6-v2's,
#: added with hf_encoder), so results written before the option existed are still found on resume.
ID_NEUTRAL_DEFAULTS: dict[str, Any] = {"tokenizer": ""}
_UNSET = object()


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines one run; its hash is the run id (resume key)."""

    suite: str
    scenario: str  # name in the suite (display/alias)
    scenario_entry: str  # registered scenario
    setting: str
    strategy: str  # name in the suite (variant or registered)
    strategy_entry: str  # registered strategy
    seed: int
    device: str
    reference: str
    scenario_params: dict[str, Any] = field(hash=False)
    model: dict[str, Any] = field(hash=False)  # {"name": ..., **params}
    strategy_params: dict[str, Any] = field(hash=False)
    train: dict[str, Any] = field(hash=False)
    diagnostics: dict[str, Any] | None = field(default=None, hash=False)  # benchmarks/diagnostics params
    # tuning trials only (benchmarks/tuning): train on the first k experiences' training data less a
    # validation split, evaluate on that split; {"experiences": k, "validation_fraction": f, "seed": s}
    holdout: dict[str, Any] | None = field(default=None, hash=False)
    # where each hyper-parameter came from (default / hand-set / tuned); recorded, not part of the run id
    sources: dict[str, Any] | None = field(default=None, hash=False, compare=False)
    # run logging (benchmarks/engine/run_log.py): how a run is watched, not what it computes, so neither
    # is in config() or the run id; log_dir is set by run_suite from the results folder
    log: tuple[str, ...] = field(default=(), hash=False, compare=False)
    log_dir: str | None = field(default=None, hash=False, compare=False)

    def config(self) -> dict[str, Any]:
        """The resolved config as written into the results file (options added to a scenario after results
        existed are left out at their default, ``ID_NEUTRAL_DEFAULTS``, so those results keep their run ids)."""
        scenario = {k: v for k, v in self.scenario_params.items() if ID_NEUTRAL_DEFAULTS.get(k, _UNSET) != v}
        return {
            "scenario": {"name": self.scenario, "registered": self.scenario_entry, **scenario},
            "model": dict(self.model),
            "strategy": {"name": self.strategy, "registered": self.strategy_entry, **self.strategy_params},
            "train": dict(self.train),
            "seed": self.seed,
            "device": self.device,
            **({"diagnostics": dict(self.diagnostics)} if self.diagnostics is not None else {}),
            **({"holdout": dict(self.holdout)} if self.holdout is not None else {}),
        }

    @property
    def run_id(self) -> str:
        """Stable hash of the resolved config (same config -> same id -> skipped on rerun)."""
        blob = json.dumps(self.config(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]
