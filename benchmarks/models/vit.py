"""A tiny Vision Transformer for split-MNIST that exposes attention maps and hidden states.

Patches are tokens: a 28x28 image cut into 7x7 patches gives 16 tokens of 49 pixels, embedded to
``dim`` with learned positions (plus a CLS token when ``pool = "cls"``). Pre-norm blocks with
attention written out explicitly, so each block can return its probabilities (B, H, L, L).
Implements benchmarks/models/transformer_api.py. The module caches no tensors between calls
(LwF and the attention plugin deep-copy it after each experience).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from benchmarks.core import ScenarioInfo
from benchmarks.core.typed import check
from benchmarks.models.base import MODELS
from benchmarks.models.heads import HeadedModel, is_single_head, make_head
from benchmarks.models.transformer_api import TransformerOutput, TransformerShape


@dataclass(frozen=True)
class ViTParams:
    """Tiny ViT options (defaults sized to train a split-MNIST experience in seconds on 2 CPU cores).

    Args:
        patch: patch side in pixels; must divide the image height and width (7 -> 16 tokens on MNIST).
        dim: token width D.
        depth: number of Transformer blocks.
        heads: attention heads H (must divide dim).
        mlp_ratio: hidden width of each block's MLP, in multiples of dim.
        pool: "mean" (masked mean over tokens) or "cls" (a learned CLS token, L = patches + 1).
        dropout: dropout on attention probabilities and MLP outputs (0 = none, deterministic maps).
    """

    patch: int = 7
    dim: int = 64
    depth: int = 2
    heads: int = 4
    mlp_ratio: float = 2.0
    pool: Literal["mean", "cls"] = "mean"
    dropout: float = 0.0

    def __post_init__(self) -> None:
        check(self.patch > 0 and self.dim > 0 and self.depth > 0 and self.heads > 0, "sizes must be positive")
        check(self.dim % self.heads == 0, "heads must divide dim")
        check(self.mlp_ratio > 0, "mlp_ratio must be > 0")
        check(0 <= self.dropout < 1, "dropout must be in [0, 1)")

    def shape(self) -> TransformerShape:
        """Blocks and heads of the model these params build."""
        return TransformerShape(blocks=self.depth, heads=self.heads, depth_key="depth")


class Attention(nn.Module):
    """Multi-head self-attention that can return its probabilities."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, L, D), mask (B, L) bool -> output (B, L, D), probabilities (B, H, L, L)."""
        B, L, D = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)  # 3 x (B, H, L, Dh)
        scores = (q @ k.transpose(-2, -1)) * self.scale  # (B, H, L, L)
        if not bool(mask.all()):  # images have no padding: skip the fill (measurable on CPU)
            scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))  # padded keys get 0
        probs = scores.softmax(dim=-1)
        out = (self.drop(probs) @ v).transpose(1, 2).reshape(B, L, D)
        return self.proj(out), probs


class Block(nn.Module):
    """Pre-norm Transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        hidden = max(1, int(dim * mlp_ratio))
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dropout)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, probs = self.attn(self.ln1(x), mask)
        x = x + a
        return x + self.mlp(self.ln2(x)), probs


class ViT(HeadedModel):
    """Patch embedding -> blocks -> LayerNorm -> pooling -> head (single or one per task)."""

    is_transformer = True

    def __init__(self, input_shape: tuple[int, ...], params: ViTParams, info: ScenarioInfo) -> None:
        super().__init__()
        c, h, w = input_shape
        check(h % params.patch == 0 and w % params.patch == 0, f"patch {params.patch} must divide {h}x{w}")
        self.patch, self.pool = params.patch, params.pool
        n_tokens = (h // params.patch) * (w // params.patch) + (params.pool == "cls")
        self.embed = nn.Linear(c * params.patch**2, params.dim)
        self.pos = nn.Parameter(torch.randn(1, n_tokens, params.dim) * 0.02)
        self.cls = nn.Parameter(torch.zeros(1, 1, params.dim)) if params.pool == "cls" else None
        self.blocks = nn.ModuleList(
            Block(params.dim, params.heads, params.mlp_ratio, params.dropout) for _ in range(params.depth)
        )
        self.norm = nn.LayerNorm(params.dim)
        self.head = make_head(params.dim, info)
        self.frozen_below: int | None = None  # an int, not a tensor: safe to deep-copy

    @property
    def n_layers(self) -> int:
        return len(self.blocks)

    def embed_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) -> token embeddings (B, L, D), the hidden state of layer 0."""
        p = self.patch
        patches = nn.functional.unfold(x, kernel_size=p, stride=p).transpose(1, 2)  # (B, N, C*p*p)
        tokens = self.embed(patches)
        if self.cls is not None:
            tokens = torch.cat([self.cls.expand(len(x), -1, -1), tokens], dim=1)
        return tokens + self.pos

    def _run_blocks(self, h, mask, start: int, stop: int, output_attentions: bool) -> TransformerOutput:
        out = TransformerOutput(hidden=h, mask=mask)
        for i in range(start, stop):
            h, probs = self.blocks[i](h, mask)
            if output_attentions:
                out.attentions.append(probs)
                out.layers.append(i)
        out.hidden = h
        return out

    def encode(self, x: torch.Tensor, *, upto: int | None = None, output_attentions: bool = False) -> TransformerOutput:
        """Embed and run blocks 0..upto-1 (all when None); hidden (B, L, D) is the input of block ``upto``."""
        upto = self.n_layers if upto is None else upto
        check(0 <= upto <= self.n_layers, f"upto must be in [0, {self.n_layers}], got {upto}")
        h = self.embed_tokens(x)
        mask = torch.ones(h.shape[:2], dtype=torch.bool, device=h.device)  # images have no padding
        return self._run_blocks(h, mask, 0, upto, output_attentions)

    def pool_tokens(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Final LayerNorm then CLS token or masked mean: (B, L, D) -> (B, D)."""
        h = self.norm(hidden)
        if self.pool == "cls":
            return h[:, 0]
        m = mask.unsqueeze(-1).to(h.dtype)  # (B, L, 1)
        return (h * m).sum(1) / m.sum(1).clamp_min(1.0)

    def apply_head(self, feats: torch.Tensor, task_labels: torch.Tensor | None = None) -> torch.Tensor:
        """Head on pooled features (B, D) -> logits; task labels (B,) route a multi-head."""
        if is_single_head(self.head):
            return self.head(feats)
        if task_labels is None:
            raise ValueError("a multi-head (task-IL) ViT needs task_labels")
        return self.head(feats, task_labels)

    def decode(self, hidden, mask, *, start: int, task_labels=None, output_attentions: bool = False, pool_mask=None):
        """Run blocks start..n_layers-1 on hidden (B, L, D) of layer ``start``, pool, head -> (logits, output);
        ``pool_mask`` (B, L) bool: the positions mean-pooled (default ``mask``; ignored with ``pool = "cls"``)."""
        check(0 <= start <= self.n_layers, f"start must be in [0, {self.n_layers}], got {start}")
        out = self._run_blocks(hidden, mask, start, self.n_layers, output_attentions)
        pooled = self.pool_tokens(out.hidden, out.mask if pool_mask is None else pool_mask)
        return self.apply_head(pooled, task_labels), out

    def features(self, x: torch.Tensor) -> torch.Tensor:
        out = self.encode(x)
        return self.pool_tokens(out.hidden, out.mask)  # (B, D)

    def freeze_below(self, k: int) -> None:
        """requires_grad=False for the patch embedding, positions, CLS token and blocks < k; the frozen
        modules also stay in eval mode while the model trains (as text_backbone.py does), so the
        hidden state of layer k is a fixed function of the input."""
        check(0 <= k <= self.n_layers, f"k must be in [0, {self.n_layers}], got {k}")
        for p in [self.pos, *([self.cls] if self.cls is not None else [])]:
            p.requires_grad_(False)
        for module in [self.embed, *self.blocks[:k]]:
            module.requires_grad_(False)
        self.frozen_below = k
        self.train(self.training)

    def train(self, mode: bool = True):
        """Set train/eval mode; frozen modules always stay in eval mode."""
        super().train(mode)
        if self.frozen_below is not None:
            for module in [self.embed, *self.blocks[: self.frozen_below]]:
                module.eval()
        return self


@MODELS.register("vit", params=ViTParams, modality="image", transformer=True)
def build_vit(params: ViTParams, info: ScenarioInfo) -> nn.Module:
    """Tiny ViT on (C, H, W) images: patch tokens, explicit attention, single or multi-head."""
    check(len(info.input_shape) == 3, f"vit needs image inputs (C, H, W), got shape {info.input_shape}")
    return ViT(tuple(info.input_shape), params, info)
