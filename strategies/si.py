"""Synaptic Intelligence (Zenke et al. 2017) as in Hsu et al. 2018's code.

Path integral of the loss gradient (without SI's penalty) times each update, damping 0.1, no
clipping, importances summed over experiences, penalty ``si_lambda * sum Omega (theta - theta*)^2``.
Defaults from Hsu et al.'s scripts: task-IL 300, domain-IL 3000, class-IL 600.
``si_avalanche`` keeps Avalanche's SynapticIntelligencePlugin.
"""

from dataclasses import dataclass

from benchmarks.core import check
from strategies.base import StrategyContext, register
from strategies.plugins.si import SIPlugin


@dataclass(frozen=True)
class SIParams:
    """Args: si_lambda: penalty strength; damping: xi of the importance denominator (Zenke, Hsu: 0.1);
    max_importance: clip each experience's importance at this value (0 = no clipping)."""

    si_lambda: float = 300.0
    damping: float = 0.1
    max_importance: float = 0.0

    def __post_init__(self) -> None:
        check(self.si_lambda >= 0, "si_lambda must be >= 0")
        check(self.damping > 0, "damping must be > 0")
        check(self.max_importance >= 0, "max_importance must be >= 0 (0 = no clipping)")


@register(
    "si",
    params=SIParams,
    per_setting={"domain_il": {"si_lambda": 3000.0}, "class_il": {"si_lambda": 600.0}},
)
def build(ctx: StrategyContext, p: SIParams):
    """Naive + SIPlugin."""
    from avalanche.training import Naive

    plugin = SIPlugin(reg_lambda=p.si_lambda, damping=p.damping, max_importance=p.max_importance or None)
    return ctx.template(Naive, plugins=[plugin])
