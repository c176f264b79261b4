"""Tensor versions of the per-sample memory loaders that Avalanche's replay-style code builds.

Called by FastDataMixin around each experience; each adapter reproduces the loader it replaces:

- ReplayPlugin and BiCPlugin -> ReplayDataLoader(data, buffer, oversample_small_tasks=True): every
  mini-batch is ``batch_size`` current samples (one shuffled pass = one epoch) followed by
  ``batch_size_mem`` buffer samples (shuffled passes, restarted when exhausted, short last chunk
  kept). BiC's bias-correction stage keeps its own loader over the small validation memory.
- DER, ER_ACE, ER_AML -> ``cycle(DataLoader(buffer, batch_size_mem, shuffle=True, drop_last=True))``
  (ER-AML also per class buffer with train_mb_size). Where Avalanche would loop forever on a
  buffer smaller than one batch, ``endless`` raises instead.
- a plain shuffled torch DataLoader over ``adapted_dataset`` set by a plugin (clbench's
  ConcatRehearsalPlugin: Hsu et al.'s uniform shuffle of memory + data) -> TensorBatches over the
  same tensors (one shuffled pass per epoch, last batch kept).
- AGEMPlugin -> GroupBalancedInfiniteDataLoader(buffers, sample_size // n): per buffer, sequential
  chunks (no shuffle), restarted when exhausted, concatenated in buffer order.
- EWCPlugin.compute_importances / GEMPlugin.update_memory receive the dataset as an argument:
  they get a TensorItems view of it (same order, same batches, one gather per batch).

Only the exact Avalanche classes are adapted: a subclass may change the semantics, so it keeps
its own loader (and ``strategy.data_path`` says so).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from benchmarks.fastpath.batches import (
    GroupBatches,
    NotMaterializable,
    TensorBatches,
    TensorItems,
    endless,
    materialize,
)
from benchmarks.fastpath.gather import dense


def adopt_memories(strategy) -> list[str]:
    """Before training on an experience: replace known per-sample memory loaders by tensor ones.

    Returns the names of what now reads tensors (for ``strategy.data_path["memory"]``).
    """
    done = [name for name in (_replay_plugin(strategy), _der(strategy), _plain_loader(strategy)) if name]
    for plugin in strategy.plugins:
        if _pass_tensors_to(plugin, strategy.device):
            done.append(f"{type(plugin).__name__} dataset pass")
    return done


def adopt_memories_after(strategy) -> list[str]:
    """After training on an experience (memories were just updated): AGEM's memory iterator."""
    from avalanche.training.plugins import AGEMPlugin

    done = []
    for plugin in strategy.plugins:
        if type(plugin) is AGEMPlugin and plugin.buffers:
            try:
                mems = [materialize(b, strategy.device) for b in plugin.buffers]
            except NotMaterializable:
                continue
            stream = _group_forever(mems, plugin.sample_size // len(plugin.buffers))
            if stream is not None:
                plugin.buffer_dliter = stream
                done.append("AGEMPlugin memory batches")
    return done


def _concat(parts: Sequence[tuple[torch.Tensor, ...]]) -> tuple[tuple[torch.Tensor, ...], list[torch.Tensor]] | None:
    """Fields of ``parts`` concatenated, and each part's indices; None when the fields do not match."""
    if len({len(p) for p in parts}) != 1 or any(
        p[k].shape[1:] != parts[0][k].shape[1:] for p in parts for k in range(len(p))
    ):
        return None
    fields = tuple(torch.cat([dense(p[k]).to(parts[0][k].dtype) for p in parts]) for k in range(len(parts[0])))
    groups, start = [], 0
    for p in parts:
        groups.append(torch.arange(start, start + len(p[0]), device=fields[0].device))
        start += len(p[0])
    return fields, groups


def replay_batches(data: tuple[torch.Tensor, ...], memory: tuple[torch.Tensor, ...], batch_size: int,
                   batch_size_mem: int, shuffle: bool = True) -> GroupBatches | None:
    """ReplayDataLoader semantics over tensors (see the module docstring); None if fields differ."""
    joined = _concat([data, memory])
    if joined is None:
        return None
    fields, groups = joined
    loader = GroupBatches(fields, groups, [batch_size, batch_size_mem], termination=0, oversample=True,
                          shuffle=shuffle)
    loader.fast_path = "tensor-replay"
    return loader


def _replay_plugin(strategy) -> str | None:
    """ReplayPlugin and BiCPlugin build the same ReplayDataLoader in before_training_exp."""
    from avalanche.benchmarks.utils.data_loader import ReplayDataLoader
    from avalanche.training.plugins import BiCPlugin, ReplayPlugin

    if not isinstance(strategy.dataloader, ReplayDataLoader):
        return None
    plugins = [p for p in strategy.plugins if isinstance(p, (ReplayPlugin, BiCPlugin))]
    if len(plugins) != 1 or type(plugins[0]) not in (ReplayPlugin, BiCPlugin) or plugins[0].task_balanced_dataloader:
        strategy.dataloader.fast_path = "avalanche: unknown replay plugin or task-balanced buffer batches"
        return None
    plugin = plugins[0]
    try:
        data = materialize(strategy.adapted_dataset, strategy.device, tag="train", lazy=True)  # the loader's
        memory = materialize(plugin.storage_policy.buffer, strategy.device)
    except NotMaterializable as exc:
        strategy.dataloader.fast_path = f"avalanche: {exc}"
        return None
    loader = replay_batches(data, memory, plugin.batch_size or strategy.train_mb_size,
                            plugin.batch_size_mem or strategy.train_mb_size)
    if loader is None:
        strategy.dataloader.fast_path = "avalanche: buffer items differ in shape from current items"
        return None
    strategy.dataloader = loader
    return f"{type(plugin).__name__} replay batches"


def _plain_loader(strategy) -> str | None:
    """A plugin's ``DataLoader(adapted_dataset, batch_size, shuffle=True)`` -> TensorBatches (same semantics)."""
    loader = strategy.dataloader
    if type(loader) is not torch.utils.data.DataLoader or loader.dataset is not strategy.adapted_dataset:
        return None
    sampler = loader.sampler
    if type(sampler) is not torch.utils.data.RandomSampler or sampler.replacement or loader.drop_last \
            or sampler.num_samples != len(loader.dataset) or loader.batch_size is None:
        return None
    try:
        tensors = materialize(strategy.adapted_dataset, strategy.device, tag="train", lazy=True)
    except NotMaterializable:
        return None
    strategy.dataloader = TensorBatches(tensors, loader.batch_size, shuffle=True)
    return "shuffled DataLoader batches"


def _cycle(dataset, batch_size: int, device: torch.device) -> Iterator[list[torch.Tensor]]:
    """``cycle(DataLoader(dataset, batch_size, shuffle=True, drop_last=True))`` over tensors."""
    memory = materialize(dataset, device)
    order = endless(torch.arange(len(memory[0]), device=memory[0].device), batch_size, shuffle=True,
                    drop_last=True)
    return ([t[idx] for t in memory] for idx in order)


def _der(strategy) -> str | None:
    """DER, ER-ACE, ER-AML: ``replay_loader`` (and ER-AML's per-class ``pos_neg_loaders``)."""
    from avalanche.training import DER, ER_ACE, ER_AML

    base = next((c for c in (DER, ER_ACE, ER_AML) if c in type(strategy).__bases__), None)
    if base is None or getattr(strategy, "replay_loader", None) is None:
        return None  # only FastX = (FastDataMixin, X): a subclass may sample differently
    try:
        loader = _cycle(strategy.storage_policy.buffer, strategy.batch_size_mem, strategy.device)
        if base is ER_AML:
            strategy.pos_neg_loaders = [
                _cycle(g.buffer, strategy.train_mb_size, strategy.device)
                for g in strategy.storage_policy.buffer_groups.values()
            ]
    except NotMaterializable:
        return None
    strategy.replay_loader = loader
    return f"{base.__name__} replay_loader"


def _group_forever(mems: list[tuple[torch.Tensor, ...]], batch_size: int) -> Iterator[list[torch.Tensor]] | None:
    """GroupBalancedInfiniteDataLoader over ``mems`` (sequential, per-group ``batch_size``)."""
    joined = _concat(mems)
    if joined is None or batch_size < 1:
        return None
    fields, groups = joined
    streams = [endless(g, batch_size, shuffle=False) for g in groups]

    def batches() -> Iterator[list[torch.Tensor]]:
        while True:
            idx = torch.cat([next(s) for s in streams])
            yield [t[idx] for t in fields]

    return batches()


class _TensorDatasetArgument:
    """Calls ``plugin.<method>`` with its ``dataset`` argument (at ``position``) served from tensors."""

    def __init__(self, plugin, method: str, position: int, device: torch.device) -> None:
        self.plugin, self.method, self.position, self.device = plugin, method, position, device

    def __call__(self, *args, **kwargs):
        args = list(args)
        try:
            args[self.position] = TensorItems(materialize(args[self.position], self.device, cache=False))
        except NotMaterializable:
            pass
        return getattr(type(self.plugin), self.method)(self.plugin, *args, **kwargs)


def _pass_tensors_to(plugin, device: torch.device) -> bool:
    """EWC's Fisher pass and GEM's memory fill read their dataset argument from tensors (True if so)."""
    from avalanche.training.plugins import EWCPlugin, GEMPlugin

    targets = {EWCPlugin: ("compute_importances", 3), GEMPlugin: ("update_memory", 0)}
    spec = targets.get(type(plugin))
    if spec is None:
        return False
    if not isinstance(vars(plugin).get(spec[0]), _TensorDatasetArgument):
        setattr(plugin, spec[0], _TensorDatasetArgument(plugin, spec[0], spec[1], device))
    return True
