"""A class-IL head that cannot forget: each experience's rows of the shared linear head freeze after it.

MoE-Adapters (Yu et al. 2024) and O-LoRA (Wang et al. 2023) classify with something training does not
overwrite: CLIP's frozen text embeddings of the class names, a generative model's label text. clbench's
text and image models have a shared linear head instead (D -> n_outputs), which in class-IL naive
fine-tuning drifts for old classes (their rows and biases keep receiving gradients through the softmax).
``FrozenHeadRows`` keeps, after experience i, the rows and biases of i's classes bit-identical for the rest
of the stream (restored after every optimizer step, so no optimizer state can move them); the current
experience's rows train as before. Features may still change for old classes (the adapters' part).
"""

from __future__ import annotations

import torch
from avalanche.training.plugins import SupervisedPlugin
from torch import nn


class FrozenHeadRows(SupervisedPlugin):
    """Freeze the head rows (and biases) of each experience's classes after that experience.

    Args:
        head: the model's shared ``nn.Linear`` head (D -> n_outputs).
    """

    def __init__(self, head: nn.Linear) -> None:
        super().__init__()
        if not isinstance(head, nn.Linear):
            raise TypeError(f"FrozenHeadRows needs a single linear head (class-IL), got {type(head).__name__}")
        self.head = head
        self.rows = torch.zeros(head.out_features, dtype=torch.bool)  # frozen classes
        self.weight = head.weight.detach().clone()  # (C, D) values of the frozen rows
        self.bias = None if head.bias is None else head.bias.detach().clone()  # (C,)

    @torch.no_grad()
    def after_update(self, strategy, **kwargs) -> None:
        if self.rows.any():
            rows = self.rows.to(self.head.weight.device)
            self.head.weight[rows] = self.weight.to(self.head.weight)[rows]
            if self.bias is not None:
                self.head.bias[rows] = self.bias.to(self.head.bias)[rows]

    @torch.no_grad()
    def after_training_exp(self, strategy, **kwargs) -> None:
        classes = torch.as_tensor(list(strategy.experience.classes_in_this_experience), dtype=torch.long)
        self.rows[classes] = True
        self.weight = self.head.weight.detach().clone()
        self.bias = None if self.head.bias is None else self.head.bias.detach().clone()


def head_plugins(ctx, head: str, strategy: str) -> list[SupervisedPlugin]:
    """The plugins of a strategy's ``head`` option: none for "linear", FrozenHeadRows for "frozen_rows"
    (class-IL only: in task-IL each task has its own head already, in domain-IL every experience shares
    all classes, so freezing would stop the head after the first one)."""
    from strategies.base import StrategyNotApplicable

    if head == "linear":
        return []
    if ctx.info.setting != "class_il":
        raise StrategyNotApplicable(
            f"{strategy}: head = {head!r} applies to class_il only ({ctx.info.setting} here); use head = 'linear'")
    return [FrozenHeadRows(ctx.model.head)]
