"""APER's parts (Zhou et al. 2023; strategies/aper_lora.py): a LoRA-adapted encoder beside the pretrained one,
and class prototypes of the two models' concatenated features.

``DualBranch`` wraps a built clbench model: a peft LoRA adapter is injected into the adapted blocks
(strategies/plugins/lora_modules.py: the blocks the model config fine-tunes, all when it freezes the
whole encoder); the backbone's own weights stay frozen. While training (first experience only) its
output is a cosine head (learnable scale) on the adapted features. In evaluation its output is the
cosine similarity of [pretrained features, adapted features] (B, 2D) to each class prototype; rows with
no prototype yet get ``MASKED``. The pretrained features are the same backbone with the adapter switched
off (peft ``enable_adapters(False)``), so no second copy of the encoder is kept.

``ClassPrototypes`` keeps, per row (cosine_head.py's layout: class, or task block in task-IL), the sum of
the training features of that row's samples and their count: prototype = sum / count, the class mean
over every training sample of that label seen so far (domain-IL: over all experiences). Computed
after training on each experience from ``strategy.experience.dataset`` (training data only).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from avalanche.training.plugins import SupervisedPlugin
from torch import nn

from strategies.plugins.cosine_head import CosineHead, cosine_logits, row_index, task_rows
from strategies.plugins.importance import experience_batches
from strategies.plugins.lora_modules import MASKED, adapted_blocks, lora_layers

ADAPTER = "aper"


class DualBranch(nn.Module):
    """Frozen backbone + one LoRA adapter; training head, then prototype classifier (module docstring).

    Args:
        backbone: a built clbench model with ``features(x) -> (B, D)``, ``blocks`` and ``head``.
        lora_config: a ``peft.LoraConfig``.
        n_outputs, n_tasks, per_task: the row layout (cosine_head.py).
        scale: initial value of the training head's learnable scale.
    """

    def __init__(self, backbone: nn.Module, lora_config, *, n_outputs: int, n_tasks: int, per_task: bool,
                 scale: float) -> None:
        super().__init__()
        from peft import inject_adapter_in_model

        dim = backbone.head.in_features
        backbone.head = nn.Identity()  # replaced by ``head`` and, after the first experience, the prototypes
        self.backbone = backbone.requires_grad_(False)
        self.backbone.cache_features = False  # MiniLM's feature memo would serve features without the adapter
        for block in adapted_blocks(backbone):
            inject_adapter_in_model(lora_config, block, adapter_name=ADAPTER)
        self.layers = lora_layers(backbone)
        self.head = CosineHead(dim, n_outputs, n_tasks, per_task=per_task, scale=scale, learn_scale=True)
        self.n_outputs, self.per_task = n_outputs, per_task
        self.prototypes: ClassPrototypes | None = None  # set by the plugin; its tensors are not model state

    def adapter_parameters(self) -> list[nn.Parameter]:
        """The LoRA weights (A and B of every adapted layer)."""
        return [p for n, p in self.backbone.named_parameters() if "lora_" in n]

    @contextmanager
    def adapter_off(self):
        """The pretrained backbone inside the block (its adapter's requires_grad flags are kept)."""
        flags = [p.requires_grad for p in self.adapter_parameters()]
        for layer in self.layers:
            layer.enable_adapters(False)
        try:
            yield
        finally:
            for layer in self.layers:
                layer.enable_adapters(True)  # peft makes the adapter trainable again: restore the flags
            for p, flag in zip(self.adapter_parameters(), flags):
                p.requires_grad_(flag)

    def dual_features(self, x: torch.Tensor) -> torch.Tensor:
        """[pretrained features, adapted features] (B, 2D)."""
        with self.adapter_off():
            pretrained = self.backbone.features(x)
        return torch.cat([pretrained, self.backbone.features(x)], dim=-1)

    def forward(self, x: torch.Tensor, tasks: torch.Tensor | None = None) -> torch.Tensor:
        if self.training:
            return self.head(self.backbone.features(x), tasks)  # (B, C)
        if self.prototypes is None or not bool((self.prototypes.counts > 0).any()):
            return x.new_full((len(x), self.n_outputs), MASKED, dtype=torch.float32)  # nothing learnt yet
        return self.prototypes.logits(self.dual_features(x), tasks)


class ClassPrototypes(SupervisedPlugin):
    """Per-row sums and counts of training features; prototype = sum / count (module docstring).

    Args:
        model: the DualBranch; its adapter is trained on the first experience only.
        n_rows: rows of the layout; dim: 2D.
    """

    def __init__(self, model: DualBranch, n_rows: int, dim: int) -> None:
        super().__init__()
        self.model = model
        self.sums = torch.zeros(n_rows, dim)  # (R, 2D), float32
        self.counts = torch.zeros(n_rows)  # (R,)
        self.experiences = 0
        self._epochs_set: int | None = None
        model.prototypes = self

    def before_training_exp(self, strategy, **kwargs) -> None:
        if self.experiences > 0:  # APER adapts on the first experience only: later ones just add prototypes
            self._epochs_set, strategy.train_epochs = strategy.train_epochs, 0

    @torch.no_grad()
    def after_training_exp(self, strategy, **kwargs) -> None:
        model = self.model
        model.requires_grad_(False)  # adapter and head frozen from now on
        was_training = model.training
        model.eval()
        self.sums, self.counts = self.sums.to(strategy.device), self.counts.to(strategy.device)
        for x, y, task in experience_batches(strategy, strategy.eval_mb_size):
            rows = row_index(y, torch.full_like(y, task), model.n_outputs, model.per_task)
            self.sums.index_add_(0, rows, model.dual_features(x).float())
            self.counts.index_add_(0, rows, torch.ones_like(rows, dtype=self.counts.dtype))
        model.train(was_training)
        if self._epochs_set is not None:
            strategy.train_epochs, self._epochs_set = self._epochs_set, None
        self.experiences += 1

    def logits(self, features: torch.Tensor, tasks: torch.Tensor | None) -> torch.Tensor:
        """Cosine similarity of dual features (B, 2D) to each row's prototype -> (B, C); MASKED where no prototype."""
        means = self.sums / self.counts.clamp(min=1).unsqueeze(1)  # (R, 2D)
        known = self.counts > 0  # (R,)
        rows = task_rows(means, tasks, self.model.n_outputs, self.model.per_task)
        known = task_rows(known.unsqueeze(1), tasks, self.model.n_outputs, self.model.per_task).squeeze(-1)
        return cosine_logits(features.float(), rows).masked_fill(~known, MASKED)
