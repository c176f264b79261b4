"""Online EWC as Avalanche 0.6.0's EWCPlugin(mode='online') computes it (compare with ``online_ewc``).

Differs from Schwarz et al. 2018 and Hsu et al. 2018's code as ``ewc_avalanche`` does: squared
mini-batch-mean gradients with true labels instead of per-sample squared gradients. The running
importance is decay_factor * old + new. Defaults: Hsu et al.'s lambdas (task-IL 400, domain-IL 700,
class-IL 100), decay 1.0.
"""

from dataclasses import dataclass

from benchmarks.core import check
from strategies.base import StrategyContext, register


@dataclass(frozen=True)
class OnlineEWCAvalancheParams:
    """Args: ewc_lambda: penalty strength; decay_factor: running-importance decay in (0, 1]."""

    ewc_lambda: float = 400.0
    decay_factor: float = 1.0

    def __post_init__(self) -> None:
        check(self.ewc_lambda >= 0, "ewc_lambda must be >= 0")
        check(0 < self.decay_factor <= 1, "decay_factor must be in (0, 1]")


@register(
    "online_ewc_avalanche",
    params=OnlineEWCAvalancheParams,
    per_setting={"domain_il": {"ewc_lambda": 700.0}, "class_il": {"ewc_lambda": 100.0}},
)
def build(ctx: StrategyContext, p: OnlineEWCAvalancheParams):
    """Naive + Avalanche's EWCPlugin(mode='online')."""
    from avalanche.training import Naive
    from avalanche.training.plugins import EWCPlugin

    plugin = EWCPlugin(ewc_lambda=p.ewc_lambda, mode="online", decay_factor=p.decay_factor)
    return ctx.template(Naive, plugins=[plugin])
