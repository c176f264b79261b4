"""Attention regularisation: keep a Transformer's attention maps close to its previous self.

After each experience a frozen copy (snapshot) of the model is kept. While training the next one,
both models encode the mini-batch and ``lambda * D(A_old, A_new)`` is added to the loss, where A are
the attention probabilities (B, H, L, L) of the chosen blocks and heads. Works with any model that
implements benchmarks/models/transformer_api.py (tiny ViT, text encoders). No effect on the first
experience (no snapshot yet). When the model caches its frozen prefix (MiniLM with frozen_layers = k,
prefix_cache.py) and only blocks >= k are regularised, the maps start from the cached layer-k states
instead of the input: the same penalty (frozen blocks are shared by model and snapshot) at the cost
of the trainable blocks only.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Literal

import torch
from avalanche.training.plugins import SupervisedPlugin

from strategies.plugins.modes import eval_mode

Mode = Literal["kl", "l2"]


def attention_distance(
    a_old: torch.Tensor, a_new: torch.Tensor, mask: torch.Tensor | None = None, mode: Mode = "kl", eps: float = 1e-8
) -> torch.Tensor:
    """Distance between two sets of attention maps of one block, averaged over valid queries and heads.

    For each batch item b, head h and query q (rows sum to 1 over the keys k):

    - "kl": d[b,h,q] = KL(A_old || A_new) = sum_k A_old[b,h,q,k] * (log A_old[b,h,q,k] - log A_new[b,h,q,k])
      (both probabilities floored at ``eps`` inside the logs, so a 0 of A_old contributes 0);
    - "l2": d[b,h,q] = sum_k (A_old[b,h,q,k] - A_new[b,h,q,k])^2.

    Padded keys are left out of the sum over k and padded queries out of the mean:
    D = sum_{b,h,q: mask[b,q]} d[b,h,q] / (H * #{(b,q): mask[b,q]}).

    Args:
        a_old: (B, H, L, L) attention probabilities of the snapshot (the target; no gradient needed).
        a_new: (B, H, L, L) attention probabilities of the model being trained.
        mask: (B, L) bool, True for real tokens; None = every position is real.
        mode: "kl" or "l2" as above.
        eps: floor of the probabilities inside the logs ("kl").

    Returns:
        A scalar tensor (differentiable w.r.t. ``a_new``).
    """
    B, H, L, _ = a_new.shape
    if mask is None:
        mask = torch.ones(B, L, dtype=torch.bool, device=a_new.device)
    if mode == "kl":
        # both logs floored at eps: exactly 0 for equal maps, and 0 where A_old is 0
        per_key = a_old * (torch.log(a_old.clamp_min(eps)) - torch.log(a_new.clamp_min(eps)))
    elif mode == "l2":
        per_key = (a_old - a_new).pow(2)
    else:
        raise ValueError(f"mode must be 'kl' or 'l2', got {mode!r}")
    per_query = per_key.masked_fill(~mask[:, None, None, :], 0.0).sum(-1)  # (B, H, L)
    per_query = per_query.masked_fill(~mask[:, None, :], 0.0)
    n_valid = mask.sum().clamp_min(1) * H
    return per_query.sum() / n_valid


def cached_start(model: torch.nn.Module, layers: Sequence[int]) -> int:
    """k > 0 when the maps of ``layers`` can start from the model's cached layer-k hidden states: the
    model caches its frozen prefix (MiniLM's ``prefix_cache``, blocks < k frozen) and every chosen
    block is >= k; else 0 (the maps are read from the input, through every block)."""
    uses = getattr(model, "uses_prefix_cache", None)
    if not layers or uses is None or not uses():
        return 0
    return model.frozen_below if min(layers) >= model.frozen_below else 0


def head_labels(model: torch.nn.Module, n: int, device: torch.device) -> torch.Tensor | None:
    """Task labels (n,) that let ``decode`` run when only the blocks' outputs are wanted (the logits are
    discarded): None for a single head; for a multi-head, its first head's label (a snapshot has no
    head for the task being learned)."""
    head = getattr(model, "head", None)
    if head is None or isinstance(head, torch.nn.Linear):
        return None
    known = sorted(int(k) for k in getattr(head, "classifiers", {})) or [0]
    return torch.full((n,), known[0], dtype=torch.long, device=device)


class AttentionRegPlugin(SupervisedPlugin):
    """Adds ``lambda * mean over chosen blocks of attention_distance(A_snapshot, A_model)`` to the loss.

    Both models are run in eval mode (no dropout) on ``strategy.mb_x``, so the penalty is exactly 0 while
    the model equals its snapshot; gradients still flow through the current model's maps.
    """

    def __init__(
        self, *, lambda_: float, mode: Mode = "kl", layers: Sequence[int] = (), heads: Sequence[int] = ()
    ) -> None:
        """Args:
        lambda_: weight of the penalty (>= 0).
        mode: "kl" or "l2" (see ``attention_distance``).
        layers: blocks whose maps are compared; () = every block.
        heads: heads compared in each chosen block; () = every head.
        """
        super().__init__()
        if lambda_ < 0:
            raise ValueError("lambda_ must be >= 0")
        if mode not in ("kl", "l2"):
            raise ValueError(f"mode must be 'kl' or 'l2', got {mode!r}")
        self.lambda_, self.mode = lambda_, mode
        self.layers, self.heads = tuple(layers), tuple(heads)
        self.snapshot: torch.nn.Module | None = None

    def _maps(self, model: torch.nn.Module, x: torch.Tensor):
        """(attention maps of the chosen blocks, each (B, H', L, L), and the (B, L) mask)."""
        upto = max(self.layers) + 1 if self.layers else None  # stop after the last chosen block
        k = cached_start(model, self.layers)
        with eval_mode(model):
            if k:  # from the cached layer-k states (trimmed: L' <= L, same KL), blocks >= k only
                hidden, mask = model.prefix_cache.hidden(model, x)
                _, out = model.decode(hidden, mask, start=k, task_labels=head_labels(model, len(x), x.device),
                                      output_attentions=True)
            else:
                out = model.encode(x, upto=upto, output_attentions=True)
        maps = [a for a, i in zip(out.attentions, out.layers) if not self.layers or i in self.layers]
        if self.heads:
            maps = [a[:, list(self.heads)] for a in maps]
        if not maps:
            raise ValueError(f"no attention maps for layers {self.layers} (model has {model.n_layers})")
        return maps, out.mask

    def penalty(self, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Mean over the chosen blocks of D(A_snapshot, A_model) on inputs ``x``; 0 without a snapshot."""
        if self.snapshot is None:
            return torch.zeros((), device=x.device)
        with torch.no_grad():
            old, _ = self._maps(self.snapshot, x)
        new, mask = self._maps(model, x)
        return torch.stack([attention_distance(o, n, mask, self.mode) for o, n in zip(old, new)]).mean()

    def before_backward(self, strategy, **kwargs) -> None:
        if self.snapshot is not None and self.lambda_ > 0:
            strategy.loss = strategy.loss + self.lambda_ * self.penalty(strategy.model, strategy.mb_x)

    def after_training_exp(self, strategy, **kwargs) -> None:
        self.snapshot = copy.deepcopy(strategy.model).eval()
        self.snapshot.requires_grad_(False)
