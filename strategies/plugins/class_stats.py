"""Closed-form heads on frozen features: a statistics plugin, the head it feeds, a template without SGD.

Shared by ncm, slda, ranpac and klda (one file each in strategies/). Each strategy supplies a *learner*:
an ``nn.Module`` whose buffers are everything it keeps between experiences (class sums and counts,
covariance, Gram matrix, random projections) and which implements

    phi(features (B, D)) -> (R, B, D')        its feature map (R ensemble members; R = 1 but for klda)
    update(features (B, D), slots (B,))        add one training mini-batch to the statistics
    solve() -> weight (R, D', K), bias (R, K)  the readout of the statistics so far
    counts: (K,) training samples seen per slot

``ClassStatsPlugin`` feeds it every training mini-batch (``after_forward`` fires in training only, so
no statistic ever sees evaluation data) and, after each experience, writes the readout into
``ClassStatsHead``, which replaces the model's classifier. The learner lives in the plugin, so its
buffers are counted by ``extra_state`` (benchmarks/engine/memory.py); the readout (weight, bias) is the
model's head, like the linear head it replaces. ``NoSGD`` is Naive with backward and optimizer step
turned into no-ops: one pass over each experience (epochs are ignored), no weight changes.

Slots: a class is slot ``y`` in class- and domain-IL (domain-IL: the same label in every experience
accumulates into one slot); in task-IL slot ``t * n_outputs + y``, so the head predicts among the
classes of the sample's task only.
"""

from __future__ import annotations

import math

import torch
from avalanche.training import Naive
from avalanche.training.plugins import SupervisedPlugin
from torch import nn

from benchmarks.core import ScenarioInfo


def n_slots(info: ScenarioInfo) -> int:
    """K: one slot per class, per task in task-IL."""
    return info.n_outputs * (info.n_experiences if info.multi_head else 1)


class NoSGD(Naive):
    """Naive without backward and optimizer step: training only runs the plugins' events (one epoch)."""

    def __init__(self, **kwargs) -> None:
        kwargs["train_epochs"] = 1  # statistics are accumulated once per sample: more epochs would double them
        super().__init__(**kwargs)

    def backward(self) -> None:
        pass

    def optimizer_step(self) -> None:
        pass


class ClassStatsHead(nn.Module):
    """Logits (B, n_outputs) = readout of the learner's feature map; slots with no training sample get a
    finite score below every seen one (so they are never predicted and the training loss stays finite).

    Args:
        learner: the strategy's learner; its ``phi`` is used, it is not registered as a submodule.
        info: the scenario (n_outputs, task-IL or not, n_experiences).
        in_features: D, the backbone's feature width (kept for code that reads ``head.in_features``).
    """

    def __init__(self, learner: nn.Module, info: ScenarioInfo, in_features: int) -> None:
        super().__init__()
        self.__dict__["learner"] = learner  # plain attribute: its buffers are the strategy's state, not the model's
        self.n_outputs, self.task_il, self.in_features = info.n_outputs, info.multi_head, in_features
        self.n_tasks = info.n_experiences if info.multi_head else 1
        self.single_head = not info.multi_head  # benchmarks/models/heads.py: call with features only
        self.register_buffer("weight", None)  # (R, D', K) after the first experience
        self.register_buffer("bias", None)  # (R, K)
        self.register_buffer("seen", torch.zeros(n_slots(info), dtype=torch.bool))

    @torch.no_grad()
    def set_readout(self, weight: torch.Tensor, bias: torch.Tensor, seen: torch.Tensor) -> None:
        self.weight, self.bias, self.seen = weight.float(), bias.float(), seen.to(self.seen.device)

    def forward(self, features: torch.Tensor, task_labels: torch.Tensor | int | None = None) -> torch.Tensor:
        B = len(features)
        if self.weight is None:
            return features.new_zeros(B, self.n_outputs)
        z = torch.baddbmm(self.bias[:, None, :], self.learner.phi(features).float(), self.weight)  # (R, B, K)
        seen = self.seen.expand(B, -1)  # (B, K)
        if self.task_il:
            z, seen = self._task_columns(z, seen, task_labels)
        if not seen.any():
            return features.new_zeros(B, z.shape[-1])
        if len(z) == 1:
            scores = z[0]
        else:  # ensemble (KLDA-E): mean of the members' softmax probabilities over the seen classes
            probs = torch.log_softmax(z.masked_fill(~seen, -math.inf), dim=-1)
            scores = torch.logsumexp(probs, dim=0) - math.log(len(z))
        floor = scores.masked_fill(~seen, math.inf).amin(dim=1, keepdim=True) - 1.0  # (B, 1)
        return torch.where(seen, scores, floor)

    def _task_columns(self, z: torch.Tensor, seen: torch.Tensor, task_labels) -> tuple[torch.Tensor, torch.Tensor]:
        """(R, B, K) scores and (B, K) seen -> the n_outputs columns of each sample's task."""
        B = z.shape[1]
        t = torch.as_tensor(task_labels, device=z.device).long().expand(B)
        if int(t.max()) >= self.n_tasks:
            raise ValueError(f"task label {int(t.max())} >= the scenario's {self.n_tasks} experiences")
        cols = t[:, None] * self.n_outputs + torch.arange(self.n_outputs, device=z.device)  # (B, n_outputs)
        return z.gather(2, cols.expand(len(z), -1, -1)), seen.gather(1, cols)


class ClassStatsPlugin(SupervisedPlugin):
    """Accumulate the learner's statistics on every training mini-batch; refresh the head after each
    experience.

    Args:
        learner: the strategy's learner (see the module docstring); held here, counted as extra state.
        head: the ClassStatsHead installed in the model.
        info: the scenario (for the slot of each label).
    """

    def __init__(self, learner: nn.Module, head: ClassStatsHead, info: ScenarioInfo) -> None:
        super().__init__()
        self.learner, self.head = learner, head
        self.n_outputs, self.task_il = info.n_outputs, info.multi_head

    @torch.no_grad()
    def after_forward(self, strategy, **kwargs) -> None:  # training mini-batches only
        model = strategy.model
        was_training = model.training
        model.eval()  # features as at evaluation (no dropout)
        try:
            feats = model.features(strategy.mb_x)  # (B, D); a memo hit for a frozen MiniLM
        finally:
            model.train(was_training)
        slots = strategy.mb_y.long()
        if self.task_il:
            slots = slots + self.n_outputs * strategy.mb_task_id.long()
        self.learner.update(feats, slots)

    @torch.no_grad()
    def after_training_exp(self, strategy, **kwargs) -> None:
        weight, bias = self.learner.solve()
        self.head.set_readout(weight, bias, self.learner.counts > 0)


def install(ctx, learner: nn.Module) -> ClassStatsPlugin:
    """Replace ``ctx.model``'s classifier by a ClassStatsHead fed by ``learner``; freeze the model (no SGD)."""
    model = ctx.model
    in_features = model.head.in_features  # nn.Linear and Avalanche's MultiHeadClassifier both record D
    model.requires_grad_(False)
    model.head = ClassStatsHead(learner, ctx.info, in_features).to(ctx.device)
    return ClassStatsPlugin(learner.to(ctx.device), model.head, ctx.info)


def build_closed_form(ctx, learner: nn.Module):
    """The template of a closed-form head strategy: NoSGD + ClassStatsPlugin (see the module docstring)."""
    return ctx.template(NoSGD, plugins=[install(ctx, learner)])
