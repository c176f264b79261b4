"""Output heads: one linear head, or one head per task (Avalanche's MultiHeadClassifier)."""

from __future__ import annotations

import torch
from torch import nn

from benchmarks.scenarios.base import ScenarioInfo


def make_head(in_features: int, info: ScenarioInfo) -> nn.Module:
    """A single ``n_outputs`` head, or a MultiHeadClassifier (one head per task) for task-IL."""
    if info.multi_head:
        from avalanche.models import MultiHeadClassifier

        return MultiHeadClassifier(in_features, initial_out_features=info.n_outputs, masking=False)
    return nn.Linear(in_features, info.n_outputs)


def _multi_task_base() -> type:
    from avalanche.models import MultiTaskModule

    return MultiTaskModule


class HeadedModel(_multi_task_base()):
    """Base for models = features + head; forwards task labels to a multi-head.

    Subclasses set ``self.head`` and implement ``features(x) -> (B, D)``. It is an Avalanche
    MultiTaskModule so that strategies pass task labels to ``forward(x, task_labels)``; a single
    linear head ignores them (and the per-task mini-batch split of MultiTaskModule is skipped).
    """

    head: nn.Module

    def features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor, task_labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(x)
        if task_labels is not None and not isinstance(self.head, nn.Linear):
            return self.head(h, task_labels)
        return self.head(h)
