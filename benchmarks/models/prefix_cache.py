"""Frozen-prefix cache: hidden states of layer k computed once per distinct input and process.

When a text backbone (text_backbone.py) has ``freeze_below(k)`` with 0 <= k < n_layers, its embedding
and blocks < k are frozen *and* kept in eval mode, so the layer-k hidden states are a deterministic
function of the input. ``FrozenPrefixCache.forward(model, x, task_labels)`` then runs only blocks
k..n_layers-1, pooling and the head on stored states: an epoch costs the trainable layers only.
MiniLM (minilm.py) owns one and uses it in its own ``features``/``forward`` (``cache_prefix``).
(feature_memo.py covers the other case, k = n_layers: pooled features.)

Process-wide: the states live in a module-level registry of stores keyed by (k, fingerprint of the
frozen part, storage dtype), not in the FrozenPrefixCache object, so the next run of a worker process
(a new model with the same pretrained weights and k) finds the states the previous runs computed:
only the first run of a process pays the fill (``cache_fill_s``). Other weights or another k get
another store, never these entries. A change of the frozen weights is noticed cheaply (each frozen
parameter's storage and in-place version counter, e.g. bumped by ``load_state_dict`` or an in-place
edit); only then is the content fingerprint recomputed, and the cache moves to that fingerprint's store.

Exactness: each input's prefix is computed alone (a batch of one, trimmed to its real tokens), so a
stored state is a function of the input and the weights only, never of the batch it first came in
(batched matmuls round differently with the batch's size and padded length). A run's results
therefore do not depend on which runs filled the store before it (tests/test_prefix_cache.py).
Each entry keeps only the real tokens, (n_i, D) with n_i = mask.sum(); padding is restored with
zeros, which is exact: padded keys get zero attention weight (additive mask) and padded positions
are excluded from pooling. Memory: n_i x D floats per distinct input (CLINC150, MiniLM: ~10.5 x 384
x 4 B = 16 KB; 15,000 inputs ~240 MB), half that with ``dtype=torch.float16`` (then not bit-exact:
states rounded to fp16).

``max_bytes`` (MiniLM: ``prefix_cache_mb``, default 1024 MiB) bounds the states of *all* stores of the
process: a cache that needs room first drops the other stores, least recently used first; once its
own store fills the bound, inputs not yet stored are computed every time (the prefix, under no_grad)
instead of being stored, so a cyclic epoch keeps hitting what is stored (an LRU would thrash).
The time spent computing stored entries is charged to ``feature_memo.fill_seconds()`` (the run's
``cache_fill_s``), not to training.

Copies share the cache: ``copy.deepcopy`` of a model (LwF's previous model, snapshots) keeps the same
FrozenPrefixCache object (statistics included); pickling (``torch.save``) drops the link to the
stores, so checkpoints hold no entries.

On disk (CPU): the processes of a machine share their states through shard files under
``<cache>/prefix_states/<key>/`` (``$CLBENCH_CACHE``; ``CLBENCH_PREFIX_DISK=0`` turns this off). The
runner calls ``flush()`` after each run: the states the run computed go to a new shard (written to a
temporary name, then renamed). Before computing a state, a cache reads the shards it has not read
yet. A suite's worker processes then compute each distinct input once between them, not once each
(the default suite: 3 seeds' CLINC150 subsets, 2 workers). The folder key holds the frozen part's
fingerprint, k, the storage dtype, the torch version, the CPU's kernel set and the thread count,
so a shard is only ever read where it would have been computed bit for bit the same. An unreadable
shard (truncated, corrupted) is removed with a warning and its states are computed again.
"""

from __future__ import annotations

import itertools
import os
import re
import weakref
from collections import OrderedDict
from pathlib import Path

import torch

from benchmarks.models.feature_memo import add_fill_seconds, fill_clock, fingerprint
from benchmarks.models.text_backbone import split_input, trim_padding

StoreKey = tuple[int, str, torch.dtype]  # (k, fingerprint of the frozen part, storage dtype)


class _Store:
    """Layer-k states of one frozen prefix: input row bytes -> (n_i, D), and their size in bytes;
    the shards read from disk and the entries computed here since the last ``flush()``."""

    def __init__(self) -> None:
        self.entries: dict[bytes, torch.Tensor] = {}
        self.nbytes = 0
        self.shards_read: set[str] = set()
        self.unsaved: dict[bytes, torch.Tensor] = {}

    def add(self, row: bytes, state: torch.Tensor) -> None:
        self.entries[row] = state
        self.nbytes += state.numel() * state.element_size()


_STORES: OrderedDict[StoreKey, _Store] = OrderedDict()  # least recently used first


def stored_bytes() -> int:
    """Bytes of layer-k states held by this process (all stores)."""
    return sum(s.nbytes for s in _STORES.values())


def clear_stores() -> None:
    """Drop every stored state of the process (tests; a FrozenPrefixCache then refills)."""
    _STORES.clear()


def _store(key: StoreKey) -> _Store:
    """The store of ``key`` (created empty if absent), marked most recently used."""
    store = _STORES.pop(key, None)
    _STORES[key] = store = store if store is not None else _Store()
    return store


_SHARD_NAMES = itertools.count()


def _disk_folder(key: StoreKey) -> Path | None:
    """Shard folder of ``key`` in this process's setting (None: sharing off)."""
    if os.environ.get("CLBENCH_PREFIX_DISK", "1") == "0":
        return None
    from benchmarks.data.cache import cache_dir

    k, fp, dtype = key
    cpu = torch.backends.cpu.get_cpu_capability()
    tag = f"{fp}-k{k}-{str(dtype).removeprefix('torch.')}-torch{torch.__version__}-{cpu}-t{torch.get_num_threads()}"
    return cache_dir() / "prefix_states" / re.sub(r"[^A-Za-z0-9_.+-]", "_", tag)


def _read_shards(key: StoreKey, store: _Store, max_bytes: int | None) -> None:
    """Merge the shards of ``key`` this process has not read yet into ``store``."""
    from benchmarks.data.cache import load_cached

    folder = _disk_folder(key)
    if folder is None or not folder.is_dir():
        return
    for path in sorted(folder.glob("*.pt")):
        if path.name in store.shards_read:
            continue
        store.shards_read.add(path.name)
        entries = load_cached(path, "frozen-prefix states")  # None (and removed) when unreadable
        for row, state in (entries or {}).items():
            if row not in store.entries and _room(key, max_bytes):
                store.add(row, state)


def flush() -> int:
    """Write the states computed since the last flush, one new shard per frozen prefix; returns
    how many were written. Called by the runner after each run; a failed write only warns (the
    states stay in memory and are computed again by the other processes)."""
    import warnings

    from benchmarks.data.cache import save_cached

    written = 0
    for key, store in _STORES.items():
        folder = _disk_folder(key)
        if not store.unsaved or folder is None:
            store.unsaved = {}
            continue
        name = f"{os.getpid()}-{next(_SHARD_NAMES)}-{len(store.unsaved)}.pt"
        try:
            save_cached(store.unsaved, folder / name)
        except OSError as exc:
            warnings.warn(f"could not write frozen-prefix states to {folder} ({exc}); they are kept in memory only",
                          stacklevel=2)
        else:
            store.shards_read.add(name)
            written += len(store.unsaved)
        store.unsaved = {}
    return written


def _room(key: StoreKey, max_bytes: int | None) -> bool:
    """True when one more entry may go to ``key``'s store; drops other stores (LRU first) if need be."""
    if max_bytes is None:
        return True
    while stored_bytes() >= max_bytes:
        victim = next((k for k in _STORES if k != key), None)
        if victim is None:
            return False
        del _STORES[victim]
    return True


class FrozenPrefixCache:
    """A model's view of the process-wide layer-k states of its frozen prefix (see the module docstring).

    Args:
        dtype: storage precision of the states (float16 halves the memory; computation stays float32).
        max_bytes: bound on the process's stored states, all stores together (None = unbounded);
            inputs beyond it are recomputed.
    """

    def __init__(self, dtype: torch.dtype = torch.float32, max_bytes: int | None = None) -> None:
        self.dtype = dtype
        self.max_bytes = max_bytes
        self.key: tuple[int, str] | None = None  # (k, fingerprint) last used
        self.misses = 0  # inputs whose prefix this cache (and its copies) had to compute
        self._stamps: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> (stamp, key)

    # -- copies and pickles ----------------------------------------------------------------------
    def __deepcopy__(self, memo) -> FrozenPrefixCache:
        return self  # shared by a model and its copies (entries are keyed by the frozen prefix)

    def __getstate__(self) -> dict:
        return {"dtype": self.dtype, "max_bytes": self.max_bytes}  # no entries in checkpoints

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    # -- bookkeeping -----------------------------------------------------------------------------
    def _store_key(self) -> StoreKey | None:
        return None if self.key is None else (*self.key, self.dtype)

    @property
    def store(self) -> dict[bytes, torch.Tensor]:
        """The entries of the current frozen prefix (empty before first use)."""
        key = self._store_key()
        return _STORES[key].entries if key in _STORES else {}

    @property
    def nbytes(self) -> int:
        """Bytes of the current frozen prefix's stored states."""
        key = self._store_key()
        return _STORES[key].nbytes if key in _STORES else 0

    def clear(self) -> None:
        """Drop the current frozen prefix's entries, for every model of the process (statistics are kept)."""
        _STORES.pop(self._store_key(), None)

    def _check_key(self, model) -> int:
        k = model.frozen_below
        if k is None or not 0 <= k < model.n_layers:
            raise ValueError(f"FrozenPrefixCache needs freeze_below(k) with 0 <= k < {model.n_layers}, got {k}")
        frozen = [(n, p) for m in model.frozen_modules() for n, p in m.named_parameters()]
        stamp = (k, tuple((p.data_ptr(), p._version, p.dtype) for _, p in frozen))  # cheap: no data read
        seen = self._stamps.get(model)
        if seen is not None and seen[0] == stamp:
            self.key = seen[1]
            return k
        self.key = (k, fingerprint(frozen))  # weights may have changed (or a new model): hash their content
        self._stamps[model] = (stamp, self.key)
        return k

    # -- use ---------------------------------------------------------------------------------------
    def _fill(self, model, x: torch.Tensor, rows: dict[bytes, int], k: int) -> dict[bytes, torch.Tensor]:
        """States (n_i, D) of the rows not stored yet (row bytes -> index in x), each computed alone."""
        key = self._store_key()
        t0, stored, states = fill_clock(x.device), 0, {}
        for r, i in rows.items():
            one = trim_padding(x[i : i + 1])  # (1, 2, n_i): the input alone, no padding
            with torch.no_grad():
                state = model.encode(one, upto=k).hidden[0][split_input(one)[1][0]]  # (n_i, D) real tokens
            if _room(key, self.max_bytes):  # no room: used this time, computed again next time
                store = _store(key)
                state = state.to(self.dtype).clone()
                store.add(r, state)
                if state.device.type == "cpu":
                    store.unsaved[r] = state
                stored += 1
            states[r] = state
        self.misses += len(rows)
        # the stored rows' share is a one-off fill; rows left out (cache full) recur: training time
        add_fill_seconds((fill_clock(x.device) - t0) * stored / len(rows))
        return states

    def hidden(self, model, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer-k states (B, L', D) and mask (B, L') of inputs x (B, 2, L), trimmed like ``trim_padding``.

        Rows not seen before are computed one by one; L' is the batch's last real position + 1.
        """
        k = self._check_key(model)
        rows = [r.tobytes() for r in x.detach().reshape(len(x), -1).cpu().numpy()]  # keys: untrimmed rows
        store = _store(self._store_key())
        if x.device.type == "cpu" and any(r not in store.entries for r in rows):
            _read_shards(self._store_key(), store, self.max_bytes)  # computed by other processes
        entries = store.entries
        states = {r: entries[r] for r in rows if r in entries}  # row bytes -> (n_i, D)
        todo = {r: i for i, r in enumerate(rows) if r not in states}  # distinct new rows -> a batch index
        if todo:
            states.update(self._fill(model, x, todo, k))
        x = trim_padding(x)  # (B, 2, L'): as the model's own features() does
        mask = split_input(x)[1]
        parts = [states[r] for r in rows]
        out = torch.zeros(len(x), x.size(-1), parts[0].shape[-1], device=x.device)  # (B, L', D), zeros at padding
        out[mask] = torch.cat(parts).to(device=out.device, dtype=out.dtype)  # row-major, as mask selects
        return out, mask

    def forward(self, model, x: torch.Tensor, task_labels: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of ``model`` on x from cached layer-k states (blocks >= k run with gradients)."""
        hidden, mask = self.hidden(model, x)
        logits, _ = model.decode(hidden, mask, start=model.frozen_below, task_labels=task_labels)
        return logits
