"""A mixture of LoRA experts (peft) in a frozen Transformer's adapted blocks, with per-experience routers.

``attach_experts(backbone, n_experts, top_k, lora_config, ...)`` changes the backbone in place; per
adapted block (lora_modules.adapted_blocks: MiniLM ``frozen_layers = 5`` -> block 5 only, so the prefix
cache of blocks 0-4 stays exact):

- ``n_experts`` peft LoRA adapters ``expert0..`` in the block's target Linear layers
  (``inject_adapter_in_model``, as strategies/plugins/lora_modules.py). peft's own forward adds the
  active adapters with one weight for the whole batch; a mixture weighs each sample's experts, so
  peft's forward is switched off for them (``enable_adapters(False)``) and a forward hook adds
  ``sum_e gates[:, e] * scaling_e * B_e(A_e(x))``, computing expert e only on the samples routed to it;
- one ``NoisyTopKRouter`` per experience (``block.moe_routers``), fed by the block input's first token
  (B, D); a forward pre-hook on the block sets the gates its LoRA layers read.

Which experience's router a sample uses (``Routing.choice``) is chosen once per forward, at the first
adapted block, whose input is the frozen prefix's output: while training, the current experience's;
in evaluation the task label's when ``route_by_task``, else the experience whose selector
(strategies/plugins/pca_selector.py) reconstructs that input best.

``BlockMixture`` also counts each expert's top-k picks while training (MoE-Adapters' ``choose_map``,
used to freeze the most-used experts) and keeps the top-k sets chosen in evaluation (router forgetting).
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from strategies.plugins.lora_modules import adapted_blocks, lora_layers
from strategies.plugins.pca_selector import PCASelector

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

    def forward(self, h: torch.Tensor, noisy: bool | None = None) -> torch.Tensor:
        """Gates (B, E) of inputs h (B, D): k non-zero entries per row, summing to 1; ``noisy`` (default:
        this module's training mode) adds the gating noise. A mixture passes the *model's* mode: a router
        inside a frozen block (kept in eval mode by the backbone) still trains with noise."""
        logits = h @ self.w_gate  # (B, E)
        if self.training if noisy is None else noisy:
            logits = logits + torch.randn_like(logits) * (F.softplus(h @ self.w_noise) + NOISE_EPS)
        top, idx = logits.topk(self.top_k, dim=1)  # (B, k)
        return torch.zeros_like(logits).scatter(1, idx, top.softmax(1))


class Routing:
    """Per forward pass: the router index of each sample, shared by the blocks (see the module docstring).

    Args:
        selector: the experience selector (its ``fit`` data is collected here while training).
        route_by_task: in evaluation, use the task labels (task-IL) instead of the selector.
    """

    def __init__(self, selector: PCASelector, *, route_by_task: bool) -> None:
        self.selector, self.route_by_task = selector, route_by_task
        self.current = -1  # experience being trained (its router)
        self.training = False  # mode of the model's forward in flight (backbone pre-hook)
        self.task_labels: torch.Tensor | None = None  # of the forward in flight (backbone pre-hook)
        self.choice: torch.Tensor | None = None  # (B,) router index per sample
        self.eval_choice: list[torch.Tensor] = []  # (B,) per evaluated batch

    def capture(self, model: nn.Module, args: tuple, kwargs: dict) -> None:
        """Backbone forward pre-hook: keep the task labels of model(x, task_labels) and the model's mode
        (the blocks' own mode is eval when the config freezes them, e.g. MiniLM ``frozen_layers = 6``)."""
        self.task_labels = args[1] if len(args) > 1 else kwargs.get("task_labels")
        self.training = model.training

    def choose(self, h: torch.Tensor, training: bool) -> None:
        """Router index per sample of first-token states h (B, D) at the first adapted block."""
        if training:
            self.choice = torch.full((len(h),), self.current, device=h.device)
            self.selector.collect(h)
            return
        if self.route_by_task and self.task_labels is not None and len(self.task_labels) == len(h):
            self.choice = self.task_labels.to(h.device).long()
        else:
            self.choice = self.selector.select(h)
        self.eval_choice.append(self.choice.cpu())


class BlockMixture:
    """One block's routers, its LoRA layers holding the experts, and its routing records.

    Args:
        block: the Transformer block (its LoRA layers already injected, ``moe_routers`` set).
        names: adapter names of the experts, in router order.
        routing: the shared per-sample router choice.
        first: this is the first adapted block (it makes the choice).
    """

    def __init__(self, block: nn.Module, names: list[str], routing: Routing, first: bool) -> None:
        self.routers, self.names, self.layers = block.moe_routers, names, lora_layers(block)
        self.routing, self.first = routing, first
        self.top_k = self.routers[0].top_k
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
        h = args[0][:, 0].float()  # block input (B, L, D) -> first token (B, D)
        training = self.routing.training  # the model's mode: frozen blocks (and their routers) stay in eval
        if self.first:
            self.routing.choose(h, training)
        choice = self.routing.choice
        self.gates = h.new_zeros(len(h), len(self.names))
        for r in choice.unique().tolist():
            idx = (choice == r).nonzero().squeeze(1)
            self.gates = self.gates.index_put((idx,), self.routers[r](h[idx], noisy=training))
        picked = self.gates.detach().topk(self.top_k, dim=1).indices  # (B, k)
        if training:
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
        """Experts not frozen and the current experience's router train; the rest does not."""
        for e in range(len(self.names)):
            for p in self.expert_parameters(e):
                p.requires_grad_(e not in self.frozen)
        for r, router in enumerate(self.routers):
            router.requires_grad_(r == self.routing.current)

    def most_used(self, *, freeze: bool) -> list[int]:
        """The k experts picked most often since the last call (sorted); frozen when ``freeze``."""
        used = sorted(self.counts.topk(self.top_k).indices.tolist())
        self.counts.zero_()
        if freeze:
            self.frozen.update(used)
            self.set_trainable()
        return used


def attach_experts(backbone: nn.Module, n_experts: int, top_k: int, lora_config, *, n_routers: int,
                   selector_dims: int, route_by_task: bool) -> list[BlockMixture]:
    """Freeze ``backbone`` (its head excepted); add E LoRA experts and ``n_routers`` routers (one per
    experience) to each adapted block, and the experience selector (``backbone.moe_selector``)."""
    from peft import inject_adapter_in_model

    backbone.requires_grad_(False)
    backbone.head.requires_grad_(True)
    backbone.cache_features = False  # MiniLM's pooled-feature memo would serve features without experts
    blocks = adapted_blocks(backbone)
    dim = backbone.head.in_features  # D: the blocks' width
    backbone.moe_selector = PCASelector(dim, n_routers, selector_dims)
    routing = Routing(backbone.moe_selector, route_by_task=route_by_task)
    backbone.register_forward_pre_hook(routing.capture, with_kwargs=True)
    names = [f"expert{e}" for e in range(n_experts)]
    mixtures = []
    for i, block in enumerate(blocks):
        with warnings.catch_warnings():  # peft warns that a second adapter joins the first: meant here
            warnings.filterwarnings("ignore", message="Already found a `peft_config`")
            for name in names:
                inject_adapter_in_model(lora_config, block, adapter_name=name)
        # after peft, which freezes every non-adapter parameter it sees
        block.moe_routers = nn.ModuleList(NoisyTopKRouter(dim, n_experts, top_k) for _ in range(n_routers))
        mixtures.append(BlockMixture(block, names, routing, first=i == 0))
    return mixtures
