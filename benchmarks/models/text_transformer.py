"""A small Transformer encoder for text, trained from scratch (fast on CPU).

Token + learned positional embeddings, ``n_layers`` pre-LayerNorm blocks with explicit multi-head
self-attention (so the attention probabilities are returned; padding keys are masked out), a final
LayerNorm and mean pooling over real tokens. Uses the all-MiniLM-L6-v2 vocabulary (30,522 tokens)
of ``benchmarks.data.tokenize``. Defaults (2 layers, d=128, 4 heads, FFN 256) keep an epoch over
CLINC150's 15,000 utterances at a few seconds on 2 CPU cores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from benchmarks.core import ScenarioInfo
from benchmarks.core.typed import check
from benchmarks.models.base import MODELS
from benchmarks.models.heads import make_head
from benchmarks.models.text_backbone import TextBackbone
from benchmarks.models.transformer_api import TransformerShape


@dataclass(frozen=True)
class TextTransformerParams:
    """Text Transformer options.

    Args:
        d_model: width D of tokens and pooled features.
        n_layers: Transformer blocks.
        n_heads: attention heads (must divide d_model).
        d_ff: hidden units of each block's feed-forward network.
        dropout: dropout on embeddings, attention probabilities and residual branches.
        vocab_size: token vocabulary (30,522 = the all-MiniLM-L6-v2 tokenizer the scenarios use).
        frozen_layers: -1 = train everything; k >= 0 = ``freeze_below(k)`` at construction.
    """

    d_model: int = 128
    n_layers: int = 2
    n_heads: int = 4
    d_ff: int = 256
    dropout: float = 0.1
    vocab_size: int = 30522
    frozen_layers: int = -1

    def __post_init__(self) -> None:
        check(self.d_model > 0 and self.n_layers > 0 and self.d_ff > 0, "d_model, n_layers and d_ff must be > 0")
        check(self.n_heads > 0 and self.d_model % self.n_heads == 0, "n_heads must divide d_model")
        check(0 <= self.dropout < 1, "dropout must be in [0, 1)")
        check(self.vocab_size > 0, "vocab_size must be > 0")
        check(-1 <= self.frozen_layers <= self.n_layers,
              f"frozen_layers = {self.frozen_layers} must be in -1..n_layers (n_layers = {self.n_layers})")

    def shape(self) -> TransformerShape:
        """Blocks and heads of the model these params build."""
        return TransformerShape(blocks=self.n_layers, heads=self.n_heads, depth_key="n_layers")


class SelfAttention(nn.Module):
    """Multi-head self-attention written out, returning its probabilities."""

    def __init__(self, d_model: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads, self.d_head = n_heads, d_model // n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h (B, L, D), mask (B, L) bool -> output (B, L, D), probabilities (B, H, L, L)."""
        B, L, D = h.shape
        q, k, v = self.qkv(h).view(B, L, 3, self.n_heads, self.d_head).permute(2, 0, 3, 1, 4)  # 3 x (B, H, L, dh)
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.d_head)  # (B, H, L, L)
        # Padding keys get the lowest finite score (not -inf: a row without real keys stays finite).
        scores = scores.masked_fill(~mask[:, None, None, :], torch.finfo(scores.dtype).min)
        probs = scores.softmax(dim=-1)
        out = (self.drop(probs) @ v).transpose(1, 2).reshape(B, L, D)
        return self.proj(out), probs


class Block(nn.Module):
    """Pre-LayerNorm Transformer block: h + attn(LN(h)), then h + FFN(LN(h))."""

    def __init__(self, p: TextTransformerParams) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(p.d_model), nn.LayerNorm(p.d_model)
        self.attn = SelfAttention(p.d_model, p.n_heads, p.dropout)
        self.ffn = nn.Sequential(nn.Linear(p.d_model, p.d_ff), nn.GELU(), nn.Linear(p.d_ff, p.d_model))
        self.drop = nn.Dropout(p.dropout)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, probs = self.attn(self.ln1(h), mask)
        h = h + self.drop(a)
        return h + self.drop(self.ffn(self.ln2(h))), probs  # (B, L, D), (B, H, L, L)


class TextTransformer(TextBackbone):
    """Embeddings -> blocks -> LayerNorm -> mean pooling -> head (single or one per task)."""

    def __init__(self, p: TextTransformerParams, info: ScenarioInfo) -> None:
        super().__init__()
        max_length = info.input_shape[-1]
        self.tok = nn.Embedding(p.vocab_size, p.d_model)
        self.pos = nn.Embedding(max_length, p.d_model)
        self.emb_drop = nn.Dropout(p.dropout)
        self.blocks = nn.ModuleList(Block(p) for _ in range(p.n_layers))
        self.ln_f = nn.LayerNorm(p.d_model)
        self.head = make_head(p.d_model, info)
        for emb in (self.tok, self.pos):
            nn.init.normal_(emb.weight, std=0.02)  # GPT-2/BERT scale; N(0, 1) swamps the residual stream
        self.compact_vocabulary(info.token_ids)
        if p.frozen_layers >= 0:
            self.freeze_below(p.frozen_layers)

    def compact_vocabulary(self, token_ids: tuple[int, ...]) -> None:
        """Keep the token embedding rows of ``token_ids`` only (none given: keep the whole table).

        The other rows are never read, so outputs, gradients and Adam's updates of the kept rows are
        those of the whole table bit for bit (the rows are sliced from the table initialised above,
        after the same random draws; gradients accumulate per row in input order either way). What
        changes is the cost: the default suite's CLINC150 subsets use 3,374 of the 30,522 ids, and the optimiser,
        EWC/SI/MAS/L2 importances and GEM's gradient vectors then skip the other 89% of the table (GEM's dot
        products then sum fewer zeros, in another order: its results change in the last bits).
        Inputs are mapped through ``tok_index`` (id -> kept row, -1 for an id not kept: an input
        holding one fails with an index error rather than reading a wrong row).
        """
        if not token_ids:
            return
        ids = torch.tensor(token_ids, dtype=torch.long)
        vocab = self.tok.num_embeddings
        if ids.min() < 0 or ids.max() >= vocab:
            raise ValueError(f"token ids outside the vocabulary of {vocab} (vocab_size): {ids.min()}..{ids.max()}")
        index = torch.full((vocab,), -1, dtype=torch.long)
        index[ids] = torch.arange(len(ids))
        self.tok = nn.Embedding(len(ids), self.tok.embedding_dim, _weight=self.tok.weight.detach()[ids].clone())
        self.register_buffer("tok_index", index, persistent=False)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.size(1), device=ids.device)
        if hasattr(self, "tok_index"):
            ids = self.tok_index[ids]
        return self.emb_drop(self.tok(ids) + self.pos(positions))  # (B, L, D)

    def embedding_modules(self) -> list[nn.Module]:
        return [self.tok, self.pos, self.emb_drop]

    def run_block(self, i: int, hidden: torch.Tensor, mask: torch.Tensor, output_attentions: bool):
        return self.blocks[i](hidden, mask)

    def final(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.ln_f(hidden)


@MODELS.register("text_transformer", params=TextTransformerParams, modality="text", transformer=True)
def build_text_transformer(params: TextTransformerParams, info: ScenarioInfo) -> nn.Module:
    """Small Transformer encoder for text, trained from scratch."""
    if info.modality != "text":
        raise ValueError(f"text_transformer needs a text scenario, not {info.modality!r} ({info.name})")
    return TextTransformer(params, info)
