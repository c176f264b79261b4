"""Averaged GEM (Chaudhry et al. 2019): project gradients using a sampled memory batch.

Defaults: 880 patterns per experience (4400 in total for 5 experiences, as replay), sample 256.
"""

from dataclasses import dataclass

from benchmarks.core import check
from strategies.base import StrategyContext, register


@dataclass(frozen=True)
class AGEMParams:
    """Args: patterns_per_exp: memory per experience; sample_size: memory batch per step."""

    patterns_per_exp: int = 880
    sample_size: int = 256

    def __post_init__(self) -> None:
        check(self.patterns_per_exp >= 1 and self.sample_size >= 1, "memory sizes must be >= 1")


@register("agem", params=AGEMParams)
def build(ctx: StrategyContext, p: AGEMParams):
    """Naive + AGEMPlugin."""
    from avalanche.training import Naive
    from avalanche.training.plugins import AGEMPlugin

    plugin = AGEMPlugin(patterns_per_experience=p.patterns_per_exp, sample_size=p.sample_size)
    return ctx.template(Naive, plugins=[plugin])
