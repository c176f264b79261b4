"""Memory Aware Synapses (Aljundi et al. 2018) as in Hsu et al. 2018's code.

Importance = mean over training mini-batches of |grad of the batch's mean squared output| (Hsu's
code; ``per_sample = true`` gives the paper's mean of per-sample |grad of ||f(x)||^2|), summed over
experiences; penalty ``lambda_reg * sum Omega (theta - theta*)^2``. Defaults from Hsu et al.'s
scripts: task-IL 1, domain-IL 10000, class-IL 1. ``mas_avalanche`` keeps Avalanche's MASPlugin.
"""

from dataclasses import dataclass

from benchmarks.core import check
from strategies.base import StrategyContext, register
from strategies.plugins.mas import MASPlugin


@dataclass(frozen=True)
class MASParams:
    """Args: lambda_reg: penalty strength; per_sample: Aljundi et al.'s per-sample importance instead
    of Hsu's per-batch one."""

    lambda_reg: float = 1.0
    per_sample: bool = False

    def __post_init__(self) -> None:
        check(self.lambda_reg >= 0, "lambda_reg must be >= 0")


@register("mas", params=MASParams, per_setting={"domain_il": {"lambda_reg": 10000.0}})
def build(ctx: StrategyContext, p: MASParams):
    """Naive + MASPlugin."""
    from avalanche.training import Naive

    return ctx.template(Naive, plugins=[MASPlugin(reg_lambda=p.lambda_reg, per_sample=p.per_sample)])
