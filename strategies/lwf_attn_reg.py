"""LwF + attention regularisation: LwFPlugin and AttentionRegPlugin on one Naive template.

Two distillations from the same previous model: LwF on its output logits, attn_reg on its attention
maps (both computed on the current mini-batch).
"""

from dataclasses import dataclass

from strategies.attn_reg import AttnRegParams
from strategies.base import StrategyContext, register
from strategies.lwf import LwFParams


@dataclass(frozen=True)
class LwFAttnRegParams(LwFParams, AttnRegParams):
    """The options of lwf and attn_reg together (see each); same defaults."""

    def __post_init__(self) -> None:
        LwFParams.__post_init__(self)
        AttnRegParams.__post_init__(self)


@register("lwf+attn_reg", params=LwFAttnRegParams, needs_transformer=True)
def build(ctx: StrategyContext, p: LwFAttnRegParams):
    """Naive + LwFPlugin + AttentionRegPlugin."""
    from avalanche.training import Naive

    return ctx.template(Naive, plugins=[p.lwf_plugin(), p.attn_plugin()])
