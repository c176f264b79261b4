"""O-LoRA (Wang et al., EMNLP Findings 2023, "Orthogonal Subspace Learning for Language Model Continual
Learning"): a new LoRA adapter per experience, earlier ones frozen and kept, outputs summed.

The pretrained encoder is frozen; each experience adds a LoRA adapter (peft) to the attention
projections of the adapted blocks (those the model config fine-tunes: MiniLM ``frozen_layers = 5``
adapts block 5 and keeps the prefix cache of blocks 0-4 exact; the whole encoder when the config
freezes or trains all of it) and trains it with lambda_1 * sum_{old i} |A_i A_t^T|_1 (the sum of
absolute overlaps: the new adapter's input subspace kept orthogonal to the old ones') + lambda_2 *
||new adapter||_2
(strategies/plugins/orthogonal_lora.py). No task label is used at inference: every adapter is
always on. The parameters added per experience are in ``strategy.added_parameters``.

Defaults (the authors' code, cmnfriend/O-LoRA, T5 runs scripts/order_1.sh and src/run_uie_lora.py):
lambda_1 = 0.5, lambda_2 = 0, rank 8, alpha 32, LoRA dropout 0.1, on the query and value projections
(peft's default targets for T5 and BERT); their lr 1e-3 is clbench's default, so ``train.lr`` is used.

Differences from the paper: O-LoRA instruction-tunes a generative T5/LLaMA that outputs the label as
text; here the model's own classifier head (shared across experiences, trained in every one as in
naive; one head per task in task-IL) reads the pooled features. In class-IL that shared linear head
forgets as naive's does, so class-IL numbers measure O-LoRA's adapters *and* a forgetting head; the
``head = "frozen_rows"`` option offers a head that cannot forget
(strategies/plugins/frozen_head.py). The orthogonality term is the authors' code's sum of absolute
values (|A_old A_new^T|.sum(), for which lambda_1 = 0.5 was tuned; ``orthogonality_norm =
"squared"``: the paper's Eq. 5, whose gradient is ~30x weaker at peft's initialisation). The old
adapters stay separate modules rather than being concatenated into one rank-growing adapter (the
same function).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from benchmarks.core import check
from strategies.base import StrategyContext, StrategyNotApplicable, register


@dataclass(frozen=True)
class OLoRAParams:
    """Args: lambda_1: weight of the orthogonality loss; lambda_2: weight of the L2 norm of the new
    adapter; rank: LoRA rank r; alpha: LoRA scaling numerator (update scaled by alpha / r); dropout:
    LoRA dropout; target_modules: names of the Linear layers to adapt (empty = query/value for BERT,
    qkv for the fused attention of the ViT and text Transformer); orthogonality_norm: "abs" (sum of
    absolute overlaps, the authors' code, default) or "squared" (the paper's Eq. 5); head: "linear" (the
    shared head trains as naive's) or "frozen_rows" (class-IL: each experience's head rows frozen after
    it, a head that cannot forget)."""

    lambda_1: float = 0.5
    lambda_2: float = 0.0
    rank: int = 8
    alpha: float = 32.0
    dropout: float = 0.1
    target_modules: tuple[str, ...] = ()
    orthogonality_norm: Literal["abs", "squared"] = "abs"
    head: Literal["linear", "frozen_rows"] = "linear"

    def __post_init__(self) -> None:
        check(self.lambda_1 >= 0 and self.lambda_2 >= 0, "lambda_1 and lambda_2 must be >= 0")
        check(self.rank >= 1 and self.alpha > 0, "rank must be >= 1 and alpha > 0")
        check(0 <= self.dropout < 1, "dropout must be in [0, 1)")


@register("olora", params=OLoRAParams, needs_transformer=True)
def build(ctx: StrategyContext, p: OLoRAParams):
    """O-LoRA (Wang et al. 2023): a LoRA adapter per experience, old ones frozen, orthogonality loss.

    Naive on the frozen model + NewLoRAPerExperience + OrthogonalLoRALoss.
    """
    from avalanche.training import Naive
    from peft import LoraConfig

    from strategies.plugins.frozen_head import head_plugins
    from strategies.plugins.lora_modules import default_targets
    from strategies.plugins.orthogonal_lora import NewLoRAPerExperience, OrthogonalLoRALoss

    model = ctx.model
    if not hasattr(model, "blocks"):
        raise StrategyNotApplicable("olora adds LoRA to Transformer blocks: use minilm, vit or text_transformer")
    targets = list(p.target_modules) if p.target_modules else default_targets(model)
    config = LoraConfig(r=p.rank, lora_alpha=p.alpha, lora_dropout=p.dropout, target_modules=targets)
    model.requires_grad_(False)  # the pretrained weights; the head trains, and each new adapter
    model.head.requires_grad_(True)
    model.cache_features = False  # MiniLM's feature memo would serve features without the adapters
    adapters = NewLoRAPerExperience(config)
    orth = OrthogonalLoRALoss(adapters, p.lambda_1, p.lambda_2, p.orthogonality_norm)
    strategy = ctx.template(Naive, plugins=[adapters, orth, *head_plugins(ctx, p.head, "olora")])
    strategy.added_parameters = adapters.added  # filled as experiences arrive
    return strategy
