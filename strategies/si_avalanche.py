"""SI as Avalanche 0.6.0's SynapticIntelligencePlugin computes it (compare with ``si``).

Differs from Zenke et al. 2017 and Hsu et al. 2018's code: each importance is clipped at 0.001
(``clamp(max=0.001)``), the damping is ``eps`` (default 1e-7, the paper's xi is 0.1), the penalty is
``si_lambda / 2 * sum Omega (theta - theta*)^2``, and the path integral uses the gradient of the loss
that already includes the SI penalty. With Hsu's lambdas its accuracy matrices on split MNIST were
bit-identical to naive's in class-IL and domain-IL. Defaults: task-IL 300, domain-IL 3000, class-IL 600.
"""

from dataclasses import dataclass

from benchmarks.core import check
from strategies.base import StrategyContext, register


@dataclass(frozen=True)
class SIAvalancheParams:
    """Args: si_lambda: penalty strength; eps: damping of the importance denominator."""

    si_lambda: float = 300.0
    eps: float = 1e-7

    def __post_init__(self) -> None:
        check(self.si_lambda >= 0, "si_lambda must be >= 0")
        check(self.eps > 0, "eps must be > 0")


@register(
    "si_avalanche",
    params=SIAvalancheParams,
    per_setting={"domain_il": {"si_lambda": 3000.0}, "class_il": {"si_lambda": 600.0}},
)
def build(ctx: StrategyContext, p: SIAvalancheParams):
    """Naive + Avalanche's SynapticIntelligencePlugin."""
    from avalanche.training import Naive
    from avalanche.training.plugins import SynapticIntelligencePlugin

    return ctx.template(Naive, plugins=[SynapticIntelligencePlugin(si_lambda=p.si_lambda, eps=p.eps)])
