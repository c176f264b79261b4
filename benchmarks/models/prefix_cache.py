"""Frozen-prefix cache: hidden states of layer k computed once per distinct input, reused every epoch.

When a text backbone (text_backbone.py) has ``freeze_below(k)`` with 0 <= k < n_layers, its embedding
and blocks < k are frozen *and* kept in eval mode, so the layer-k hidden states are a deterministic
function of the input. ``FrozenPrefixCache.forward(model, x, task_labels)`` then runs only blocks
k..n_layers-1, pooling and the head on stored states: an epoch costs the trainable layers only.
MiniLM (minilm.py) owns one and uses it in its own ``features``/``forward`` (``cache_prefix``).
(feature_memo.py covers the other case, k = n_layers: pooled features.)

Keys: the bytes of the input row (token ids + mask at the scenario's full length L), under the
frozen part's fingerprint and k, so another model, other weights or another k never share entries.
A change of the frozen weights is noticed cheaply (each frozen parameter's storage and in-place
version counter, e.g. bumped by ``load_state_dict`` or an in-place edit); only then is the content
fingerprint recomputed, and the store is emptied if it differs.
Computation is trimmed like the model's own ``features`` (``trim_padding``: the batch's all-padding
tail is dropped; it does not change the real tokens' states). Each entry keeps only the real
tokens, (n_i, D) with n_i = mask.sum(); padding is restored with zeros, which is exact: padded keys
get zero attention weight (additive mask) and padded positions are excluded from pooling. Memory:
n_i x D floats per distinct input (CLINC150, MiniLM: ~10.5 x 384 x 4 B = 16 KB; 15,000 inputs ~240 MB),
half that with ``dtype=torch.float16`` (then not bit-exact: states rounded to fp16). ``max_bytes``
bounds it: once full, inputs not yet stored are computed every time (the prefix, under no_grad)
instead of being stored, so a cyclic epoch keeps hitting what is stored (an LRU would thrash).
The time spent computing stored entries is charged to ``feature_memo.fill_seconds()`` (the run's
``cache_fill_s``), not to training.

Copies share the cache: ``copy.deepcopy`` of a model (LwF's previous model, snapshots) keeps the same
FrozenPrefixCache object (its entries are valid for any model with the same frozen prefix, and keyed
so that any other one empties it first); pickling (``torch.save``) drops the entries.
"""

from __future__ import annotations

import weakref

import torch

from benchmarks.models.feature_memo import add_fill_seconds, fill_clock, fingerprint
from benchmarks.models.text_backbone import split_input, trim_padding


class FrozenPrefixCache:
    """Layer-k hidden states per distinct input of one frozen prefix (see the module docstring).

    Args:
        dtype: storage precision of the states (float16 halves the memory; computation stays float32).
        max_bytes: bound on the stored states (None = unbounded); inputs beyond it are recomputed.
    """

    def __init__(self, dtype: torch.dtype = torch.float32, max_bytes: int | None = None) -> None:
        self.dtype = dtype
        self.max_bytes = max_bytes
        self.store: dict[bytes, torch.Tensor] = {}
        self.key: tuple[int, str] | None = None
        self.nbytes = 0  # bytes of the stored states
        self.misses = 0  # inputs whose prefix had to be computed
        self._stamps: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> (stamp, key)

    # -- copies and pickles ----------------------------------------------------------------------
    def __deepcopy__(self, memo) -> FrozenPrefixCache:
        return self  # shared by a model and its copies (entries are keyed by the frozen prefix)

    def __getstate__(self) -> dict:
        return {"dtype": self.dtype, "max_bytes": self.max_bytes}  # no entries in checkpoints

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    # -- bookkeeping -----------------------------------------------------------------------------
    def clear(self) -> None:
        """Drop every entry (statistics are kept)."""
        self.store.clear()
        self.nbytes = 0
        self.key = None
        self._stamps = weakref.WeakKeyDictionary()

    @property
    def full(self) -> bool:
        return self.max_bytes is not None and self.nbytes >= self.max_bytes

    def _check_key(self, model) -> int:
        k = model.frozen_below
        if k is None or not 0 <= k < model.n_layers:
            raise ValueError(f"FrozenPrefixCache needs freeze_below(k) with 0 <= k < {model.n_layers}, got {k}")
        frozen = [(n, p) for m in model.frozen_modules() for n, p in m.named_parameters()]
        stamp = (k, tuple((p.data_ptr(), p._version, p.dtype) for _, p in frozen))  # cheap: no data read
        seen = self._stamps.get(model)
        if seen is not None and seen[0] == stamp and seen[1] == self.key:
            return k
        key = (k, fingerprint(frozen))  # weights may have changed (or a new model): hash their content
        if key != self.key:
            self.clear()
            self.key = key
        self._stamps[model] = (stamp, key)
        return k

    # -- use ---------------------------------------------------------------------------------------
    def hidden(self, model, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer-k states (B, L', D) and mask (B, L') of inputs x (B, 2, L), trimmed like ``trim_padding``.

        Rows not seen before are computed in one batch; L' is the batch's last real position + 1.
        """
        k = self._check_key(model)
        rows = [r.tobytes() for r in x.detach().reshape(len(x), -1).cpu().numpy()]  # keys: untrimmed rows
        x = trim_padding(x)  # (B, 2, L'): as the model's own features() does
        _, mask = split_input(x)
        states = {r: self.store[r] for r in rows if r in self.store}  # row bytes -> (n_i, D)
        todo = {r: i for i, r in enumerate(rows) if r not in states}  # distinct new rows -> a batch index
        if todo:
            t0, stored = fill_clock(x.device), 0
            sub = trim_padding(x[list(todo.values())])
            with torch.no_grad():
                h = model.encode(sub, upto=k).hidden  # (b, L'', D)
            sub_mask = split_input(sub)[1]
            for j, r in enumerate(todo):
                state = h[j][sub_mask[j]]  # (n_i, D) real tokens only
                if not self.full:  # no room: used this time, computed again next time
                    state = state.to(self.dtype).clone()
                    self.store[r] = state
                    self.nbytes += state.numel() * state.element_size()
                    stored += 1
                states[r] = state
            self.misses += len(todo)
            # the stored rows' share is a one-off fill; rows left out (cache full) recur: training time
            add_fill_seconds((fill_clock(x.device) - t0) * stored / len(todo))
        parts = [states[r] for r in rows]
        out = torch.zeros(len(x), x.size(-1), parts[0].shape[-1], device=x.device)  # (B, L', D), zeros at padding
        out[mask] = torch.cat(parts).to(device=out.device, dtype=out.dtype)  # row-major, as mask selects
        return out, mask

    def forward(self, model, x: torch.Tensor, task_labels: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of ``model`` on x from cached layer-k states (blocks >= k run with gradients)."""
        hidden, mask = self.hidden(model, x)
        logits, _ = model.decode(hidden, mask, start=model.frozen_below, task_labels=task_labels)
        return logits
