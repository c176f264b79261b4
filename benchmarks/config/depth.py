"""Strategy keys that index a Transformer's blocks or heads, checked against the model's actual size.

A Transformer model's params give its size before it is built (``params.shape()``, a
benchmarks.models.transformer_api.TransformerShape), so ``check`` can reject an out-of-range
``split_layer`` (feature_replay), ``attn_layers`` / ``attn_heads`` (attn_reg) instead of the run
failing when it starts. The model's own depth keys (``frozen_layers``) are checked by its params.
"""

from __future__ import annotations

from typing import Any


def _size(model: str, shape) -> str:
    set_by = f" set by {shape.depth_key} = {shape.blocks}" if shape.depth_key else ""
    return f"model {model!r} ({shape.blocks} blocks 0..{shape.blocks - 1}{set_by}; {shape.heads} heads each)"


def _split(params: Any, blocks: int) -> int | None:
    """The split layer k that feature replay will use, or None when the strategy has none."""
    layer = getattr(params, "split_layer", None)
    if layer is None:
        return None
    if getattr(params, "store", "tokens") == "pooled":
        return blocks
    return layer if layer >= 0 else blocks + layer


def _indices(params: Any, key: str, limit: int, size: str) -> list[str]:
    values = tuple(getattr(params, key, ()))
    problems = []
    beyond = sorted({i for i in values if i >= limit})
    if beyond:
        problems.append(f"{key} = {list(values)}: {beyond} beyond {size}; use 0..{limit - 1}")
    twice = sorted({i for i in values if values.count(i) > 1})
    if twice:
        problems.append(f"{key} lists {twice} more than once; list each once")
    return problems


def depth_problems(model: str, model_params: Any, strategy_params: Any) -> list[str]:
    """Problems of a strategy's block/head indices for this model (empty when they fit or do not apply).

    Args:
        model: registered model name (for messages).
        model_params: its params; models without ``shape()`` (not Transformers) are skipped.
        strategy_params: the strategy's params (keys split_layer, store, attn_layers, attn_heads).
    """
    if not hasattr(model_params, "shape"):
        return []
    shape = model_params.shape()
    size, n = _size(model, shape), shape.blocks
    problems = _indices(strategy_params, "attn_layers", n, size)
    problems += _indices(strategy_params, "attn_heads", shape.heads, size)
    k = _split(strategy_params, n)
    if k is not None and not 0 <= k <= n:
        problems.append(f"split_layer = {strategy_params.split_layer} is outside -{n}..{n} for {size}; "
                        f"use e.g. split_layer = -1 (block {n - 1}, the last)")
    elif k == n and hasattr(strategy_params, "attn_layers") and not strategy_params.attn_layers:
        problems.append(f"split layer {n} (store = {strategy_params.store!r}) freezes every block of {size}: "
                        "no attention left to regularise; set a lower split_layer, attn_layers, or use feature_replay")
    return problems
