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
    ewc_avalanche,
    feature_replay,
    feature_replay_attn_reg,
    gdumb,
    gem,
    icarl,
    joint,
    l1,
    l2,
    l2p,
    lamaml,
    lwf,
    lwf_attn_reg,
    mas,
    mas_avalanche,
    modular_lora,
    naive,
    online_ewc,
    online_ewc_avalanche,
    pnn,
    replay,
    replay_attn_reg,
    si,
    si_avalanche,
)
from strategies.base import STRATEGIES, StrategyContext, StrategyNotApplicable, TrainConfig, check_applicable

__all__ = ["STRATEGIES", "StrategyContext", "StrategyNotApplicable", "TrainConfig", "check_applicable"]
