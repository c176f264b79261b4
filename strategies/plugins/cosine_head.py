"""Cosine classifier rows and the wrapper "encoder features -> head" shared by seq_star and aper_lora.

Rows: one weight row per output of the scenario. Class-IL and domain-IL: row = label (``n_outputs``
rows). Task-IL (labels 0..n_outputs-1 inside each task): task t owns rows t * n_outputs .. (t + 1) *
n_outputs - 1, so a sample's logits are its own task's rows only (prediction restricted to the task's
classes) and the rows of different tasks never share a weight.

    logits[b, c] = scale * <f_b / |f_b|, w_{row(t_b, c)} / |w_{row(t_b, c)}|>
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def row_index(labels: torch.Tensor, tasks: torch.Tensor | None, n_outputs: int, per_task: bool) -> torch.Tensor:
    """Row of each (label, task): the label, or task * n_outputs + label when rows are per task."""
    if not per_task:
        return labels.long()
    return tasks.long() * n_outputs + labels.long()


def task_rows(weight: torch.Tensor, tasks: torch.Tensor | None, n_outputs: int, per_task: bool) -> torch.Tensor:
    """(R, D) rows -> (B, C, D) rows of each sample's task (per task) or (C, D) for every sample."""
    if not per_task:
        return weight
    if tasks is None:
        raise ValueError("per-task cosine rows (task-IL) need the task labels: use a with_task_labels template")
    n_tasks = weight.size(0) // n_outputs
    if int(tasks.max()) >= n_tasks or int(tasks.min()) < 0:
        raise ValueError(f"task label {int(tasks.max())} outside 0..{n_tasks - 1} (one row block per experience)")
    return weight.view(n_tasks, n_outputs, -1)[tasks.long()]


def cosine_logits(features: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Cosine similarities: features (B, D), rows (C, D) or (B, C, D) -> (B, C)."""
    f = F.normalize(features, dim=-1)
    w = F.normalize(rows, dim=-1)
    return f @ w.T if w.dim() == 2 else torch.einsum("bd,bcd->bc", f, w)


class CosineHead(nn.Module):
    """Cosine linear classifier (no bias) over the scenario's rows (module docstring).

    Args:
        in_features: D.
        n_outputs: the scenario's ``n_outputs`` (per task in task-IL).
        n_tasks: experiences (row blocks) when ``per_task``.
        per_task: task-IL row layout.
        scale: initial multiplier of the cosine similarities.
        learn_scale: train the scale (APER's ``sigma``) or keep it fixed (SEQ*'s CosineLinear: 1).
    """

    def __init__(self, in_features: int, n_outputs: int, n_tasks: int, *, per_task: bool, scale: float,
                 learn_scale: bool) -> None:
        super().__init__()
        self.n_outputs, self.per_task = n_outputs, per_task
        n_rows = n_outputs * (n_tasks if per_task else 1)
        bound = 1.0 / math.sqrt(in_features)  # both papers' init: uniform(-1/sqrt(D), 1/sqrt(D))
        self.weight = nn.Parameter(torch.empty(n_rows, in_features).uniform_(-bound, bound))  # (R, D)
        self.scale = nn.Parameter(torch.tensor(float(scale)), requires_grad=learn_scale)

    def rows_of(self, labels: torch.Tensor, tasks: torch.Tensor | None) -> torch.Tensor:
        """Row index of each (label, task)."""
        return row_index(labels, tasks, self.n_outputs, self.per_task)

    def forward(self, features: torch.Tensor, tasks: torch.Tensor | None = None) -> torch.Tensor:
        """features (B, D) -> logits (B, n_outputs)."""
        return self.scale * cosine_logits(features, task_rows(self.weight, tasks, self.n_outputs, self.per_task))


class FeaturesAndHead(nn.Module):
    """``model(x, tasks) = head(backbone.features(x), tasks)``: a clbench model's encoder with another head.

    The backbone's own head is removed (replaced by ``nn.Identity``): it would never be used.

    Args:
        backbone: a built clbench model with ``features(x) -> (B, D)``.
        head: a module ``head(features, tasks) -> logits``.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        backbone.head = nn.Identity()
        self.backbone, self.head = backbone, head

    def forward(self, x: torch.Tensor, tasks: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.backbone.features(x), tasks)
