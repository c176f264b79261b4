"""The methods of issue 13 (l1, coreset replay, La-MAML, LoRA per experience): each one's own checks,
including one that fails if the method does nothing. The registry-wide tests (test_strategies.py,
test_fastdata.py) run them in every setting they declare."""

from __future__ import annotations

import pytest
import torch
from helpers import tiny_specs

from benchmarks.engine.runner import run_one


def _run(name: str, setting: str = "class_il", model: str = "mlp", **hparams) -> dict:
    (spec,) = tiny_specs([name], scenario=f"synthetic_{setting}", model={"name": model}, hparams={name: hparams})
    result = run_one(spec)
    assert result["status"] == "ok", result["error"]
    return result


# -- l1 (strategies/plugins/l2.py with norm=1) -------------------------------------------------------
def test_l1_penalty_is_the_sum_of_absolute_differences():
    from strategies.plugins.l2 import L2Plugin

    model = torch.nn.Linear(3, 2)
    l1, l2 = L2Plugin(l2_lambda=1.0, norm=1), L2Plugin(l2_lambda=1.0)
    for plugin in (l1, l2):
        plugin.anchor = {n: p.detach() - 0.5 for n, p in model.named_parameters()}
    n = sum(p.numel() for p in model.parameters())
    assert l1.penalty(model).item() == pytest.approx(0.5 * n)
    assert l2.penalty(model).item() == pytest.approx(0.25 * n)
    with pytest.raises(ValueError, match="norm must be 1 or 2"):
        L2Plugin(l2_lambda=1.0, norm=3)


def test_l1_changes_what_is_learned():
    naive = _run("naive")["accuracy_matrix"]
    assert _run("l1", l1_lambda=1.0)["accuracy_matrix"] != naive
    assert _run("l1", l1_lambda=0.0)["accuracy_matrix"] == naive


# -- coreset replay (strategies/coreset_replay.py) ----------------------------------------------------
def _buffer_after_first_experience(name: str, mem_size: int):
    """(model, {class: kept inputs (k, ...)}, {class: all inputs of the class}) after experience 0."""
    from benchmarks.engine.runner import _build
    from benchmarks.fastpath.gather import gather_items

    (spec,) = tiny_specs([name], model={"name": "mlp"}, hparams={name: {"mem_size": mem_size}})
    scenario, strategy = _build(spec, torch.device("cpu"))
    exp = scenario.benchmark.train_stream[0]
    strategy.train(exp)
    policy = next(p for p in strategy.plugins if hasattr(p, "storage_policy")).storage_policy
    x, y = gather_items(exp.dataset)[:2]
    kept = {c: gather_items(g.buffer)[0] for c, g in policy.buffer_groups.items()}
    return strategy.model.eval(), kept, {c: x[y == c] for c in kept}


def _mean_gap(model, chosen, everything) -> float:
    with torch.no_grad():
        return (model.features(chosen).mean(0) - model.features(everything).mean(0)).norm().item()


def test_centroid_replay_keeps_the_samples_closest_to_the_class_mean():
    model, kept, whole = _buffer_after_first_experience("replay_centroid", mem_size=8)
    assert len(kept) == 2 and all(len(v) == 4 for v in kept.values())  # 8 over the 2 classes seen
    for c, x in whole.items():
        with torch.no_grad():
            f = model.features(x)
        closest = x[(f - f.mean(0)).pow(2).sum(1).argsort()[:4]]
        assert sorted(map(bytes, closest.numpy())) == sorted(map(bytes, kept[c].numpy()))


def test_herding_replay_matches_the_class_mean_better_than_random_picks():
    model, kept, whole = _buffer_after_first_experience("replay_herding", mem_size=8)
    gen = torch.Generator().manual_seed(0)
    for c, x in whole.items():
        herded = _mean_gap(model, kept[c], x)
        randoms = [_mean_gap(model, x[torch.randperm(len(x), generator=gen)[:4]], x) for _ in range(20)]
        assert herded < min(randoms)


# -- La-MAML (strategies/lamaml.py) -------------------------------------------------------------------
def test_lamaml_keeps_initial_weights_learns_its_rates_and_fills_its_buffer():
    from benchmarks.engine.runner import _build

    (naive_spec,) = tiny_specs(["naive"], model={"name": "mlp"})
    (spec,) = tiny_specs(["lamaml"], model={"name": "mlp"}, hparams={"lamaml": {"mem_size": 20}})
    _, naive = _build(naive_spec, torch.device("cpu"))
    scenario, strategy = _build(spec, torch.device("cpu"))
    initial = {k: v.clone() for k, v in strategy.model.inner.state_dict().items()}
    assert all(torch.equal(initial[k], v) for k, v in naive.model.state_dict().items())  # no re-init
    for exp in scenario.benchmark.train_stream:
        strategy.train(exp)
    alphas = torch.cat([a.flatten() for a in strategy.alpha_params.parameters()])
    assert len(alphas) == sum(p.numel() for p in strategy.model.inner.parameters())
    assert not torch.allclose(alphas, torch.full_like(alphas, 0.1))  # learning rates were meta-learned
    assert len(strategy.buffer) == 20
    assert any(not torch.equal(initial[k], v) for k, v in strategy.model.inner.state_dict().items())


def test_trainable_view_hides_frozen_parameters():
    from strategies.lamaml import TrainableView

    class TwoLayers(torch.nn.Sequential):
        def forward(self, x, task_labels=None):
            return super().forward(x)

    model = TwoLayers(torch.nn.Linear(2, 3), torch.nn.Linear(3, 2))
    model[0].requires_grad_(False)
    view = TrainableView(model)
    assert [n for n, _ in view.named_parameters()] == ["inner.1.weight", "inner.1.bias"]
    out = torch.func.functional_call(view, {"inner.1.bias": torch.zeros(2)}, (torch.ones(1, 2),))
    assert torch.allclose(out, model[1].weight @ model[0](torch.ones(2)))
