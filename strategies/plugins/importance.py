"""Quadratic-penalty regularisers as in Hsu et al. 2018's code (agents/regularization.py).

L2, EWC, online EWC, SI and MAS there share one form: after each task, store an importance
Omega_k and the parameters theta*_k; while training, add

    reg_coef * sum_k sum_i Omega_k,i (theta_i - theta*_k,i)^2        (no 1/2)

"Separate" methods (EWC) keep one (Omega_k, theta*_k) term per task; "online" ones (L2, online EWC,
SI, MAS) keep a single term: Omega summed over tasks (``decay`` * old + new; Hsu: decay 1) and
theta* = the parameters after the latest task. Subclasses only say how Omega of a task is computed.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from avalanche.training.plugins import SupervisedPlugin

Tensors = dict[str, torch.Tensor]


def trainable(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    """The model's parameters that require gradients, by name."""
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


class QuadraticPenaltyPlugin(SupervisedPlugin):
    """Adds ``reg_lambda * sum_k sum_i Omega_k,i (theta_i - theta*_k,i)^2`` from the 2nd experience on.

    Parameters created after a term was stored (a new task head) are not penalised by that term.
    ``last_penalty`` holds the latest (unweighted) penalty, detached, for inspection.

    Args:
        reg_lambda: penalty strength (Hsu's reg_coef).
        online: keep one accumulated term (True) or one term per experience (False).
        decay: online only: Omega = decay * Omega_old + Omega_new (Hsu: 1; 0 for L2, whose
            Omega is 1 after every experience).
    """

    def __init__(self, *, reg_lambda: float, online: bool, decay: float = 1.0) -> None:
        super().__init__()
        if reg_lambda < 0 or not 0 <= decay <= 1:
            raise ValueError("reg_lambda must be >= 0 and decay in [0, 1]")
        self.reg_lambda, self.online, self.decay = reg_lambda, online, decay
        self.terms: list[tuple[Tensors, Tensors]] = []  # (importance, anchor) by parameter name
        self.last_penalty = torch.zeros(())

    def importance(self, strategy) -> Tensors:  # pragma: no cover - abstract
        """This experience's importance of every trainable parameter (same shapes)."""
        raise NotImplementedError

    def penalty(self, model: torch.nn.Module) -> torch.Tensor:
        """``sum_k sum_i Omega_k,i (theta_i - theta*_k,i)^2`` (0 before the first term)."""
        params = trainable(model)
        total = torch.zeros((), device=next(model.parameters()).device)
        for imp, anchor in self.terms:
            for n, old in anchor.items():
                p = params.get(n)
                if p is not None and p.shape == old.shape:
                    total = total + (imp[n] * (p - old).pow(2)).sum()
        return total

    def penalty_grad(self, name: str, p: torch.Tensor) -> torch.Tensor | None:
        """d(reg_lambda * penalty)/d p for parameter ``name`` (None when no term covers it)."""
        grads = [2 * self.reg_lambda * imp[name] * (p.detach() - anchor[name])
                 for imp, anchor in self.terms if name in anchor and anchor[name].shape == p.shape]
        return sum(grads) if grads else None

    def before_backward(self, strategy, **kwargs) -> None:
        if self.terms and self.reg_lambda > 0:
            pen = self.penalty(strategy.model)
            self.last_penalty = pen.detach()
            strategy.loss = strategy.loss + self.reg_lambda * pen

    def after_training_exp(self, strategy, **kwargs) -> None:
        imp = {n: v.detach() for n, v in self.importance(strategy).items()}
        anchor = {n: p.detach().clone() for n, p in trainable(strategy.model).items() if n in imp}
        if self.online and self.terms:
            old = self.terms[0][0]
            imp = {n: v + self.decay * old[n] if n in old and old[n].shape == v.shape else v for n, v in imp.items()}
        self.terms = [(imp, anchor)] if self.online else [*self.terms, (imp, anchor)]


def seen_columns(strategy) -> torch.Tensor | None:
    """Sorted output columns of the classes seen so far when the run's training loss covers only those.

    That is the class-IL option ``loss_on_seen_classes`` (strategies/plugins/seen_classes.py; Hsu et
    al.'s ``valid_out_dim``): their EWC Fisher and MAS importance passes read the same outputs as the
    loss. None when the loss covers every output.
    """
    crit = getattr(strategy, "_criterion", None)
    seen = getattr(crit, "seen", None)
    if not seen or not getattr(crit, "active", False):
        return None
    return torch.tensor(seen, device=strategy.device)


def restrict(out: torch.Tensor, columns: torch.Tensor | None) -> torch.Tensor:
    """(B, C) outputs -> (B, K) outputs of ``columns`` (all of them when None)."""
    return out if columns is None else out.index_select(1, columns)


def forward_args(model: torch.nn.Module, task: int) -> tuple:
    """Extra forward arguments: the task label for a multi-head (MultiTaskModule) model, else none."""
    from avalanche.models import MultiTaskModule

    return (task,) if isinstance(model, MultiTaskModule) else ()


def experience_batches(strategy, batch_size: int, max_samples: int | None = None) -> Iterator[tuple]:
    """(x, y, task) mini-batches of the experience's training data, each batch of a single task.

    Reads ``strategy.dataset_tensors`` (the fast data path's tensors) when the template has it, else a
    DataLoader. With ``max_samples`` below the experience size, a random subset (global torch RNG).
    """
    dataset = strategy.experience.dataset
    if max_samples is not None and max_samples < len(dataset):
        dataset = dataset.subset(torch.randperm(len(dataset))[:max_samples].tolist())
    reader = getattr(strategy, "dataset_tensors", None)
    fields = reader(dataset) if reader is not None else None
    if fields is not None:
        batches = ([f[i:i + batch_size] for f in fields[:3]] for i in range(0, len(fields[0]), batch_size))
    else:
        batches = iter(torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False,
                                                   collate_fn=getattr(dataset, "collate_fn", None)))
    for batch in batches:
        x, y, t = (f.to(strategy.device) for f in batch[:3])
        for task in torch.unique(t).tolist():
            keep = t == task
            yield x[keep], y[keep], int(task)
