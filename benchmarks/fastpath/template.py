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
ewc, online_ewc, mas    tensor; the importance pass after each experience (per-sample Fisher,
                        MAS gradients) reads the experience's tensors through
                        ``FastDataMixin.dataset_tensors`` (a DataLoader without the fast path)
si, l1, l2              tensor (these plugins read no data)
ewc_avalanche,          tensor; EWCPlugin.compute_importances gets a TensorItems dataset (same
online_ewc_avalanche    order) for its Fisher pass after each experience
si_avalanche, lwf       tensor (these plugins read no data either)
mas_avalanche           tensor for training; MAS's importance pass keeps one per-sample pass
                        per experience (it reads ``strategy.experience.dataset`` itself:
                        no argument to substitute without copying Avalanche code)
replay                  tensor-replay: ReplayDataLoader -> GroupBatches (batch_size
                        current + batch_size_mem buffer samples, buffer oversampled); stays on
                        Avalanche's loader if task_balanced_dataloader=True or for a subclass;
                        mode "concat": tensor (memory concatenated to adapted_dataset; the
                        plugin's plain shuffled DataLoader over it -> TensorBatches)
replay_herding,         tensor-replay as replay; choosing the samples (ParametricBuffer's
replay_centroid         selection strategy) reads features through a per-sample loader over
                        each group once per experience
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
gem                     tensor; GEM's memory fill (update_memory) reads a TensorItems dataset;
                        with memory_size > 0 the split memory is loaded once per experience
                        through one Avalanche batch (<= memory_size samples); concat_memory
                        as replay's mode "concat"
icarl                   tensor: iCaRL concatenates exemplars to adapted_dataset (materialised);
                        exemplar selection and class means keep Avalanche's loaders (once per
                        experience, over the memory)
pnn                     tensor (PNNStrategy is a SupervisedTemplate)
modular_lora            tensor (a Naive template over the ModularLoRA wrapper model)
moe_adapters            tensor (a Naive template; the experts and routers live in the model)
l2p                     tensor (a Naive template over the prompt-pool wrapper model)
olora                   tensor (a Naive template; the adapters live in the model itself)
seq_star                tensor (a Naive template over an encoder + cosine-head wrapper)
aper_lora               tensor (a Naive template over the dual-branch wrapper model); the class
                        prototypes read each experience's training tensors once
                        (``dataset_tensors``); no training epoch after the first experience
lamaml                  tensor (a SupervisedMetaLearningTemplate: same loaders); its reservoir
                        buffer reads 10 samples a step per sample (Avalanche's Buffer)
ncm, slda, ranpac, klda tensor (NoSGD, a Naive template without backward and step; the
                        statistics plugin reads the features of each training batch)
attn_reg                tensor (the plugin reads attention maps of the current batch only)
replay+attn_reg         tensor-replay as replay; the attention plugin reads the mixed batch's maps
lwf+attn_reg            tensor (both plugins read the current batch only)
feature_replay,         tensor for the current data; the replayed memory is hidden states the
feature_replay+attn_reg plugin stores as tensors itself; filling it encodes the chosen samples
                        through a per-sample loader once per experience
======================  ==================================================================

Strategies written later inherit the tensor path through ``ctx.template``; a plugin that replaces
``strategy.dataloader`` with an unknown loader is not broken: its loader is used and the run's
``strategy.data_path`` says "avalanche" for that experience. Templates that override
``make_train_dataloader`` themselves (AR1, object detection) are returned unchanged by
``fast_template``. Per-iteration plugin events skip handlers that provably do nothing
(benchmarks/fastpath/dispatch.py). On CUDA the tensors live on the GPU (no pin_memory, no host copies per batch).
"""

from __future__ import annotations

import torch

from benchmarks.fastpath.batches import NotMaterializable, TensorBatches, materialize, train_batches
from benchmarks.fastpath.dispatch import lean_events
from benchmarks.fastpath.replay import adopt_memories, adopt_memories_after

_SUBCLASSES: dict[type, type] = {}


def by_length(tensors: tuple) -> tuple:
    """Token inputs (x of shape (N, 2, L): ids and attention mask) reordered by their length.

    Evaluation trims each batch to its longest input (text_backbone.trim_padding), so a batch of
    similar lengths computes few padded positions: on CLINC150 (eval batches of up to 1,000
    utterances of ~11 tokens, the longest ~30) it halves a MiniLM evaluation. Accuracy counts are
    order-free; an input's logits can differ in the last bits (batched matmuls round with the
    batch's padded length), never its expected value. Stable sort: equal lengths keep their order.
    Other inputs (images, float features) come back unchanged.
    """
    x = tensors[0]
    if x.dim() != 3 or x.size(1) != 2 or x.is_floating_point() or len(x) < 2:
        return tensors
    order = torch.argsort(x[:, 1].sum(dim=1), stable=True)
    return tuple(t[order] for t in tensors)


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
        self.dataloader = TensorBatches(by_length(tensors), self.eval_mb_size, shuffle=False)
        self._note("eval", "tensor")

    def dataset_tensors(self, dataset) -> tuple | None:
        """``dataset``'s fields (x, y, t, ...) indexable by slices, for plugins' importance passes.

        Returns None when the dataset cannot be materialised (the plugin then reads it with a
        DataLoader). Not cached: the pass reads each experience once.
        """
        try:
            return materialize(dataset, self.device, cache=False, lazy=True)
        except NotMaterializable:
            return None

    def _before_training_exp(self, **kwargs) -> None:
        super()._before_training_exp(**kwargs)  # plugins (ReplayPlugin) may swap self.dataloader here
        self._note("memory", ", ".join(adopt_memories(self)) or "none")
        path = getattr(self.dataloader, "fast_path", None) or getattr(self, "_fallback", None)
        self._note("train", path or f"avalanche: {type(self.dataloader).__name__} set by a plugin")

    def _after_training_exp(self, **kwargs) -> None:
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

    It also dispatches the per-iteration plugin events leanly (benchmarks/fastpath/dispatch.py: provable
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


__all__ = ["FastDataMixin", "fast_template"]
