"""Attention regularisation (clbench): fine-tuning + a penalty keeping attention maps close to the
previous model's (strategies/plugins/attention_reg.py). Needs a Transformer model (ViT, text encoders).

Default lambda 1.0 with KL over every block and head. Measured on split-MNIST class-IL with the tiny
ViT (seed 0): it cuts the drift of the attention maps from the end of experience 1 to the end of the
stream (mean KL per block) from 2.8 / 4.8 (naive) to 0.16 / 0.06 (lambda 100: 0.001 / 0.003), yet
accuracy stays at naive's: class-IL forgetting there is in the head, not in the attention.
"""

from dataclasses import dataclass
from typing import Literal

from benchmarks.core import check
from strategies.base import StrategyContext, register
from strategies.plugins.attention_reg import AttentionRegPlugin


@dataclass(frozen=True)
class AttnRegParams:
    """Attention regularisation options.

    Args:
        attn_lambda: weight of the penalty (loss += attn_lambda * D(A_old, A_new)).
        attn_mode: "kl" (KL(A_old || A_new) over keys) or "l2" (squared L2 over keys), averaged over
            valid queries, heads and blocks.
        attn_layers: blocks whose maps are regularised; [] = every block.
        attn_heads: heads regularised in each chosen block; [] = every head.
    """

    attn_lambda: float = 1.0
    attn_mode: Literal["kl", "l2"] = "kl"
    attn_layers: tuple[int, ...] = ()
    attn_heads: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        check(self.attn_lambda >= 0, "attn_lambda must be >= 0")
        check(all(i >= 0 for i in (*self.attn_layers, *self.attn_heads)), "attn_layers/attn_heads must be >= 0")

    def attn_plugin(self, layers: tuple[int, ...] | None = None) -> AttentionRegPlugin:
        """The plugin for these options (``layers`` overrides attn_layers when given)."""
        layers = self.attn_layers if layers is None else layers
        return AttentionRegPlugin(lambda_=self.attn_lambda, mode=self.attn_mode, layers=layers, heads=self.attn_heads)


@register("attn_reg", params=AttnRegParams, needs_transformer=True)
def build(ctx: StrategyContext, p: AttnRegParams):
    """Naive + AttentionRegPlugin."""
    from avalanche.training import Naive

    return ctx.template(Naive, plugins=[p.attn_plugin()])
