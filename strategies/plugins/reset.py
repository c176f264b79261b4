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
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(self.seed + 7919 * (strategy.clock.train_exp_counter + 1))
        for module in model.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
        torch.random.set_rng_state(gen_state)
        model.load_state_dict(self.initial, strict=False)
        strategy.optimizer.state.clear()
