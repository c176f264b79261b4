"""MAS as Avalanche 0.6.0's MASPlugin computes it (compare with ``mas``).

Differs from Aljundi et al. 2018 and Hsu et al. 2018's code: importance from the gradient of the
batch mean of the squared L2 norm of the outputs (summed over outputs, not averaged as in Hsu's
code), and across experiences a running average ``alpha * old + (1 - alpha) * new`` instead of
Hsu's sum. Defaults: Hsu et al.'s lambdas (task-IL 1, domain-IL 10000, class-IL 1), alpha 0.5.
"""

from dataclasses import dataclass

from benchmarks.core import check
from strategies.base import StrategyContext, register


@dataclass(frozen=True)
class MASAvalancheParams:
    """Args: lambda_reg: penalty strength; alpha: importance running-average weight in [0, 1]."""

    lambda_reg: float = 1.0
    alpha: float = 0.5

    def __post_init__(self) -> None:
        check(self.lambda_reg >= 0, "lambda_reg must be >= 0")
        check(0 <= self.alpha <= 1, "alpha must be in [0, 1]")


@register("mas_avalanche", params=MASAvalancheParams, per_setting={"domain_il": {"lambda_reg": 10000.0}})
def build(ctx: StrategyContext, p: MASAvalancheParams):
    """Naive + Avalanche's MASPlugin."""
    from avalanche.training import Naive
    from avalanche.training.plugins import MASPlugin

    return ctx.template(Naive, plugins=[MASPlugin(lambda_reg=p.lambda_reg, alpha=p.alpha)])
