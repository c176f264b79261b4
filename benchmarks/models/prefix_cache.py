"""Frozen-prefix cache: hidden states of layer k computed once per distinct input, reused every epoch.

When a text backbone (text_backbone.py) has ``freeze_below(k)`` with 0 <= k < n_layers, its embedding
and blocks < k are frozen *and* kept in eval mode, so the layer-k hidden states are a deterministic
function of the input. ``FrozenPrefixCache.forward(model, x, task_labels)`` then runs only blocks
k..n_layers-1, pooling and the head on stored states: an epoch costs the trainable layers only.
(feature_memo.py covers the other case, k = n_layers: pooled features.)

Keys: the bytes of the input row (token ids + mask at the scenario's full length L), under the
frozen part's fingerprint and k, so another model, other weights or another k never share entries.
Computation is trimmed like the model's own ``features`` (``trim_padding``: the batch's all-padding
tail is dropped; it does not change the real tokens' states). Each entry keeps only the real
tokens, (n_i, D) with n_i = mask.sum(); padding is restored with zeros, which is exact: padded keys
get zero attention weight (additive mask) and padded positions are excluded from pooling. Memory:
n_i x D floats per distinct input (CLINC150, MiniLM: ~10.5 x 384 x 4 B = 16 KB; 15,000 inputs ~240 MB).
"""

from __future__ import annotations

import torch

from benchmarks.models.feature_memo import fingerprint
from benchmarks.models.text_backbone import split_input, trim_padding


class FrozenPrefixCache:
    """Layer-k hidden states per distinct input of one frozen prefix (see the module docstring).

    Args:
        dtype: storage precision of the states (float16 halves the memory; computation stays float32).
    """

    def __init__(self, dtype: torch.dtype = torch.float32) -> None:
        self.dtype = dtype
        self.store: dict[bytes, torch.Tensor] = {}
        self.key: tuple[int, str] | None = None
        self.misses = 0  # inputs whose prefix had to be computed

    def _check_key(self, model) -> int:
        k = model.frozen_below
        if k is None or not 0 <= k < model.n_layers:
            raise ValueError(f"FrozenPrefixCache needs freeze_below(k) with 0 <= k < {model.n_layers}, got {k}")
        if self.key is None or self.key[0] != k:
            frozen = [(n, p) for m in model.frozen_modules() for n, p in m.named_parameters()]
            key = (k, fingerprint(frozen))
            if key != self.key:
                self.store.clear()
            self.key = key
        return k

    def hidden(self, model, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer-k states (B, L', D) and mask (B, L') of inputs x (B, 2, L), trimmed like ``trim_padding``.

        Rows not seen before are computed in one batch; L' is the batch's last real position + 1.
        """
        k = self._check_key(model)
        rows = [r.tobytes() for r in x.detach().reshape(len(x), -1).cpu().numpy()]  # keys: untrimmed rows
        x = trim_padding(x)  # (B, 2, L'): as the model's own features() does
        _, mask = split_input(x)
        missing = [i for i, r in enumerate(rows) if r not in self.store]
        if missing:
            sub = trim_padding(x[missing])
            with torch.no_grad():
                h = model.encode(sub, upto=k).hidden  # (b, L'', D)
            sub_mask = split_input(sub)[1]
            for j, i in enumerate(missing):
                self.store[rows[i]] = h[j][sub_mask[j]].to(self.dtype).clone()  # (n_i, D) real tokens only
            self.misses += len(missing)
        width = self.store[rows[0]].shape[-1]  # D
        out = torch.zeros(len(x), x.size(-1), width, device=x.device)  # (B, L', D), zeros at padding
        for i, r in enumerate(rows):
            out[i, mask[i]] = self.store[r].to(out.dtype)
        return out, mask

    def forward(self, model, x: torch.Tensor, task_labels: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of ``model`` on x from cached layer-k states (blocks >= k run with gradients)."""
        hidden, mask = self.hidden(model, x)
        logits, _ = model.decode(hidden, mask, start=model.frozen_below, task_labels=task_labels)
        return logits

