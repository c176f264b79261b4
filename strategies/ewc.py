"""Elastic Weight Consolidation (Kirkpatrick et al. 2017), separate Fisher per experience.

Default lambdas per setting are Hsu et al. 2018's (Table 2 scripts): task-IL 100, domain-IL 100,
class-IL 600. They were tuned for Hsu's implementation; Avalanche's EWC penalty is
lambda/2 * sum F (theta - theta*)^2 summed over experiences.
"""

from dataclasses import dataclass

from benchmarks.core import check
from strategies.base import StrategyContext, register


@dataclass(frozen=True)
class EWCParams:
    """Args: ewc_lambda: penalty strength (>= 0)."""

    ewc_lambda: float = 100.0

    def __post_init__(self) -> None:
        check(self.ewc_lambda >= 0, "ewc_lambda must be >= 0")


@register("ewc", params=EWCParams, per_setting={"class_il": {"ewc_lambda": 600.0}})
def build(ctx: StrategyContext, p: EWCParams):
    """Naive + EWCPlugin(mode='separate')."""
    from avalanche.training import Naive
    from avalanche.training.plugins import EWCPlugin

    return ctx.template(Naive, plugins=[EWCPlugin(ewc_lambda=p.ewc_lambda, mode="separate")])
