"""Joint (offline upper bound): at step i a fresh model is trained on the union of experiences 0..i.

The last row of the accuracy matrix is the usual offline joint-training upper bound (Hsu et al.
2018 "Offline"); earlier rows give the upper-bound curve after each step. Implemented as Avalanche's
Cumulative template plus a plugin that re-initialises the model and the optimizer state first.

``final_only = true`` trains (and evaluates) at the last step only: one model on all the data, the
number papers report, at T units of training instead of 1 + 2 + ... + T (CLINC150's 10 domains: 10
instead of 55). Rows 0..T-2 of its matrix are then missing (JSON null), and so are the metrics that need
them (forgetting, BWT, FWT, average incremental accuracy); ACC is the same kind of number. Steps before
the last still pass through the template with 0 epochs, so its cumulative dataset and the seen-classes
loss see every experience, as when each step is trained.
"""

from dataclasses import dataclass

from avalanche.training.plugins import SupervisedPlugin

from strategies.base import StrategyContext, register
from strategies.plugins.reset import ResetModelPlugin


@dataclass(frozen=True)
class JointParams:
    """Args: final_only: train and evaluate at the last experience only (no upper-bound curve); memory =
    all past data."""

    final_only: bool = False


class FinalOnlyPlugin(SupervisedPlugin):
    """0 training epochs on every experience but the last (the template still accumulates its data)."""

    def __init__(self, n_experiences: int) -> None:
        super().__init__()
        self.last = n_experiences - 1
        self.epochs: int | None = None

    def before_training_exp(self, strategy, **kwargs) -> None:
        if self.epochs is None:
            self.epochs = strategy.train_epochs
        strategy.train_epochs = self.epochs if strategy.experience.current_experience >= self.last else 0


@register("joint", params=JointParams)
def build(ctx: StrategyContext, p: JointParams):
    """Offline training from scratch on all data seen so far (or, final_only, on all data once)."""
    from avalanche.training import Cumulative

    plugins = [ResetModelPlugin(ctx.model, seed=ctx.seed)]
    if p.final_only:
        plugins.append(FinalOnlyPlugin(ctx.info.n_experiences))
    strategy = ctx.template(Cumulative, plugins=plugins)
    strategy.final_only = p.final_only  # the runner evaluates the last experience only
    return strategy
