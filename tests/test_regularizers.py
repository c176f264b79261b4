"""The Hsu et al. 2018 regularisers (ewc, online_ewc, si, mas, l2): penalties, importances, options."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from helpers import tiny_doc, tiny_specs
from torch import nn

from benchmarks.config.loader import expand
from benchmarks.engine.runner import _build, run_one
from strategies.plugins import persample
from strategies.plugins.fisher import fisher_diagonal
from strategies.plugins.importance import QuadraticPenaltyPlugin, experience_batches
from strategies.plugins.mas import batch_importance
from strategies.plugins.si import SIPlugin

OURS = ["ewc", "online_ewc", "si", "mas", "l2"]
#: strengths at which a penalty must change the accuracy matrix of the tiny stream
STRONG = {"ewc": {"ewc_lambda": 1e4}, "online_ewc": {"ewc_lambda": 1e4}, "si": {"si_lambda": 1e4},
          "mas": {"lambda_reg": 1e4}, "l2": {"l2_lambda": 10.0}}


def _spec(name: str, setting: str = "class_il", **hparams):
    (spec,) = tiny_specs([name], scenario=f"synthetic_{setting}", hparams={name: hparams})
    return spec


def _sensitive_spec(name: str, **hparams):
    """Task-IL, noisy classes, 64 test samples per class, 3 epochs at lr 0.01.

    The tiny stream is easy: longer training makes the model so confident that its Fisher underflows
    (~1e-42: EWC then cannot act), and 8 test samples per class hide small changes.
    """
    doc = tiny_doc([name], scenario="synthetic_task_il", hparams={name: hparams}, noise=3.0, test_per_class=64)
    doc["train"].update(epochs=3, lr=0.01)
    (spec,) = expand(doc, name="tiny", where="test")
    return spec


def _regularizer(strategy) -> QuadraticPenaltyPlugin:
    return next(p for p in strategy.plugins if isinstance(p, QuadraticPenaltyPlugin))


@pytest.mark.parametrize("setting", ["task_il", "class_il"])
@pytest.mark.parametrize("name", OURS)
def test_penalty_is_positive_from_the_second_experience(name, setting):
    scenario, strategy = _build(_spec(name, setting), torch.device("cpu"))
    plugin = _regularizer(strategy)
    first, second = scenario.benchmark.train_stream
    strategy.train(first)
    assert float(plugin.last_penalty) == 0.0 and len(plugin.terms) == 1
    strategy.train(second)
    assert float(plugin.last_penalty) > 0.0


@pytest.mark.parametrize("name", OURS)
def test_accuracy_matrix_differs_from_naive(name):
    naive = run_one(_sensitive_spec("naive"))
    ours = run_one(_sensitive_spec(name, **STRONG[name]))
    assert ours["status"] == "ok", ours["error"]
    assert ours["accuracy_matrix"][0] == naive["accuracy_matrix"][0]  # same seed, no penalty yet
    assert ours["accuracy_matrix"][1] != naive["accuracy_matrix"][1]


@pytest.mark.parametrize("name", [n + "_avalanche" for n in ("ewc", "online_ewc", "si", "mas")])
def test_avalanche_variants_still_run(name):
    result = run_one(_spec(name))
    assert result["status"] == "ok", result["error"]


# -- per-sample statistics equal a loop of batch-1 backward passes --------------------------------------


class _WithNorm(nn.Module):
    """A model with a parameter outside nn.Linear (LayerNorm): takes the vmap path."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(12, 6), nn.LayerNorm(6), nn.ReLU(), nn.Linear(6, 3))

    def forward(self, x):
        return self.net(x)


class _DynamicShape(_WithNorm):
    """Trims all-zero trailing inputs with ``nonzero`` (a data-dependent shape, like the text models'
    ``trim_padding``), then pads back: vmap cannot batch it, so the batch-1 loop fallback runs."""

    def forward(self, x):
        flat = x.flatten(1)
        real = torch.nonzero(flat.abs().sum(0))
        trimmed = flat[:, : int(real.max()) + 1]
        return self.net(F.pad(trimmed, (0, flat.shape[1] - trimmed.shape[1])))


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 6), nn.ReLU(), nn.Linear(6, 3))


def _loop_reference(model, x, y, loss_of, stat):
    total = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for i in range(len(x)):
        model.zero_grad()
        loss_of(model(x[i:i + 1]), y[i:i + 1]).backward()
        for n, p in model.named_parameters():
            total[n] += stat(p.grad)
    return {n: v / len(x) for n, v in total.items()}


def _data(n=10):
    torch.manual_seed(0)
    return torch.randn(n, 3, 4), torch.randint(0, 3, (n,))


@pytest.mark.parametrize("make", [_mlp, _WithNorm, _DynamicShape], ids=["linear-path", "vmap-path", "loop-fallback"])
@pytest.mark.parametrize("label", ["predicted", "true"])
def test_fisher_equals_a_batch_one_loop(make, label):
    torch.manual_seed(1)
    model = make()
    x, y = _data()
    with torch.no_grad():
        target = model(x).argmax(1) if label == "predicted" else y
    ref = _loop_reference(model, x, target, F.cross_entropy, torch.square)
    ours = fisher_diagonal(model, [(x[:4], y[:4], 0), (x[4:], y[4:], 0)], label)
    for n in ref:
        assert torch.allclose(ours[n], ref[n], rtol=1e-4, atol=1e-7), n
    if label == "predicted":  # the two labels give different Fishers on an untrained model
        assert any(not torch.allclose(ours[n], fisher_diagonal(model, [(x, y, 0)], "true")[n]) for n in ref)


@pytest.mark.parametrize("make", [_mlp, _WithNorm, _DynamicShape], ids=["linear-path", "vmap-path", "loop-fallback"])
def test_mas_per_sample_equals_a_batch_one_loop(make):
    torch.manual_seed(2)
    model = make()
    x, y = _data()
    ref = _loop_reference(model, x, y, lambda out, _: out.pow(2).sum(), torch.abs)
    ours = persample.mean_per_sample(model, [(x, y, 0)], lambda out, _: out.pow(2).sum(), torch.abs)
    for n in ref:
        assert torch.allclose(ours[n], ref[n], rtol=1e-4, atol=1e-7), n


def test_mas_batch_importance_is_hsus_mean_over_batches():
    torch.manual_seed(3)
    model = _mlp()
    x, y = _data(8)
    expected = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for part in (slice(0, 4), slice(4, 8)):
        model.zero_grad()
        model(x[part]).pow(2).mean().backward()
        for n, p in model.named_parameters():
            expected[n] += p.grad.abs() / 2
    ours = batch_importance(model, [(x[:4], y[:4], 0), (x[4:], y[4:], 0)])
    for n, value in expected.items():
        assert torch.allclose(ours[n], value, atol=1e-7), n


def test_fisher_on_a_multi_head_model_uses_the_task_head():
    scenario, strategy = _build(_spec("ewc", "task_il"), torch.device("cpu"))
    strategy.train(scenario.benchmark.train_stream[0])
    fisher = _regularizer(strategy).terms[0][0]
    heads = {n: v for n, v in fisher.items() if n.startswith("head.")}
    assert heads and all(v.abs().sum() > 0 for v in heads.values())  # only task 0's head exists yet


# -- data reading, options -----------------------------------------------------------------------------


def test_experience_batches_read_the_same_items_without_the_fast_path():
    scenario, strategy = _build(_spec("ewc"), torch.device("cpu"))
    strategy.experience = scenario.benchmark.train_stream[0]
    plain = SimpleNamespace(experience=strategy.experience, device=torch.device("cpu"))
    fast, slow = list(experience_batches(strategy, 7)), list(experience_batches(plain, 7))
    assert len(fast) == len(slow) > 1
    for a, b in zip(fast, slow):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and a[2] == b[2]
    assert sum(len(b[0]) for b in experience_batches(plain, 7, max_samples=5)) == 5


def _quadratic_steps(plugin: SIPlugin, model: nn.Linear, target: float, steps: int, task_weight: float = 1.0):
    """Train weight -> target with SGD through the plugin's events, as a template would."""
    strategy = SimpleNamespace(model=model, loss=None)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    plugin.before_training_exp(strategy)
    for _ in range(steps):
        opt.zero_grad()
        strategy.loss = task_weight * (model.weight - target).pow(2).sum()
        plugin.before_backward(strategy)
        strategy.loss.backward()
        plugin.before_update(strategy)
        opt.step()
        plugin.after_update(strategy)
    plugin.after_training_exp(strategy)
    return plugin.terms[0][0]["weight"]


def test_si_importance_is_not_clipped_and_clips_when_asked():
    omega = _quadratic_steps(SIPlugin(reg_lambda=1.0), nn.Linear(1, 1, bias=False).requires_grad_(True).apply(
        lambda m: nn.init.zeros_(m.weight)), target=5.0, steps=60)
    assert omega.item() > 0.5  # ~ loss drop 25 / (distance^2 25 + damping 0.1): far above Avalanche's 1e-3 clip
    clipped = _quadratic_steps(SIPlugin(reg_lambda=1.0, max_importance=1e-3), nn.Linear(1, 1, bias=False).apply(
        lambda m: nn.init.zeros_(m.weight)), target=5.0, steps=60)
    assert clipped.item() == pytest.approx(1e-3)


def test_si_path_integral_excludes_its_own_penalty():
    plugin, model = SIPlugin(reg_lambda=1.0), nn.Linear(1, 1, bias=False).apply(lambda m: nn.init.zeros_(m.weight))
    first = _quadratic_steps(plugin, model, target=5.0, steps=60).clone()
    with torch.no_grad():
        model.weight += 1.0  # the penalty now pulls the weight back; the task loss below is 0
    moved = model.weight.item()
    second = _quadratic_steps(plugin, model, target=0.0, steps=5, task_weight=0.0)
    assert model.weight.item() != moved  # the penalty moved the weight ...
    assert torch.allclose(second, first)  # ... but added nothing to the importance (sum of 1st and 0)


def test_online_importances_are_summed_and_l2s_stays_one():
    scenario, mas = _build(_spec("mas"), torch.device("cpu"))
    _, l2 = _build(_spec("l2"), torch.device("cpu"))
    for name, strategy in (("mas", mas), ("l2", l2)):
        plugin = _regularizer(strategy)
        strategy.train(scenario.benchmark.train_stream[0])
        once = {n: v.clone() for n, v in plugin.terms[0][0].items()}
        strategy.train(scenario.benchmark.train_stream[1])
        strategy.experience = scenario.benchmark.train_stream[1]  # reset to None after training
        new = plugin.importance(strategy)  # the second experience's importance, same model
        (summed, _), = plugin.terms
        for n, first in once.items():
            expected = first + new[n] if name == "mas" else torch.ones_like(first)
            assert torch.allclose(summed[n], expected, atol=1e-7), (name, n)


def test_ewc_keeps_a_term_per_experience_and_online_ewc_one():
    for name, n_terms in (("ewc", 2), ("online_ewc", 1)):
        scenario, strategy = _build(_spec(name, fisher_samples=8, fisher_label="true"), torch.device("cpu"))
        for exp in scenario.benchmark.train_stream:
            strategy.train(exp)
        assert len(_regularizer(strategy).terms) == n_terms


def test_the_loop_fallback_runs_only_when_vmap_cannot_batch_the_model():
    """_DynamicShape makes vmap raise; the fallback must then give the loop reference (checked above)
    and vmap must really fail on it (else the fallback is never exercised)."""
    model = _DynamicShape()
    x, y = _data(4)
    params = {n: p.detach() for n, p in model.named_parameters()}
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    with pytest.raises(RuntimeError, match="vmap"):
        persample._vmap_sums(model, params, {}, x, y, (), lambda out, t: F.cross_entropy(out, t, reduction="sum"),
                             torch.square, total)
    assert all(float(v.abs().sum()) == 0 for v in total.values())  # a failed batch adds nothing
