"""L2P's prompt pool on a frozen clbench Transformer, and the two plugins that train it.

``PromptPool`` holds M prompts of L_p tokens (M, L_p, D) and one key per prompt (M, D). ``Prompted``
wraps a built clbench Transformer (transformer_api.py: ``features``, ``encode``, ``decode``): the
query of an input is the frozen encoder's own pooled feature of it (``features(x)``, without
prompts; MiniLM memoises it per utterance, feature_memo.py), the N prompts whose keys are closest
to it in cosine similarity are prepended to the token embeddings (layer-0 hidden states, after the
model's position embeddings), every block runs on the (B, N * L_p + L, D) sequence, and the head
reads the mean of the prompt positions' outputs (L2P's "prompt" classifier). Only the prompts, the
keys and the head train.

``KeyQueryLoss`` adds lambda * mean_b sum_n (1 - cos(q_b, k_{s_bn})) over the selected keys (L2P's
surrogate loss, which pulls the chosen keys towards their queries); ``TrainMask`` sets the logits of
classes outside the current experience to -inf while training (L2P's ``train_mask``).
"""

from __future__ import annotations

import torch
from avalanche.training.plugins import SupervisedPlugin
from torch import nn


class PromptPool(nn.Module):
    """M prompts (M, L_p, D) and their keys (M, D), both initialised uniform in [-1, 1] (L2P's code).

    Args:
        size: M, the number of prompts.
        length: L_p, tokens per prompt.
        top_n: N, prompts selected per input.
        dim: D, the token width of the backbone.
    """

    def __init__(self, size: int, length: int, top_n: int, dim: int) -> None:
        super().__init__()
        self.top_n = top_n
        self.prompts = nn.Parameter(torch.empty(size, length, dim).uniform_(-1, 1))
        self.keys = nn.Parameter(torch.empty(size, dim).uniform_(-1, 1))

    def select(self, query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Query (B, D) -> selected prompts (B, N * L_p, D) and cosines of the chosen keys (B, N)."""
        cos = nn.functional.normalize(query, dim=-1) @ nn.functional.normalize(self.keys, dim=-1).T  # (B, M)
        idx = cos.detach().topk(self.top_n, dim=-1).indices  # (B, N): the choice itself has no gradient
        chosen = self.prompts[idx]  # (B, N, L_p, D)
        return chosen.flatten(1, 2), cos.gather(1, idx)


class Prompted(nn.Module):
    """A frozen Transformer + a ``PromptPool``: see the module docstring.

    Args:
        backbone: a built clbench Transformer; frozen here (all of it but the head).
        pool: the prompt pool (its D must be the backbone's token width).
    """

    def __init__(self, backbone: nn.Module, pool: PromptPool) -> None:
        super().__init__()
        backbone.freeze_below(backbone.n_layers)  # frozen modules stay in eval mode: fixed queries
        self.backbone = backbone.requires_grad_(False)
        self.backbone.head.requires_grad_(True)
        self.pool = pool
        self.match: torch.Tensor | None = None  # (B, N) cosines of the last training batch's keys

    def forward(self, x: torch.Tensor, task_labels: torch.Tensor | None = None) -> torch.Tensor:
        with torch.no_grad():
            query = self.backbone.features(x)  # (B, D): the frozen encoder without prompts
        prompts, match = self.pool.select(query)  # (B, P, D), (B, N) with P = N * L_p
        self.match = match if self.training else None
        emb = self.backbone.encode(x, upto=0)  # layer-0 states (B, L, D), mask (B, L)
        hidden, mask = _trim(emb.hidden, emb.mask)
        ones = mask.new_ones(len(x), prompts.size(1))
        logits, _ = self.backbone.decode(
            torch.cat([prompts.to(hidden.dtype), hidden], 1), torch.cat([ones, mask], 1), start=0,
            task_labels=task_labels, pool_mask=torch.cat([ones, torch.zeros_like(mask)], 1),
        )
        return logits


def _trim(hidden: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop trailing positions that are padding in every row (exact: padded keys get no attention)."""
    real = torch.nonzero(mask.any(0))
    stop = int(real.max()) + 1 if len(real) else mask.size(1)
    return hidden[:, :stop], mask[:, :stop]


class KeyQueryLoss(SupervisedPlugin):
    """Adds ``weight`` x mean over the batch of sum over the N selected keys of (1 - cos(query, key)).

    Args:
        weight: lambda of L2P's surrogate loss.
    """

    def __init__(self, weight: float) -> None:
        super().__init__()
        self.weight = weight

    def before_backward(self, strategy, **kwargs) -> None:
        match = strategy.model.match  # (B, N)
        strategy.model.match = None  # no graph kept on the model (deep copies, checkpoints)
        if match is not None and self.weight:
            strategy.loss = strategy.loss + self.weight * (1 - match).sum(1).mean()


class TrainMask(SupervisedPlugin):
    """While training, logits of classes not in the current experience become -inf (L2P's train_mask)."""

    def after_forward(self, strategy, **kwargs) -> None:
        out = strategy.mb_output  # (B, C)
        keep = torch.zeros(out.size(1), dtype=torch.bool, device=out.device)
        keep[list(strategy.experience.classes_in_this_experience)] = True
        strategy.mb_output = out.masked_fill(~keep, float("-inf"))
