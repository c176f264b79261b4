"""Hsu et al. 2018's "Naive rehearsal": a per-experience split of a fixed memory, concatenated to the data.

Their agent (GT-RIPL/Continual-Learning-Benchmark, agents/exp_replay.py ``Naive_Rehearsal``) differs
from Avalanche's ReplayPlugin (which appends ``batch_size_mem`` buffer samples to every mini-batch):

- storage: after each task, the memory of ``memory_size`` samples in total is split evenly over the
  tasks seen (``memory_size // tasks``); each older part keeps its first samples, the new task
  contributes that many samples drawn uniformly at random (torch.randperm) from its training set;
- replay: the memory parts are repeated ``max(len(task data) // memory_size, 1)`` times (old data :
  new data ~ 1:1) and concatenated to the task's training set, which is then shuffled as one dataset:
  an epoch is a pass over both, so it is about twice as long as without memory.

Avalanche's training loader would balance each mini-batch over the task labels present
(TaskBalancedDataLoader: with task labels, task-IL, the current task would get 1/tasks of each batch
and epochs would grow with the number of tasks); the plugin replaces it by a plain shuffled DataLoader
over the concatenation, as theirs (the fast path serves that loader from tensors).

``SplitMemoryGEMPlugin`` is Avalanche's GEMPlugin on this memory (their GEM agent subclasses
Naive_Rehearsal and shares its storage).
"""

from __future__ import annotations

import torch
from avalanche.training.plugins import GEMPlugin, SupervisedPlugin


class TaskSplitMemory:
    """A fixed total of samples split evenly over the experiences seen; random samples of each.

    Args:
        size: total number of stored samples (>= 1).
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("memory size must be >= 1")
        self.size = size
        self.parts: list = []  # one AvalancheDataset subset per experience seen, oldest first

    def __len__(self) -> int:
        return sum(len(p) for p in self.parts)

    def update(self, dataset) -> None:
        """Shrink the older parts to ``size // experiences`` samples, then add a random part of ``dataset``."""
        per_part = min(len(dataset), self.size // (len(self.parts) + 1))
        # Their Storage.reduce keeps the first indices; those were drawn at random already.
        self.parts = [p.subset(range(min(per_part, len(p)))) for p in self.parts]
        self.parts.append(dataset.subset(torch.randperm(len(dataset))[:per_part].tolist()))


class ConcatRehearsalPlugin(SupervisedPlugin):
    """Trains on each experience's data concatenated with the repeated memory (see the module docstring).

    Args:
        memory: the memory to replay (shared with GEM when both use it).
        update: fill ``memory`` after each experience (False when another plugin owns the updates).
        sample_bytes: bytes of one stored input, for ``memory_usage``.
    """

    def __init__(self, memory: TaskSplitMemory, *, update: bool = True, sample_bytes: int = 0) -> None:
        super().__init__()
        self.memory = memory
        self.update = update
        self.sample_bytes = sample_bytes
        self._joined = False  # this experience's training set holds the memory

    def after_train_dataset_adaptation(self, strategy, **kwargs) -> None:
        parts = [p.train() for p in self.memory.parts if len(p)]
        if not parts:
            return
        data = strategy.adapted_dataset
        repeat = max(len(data) // self.memory.size, 1)  # their "old data : new data = 1:1"
        strategy.adapted_dataset = type(data)([*parts * repeat, data])
        self._joined = True

    def before_training_exp(self, strategy, **kwargs) -> None:
        if self._joined:  # one uniformly shuffled pass over memory + data per epoch (their DataLoader)
            data = strategy.adapted_dataset
            strategy.dataloader = torch.utils.data.DataLoader(
                data, batch_size=strategy.train_mb_size, shuffle=True, collate_fn=data.collate_fn)
        self._joined = False

    def after_training_exp(self, strategy, **kwargs) -> None:
        if self.update:
            self.memory.update(strategy.experience.dataset)

    def memory_usage(self) -> tuple[int, int]:
        """(samples, bytes) stored; (0, 0) when another plugin owns (and reports) the memory."""
        n = len(self.memory) if self.update else 0
        return n, n * self.sample_bytes


class SplitMemoryGEMPlugin(GEMPlugin):
    """GEMPlugin whose memory is a TaskSplitMemory: each part's reference gradient on all its samples.

    Args:
        memory: the memory this plugin fills after each experience (and that a ConcatRehearsalPlugin
            with ``update=False`` may replay).
        memory_strength: the QP margin (GEM's gamma; Hsu et al.'s reg_coef 0.5).
        sample_bytes: bytes of one stored input, for ``memory_usage``.
    """

    def __init__(self, memory: TaskSplitMemory, *, memory_strength: float, sample_bytes: int = 0) -> None:
        super().__init__(patterns_per_experience=memory.size, memory_strength=memory_strength)
        self.memory = memory
        self.sample_bytes = sample_bytes

    @torch.no_grad()
    def update_memory(self, dataset, t, batch_size) -> None:
        """Update the split memory with ``dataset`` and reload every part as one batch (x, y, task)."""
        self.memory.update(dataset)
        for k, part in enumerate(self.memory.parts):
            loader = torch.utils.data.DataLoader(part, batch_size=len(part), collate_fn=part.collate_fn)
            self.memory_x[k], self.memory_y[k], self.memory_tid[k] = next(iter(loader))[:3]

    def memory_usage(self) -> tuple[int, int]:
        """(samples, bytes) stored."""
        return len(self.memory), len(self.memory) * self.sample_bytes
