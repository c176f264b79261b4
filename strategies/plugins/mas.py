"""Memory Aware Synapses (Aljundi et al. 2018) as in Hsu et al. 2018's code, or per sample as the paper.

Hsu's code (``per_sample=False``, default): over the experience's training data in mini-batches of
``train_mb_size``, Omega += |d mean(f(x)^2) / d theta| / n_batches, the mean taken over the batch and
the outputs (class-IL: the outputs the training loss covers, i.e. only those of the classes seen so
far with ``loss_on_seen_classes``, as Hsu's class-IL runs). Aljundi
et al. (``per_sample=True``): Omega = (1/N) sum_n |d ||f(x_n)||_2^2 / d theta|. Both sum Omega
over experiences; penalty ``reg_lambda * sum Omega (theta - theta*)^2``, theta* = latest parameters.
"""

from __future__ import annotations

import torch

from strategies.plugins.importance import (
    QuadraticPenaltyPlugin,
    Tensors,
    experience_batches,
    forward_args,
    restrict,
    seen_columns,
    trainable,
)
from strategies.plugins.persample import PASS_BATCH, mean_per_sample


def batch_importance(model: torch.nn.Module, batches, columns: torch.Tensor | None = None) -> Tensors:
    """Hsu's MAS importance: mean over mini-batches of |grad of the batch's mean squared output|.

    Args:
        model: the network.
        batches: (x, y, task) batches of one task each.
        columns: sorted output columns to read (None: all; see ``seen_columns``).
    """
    params = trainable(model)
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    count, was_training = 0, model.training
    model.eval()
    try:
        for x, _y, task in batches:
            out = restrict(model(x, *forward_args(model, task)), columns)  # (B, K)
            grads = torch.autograd.grad(out.pow(2).mean(), list(params.values()), allow_unused=True)
            for n, g in zip(params, grads):
                if g is not None:
                    total[n] += g.abs()
            count += 1
    finally:
        model.train(was_training)
    return {n: v / max(count, 1) for n, v in total.items()}


class MASPlugin(QuadraticPenaltyPlugin):
    """MAS importance summed over experiences (see the module docstring).

    Args:
        reg_lambda: penalty strength.
        per_sample: Aljundi et al.'s per-sample importance instead of Hsu's per-batch one.
    """

    def __init__(self, *, reg_lambda: float, per_sample: bool = False) -> None:
        super().__init__(reg_lambda=reg_lambda, online=True)
        self.per_sample = per_sample

    def importance(self, strategy) -> Tensors:
        model, columns = strategy.model, seen_columns(strategy)
        if self.per_sample:
            def squared_norm(out: torch.Tensor, _target: torch.Tensor) -> torch.Tensor:
                return restrict(out, columns).pow(2).sum()

            return mean_per_sample(model, experience_batches(strategy, PASS_BATCH), squared_norm, torch.abs)
        return batch_importance(model, experience_batches(strategy, strategy.train_mb_size), columns)
