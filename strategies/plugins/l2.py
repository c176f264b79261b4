"""Pull toward the previous experience's weights: L2 (Hsu et al. 2018's "L2" baseline) or L1."""

from __future__ import annotations

import torch

from strategies.plugins.importance import QuadraticPenaltyPlugin, Tensors, trainable


class L2Plugin(QuadraticPenaltyPlugin):
    """Adds ``l2_lambda * sum_i |theta_i - theta_prev_i|^norm`` from the second experience on.

    ``norm=2`` (default) is Hsu's L2 agent: importance 1 for every parameter, one anchor = the
    parameters after the latest experience. Hsu's multi-head model holds every task's head from the
    start, so it also pulls not-yet-trained heads toward their initial values; here a head created
    later is not regularised. ``norm=1`` is the L1 pull (gradient ``lambda * sign(theta - theta_prev)``,
    the same size for every drifted weight: most weights stay exactly at their anchor). Frozen
    parameters (``requires_grad=False``) are skipped: they cannot move, and a frozen pretrained
    encoder's 22M weights need not be walked every step.

    Args:
        l2_lambda: penalty strength (>= 0).
        norm: 1 or 2.
    """

    def __init__(self, *, l2_lambda: float, norm: int = 2) -> None:
        super().__init__(reg_lambda=l2_lambda, online=True, decay=0.0)
        if norm not in (1, 2):
            raise ValueError(f"norm must be 1 or 2, got {norm!r}")
        self.norm = norm

    @property
    def l2_lambda(self) -> float:
        return self.reg_lambda

    @property
    def anchor(self) -> Tensors:
        """The parameters after the latest experience ({} before the first)."""
        return self.terms[0][1] if self.terms else {}

    @anchor.setter
    def anchor(self, values: Tensors) -> None:
        self.terms = [({n: torch.ones_like(v) for n, v in values.items()}, dict(values))]

    def importance(self, strategy) -> Tensors:
        return {n: torch.ones_like(p) for n, p in trainable(strategy.model).items()}

    def penalty(self, model: torch.nn.Module) -> torch.Tensor:
        """``sum_i |theta_i - theta_prev_i|^norm`` over the anchored trainable parameters (0 before any)."""
        if self.norm == 2:
            return super().penalty(model)
        params = trainable(model)
        total = torch.zeros((), device=next(model.parameters()).device)
        for n, old in self.anchor.items():
            p = params.get(n)
            if p is not None and p.shape == old.shape:
                total = total + (p - old).abs().sum()
        return total
