"""APER with a LoRA adapter (Zhou et al. 2023, "Revisiting class-incremental learning with pre-trained models:
generalizability and adaptivity are all you need", a.k.a. ADAM; code zhoudw-zdw/RevisitingCIL).

On the first experience a parameter-efficient module is trained in the frozen pretrained encoder, with
a cosine classifier (learnable scale) on its features; then everything is frozen. Every experience
(the first included) adds class prototypes: the mean over the experience's training samples of the
concatenation [pretrained model's features, adapted model's features] (2D). Prediction: the class whose
prototype has the highest cosine similarity (RevisitingCIL's models/aper_adapter.py: ``_init_train`` on
task 0, ``construct_dual_branch_network``, ``replace_fc`` with class means). No sample is stored; the
prototype sums and counts are the extra state (``extra_state``), the adapter's parameters are
``strategy.added_parameters`` (all at the first experience). Parts: strategies/plugins/aper.py.

Name: RevisitingCIL names each APER variant by its module (aper_adapter, aper_ssf, aper_vpt,
aper_finetune); here the module is peft's LoRA (peft has no AdaptFormer bottleneck adapter), so
``aper_lora``. The adapted blocks are those the model config fine-tunes (strategies/plugins/lora_modules.py:
MiniLM ``frozen_layers = 4`` adapts blocks 4-5 and keeps the prefix cache of blocks 0-3 exact; the whole
encoder when the config freezes all of it, as APER adapts every ViT block).

Defaults: LoRA rank 8, alpha 16 on the query and value projections, no dropout (modular_lora's: Hu et al.
2022); APER's own module is an AdaptFormer adapter (bottleneck 64, ``ffn_num``) in every block's MLP. Training
head: cosine, learnable scale initialised at 1 (RevisitingCIL's ``CosineLinear`` with ``sigma``). The run's
optimizer, lr and ``train.epochs`` train the first experience (APER: SGD momentum 0.9, lr 0.01, weight decay
5e-4, 20 epochs with a cosine schedule, batch 48); later experiences run no training epoch.

Settings: class-IL (prototypes of all classes seen), task-IL (each task's prototypes only: prediction
restricted to the task's classes), domain-IL (a label's prototype = its mean over every experience so far).
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.core import check
from strategies.base import StrategyContext, StrategyNotApplicable, register, with_task_labels


@dataclass(frozen=True)
class AperLoRAParams:
    """Args: rank: LoRA rank r; alpha: LoRA scaling numerator (update scaled by alpha / r); dropout: LoRA
    dropout; target_modules: names of the Linear layers to adapt (empty = query/value for BERT, qkv for the
    fused attention of the ViT and text Transformer); scale: initial value of the training head's learnable
    cosine scale (APER: 1)."""

    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: tuple[str, ...] = ()
    scale: float = 1.0

    def __post_init__(self) -> None:
        check(self.rank >= 1 and self.alpha > 0, "rank must be >= 1 and alpha > 0")
        check(0 <= self.dropout < 1, "dropout must be in [0, 1)")
        check(self.scale > 0, "scale must be > 0")


@register("aper_lora", params=AperLoRAParams, needs_transformer=True)
def build(ctx: StrategyContext, p: AperLoRAParams):
    """APER (Zhou et al. 2023) with a peft LoRA adapter: adapt on experience 1, then cosine to class prototypes."""
    from avalanche.training import Naive
    from peft import LoraConfig

    from strategies.plugins.aper import ClassPrototypes, DualBranch
    from strategies.plugins.lora_modules import default_targets

    model, info = ctx.model, ctx.info
    if not hasattr(model, "blocks") or not hasattr(getattr(model, "head", None), "in_features"):
        raise StrategyNotApplicable("aper_lora adds LoRA to Transformer blocks: use minilm, vit or text_transformer")
    targets = list(p.target_modules) if p.target_modules else default_targets(model)
    config = LoraConfig(r=p.rank, lora_alpha=p.alpha, lora_dropout=p.dropout, target_modules=targets)
    dim = model.head.in_features
    dual = DualBranch(model, config, n_outputs=info.n_outputs, n_tasks=info.n_experiences,
                      per_task=info.multi_head, scale=p.scale)
    prototypes = ClassPrototypes(dual, n_rows=dual.head.weight.size(0), dim=2 * dim)
    strategy = ctx.template(with_task_labels(Naive), model=dual, plugins=[prototypes])
    added = sum(q.numel() for q in dual.adapter_parameters())
    strategy.added_parameters = [added] + [0] * (info.n_experiences - 1)
    return strategy
