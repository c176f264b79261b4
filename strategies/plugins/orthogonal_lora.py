"""O-LoRA's parts: a new LoRA adapter (peft) per experience, all adapters summed, and the orthogonality loss.

``NewLoRAPerExperience`` injects adapter ``exp<i>`` into the target layers of the adapted blocks of
the model itself (``inject_adapter_in_model``: one more adapter in the same ``lora.Linear`` layers,
as strategies/plugins/lora_modules.py does), makes every adapter so far active (peft sums their
outputs: W x + sum_i B_i A_i x) and freezes all but the new one. ``OrthogonalLoRALoss`` adds

    lambda_1 * sum_layers sum_{old i} N(A_i A_t^T)  +  lambda_2 * sum_{p in new adapter} ||p||_2

(A: the r x d_in down-projections; the new adapter t is pushed into the orthogonal complement of the
old adapters' input subspaces, Wang et al. 2023, Eq. 4-5). N ("abs", default) is the sum of absolute
values of the overlap, as the authors' code computes it (cmnfriend/O-LoRA, src/uie_trainer_lora.py:
``torch.abs(torch.mm(param, param_.T)).sum()``) and as lambda_1 = 0.5 was tuned for; "squared" is the
squared Frobenius norm of the paper's Eq. 5. At peft's initialisation (d_in 384, r 8, one old adapter)
the squared norm's gradient on A_t is ~30x weaker than the absolute sum's (tests/test_review_fixes.py),
and it fades as the overlap shrinks.
"""

from __future__ import annotations

import warnings

import torch
from avalanche.training.plugins import SupervisedPlugin
from torch import nn

from strategies.plugins.lora_modules import adapted_blocks, lora_layers


class NewLoRAPerExperience(SupervisedPlugin):
    """Before each experience's data is adapted (so before the optimizer is made): a new adapter.

    Args:
        lora_config: a ``peft.LoraConfig`` (rank, alpha, dropout, target module names).
    """

    def __init__(self, lora_config) -> None:
        super().__init__()
        self.lora_config = lora_config
        self.names: list[str] = []  # adapters in order of creation; the last one trains
        self.added: list[int] = []  # parameters added per experience

    def before_train_dataset_adaptation(self, strategy, **kwargs) -> None:
        self.added.append(self.add(strategy.model, f"exp{strategy.experience.current_experience}"))

    def add(self, model: nn.Module, name: str) -> int:
        """Inject adapter ``name`` into ``model``, activate all adapters, train only ``name``; returns
        the number of parameters added."""
        from peft import inject_adapter_in_model

        with warnings.catch_warnings():  # peft warns that a block gets a second adapter: intended here
            warnings.filterwarnings("ignore", message="Already found a `peft_config`")
            for block in adapted_blocks(model):
                inject_adapter_in_model(self.lora_config, block, adapter_name=name)
        self.names.append(name)
        for layer in lora_layers(model):
            layer.set_adapter(list(self.names))  # forward sums every active adapter
            for old in self.names[:-1]:
                layer.lora_A[old].requires_grad_(False)
                layer.lora_B[old].requires_grad_(False)
        return sum(p.numel() for layer in lora_layers(model) for p in new_parameters(layer, name))


def new_parameters(layer: nn.Module, name: str) -> list[torch.Tensor]:
    """Adapter ``name``'s A and B weights in one peft LoRA layer."""
    return [*layer.lora_A[name].parameters(), *layer.lora_B[name].parameters()]


ORTHOGONALITY_NORMS = ("abs", "squared")


def orthogonality(model: nn.Module, names: list[str], norm: str = "abs") -> torch.Tensor:
    """sum over LoRA layers and old adapters i of N(A_i A_t^T), t = names[-1] (0 with one adapter);
    N = sum of absolute values ("abs", the authors' code) or squared Frobenius norm ("squared", Eq. 5)."""
    if norm not in ORTHOGONALITY_NORMS:
        raise ValueError(f"orthogonality norm must be one of {ORTHOGONALITY_NORMS}, got {norm!r}")
    total = torch.zeros(())
    for layer in lora_layers(model):
        new = layer.lora_A[names[-1]].weight  # (r, d_in)
        for old in names[:-1]:
            overlap = layer.lora_A[old].weight @ new.T  # (r_i, r)
            total = total + (overlap.abs().sum() if norm == "abs" else overlap.pow(2).sum())
    return total


class OrthogonalLoRALoss(SupervisedPlugin):
    """Adds O-LoRA's orthogonality and L2 terms (module docstring) to the loss.

    Args:
        adapters: the plugin that creates the adapters (its ``names``).
        lambda_1: weight of the orthogonality term.
        lambda_2: weight of the L2 norms of the new adapter's parameters.
        norm: "abs" (the authors' code, default) or "squared" (the paper's Eq. 5), see ``orthogonality``.
    """

    def __init__(self, adapters: NewLoRAPerExperience, lambda_1: float, lambda_2: float, norm: str = "abs") -> None:
        super().__init__()
        self.adapters, self.lambda_1, self.lambda_2, self.norm = adapters, lambda_1, lambda_2, norm
        self.last_orthogonality = 0.0  # value of the last step's orthogonality term (tests, diagnostics)

    def before_backward(self, strategy, **kwargs) -> None:
        names = self.adapters.names
        orth = orthogonality(strategy.model, names, self.norm)
        self.last_orthogonality = orth.detach().item()
        strategy.loss = strategy.loss + self.lambda_1 * orth.to(strategy.loss.device)
        if self.lambda_2:
            l2 = sum(p.norm() for layer in lora_layers(strategy.model) for p in new_parameters(layer, names[-1]))
            strategy.loss = strategy.loss + self.lambda_2 * l2
