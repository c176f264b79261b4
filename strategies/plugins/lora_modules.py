"""A frozen Transformer with one LoRA module (peft) + one head per experience, and the routing rule.

``ModularLoRA`` wraps a built clbench Transformer (``blocks``, ``features``; MiniLM, ViT, text
Transformer). ``add_module(name, classes)`` injects a new LoRA adapter with peft
(``inject_adapter_in_model``: one more adapter in the same ``lora.Linear`` layers) into the adapted
blocks and adds a linear head over that experience's classes; earlier modules are frozen. The output
is a (B, n_outputs) logit tensor holding the chosen module's logits at its classes and ``MASKED``
elsewhere, so the usual cross-entropy and argmax accuracy apply unchanged.

Routing: with task labels (task-IL) a sample goes to the module of its task. Without (class-IL,
domain-IL) every module scores the sample and the one with the highest maximum softmax probability
over its own classes wins (Aljundi et al. 2017's Expert Gate uses autoencoder reconstruction error
instead; max-softmax confidence is the simpler rule of Hendrycks & Gimpel 2017's baseline). The
true task label is never read in those settings. Evaluation reuses each frozen module's logits on
inputs it has scored before (module_memo.py): a run of T experiences costs T module passes over the
test set instead of T (T + 1) / 2, with the same outputs.
"""

from __future__ import annotations

import torch
from torch import nn

from strategies.plugins.module_memo import LogitMemo

MASKED = -1e4  # logit of classes outside the chosen module (finite: no NaN in cross-entropy)


#: LoRA target names per model family: HF BERT (MiniLM) names, else the fused projection (ViT, text
#: Transformer ``qkv``)
BERT_TARGETS = ("query", "value")
FUSED_TARGETS = ("qkv",)


def lora_layers(module: nn.Module) -> list[nn.Module]:
    """peft's LoRA-wrapped layers inside ``module``."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    return [m for m in module.modules() if isinstance(m, BaseTunerLayer)]


def default_targets(model: nn.Module) -> list[str]:
    """The Hugging Face encoder's own targets (hf_encoder/minilm: peft's per-architecture defaults, e.g.
    query/value for BERT, q_lin/v_lin for DistilBERT), else query/value when present, else the fused
    ``qkv`` (ViT, text Transformer)."""
    for module in model.modules():  # the backbone may sit inside a wrapper (multi-head, prompts)
        if getattr(module, "lora_targets", None):
            return list(module.lora_targets)
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    return list(BERT_TARGETS if set(BERT_TARGETS) <= names else FUSED_TARGETS)


def adapted_blocks(backbone: nn.Module) -> list[nn.Module]:
    """The blocks the model config fine-tunes (k..n-1, so a prefix cache of blocks < k stays exact); all
    blocks when the config freezes (or trains) the whole encoder."""
    k = getattr(backbone, "frozen_below", None)
    blocks = list(backbone.blocks)
    return blocks[k:] if k is not None and 0 < k < len(blocks) else blocks


class ModularLoRA(nn.Module):
    """Frozen backbone + per-experience (LoRA adapter, head); see the module docstring.

    Args:
        backbone: a built clbench Transformer (has ``blocks``, ``features``, ``frozen_below``).
        n_outputs: width of the returned logits (the scenario's ``n_outputs``).
        lora_config: a ``peft.LoraConfig`` (rank, alpha, dropout, target module names).
        route_by_task: True in task-IL (module = task label); False = confidence routing.
    """

    def __init__(self, backbone: nn.Module, n_outputs: int, lora_config, *, route_by_task: bool) -> None:
        super().__init__()
        self.backbone = backbone.requires_grad_(False)
        self.backbone.cache_features = False  # MiniLM's feature memo would serve stale features
        self.adapted = adapted_blocks(backbone)
        self.lora_config = lora_config
        self.n_outputs = n_outputs
        self.route_by_task = route_by_task
        self.heads = nn.ModuleDict()
        self.classes: dict[str, torch.Tensor] = {}  # module name -> its class ids (C_m,)
        self.module_of_task: dict[int, str] = {}
        self.current: str | None = None  # module trained now (its samples are routed to it)
        self.memo = LogitMemo()  # evaluation only (no gradients): frozen modules score an input once

    def add_module_for(self, name: str, classes: torch.Tensor, task: int) -> int:
        """Add adapter + head ``name`` for ``classes`` of task label ``task``, freeze the other modules;
        returns the number of parameters added."""
        from peft import inject_adapter_in_model

        for block in self.adapted:
            inject_adapter_in_model(self.lora_config, block, adapter_name=name)
        self.heads[name] = nn.Linear(self.backbone.head.in_features, len(classes))  # (D -> C_m)
        self.classes[name] = classes.long().cpu()
        self.module_of_task[task] = name
        self.current = name
        self._activate(name)
        self.heads.requires_grad_(False)
        self.heads[name].requires_grad_(True)
        return sum(p.numel() for n, p in self.named_parameters() if f".{name}." in n or n.startswith(f"heads.{name}."))

    def _activate(self, name: str) -> None:
        for layer in lora_layers(self.backbone):
            layer.set_adapter(name)  # peft also makes only this adapter trainable

    def module_logits(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """Module ``name``'s logits over its own classes (B, C_m)."""
        self._activate(name)
        return self.heads[name](self.backbone.features(x))

    def depends_on(self, name: str) -> list[torch.Tensor]:
        """Parameters module ``name``'s logits depend on: the backbone's except other modules' LoRA
        weights, and its head."""
        own = [p for n, p in self.backbone.named_parameters() if "lora_" not in n or f".{name}." in n]
        return own + list(self.heads[name].parameters())

    def eval_logits(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """``module_logits``, memoised when nothing needs gradients (evaluation)."""
        if self.training or torch.is_grad_enabled():
            return self.module_logits(name, x)
        return self.memo.logits(name, x, self.depends_on(name), lambda sub: self.module_logits(name, sub))

    def _scatter(self, name: str, logits: torch.Tensor) -> torch.Tensor:
        out = logits.new_full((len(logits), self.n_outputs), MASKED)
        out[:, self.classes[name].to(logits.device)] = logits
        return out

    def route(self, x: torch.Tensor, task_labels: torch.Tensor | None) -> list[str | None]:
        """Module name per sample: the current module while training, else by task label or confidence
        (None for a task with no module yet: its logits stay MASKED)."""
        if self.training and self.current is not None:
            return [self.current] * len(x)
        if self.route_by_task:
            return [self.module_of_task.get(int(t)) for t in task_labels]  # None: task not trained yet
        return self._most_confident(x)[0]

    def _most_confident(self, x: torch.Tensor) -> tuple[list[str], dict[str, torch.Tensor]]:
        """Per sample the module with the highest max softmax probability, and every module's logits."""
        logits = {n: self.eval_logits(n, x) for n in self.heads}  # name -> (B, C_m)
        conf = torch.stack([z.softmax(-1).amax(-1) for z in logits.values()])  # (K, B)
        names = list(logits)
        return [names[int(i)] for i in conf.argmax(0)], logits

    def forward(self, x: torch.Tensor, task_labels: torch.Tensor | None = None) -> torch.Tensor:
        if not self.heads:
            raise RuntimeError("ModularLoRA has no module yet: add_module_for runs before the first experience")
        if self.training or self.route_by_task:
            chosen, logits = self.route(x, task_labels), {}
        else:  # the K passes that choose also give the logits: no extra pass
            chosen, logits = self._most_confident(x)
        out = x.new_full((len(x), self.n_outputs), MASKED, dtype=torch.float32)
        for name in dict.fromkeys(c for c in chosen if c is not None):
            idx = torch.tensor([i for i, c in enumerate(chosen) if c == name], device=x.device)
            z = logits[name][idx] if name in logits else self.eval_logits(name, x[idx])
            out[idx] = self._scatter(name, z).to(out.dtype)
        self._activate(self.current)
        return out
