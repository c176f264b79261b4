"""Pull toward the previous experience's weights: L2 (Hsu et al. 2018's "L2" baseline) or L1."""

from __future__ import annotations

import torch
from avalanche.training.plugins import SupervisedPlugin


class L2Plugin(SupervisedPlugin):
    """Adds ``l2_lambda * sum_p ||p - p_prev||_norm^norm`` to the loss from the second experience on.

    ``norm=2`` (default) is the squared Euclidean distance of Hsu et al. 2018; ``norm=1`` the sum of
    absolute differences (its gradient ``lambda * sign(p - p_prev)`` has the same size for every
    drifted weight, so it keeps most weights exactly at their anchor and lets few move).
    Parameters created after the snapshot (e.g. a new task head) are not regularised, nor frozen ones
    (``requires_grad=False``: they cannot move, so skipping them is exact and spares walking a frozen
    pretrained encoder's 22M weights every step).

    Args:
        l2_lambda: penalty strength (>= 0).
        norm: 1 or 2.
    """

    def __init__(self, *, l2_lambda: float, norm: int = 2) -> None:
        super().__init__()
        if l2_lambda < 0:
            raise ValueError("l2_lambda must be >= 0")
        if norm not in (1, 2):
            raise ValueError(f"norm must be 1 or 2, got {norm!r}")
        self.l2_lambda = l2_lambda
        self.norm = norm
        self.anchor: dict[str, torch.Tensor] = {}

    def penalty(self, model: torch.nn.Module) -> torch.Tensor:
        """Sum over parameters of |p - p_prev|^norm (0 before any anchor)."""
        total = torch.zeros((), device=next(model.parameters()).device)
        for name, p in model.named_parameters():
            old = self.anchor.get(name)
            if old is not None and old.shape == p.shape:
                diff = p - old
                total = total + (diff.abs().sum() if self.norm == 1 else diff.pow(2).sum())
        return total

    def before_backward(self, strategy, **kwargs) -> None:
        if self.anchor and self.l2_lambda > 0:
            strategy.loss = strategy.loss + self.l2_lambda * self.penalty(strategy.model)

    def after_training_exp(self, strategy, **kwargs) -> None:
        self.anchor = {n: p.detach().clone() for n, p in strategy.model.named_parameters() if p.requires_grad}
