"""Output heads and task awareness.

Single-head settings (class-IL, domain-IL) use one ``nn.Linear``; task-IL uses Avalanche's
MultiHeadClassifier (one head per task). Avalanche passes task labels to a model only when the model
is a ``MultiTaskModule``, and LwF then expects ``model(x, None)`` to return {task: logits}; DER and
others call ``model(x)`` and expect a tensor. So models are plain modules for single-head settings
and become MultiTaskModules for task-IL: ``build_model`` calls ``make_task_aware`` on the built model.
"""

from __future__ import annotations

import torch
from torch import nn

from benchmarks.core import ScenarioInfo

_TASK_AWARE: dict[type, type] = {}


def make_head(in_features: int, info: ScenarioInfo) -> nn.Module:
    """A single ``n_outputs`` head, or a MultiHeadClassifier (one head per task) for task-IL."""
    if info.multi_head:
        from avalanche.models import MultiHeadClassifier

        return MultiHeadClassifier(in_features, initial_out_features=info.n_outputs, masking=False)
    return nn.Linear(in_features, info.n_outputs)


def is_single_head(head: nn.Module) -> bool:
    """True for a head that takes features only (``nn.Linear``, or a head declaring ``single_head = True``,
    e.g. strategies/plugins/class_stats.py's closed-form heads in class- and domain-IL)."""
    return isinstance(head, nn.Linear) or bool(getattr(head, "single_head", False))


class HeadedModel(nn.Module):
    """Base for models = features + head. Subclasses set ``self.head`` and implement ``features``.

    ``forward(x, task_labels)``: with a single head the labels are ignored; with a multi-head they
    select each sample's head, and ``task_labels=None`` returns {task: logits} for every known task
    (what Avalanche's LwF asks of a MultiTaskModule).
    """

    head: nn.Module

    def features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor, task_labels: torch.Tensor | None = None):
        if is_single_head(self.head):
            return self.head(self.features(x))
        if task_labels is None:
            return self.forward_all_tasks(x)  # provided by MultiTaskModule (task-aware variant)
        return self.head(self.features(x), task_labels)

    def forward_single_task(self, x: torch.Tensor, task_label: int) -> torch.Tensor:
        return self.head(self.features(x), task_label)


def make_task_aware(model: nn.Module) -> nn.Module:
    """Turn a built HeadedModel into an Avalanche MultiTaskModule in place (for task-IL).

    The model keeps its class's methods (encode, decode, ...); its class becomes a cached subclass
    of (its class, MultiTaskModule), and MultiTaskModule's bookkeeping fields are initialised.
    """
    from avalanche.models import MultiTaskModule

    if isinstance(model, MultiTaskModule):
        return model
    cls = type(model)
    if cls not in _TASK_AWARE:
        _TASK_AWARE[cls] = type(cls.__name__, (cls, MultiTaskModule), {"__module__": cls.__module__})
    model.__class__ = _TASK_AWARE[cls]
    model._auto_adapt = True
    model.max_class_label = 0
    model.known_train_tasks_labels = set()
    return model
