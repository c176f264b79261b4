"""Fast data path: serve mini-batches by slicing tensors instead of per-sample ``__getitem__``.

Avalanche's DataLoader over an AvalancheDataset pays a per-sample Python chain (subset -> transform
-> collate) on every epoch and every evaluation; on MNIST that costs more than the backward pass.
Here each dataset is materialised once into tensors (x, y, t), kept on the run's device, and
mini-batches are index slices.

Scope: this replaces ``make_train_dataloader``/``make_eval_dataloader`` of any template. Plugins that
swap ``strategy.dataloader`` themselves after it is made (ReplayPlugin, DER, ...) keep Avalanche's
loader for training: that is the documented fallback, so their results are exactly Avalanche's.
With task labels, the default Avalanche training loader balances tasks inside each mini-batch;
the fast loader shuffles the concatenated data uniformly (the usual definition of joint/cumulative).
"""

from __future__ import annotations

import weakref
from typing import Iterator

import torch

_CACHE: dict[tuple[int, str], tuple[weakref.ref, tuple[torch.Tensor, ...]]] = {}
_SUBCLASSES: dict[type, type] = {}


def materialize(dataset, device: torch.device, owner=None, tag: str = "") -> tuple[torch.Tensor, ...]:
    """All items of ``dataset`` as stacked tensors on ``device`` (x, y, t).

    Args:
        dataset: the (adapted) dataset to read once.
        device: where the tensors live.
        owner: object the cache entry is tied to (default ``dataset``); evaluation passes the
            experience's dataset, which outlives the fresh ``.eval()`` view made at every evaluation.
        tag: distinguishes views of one owner (e.g. "eval" vs "train" transform groups).
    """
    owner = dataset if owner is None else owner
    key = (id(owner), tag)
    hit = _CACHE.get(key)
    if hit is not None and hit[0]() is owner and hit[1][0].device == device:
        return hit[1]
    collate = getattr(dataset, "collate_fn", None)
    loader = torch.utils.data.DataLoader(dataset, batch_size=4096, shuffle=False, collate_fn=collate)
    parts = [list(batch) for batch in loader]
    tensors = tuple(torch.cat([p[i] for p in parts]).to(device) for i in range(len(parts[0])))
    try:
        _CACHE[key] = (weakref.ref(owner), tensors)
    except TypeError:  # not weak-referenceable: do not cache
        pass
    return tensors


class TensorBatches:
    """Iterable of mini-batches ``[x, y, t]`` sliced from tensors; reshuffled on every iteration."""

    def __init__(self, tensors: tuple[torch.Tensor, ...], batch_size: int, shuffle: bool) -> None:
        self.tensors = tensors
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.dataset = tensors  # some plugins read loader.dataset; len() works on it

    def __len__(self) -> int:
        n = len(self.tensors[0])
        return (n + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[list[torch.Tensor]]:
        n = len(self.tensors[0])
        device = self.tensors[0].device
        # torch.randperm draws from the global generator, which the runner seeds: deterministic.
        order = torch.randperm(n).to(device) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            if order is None:
                yield [t[start : start + self.batch_size] for t in self.tensors]
            else:
                idx = order[start : start + self.batch_size]
                yield [t[idx] for t in self.tensors]


class FastDataMixin:
    """Template mixin: tensor-sliced loaders for training and evaluation."""

    def make_train_dataloader(self, shuffle: bool = True, **kwargs) -> None:
        tensors = materialize(self.adapted_dataset, self.device)
        self.dataloader = TensorBatches(tensors, self.train_mb_size, shuffle)

    def make_eval_dataloader(self, **kwargs) -> None:
        tensors = materialize(self.adapted_dataset, self.device, owner=self.experience.dataset, tag="eval")
        self.dataloader = TensorBatches(tensors, self.eval_mb_size, shuffle=False)


def fast_template(cls: type) -> type:
    """The subclass of template ``cls`` that uses the fast data path (cached per class)."""
    if cls not in _SUBCLASSES:
        _SUBCLASSES[cls] = type(f"Fast{cls.__name__}", (FastDataMixin, cls), {})
    return _SUBCLASSES[cls]
