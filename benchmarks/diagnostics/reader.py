"""Per-block pooled representations and attention maps of a Transformer on a fixed set of inputs.

Works with any model of benchmarks/models/transformer_api.py that keeps its blocks in
``model.blocks`` (ViT, text_transformer, MiniLM): a forward hook on each block takes its output
hidden states (B, L, D) (the first element when a block returns a tuple), pooled by a mean over real
tokens; maps come from ``encode``/``decode(output_attentions=True)``. Everything runs in eval mode
under no_grad, with no random draw, so reading a model changes neither it nor the run's RNG.

Frozen prefix: while ``model.frozen_below = k`` (> 0), blocks < k cannot change, so their outputs on
a set and the layer-k hidden states are computed once and reused (while the frozen parameters keep
their storage and version counters); afterwards only blocks k.. run (``decode(start=k)``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from benchmarks.models.text_backbone import TextBackbone, trim_padding
from strategies.plugins.attention_reg import head_labels
from strategies.plugins.modes import eval_mode


@dataclass
class Readout:
    """What a model computes on one set: per block, pooled representation (N, D) and, when asked,
    attention maps (N, H, L, L); ``mask`` (N, L) marks real tokens."""

    reps: list[torch.Tensor]
    maps: list[torch.Tensor]
    mask: torch.Tensor


@dataclass
class _Part:
    """One pass over the set: hidden states where it stopped (N, L, D), mask, per-block reps and maps."""

    hidden: torch.Tensor
    mask: torch.Tensor
    reps: list[torch.Tensor]
    maps: list[torch.Tensor]


def prepare_inputs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Inputs as the reader uses them: text sets lose their all-padding tail (exact; maps get shorter)."""
    return trim_padding(x) if isinstance(model, TextBackbone) else x


class LayerReader:
    """Reads one fixed input set through a model's blocks, batch by batch.

    Args:
        x: (N, ...) inputs (see ``prepare_inputs``); moved to the model's device when read.
        t: (N,) task labels (they route a multi-head; the head's output is not used).
        batch_size: inputs per forward pass.
        with_maps: also keep the attention maps.
    """

    def __init__(self, x: torch.Tensor, t: torch.Tensor, *, batch_size: int, with_maps: bool) -> None:
        self.x, self.t, self.batch_size, self.with_maps = x, t, batch_size, with_maps
        self.cache: tuple[tuple, _Part] | None = None  # (key of the frozen prefix, its outputs)

    def read(self, model: nn.Module) -> Readout:
        """Pooled outputs (and maps) of every block of ``model`` on the set."""
        device = next(model.parameters()).device  # the strategy moves the model at its first experience
        if self.x.device != device:
            self.x, self.t, self.cache = self.x.to(device), self.t.to(device), None
        k = getattr(model, "frozen_below", None) or 0  # None (nothing frozen) -> 0
        with eval_mode(model), torch.no_grad():
            low = self._prefix(model, k)
            if k == model.n_layers:
                return Readout(low.reps, low.maps, low.mask)
            high = self._pass(model, lambda s, t: model.decode(
                low.hidden[s : s + self.batch_size], low.mask[s : s + self.batch_size], start=k,
                task_labels=head_labels(model, len(t), t.device), output_attentions=self.with_maps)[1])
        return Readout(low.reps + high.reps, low.maps + high.maps, low.mask)

    def _prefix(self, model: nn.Module, k: int) -> _Part:
        """Embedding and blocks < k; cached while they are frozen (same parameters, same outputs)."""
        key = (k, _stamp(model)) if k else None
        if key is not None and self.cache is not None and self.cache[0] == key:
            return self.cache[1]
        part = self._pass(model, lambda s, t: model.encode(
            self.x[s : s + self.batch_size], upto=k, output_attentions=self.with_maps))
        if key is not None:
            self.cache = (key, part)
        return part

    def _pass(self, model: nn.Module, step) -> _Part:
        """Run ``step(start, task_labels) -> TransformerOutput`` on every batch, capturing block outputs."""
        rows: list[tuple] = []
        for s in range(0, len(self.x), self.batch_size):
            captured: list[torch.Tensor] = []
            hooks = [b.register_forward_hook(_capture_into(captured)) for b in model.blocks]
            try:
                out = step(s, self.t[s : s + self.batch_size])
            finally:
                for h in hooks:
                    h.remove()
            rows.append((out.hidden, out.mask, [_pool(h, out.mask) for h in captured], list(out.attentions)))
        cols = list(zip(*rows))
        return _Part(torch.cat(cols[0]), torch.cat(cols[1]), _per_block(cols[2]), _per_block(cols[3]))


def _stamp(model: nn.Module) -> tuple:
    """Identity of the frozen parameters' current values: storage and in-place version counter of
    each (``load_state_dict``, a reset or any in-place edit bumps it); O(number of tensors), unlike a
    content hash of MiniLM's 19M frozen weights."""
    return tuple((p.data_ptr(), p._version) for p in model.parameters() if not p.requires_grad)


def _per_block(batches: tuple[list[torch.Tensor], ...]) -> list[torch.Tensor]:
    """Per batch, a list over blocks -> per block, the batches concatenated."""
    return [torch.cat(blocks) for blocks in zip(*batches)]


def _capture_into(captured: list[torch.Tensor]):
    """A forward hook appending a block's output hidden states (B, L, D) to ``captured`` (ViT and
    text_transformer blocks return (hidden, probs), a BertLayer its hidden states)."""

    def hook(module, args, out) -> None:
        captured.append((out[0] if isinstance(out, tuple) else out).detach())

    return hook


def _pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over real tokens: (B, L, D) -> (B, D) (before the model's final norm, if any)."""
    m = mask[:, : hidden.shape[1], None].to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)
