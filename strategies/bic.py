"""BiC, Bias Correction (Wu et al. 2019): replay, then a per-class bias layer fitted on held-out memory.

Avalanche 0.6.0's BiCPlugin builds ``MultiStepLR(..., verbose=False)``, a keyword torch 2.14 removed.
clbench makes it work by giving the plugin module a MultiStepLR that drops ``verbose`` (the only
change; the scheduler is the same). Defaults: memory 4400, validation 10% of it, stage-2 epochs 200
(Avalanche's defaults), distillation T=2.
"""

from dataclasses import dataclass

from benchmarks.core import check
from strategies.base import StrategyContext, register


@dataclass(frozen=True)
class BiCParams:
    """Args: mem_size; val_percentage of memory kept for bias correction; stage_2_epochs; T."""

    mem_size: int = 4400
    val_percentage: float = 0.1
    stage_2_epochs: int = 200
    T: int = 2

    def __post_init__(self) -> None:
        check(self.mem_size >= 1, "mem_size must be >= 1")
        check(0 < self.val_percentage < 1, "val_percentage must be in (0, 1)")
        check(self.stage_2_epochs >= 1 and self.T >= 1, "stage_2_epochs and T must be >= 1")


def patch_bic_scheduler() -> None:
    """Let avalanche's BiCPlugin construct its MultiStepLR on torch versions without ``verbose``."""
    import inspect

    from avalanche.training.plugins import bic
    from torch.optim.lr_scheduler import MultiStepLR

    if "verbose" in inspect.signature(MultiStepLR).parameters or getattr(bic.MultiStepLR, "_clbench", False):
        return

    class _MultiStepLR(MultiStepLR):
        _clbench = True

        def __init__(self, *args, verbose=None, **kwargs):
            super().__init__(*args, **kwargs)

    bic.MultiStepLR = _MultiStepLR


@register("bic", params=BiCParams, settings=("class_il",), why_not="the bias layer corrects old vs new classes")
def build(ctx: StrategyContext, p: BiCParams):
    """Naive + BiCPlugin (with the torch 2.14 scheduler fix)."""
    from avalanche.training import Naive
    from avalanche.training.plugins import BiCPlugin

    patch_bic_scheduler()
    plugin = BiCPlugin(mem_size=p.mem_size, val_percentage=p.val_percentage, stage_2_epochs=p.stage_2_epochs, T=p.T)
    return ctx.template(Naive, plugins=[plugin])
