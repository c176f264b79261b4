"""Shared machinery of the text Transformers (``text_transformer``, ``hf_encoder``/``minilm``): transformer_api.py.

A subclass provides the parts; this base runs them in the order the interface defines:

    embed(ids (B, L)) -> (B, L, D)                           hidden state of layer 0
    blocks: nn.ModuleList of n_layers blocks
    run_block(i, hidden, mask, output_attentions) -> (hidden, probs (B, H, L, L) | None)
    final(hidden) -> hidden                                  applied before pooling (default identity)
    embedding_modules() -> modules frozen with the embedding

Freezing (``freeze_below(k)``) turns off gradients *and* keeps the frozen modules in eval mode even
while the model trains (no dropout there), so layer-k hidden states are a deterministic function of
the input: they can be computed once per sample under ``torch.no_grad()`` (``encode(x, upto=k)``)
and fed to ``decode(..., start=k)`` for every later epoch or replay.
"""

from __future__ import annotations

import torch
from torch import nn

from benchmarks.models.heads import HeadedModel, is_single_head
from benchmarks.models.transformer_api import TransformerOutput


def split_input(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 2, L) int64 -> token ids (B, L) int64 and mask (B, L) bool (True = real token)."""
    if x.dim() != 3 or x.size(1) != 2:
        raise ValueError(f"text input must be (B, 2, L) token ids + attention mask, got shape {tuple(x.shape)}")
    return x[:, 0].long(), x[:, 1].bool()


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over real tokens: hidden (B, L, D), mask (B, L) bool -> (B, D)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)


def trim_padding(x: torch.Tensor) -> torch.Tensor:
    """Drop the trailing positions that are padding in every row: (B, 2, L) -> (B, 2, L').

    Exact for pooled features (padding keys are masked and not pooled, positions start at 0) and
    about 1.5x cheaper on CLINC150 (L = 32, longest utterance of a batch of 64 ~ 22 tokens).
    encode/decode keep the full L so that stored hidden states of different batches line up.
    """
    real = torch.nonzero(x[:, 1].any(dim=0))
    return x[:, :, : int(real.max()) + 1] if len(real) else x


class TextBackbone(HeadedModel):
    """Base of the text Transformers: encode/decode, mean pooling, freezing, single or multi-head."""

    is_transformer = True
    blocks: nn.ModuleList

    def __init__(self) -> None:
        super().__init__()
        self.frozen_below: int | None = None
        self.prefix_cache = None  # a FrozenPrefixCache (prefix_cache.py) makes ``features`` use it

    # -- parts a subclass provides -------------------------------------------------------------
    def embed(self, ids: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def run_block(self, i: int, hidden: torch.Tensor, mask: torch.Tensor, output_attentions: bool):
        raise NotImplementedError  # pragma: no cover - abstract

    def embedding_modules(self) -> list[nn.Module]:  # pragma: no cover - abstract
        raise NotImplementedError

    def final(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden

    # -- transformer_api -----------------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        return len(self.blocks)

    def encode(self, x: torch.Tensor, *, upto: int | None = None, output_attentions: bool = False) -> TransformerOutput:
        """Embedding and blocks 0..upto-1 on x (B, 2, L); hidden (B, L, D) of layer ``upto``."""
        upto = self.n_layers if upto is None else upto
        ids, mask = split_input(x)
        out = TransformerOutput(hidden=self.embed(ids), mask=mask)
        return self._run(out, 0, upto, output_attentions)

    def decode(
        self,
        hidden: torch.Tensor,
        mask: torch.Tensor,
        *,
        start: int,
        task_labels: torch.Tensor | None = None,
        output_attentions: bool = False,
        pool_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, TransformerOutput]:
        """Blocks start..n_layers-1 on hidden (B, L, D) of layer ``start``, pool, head -> (logits, output);
        ``pool_mask`` (B, L) bool: the positions pooled (default: the real tokens, ``mask``)."""
        out = self._run(TransformerOutput(hidden=hidden, mask=mask.bool()), start, self.n_layers, output_attentions)
        if pool_mask is None:
            pooled = self.pool(out.hidden, out.mask)
        else:  # chosen positions (L2P's prompts): their mean, whatever the model's own pooling
            pooled = masked_mean(self.final(out.hidden), pool_mask.bool())
        return self.classify(pooled, task_labels), out

    def _run(self, out: TransformerOutput, start: int, stop: int, output_attentions: bool) -> TransformerOutput:
        if not 0 <= start <= stop <= self.n_layers:
            raise ValueError(f"layers must satisfy 0 <= start ({start}) <= stop ({stop}) <= {self.n_layers}")
        for i in range(start, stop):
            out.hidden, probs = self.run_block(i, out.hidden, out.mask, output_attentions)
            if output_attentions:
                out.attentions.append(probs)
                out.layers.append(i)
        return out

    def pool(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Hidden states of the last layer (B, L, D) -> pooled features (B, D)."""
        return masked_mean(self.final(hidden), mask)

    def uses_prefix_cache(self) -> bool:
        """True when ``features`` (and so ``forward``) starts from cached layer-k hidden states: the
        model has a ``prefix_cache`` and blocks < k are frozen with 0 < k < n_layers."""
        k = self.frozen_below
        return self.prefix_cache is not None and k is not None and 0 < k < self.n_layers

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if self.uses_prefix_cache():
            hidden, mask = self.prefix_cache.hidden(self, x)
            out = self._run(TransformerOutput(hidden=hidden, mask=mask), self.frozen_below, self.n_layers, False)
        else:
            out = self.encode(trim_padding(x))
        return self.pool(out.hidden, out.mask)  # (B, D)

    def classify(self, features: torch.Tensor, task_labels: torch.Tensor | None = None) -> torch.Tensor:
        """Head on pooled features (B, D) -> logits; task labels (B,) select the heads of a multi-head."""
        if is_single_head(self.head):
            return self.head(features)
        if task_labels is None:
            raise ValueError("decode with a multi-head (task-IL) needs task_labels")
        return self.head(features, task_labels)

    # -- freezing ------------------------------------------------------------------------------
    def frozen_modules(self) -> list[nn.Module]:
        """The embedding and blocks below the freeze boundary (empty when nothing is frozen)."""
        if self.frozen_below is None:
            return []
        return [*self.embedding_modules(), *self.blocks[: self.frozen_below]]

    def freeze_below(self, k: int) -> None:
        """Freeze the embedding and blocks < k (requires_grad False, eval mode); blocks >= k train.

        ``freeze_below(0)`` freezes only the embedding; ``freeze_below(n_layers)`` the whole encoder
        (then only the head, and ``final`` if it has parameters, train).
        """
        if not 0 <= k <= self.n_layers:
            raise ValueError(f"freeze_below({k}): k must be in 0..{self.n_layers}")
        for module in self.embedding_modules():
            module.requires_grad_(False)
        for i, block in enumerate(self.blocks):
            block.requires_grad_(i >= k)
        self.frozen_below = k
        self.train(self.training)

    def train(self, mode: bool = True):
        """Set train/eval mode; frozen modules always stay in eval mode (deterministic, cacheable)."""
        super().train(mode)
        for module in self.frozen_modules():
            module.eval()
        return self
