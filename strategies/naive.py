"""Naive fine-tuning: train on each experience in turn, nothing against forgetting (lower bound)."""

from dataclasses import dataclass

from strategies.base import StrategyContext, register


@dataclass(frozen=True)
class NaiveParams:
    """No hyper-parameters beyond the shared training settings."""


@register("naive", params=NaiveParams)
def build(ctx: StrategyContext, p: NaiveParams):
    """Plain fine-tuning (Avalanche Naive)."""
    from avalanche.training import Naive

    return ctx.template(Naive)
