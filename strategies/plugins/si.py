"""Synaptic Intelligence (Zenke et al. 2017) as in Hsu et al. 2018's code (agents/regularization.py).

During an experience, w_i -= g_i * delta_i at every optimizer step, where g is the gradient of the
training loss without SI's own penalty and delta the parameter change of the step. At its end,
Omega_i += w_i / ((theta_i - theta_start_i)^2 + damping) (summed over experiences, no clipping),
then w is reset; penalty ``reg_lambda * sum Omega (theta - theta*)^2``, theta* = latest parameters.

g is the accumulated gradient minus SI's penalty gradient, 2 * reg_lambda * Omega (theta - theta*),
computed in closed form: Hsu's code runs a second backward pass for it (same value). Terms that other
plugins add to the loss stay in g.
"""

from __future__ import annotations

import torch

from strategies.plugins.importance import QuadraticPenaltyPlugin, Tensors, trainable


class SIPlugin(QuadraticPenaltyPlugin):
    """Path-integral importance (see the module docstring).

    Args:
        reg_lambda: penalty strength (Zenke's c, Hsu's reg_coef).
        damping: xi in the importance denominator (Zenke et al. and Hsu: 0.1).
        max_importance: clip each experience's importance at this value (None: no clipping;
            Avalanche's SynapticIntelligencePlugin clips at 0.001).
    """

    def __init__(self, *, reg_lambda: float, damping: float = 0.1, max_importance: float | None = None) -> None:
        super().__init__(reg_lambda=reg_lambda, online=True)
        if damping <= 0 or (max_importance is not None and max_importance <= 0):
            raise ValueError("damping and max_importance must be > 0")
        self.damping, self.max_importance = damping, max_importance
        self.start: Tensors = {}  # parameters when the experience began
        self.w: Tensors = {}  # running path integral
        self._grad: Tensors = {}  # this step's loss gradient without SI's penalty
        self._before: Tensors = {}  # parameters before this step

    def before_training_exp(self, strategy, **kwargs) -> None:
        params = trainable(strategy.model)  # after model adaptation: new heads exist already
        self.start = {n: p.detach().clone() for n, p in params.items()}
        self.w = {n: torch.zeros_like(p) for n, p in self.start.items()}

    def before_update(self, strategy, **kwargs) -> None:
        self._grad, self._before = {}, {}
        for n, p in trainable(strategy.model).items():
            if p.grad is None or n not in self.w:
                continue  # an unused head: no gradient, no update
            own = self.penalty_grad(n, p) if self.reg_lambda > 0 else None
            self._grad[n] = p.grad.detach() - own if own is not None else p.grad.detach().clone()
            self._before[n] = p.detach().clone()

    def after_update(self, strategy, **kwargs) -> None:
        params = trainable(strategy.model)
        for n, g in self._grad.items():
            self.w[n] -= g * (params[n].detach() - self._before[n])

    def importance(self, strategy) -> Tensors:
        imp = {}
        for n, p in trainable(strategy.model).items():
            if n not in self.w:
                continue
            omega = self.w[n] / ((p.detach() - self.start[n]).pow(2) + self.damping)
            imp[n] = omega if self.max_importance is None else omega.clamp(max=self.max_importance)
        return imp
