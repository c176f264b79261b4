"""GDumb (Prabhu et al. 2020): greedy class-balanced memory, model retrained from it at every step.

Default memory 4400 (ContinualAI continual-learning-baselines split-MNIST setting).
"""

from dataclasses import dataclass

from benchmarks.core import check
from strategies.base import StrategyContext, register


@dataclass(frozen=True)
class GDumbParams:
    """Args: mem_size: buffer size in samples."""

    mem_size: int = 4400

    def __post_init__(self) -> None:
        check(self.mem_size >= 1, "mem_size must be >= 1")


@register("gdumb", params=GDumbParams)
def build(ctx: StrategyContext, p: GDumbParams):
    """Naive + GDumbPlugin."""
    from avalanche.training import Naive
    from avalanche.training.plugins import GDumbPlugin

    return ctx.template(Naive, plugins=[GDumbPlugin(mem_size=p.mem_size)])
