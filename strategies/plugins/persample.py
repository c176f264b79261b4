"""Per-sample gradient statistics without a Python loop of batch-1 backward passes.

``mean_per_sample(model, batches, loss_of, stat)`` = (1/N) sum_n stat(d loss_of(f(x_n), y_n) / d theta)
for every trainable parameter: EWC's Fisher diagonal (stat = square, loss = cross-entropy) and
Aljundi et al.'s MAS importance (stat = abs, loss = squared L2 norm of the output). ``loss_of``
returns the SUM of the per-sample losses of a batch; the model must treat samples independently
(eval mode: no batch statistics).

Two exact paths: when every trainable parameter belongs to an nn.Linear applied once to 2-D inputs
(MLPs), the per-sample gradient of a weight is the outer product g_n a_n^T of the output gradient and
the input, and stat(g a^T) = stat(g) stat(a)^T for square and abs, so the sum over samples is one
matrix product stat(G)^T stat(A) (Goodfellow 2015's trick): no per-sample tensor is built. Otherwise
torch.func's vmap(grad) computes per-sample gradients in chunks sized to ``BUDGET`` floats. A model
whose forward vmap cannot batch (an op with a data-dependent output shape, e.g. the text Transformers'
``trim_padding``, which drops the batch's all-padding tail with ``nonzero``) falls back to the reference
definition itself: one batch-1 backward pass per sample (exact, slower; the fallback is remembered for
the rest of the call).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch.func import functional_call, grad, vmap

from strategies.plugins.importance import Tensors, forward_args, restrict, trainable

#: floats of per-sample gradients held at once on the vmap path (2**26 floats = 256 MiB)
BUDGET = 2**26
#: samples per forward pass of an importance computation
PASS_BATCH = 1024


def chunk_size(model: torch.nn.Module, budget: int = BUDGET, most: int = 256) -> int:
    """Samples per vmap chunk so that the chunk's per-sample gradients fit in ``budget`` floats."""
    n_params = sum(p.numel() for p in trainable(model).values())
    return max(1, min(most, budget // max(n_params, 1)))


def _linear_sums(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, extra: tuple, loss_of, stat,
                 total: Tensors) -> bool:
    """Add sum_n stat(per-sample grad) of one batch to ``total`` via Linear factorisation (False: n/a)."""
    names = {id(p): n for n, p in trainable(model).items()}
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    if not set(names) <= {id(p) for m in linears for p in m.parameters(recurse=False)}:
        return False  # a parameter outside nn.Linear layers
    seen: dict[torch.nn.Module, list] = {}

    def keep(module, inputs, output):
        seen.setdefault(module, []).append((inputs[0], output))

    hooks = [m.register_forward_hook(keep) for m in linears]
    try:
        with torch.enable_grad():
            loss = loss_of(model(x, *extra), y)
    finally:
        for h in hooks:
            h.remove()
    if any(len(calls) != 1 or calls[0][0].dim() != 2 for calls in seen.values()):
        return False  # a layer used twice or on sequences: per-sample gradients do not factorise
    outs = [calls[0][1] for calls in seen.values()]
    grads = torch.autograd.grad(loss, outs, allow_unused=True)
    for (m, calls), g in zip(seen.items(), grads):
        if g is None:
            continue
        a, g = stat(calls[0][0].detach()), stat(g)  # (B, in), (B, out)
        if id(m.weight) in names:
            total[names[id(m.weight)]] += g.T @ a  # (out, in)
        if m.bias is not None and id(m.bias) in names:
            total[names[id(m.bias)]] += g.sum(0)
    return True


def _vmap_sums(model, params: Tensors, buffers: Tensors, x, y, extra: tuple, loss_of, stat, total: Tensors) -> None:
    """Add sum_n stat(per-sample grad) of one batch to ``total`` with vmap(grad), in chunks."""

    def sample_loss(p: Tensors, xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, (p, buffers), (xi.unsqueeze(0), *extra))  # (1, C)
        return loss_of(out, yi.unsqueeze(0))

    step, part = chunk_size(model), {n: torch.zeros_like(t) for n, t in total.items()}
    for i in range(0, len(x), step):
        grads = vmap(grad(sample_loss), in_dims=(None, 0, 0))(params, x[i:i + step], y[i:i + step])
        for n, g in grads.items():  # (B, *shape)
            part[n] += stat(g).sum(0)
    for n, v in part.items():  # added only once the whole batch went through (a failure adds nothing)
        total[n] += v


def _loop_sums(model, x, y, extra: tuple, loss_of, stat, total: Tensors) -> None:
    """Add sum_n stat(per-sample grad) of one batch to ``total`` with one batch-1 backward per sample."""
    params = trainable(model)
    names, tensors = list(params), list(params.values())
    for i in range(len(x)):
        loss = loss_of(model(x[i:i + 1], *extra), y[i:i + 1])
        for n, g in zip(names, torch.autograd.grad(loss, tensors, allow_unused=True)):
            if g is not None:  # a parameter the sample's path does not use (e.g. another task's head)
                total[n] += stat(g)


def mean_per_sample(
    model: torch.nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor, int]],
    loss_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    stat: Callable[[torch.Tensor], torch.Tensor],
) -> Tensors:
    """Mean over samples of ``stat(per-sample gradient)``, the model in eval mode (restored after).

    Args:
        model: the network (a multi-head model gets each batch's task label).
        batches: (x, y, task) batches of one task each (see ``experience_batches``).
        loss_of: summed loss of a batch's outputs (B, C) and targets (B,).
        stat: elementwise statistic of a gradient (e.g. ``torch.square``).
    """
    params = {n: p.detach() for n, p in trainable(model).items()}
    buffers = dict(model.named_buffers())
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    count, was_training, vmappable = 0, model.training, True
    model.eval()
    try:
        for x, y, task in batches:
            extra = forward_args(model, task)
            if _linear_sums(model, x, y, extra, loss_of, stat, total):
                pass
            elif vmappable:
                try:
                    _vmap_sums(model, params, buffers, x, y, extra, loss_of, stat, total)
                except RuntimeError as e:  # e.g. "vmap: We do not support ... dynamic shape" (nonzero)
                    if "vmap" not in str(e):
                        raise
                    vmappable = False
                    _loop_sums(model, x, y, extra, loss_of, stat, total)
            else:
                _loop_sums(model, x, y, extra, loss_of, stat, total)
            count += len(x)
    finally:
        model.train(was_training)
    return {n: v / max(count, 1) for n, v in total.items()}


def predicted_labels(model: torch.nn.Module, x: torch.Tensor, task: int,
                     columns: torch.Tensor | None = None) -> torch.Tensor:
    """The model's argmax for each input (Hsu et al.'s Fisher labels), among ``columns`` when given."""
    with torch.no_grad():
        return restrict(model(x, *forward_args(model, task)), columns).argmax(1)
