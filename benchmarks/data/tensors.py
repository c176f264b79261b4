"""Tensor datasets with a ``targets`` field, the form Avalanche's generic builders split by class."""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset


class LabelledTensorDataset(TensorDataset):
    """TensorDataset(x..., y) whose last tensor is the class label, exposed as ``targets``."""

    def __init__(self, *tensors: torch.Tensor) -> None:
        super().__init__(*tensors)
        self.targets = tensors[-1]


def stratified_subset(y: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """Indices of a seeded random ``fraction`` of each class (at least one per class), sorted."""
    if fraction >= 1.0:
        return torch.arange(len(y))
    gen = torch.Generator().manual_seed(seed)
    keep = []
    for c in torch.unique(y):
        idx = torch.nonzero(y == c).flatten()
        n = max(1, round(fraction * len(idx)))
        keep.append(idx[torch.randperm(len(idx), generator=gen)[:n]])
    return torch.sort(torch.cat(keep)).values
