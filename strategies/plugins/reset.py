"""Re-initialise the model (and the optimizer state) before every experience: training from scratch."""

from __future__ import annotations

import copy

import torch
from avalanche.training.plugins import SupervisedPlugin


class ResetModelPlugin(SupervisedPlugin):
    """Before each experience, restore the model's initial weights and clear the optimizer state.

    Parameters that did not exist at construction (new task heads) get a fresh seeded
    ``reset_parameters()``; pretrained weights are restored, never re-randomised.
    """

    def __init__(self, model: torch.nn.Module, *, seed: int) -> None:
        super().__init__()
        self.initial = copy.deepcopy(model.state_dict())
        self.seed = seed

    def before_training_exp(self, strategy, **kwargs) -> None:
        model = strategy.model
        # manual_seed reseeds the CPU and every CUDA generator: restore both afterwards, so that the
        # training draws (shuffling, dropout) are the same as without the reset.
        cuda = sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(self.seed + 7919 * (strategy.clock.train_exp_counter + 1))
            for module in model.modules():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
        model.load_state_dict(self.initial, strict=False)
        strategy.optimizer.state.clear()
