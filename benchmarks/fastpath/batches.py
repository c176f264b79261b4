"""Tensors of a dataset and mini-batches as index slices: the data half of the fast path.

``materialize`` reads a dataset once into tensors (x, y, t[, extra]) on the run's device (cached per
dataset and device); ``TensorBatches``/``GroupBatches`` serve shuffled or task-balanced index slices
with Avalanche's loader semantics; ``TensorItems`` hands tensors to Avalanche code that wants a dataset.
See fastpath/template.py for how templates use them.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence

import torch

from benchmarks.fastpath.gather import NotMaterializable, Rows, agrees, gather_items

#: (id(owner), tag, device, lazy) -> (weakref to owner, fields)
_CACHE: dict[tuple[int, str, str, bool], tuple[weakref.ref, tuple[torch.Tensor | Rows, ...]]] = {}


def _drop(key: tuple, ref: weakref.ref) -> None:
    entry = _CACHE.get(key)
    if entry is not None and entry[0] is ref:
        del _CACHE[key]


def purge_cache() -> int:
    """Remove entries whose owner is gone (normally done by weakref callbacks); returns how many."""
    dead = [k for k, (ref, _) in _CACHE.items() if ref() is None]
    for k in dead:
        del _CACHE[k]
    return len(dead)


def cache_size() -> int:
    """Number of live cache entries (for tests and memory checks)."""
    purge_cache()
    return len(_CACHE)


def materialize(
    dataset, device: torch.device, owner=None, tag: str = "", cache: bool = True, lazy: bool = False
) -> tuple[torch.Tensor | Rows, ...]:
    """All items of ``dataset`` as stacked tensors on ``device`` (x, y, t[, extra fields]).

    Args:
        dataset: the (adapted) dataset to read once.
        device: where the tensors live.
        owner: object the cache entry is tied to (default ``dataset``); evaluation passes the
            experience's dataset, which outlives the fresh ``.eval()`` view made at every evaluation.
            The entry is dropped when the owner is garbage-collected; when ``owner`` is not
            ``dataset``, a hit is checked against ``dataset`` (length and probe items) first.
        tag: distinguishes views of one owner (e.g. "eval" vs "train" transform groups).
        cache: keep the tensors for the owner's lifetime (False for one-off passes over big data).
        lazy: on CPU, fields read straight from the scenario's tensors come back as ``Rows`` (indexed
            like a tensor, gathered per mini-batch: no per-experience copy). Ignored on other devices,
            where the rows are copied once to the device instead.

    Raises:
        NotMaterializable: the items change between reads (random augmentation) or the dataset is empty.
    """
    device = torch.device(device)
    lazy = lazy and device.type == "cpu"
    owner = dataset if owner is None else owner
    key = (id(owner), tag, str(device), lazy)
    hit = _CACHE.get(key)
    if hit is not None and hit[0]() is owner and (owner is dataset or agrees(hit[1], dataset)):
        return hit[1]
    tensors = tuple(t if isinstance(t, Rows) else t.to(device) for t in gather_items(dataset, lazy=lazy))
    if not cache:
        return tensors
    try:
        ref = weakref.ref(owner, lambda r, key=key: _drop(key, r))
    except TypeError:  # not weak-referenceable: do not cache
        return tensors
    _CACHE[key] = (ref, tensors)
    return tensors


def _passes(idx: torch.Tensor, batch_size: int, shuffle: bool, drop_last: bool = False) -> Iterator[torch.Tensor]:
    """One pass over ``idx`` in chunks of ``batch_size`` (a fresh permutation when shuffling)."""
    n = len(idx)
    if shuffle:
        # torch.randperm draws from the global CPU generator, which the runner seeds: deterministic.
        idx = idx[torch.randperm(n).to(idx.device)]
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        yield idx[start : start + batch_size]


def endless(idx: torch.Tensor, batch_size: int, shuffle: bool, drop_last: bool = False) -> Iterator[torch.Tensor]:
    """Chunks of ``idx`` forever: a new pass (new permutation) whenever one ends, like ``cycle(loader)``."""
    if len(idx) == 0 or (drop_last and len(idx) < batch_size):
        raise ValueError(
            f"cannot cycle {len(idx)} samples in batches of {batch_size} (drop_last={drop_last}): no batch "
            "would ever come (Avalanche's cycle(DataLoader) loops forever here); enlarge the memory"
        )
    while True:
        yield from _passes(idx, batch_size, shuffle, drop_last)


class TensorBatches:
    """Mini-batches ``[x, y, t, ...]`` sliced from tensors; reshuffled at every iteration.

    A list (not a tuple) because Avalanche templates and DER assign into ``strategy.mbatch[i]``.
    """

    fast_path = "tensor"

    def __init__(self, tensors: Sequence[torch.Tensor], batch_size: int, shuffle: bool) -> None:
        self.tensors = tuple(tensors)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.dataset = self.tensors  # some plugins read loader.dataset; len() works on it

    def __len__(self) -> int:
        return (len(self.tensors[0]) + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[list[torch.Tensor]]:
        n = len(self.tensors[0])
        if not self.shuffle:  # evaluation: views, no copy
            for start in range(0, n, self.batch_size):
                yield [t[start : start + self.batch_size] for t in self.tensors]
            return
        for idx in _passes(torch.arange(n, device=self.tensors[0].device), self.batch_size, True):
            yield [t[idx] for t in self.tensors]


class GroupBatches:
    """Mini-batches made of one chunk per index group, concatenated in group order.

    Mirrors Avalanche's MultiDatasetDataLoader/MultiDatasetSampler: the epoch ends when the
    ``termination`` group is exhausted; other groups restart a new pass when exhausted
    (``oversample``) or drop out; no drop_last.

    Args:
        tensors: fields (x, y, t, ...) holding every group's samples.
        groups: 1-D index tensors into ``tensors``, one per group (task, or current data / buffer).
        batch_sizes: samples each group contributes to a mini-batch.
        termination: index of the group that defines the epoch length (-1: the longest).
        oversample: restart exhausted non-terminating groups.
        shuffle: shuffle every pass of every group.
    """

    fast_path = "tensor"

    def __init__(
        self, tensors: Sequence[torch.Tensor], groups: Sequence[torch.Tensor], batch_sizes: Sequence[int],
        *, termination: int = -1, oversample: bool = True, shuffle: bool = True,
    ) -> None:
        self.tensors = tuple(tensors)
        self.groups = [g for g in groups]
        self.batch_sizes = list(batch_sizes)
        lengths = [(len(g) + b - 1) // b for g, b in zip(self.groups, self.batch_sizes)]
        self.termination = max(range(len(lengths)), key=lengths.__getitem__) if termination < 0 else termination
        self.n_batches = lengths[self.termination]
        self.oversample = oversample
        self.shuffle = shuffle
        self.dataset = self.tensors

    def __len__(self) -> int:
        return self.n_batches

    def __iter__(self) -> Iterator[list[torch.Tensor]]:
        its: list[Iterator[torch.Tensor] | None] = [
            _passes(g, b, self.shuffle) if len(g) else None for g, b in zip(self.groups, self.batch_sizes)
        ]
        for _ in range(self.n_batches):
            parts = []
            for k, it in enumerate(its):
                chunk = next(it, None) if it is not None else None
                if chunk is None and it is not None and self.oversample and k != self.termination:
                    its[k] = _passes(self.groups[k], self.batch_sizes[k], self.shuffle)
                    chunk = next(its[k])
                if chunk is None:
                    its[k] = None
                    continue
                parts.append(chunk)
            idx = torch.cat(parts)
            yield [t[idx] for t in self.tensors]


def task_groups(t: torch.Tensor) -> list[torch.Tensor]:
    """Indices of each task label in ``t``, in increasing label order (Avalanche's task_set order)."""
    return [torch.nonzero(t == v).flatten() for v in torch.unique(t)]


def balanced_split(batch_size: int, n_groups: int) -> list[int]:
    """GroupBalancedDataLoader's split of a batch: equal shares, the remainder to the first groups."""
    if batch_size < n_groups:
        raise ValueError(f"batch size {batch_size} < {n_groups} tasks: cannot balance the mini-batch")
    share, rest = divmod(batch_size, n_groups)
    return [share + (k < rest) for k in range(n_groups)]


def train_batches(tensors: Sequence[torch.Tensor], batch_size: int, shuffle: bool = True):
    """The training loader Avalanche would build: task-balanced over the task labels in ``tensors[2]``."""
    groups = task_groups(tensors[2]) if len(tensors) > 2 else []
    if len(groups) <= 1:
        return TensorBatches(tensors, batch_size, shuffle)
    return GroupBatches(tensors, groups, balanced_split(batch_size, len(groups)), shuffle=shuffle)


class TensorItems(torch.utils.data.Dataset):
    """Materialised tensors served to code that builds its own DataLoader(dataset, collate_fn=...).

    ``__getitems__`` returns a whole batch and ``collate_fn`` passes it through, so a torch
    DataLoader over this dataset makes one gather per batch instead of one call per sample.
    """

    def __init__(self, tensors: Sequence[torch.Tensor]) -> None:
        self.tensors = tuple(tensors)

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, i: int) -> list[torch.Tensor]:
        return [t[i] for t in self.tensors]

    def __getitems__(self, indices: list[int]) -> list[torch.Tensor]:
        idx = torch.as_tensor(indices, device=self.tensors[0].device)
        return [t[idx] for t in self.tensors]

    @staticmethod
    def collate_fn(batch):
        """The batch is already collated by ``__getitems__``."""
        return batch


__all__ = [
    "GroupBatches", "NotMaterializable", "Rows", "TensorBatches", "TensorItems", "balanced_split", "cache_size",
    "endless", "materialize", "purge_cache", "task_groups", "train_batches",
]
