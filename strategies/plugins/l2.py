"""L2 regularisation toward the previous experience's weights (Hsu et al. 2018's "L2" baseline)."""

from __future__ import annotations

import torch
from avalanche.training.plugins import SupervisedPlugin


class L2Plugin(SupervisedPlugin):
    """Adds ``l2_lambda * sum_p ||p - p_prev||^2`` to the loss from the second experience on.

    Parameters created after the snapshot (e.g. a new task head) are not regularised.
    """

    def __init__(self, *, l2_lambda: float) -> None:
        super().__init__()
        if l2_lambda < 0:
            raise ValueError("l2_lambda must be >= 0")
        self.l2_lambda = l2_lambda
        self.anchor: dict[str, torch.Tensor] = {}

    def penalty(self, model: torch.nn.Module) -> torch.Tensor:
        """Sum of squared distances of the current parameters to the anchor (0 before any anchor)."""
        total = torch.zeros((), device=next(model.parameters()).device)
        for name, p in model.named_parameters():
            old = self.anchor.get(name)
            if old is not None and old.shape == p.shape:
                total = total + (p - old).pow(2).sum()
        return total

    def before_backward(self, strategy, **kwargs) -> None:
        if self.anchor and self.l2_lambda > 0:
            strategy.loss = strategy.loss + self.l2_lambda * self.penalty(strategy.model)

    def after_training_exp(self, strategy, **kwargs) -> None:
        self.anchor = {n: p.detach().clone() for n, p in strategy.model.named_parameters()}
