"""Feature replay + attention regularisation: both clbench plugins on one Naive template.

Blocks below the split are frozen after the first experience, so their maps cannot move: unless
attn_layers is set, only the blocks at or above the split layer are regularised.
"""

from dataclasses import dataclass

from strategies.attn_reg import AttnRegParams
from strategies.base import StrategyContext, register
from strategies.feature_replay import FeatureReplayParams


@dataclass(frozen=True)
class FeatureReplayAttnRegParams(FeatureReplayParams, AttnRegParams):
    """The options of feature_replay and attn_reg together (see each); same defaults."""

    def __post_init__(self) -> None:
        FeatureReplayParams.__post_init__(self)
        AttnRegParams.__post_init__(self)


@register("feature_replay+attn_reg", params=FeatureReplayAttnRegParams, needs_transformer=True)
def build(ctx: StrategyContext, p: FeatureReplayAttnRegParams):
    """Naive + FeatureReplayPlugin + AttentionRegPlugin (on blocks >= split unless attn_layers is set)."""
    from avalanche.training import Naive

    replay = p.replay_plugin(ctx.seed, ctx.info.label_bytes)
    k = replay.split(ctx.model)
    layers = p.attn_layers or tuple(range(k, ctx.model.n_layers))
    if not layers:
        raise ValueError("store='pooled' freezes every block: no attention left to regularise; use feature_replay")
    return ctx.template(Naive, plugins=[replay, p.attn_plugin(layers)])
