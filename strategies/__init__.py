"""Registered strategies: one file each. Importing this package registers all of them."""

from strategies import (  # noqa: F401  (each module registers itself)
    agem,
    attn_reg,
    bic,
    coreset_replay,
    cumulative,
    der,
    er_aml,
    ewc,
    feature_replay,
    feature_replay_attn_reg,
    gdumb,
    gem,
    icarl,
    joint,
    l1,
    l2,
    lamaml,
    lwf,
    mas,
    modular_lora,
    naive,
    online_ewc,
    pnn,
    replay,
    si,
)
from strategies.base import STRATEGIES, StrategyContext, StrategyNotApplicable, TrainConfig, check_applicable

__all__ = ["STRATEGIES", "StrategyContext", "StrategyNotApplicable", "TrainConfig", "check_applicable"]
