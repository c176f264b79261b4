"""A mixture of LoRA experts (peft) in a frozen Transformer's adapted blocks, with a noisy top-k router.

``attach_experts(backbone, n_experts, top_k, lora_config)`` changes the backbone in place; per adapted
block (lora_modules.adapted_blocks: MiniLM ``frozen_layers = 5`` -> block 5 only, so the prefix cache
of blocks 0-4 stays exact):

- ``n_experts`` peft LoRA adapters ``expert0..`` in the block's target Linear layers
  (``inject_adapter_in_model``, as strategies/plugins/lora_modules.py). peft's own forward adds the
  active adapters with one weight for the whole batch; a mixture weighs each sample's experts, so
  peft's forward is switched off for them (``enable_adapters(False)``) and a forward hook adds
  ``sum_e gates[:, e] * scaling_e * B_e(A_e(x))``, computing expert e only on the samples routed to it;
- a ``NoisyTopKRouter`` (``block.moe_router``) fed by the block input's first token (B, D); a
  forward pre-hook on the block sets the gates its LoRA layers read.

``BlockMixture`` also counts each expert's top-k picks while training (MoE-Adapters' ``choose_map``,
used to freeze the most-used experts) and keeps the top-k sets chosen in evaluation (router forgetting).
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from strategies.plugins.lora_modules import adapted_blocks, lora_layers

NOISE_EPS = 1e-2  # MoE-Adapters' noise_epsilon (Shazeer et al. 2017's noisy top-k gating)


class NoisyTopKRouter(nn.Module):
    """Noisy top-k gating: logits h W_g (+ N(0, 1) (softplus(h W_n) + 0.01) while training), softmax over
    the k largest, 0 elsewhere. Weights start at zero, as in MoE-Adapters.

    Args:
        dim: input width D.
        n_experts: number of experts E.
        top_k: experts per sample k.
    """

    def __init__(self, dim: int, n_experts: int, top_k: int) -> None:
        super().__init__()
        self.top_k = top_k
        self.w_gate = nn.Parameter(torch.zeros(dim, n_experts))
        self.w_noise = nn.Parameter(torch.zeros(dim, n_experts))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Gates (B, E) of inputs h (B, D): k non-zero entries per row, summing to 1."""
        logits = h @ self.w_gate  # (B, E)
        if self.training:
            logits = logits + torch.randn_like(logits) * (F.softplus(h @ self.w_noise) + NOISE_EPS)
        top, idx = logits.topk(self.top_k, dim=1)  # (B, k)
        return torch.zeros_like(logits).scatter(1, idx, top.softmax(1))


class BlockMixture:
    """One block's router, its LoRA layers holding the experts, and its routing records.

    Args:
        block: the Transformer block (its LoRA layers already injected).
        router: the block's router (registered on the block as ``moe_router``).
        names: adapter names of the experts, in router order.
    """

    def __init__(self, block: nn.Module, router: NoisyTopKRouter, names: list[str]) -> None:
        self.router, self.names, self.layers = router, names, lora_layers(block)
        self.gates: torch.Tensor | None = None  # (B, E) of the batch in flight
        self.counts = torch.zeros(len(names), dtype=torch.long)  # top-k picks per expert while training
        self.eval_topk: list[torch.Tensor] = []  # (B, k) sorted expert ids per evaluated batch
        self.frozen: set[int] = set()
        block.register_forward_pre_hook(self._route)
        for layer in self.layers:
            layer.enable_adapters(False)  # base output only from peft; the mixture is added by _mix
            layer.register_forward_hook(self._mix)
        self.set_trainable()

    def _route(self, block: nn.Module, args: tuple) -> None:
        self.gates = self.router(args[0][:, 0].float())  # block input (B, L, D) -> first token (B, D)
        picked = self.gates.detach().topk(self.router.top_k, dim=1).indices  # (B, k)
        if self.router.training:
            self.counts += torch.bincount(picked.flatten().cpu(), minlength=len(self.names))
        else:
            self.eval_topk.append(picked.sort(dim=1).values.cpu())

    def _mix(self, layer: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
        x = args[0]  # (B, ..., D_in)
        for e, name in enumerate(self.names):
            idx = self.gates[:, e].nonzero().squeeze(1)  # samples routed to expert e
            if len(idx) == 0:
                continue
            delta = layer.lora_B[name](layer.lora_A[name](layer.lora_dropout[name](x[idx]))) * layer.scaling[name]
            weight = self.gates[idx, e].view(-1, *[1] * (x.dim() - 1)).to(delta.dtype)
            out = out.index_add(0, idx, delta * weight)
        return out

    def expert_parameters(self, e: int) -> list[nn.Parameter]:
        """Expert e's LoRA A and B weights in every layer of the block."""
        name = self.names[e]
        return [p for layer in self.layers for m in (layer.lora_A[name], layer.lora_B[name]) for p in m.parameters()]

    def set_trainable(self) -> None:
        """Experts not frozen and the router train; frozen experts do not."""
        for e in range(len(self.names)):
            for p in self.expert_parameters(e):
                p.requires_grad_(e not in self.frozen)
        self.router.requires_grad_(True)

    def most_used(self, *, freeze: bool) -> list[int]:
        """The k experts picked most often since the last call (sorted); frozen when ``freeze``."""
        used = sorted(self.counts.topk(self.router.top_k).indices.tolist())
        self.counts.zero_()
        if freeze:
            self.frozen.update(used)
            self.set_trainable()
        return used


def attach_experts(backbone: nn.Module, n_experts: int, top_k: int, lora_config) -> list[BlockMixture]:
    """Freeze ``backbone`` (its head excepted) and add E LoRA experts + a router to each adapted block."""
    from peft import inject_adapter_in_model

    backbone.requires_grad_(False)
    backbone.head.requires_grad_(True)
    backbone.cache_features = False  # MiniLM's pooled-feature memo would serve features without experts
    names = [f"expert{e}" for e in range(n_experts)]
    mixtures = []
    for block in adapted_blocks(backbone):
        with warnings.catch_warnings():  # peft warns that a second adapter joins the first: meant here
            warnings.filterwarnings("ignore", message="Already found a `peft_config`")
            for name in names:
                inject_adapter_in_model(lora_config, block, adapter_name=name)
        router = NoisyTopKRouter(backbone.head.in_features, n_experts, top_k)
        block.moe_router = router  # after peft, which freezes every non-adapter parameter it sees
        mixtures.append(BlockMixture(block, router, names))
    return mixtures
