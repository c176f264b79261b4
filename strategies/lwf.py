"""Learning without Forgetting (Li & Hoiem 2016): distil the previous model's outputs.

Defaults: alpha 1.0, temperature 2.0 (Li & Hoiem's T=2; ContinualAI baselines use alpha in [0, 1]).
"""

from dataclasses import dataclass

from benchmarks.core import check
from strategies.base import StrategyContext, register


@dataclass(frozen=True)
class LwFParams:
    """Args: alpha: distillation weight; temperature: softmax temperature."""

    alpha: float = 1.0
    temperature: float = 2.0

    def __post_init__(self) -> None:
        check(self.alpha >= 0, "alpha must be >= 0")
        check(self.temperature > 0, "temperature must be > 0")

    def lwf_plugin(self):
        """Avalanche's LwFPlugin with these options."""
        from avalanche.training.plugins import LwFPlugin

        return LwFPlugin(alpha=self.alpha, temperature=self.temperature)


@register("lwf", params=LwFParams)
def build(ctx: StrategyContext, p: LwFParams):
    """Naive + LwFPlugin."""
    from avalanche.training import Naive

    return ctx.template(Naive, plugins=[p.lwf_plugin()])
