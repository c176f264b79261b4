"""Transformer feature (latent) replay: store hidden states of layer k, replay them through blocks >= k.

The backbone is split at layer k (the input of block k). After the first experience (or from the
start, for a pretrained model; never with ``train_lower``, an ablation) the embedding and blocks < k
are frozen; after each experience a
class-balanced, seeded sample of its data is encoded ONCE up to layer k (no grad, eval mode) and
stored. While training, every mini-batch adds the loss of a replayed batch of the same size:

    loss = CE(current batch) + CE(decode(stored h, mask, start=k))      (each a mean over its batch)

i.e. the replayed batch weighs as much as the current one (Avalanche's ReplayPlugin averages over the
concatenated 2B samples: 0.5 * (L_cur + L_mem), the same direction; with Adam the scale hardly matters).
Replay never runs the frozen blocks; the current batch runs through them without building a graph
(their parameters do not require grad). Models: benchmarks/models/transformer_api.py.

store = "tokens": h (N, L, D) and mask (N, L) at layer k. store = "pooled": pooled vectors (N, D) =
model.features(x); these can only go through the head, so k = n_layers and the whole backbone
(everything but model.head) is frozen; ``layer`` is ignored.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from avalanche.training.plugins import SupervisedPlugin
from torch import nn

from strategies.plugins.feature_buffer import FeatureBuffer
from strategies.plugins.modes import eval_mode, frozen_to_eval

DTYPES = {"fp32": torch.float32, "fp16": torch.float16}


def trim_padding(h: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop the trailing positions that are padding in every row: h (B, L, D), mask (B, L) -> (B, L', ...).

    As the text models' own trim_padding does for the current batch; without it a replayed batch of
    CLINC150 states runs the upper blocks at L = 32 (MiniLM top-2 step: 0.69 s vs 0.51 s). The same
    function, not the same computation:
    - eval mode: equal up to float rounding (padded keys get zero attention weight and are not pooled,
      but the kernels reduce over L' keys instead of L): on a real MiniLM batch (L = 32 -> 18) the
      logits differ by at most 2.7e-7, not bit for bit;
    - train mode: the trained blocks' hidden dropout (0.1 in MiniLM) draws its masks over (B, L', D)
      instead of (B, L, D), so real tokens get other (equally distributed) masks (same seed, same
      batch: logits differ by up to 0.12; two seeds untrimmed: 0.17) and the RNG stream is shifted for
      the rest of the run. A run with trimming is another random path than one without, as with another
      seed: MiniLM top-2 (suites/feature_replay.toml) seed 0 gave 83.07% trimmed vs 84.93% untrimmed.
      Dropout is the whole cause: with MiniLM's hidden dropout set to 0, both gave the same accuracy
      matrix bit for bit (86.93%), so the float rounding above changed no prediction there.
    """
    real = torch.nonzero(mask.any(dim=0))
    n = int(real.max()) + 1 if len(real) else mask.shape[1]
    return h[:, :n], mask[:, :n]


class FeatureReplayPlugin(SupervisedPlugin):
    """Latent replay for Transformer backbones; ``memory_usage()`` reports (samples, bytes) held."""

    def __init__(self, *, layer: int = -1, store: Literal["tokens", "pooled"] = "tokens", mem_size: int = 1100,
                 mem_bytes: int = 0, dtype: Literal["fp32", "fp16"] = "fp32", freeze_from_start: bool = False,
                 train_lower: bool = False, seed: int = 0, label_bytes: int = 0) -> None:
        """Args:
        layer: split k; negative counts from the top (-1 = n_layers - 1: only the last block trains).
        store: "tokens" or "pooled" (see the module docstring).
        mem_size: most stored samples; mem_bytes: most stored bytes (0 = no byte limit); the tighter wins.
        dtype: storage precision of hidden states, "fp32" or "fp16" (replayed as the model's dtype).
        freeze_from_start: freeze below k before the first experience (pretrained backbone).
        train_lower: never freeze: blocks < k keep training, the stored states go stale (an ablation).
        seed: seeds the class-balanced selection and the replay sampling.
        label_bytes: bytes charged per stored sample for its label (+ task id): ScenarioInfo.label_bytes,
            so that feature and raw replay pay the same per-sample label cost (benchmarks/core/storage.py).
        """
        super().__init__()
        if store not in ("tokens", "pooled") or dtype not in DTYPES:
            raise ValueError(f"store must be 'tokens'|'pooled' and dtype 'fp32'|'fp16', got {store!r}, {dtype!r}")
        if freeze_from_start and train_lower:
            raise ValueError("freeze_from_start and train_lower contradict each other: set at most one")
        self.layer, self.store, self.dtype = layer, store, DTYPES[dtype]
        self.freeze_from_start, self.train_lower, self.seed = freeze_from_start, train_lower, seed
        self.buffer = FeatureBuffer(mem_size=mem_size, mem_bytes=mem_bytes, label_bytes=label_bytes)
        self.frozen = False
        self.generator = torch.Generator().manual_seed(seed)
        self._hidden_dtype = torch.float32

    def split(self, model: nn.Module) -> int:
        """The split layer k for ``model`` (n_layers for "pooled")."""
        n = model.n_layers
        k = n if self.store == "pooled" else (self.layer if self.layer >= 0 else n + self.layer)
        if not 0 <= k <= n:
            raise ValueError(f"feature replay layer {self.layer} is outside [-{n}, {n}] for a {n}-block model")
        return k

    def freeze(self, model: nn.Module) -> None:
        """Freeze the part below k ("pooled": everything but the head); never unfreeze a parameter that the
        model's own configuration froze (text backbones' freeze_below(k) re-enables blocks >= k)."""
        keep_frozen = [p for p in model.parameters() if not p.requires_grad]
        model.freeze_below(self.split(model))
        head = {id(p) for p in model.head.parameters()}
        for p in model.parameters():
            if self.store == "pooled" and id(p) not in head:
                p.requires_grad_(False)
        for p in keep_frozen:
            p.requires_grad_(False)
        self.frozen = True

    def encode(self, model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """What is stored for inputs x: {"h": (B, L, D), "mask": (B, L)} or {"h": (B, D)} ("pooled")."""
        with torch.no_grad(), eval_mode(model):
            if self.store == "pooled":
                h = model.features(x)
                self._hidden_dtype = h.dtype
                return {"h": h.to(self.dtype)}
            out = model.encode(x, upto=self.split(model))
        self._hidden_dtype = out.hidden.dtype
        return {"h": out.hidden.to(self.dtype), "mask": out.mask}

    def upper(self, model: nn.Module, item: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits of stored samples from the layers above k only (blocks >= k, pooling, head)."""
        h, t = item["h"].to(self._hidden_dtype), item["t"]
        if self.store == "pooled":
            return model.head(h) if isinstance(model.head, nn.Linear) else model.head(h, t)
        h, mask = trim_padding(h, item["mask"])
        logits, _ = model.decode(h, mask, start=self.split(model), task_labels=t)
        return logits

    def replay_loss(self, model: nn.Module, n: int) -> torch.Tensor:
        """Mean cross-entropy of ``n`` replayed samples."""
        item = self.buffer.sample(n, self.generator)
        return F.cross_entropy(self.upper(model, item), item["y"])

    def _encode_indices(self, strategy, dataset, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        """Encode dataset[idx] (eval transforms) in mini-batches; returns stored tensors + labels y, t."""
        sub = dataset.subset(idx.tolist())
        loader = torch.utils.data.DataLoader(sub, batch_size=strategy.eval_mb_size, collate_fn=sub.collate_fn)
        parts = []
        for x, y, t, *_ in loader:
            parts.append({**self.encode(strategy.model, x.to(strategy.device)),
                          "y": y.to(strategy.device), "t": t.to(strategy.device)})
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}

    def update_buffer(self, strategy) -> None:
        """Make room for the experience's classes and store a seeded class-balanced sample of them."""
        dataset = strategy.experience.dataset.eval()
        exp_id = strategy.experience.current_experience
        targets = torch.as_tensor(list(dataset.targets))
        probe = self.encode(strategy.model, dataset[0][0].unsqueeze(0).to(strategy.device))  # bytes per sample
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + exp_id)
        for key, chosen in self.buffer.make_room(exp_id, targets, self.buffer.sample_bytes(probe), gen).items():
            if len(chosen):  # a group with a quota of 0 (more groups than capacity) stays out
                self.buffer.add(key, self._encode_indices(strategy, dataset, chosen))

    def memory_usage(self) -> tuple[int, int]:
        """(stored samples, bytes: hidden states in their stored dtype, masks, label_bytes per sample)."""
        return len(self.buffer), self.buffer.nbytes()

    def before_training_exp(self, strategy, **kwargs) -> None:
        if self.freeze_from_start and not self.frozen:
            self.freeze(strategy.model)
        if self.frozen:
            frozen_to_eval(strategy.model)

    def before_backward(self, strategy, **kwargs) -> None:
        if len(self.buffer):
            strategy.loss = strategy.loss + self.replay_loss(strategy.model, len(strategy.mb_x))

    def after_training_exp(self, strategy, **kwargs) -> None:
        if not self.frozen and not self.train_lower:
            self.freeze(strategy.model)
        self.update_buffer(strategy)
