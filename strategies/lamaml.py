"""La-MAML (Gupta et al. 2020, "Look-ahead Meta Learning for Continual Learning").

Avalanche's ``LaMAML`` of ``avalanche.training.supervised.lamaml_v2`` (torch.func, no ``higher``;
the older ``supervised.lamaml`` needs ``higher``, which installs and runs with torch 2.14 but keeps
no memory of its own). Per mini-batch: ``n_inner_updates`` SGD steps on chunks of the current
batch with learnable per-parameter learning rates (alpha), each followed by the meta-loss of the fast
weights on the current batch + ``buffer_mb_size`` samples of a reservoir buffer; the meta-gradient
(second order) updates the alphas (SGD, ``lr_alpha``) and then the weights by ``relu(alpha) * grad``
(``sync_update=False``): the optimizer of the run is not used.

Differences from the paper and from Avalanche: the model keeps the run's initial weights (Avalanche's
``LaMAML`` re-initialises every Linear layer, which would erase a pretrained encoder); only trainable
parameters get fast weights and alphas (a frozen encoder stays frozen; Avalanche's code differentiates
every parameter and fails on frozen ones). Defaults are the paper's MNIST settings as released
(github.com/montrealrobotics/La-MAML, run_experiments.sh, La-MAML rows of MNIST rotations and
permutations: ``--alpha_init 0.15 --opt_lr 0.3 --memories 200 --replay_batch_size 10 --glances 5``, and
parser.py's ``--grad_clip_norm 2.0``): alpha_init 0.15, lr_alpha 0.3, gradient clip 2.0, buffer 200 with
10 samples a step, 5 inner updates (Avalanche's 0.1 / 0.25 / 1.0 before). Remaining differences: the
inner loop takes ``n_inner_updates`` chunks of a mini-batch (theirs: one sample at a time over batches
of 10, repeated for 5 glances); ``second_order`` is on (their scripts leave it off: first order).
"""

from dataclasses import dataclass

import torch
from torch import nn

from benchmarks.core import check
from strategies.base import StrategyContext, register


@dataclass(frozen=True)
class LaMAMLParams:
    """Args: n_inner_updates: inner SGD steps (chunks of each mini-batch); second_order: meta-gradient
    through the inner steps; alpha_init: initial per-parameter learning rate; lr_alpha: SGD rate of the
    alphas; grad_clip_norm: clip of inner gradients (per value) and meta-gradients (norm);
    mem_size: reservoir buffer (samples); buffer_mb_size: buffer samples added to each meta-loss."""

    n_inner_updates: int = 5
    second_order: bool = True
    alpha_init: float = 0.15
    lr_alpha: float = 0.3
    grad_clip_norm: float = 2.0
    mem_size: int = 200
    buffer_mb_size: int = 10

    def __post_init__(self) -> None:
        check(self.n_inner_updates >= 1, "n_inner_updates must be >= 1")
        check(self.alpha_init > 0 and self.lr_alpha >= 0, "alpha_init must be > 0 and lr_alpha >= 0")
        check(self.grad_clip_norm > 0, "grad_clip_norm must be > 0")
        check(self.mem_size >= 1 and self.buffer_mb_size >= 1, "mem_size and buffer_mb_size must be >= 1")


class TrainableView(nn.Module):
    """``model`` with only its trainable parameters listed by ``parameters()``/``named_parameters()``.

    La-MAML makes fast weights and alphas for every listed parameter; frozen ones stay the module's
    own (``torch.func.functional_call`` leaves parameters it is not given in place).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.inner = model

    def named_parameters(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        return ((n, p) for n, p in super().named_parameters(prefix, recurse, remove_duplicate) if p.requires_grad)

    def parameters(self, recurse: bool = True):
        return (p for _, p in self.named_parameters(recurse=recurse))

    def forward(self, x: torch.Tensor, task_labels: torch.Tensor | None = None):
        return self.inner(x, task_labels)  # single-head models ignore the labels


def _lamaml_class(base: type) -> type:
    """LaMAML whose forward (metrics after each step, evaluation) passes task labels, whose buffer is
    shown as ``storage_policy`` (so results count its samples) and whose inner
    loop skips empty chunks (ceil(B / n) chunks of a batch of B leave the last ones empty, e.g. B = 16,
    n = 5: a multi-head model's output on no sample has no gradient and Avalanche's code fails)."""

    class LaMAMLFixed(base):
        def forward(self):
            return self.model(self.mb_x, self.mb_task_id)

        @property
        def storage_policy(self):  # the reservoir buffer, where the run's memory accounting looks
            return self.buffer.storage_policy

        def inner_update_step(self, fast_params, x, y, t):
            return fast_params if len(x) == 0 else super().inner_update_step(fast_params, x, y, t)

    return LaMAMLFixed


@register("lamaml", params=LaMAMLParams)
def build(ctx: StrategyContext, p: LaMAMLParams):
    """Avalanche LaMAML (lamaml_v2) on the trainable parameters, initial weights kept."""
    from avalanche.training.supervised.lamaml_v2 import LaMAML

    view = TrainableView(ctx.model)
    initial = {k: v.clone() for k, v in ctx.model.state_dict().items()}
    strategy = ctx.template(
        _lamaml_class(LaMAML), model=view, n_inner_updates=p.n_inner_updates, second_order=p.second_order,
        grad_clip_norm=p.grad_clip_norm, learn_lr=True, lr_alpha=p.lr_alpha, sync_update=False,
        alpha_init=p.alpha_init, max_buffer_size=p.mem_size, buffer_mb_size=p.buffer_mb_size,
    )
    ctx.model.load_state_dict(initial)  # undo LaMAML's re-initialisation
    return strategy
