"""Online EWC (Schwarz et al. 2018): one running Fisher, decayed at every experience.

Defaults from Hsu et al. 2018's scripts: lambda task-IL 400, domain-IL 700, class-IL 100; decay 1.0
(their online EWC keeps the running importance without decay); Avalanche's EWCPlugin(mode='online').
"""

from dataclasses import dataclass

from benchmarks.core import check
from strategies.base import StrategyContext, register


@dataclass(frozen=True)
class OnlineEWCParams:
    """Args: ewc_lambda: penalty strength; decay_factor: running-Fisher decay in (0, 1]."""

    ewc_lambda: float = 400.0
    decay_factor: float = 1.0

    def __post_init__(self) -> None:
        check(self.ewc_lambda >= 0, "ewc_lambda must be >= 0")
        check(0 < self.decay_factor <= 1, "decay_factor must be in (0, 1]")


@register(
    "online_ewc",
    params=OnlineEWCParams,
    per_setting={"domain_il": {"ewc_lambda": 700.0}, "class_il": {"ewc_lambda": 100.0}},
)
def build(ctx: StrategyContext, p: OnlineEWCParams):
    """Naive + EWCPlugin(mode='online')."""
    from avalanche.training import Naive
    from avalanche.training.plugins import EWCPlugin

    plugin = EWCPlugin(ewc_lambda=p.ewc_lambda, mode="online", decay_factor=p.decay_factor)
    return ctx.template(Naive, plugins=[plugin])
