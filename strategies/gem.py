"""Gradient Episodic Memory (Lopez-Paz & Ranzato 2017). Needs the `quadprog` QP solver.

Hsu et al. 2018 run GEM with SGD lr 0.01 and margin (memory_strength) 0.5; memory 4400 in total,
i.e. 880 patterns per experience for 5 experiences.
"""

from dataclasses import dataclass

from benchmarks.core import check
from strategies.base import StrategyContext, register


@dataclass(frozen=True)
class GEMParams:
    """Args: patterns_per_exp: memory per experience; memory_strength: QP margin (>= 0)."""

    patterns_per_exp: int = 880
    memory_strength: float = 0.5

    def __post_init__(self) -> None:
        check(self.patterns_per_exp >= 1, "patterns_per_exp must be >= 1")
        check(self.memory_strength >= 0, "memory_strength must be >= 0")


@register("gem", params=GEMParams)
def build(ctx: StrategyContext, p: GEMParams):
    """Naive + GEMPlugin (fails early with an install hint if quadprog is missing)."""
    from avalanche.training import Naive
    from avalanche.training.plugins import GEMPlugin

    try:
        import quadprog  # noqa: F401  (qpsolvers installs no solver by default)
    except ImportError as exc:
        raise ImportError("GEM needs the QP solver 'quadprog': pip install quadprog") from exc
    plugin = GEMPlugin(patterns_per_experience=p.patterns_per_exp, memory_strength=p.memory_strength)
    return ctx.template(Naive, plugins=[plugin])
