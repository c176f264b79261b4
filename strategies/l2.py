"""L2: quadratic pull toward the weights after the previous experience (Hsu et al. 2018 "L2").

Avalanche has no such plugin; strategies/plugins/l2.py adds it. Default lambdas from Hsu et al.'s
scripts: task-IL 0.01, domain-IL 0.5, class-IL 100.
"""

from dataclasses import dataclass

from benchmarks.core import check
from strategies.base import StrategyContext, register
from strategies.plugins.l2 import L2Plugin


@dataclass(frozen=True)
class L2Params:
    """Args: l2_lambda: penalty strength (loss += lambda * sum (theta - theta_prev)^2)."""

    l2_lambda: float = 0.01

    def __post_init__(self) -> None:
        check(self.l2_lambda >= 0, "l2_lambda must be >= 0")


@register("l2", params=L2Params, per_setting={"domain_il": {"l2_lambda": 0.5}, "class_il": {"l2_lambda": 100.0}})
def build(ctx: StrategyContext, p: L2Params):
    """Naive + L2Plugin."""
    from avalanche.training import Naive

    return ctx.template(Naive, plugins=[L2Plugin(l2_lambda=p.l2_lambda)])
