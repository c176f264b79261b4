"""Class-IL training loss over the outputs of the classes seen so far (Hsu et al. 2018's valid_out_dim)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from avalanche.training.plugins import SupervisedPlugin


class SeenClassesLoss(SupervisedPlugin):
    """A criterion (and plugin) that drops the logits of classes not seen yet before the wrapped loss.

    Hsu et al. (GT-RIPL/Continual-Learning-Benchmark, agents/default.py) give the single head all 10
    outputs from the start and compute the loss on ``pred[:, :valid_out_dim]``, ``valid_out_dim``
    growing by each task's classes before the task is learned; their evaluation reads every output.
    Here the columns kept are the sorted ids of the classes seen so far, and targets are re-indexed
    into them: with the fixed class order (0-1, 2-3, ...) that is exactly their slice; with a random
    class order it is the same rule (their slice assumes classes arrive in id order). The mask is
    applied in training only (every loss computed while training, including memory gradients
    (GEM) and Fisher passes (EWC) run from training events); evaluation calls the wrapped loss on all
    outputs. Avalanche adds a criterion that is a plugin to the strategy's plugins by itself.

    Args:
        criterion: the loss over (logits (B, C), targets (B,)) to wrap (default cross-entropy).
    """

    def __init__(self, criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None) -> None:
        super().__init__()
        self.criterion = criterion if criterion is not None else torch.nn.CrossEntropyLoss()
        self.seen: list[int] = []
        self.active = False
        self._saved = False
        self._cols: torch.Tensor | None = None  # (K,) seen class ids, on the logits' device
        self._remap: torch.Tensor | None = None  # (C,) class id -> column among the seen ones (-1: unseen)

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if not self.active or not self.seen:
            return self.criterion(logits, targets)
        if self._cols is None or self._cols.device != logits.device or len(self._remap) != logits.shape[1]:
            self._cols = torch.tensor(self.seen, device=logits.device)
            self._remap = torch.full((logits.shape[1],), -1, dtype=torch.long, device=logits.device)
            self._remap[self._cols] = torch.arange(len(self.seen), device=logits.device)
        # (B, C) -> (B, K): unseen columns get no gradient; a target of an unseen class maps to -1,
        # which cross-entropy rejects ("Target -1 is out of bounds").
        return self.criterion(logits.index_select(1, self._cols), self._remap[targets])

    def add_classes(self, classes) -> None:
        """Mark ``classes`` (ids) as seen."""
        new = sorted(set(self.seen) | {int(c) for c in classes})
        if new != self.seen:
            self.seen, self._cols = new, None

    def before_training_exp(self, strategy, **kwargs) -> None:
        self.add_classes(strategy.experience.classes_in_this_experience)
        self.active = True

    def before_eval(self, strategy, **kwargs) -> None:
        self._saved, self.active = self.active, False

    def after_eval(self, strategy, **kwargs) -> None:
        self.active = self._saved
