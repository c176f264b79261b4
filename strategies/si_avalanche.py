"""SI as Avalanche 0.6.0's SynapticIntelligencePlugin computes it (compare with ``si``).

Differs from Zenke et al. 2017 and Hsu et al. 2018's code: each importance is clipped at 0.001
(``clamp(max=0.001)``), the damping is ``eps`` (default 1e-7, the paper's xi is 0.1), the penalty is
``si_lambda / 2 * sum Omega (theta - theta*)^2``, and the path integral uses the gradient of the loss
that already includes the SI penalty. Defaults: task-IL 300, domain-IL 3000, class-IL 600.

One fix (issue 22's review): on a CPU device Avalanche's ``extract_weights`` stores
``param.detach().cpu().flatten()``, which for a CPU parameter is a *view* of the parameter, not a copy:
the "old" and "new" weights of every step are the same storage, the path integral is 0, every importance
is 0 and the penalty vanishes. That is why its accuracy matrices were bit-identical to naive's (split
MNIST, class- and domain-IL; the default suite) on this CPU-only machine. ``_CopyingSI`` stores copies
(on a GPU ``.cpu()`` already copies: there the two agree).
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
    """Naive + Avalanche's SynapticIntelligencePlugin (weights stored as copies, module docstring)."""
    from avalanche.training import Naive

    return ctx.template(Naive, plugins=[_copying_si()(si_lambda=p.si_lambda, eps=p.eps)])


def _copying_si() -> type:
    """SynapticIntelligencePlugin whose stored weights (anchor, step start and end) are copies."""
    from avalanche.training.plugins import SynapticIntelligencePlugin

    class _CopyingSI(SynapticIntelligencePlugin):
        """Avalanche calls its static ``extract_weights`` by class name, so the copies are made after
        the hooks that store weights: the anchor (``ewc_data[0]``), a step's start (``old_theta``)."""

        def _copy(self) -> None:
            for store in (self.ewc_data[0], self.syn_data["old_theta"], self.syn_data["new_theta"]):
                for item in store.values():
                    item.data = item.data.clone()  # on CPU a view of the parameter until now

        def before_training_exp(self, strategy, **kwargs) -> None:
            super().before_training_exp(strategy, **kwargs)
            self._copy()

        def before_training_iteration(self, strategy, **kwargs) -> None:
            super().before_training_iteration(strategy, **kwargs)
            self._copy()

        def after_training_exp(self, strategy, **kwargs) -> None:
            super().after_training_exp(strategy, **kwargs)
            self._copy()

    return _CopyingSI
