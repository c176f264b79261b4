"""Memo of a frozen encoder's pooled features: each distinct input is encoded once per process.

With the whole encoder frozen (and in eval mode, see text_backbone.py), ``features(x)`` depends only
on x and the frozen weights, so it can be stored. The store is keyed by a fingerprint of those
weights (so a copy of the model, e.g. LwF's previous model, or a fresh model of the next run with
the same pretrained weights shares it, and different weights never do), then by the input row's bytes.
Memory: D floats per distinct input (CLINC150 with MiniLM: 19,500 x 384 x 4 B = 30 MB).

Filling a store is a one-off cost of the process (the first run pays it, later runs hit the store):
``fill_seconds()`` counts the seconds spent computing entries that are stored, here and in
prefix_cache.py, so the runner reports them as ``cache_fill_s`` instead of as training time.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable

import torch

_STORES: dict[str, dict[bytes, torch.Tensor]] = {}
_FILL_SECONDS = [0.0]  # process-wide total of cache-fill time (see fill_seconds)


def fill_seconds() -> float:
    """Seconds this process has spent filling frozen-feature caches (memo and prefix cache) so far."""
    return _FILL_SECONDS[0]


def add_fill_seconds(seconds: float) -> None:
    """Charge ``seconds`` to cache filling (prefix_cache.py charges its stored share of a batch)."""
    _FILL_SECONDS[0] += seconds


def fill_clock(device: torch.device) -> float:
    """perf_counter() after the device's queued work is done (CUDA kernels run asynchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def fingerprint(named_params: Iterable[tuple[str, torch.Tensor]]) -> str:
    """A content hash of parameters (names, shapes, sums and absolute sums): cheap, order-sensitive."""
    h = hashlib.sha256()
    for name, p in named_params:
        d = p.detach().double()
        h.update(f"{name}{tuple(p.shape)}{d.sum().item():.12e}{d.abs().sum().item():.12e}".encode())
    return h.hexdigest()[:20]


def memo_features(
    x: torch.Tensor, key: str, compute: Callable[[torch.Tensor], torch.Tensor]
) -> tuple[torch.Tensor, int]:
    """Features of x (B, ...) from store ``key``; rows not seen before are computed in one batch.

    Args:
        x: inputs, one sample per row.
        key: fingerprint of the frozen weights the features come from.
        compute: x' (b, ...) -> features (b, D), run under no_grad for the missing rows only.

    Returns:
        features (B, D) on x's device, and the number of rows that had to be computed.
    """
    store = _STORES.setdefault(key, {})
    rows = [r.tobytes() for r in x.detach().reshape(len(x), -1).cpu().numpy()]
    missing = [i for i, r in enumerate(rows) if r not in store]
    if missing:
        t0 = fill_clock(x.device)
        with torch.no_grad():
            new = compute(x[missing]).detach().cpu()  # .cpu() waits for the device
        for i, f in zip(missing, new):
            store[rows[i]] = f.clone()
        add_fill_seconds(time.perf_counter() - t0)
    return torch.stack([store[r] for r in rows]).to(x.device), len(missing)


def clear(key: str | None = None) -> None:
    """Drop one store (or all of them)."""
    if key is None:
        _STORES.clear()
    else:
        _STORES.pop(key, None)
