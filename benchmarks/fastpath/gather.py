"""Read every item of a dataset as stacked tensors without calling ``__getitem__`` per sample.

An AvalancheDataset is a tree: ``_flat_data`` (subset indices + concatenation of child datasets,
down to leaves such as a TensorDataset) plus data attributes (``targets``, ``targets_task_labels``,
DER's ``logits``...) that are appended to each item when ``use_in_getitem``. ``gather_items`` walks
that tree with index tensors. Transforms are not applied by the walk, so the result is checked
against ``dataset[i]`` on probe items; any mismatch (a transform, an unknown node type) falls back to
one DataLoader pass with the dataset's collate function, which is always correct.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

N_PROBES = 16


class NotMaterializable(ValueError):
    """The dataset cannot be read once and reused (random augmentation, or no items)."""


class Rows:
    """Rows ``base[index]`` of a tensor, gathered only when indexed: a field read without a copy.

    Supports what the tensor loaders use: ``len``, ``rows[idx]`` (tensor, int or slice), ``device``,
    ``dtype``, ``shape``. A training set's inputs are then gathered once per mini-batch straight from
    the scenario's tensor instead of being copied once more per experience first.
    """

    def __init__(self, base: torch.Tensor, index: torch.Tensor) -> None:
        self.base, self.index = base, index

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i) -> torch.Tensor:
        return self.base[self.index[i]]

    @property
    def device(self) -> torch.device:
        return self.base.device

    @property
    def dtype(self) -> torch.dtype:
        return self.base.dtype

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.index), *self.base.shape[1:]))


def dense(field: torch.Tensor | Rows) -> torch.Tensor:
    """A real tensor for a field (copies the rows of a ``Rows``)."""
    return field.base[field.index] if isinstance(field, Rows) else field


def gather_items(dataset, lazy: bool = False) -> tuple[torch.Tensor | Rows, ...]:
    """All items of ``dataset`` as CPU tensors, one per field (x, y, t, ...).

    Args:
        dataset: the dataset to read.
        lazy: fields read straight from a leaf tensor are returned as ``Rows`` (no copy).

    Raises:
        NotMaterializable: empty dataset, or an item differs between two reads (random transform).
    """
    n = len(dataset)
    if n == 0:
        raise NotMaterializable("empty dataset")
    probes = sorted(set(torch.linspace(0, n - 1, min(n, N_PROBES)).long().tolist()))
    expected = [dataset[i] for i in probes]
    if not _items_equal(expected[0], dataset[probes[0]]):
        raise NotMaterializable("items change between reads (random transforms): kept Avalanche's loader")
    try:
        fields = _walk(dataset, torch.arange(n))
    except (TypeError, ValueError, IndexError, RuntimeError, AttributeError):
        fields = None
    if fields is not None:
        fields = _match_probes(fields, probes, expected)
    if fields is None:
        return _read_with_loader(dataset)
    return tuple(fields) if lazy else tuple(dense(f) for f in fields)


def agrees(tensors: Sequence[torch.Tensor], dataset, n_probes: int = 8) -> bool:
    """True when ``dataset`` has as many items as ``tensors`` and the same items at probe indices.

    A content check (~n_probes item reads) that validates a cache entry against a fresh view of a
    dataset; Avalanche's own ``==`` cannot be used: it changes after a view's first ``__getitem__``.
    """
    n = len(tensors[0])
    if len(dataset) != n:
        return False
    probes = sorted(set(torch.linspace(0, n - 1, min(n, n_probes)).long().tolist()))
    return all(_items_equal([t[i] for t in tensors], dataset[i]) for i in probes)


def _as_tensor(value: Any) -> torch.Tensor:
    return value if isinstance(value, torch.Tensor) else torch.as_tensor(value)


def _items_equal(a: Sequence, b: Sequence) -> bool:
    if len(a) != len(b):
        return False
    for u, v in zip(a, b):
        u, v = _as_tensor(u), _as_tensor(v)
        if u.device != v.device:  # cached fields live on the run's device (GPU), dataset items on the CPU
            u = u.to(v.device)
        if u.shape != v.shape or not bool((u == v).all()):
            return False
    return True


def _match_probes(fields: list, probes: list[int], expected: list) -> list | None:
    """``fields`` cast to the probe items' dtypes, or None when any probe item differs."""
    if len(fields) != len(expected[0]):
        return None
    dtypes = [_as_tensor(e).dtype for e in expected[0]]
    fields = [f if f.dtype == d else dense(f).to(d) for f, d in zip(fields, dtypes)]
    for i, item in zip(probes, expected):
        if not _items_equal([f[i] for f in fields], item):
            return None
    return fields


def _read_with_loader(dataset) -> tuple[torch.Tensor, ...]:
    """One DataLoader pass (per-sample ``__getitem__``), large batches, the dataset's collate."""
    collate = getattr(dataset, "collate_fn", None)
    loader = torch.utils.data.DataLoader(dataset, batch_size=4096, shuffle=False, collate_fn=collate)
    parts = [list(batch) for batch in loader]
    return tuple(torch.cat([p[i] for p in parts]) for i in range(len(parts[0])))


#: id(seq) -> (seq, len, tensor): Python index/label lists already converted (they are read again at
#: every experience and evaluation: 60,000-element lists cost ~2 ms each to convert). The entry keeps
#: ``seq`` alive, so its id cannot be reused while cached; the length guards against appends.
_CONVERTED: dict[int, tuple[Any, int, torch.Tensor]] = {}
_CONVERTED_MAX = 32


def _converted(seq: list | tuple | range, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``torch.as_tensor(seq)``, memoised for the last few sequences (treated as read-only)."""
    hit = _CONVERTED.get(id(seq))
    if hit is not None and hit[0] is seq and hit[1] == len(seq) and (dtype is None or hit[2].dtype == dtype):
        return hit[2]
    out = torch.as_tensor(seq, dtype=dtype)
    if len(_CONVERTED) >= _CONVERTED_MAX:
        _CONVERTED.pop(next(iter(_CONVERTED)))
    _CONVERTED[id(seq)] = (seq, len(seq), out)
    return out


def _index_tensor(indices: Any) -> torch.Tensor:
    if isinstance(indices, torch.Tensor):
        return indices.long()
    if isinstance(indices, (list, tuple, range)):
        return _converted(indices, torch.long)
    return torch.as_tensor([indices[i] for i in range(len(indices))], dtype=torch.long)  # LazyIndices


def _walk(node: Any, idx: torch.Tensor) -> list[torch.Tensor | Rows] | None:
    """Fields of items ``idx`` of ``node`` (transforms not applied), or None for an unknown node."""
    if hasattr(node, "_flat_data") and hasattr(node, "_data_attributes"):  # AvalancheDataset
        fields = _walk(node._flat_data, idx)
        if fields is None:
            return None
        attrs = node._data_attributes
        if "targets" in attrs and not attrs["targets"].use_in_getitem and len(fields) >= 2:
            fields[1] = _values(attrs["targets"].data, idx)  # relabelling lives in target transforms
        for da in attrs.values():
            if da.use_in_getitem:
                fields.append(_values(da.data, idx))
        return None if any(f is None for f in fields) else fields
    if hasattr(node, "_datasets") and hasattr(node, "_cumulative_sizes"):  # FlatData
        return _walk_flat(node, idx)
    if isinstance(node, torch.utils.data.TensorDataset):
        return [Rows(t, idx) for t in node.tensors]
    value = _values(node, idx)
    return None if value is None else [value]


def _walk_flat(node: Any, idx: torch.Tensor) -> list[torch.Tensor | Rows] | None:
    """FlatData: subset indices, then concatenation of ``_datasets`` (bisect on cumulative sizes)."""
    if node._indices is not None:
        idx = _index_tensor(node._indices)[idx]
    children = node._datasets
    if len(children) == 1:
        return _walk(children[0], idx)
    cum = torch.as_tensor(node._cumulative_sizes, dtype=torch.long)
    which = torch.bucketize(idx, cum, right=True)  # bisect_right, as FlatData._get_idx
    starts = torch.cat([torch.zeros(1, dtype=torch.long), cum[:-1]])
    parts = []
    for k in torch.unique(which).tolist():
        pos = torch.nonzero(which == k).flatten()
        part = _walk(children[k], idx[pos] - starts[k])
        if part is None or (parts and len(part) != len(parts[0][1])):
            return None
        parts.append((pos, part))
    return [_merge(len(idx), [(pos, part[f]) for pos, part in parts]) for f in range(len(parts[0][1]))]


def _merge(n: int, pieces: list[tuple[torch.Tensor, torch.Tensor | Rows]]) -> torch.Tensor | Rows:
    """One field of n items from pieces (positions, values); rows of one base tensor stay ``Rows``."""
    first = pieces[0][1]
    if isinstance(first, Rows) and all(isinstance(p, Rows) and p.base is first.base for _, p in pieces):
        index = torch.empty(n, dtype=torch.long)
        for pos, p in pieces:
            index[pos] = p.index
        return Rows(first.base, index)
    out = torch.empty((n, *first.shape[1:]), dtype=first.dtype)
    for pos, p in pieces:
        out[pos] = dense(p).to(out.dtype)
    return out


def _values(seq: Any, idx: torch.Tensor) -> torch.Tensor | None:
    """Values ``seq[idx]`` of an attribute sequence (FlatData, tensor, list, constant), or None."""
    if hasattr(seq, "_datasets") and hasattr(seq, "_cumulative_sizes"):
        fields = _walk_flat(seq, idx)
        return None if fields is None or len(fields) != 1 else dense(fields[0])
    if isinstance(seq, torch.Tensor):
        return seq[idx]
    if hasattr(seq, "use_in_getitem") and hasattr(seq, "data"):  # a DataAttribute over another
        return _values(seq.data, idx)
    if hasattr(seq, "_constant_value") and hasattr(seq, "_size"):  # ConstantSequence
        return torch.full((len(idx),), seq._constant_value)
    if isinstance(seq, (list, tuple)) and len(seq) > 0 and isinstance(seq[0], torch.Tensor):
        return torch.stack([seq[i] for i in idx.tolist()])
    if isinstance(seq, (list, tuple, range)):
        return _converted(seq)[idx]
    if hasattr(seq, "__array__"):
        return torch.as_tensor(seq)[idx]
    return None
