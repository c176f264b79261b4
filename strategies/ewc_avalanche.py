"""EWC as Avalanche 0.6.0's EWCPlugin(mode='separate') computes it (kept for comparison with ``ewc``).

Differs from Kirkpatrick et al. 2017 and Hsu et al. 2018's code: the "Fisher" is the square of each
mini-batch's mean gradient (batch = train_mb_size, true labels), averaged over mini-batches, not the
mean of per-sample squared gradients; near convergence it is much smaller, so the same lambda gives
a much weaker penalty. Penalty ``ewc_lambda * sum F (theta - theta*)^2`` per experience.
Defaults: Hsu et al.'s lambdas (task-IL 100, domain-IL 100, class-IL 600), tuned for their Fisher.
"""

from dataclasses import dataclass

from benchmarks.core import check
from strategies.base import StrategyContext, register


@dataclass(frozen=True)
class EWCAvalancheParams:
    """Args: ewc_lambda: penalty strength (>= 0)."""

    ewc_lambda: float = 100.0

    def __post_init__(self) -> None:
        check(self.ewc_lambda >= 0, "ewc_lambda must be >= 0")


@register("ewc_avalanche", params=EWCAvalancheParams, per_setting={"class_il": {"ewc_lambda": 600.0}})
def build(ctx: StrategyContext, p: EWCAvalancheParams):
    """Naive + Avalanche's EWCPlugin(mode='separate')."""
    from avalanche.training import Naive
    from avalanche.training.plugins import EWCPlugin

    return ctx.template(Naive, plugins=[EWCPlugin(ewc_lambda=p.ewc_lambda, mode="separate")])
