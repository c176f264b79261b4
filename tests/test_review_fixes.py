"""Fixes of issue 22's review (docs/review_fixes.md): each test here fails on the code before the fix."""

from __future__ import annotations

import pytest
import torch
from helpers import tiny_context, tiny_minilm, tiny_specs, tiny_text_stream

from benchmarks.engine.runner import _build, run_one
from strategies import STRATEGIES


# -- 1. moe_adapters with the whole encoder frozen ------------------------------------------------------
def _moe_on_frozen_tiny_bert(**hparams):
    """moe_adapters on a 2-block BERT with both blocks frozen (MiniLM's default ``frozen_layers = 6``)."""
    entry = STRATEGIES.get("moe_adapters")
    model = tiny_minilm(frozen_layers=2)
    strategy = entry.builder(tiny_context(model), entry.params(experts=4, top_k=2, rank=2, selector_dims=4, **hparams))
    return strategy, tiny_text_stream()


def test_moe_adapters_on_a_fully_frozen_encoder_trains_routes_and_selects():
    strategy, bench = _moe_on_frozen_tiny_bert()
    routing = strategy.plugins[0]
    assert not any(b.training for b in strategy.model.blocks[:2])  # frozen blocks stay in eval mode
    for exp in bench.train_stream:  # before the fix: torch.cat of an empty list after the first experience
        strategy.train(exp)
        strategy.eval(bench.test_stream)
    assert routing.selector.fitted == 2  # the selector saw each experience's training features
    for m in routing.mixtures:  # both blocks adapted; each experience's router picked experts while training
        assert len(m.frozen) >= 2 and m.routers[0].w_gate.abs().sum() > 0 and m.routers[1].w_gate.abs().sum() > 0
    assert strategy.routing["owned"] and len(strategy.routing["owned"]) == 2


def test_moe_router_noise_follows_the_model_mode_not_the_frozen_block_mode():
    strategy, bench = _moe_on_frozen_tiny_bert()
    model, (mixture, _) = strategy.model, strategy.plugins[0].mixtures
    mixture.routing.current = 0
    x = torch.stack([bench.train_stream[0].dataset[i][0] for i in range(6)])
    model.train()
    model(x)
    first = mixture.gates.clone()
    model(x)
    assert not torch.equal(first, mixture.gates)  # noisy top-k while the model trains
    assert mixture.counts.sum() == 2 * 6 * 2  # 2 forwards x 6 samples x top-2 counted
    model.eval()
    model(x)
    again = mixture.gates.clone()
    model(x)
    assert torch.equal(again, mixture.gates)  # no noise in evaluation
