"""Train/eval mode helpers shared by clbench's Transformer plugins."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """Put every submodule in eval mode (no dropout) and restore each one's own mode afterwards."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def frozen_to_eval(model: torch.nn.Module) -> None:
    """Eval mode for every submodule whose parameters are all frozen (their dropout then matches
    the features computed for a buffer under eval mode)."""
    for module in model.modules():
        params = list(module.parameters())
        if params and not any(p.requires_grad for p in params):
            module.eval()
