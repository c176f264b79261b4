"""Modular dynamic Transformer: frozen pretrained encoder + a new LoRA module (peft) per experience.

Each experience gets its own LoRA adapter (Hu et al. 2022) in the encoder's attention projections and
its own linear head over that experience's classes; earlier modules are frozen, so the training of a
module cannot change another (no forgetting inside a module). Task-IL picks the module by the task
label; class-IL and domain-IL by confidence: every module scores the sample and the one with the
highest maximum softmax probability wins (strategies/plugins/lora_modules.py); forgetting there is
misrouting. The adapted blocks are those the model config fine-tunes (MiniLM ``frozen_layers = 5``:
block 5, with the prefix cache of blocks 0-4 kept exact), or every block when the config freezes the
whole encoder. The parameters added per experience are in ``strategy.added_parameters``.

Defaults: rank 8 on the query and value projections (Hu et al. 2022, Sec. 7.1: r = 8 on W_q, W_v
for GPT-3), alpha 16 (peft's examples: alpha = 2r), no LoRA dropout.
"""

from dataclasses import dataclass

import torch
from avalanche.training.plugins import SupervisedPlugin

from benchmarks.core import check
from strategies.base import StrategyContext, StrategyNotApplicable, register, with_task_labels
from strategies.plugins.lora_modules import ModularLoRA, default_targets


@dataclass(frozen=True)
class ModularLoRAParams:
    """Args: rank: LoRA rank r; alpha: LoRA scaling numerator (update scaled by alpha / r); dropout:
    LoRA dropout; target_modules: names of the Linear layers to adapt (empty = query/value for BERT,
    qkv for the fused attention of the ViT and text Transformer)."""

    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check(self.rank >= 1 and self.alpha > 0, "rank must be >= 1 and alpha > 0")
        check(0 <= self.dropout < 1, "dropout must be in [0, 1)")


class NewModulePerExperience(SupervisedPlugin):
    """Before each experience's data is adapted (so before the optimizer is made): a new module."""

    def before_train_dataset_adaptation(self, strategy, **kwargs) -> None:
        exp = strategy.experience
        classes = torch.tensor(sorted(exp.classes_in_this_experience))
        name = f"exp{exp.current_experience}"
        strategy.added_parameters.append(strategy.model.add_module_for(name, classes, task=exp.task_label))


def _targets(model, p: ModularLoRAParams) -> list[str]:
    return list(p.target_modules) if p.target_modules else default_targets(model)


@register("modular_lora", params=ModularLoRAParams, needs_transformer=True)
def build(ctx: StrategyContext, p: ModularLoRAParams):
    """Naive on ModularLoRA(model) + NewModulePerExperience."""
    from avalanche.training import Naive
    from peft import LoraConfig

    if not hasattr(ctx.model, "blocks"):
        raise StrategyNotApplicable("modular_lora adds LoRA to Transformer blocks: use minilm, vit or text_transformer")
    config = LoraConfig(r=p.rank, lora_alpha=p.alpha, lora_dropout=p.dropout, target_modules=_targets(ctx.model, p))
    model = ModularLoRA(ctx.model, ctx.info.n_outputs, config, route_by_task=ctx.info.setting == "task_il")
    strategy = ctx.template(with_task_labels(Naive), model=model, plugins=[NewModulePerExperience()])
    strategy.added_parameters = []
    return strategy
