"""Per-class exemplar selection on L2-normalised features (iCaRL's rule) for Avalanche's ParametricBuffer.

``PerClassSelection(kind, model)`` is an Avalanche ``ExemplarsSelectionStrategy``: given a buffer group's
data (a class in class-IL; an experience, holding several classes, in task- and domain-IL, where labels
are relabelled per experience) it computes the model's pooled features ``features(x)`` (B, D), L2-normalises
them (iCaRL, Rebuffi et al. 2017, Alg. 4, selects on normalised features), orders each class's samples by
Avalanche's herding or closest-to-centre rule and interleaves the classes' orders (class 0's first, class
1's first, class 0's second, ...). Any prefix the buffer keeps when it shrinks a group is therefore
balanced over the group's classes, each class's part chosen by the rule within that class, as iCaRL does
per class.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from avalanche.training.storage_policy import (
    ClosestToCenterSelectionStrategy,
    ExemplarsSelectionStrategy,
    HerdingSelectionStrategy,
)
from torch import nn
from torch.utils.data import DataLoader

SELECTIONS = {"herding": HerdingSelectionStrategy, "centroid": ClosestToCenterSelectionStrategy}


class PerClassSelection(ExemplarsSelectionStrategy):
    """Order a group's samples class by class on normalised features (module docstring).

    Args:
        kind: "herding" or "centroid" (Avalanche's selection rule applied within each class).
        model: a clbench model (``features(x) -> (B, D)``).
    """

    def __init__(self, kind: str, model: nn.Module) -> None:
        self.rule = SELECTIONS[kind].make_sorted_indices_from_features  # uses no instance state
        self.model = model
        self.last_features: torch.Tensor | None = None  # (N, D) normalised, of the last group ordered (tests)

    @torch.no_grad()
    def features(self, strategy, data) -> torch.Tensor:
        """L2-normalised pooled features (N, D) of ``data`` in evaluation mode."""
        was_training = self.model.training
        self.model.eval()
        collate = getattr(data, "collate_fn", None)
        loader = DataLoader(data, batch_size=strategy.eval_mb_size, collate_fn=collate)
        feats = torch.cat([self.model.features(x.to(strategy.device)) for x, *_ in loader])
        self.model.train(was_training)
        return F.normalize(feats.float(), dim=1)

    def make_sorted_indices(self, strategy, data) -> list[int]:
        feats = self.last_features = self.features(strategy, data)
        targets = torch.as_tensor(list(data.targets))
        orders = []
        for c in targets.unique().tolist():
            idx = (targets == c).nonzero().squeeze(1)
            orders.append(idx[torch.as_tensor(self.rule(None, feats[idx]), dtype=torch.long)].tolist())
        return [order[i] for i in range(max(map(len, orders))) for order in orders if i < len(order)]
