"""L1: absolute-value pull toward the weights after the previous experience (L1 analogue of "l2").

The same plugin as ``l2`` (strategies/plugins/l2.py) with ``norm=1``: loss += lambda * sum |theta -
theta_prev|. No paper fixes its strength for these benchmarks; the default 1e-3 was picked here on
split-MNIST (50% subset, MLP 2x400, Adam 1e-3, 1 epoch, seed 0; average final accuracy):
task-IL naive 97.4%, lambda 1e-4 / 1e-3 / 1e-2 -> 97.8 / 97.8 / 95.6%; class-IL naive 18.8%,
-> 19.3 / 19.5 / 17.5% (like L2, a weight penalty does not prevent class-IL forgetting of the
head). Because the L1 gradient has size lambda for every weight that moved, lambdas are not
comparable with l2's.
"""

from dataclasses import dataclass

from benchmarks.core import check
from strategies.base import StrategyContext, register
from strategies.plugins.l2 import L2Plugin


@dataclass(frozen=True)
class L1Params:
    """Args: l1_lambda: penalty strength (loss += lambda * sum |theta - theta_prev|)."""

    l1_lambda: float = 1e-3

    def __post_init__(self) -> None:
        check(self.l1_lambda >= 0, "l1_lambda must be >= 0")


@register("l1", params=L1Params)
def build(ctx: StrategyContext, p: L1Params):
    """Naive + L2Plugin(norm=1)."""
    from avalanche.training import Naive

    return ctx.template(Naive, plugins=[L2Plugin(l2_lambda=p.l1_lambda, norm=1)])
