"""Joint (offline upper bound): at step i a fresh model is trained on the union of experiences 0..i.

The last row of the accuracy matrix is the usual offline joint-training upper bound (Hsu et al.
2018 "Offline"); earlier rows give the upper-bound curve after each step. Implemented as Avalanche's
Cumulative template plus a plugin that re-initialises the model and the optimizer state first.
"""

from dataclasses import dataclass

from strategies.base import StrategyContext, register
from strategies.plugins.reset import ResetModelPlugin


@dataclass(frozen=True)
class JointParams:
    """No hyper-parameters; memory = all past data."""


@register("joint", params=JointParams)
def build(ctx: StrategyContext, p: JointParams):
    """Offline training from scratch on all data seen so far."""
    from avalanche.training import Cumulative

    return ctx.template(Cumulative, plugins=[ResetModelPlugin(ctx.model, seed=ctx.seed)])
