"""Plugins the runner adds to every strategy: stop a run as soon as its loss is NaN or infinite."""

from __future__ import annotations

import torch
from avalanche.core import SupervisedPlugin


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or inf; names the experience, epoch and iteration."""


class FiniteLossGuard(SupervisedPlugin):
    """Raise NonFiniteLossError before backward when the (regularised) loss is not finite.

    Registered after the strategy's own plugins, so regularisation terms are included.
    """

    def before_backward(self, strategy, **kwargs) -> None:
        loss = strategy.loss
        if not bool(torch.isfinite(loss).all()):
            clock = strategy.clock
            raise NonFiniteLossError(
                f"training loss is {loss.item()} at experience {clock.train_exp_counter}, "
                f"epoch {clock.train_exp_epochs}, iteration {clock.train_epoch_iterations}; "
                "lower the learning rate or the regularisation strength"
            )
