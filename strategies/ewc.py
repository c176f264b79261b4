"""Elastic Weight Consolidation (Kirkpatrick et al. 2017) as in Hsu et al. 2018's code.

One (Fisher, parameters) term per experience; per-sample Fisher with the model's predicted label
over up to 60,000 training samples (all of a split-MNIST experience), penalty
``ewc_lambda * sum_k F_k (theta - theta*_k)^2`` (no 1/2: Kirkpatrick et al. write lambda/2).
Defaults from Hsu et al.'s scripts: task-IL 100, domain-IL 100, class-IL 600.
``ewc_avalanche`` keeps Avalanche's EWCPlugin.
"""

from dataclasses import dataclass

from benchmarks.core import check
from strategies.base import StrategyContext, register
from strategies.plugins.fisher import FISHER_LABELS, FisherPlugin


@dataclass(frozen=True)
class EWCParams:
    """Args: ewc_lambda: penalty strength (>= 0); fisher_samples: at most this many samples per
    experience for the Fisher (Hsu: 60000); fisher_label: "predicted" (Hsu) or "true" (empirical)."""

    ewc_lambda: float = 100.0
    fisher_samples: int = 60000
    fisher_label: str = "predicted"

    def __post_init__(self) -> None:
        check(self.ewc_lambda >= 0, "ewc_lambda must be >= 0")
        check(self.fisher_samples >= 1, "fisher_samples must be >= 1")
        check(self.fisher_label in FISHER_LABELS, f"fisher_label must be one of {FISHER_LABELS}")


@register("ewc", params=EWCParams, per_setting={"class_il": {"ewc_lambda": 600.0}})
def build(ctx: StrategyContext, p: EWCParams):
    """Naive + FisherPlugin (a term per experience)."""
    from avalanche.training import Naive

    plugin = FisherPlugin(reg_lambda=p.ewc_lambda, fisher_samples=p.fisher_samples, fisher_label=p.fisher_label)
    return ctx.template(Naive, plugins=[plugin])
