"""Raw replay + attention regularisation: ReplayPlugin and AttentionRegPlugin on one Naive template.

Replay keeps the head and the representation trained on old classes; the attention penalty keeps the
maps of the trainable blocks close to the previous model's, on current and replayed samples alike
(the plugin reads ``strategy.mb_x``, which holds both). Frozen blocks cannot drift: set attn_layers
to the trainable ones to save the cost of reading their maps.
"""

from dataclasses import dataclass

from strategies.attn_reg import AttnRegParams
from strategies.base import StrategyContext, register
from strategies.replay import ReplayParams


@dataclass(frozen=True)
class ReplayAttnRegParams(ReplayParams, AttnRegParams):
    """The options of replay and attn_reg together (see each); same defaults."""

    def __post_init__(self) -> None:
        ReplayParams.__post_init__(self)
        AttnRegParams.__post_init__(self)


@register("replay+attn_reg", params=ReplayAttnRegParams, needs_transformer=True)
def build(ctx: StrategyContext, p: ReplayAttnRegParams):
    """Naive + ReplayPlugin + AttentionRegPlugin."""
    from avalanche.training import Naive

    return ctx.template(Naive, plugins=[p.replay_plugin(ctx), p.attn_plugin()])
