"""Plugins the runner adds to every strategy: stop a run as soon as its loss is NaN or infinite."""

from __future__ import annotations

import math

import torch
from avalanche.core import SupervisedPlugin

#: iterations between host checks on an accelerator (each check waits for the GPU once)
DEVICE_CHECK_EVERY = 50


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or inf; names the experience, epoch and iteration."""


class FiniteLossGuard(SupervisedPlugin):
    """Raise NonFiniteLossError when the (regularised) training loss is not finite.

    Registered after the strategy's own plugins, so regularisation terms are included.

    On CPU every loss is checked before its backward pass (reading a CPU scalar costs nothing). On a
    GPU, reading the loss on the host every iteration would make the CPU wait for the GPU at each step
    and drain its queue; there the first non-finite iteration is recorded on the device (no sync) and
    read every ``check_every`` iterations and at the end of each epoch. The run then stops at most
    ``check_every`` iterations later, and the error still names the first bad iteration.

    Args:
        check_every: iterations between host checks; None = 1 on CPU, ``DEVICE_CHECK_EVERY`` elsewhere.
    """

    def __init__(self, check_every: int | None = None) -> None:
        super().__init__()
        if check_every is not None and check_every < 1:
            raise ValueError(f"check_every must be >= 1, got {check_every}")
        self.check_every = check_every
        self._first_bad: torch.Tensor | None = None  # device scalar: first bad iteration, -1 = none
        self._pending = 0

    def before_training_epoch(self, strategy, **kwargs) -> None:
        self._first_bad, self._pending = None, 0

    def before_backward(self, strategy, **kwargs) -> None:
        loss = strategy.loss
        every = self.check_every or (1 if loss.device.type == "cpu" else DEVICE_CHECK_EVERY)
        iteration = strategy.clock.train_epoch_iterations
        if every == 1:
            if loss.numel() == 1:  # the usual case: one host read (~2 us), no temporary tensors
                value = loss.item()
                if not math.isfinite(value):
                    self._raise(strategy, iteration, f"{value}")
            elif not bool(torch.isfinite(loss).all()):
                self._raise(strategy, iteration, "not finite")
            return
        bad = ~torch.isfinite(loss.detach()).all()
        if self._first_bad is None:
            self._first_bad = torch.full((), -1, dtype=torch.long, device=loss.device)
        self._first_bad = torch.where(bad & (self._first_bad < 0), iteration, self._first_bad)
        self._pending += 1
        if self._pending >= every:
            self._check(strategy)

    def after_training_epoch(self, strategy, **kwargs) -> None:
        self._check(strategy)

    def _check(self, strategy) -> None:
        self._pending = 0
        if self._first_bad is None:
            return
        first = int(self._first_bad.item())  # the one host sync per check
        if first >= 0:
            self._first_bad = None
            self._raise(strategy, first, "not finite")

    @staticmethod
    def _raise(strategy, iteration: int, value: str) -> None:
        clock = strategy.clock
        raise NonFiniteLossError(
            f"training loss is {value} at experience {clock.train_exp_counter}, "
            f"epoch {clock.train_exp_epochs}, iteration {iteration}; "
            "lower the learning rate or the regularisation strength"
        )
