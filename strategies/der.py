"""Dark Experience Replay++ (Buzzega et al. 2020): replay samples with their stored logits.

Defaults: memory 4400, alpha 0.1 (logit MSE weight), beta 0.5 (label CE weight on the buffer; DER++).
"""

from dataclasses import dataclass

from benchmarks.core import check
from strategies.base import StrategyContext, register


@dataclass(frozen=True)
class DERParams:
    """Args: mem_size: buffer size; alpha: logit-matching weight; beta: buffer label weight (0 = DER)."""

    mem_size: int = 4400
    alpha: float = 0.1
    beta: float = 0.5

    def __post_init__(self) -> None:
        check(self.mem_size >= 1, "mem_size must be >= 1")
        check(self.alpha >= 0 and self.beta >= 0, "alpha and beta must be >= 0")


@register(
    "der",
    params=DERParams,
    settings=("class_il", "domain_il"),
    why_not="Avalanche 0.6.0's DER computes the buffer's logits with model(x), without task labels, "
    "so it cannot drive a multi-head model",
)
def build(ctx: StrategyContext, p: DERParams):
    """Avalanche DER strategy."""
    from avalanche.training import DER

    return ctx.template(DER, mem_size=p.mem_size, alpha=p.alpha, beta=p.beta)
