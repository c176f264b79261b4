"""Online EWC (Schwarz et al. 2018) as in Hsu et al. 2018's code: one running Fisher.

After each experience F = decay * F + F_new (Hsu: decay 1, a plain sum) with the per-sample Fisher
of ``ewc`` (predicted labels, up to 60,000 samples); penalty ``ewc_lambda * sum F (theta - theta*)^2``
with theta* the parameters after the latest experience. Defaults from Hsu et al.'s scripts:
task-IL 400, domain-IL 700, class-IL 100. ``online_ewc_avalanche`` keeps Avalanche's EWCPlugin.
"""

from dataclasses import dataclass

from benchmarks.core import check
from strategies.base import StrategyContext, register
from strategies.plugins.fisher import FISHER_LABELS, FisherPlugin


@dataclass(frozen=True)
class OnlineEWCParams:
    """Args: ewc_lambda: penalty strength; decay_factor: running-Fisher decay in (0, 1] (Schwarz's
    gamma; Hsu: 1); fisher_samples: samples per experience (Hsu: 60000); fisher_label: "predicted"
    (Hsu) or "true"."""

    ewc_lambda: float = 400.0
    decay_factor: float = 1.0
    fisher_samples: int = 60000
    fisher_label: str = "predicted"

    def __post_init__(self) -> None:
        check(self.ewc_lambda >= 0, "ewc_lambda must be >= 0")
        check(0 < self.decay_factor <= 1, "decay_factor must be in (0, 1]")
        check(self.fisher_samples >= 1, "fisher_samples must be >= 1")
        check(self.fisher_label in FISHER_LABELS, f"fisher_label must be one of {FISHER_LABELS}")


@register(
    "online_ewc",
    params=OnlineEWCParams,
    per_setting={"domain_il": {"ewc_lambda": 700.0}, "class_il": {"ewc_lambda": 100.0}},
)
def build(ctx: StrategyContext, p: OnlineEWCParams):
    """Naive + FisherPlugin(online=True)."""
    from avalanche.training import Naive

    plugin = FisherPlugin(reg_lambda=p.ewc_lambda, online=True, decay=p.decay_factor,
                          fisher_samples=p.fisher_samples, fisher_label=p.fisher_label)
    return ctx.template(Naive, plugins=[plugin])
