"""Synaptic Intelligence (Zenke et al. 2017).

Default lambdas from Hsu et al. 2018's scripts: task-IL 300, domain-IL 3000, class-IL 600.
"""

from dataclasses import dataclass

from benchmarks.core import check
from strategies.base import StrategyContext, register


@dataclass(frozen=True)
class SIParams:
    """Args: si_lambda: penalty strength; eps: damping of the importance denominator."""

    si_lambda: float = 300.0
    eps: float = 1e-7

    def __post_init__(self) -> None:
        check(self.si_lambda >= 0, "si_lambda must be >= 0")
        check(self.eps > 0, "eps must be > 0")


@register(
    "si",
    params=SIParams,
    per_setting={"domain_il": {"si_lambda": 3000.0}, "class_il": {"si_lambda": 600.0}},
)
def build(ctx: StrategyContext, p: SIParams):
    """Naive + SynapticIntelligencePlugin."""
    from avalanche.training import Naive
    from avalanche.training.plugins import SynapticIntelligencePlugin

    return ctx.template(Naive, plugins=[SynapticIntelligencePlugin(si_lambda=p.si_lambda, eps=p.eps)])
