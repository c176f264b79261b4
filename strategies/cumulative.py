"""Cumulative: at each experience, keep training the same model on all data seen so far."""

from dataclasses import dataclass

from strategies.base import StrategyContext, register


@dataclass(frozen=True)
class CumulativeParams:
    """No hyper-parameters; memory grows with every experience (all past data is kept)."""


@register("cumulative", params=CumulativeParams)
def build(ctx: StrategyContext, p: CumulativeParams):
    """Avalanche Cumulative: fine-tune on the union of experiences 0..i."""
    from avalanche.training import Cumulative

    return ctx.template(Cumulative)
