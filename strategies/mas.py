"""Memory Aware Synapses (Aljundi et al. 2018).

Default lambdas from Hsu et al. 2018's scripts: task-IL 1, domain-IL 10000, class-IL 1;
alpha 0.5 (Avalanche's default running-importance mix).
"""

from dataclasses import dataclass

from benchmarks.core import check
from strategies.base import StrategyContext, register


@dataclass(frozen=True)
class MASParams:
    """Args: lambda_reg: penalty strength; alpha: importance running-average weight in [0, 1]."""

    lambda_reg: float = 1.0
    alpha: float = 0.5

    def __post_init__(self) -> None:
        check(self.lambda_reg >= 0, "lambda_reg must be >= 0")
        check(0 <= self.alpha <= 1, "alpha must be in [0, 1]")


@register("mas", params=MASParams, per_setting={"domain_il": {"lambda_reg": 10000.0}})
def build(ctx: StrategyContext, p: MASParams):
    """Naive + MASPlugin."""
    from avalanche.training import Naive
    from avalanche.training.plugins import MASPlugin

    return ctx.template(Naive, plugins=[MASPlugin(lambda_reg=p.lambda_reg, alpha=p.alpha)])
