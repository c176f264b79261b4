"""First-experience adaptation: train the encoder on experience 1 only, then freeze it (seq_star, aper_lora).

``freeze_encoder`` freezes every parameter of a clbench backbone (and, where it has ``freeze_below``,
keeps its modules in eval mode: no dropout, and MiniLM's frozen-feature memo then serves its features).
``SeqStarSchedule`` is SEQ*'s schedule (Zheng et al. 2024; strategies/seq_star.py): on the first
experience ``warmup_epochs`` epochs train encoder + classifier, then the encoder is frozen and
``train.epochs`` more epochs train the classifier; on every later experience the classifier rows of
earlier experiences are restored after each optimizer step, so only the rows of the current (and, with
a pre-allocated classifier, future) classes change.
"""

from __future__ import annotations

import torch
from avalanche.training.plugins import SupervisedPlugin
from torch import nn


def freeze_encoder(backbone: nn.Module) -> None:
    """Freeze every parameter of ``backbone`` (eval mode for its blocks where it supports ``freeze_below``)."""
    if hasattr(backbone, "freeze_below") and hasattr(backbone, "n_layers"):
        backbone.freeze_below(backbone.n_layers)
    backbone.requires_grad_(False)


def experience_rows(strategy, head) -> list[int]:
    """Rows of ``head`` (a CosineHead) that the current experience's classes use."""
    exp = strategy.experience
    classes = torch.tensor(sorted(exp.classes_in_this_experience))
    tasks = torch.full_like(classes, int(exp.task_label))
    return head.rows_of(classes, tasks).tolist()


class SeqStarSchedule(SupervisedPlugin):
    """SEQ*'s training schedule (module docstring).

    Args:
        backbone: the encoder (frozen after the first experience's warm-up).
        head: the CosineHead whose rows of earlier experiences stay fixed.
        warmup_epochs: epochs of the first experience that train the encoder (0: never trained).
        preallocate: the classifier has rows for every class from the start and the training loss covers
            them all (SEQ*'s pre-allocated classifier); False masks rows of classes not seen yet while training.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, warmup_epochs: int, preallocate: bool) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head
        self.warmup_epochs, self.preallocate = warmup_epochs, preallocate
        self.old_rows: list[int] = []  # rows of the classes of finished experiences
        self.experiences = 0  # finished training experiences
        self._epoch = 0
        self._epochs_set: int | None = None  # the run's train.epochs while the first experience runs longer
        self._kept: torch.Tensor | None = None  # old rows' values during an experience (not kept after it)
        self._seen: list[int] = []  # rows of earlier experiences and the current one

    def before_training_exp(self, strategy, **kwargs) -> None:
        self._epoch = 0
        if self.experiences == 0:
            self._epochs_set = strategy.train_epochs
            strategy.train_epochs += self.warmup_epochs
        self._seen = sorted({*self.old_rows, *experience_rows(strategy, self.head)})
        self._kept = self.head.weight.detach()[self.old_rows].clone() if self.old_rows else None

    def before_training_epoch(self, strategy, **kwargs) -> None:
        if self.experiences == 0 and self._epoch == self.warmup_epochs:
            freeze_encoder(self.backbone)  # SEQ*: "fix the encoder" after the warm-up epochs

    def after_training_epoch(self, strategy, **kwargs) -> None:
        self._epoch += 1

    def after_forward(self, strategy, **kwargs) -> None:
        if self.preallocate or self.head.per_task:
            return
        hidden = torch.ones(strategy.mb_output.size(1), dtype=torch.bool, device=strategy.mb_output.device)
        hidden[self._seen] = False  # classes neither seen before nor in this experience
        strategy.mb_output = strategy.mb_output.masked_fill(hidden, float("-inf"))

    @torch.no_grad()
    def after_update(self, strategy, **kwargs) -> None:
        if self._kept is not None:
            self.head.weight[self.old_rows] = self._kept  # SEQ*: "fix the old classifiers"

    def after_training_exp(self, strategy, **kwargs) -> None:
        freeze_encoder(self.backbone)
        if self._epochs_set is not None:
            strategy.train_epochs, self._epochs_set = self._epochs_set, None
        self.old_rows = sorted({*self.old_rows, *experience_rows(strategy, self.head)})
        self.experiences += 1
        self._kept = None
