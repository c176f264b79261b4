"""A class-balanced buffer of stored hidden states, bounded in samples and in bytes."""

from __future__ import annotations

import torch

#: Stored tensors that are labels, not data. They are held as int64 for the loss, but charged
#: ``label_bytes`` per sample instead (benchmarks/core/storage.py: the same label rule as raw replay).
LABEL_KEYS = ("y", "t")


class FeatureBuffer:
    """Groups of stored samples, one group per (experience, class), kept equally large.

    Each group holds tensors with a leading sample dimension, e.g. ``{"h": (N, L, D), "mask": (N, L),
    "y": (N,), "t": (N,)}``. Capacity = min(mem_size, mem_bytes // bytes per sample); the groups share it
    equally (the first ``capacity % n_groups`` groups get one more). A group with fewer samples than
    its share leaves the rest unused.
    """

    def __init__(self, *, mem_size: int, mem_bytes: int = 0, label_bytes: int = 0) -> None:
        """Args: mem_size: most samples in total; mem_bytes: most bytes of stored data (0 = no limit);
        label_bytes: bytes charged per sample for its label (+ task id), ScenarioInfo.label_bytes."""
        if mem_size < 1 or mem_bytes < 0 or label_bytes < 0:
            raise ValueError("mem_size must be >= 1, mem_bytes and label_bytes >= 0")
        self.mem_size, self.mem_bytes, self.label_bytes = mem_size, mem_bytes, label_bytes
        self.groups: dict[tuple[int, int], dict[str, torch.Tensor]] = {}
        self._flat: dict[str, torch.Tensor] | None = None

    def sample_bytes(self, item: dict[str, torch.Tensor]) -> int:
        """Bytes one sample of ``item`` (tensors with a leading sample dim) takes: its stored tensors in
        their own dtype (hidden states fp32/fp16, bool mask) + ``label_bytes``."""
        return self.label_bytes + sum(v[0].numel() * v.element_size() for k, v in item.items() if k not in LABEL_KEYS)

    def capacity(self, sample_bytes: int) -> int:
        """Samples the buffer may hold when each takes ``sample_bytes`` (the tighter budget wins)."""
        if self.mem_bytes:
            return min(self.mem_size, self.mem_bytes // max(sample_bytes, 1))
        return self.mem_size

    def quotas(self, keys: list[tuple[int, int]], sample_bytes: int) -> dict[tuple[int, int], int]:
        """Share of the capacity of each group in ``keys`` (in that order)."""
        cap = self.capacity(sample_bytes)
        n = len(keys)
        return {key: cap // n + (1 if i < cap % n else 0) for i, key in enumerate(keys)}

    def shrink(self, quotas: dict[tuple[int, int], int]) -> None:
        """Keep the first ``quotas[key]`` samples of every stored group (they were stored in random order)."""
        for key, group in self.groups.items():
            self.groups[key] = {k: v[: quotas[key]] for k, v in group.items()}
        self._flat = None

    def make_room(
        self, exp_id: int, targets: torch.Tensor, sample_bytes: int, generator: torch.Generator
    ) -> dict[tuple[int, int], torch.Tensor]:
        """Shrink the stored groups to their new shares and pick what to store of experience ``exp_id``.

        Args:
            exp_id: the experience's index (groups are keyed by (exp_id, class)).
            targets: (N,) class labels of the experience's samples.
            sample_bytes: bytes one stored sample takes.
            generator: CPU generator for the seeded random choice.

        Returns:
            For each new group, indices into ``targets`` of a random subset of its share.
        """
        new = {(exp_id, int(c)): torch.nonzero(targets == c).flatten() for c in torch.unique(targets)}
        quotas = self.quotas([*self.groups, *new], sample_bytes)
        self.shrink(quotas)
        return {key: idx[torch.randperm(len(idx), generator=generator)[: quotas[key]]] for key, idx in new.items()}

    def add(self, key: tuple[int, int], item: dict[str, torch.Tensor]) -> None:
        """Store a new group (already cut to its quota)."""
        self.groups[key] = item
        self._flat = None

    def flat(self) -> dict[str, torch.Tensor]:
        """All groups concatenated (cached until the next change)."""
        if self._flat is None:
            names = next(iter(self.groups.values())).keys()
            self._flat = {k: torch.cat([g[k] for g in self.groups.values()]) for k in names}
        return self._flat

    def __len__(self) -> int:
        return sum(len(g["y"]) for g in self.groups.values())

    def nbytes(self) -> int:
        """Bytes of stored data actually held, + ``label_bytes`` per sample."""
        data = sum(v.numel() * v.element_size() for g in self.groups.values() for k, v in g.items()
                   if k not in LABEL_KEYS)
        return data + len(self) * self.label_bytes

    def sample(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """``n`` stored samples drawn uniformly, without replacement unless fewer than ``n`` are stored.

        Indices come from the CPU ``generator`` (seeded by the plugin: runs are reproducible).
        """
        flat = self.flat()
        size = len(flat["y"])
        if size >= n:
            idx = torch.randperm(size, generator=generator)[:n]
        else:
            idx = torch.randint(size, (n,), generator=generator)
        idx = idx.to(flat["y"].device)
        return {k: v[idx] for k, v in flat.items()}
