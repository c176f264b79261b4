"""The interface every Transformer backbone of clbench implements (ViT, text encoders, MiniLM).

clbench's own plugins (attention regularisation, Transformer feature replay) rely only on this:

    model.is_transformer = True
    model.n_layers -> int                               number of Transformer blocks
    model.encode(x, *, upto=None, output_attentions=False) -> TransformerOutput
        runs the input embedding and blocks 0..upto-1 (all blocks when upto is None);
    model.decode(hidden, mask, *, start, task_labels=None, output_attentions=False, pool_mask=None)
            -> (logits, TransformerOutput)
        runs blocks start..n_layers-1 on hidden states of layer ``start``, pools (over ``pool_mask``,
        (B, L) bool, when given: e.g. L2P's prompt positions; else over ``mask``), applies the head;
    model(x, task_labels=None) -> logits               == decode(encode(x, upto=k).hidden, ..., start=k)
    model.freeze_below(k)                               sets requires_grad=False for the embedding and blocks < k
    model.head                                          the output head (nn.Linear or MultiHeadClassifier)
    model.features(x) -> (B, D)                         pooled representation fed to the head

"Hidden state of layer k" is the input of block k (k = 0: the embeddings; k = n_layers: the output
of the last block). Inputs: images (B, C, H, W) for the ViT; for text, x is (B, 2, L) int64 holding
token ids (x[:, 0]) and the attention mask (x[:, 1], 1 = real token), so that one tensor travels
through Avalanche's (x, y, t) mini-batches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import torch


class TransformerShape(NamedTuple):
    """A Transformer model's size as its params give it, known before the model is built.

    Attributes:
        blocks: number of Transformer blocks (``model.n_layers``).
        heads: attention heads per block.
        depth_key: the model param that sets ``blocks`` ("" when fixed, e.g. a pretrained model).
    """

    blocks: int
    heads: int
    depth_key: str = ""


@dataclass
class TransformerOutput:
    """Intermediate results of a Transformer pass.

    Attributes:
        hidden: (B, L, D) hidden states at the layer where the pass stopped.
        mask: (B, L) bool, True for real tokens/patches (all True for images).
        attentions: per block run, (B, H, L, L) attention probabilities (rows sum to 1 over keys);
            empty unless ``output_attentions`` was requested.
        layers: indices of the blocks the attention maps belong to.
    """

    hidden: torch.Tensor
    mask: torch.Tensor
    attentions: list[torch.Tensor] = field(default_factory=list)
    layers: list[int] = field(default_factory=list)


def is_transformer(model: torch.nn.Module) -> bool:
    """True when ``model`` implements the interface above."""
    return bool(getattr(model, "is_transformer", False))
