"""L2 regularisation toward the previous experience's weights (Hsu et al. 2018's "L2" baseline)."""

from __future__ import annotations

import torch

from strategies.plugins.importance import QuadraticPenaltyPlugin, Tensors, trainable


class L2Plugin(QuadraticPenaltyPlugin):
    """Adds ``l2_lambda * sum_i (theta_i - theta_prev_i)^2`` from the second experience on.

    As Hsu's L2 agent: importance 1 for every parameter, one anchor = the parameters after the latest
    experience. Hsu's multi-head model holds every task's head from the start, so it also pulls
    not-yet-trained heads toward their initial values; here a head created later is not regularised.

    Args:
        l2_lambda: penalty strength.
    """

    def __init__(self, *, l2_lambda: float) -> None:
        super().__init__(reg_lambda=l2_lambda, online=True, decay=0.0)

    @property
    def l2_lambda(self) -> float:
        return self.reg_lambda

    def importance(self, strategy) -> Tensors:
        return {n: torch.ones_like(p) for n, p in trainable(strategy.model).items()}
