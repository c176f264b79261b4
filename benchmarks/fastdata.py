"""Fast data path: mini-batches are index slices of tensors instead of per-sample ``__getitem__``.

Avalanche's DataLoader over an AvalancheDataset pays a per-sample Python chain (subset -> transform
-> attributes -> collate), ~26 us a sample here: more than the MLP's backward on MNIST. This module
materialises each dataset once into tensors (x, y, t[, extra]) on the run's device and serves
mini-batches by index. ``materialize`` reads tensor-backed datasets structurally (index arithmetic
down to the leaf tensors, no per-sample call), checks a few probe items against ``dataset[i]`` and
falls back to one DataLoader pass when the structure is not understood.

Semantics kept from Avalanche (same hyper-parameters -> statistically the same accuracies):
training batches follow Avalanche's loaders: TaskBalancedDataLoader (batch split over the task
labels present, smaller tasks oversampled) and ReplayDataLoader (batch_size current samples +
batch_size_mem buffer samples, buffer cycled); evaluation is sequential in ``eval_mb_size`` batches.
Only the random draws differ (torch.randperm on the seeded global generator). A dataset whose items
change between two reads (random augmentation) is not materialised: it keeps Avalanche's loader.

Path of every registered strategy (strategies/__init__.py) with ``train.fast_data = true``:

======================  ==================================================================
strategy                path with ``train.fast_data = true`` (and why, where it differs)
======================  ==================================================================
naive                   tensor (train + eval)
cumulative, joint       tensor: the concatenated dataset is materialised once per experience;
                        task-IL keeps task-balanced batches (TaskBalancedDataLoader semantics);
                        joint's ResetModelPlugin touches only the model
ewc, online_ewc         tensor; the Fisher pass after each experience reads tensors too
                        (EWCPlugin.compute_importances gets a TensorItems dataset: same order)
si, l2, lwf             tensor (these plugins read no data)
mas                     tensor for training; MAS's importance pass keeps one per-sample pass
                        per experience (it reads ``strategy.experience.dataset`` itself:
                        no argument to substitute without copying Avalanche code)
replay                  tensor-replay: ReplayDataLoader -> GroupBatches (batch_size
                        current + batch_size_mem buffer samples, buffer oversampled); stays on
                        Avalanche's loader if task_balanced_dataloader=True or for a subclass
bic                     tensor-replay as replay (BiCPlugin builds the same ReplayDataLoader);
                        the bias-correction stage keeps its own loader over the small
                        validation memory (a local DataLoader inside BiC's method)
gdumb                   tensor: GDumb sets adapted_dataset = buffer, which is materialised
der                     tensor + DER's replay_loader on tensors (cycled shuffled batches,
                        drop_last, x/y/t/logits); the logits pass after each experience
                        (module function compute_dataset_logits) keeps Avalanche's loader
er_aml                  tensor + replay_loader and per-class pos_neg_loaders on tensors; a
                        buffer smaller than one batch raises instead of looping forever
agem                    tensor + AGEM's memory iterator on tensors (per-experience sequential
                        chunks of sample_size // n_buffers, as GroupBalancedInfiniteDataLoader)
gem                     tensor; GEM's memory fill (update_memory) reads a TensorItems dataset
icarl                   tensor: iCaRL concatenates exemplars to adapted_dataset (materialised);
                        exemplar selection and class means keep Avalanche's loaders (once per
                        experience, over the memory)
pnn                     tensor (PNNStrategy is a SupervisedTemplate)
attn_reg                tensor (the plugin reads attention maps of the current batch only)
feature_replay,         tensor for the current data; the replayed memory is hidden states the
feature_replay+attn_reg plugin stores as tensors itself; filling it encodes the chosen samples
                        through a per-sample loader once per experience
======================  ==================================================================

Strategies written later inherit the tensor path through ``ctx.template``; a plugin that replaces
``strategy.dataloader`` with an unknown loader is not broken: its loader is used and the run's
``strategy.data_path`` says "avalanche" for that experience. Templates that override
``make_train_dataloader`` themselves (AR1, object detection) are returned unchanged by
``fast_template``. Per-iteration plugin events skip handlers that provably do nothing
(benchmarks/dispatch.py). On CUDA the tensors live on the GPU (no pin_memory, no host copies per batch).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence

import torch

from benchmarks.dispatch import lean_events
from benchmarks.tensor_gather import NotMaterializable, Rows, agrees, gather_items

#: (id(owner), tag, device, lazy) -> (weakref to owner, fields)
_CACHE: dict[tuple[int, str, str, bool], tuple[weakref.ref, tuple[torch.Tensor | Rows, ...]]] = {}
_SUBCLASSES: dict[type, type] = {}


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


class FastDataMixin:
    """Template mixin: tensor loaders for training and evaluation, tensor memories for known plugins.

    ``self.data_path`` records which loader served the last experience: "train" and "eval" ->
    "tensor", "tensor-replay" or "avalanche: <reason>"; "memory" -> the memory loaders and dataset
    passes that read tensors (e.g. "DER replay_loader"), or "none".
    """

    def make_train_dataloader(self, shuffle: bool = True, **kwargs) -> None:
        self._fallback = None
        try:
            tensors = materialize(self.adapted_dataset, self.device, tag="train", lazy=True)
        except NotMaterializable as exc:
            self._fallback = f"avalanche: {exc}"
            return super().make_train_dataloader(shuffle=shuffle, **kwargs)
        self.dataloader = train_batches(tensors, self.train_mb_size, shuffle)

    def make_eval_dataloader(self, **kwargs) -> None:
        try:
            tensors = materialize(self.adapted_dataset, self.device, owner=self.experience.dataset, tag="eval")
        except NotMaterializable as exc:
            self._note("eval", f"avalanche: {exc}")
            return super().make_eval_dataloader(**kwargs)
        self.dataloader = TensorBatches(tensors, self.eval_mb_size, shuffle=False)
        self._note("eval", "tensor")

    def _before_training_exp(self, **kwargs) -> None:
        from benchmarks.fastreplay import adopt_memories

        super()._before_training_exp(**kwargs)  # plugins (ReplayPlugin) may swap self.dataloader here
        self._note("memory", ", ".join(adopt_memories(self)) or "none")
        path = getattr(self.dataloader, "fast_path", None) or getattr(self, "_fallback", None)
        self._note("train", path or f"avalanche: {type(self.dataloader).__name__} set by a plugin")

    def _after_training_exp(self, **kwargs) -> None:
        from benchmarks.fastreplay import adopt_memories_after

        super()._after_training_exp(**kwargs)
        after = adopt_memories_after(self)
        if after:
            self._note("memory", ", ".join(after))

    def _note(self, phase: str, path: str) -> None:
        if not hasattr(self, "data_path"):
            self.data_path = {}
        self.data_path[phase] = path


def _defines_own_loader(cls: type) -> bool:
    """True when ``cls`` overrides make_train/eval_dataloader below Avalanche's base SGD template."""
    for klass in cls.__mro__:
        if klass.__name__ == "BaseSGDTemplate":
            return False
        if "make_train_dataloader" in vars(klass) or "make_eval_dataloader" in vars(klass):
            return True
    return False


def fast_template(cls: type) -> type:
    """The subclass of template ``cls`` that uses the fast data path (cached per class).

    It also dispatches the per-iteration plugin events leanly (benchmarks/dispatch.py: provable
    no-op handlers are skipped). Templates that build their own loaders are returned unchanged
    (documented fallback).
    """
    if _defines_own_loader(cls):
        return cls
    if cls not in _SUBCLASSES:
        name = f"Fast{cls.__name__}"
        while name in globals():  # same class name from another module: keep both importable
            name += "_"
        attrs = {"__module__": __name__, "__qualname__": name, **lean_events(cls)}
        sub = type(name, (FastDataMixin, cls), attrs)
        globals()[name] = sub  # importable by name, so pickle (checkpoints) finds the class
        _SUBCLASSES[cls] = sub
    return _SUBCLASSES[cls]


__all__ = [
    "FastDataMixin", "GroupBatches", "NotMaterializable", "Rows", "TensorBatches", "TensorItems", "balanced_split",
    "cache_size", "endless", "fast_template", "materialize", "purge_cache", "task_groups", "train_batches",
]
